//! A resource template's `successCondition` / `failureCondition`: upstream parses them as a
//! Kubernetes label selector (`status.phase == Running, status.succeeded > 0`) whose keys are
//! paths into the object (gjson's dot paths), so the same rules apply here: requirements joined
//! by commas, all of which must match; `=`, `==`, `!=`, `in (...)`, `notin (...)`, `>` and `<`
//! (integers), a bare path (exists) and `!path` (does not exist).

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Operator {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan(i64),
    LessThan(i64),
}

/// One requirement of a condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    path: String,
    operator: Operator,
    values: Vec<String>,
}

/// A parsed condition: every requirement must match.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Condition {
    pub requirements: Vec<Requirement>,
}

impl Condition {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut requirements = split_requirements(text)?
            .iter()
            .map(|r| Requirement::parse(r))
            .collect::<Result<Vec<_>, _>>()?;
        // Upstream's selector keeps its requirements sorted by key: the first failing one
        // named in a message is the same as there.
        requirements.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Self { requirements })
    }
}

/// Splits at commas outside parentheses (`in (a,b)` keeps its list).
fn split_requirements(text: &str) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1).ok_or("unbalanced ')'")?,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if depth != 0 {
        return Err("unbalanced '('".into());
    }
    parts.push(current);
    let parts: Vec<String> = parts.into_iter().map(|p| p.trim().to_string()).collect();
    if parts.iter().any(String::is_empty) {
        return Err("empty requirement".into());
    }
    Ok(parts)
}

impl Requirement {
    fn parse(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix('!') {
            return Self::new(path.trim(), Operator::DoesNotExist, Vec::new());
        }
        // Two-character operators first, so `==` is not read as `=`.
        for (symbol, operator) in [("==", Operator::DoubleEquals), ("!=", Operator::NotEquals)] {
            if let Some((path, value)) = text.split_once(symbol) {
                return Self::new(path.trim(), operator, vec![value.trim().into()]);
            }
        }
        for symbol in ['=', '>', '<'] {
            if let Some((path, value)) = text.split_once(symbol) {
                let value = value.trim();
                let operator = match symbol {
                    '=' => Operator::Equals,
                    _ => {
                        let number = value.parse::<i64>().map_err(|_| {
                            format!(
                                "for '>', '<' operators, the value must be an integer: {value:?}"
                            )
                        })?;
                        if symbol == '>' {
                            Operator::GreaterThan(number)
                        } else {
                            Operator::LessThan(number)
                        }
                    }
                };
                return Self::new(path.trim(), operator, vec![value.into()]);
            }
        }
        let mut words = text.splitn(2, char::is_whitespace);
        let path = words.next().unwrap_or_default();
        let rest = words.next().unwrap_or_default().trim();
        if rest.is_empty() {
            return Self::new(path, Operator::Exists, Vec::new());
        }
        let (operator, list) = if let Some(list) = rest.strip_prefix("notin") {
            (Operator::NotIn, list)
        } else if let Some(list) = rest.strip_prefix("in") {
            (Operator::In, list)
        } else {
            return Err(format!("unknown operator in {text:?}"));
        };
        let list = list
            .trim()
            .strip_prefix('(')
            .and_then(|l| l.strip_suffix(')'))
            .ok_or_else(|| format!("expected a parenthesized list in {text:?}"))?;
        let values = list.split(',').map(|v| v.trim().to_string()).collect();
        Self::new(path, operator, values)
    }

    fn new(path: &str, operator: Operator, values: Vec<String>) -> Result<Self, String> {
        let valid_path = !path.is_empty()
            && path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-/#".contains(c));
        if !valid_path {
            return Err(format!("invalid path {path:?}"));
        }
        // A label value: empty, or alphanumerics with `-_.` inside, at most 63 characters.
        for value in &values {
            let inner_ok = value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            let ends_ok = value.is_empty()
                || (value.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && value.ends_with(|c: char| c.is_ascii_alphanumeric()));
            if !inner_ok || !ends_ok || value.len() > 63 {
                return Err(format!("invalid value {value:?}"));
            }
        }
        Ok(Self {
            path: path.into(),
            operator,
            values,
        })
    }

    /// Whether the object satisfies this requirement (Kubernetes' label-selector rules: a
    /// missing field matches `!=` and `notin`, never `>` or `<`).
    pub fn matches(&self, object: &Value) -> bool {
        let found = lookup(object, &self.path);
        match (&self.operator, found) {
            (Operator::Exists, found) => found.is_some(),
            (Operator::DoesNotExist, found) => found.is_none(),
            (Operator::Equals | Operator::DoubleEquals | Operator::In, Some(v)) => {
                self.values.contains(&v)
            }
            (Operator::NotEquals | Operator::NotIn, Some(v)) => !self.values.contains(&v),
            (Operator::NotEquals | Operator::NotIn, None) => true,
            (Operator::GreaterThan(n), Some(v)) => v.parse::<i64>().is_ok_and(|v| v > *n),
            (Operator::LessThan(n), Some(v)) => v.parse::<i64>().is_ok_and(|v| v < *n),
            (_, None) => false,
        }
    }
}

