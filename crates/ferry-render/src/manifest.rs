//! Parsing manifest streams (YAML or JSON, one or many documents) into Kubernetes objects.

use serde_json::Value;

use crate::error::ErrorKind;

/// Parses a YAML (or JSON) stream where every non-empty document must be a Kubernetes object,
/// as tool output (helm, kustomize, plugins) is. `what` names the stream in errors.
pub(crate) fn parse_stream(text: &str, what: &str) -> Result<Vec<Value>, ErrorKind> {
    let mut out = Vec::new();
    for (i, doc) in documents(text, what)?.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        check_object(&doc).map_err(|message| ErrorKind::Manifest {
            file: what.to_string(),
            message: format!("document {}: {message}", i + 1),
        })?;
        out.push(doc);
    }
    Ok(out)
}

/// Every document of a YAML stream as JSON values (`null` for empty documents), with YAML merge
/// keys applied as Kubernetes' YAML reader does.
pub(crate) fn documents(text: &str, what: &str) -> Result<Vec<Value>, ErrorKind> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let err = |e: String| ErrorKind::Manifest {
            file: what.to_string(),
            message: format!("document {}: {e}", i + 1),
        };
        let mut yaml = serde_yaml::Value::deserialize(doc).map_err(|e| err(e.to_string()))?;
        yaml.apply_merge().map_err(|e| err(e.to_string()))?;
        out.push(serde_json::to_value(yaml).map_err(|e| err(e.to_string()))?);
    }
    Ok(out)
}

/// A Kubernetes object is a mapping with non-empty string `apiVersion` and `kind`.
pub(crate) fn check_object(v: &Value) -> Result<(), String> {
    let Some(map) = v.as_object() else {
        return Err(format!(
            "expected a Kubernetes object, found {}",
            type_name(v)
        ));
    };
    for field in ["apiVersion", "kind"] {
        match map.get(field) {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(other) => {
                return Err(format!(
                    "`{field}` must be a non-empty string, found {}",
                    type_name(other)
                ));
            }
            None => {
                return Err(format!(
                    "object has no `{field}`; not a Kubernetes manifest"
                ));
            }
        }
    }
    Ok(())
}

/// Replaces `List` objects (`kind: *List` with an `items` array) by their items, and drops lists
/// whose `items` is null, as Argo CD does. Items must be objects themselves.
pub(crate) fn flatten_lists(objects: Vec<Value>, what: &str) -> Result<Vec<Value>, ErrorKind> {
    let mut out = Vec::with_capacity(objects.len());
    for obj in objects {
        let is_list = obj
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"));
        match obj.get("items") {
            Some(Value::Array(_)) if is_list => {
                let Value::Object(mut map) = obj else {
                    unreachable!("checked")
                };
                let Some(Value::Array(items)) = map.remove("items") else {
                    unreachable!("checked")
                };
                for (i, item) in items.into_iter().enumerate() {
                    check_object(&item).map_err(|message| ErrorKind::Manifest {
                        file: what.to_string(),
                        message: format!("List item {i}: {message}"),
                    })?;
                    out.push(item);
                }
            }
            Some(Value::Null) if is_list => {}
            _ => out.push(obj),
        }
    }
    Ok(out)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn multi_document_stream_skips_empty_documents() {
        let objs = parse_stream(
            "---\n# Source: x\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\n---\napiVersion: v1\nkind: Secret\n",
            "out",
        )
        .unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[1]["kind"], "Secret");
    }

    #[test]
    fn non_objects_are_errors_naming_the_document() {
        let err =
            parse_stream("apiVersion: v1\nkind: A\n---\nfoo: bar\n", "helm output").unwrap_err();
        assert_eq!(
            err.to_string(),
            "helm output: document 2: object has no `apiVersion`; not a Kubernetes manifest"
        );
        let err = parse_stream("- a\n", "x").unwrap_err();
        assert!(err.to_string().contains("found an array"));
        let err = parse_stream("a: [\n", "bad.yaml").unwrap_err();
        assert!(
            err.to_string().starts_with("bad.yaml: document 1:"),
            "{err}"
        );
    }

    #[test]
    fn merge_keys_are_applied() {
        let objs = parse_stream(
            "apiVersion: v1\nkind: ConfigMap\nbase: &b {x: 1}\ndata:\n  <<: *b\n  y: 2\n",
            "m",
        )
        .unwrap();
        assert_eq!(objs[0]["data"], json!({"x": 1, "y": 2}));
    }

    #[test]
    fn lists_are_flattened_and_null_lists_dropped() {
        let objs = vec![
            json!({"apiVersion": "v1", "kind": "List", "items": [
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}},
                {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b"}}]}),
            json!({"apiVersion": "v1", "kind": "ConfigMapList", "items": null}),
            json!({"apiVersion": "x/v1", "kind": "Thing", "items": [1]}),
        ];
        let flat = flatten_lists(objs, "f").unwrap();
        assert_eq!(flat.len(), 3);
        assert_eq!(flat[1]["kind"], "Secret");
        assert_eq!(flat[2]["kind"], "Thing");
        let err = flatten_lists(
            vec![json!({"apiVersion": "v1", "kind": "List", "items": [{"a": 1}]})],
            "f",
        )
        .unwrap_err();
        assert!(err.to_string().contains("List item 0"), "{err}");
    }
}
