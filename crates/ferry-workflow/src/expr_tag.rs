//! Expression tags, `{{=...}}` (upstream's `kindExpression`): an expr-lang expression over the
//! tags' scope, evaluated by [`crate::expr_json`] with the functions upstream adds — `asInt`,
//! `asFloat`, `jsonpath`, `toJson` and `sprig.*` ([`crate::sprig`]). Dotted scope keys become
//! nested maps (`inputs.parameters['my-param']`), a key dropped where a longer one nests under
//! it, as upstream's expansion. The result is written as upstream writes it: a string as it is,
//! anything else as Go's JSON encoding of it.

use std::sync::LazyLock;

use expr_lang::Error;
use jsonpath_rust::JsonPath;
use jsonpath_rust::parser::model::{Segment, Selector};
use serde_json::{Map, Value as Json};

use crate::expr::Scope;
use crate::expr_json::{self, Environment, Value};
use crate::sprig;

static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut environment = Environment::new();
    // Upstream's aliases of the built-in conversions, kept for older workflows.
    environment.add_function("asInt", |call| {
        call.env.eval_func(call.ctx, "int", call.args, None)
    });
    environment.add_function("asFloat", |call| {
        call.env.eval_func(call.ctx, "float", call.args, None)
    });
    environment.add_function("toJson", |call| match call.args.as_slice() {
        [value] => Ok(Value::String(go_json(&expr_json::to_json(value)))),
        args => Err(arity("toJson", 1, args.len())),
    });
    environment.add_function("jsonpath", |call| match call.args.as_slice() {
        [Value::String(json), Value::String(path)] => jsonpath(json, path)
            .map(|found| expr_json::from_json(&found))
            .map_err(Error::ExprError),
        _ => Err(Error::ExprError(
            "jsonpath(json, path) takes two strings".into(),
        )),
    });
    sprig::register(&mut environment);
    environment
});

pub(crate) fn arity(name: &str, expected: usize, got: usize) -> Error {
    Error::ExprError(format!(
        "invalid number of arguments for {name} (expected {expected}, got {got})"
    ))
}

/// The text an expression tag's `expression` (after the `=`) stands for in `scope`.
pub fn evaluate(expression: &str, scope: &Scope) -> Result<String, String> {
    let expression = sprig::calls_to_functions(expression)
        .map_err(|err| format!("failed to evaluate expression: {err}"))?;
    let context = expr_json::context(&nested(scope));
    let value = expr_json::evaluate_with(&ENVIRONMENT, &expression, &context)
        .map_err(|err| format!("failed to evaluate expression: {err}"))?;
    match expr_json::to_json(&value) {
        Json::Null => Err(format!("failed to evaluate expression {expression:?}")),
        Json::String(text) => Ok(text),
        other => Ok(go_json(&other)),
    }
}

/// The scope as nested maps: `inputs.parameters.x` → `{"inputs": {"parameters": {"x": ...}}}`.
fn nested(scope: &Scope) -> Json {
    let mut root = Map::new();
    let mut keys = scope.iter().peekable();
    while let Some((key, value)) = keys.next() {
        // Sorted, so a key with nested ones is followed by one of them.
        if keys.peek().is_some_and(|(next, _)| {
            next.strip_prefix(key.as_str())
                .is_some_and(|r| r.starts_with('.'))
        }) {
            continue;
        }
        let mut parts = key.split('.').peekable();
        let mut map = &mut root;
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                map.insert(part.to_string(), Json::String(value.clone()));
                break;
            }
            let entry = map
                .entry(part.to_string())
                .or_insert_with(|| Json::Object(Map::new()));
            if !entry.is_object() {
                *entry = Json::Object(Map::new());
            }
            map = entry.as_object_mut().expect("an object");
        }
    }
    Json::Object(root)
}

/// `jsonpath(json, path)`: an RFC 9535 query of the JSON text; a singular query (names and
/// indexes only) gives its value, any other the list of what it found, as upstream's library.
fn jsonpath(json: &str, path: &str) -> Result<Json, String> {
    let document: Json =
        serde_json::from_str(json).map_err(|err| format!("jsonpath: invalid JSON: {err}"))?;
    let query = jsonpath_rust::parser::parse_json_path(path)
        .map_err(|err| format!("jsonpath: invalid path {path:?}: {err}"))?;
    let singular = query.segments.iter().all(|segment| {
        matches!(
            segment,
            Segment::Selector(Selector::Name(_) | Selector::Index(_))
        )
    });
    let found = document
        .query(path)
        .map_err(|err| format!("jsonpath: invalid path {path:?}: {err}"))?;
    if !singular {
        return Ok(Json::Array(found.into_iter().cloned().collect()));
    }
    match found.as_slice() {
        [value] => Ok((*value).clone()),
        _ => Err(format!("jsonpath: {path:?} found nothing")),
    }
}

/// Go's `json.Marshal`: compact, keys sorted, `<`, `>`, `&` escaped as `\u003c`…, numbers
/// as Go writes a float64 (`10`, `0.5`, `1e+21`).
pub(crate) fn go_json(value: &Json) -> String {
    let mut out = String::new();
    write_go_json(value, &mut out);
    out
}

