//! Go templates (`goTemplate: true`), on gtmpl (Go's text/template for Rust) with the Sprig
//! functions of [`super::sprig`].

use std::collections::HashMap;

use gtmpl::{Context, Template, Value};
use serde_json::{Map, Number};

use super::TemplateError;
use super::sprig::FUNCTIONS;

/// What Go prints for a missing map key with the default `missingkey` option.
const NO_VALUE: &str = "<no value>";

/// The parsed `goTemplateOptions`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GoOptions {
    /// `missingkey=error`: a reference to a missing key fails the render.
    pub missing_key_error: bool,
}

impl GoOptions {
    pub fn parse(options: &[String]) -> Result<Self, TemplateError> {
        let mut parsed = Self::default();
        for option in options {
            match option.as_str() {
                "missingkey=error" => parsed.missing_key_error = true,
                "missingkey=default" | "missingkey=invalid" | "missingkey=zero" => {
                    parsed.missing_key_error = false
                }
                other => {
                    return Err(TemplateError::Invalid {
                        template: String::new(),
                        reason: format!("unrecognized goTemplateOptions entry {other:?}"),
                    });
                }
            }
        }
        Ok(parsed)
    }
}

/// Renders one string as a Go template with `params` as dot.
pub fn render(text: &str, params: &Value, options: GoOptions) -> Result<String, TemplateError> {
    // Without an action a template is its own text: most strings of a template have none.
    if !text.contains("{{") {
        return Ok(text.to_string());
    }
    if let Some(reason) = unclosed_action(text) {
        return Err(TemplateError::Parse {
            template: text.to_string(),
            reason,
        });
    }
    let mut template = Template::default();
    template.add_funcs(FUNCTIONS);
    template.parse(text).map_err(|e| {
        let reason = e.to_string();
        let reason = match undefined_function(&reason) {
            Some(name) => format!(
                "function {name:?} is not supported (ferry's Go templates have text/template's \
                 built-ins and these Sprig functions: {})",
                FUNCTIONS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => reason,
        };
        TemplateError::Parse {
            template: text.to_string(),
            reason,
        }
    })?;
    let out = template
        .render(&Context::from(params.clone()))
        .map_err(|e| TemplateError::Execute {
            template: text.to_string(),
            reason: e.to_string(),
        })?;
    // gtmpl has no missingkey option; a missing key prints as Go's "<no value>", which the
    // parameters themselves never hold unless a generator produced that very text.
    if options.missing_key_error && out.contains(NO_VALUE) && !text.contains(NO_VALUE) {
        return Err(TemplateError::Execute {
            template: text.to_string(),
            reason: "map has no entry for a key the template uses (missingkey=error)".into(),
        });
    }
    Ok(out)
}

/// gtmpl never returns from some templates that end inside an action (`{{ .a `), so those
/// are refused before it sees them: every `{{` needs its `}}`, outside quotes and comments.
fn unclosed_action(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let mut chars = rest[start + 2..].char_indices().peekable();
        let mut closed = None;
        while let Some((i, c)) = chars.next() {
            let until = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>, end: char| {
                let escapes = end != '`';
                while let Some((_, c)) = chars.next() {
                    if c == end {
                        return true;
                    }
                    if escapes && c == '\\' {
                        chars.next();
                    }
                }
                false
            };
            let terminated = match c {
                '"' | '`' | '\'' => until(&mut chars, c),
                '/' if chars.peek().map(|(_, c)| *c) == Some('*') => {
                    chars.next();
                    let mut previous = ' ';
                    let mut found = false;
                    for (_, c) in chars.by_ref() {
                        if previous == '*' && c == '/' {
                            found = true;
                            break;
                        }
                        previous = c;
                    }
                    found
                }
                '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                    closed = Some(start + 2 + i + 2);
                    break;
                }
                _ => true,
            };
            if !terminated {
                return Some("unterminated quoted string or comment in action".into());
            }
        }
        match closed {
            Some(end) => rest = &rest[end..],
            None => return Some("unclosed action".into()),
        }
    }
    None
}

fn undefined_function(message: &str) -> Option<&str> {
    let start = message.find("function ")? + "function ".len();
    let rest = &message[start..];
    rest.strip_suffix(" not defined")
        .or_else(|| rest.find(" not defined").map(|end| &rest[..end]))
}

