//! Kubernetes label selectors as strings (`app=web,tier!=db,env in (a,b),!legacy`), parsed into
//! kube's [`Selector`] so lists served from the API server's own Application cache and the event
//! stream filter exactly as the Kubernetes API server would.

use std::collections::BTreeSet;

use kube::core::{Expression, Selector};

/// Parses Kubernetes' label selector syntax; the error names the requirement it could not read.
pub fn parse(text: &str) -> Result<Selector, String> {
    split_requirements(text)?
        .into_iter()
        .map(requirement)
        .collect::<Result<Vec<_>, _>>()
        .map(Selector::from_iter)
}

/// The comma-separated requirements, keeping the commas of `in (a,b)` sets inside theirs.
fn split_requirements(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1).ok_or("unbalanced ')'")?,
            ',' if depth == 0 => {
                parts.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced '('".into());
    }
    parts.push(&text[start..]);
    Ok(parts
        .into_iter()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect())
}

fn requirement(text: &str) -> Result<Expression, String> {
    let invalid = || format!("invalid label selector requirement {text:?}");
    if let Some(name) = text.strip_prefix('!') {
        return Ok(Expression::DoesNotExist(
            key(name.trim()).ok_or_else(invalid)?,
        ));
    }
    for (operator, equal) in [("!=", false), ("==", true), ("=", true)] {
        if let Some((name, value)) = text.split_once(operator) {
            let name = key(name.trim()).ok_or_else(invalid)?;
            let value = value.trim().to_string();
            if !valid_value(&value) {
                return Err(invalid());
            }
            return Ok(if equal {
                Expression::Equal(name, value)
            } else {
                Expression::NotEqual(name, value)
            });
        }
    }
    if let Some((name, rest)) = text.split_once(char::is_whitespace) {
        let rest = rest.trim_start();
        let (set_of, values) = if let Some(values) = rest.strip_prefix("notin") {
            (false, values)
        } else if let Some(values) = rest.strip_prefix("in") {
            (true, values)
        } else {
            return Err(invalid());
        };
        let values = values
            .trim()
            .strip_prefix('(')
            .and_then(|values| values.strip_suffix(')'))
            .ok_or_else(invalid)?;
        let values: BTreeSet<String> = values
            .split(',')
            .map(|value| value.trim().to_string())
            .collect();
        if values.iter().any(|value| !valid_value(value)) {
            return Err(invalid());
        }
        let name = key(name).ok_or_else(invalid)?;
        return Ok(if set_of {
            Expression::In(name, values)
        } else {
            Expression::NotIn(name, values)
        });
    }
    Ok(Expression::Exists(key(text).ok_or_else(invalid)?))
}

/// A label key: an optional DNS prefix and `/`, then a name of letters, digits, `-`, `_`, `.`.
fn key(text: &str) -> Option<String> {
    let name = text.rsplit_once('/').map_or(
        text,
        |(prefix, name)| {
            if prefix.is_empty() { "" } else { name }
        },
    );
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    valid.then(|| text.to_string())
}

fn valid_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kube::core::SelectorExt;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_match_as_kubernetes_does() {
        let web = labels(&[("app", "web"), ("env", "prod"), ("team.io/owner", "a")]);
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app = web , env=prod", true),
            ("app!=web", false),
            ("app!=db", true),
            ("env in (prod, staging)", true),
            ("env notin (prod)", false),
            ("env in (dev)", false),
            ("team.io/owner", true),
            ("!team.io/owner", false),
            ("!legacy", true),
            ("legacy", false),
            ("app=web,env in (dev,prod),!legacy", true),
            ("app=", false),
        ];
        for (selector, matches) in cases {
            let parsed = parse(selector).unwrap_or_else(|err| panic!("{selector}: {err}"));
            assert_eq!(parsed.matches(&web), matches, "{selector:?}");
        }
    }

    #[test]
    fn malformed_selectors_are_errors() {
        for selector in [
            "app in (a",
            "app)",
            "a b c",
            "app=we b",
            "=x",
            "in (a)x",
            "app in x",
        ] {
            assert!(parse(selector).is_err(), "{selector:?} parsed");
        }
    }
}
