//! Upstream's small languages: `{{...}}` tags substituted from a scope (`{{=...}}` expression
//! tags through [`crate::expr_tag`]), `when` conditions
//! (govaluate there: bare words are strings, so `{{steps.flip.outputs.result}} == heads`
//! works), and a DAG task's `depends` over other tasks' results.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;
use std::sync::LazyLock;

/// The values tags resolve to, e.g. `inputs.parameters.message` → `hello`.
pub type Scope = BTreeMap<String, String>;

/// Replaces every `{{tag}}` in `text` by its value in `scope`. A tag the scope lacks is an
/// error naming it: a typo must not run a step with a literal `{{...}}`.
pub fn substitute(text: &str, scope: &Scope) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        let raw = &rest[start + 2..start + 2 + len];
        // `{{=` exactly, as upstream: `{{ =x}}` is a simple tag.
        if let Some(expression) = raw.strip_prefix('=') {
            out.push_str(&crate::expr_tag::evaluate(expression, scope)?);
            rest = &rest[start + 2 + len + 2..];
            continue;
        }
        let tag = raw.trim();
        match scope.get(tag) {
            Some(value) => out.push_str(value),
            None => return Err(format!("failed to resolve {{{{{tag}}}}}")),
        }
        rest = &rest[start + 2 + len + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// [`substitute`] in every string of a JSON value (not in keys): values are inserted as text,
/// never parsed as JSON, so a value cannot change the document's structure.
pub fn substitute_json(value: &Value, scope: &Scope) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => Value::String(substitute(s, scope)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| substitute_json(v, scope))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), substitute_json(v, scope)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

static BARE_WORD: LazyLock<Regex> = LazyLock::new(|| {
    // Quoted strings are matched first so that words inside them stay as they are.
    Regex::new(r#""[^"]*"|'[^']*'|[A-Za-z_][A-Za-z0-9_.\-]*"#).unwrap()
});

/// Evaluates a `when` condition (after substitution). Bare words are strings and single quotes
/// are string quotes, as in upstream's govaluate; `true`/`false` are booleans.
pub fn evaluate_when(condition: &str) -> Result<bool, String> {
    let quoted = BARE_WORD.replace_all(condition, |m: &regex::Captures| {
        let word = &m[0];
        if word.starts_with('"') || word == "true" || word == "false" {
            word.to_string()
        } else if let Some(inner) = word.strip_prefix('\'') {
            format!("\"{}\"", inner.trim_end_matches('\''))
        } else {
            format!("\"{word}\"")
        }
    });
    evalexpr::eval_boolean(&quoted)
        .map_err(|err| format!("invalid when expression '{condition}': {err}"))
}

/// A task's outcome as `depends` sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskResult {
    pub succeeded: bool,
    pub failed: bool,
    pub errored: bool,
    pub skipped: bool,
    pub omitted: bool,
    /// For a fan-out: one of its children succeeded / all of them failed.
    pub any_succeeded: bool,
    pub all_failed: bool,
}

static DEPENDS_TOKEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9_\-.]+|&&|\|\||!|\(|\)|\s+").unwrap());