/// Written as Kubernetes writes a requirement (`status.failed>0`, `a in (x,y)`): upstream's
/// messages quote it so.
impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.operator {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan(_) => ">",
            Operator::LessThan(_) => "<",
            Operator::Exists => return write!(f, "{}", self.path),
            Operator::DoesNotExist => return write!(f, "!{}", self.path),
        };
        let mut values = self.values.clone();
        values.sort();
        let values = values.join(",");
        match self.operator {
            Operator::In | Operator::NotIn => write!(f, "{}{op}({values})", self.path),
            _ => write!(f, "{}{op}{values}", self.path),
        }
    }
}

/// Follows a gjson-style dot path (object keys, array indexes, `#` for an array's length) and
/// gives the field as gjson's `String()` does: strings bare, everything else as JSON.
fn lookup(object: &Value, path: &str) -> Option<String> {
    let mut node = object;
    let mut segments = path.split('.').peekable();
    while let Some(segment) = segments.next() {
        node = match node {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) if segment == "#" && segments.peek().is_none() => {
                return Some(items.len().to_string());
            }
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(match node {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// The outcome of checking an object against a template's conditions.
#[derive(Debug, PartialEq)]
pub enum Check {
    Succeeded,
    /// A failure condition's requirement matched: upstream's message.
    Failed(String),
    /// Neither matched yet: look again later.
    Waiting,
}

/// Upstream's order: any matching failure requirement fails; else every success requirement
/// must match.
pub fn check(object: &Value, success: &Condition, failure: &Condition) -> Check {
    if let Some(failed) = failure.requirements.iter().find(|r| r.matches(object)) {
        return Check::Failed(format!("failure condition '{failed}' evaluated true"));
    }
    if success.requirements.iter().all(|r| r.matches(object)) {
        Check::Succeeded
    } else {
        Check::Waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(succeeded: i64, failed: i64) -> Value {
        json!({"metadata": {"name": "pi", "labels": {"app": "web"}},
               "status": {"succeeded": succeeded, "failed": failed, "phase": "Running",
                          "conditions": [{"type": "Complete"}]}})
    }

    fn matches(condition: &str, object: &Value) -> bool {
        let condition = Condition::parse(condition).unwrap();
        condition.requirements.iter().all(|r| r.matches(object))
    }

    #[test]
    fn operators_over_fields() {
        let object = job(1, 0);
        assert!(matches("status.succeeded > 0", &object));
        assert!(!matches("status.failed > 0", &object));
        assert!(matches("status.failed < 1", &object));
        assert!(matches("status.phase == Running", &object));
        assert!(matches("status.phase = Running", &object));
        assert!(matches("status.phase != Pending", &object));
        assert!(matches("status.phase in (Pending, Running)", &object));
        assert!(matches("status.phase notin (Failed)", &object));
        assert!(matches("metadata.labels.app", &object));
        assert!(matches("!status.missing", &object));
        assert!(matches("status.conditions.0.type == Complete", &object));
        assert!(matches("status.conditions.# == 1", &object));
        assert!(matches(
            "status.succeeded > 0, status.phase == Running",
            &object
        ));
        assert!(!matches(
            "status.succeeded > 0, status.phase == Done",
            &object
        ));
    }

    #[test]
    fn missing_fields_follow_label_selector_rules() {
        let object = json!({"status": {}});
        assert!(!matches("status.succeeded > 0", &object));
        assert!(!matches("status.succeeded < 5", &object));
        assert!(!matches("status.phase == Running", &object));
        assert!(matches("status.phase != Running", &object));
        assert!(matches("status.phase notin (Running)", &object));
        assert!(!matches("status.phase in (Running)", &object));
    }

    #[test]
    fn parse_errors() {
        assert!(Condition::parse("status.succeeded > x").is_err());
        assert!(Condition::parse("status.phase in Running").is_err());
        assert!(Condition::parse("status.phase in (Running").is_err());
        assert!(Condition::parse("status.phase == Running,").is_err());
        assert!(Condition::parse("status phase").is_err());
        assert!(Condition::parse("status.phase == two words").is_err());
    }

    #[test]
    fn failure_first_with_upstreams_message() {
        let success = Condition::parse("status.succeeded > 0").unwrap();
        let failure = Condition::parse("status.failed > 0").unwrap();
        assert_eq!(
            check(&job(1, 1), &success, &failure),
            Check::Failed("failure condition 'status.failed>0' evaluated true".into())
        );
        assert_eq!(check(&job(1, 0), &success, &failure), Check::Succeeded);
        assert_eq!(check(&job(0, 0), &success, &failure), Check::Waiting);
        let failure = Condition::parse("status.phase in (Failed, Error)").unwrap();
        let object = json!({"status": {"phase": "Error"}});
        assert_eq!(
            check(&object, &Condition::default(), &failure),
            Check::Failed(
                "failure condition 'status.phase in (Error,Failed)' evaluated true".into()
            )
        );
    }
}
