//! expr-lang expressions (as Argo's projects evaluate them) over JSON: a scope's fields are the
//! variables, results convert back to JSON. WorkflowEventBindings' selectors and parameters use
//! it here, `{{=...}}` template tags (with Argo Workflows' functions, [`crate::expr_tag`]) and
//! Argo CD's deep-link conditions in ferry-server.

use serde_json::Value as Json;

pub use expr_lang::{Context, Environment, Value};

/// The variables of an expression: each field of `scope` (a JSON object) by its name.
pub fn context(scope: &Json) -> Context {
    let mut context = Context::default();
    if let Json::Object(fields) = scope {
        for (key, value) in fields {
            context.insert(key.clone(), from_json(value));
        }
    }
    context
}

pub fn evaluate(expression: &str, context: &Context) -> Result<Value, String> {
    expr_lang::eval(expression, context).map_err(|err| err.to_string())
}

/// [`evaluate`] with the functions of `environment` beside the language's built-ins.
pub fn evaluate_with(
    environment: &Environment,
    expression: &str,
    context: &Context,
) -> Result<Value, String> {
    environment
        .eval(expression, context)
        .map_err(|err| err.to_string())
}

pub fn to_json(value: &Value) -> Json {
    match value {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Integer(n) => Json::from(*n),
        Value::Float(n) => Json::from(*n),
        Value::String(s) => Json::String(s.clone()),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(fields) => Json::Object(
            fields
                .iter()
                .map(|(key, value)| (key.clone(), to_json(value)))
                .collect(),
        ),
        other => Json::String(other.to_string()),
    }
}

pub fn from_json(value: &Json) -> Value {
    match value {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => n.as_i64().map_or_else(
            || Value::Float(n.as_f64().unwrap_or_default()),
            Value::Integer,
        ),
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(from_json).collect()),
        Json::Object(fields) => Value::Map(
            fields
                .iter()
                .map(|(key, value)| (key.clone(), from_json(value)))
                .collect(),
        ),
    }
}
