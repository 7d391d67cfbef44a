//! jq path expressions (`jqPathExpressions`), evaluated with jaq: the paths an expression
//! selects, as jq's `path(f)` reports them.

use std::time::Duration;

use serde_json::Value;

use crate::jq::{Failure, Program, Val};
use crate::path::{Path, Step};

/// A compiled `jqPathExpressions` entry.
#[derive(Clone)]
pub(crate) struct JqPaths {
    program: Program,
}

/// Why evaluating an expression on one object produced no paths.
#[derive(Debug, PartialEq)]
pub(crate) enum JqFailure {
    /// The expression raised an error on this object (e.g. iterating a missing list).
    Error,
    /// The expression did not finish in time.
    Timeout,
}

/// One element of a path as jq reports it.
enum PathPart {
    Key(String),
    Index(isize),
    /// Slices and other exotic path elements: such paths are skipped.
    Other,
}

impl JqPaths {
    pub fn compile(expression: &str) -> Result<Self, String> {
        let program =
            Program::compile(&format!("[path({expression})]")).map_err(|err| err.to_string())?;
        Ok(Self { program })
    }

    /// The concrete paths the expression selects in `doc` (`input` is `doc` converted with
    /// [`to_input`]). Runs on a worker thread so a runaway expression cannot block the caller
    /// past `timeout`.
    pub fn paths(
        &self,
        doc: &Value,
        input: &Val,
        timeout: Duration,
    ) -> Result<Vec<Path>, JqFailure> {
        let evaluate = |outputs: &mut dyn Iterator<Item = crate::jq::Output>| match (
            outputs.next(),
            outputs.next(),
        ) {
            (Some(Ok(paths)), None) => path_parts(&paths),
            _ => None,
        };
        match self.program.run(input.clone(), timeout, evaluate) {
            Ok(Some(parts)) => Ok(parts.iter().filter_map(|p| concrete(doc, p)).collect()),
            Ok(None) | Err(Failure::Lost) => Err(JqFailure::Error),
            Err(Failure::Timeout) => Err(JqFailure::Timeout),
        }
    }
}

/// Converts a document for evaluation; done once per document for all its expressions.
pub(crate) fn to_input(doc: &Value) -> Result<Val, JqFailure> {
    crate::jq::input(doc).map_err(|_| JqFailure::Error)
}

/// Reads `[path(f)]`'s output: an array of paths, each an array of keys and indices.
fn path_parts(paths: &Val) -> Option<Vec<Vec<PathPart>>> {
    let Val::Arr(paths) = paths else {
        return None;
    };
    paths
        .iter()
        .map(|path| match path {
            Val::Arr(parts) => Some(parts.iter().map(path_part).collect()),
            _ => None,
        })
        .collect()
}

fn path_part(part: &Val) -> PathPart {
    match part {
        Val::TStr(bytes) | Val::BStr(bytes) => {
            PathPart::Key(String::from_utf8_lossy(bytes).into_owned())
        }
        Val::Num(n) => n.as_isize().map_or(PathPart::Other, PathPart::Index),
        _ => PathPart::Other,
    }
}

/// Maps a jq path onto `doc`; `None` when it leads nowhere (jq also reports paths of absent
/// fields, whose deletion is a no-op).
fn concrete(doc: &Value, parts: &[PathPart]) -> Option<Path> {
    let mut node = doc;
    let mut path = Vec::with_capacity(parts.len());
    for part in parts {
        let step = match (part, node) {
            (PathPart::Key(key), Value::Object(_)) => Step::Key(key.clone()),
            (PathPart::Index(i), Value::Array(items)) => {
                // Negative indices count from the end, as in jq.
                let len = items.len() as isize;
                let i = if *i < 0 { len + i } else { *i };
                Step::Index(usize::try_from(i).ok()?)
            }
            _ => return None,
        };
        node = crate::path::child(node, &step)?;
        path.push(step);
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::to_pointer;
    use serde_json::json;

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn pointers(expression: &str, doc: &Value) -> Result<Vec<String>, JqFailure> {
        let jq = JqPaths::compile(expression).unwrap();
        let paths = jq.paths(doc, &to_input(doc)?, TIMEOUT)?;
        Ok(paths.iter().map(|p| to_pointer(p)).collect())
    }

    fn pod_spec() -> Value {
        json!({"spec": {"template": {"spec": {
            "initContainers": [
                {"name": "setup", "image": "busybox"},
                {"name": "injected", "image": "sidecar:1"}
            ],
            "containers": [{"name": "app", "image": "app:1", "env": [{"name": "A"}, {"name": "B"}]}]
        }}}})
    }

    #[test]
    fn select_by_name() {
        let paths = pointers(
            r#".spec.template.spec.initContainers[] | select(.name == "injected")"#,
            &pod_spec(),
        );
        assert_eq!(paths.unwrap(), ["/spec/template/spec/initContainers/1"]);
    }

    #[test]
    fn std_functions_and_negative_indices() {
        let doc = pod_spec();
        let paths = pointers(
            r#".spec.template.spec.containers[].env[] | select(.name | startswith("B"))"#,
            &doc,
        );
        assert_eq!(paths.unwrap(), ["/spec/template/spec/containers/0/env/1"]);
        let paths = pointers(r#".spec.template.spec.initContainers[-1].image"#, &doc);
        assert_eq!(
            paths.unwrap(),
            ["/spec/template/spec/initContainers/1/image"]
        );
        let paths = pointers(
            r#".spec.template.spec.initContainers[] | select(.image | test("^side")) | .image"#,
            &doc,
        );
        assert_eq!(
            paths.unwrap(),
            ["/spec/template/spec/initContainers/1/image"]
        );
    }

    #[test]
    fn absent_fields_select_nothing_and_errors_are_reported() {
        assert_eq!(
            pointers(".metadata.annotations.foo", &pod_spec()).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            pointers(".spec.missing[]", &pod_spec()),
            Err(JqFailure::Error)
        );
    }

    #[test]
    fn syntax_and_undefined_errors() {
        let err = JqPaths::compile(".spec | select(").err().unwrap();
        assert!(err.starts_with("jq syntax error"), "{err}");
        let err = JqPaths::compile("nosuchfunction").err().unwrap();
        assert!(err.contains("undefined filter `nosuchfunction`"), "{err}");
        let err = JqPaths::compile(".spec | env").err().unwrap();
        assert!(err.contains("`env`"), "{err}");
    }

    #[test]
    fn runaway_expression_times_out() {
        let jq = JqPaths::compile("def f: f; f").unwrap();
        let doc = pod_spec();
        let input = to_input(&doc).unwrap();
        let started = std::time::Instant::now();
        assert_eq!(
            jq.paths(&doc, &input, Duration::from_millis(200)),
            Err(JqFailure::Timeout)
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        // The stuck worker is abandoned; the next expression gets another.
        let jq = JqPaths::compile(".spec").unwrap();
        assert_eq!(jq.paths(&doc, &input, TIMEOUT).unwrap().len(), 1);
    }
}