fn write_go_json(value: &Json, out: &mut String) {
    match value {
        Json::String(s) => {
            let quoted = Json::String(s.clone()).to_string();
            out.push_str(
                &quoted
                    .replace('<', "\\u003c")
                    .replace('>', "\\u003e")
                    .replace('&', "\\u0026")
                    .replace('\u{2028}', "\\u2028")
                    .replace('\u{2029}', "\\u2029"),
            );
        }
        Json::Number(n) if n.is_f64() => out.push_str(&go_float(n.as_f64().unwrap_or_default())),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(item, out);
            }
            out.push(']');
        }
        Json::Object(fields) => {
            out.push('{');
            // Go sorts a map's keys (serde_json may keep insertion order).
            let mut sorted: Vec<_> = fields.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            for (i, (key, item)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(&Json::String(key.clone()), out);
                out.push(':');
                write_go_json(item, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A float64 as encoding/json writes it: shortest digits, an exponent only below 1e-6 or from
/// 1e21 on (`1e-7`, `1e+21`).
pub(crate) fn go_float(f: f64) -> String {
    let magnitude = f.abs();
    if magnitude != 0.0 && !(1e-6..1e21).contains(&magnitude) {
        let text = format!("{f:e}");
        return match text.split_once('e') {
            Some((mantissa, exponent)) if !exponent.starts_with('-') => {
                format!("{mantissa}e+{exponent}")
            }
            _ => text,
        };
    }
    format!("{f}")
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
    fn expressions_see_the_scope_as_nested_maps() {
        let s = scope(&[
            ("inputs.parameters.x", "41"),
            ("inputs.parameters.my-param", "hyphen"),
            ("inputs.parameters", "[...]"),
            ("steps.flip.outputs.result", "heads"),
            ("workflow.name", "wf"),
            ("item", "{\"a\":1}"),
            ("item.a", "1"),
        ]);
        assert_eq!(
            evaluate("asInt(inputs.parameters.x) + 1", &s).unwrap(),
            "42"
        );
        assert_eq!(
            evaluate("inputs.parameters['my-param']", &s).unwrap(),
            "hyphen"
        );
        assert_eq!(
            evaluate("steps.flip.outputs.result == 'heads' ? 'won' : 'lost'", &s).unwrap(),
            "won"
        );
        assert_eq!(
            evaluate("item.a + '!'", &s).unwrap(),
            "1!",
            "item is the map"
        );
        assert_eq!(evaluate("workflow.name", &s).unwrap(), "wf");
        // Parameters are strings, as upstream's: adding a number needs asInt.
        assert!(
            evaluate("inputs.parameters.x + 1", &s)
                .unwrap_err()
                .starts_with("failed to evaluate expression: ")
        );
    }

    #[test]
    fn results_are_written_as_upstream_writes_them() {
        let s = scope(&[("inputs.parameters.f", "2.5")]);
        assert_eq!(
            evaluate("asFloat(inputs.parameters.f) * 2", &s).unwrap(),
            "5"
        );
        assert_eq!(
            evaluate("asFloat(inputs.parameters.f) / 2", &s).unwrap(),
            "1.25"
        );
        assert_eq!(evaluate("10 / 4", &s).unwrap(), "2.5");
        assert_eq!(evaluate("[1, 2]", &s).unwrap(), "[1,2]");
        assert_eq!(
            evaluate("toJson(filter([1, 3], {# > 1}))", &s).unwrap(),
            "[3]"
        );
        assert_eq!(
            evaluate("{b: 'x<y', a: true}", &s).unwrap(),
            r#"{"a":true,"b":"x\u003cy"}"#
        );
        assert_eq!(evaluate("'a<b'", &s).unwrap(), "a<b", "strings as they are");
        assert_eq!(evaluate("1 > 2", &s).unwrap(), "false");
        assert_eq!(evaluate("'v1.2' matches '^v[0-9]'", &s).unwrap(), "true");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1e-7), "1e-7");
        assert_eq!(go_float(-0.000001), "-0.000001");
        assert_eq!(
            evaluate("nil", &s).unwrap_err(),
            "failed to evaluate expression \"nil\""
        );
        assert!(
            evaluate("1 +", &s)
                .unwrap_err()
                .starts_with("failed to evaluate expression: ")
        );
        assert!(evaluate("nope.x", &s).unwrap_err().contains("nope"));
    }

    #[test]
    fn jsonpath_gives_a_singular_querys_value_else_a_list() {
        let s = scope(&[(
            "workflow.parameters.config",
            r#"{"a": "1", "temps": [34, 27], "n": {"deep": true}}"#,
        )]);
        let eval = |e: &str| evaluate(e, &s);
        assert_eq!(
            eval("jsonpath(workflow.parameters.config, '$.a')").unwrap(),
            "1"
        );
        assert_eq!(
            eval("jsonpath(workflow.parameters.config, '$.temps')").unwrap(),
            "[34,27]"
        );
        assert_eq!(
            eval("jsonpath(workflow.parameters.config, '$.temps[1]') + 1").unwrap(),
            "28"
        );
        assert_eq!(
            eval("jsonpath(workflow.parameters.config, '$.temps[*]')").unwrap(),
            "[34,27]"
        );
        assert_eq!(
            eval("jsonpath(workflow.parameters.config, '$..deep')").unwrap(),
            "[true]"
        );
        assert!(
            eval("jsonpath(workflow.parameters.config, '$.missing')")
                .unwrap_err()
                .contains("found nothing")
        );
        assert!(
            eval("jsonpath('not json', '$.a')")
                .unwrap_err()
                .contains("invalid JSON")
        );
    }
}
