//! `valueFrom.jqFilter` of a resource template's output, evaluated in ferry-diff's jq sandbox
//! as upstream's gojq: every output on a line of its own (strings bare, other values as JSON),
//! trimmed.

use std::fmt::Write as _;
use std::time::Duration;

use ferry_diff::jq::{self, CompileError, Program, Val};
use serde_json::Value;

/// How long a filter may run: it runs in the controller, so a runaway one must not hold a
/// reconcile forever (its thread is abandoned).
const TIMEOUT: Duration = Duration::from_secs(5);

/// The filter's outputs over `input`, as upstream writes them.
pub fn render(filter: &str, input: &Value) -> Result<String, String> {
    let program = Program::compile(filter).map_err(|err| match err {
        CompileError::Syntax(errors) => {
            format!("jq syntax error in {filter:?} ({} errors)", errors.len())
        }
        undefined => undefined.to_string(),
    })?;
    let input = jq::input(input).map_err(|err| err.to_string())?;
    let written = program.run(input, TIMEOUT, |outputs| {
        let mut out = String::new();
        for value in outputs {
            match value {
                Ok(Val::TStr(bytes) | Val::BStr(bytes)) => {
                    out.push_str(&String::from_utf8_lossy(&bytes));
                }
                Ok(other) => {
                    let _ = write!(out, "{other}");
                }
                Err(err) => return Err(format!("jq error: {err}")),
            }
            out.push('\n');
        }
        Ok(out.trim().to_string())
    });
    written.map_err(|_| format!("jq filter {filter:?} did not finish in {TIMEOUT:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outputs_as_upstream() {
        let object = json!({"metadata": {"name": "cm", "labels": {"a": "1"}},
                            "data": {"x": "1", "y": "2"}});
        assert_eq!(render(".metadata.name", &object).unwrap(), "cm");
        assert_eq!(render(".metadata.labels", &object).unwrap(), r#"{"a":"1"}"#);
        assert_eq!(render(".data | keys[]", &object).unwrap(), "x\ny");
        assert_eq!(render(".data | length", &object).unwrap(), "2");
    }

    #[test]
    fn errors_and_denied_functions() {
        assert!(render(".metadata | select(", &json!({})).is_err());
        let err = render("env", &json!({})).unwrap_err();
        assert!(err.contains("`env`"), "{err}");
        assert!(render(".a[]", &json!({"a": 1})).is_err());
        let err = render("def f: f; f", &json!({})).unwrap_err();
        assert!(err.contains("did not finish"), "{err}");
    }
}
