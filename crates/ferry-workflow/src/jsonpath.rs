//! `valueFrom.jsonPath` of a resource template's output: kubectl's JSONPath template (upstream
//! runs `kubectl get -o jsonpath=...`), e.g. `{.metadata.name}` or `name={.metadata.name}`.
//! Each `{...}` is an RFC 9535 JSONPath query (jsonpath-rust) with kubectl's leading `$`
//! optional; its results are written as kubectl does: strings bare, other values as JSON,
//! several separated by spaces. kubectl's `range`/`end` blocks are refused by name.

use jsonpath_rust::JsonPath;
use serde_json::Value;

pub fn render(template: &str, object: &Value) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map(|e| start + e)
            .ok_or_else(|| format!("unclosed '{{' in {template:?}"))?;
        let expression = rest[start + 1..end].trim();
        out.push_str(&query(expression)?(object)?);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

type Query = Box<dyn Fn(&Value) -> Result<String, String>>;

fn query(expression: &str) -> Result<Query, String> {
    let word = expression.split_whitespace().next().unwrap_or_default();
    if matches!(word, "range" | "end") {
        return Err(format!("kubectl's {word:?} blocks are not supported"));
    }
    let path = if expression.starts_with('$') {
        expression.to_string()
    } else {
        format!("${expression}")
    };
    Ok(Box::new(move |object: &Value| {
        let found = object
            .query(&path)
            .map_err(|err| format!("invalid JSONPath {path:?}: {err}"))?;
        Ok(found
            .into_iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" "))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kubectl_templates() {
        let object = json!({"metadata": {"name": "cm", "labels": {"a": "1"}},
                            "spec": {"replicas": 3, "ports": [{"port": 80}, {"port": 443}]}});
        assert_eq!(render("{.metadata.name}", &object).unwrap(), "cm");
        assert_eq!(render("{$.metadata.name}", &object).unwrap(), "cm");
        assert_eq!(
            render("n={.metadata.name}/{.spec.replicas}", &object).unwrap(),
            "n=cm/3"
        );
        assert_eq!(
            render("{.metadata.labels}", &object).unwrap(),
            r#"{"a":"1"}"#
        );
        assert_eq!(render("{.spec.ports[*].port}", &object).unwrap(), "80 443");
        assert_eq!(
            render("{.spec.ports[?(@.port > 100)].port}", &object).unwrap(),
            "443"
        );
        assert_eq!(render("{.status.missing}", &object).unwrap(), "");
        assert!(render("{.metadata.name", &object).is_err());
        assert!(
            render("{range .items[*]}{.x}{end}", &object)
                .unwrap_err()
                .contains("range")
        );
    }
}
