//! `RespectIgnoreDifferences=true`: a sync must not overwrite ignored fields, so the object
//! it applies carries the live values of those fields.

use serde_json::{Map, Value};

use crate::object::ResourceId;
use crate::path::{Step, child, remove_all};
use crate::{DiffError, IgnoreRules};

/// Fields that identify an element of a list, in the order they are tried.
const ELEMENT_KEYS: &[&str] = &[
    "name",
    "uid",
    "containerPort",
    "port",
    "mountPath",
    "devicePath",
    "ip",
    "topologyKey",
];

/// The object to apply: `desired` with every ignored field replaced by its live value (or
/// removed, where the live object does not have it). List elements are matched by their
/// identifying field (`name`, `port`, ...), not by position, so a sidecar someone else injected
/// is carried over whole and a field of an element the manifest dropped is not resurrected.
pub fn respect_ignore_differences(
    desired: &Value,
    live: &Value,
    rules: &IgnoreRules,
) -> Result<Value, DiffError> {
    let id = ResourceId::of_pair(Some(desired), Some(live))?;
    let mut target = desired.clone();
    if rules.is_empty() {
        return Ok(target);
    }
    let desired_paths = rules.paths(&id, desired, Some(live), Some(live))?;
    let mut live_paths = rules.paths(&id, live, Some(desired), Some(live))?;
    remove_all(&mut target, desired_paths);
    // Parents before children, so a carried-over element is in place for its fields.
    live_paths.sort();
    for path in &live_paths {
        transplant(&mut target, live, path);
    }
    Ok(target)
}

/// Copies the live value at `path` into `target`, creating the maps on the way.
fn transplant(target: &mut Value, live: &Value, path: &[Step]) {
    let mut t = target;
    let mut l = live;
    for (i, step) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        let Some(l_child) = child(l, step) else {
            return;
        };
        match step {
            Step::Key(key) => {
                if t.is_null() {
                    *t = Value::Object(Map::new());
                }
                let Value::Object(map) = t else {
                    return;
                };
                if last {
                    map.insert(key.clone(), l_child.clone());
                    return;
                }
                let entry = map.entry(key.clone()).or_insert(Value::Null);
                if entry.is_null() {
                    *entry = empty_like(l_child);
                }
                t = entry;
            }
            Step::Index(index) => {
                if t.is_null() {
                    *t = Value::Array(Vec::new());
                }
                let Value::Array(items) = t else {
                    return;
                };
                match (counterpart(items, l_child, *index), last) {
                    (Some(j), true) => {
                        items[j] = l_child.clone();
                        return;
                    }
                    (Some(j), false) => t = &mut items[j],
                    (None, true) => {
                        items.push(l_child.clone());
                        return;
                    }
                    (None, false) => return,
                }
            }
        }
        l = l_child;
    }
}

/// The index in `items` of the element corresponding to the live element `live_item`, which
/// sits at `index` in the live list.
fn counterpart(items: &[Value], live_item: &Value, index: usize) -> Option<usize> {
    let identity = ELEMENT_KEYS
        .iter()
        .find_map(|key| live_item.get(*key).map(|value| (*key, value)));
    match identity {
        Some((key, value)) => items.iter().position(|item| item.get(key) == Some(value)),
        None if live_item.is_object() || live_item.is_array() => {
            (index < items.len()).then_some(index)
        }
        None => items.iter().position(|item| item == live_item),
    }
}

fn empty_like(value: &Value) -> Value {
    match value {
        Value::Array(_) => Value::Array(Vec::new()),
        _ => Value::Object(Map::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ResourceIgnoreDifferences;
    use serde_json::json;

    fn rules(yaml: &str) -> IgnoreRules {
        let parsed: Vec<ResourceIgnoreDifferences> = serde_yaml::from_str(yaml).unwrap();
        IgnoreRules::new(&parsed).unwrap()
    }

    fn deployment(replicas: i64, containers: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": containers}}}})
    }

    #[test]
    fn keeps_live_values_of_ignored_fields() {
        let desired = deployment(2, json!([{"name": "web", "image": "nginx:2"}]));
        let live = deployment(7, json!([{"name": "web", "image": "nginx:1"}]));
        let r = rules("- group: apps\n  kind: Deployment\n  jsonPointers: [/spec/replicas]\n");
        let out = respect_ignore_differences(&desired, &live, &r).unwrap();
        assert_eq!(
            out,
            deployment(7, json!([{"name": "web", "image": "nginx:2"}]))
        );
    }

    #[test]
    fn ignored_field_absent_live_is_not_applied() {
        let mut desired = deployment(2, json!([]));
        desired["metadata"]["annotations"] = json!({"owned-elsewhere": "x"});
        let live = deployment(2, json!([]));
        let r = rules(
            "- group: apps\n  kind: Deployment\n  jqPathExpressions: ['.metadata.annotations[\"owned-elsewhere\"]']\n",
        );
        let out = respect_ignore_differences(&desired, &live, &r).unwrap();
        assert_eq!(out["metadata"]["annotations"], json!({}));
    }

    #[test]
    fn injected_element_is_carried_over_by_key() {
        let desired = deployment(2, json!([{"name": "web", "image": "nginx:2"}]));
        let live = deployment(
            2,
            json!([
                {"name": "proxy", "image": "proxy:1"},
                {"name": "web", "image": "nginx:1"}
            ]),
        );
        let r = rules(
            "- group: apps\n  kind: Deployment\n  jqPathExpressions: \
            ['.spec.template.spec.containers[] | select(.name == \"proxy\")']\n",
        );
        let out = respect_ignore_differences(&desired, &live, &r).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "web", "image": "nginx:2"}, {"name": "proxy", "image": "proxy:1"}])
        );
    }

    #[test]
    fn managed_fields_rule_carries_over_other_managers_values() {
        let desired = deployment(2, json!([{"name": "web", "image": "nginx:2"}]));
        let mut live = deployment(9, json!([{"name": "web", "image": "nginx:1"}]));
        live["metadata"]["managedFields"] = json!([{"manager": "hpa", "operation": "Update",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]);
        let r = rules("- group: apps\n  kind: Deployment\n  managedFieldsManagers: [hpa]\n");
        let out = respect_ignore_differences(&desired, &live, &r).unwrap();
        assert_eq!(
            out,
            deployment(9, json!([{"name": "web", "image": "nginx:2"}]))
        );
    }

    #[test]
    fn dropped_element_is_not_resurrected() {
        let desired = deployment(2, json!([{"name": "web", "image": "nginx:2"}]));
        let live = deployment(
            2,
            json!([
                {"name": "web", "image": "nginx:1"},
                {"name": "old", "image": "old:1"}
            ]),
        );
        let r = rules(
            "- group: apps\n  kind: Deployment\n  jsonPointers: [/spec/template/spec/containers/1/image]\n",
        );
        let out = respect_ignore_differences(&desired, &live, &r).unwrap();
        assert_eq!(out, desired);
    }
}