/// The task names a `depends` expression mentions, in order, without duplicates.
pub fn depends_names(depends: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for token in DEPENDS_TOKEN.find_iter(depends) {
        let token = token.as_str();
        if token
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            let name = split_result(token).0.to_string();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// `task.Result` → (`task`, `Result`); a bare `task` has no result.
fn split_result(token: &str) -> (&str, Option<&str>) {
    const RESULTS: [&str; 8] = [
        "Succeeded",
        "Failed",
        "Errored",
        "Skipped",
        "Omitted",
        "Daemoned",
        "AnySucceeded",
        "AllFailed",
    ];
    match token.rsplit_once('.') {
        Some((name, result)) if RESULTS.contains(&result) => (name, Some(result)),
        _ => (token, None),
    }
}

/// Evaluates `depends` with the results of the tasks it names (all completed). A bare name
/// means `(name.Succeeded || name.Skipped || name.Daemoned)`, as upstream.
pub fn evaluate_depends(
    depends: &str,
    result: impl Fn(&str) -> Option<TaskResult>,
) -> Result<bool, String> {
    let mut expression = String::new();
    let mut consumed = 0;
    for token in DEPENDS_TOKEN.find_iter(depends) {
        if token.start() != consumed {
            break;
        }
        consumed = token.end();
        let text = token.as_str();
        if !text
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            expression.push_str(text);
            continue;
        }
        let (name, which) = split_result(text);
        let r = result(name).ok_or_else(|| format!("depends: unknown task {name:?}"))?;
        let value = match which {
            None => r.succeeded || r.skipped,
            Some("Succeeded") => r.succeeded,
            Some("Failed") => r.failed,
            Some("Errored") => r.errored,
            Some("Skipped") => r.skipped,
            Some("Omitted") => r.omitted,
            Some("AnySucceeded") => r.any_succeeded,
            Some("AllFailed") => r.all_failed,
            // Daemoned: ferry runs no daemon steps yet.
            _ => false,
        };
        expression.push_str(if value { "true" } else { "false" });
    }
    if consumed != depends.len() {
        return Err(format!(
            "depends {depends:?}: unexpected {:?}",
            &depends[consumed..]
        ));
    }
    evalexpr::eval_boolean(&expression).map_err(|err| format!("depends {depends:?}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(pairs: &[(&str, &str)]) -> Scope {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tags_are_replaced_and_unknown_ones_refused() {
        let s = scope(&[("inputs.parameters.message", "hi \"you\""), ("item", "3")]);
        assert_eq!(
            substitute("say {{inputs.parameters.message}} {{ item }}", &s).unwrap(),
            "say hi \"you\" 3"
        );
        assert_eq!(
            substitute("{{inputs.parameters.mesage}}", &s).unwrap_err(),
            "failed to resolve {{inputs.parameters.mesage}}"
        );
        assert_eq!(
            substitute(
                "n={{=asInt(item) * 2}} {{= item == '3' ? 'three' : 'other' }}",
                &s
            )
            .unwrap(),
            "n=6 three"
        );
        assert_eq!(
            substitute("no tags {{ here", &s).unwrap(),
            "no tags {{ here"
        );
        let json = serde_json::json!({"args": ["{{item}}"], "n": 1});
        assert_eq!(
            substitute_json(&json, &s).unwrap(),
            serde_json::json!({"args": ["3"], "n": 1})
        );
    }

    #[test]
    fn when_reads_bare_words_as_strings() {
        assert!(evaluate_when("heads == heads").unwrap());
        assert!(!evaluate_when("tails == heads").unwrap());
        assert!(evaluate_when("tails-up != 'heads-up'").unwrap());
        assert!(evaluate_when("7 > 5 && true").unwrap());
        assert!(evaluate_when("\"a b\" == \"a b\"").unwrap());
        assert!(evaluate_when("1 +").is_err());
    }

    #[test]
    fn depends_combines_task_results() {
        let results = |name: &str| match name {
            "A" => Some(TaskResult {
                succeeded: true,
                ..TaskResult::default()
            }),
            "task-b" => Some(TaskResult {
                failed: true,
                ..TaskResult::default()
            }),
            "C" => Some(TaskResult {
                skipped: true,
                ..TaskResult::default()
            }),
            _ => None,
        };
        assert!(evaluate_depends("A && task-b.Failed", results).unwrap());
        assert!(!evaluate_depends("A && task-b", results).unwrap());
        assert!(evaluate_depends("C", results).unwrap(), "skipped counts");
        assert!(evaluate_depends("!(A.Failed || task-b.Succeeded)", results).unwrap());
        assert_eq!(
            evaluate_depends("A && D", results).unwrap_err(),
            "depends: unknown task \"D\""
        );
        assert!(evaluate_depends("A & B", results).is_err());
        assert_eq!(
            depends_names("A && (task-b.Failed || A.Succeeded)"),
            ["A", "task-b"]
        );
    }
}
