//! `withItems` / `withParam`: one node per item, named `name(index:item)` as upstream.

use ferry_types::workflow::Sequence;
use serde_json::Value;

use super::Op;
use crate::expr::{self, Scope};

impl Op<'_> {
    /// The nodes a step or task fans out to: `(name, display name, item tags)`; itself alone
    /// without `withItems`/`withParam`.
    #[allow(clippy::type_complexity)]
    pub(super) fn expand(
        &self,
        name: &str,
        display: &str,
        items: &Option<Vec<Value>>,
        param: &Option<String>,
        sequence: &Option<Sequence>,
        scope: &Scope,
    ) -> Vec<(String, String, Result<Scope, String>)> {
        let items = match (items, param) {
            (Some(items), _) => items.clone(),
            (None, None) if sequence.is_some() => {
                let sequence = sequence.as_ref().expect("checked");
                match crate::sequence::expand(sequence, scope) {
                    Ok(items) => items.into_iter().map(Value::String).collect(),
                    Err(message) => return vec![(name.into(), display.into(), Err(message))],
                }
            }
            (None, Some(param)) => {
                let parsed = expr::substitute(param, scope).and_then(|text| {
                    serde_json::from_str::<Vec<Value>>(&text).map_err(|err| {
                        format!("withParam value could not be parsed as a JSON list: {text}: {err}")
                    })
                });
                match parsed {
                    Ok(items) => items,
                    Err(message) => return vec![(name.into(), display.into(), Err(message))],
                }
            }
            (None, None) => return vec![(name.into(), display.into(), Ok(Scope::new()))],
        };
        items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let shown = item_display(item);
                let mut tags = Scope::new();
                tags.insert("item".into(), item_text(item));
                if let Value::Object(fields) = item {
                    for (key, value) in fields {
                        tags.insert(format!("item.{key}"), item_text(value));
                    }
                }
                (
                    format!("{name}({index}:{shown})"),
                    format!("{display}({index}:{shown})"),
                    Ok(tags),
                )
            })
            .collect()
    }
}

/// `{{item}}`: strings as they are, anything else as JSON.
fn item_text(item: &Value) -> String {
    match item {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An item in a node's name: maps as `key:value,...` (sorted), as upstream.
fn item_display(item: &Value) -> String {
    match item {
        Value::Object(fields) => fields
            .iter()
            .map(|(k, v)| format!("{k}:{}", item_text(v)))
            .collect::<Vec<_>>()
            .join(","),
        other => item_text(other),
    }
}
