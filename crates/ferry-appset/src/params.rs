//! Parameter sets: what a generator produces and a template consumes.
//!
//! With fasttemplate, parameters are flat (`path.basename`, `metadata.labels.env`) and only
//! string values are substituted; with Go templates they are nested (`.path.basename`).

use serde_json::{Map, Value};

/// One parameter set.
pub type Params = Map<String, Value>;

/// `params` flattened to dotted keys (`a.b`, `list.0`) with Go's `%v` rendering of each value,
/// as Argo CD matches generator selectors against them.
pub fn flatten(params: &Params) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for (key, value) in params {
        flatten_into(&mut out, key, value);
    }
    out
}

fn flatten_into(out: &mut std::collections::BTreeMap<String, String>, key: &str, value: &Value) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                flatten_into(out, &format!("{key}.{k}"), v);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                flatten_into(out, &format!("{key}.{i}"), v);
            }
        }
        other => {
            out.insert(key.to_string(), go_format(other));
        }
    }
}

/// A value as Go's `fmt.Sprintf("%v")` prints what `encoding/json` decoded.
pub fn go_format(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            // JSON numbers decode to float64 in Go: 3 prints as 3, 1e21 as 1e+21.
            Some(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            Some(f) => f.to_string(),
            None => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let inner: Vec<_> = items.iter().map(go_format).collect();
            format!("[{}]", inner.join(" "))
        }
        Value::Object(map) => {
            let inner: Vec<_> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_format(v)))
                .collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}

/// Argo CD's `normalize`: lower case, characters other than `-a-z0-9.` replaced by `-`, at most
/// 253 bytes, leading and trailing `-` and `.` trimmed: a valid DNS subdomain name.
pub fn sanitize_name(name: &str) -> String {
    let lowered = name.to_lowercase();
    let mut out: String = lowered
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '.' => c,
            _ => '-',
        })
        .collect();
    if out.len() > 253 {
        let mut end = 253;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out.trim_matches(|c| c == '-' || c == '.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattening_matches_argo_cds() {
        let params = json!({
            "name": "prod",
            "replicas": 3,
            "ratio": 1.5,
            "enabled": true,
            "metadata": {"labels": {"env": "prod"}},
            "segments": ["a", "b"],
        });
        let flat = flatten(params.as_object().unwrap());
        let expected: Vec<(&str, &str)> = vec![
            ("enabled", "true"),
            ("metadata.labels.env", "prod"),
            ("name", "prod"),
            ("ratio", "1.5"),
            ("replicas", "3"),
            ("segments.0", "a"),
            ("segments.1", "b"),
        ];
        let flat: Vec<_> = flat.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(flat, expected);
    }

    #[test]
    fn normalize_makes_dns_names() {
        assert_eq!(sanitize_name("Engineering_Dev"), "engineering-dev");
        assert_eq!(sanitize_name("-my.app-"), "my.app");
        assert_eq!(sanitize_name(&"a".repeat(300)).len(), 253);
    }
}