/// JSON parameters as gtmpl values: objects are maps, so `.a.b` and `index .a "b"` both work.
pub fn from_json(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::from(i),
            (_, Some(u), _) => Value::from(u),
            (_, _, Some(f)) => Value::from(f),
            _ => Value::Nil,
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(items) => Value::Array(items.iter().map(from_json).collect()),
        serde_json::Value::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| (k.clone(), from_json(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// A gtmpl value as JSON (for `toJson`, `toYaml`).
pub fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::NoValue | Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Number(n) => n
            .as_i64()
            .map(Number::from)
            .or_else(|| n.as_u64().map(Number::from))
            .or_else(|| n.as_f64().and_then(Number::from_f64))
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::Array(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Value::Map(map) | Value::Object(map) => {
            let mut out = Map::new();
            let mut keys: Vec<_> = map.keys().collect();
            keys.sort();
            for key in keys {
                out.insert(key.clone(), to_json(&map[key]));
            }
            serde_json::Value::Object(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn go(text: &str, params: serde_json::Value) -> Result<String, TemplateError> {
        render(text, &from_json(&params), GoOptions::default())
    }

    fn strict(text: &str, params: serde_json::Value) -> Result<String, TemplateError> {
        let options = GoOptions::parse(&["missingkey=error".into()]).unwrap();
        render(text, &from_json(&params), options)
    }

    /// The git directory generator's parameters, as Argo CD's docs use them.
    #[test]
    fn path_parameters() {
        let params = json!({"path": {
            "path": "apps/web",
            "basename": "web",
            "basenameNormalized": "web",
            "segments": ["apps", "web"],
        }});
        assert_eq!(go("{{.path.basename}}", params.clone()).unwrap(), "web");
        assert_eq!(
            go("{{ index .path.segments 0 }}", params.clone()).unwrap(),
            "apps"
        );
        assert_eq!(go("{{.path.path}}-x", params).unwrap(), "apps/web-x");
    }

    #[test]
    fn sprig_functions() {
        let params = json!({"name": "Engineering_Dev", "values": {"env": ""}, "n": 3});
        let cases = [
            ("{{ .name | lower }}", "engineering_dev"),
            ("{{ .name | normalize }}", "engineering-dev"),
            ("{{ .values.env | default \"staging\" }}", "staging"),
            ("{{ default \"x\" .name }}", "Engineering_Dev"),
            ("{{ trimPrefix \"Engineering_\" .name }}", "Dev"),
            ("{{ replace \"_\" \"-\" .name | upper }}", "ENGINEERING-DEV"),
            ("{{ trunc 3 .name }}", "Eng"),
            ("{{ if hasPrefix \"Eng\" .name }}yes{{ end }}", "yes"),
            ("{{ .name | quote }}", "\"Engineering_Dev\""),
            ("{{ dict \"a\" .n | toJson }}", "{\"a\":3}"),
            ("{{ splitList \"_\" .name | last }}", "Dev"),
            ("{{ ternary \"on\" \"off\" (eq .n 3) }}", "on"),
            ("{{ printf \"%s-%d\" .name .n }}", "Engineering_Dev-3"),
        ];
        for (template, expected) in cases {
            assert_eq!(
                go(template, params.clone()).unwrap(),
                expected,
                "{template}"
            );
        }
    }

    #[test]
    fn missing_keys() {
        let params = json!({"name": "web"});
        assert_eq!(go("{{.nope}}", params.clone()).unwrap(), "<no value>");
        let err = strict("{{.name}}-{{.nope}}", params.clone())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("missingkey=error") && err.contains("{{.nope}}"),
            "{err}"
        );
        assert_eq!(strict("{{.name}}", params).unwrap(), "web");
        let err = GoOptions::parse(&["missingkey=maybe".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("missingkey=maybe"), "{err}");
    }

    #[test]
    fn unsupported_functions_are_named() {
        let err = go("{{ .name | slugify }}", json!({"name": "x"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"slugify\" is not supported"), "{err}");
    }

    /// gtmpl loops forever on these; they must be errors, quickly.
    #[test]
    fn unclosed_actions_are_refused() {
        for text in [
            "{{ .name ",
            "{{ .a }}{{ .b ",
            "{{ .a | ",
            "{{ 1.",
            "{{ .a \"}}\" ",
            "{{/* }} ",
        ] {
            let err = go(text, json!({})).unwrap_err().to_string();
            assert!(
                err.contains("unclosed") || err.contains("unterminated"),
                "{text}: {err}"
            );
        }
        assert_eq!(go("{{ \"}}\" }}", json!({})).unwrap(), "}}");
        assert_eq!(go("{{/* a }} */}}x", json!({})).unwrap(), "x");
    }
}
