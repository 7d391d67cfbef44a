//! Masking of Secret values in anything shown to users (diffs, patches, normalized objects).

use std::collections::HashMap;

use serde_json::Value;

use crate::normalize::LAST_APPLIED_ANNOTATION;
use crate::object::ResourceId;

const SECRET_FIELDS: &[&str] = &["data", "stringData"];
const FIRST_PLACEHOLDER: &str = "++++++++";
const PLACEHOLDER_GROWTH: &str = "++++";

/// Replaces the values of `data` and `stringData` in `v1/Secret` objects with placeholders,
/// also inside their last-applied annotations. Per key, equal values get equal placeholders and
/// different values different ones, so a diff still shows *that* a value changed, not the value.
/// Objects that are not Secrets are left alone.
pub fn mask_secrets(desired: Option<&mut Value>, live: Option<&mut Value>) {
    let mut docs: Vec<&mut Value> = [desired, live]
        .into_iter()
        .flatten()
        .filter(|doc| ResourceId::of(doc).is_secret())
        .collect();
    let mut annotations: Vec<Value> = docs.iter().map(|doc| last_applied(doc)).collect();

    for field in SECRET_FIELDS {
        let keys: Vec<String> = docs
            .iter()
            .map(|d| &**d)
            .chain(annotations.iter())
            .filter_map(|doc| doc.get(*field)?.as_object())
            .flat_map(|map| map.keys().cloned())
            .collect();
        for key in keys {
            let mut placeholders = Placeholders::default();
            let targets = docs
                .iter_mut()
                .map(|d| &mut **d)
                .chain(annotations.iter_mut());
            for doc in targets {
                if let Some(value) = doc.get_mut(*field).and_then(|m| m.get_mut(&key)) {
                    *value = Value::String(placeholders.for_value(value));
                }
            }
        }
    }

    for (doc, masked) in docs.iter_mut().zip(annotations) {
        store_last_applied(doc, masked);
    }
}

#[derive(Default)]
struct Placeholders {
    seen: HashMap<String, String>,
    next: String,
}

impl Placeholders {
    fn for_value(&mut self, value: &Value) -> String {
        let original = value.to_string();
        if let Some(placeholder) = self.seen.get(&original) {
            return placeholder.clone();
        }
        self.next = if self.next.is_empty() {
            FIRST_PLACEHOLDER.to_owned()
        } else {
            format!("{}{PLACEHOLDER_GROWTH}", self.next)
        };
        self.seen.insert(original, self.next.clone());
        self.next.clone()
    }
}

fn annotation(doc: &Value) -> Option<&Value> {
    doc.pointer("/metadata/annotations")?
        .get(LAST_APPLIED_ANNOTATION)
}

/// The parsed last-applied annotation; `Null` when there is none or it is not JSON.
fn last_applied(doc: &Value) -> Value {
    annotation(doc)
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null)
}

fn store_last_applied(doc: &mut Value, masked: Value) {
    if annotation(doc).is_none() {
        return;
    }
    // An annotation that did not parse cannot be masked field by field: hide it whole.
    let text = match masked {
        Value::Null => FIRST_PLACEHOLDER.to_owned(),
        masked => masked.to_string(),
    };
    if let Some(annotations) = doc
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.insert(LAST_APPLIED_ANNOTATION.to_owned(), Value::String(text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": data})
    }

    #[test]
    fn same_changed_and_added_keys() {
        let mut desired = secret(json!({"same": "c2FtZQ==", "changed": "bmV3", "added": "YWRk"}));
        let mut live = secret(json!({"same": "c2FtZQ==", "changed": "b2xk", "removed": "cm0="}));
        mask_secrets(Some(&mut desired), Some(&mut live));
        assert_eq!(
            desired["data"],
            json!({"same": "++++++++", "changed": "++++++++", "added": "++++++++"})
        );
        assert_eq!(
            live["data"],
            json!({"same": "++++++++", "changed": "++++++++++++", "removed": "++++++++"})
        );
    }

    #[test]
    fn masks_string_data_and_last_applied() {
        let applied =
            json!({"apiVersion": "v1", "kind": "Secret", "stringData": {"pw": "hunter2"}});
        let mut live = secret(json!({"pw": "aHVudGVyMg=="}));
        live["metadata"]["annotations"] = json!({LAST_APPLIED_ANNOTATION: applied.to_string()});
        let mut desired = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "stringData": {"pw": "hunter3"}});
        mask_secrets(Some(&mut desired), Some(&mut live));
        let all = format!("{desired}{live}");
        assert!(!all.contains("hunter"), "{all}");
        assert!(!all.contains("aHVudGVyMg"), "{all}");
        assert_eq!(desired["stringData"]["pw"], "++++++++");
        let masked: Value = serde_json::from_str(
            live["metadata"]["annotations"][LAST_APPLIED_ANNOTATION]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(masked["stringData"]["pw"], "++++++++++++");
    }

    #[test]
    fn unparsable_annotation_is_hidden_whole() {
        let mut live = secret(json!({"k": "dg=="}));
        live["metadata"]["annotations"] = json!({LAST_APPLIED_ANNOTATION: "{not json: dg=="});
        mask_secrets(None, Some(&mut live));
        assert_eq!(
            live["metadata"]["annotations"][LAST_APPLIED_ANNOTATION],
            "++++++++"
        );
    }

    #[test]
    fn other_kinds_are_untouched() {
        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"k": "v"}});
        let before = cm.clone();
        mask_secrets(Some(&mut cm), None);
        assert_eq!(cm, before);
    }
}
