//! Normalization of fields the server owns or represents differently from the manifests.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::object::ResourceId;
use crate::{DiffError, IgnoreStatus};

pub(crate) const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Metadata the API server maintains; it is never drift, and an apply body must not carry it.
const SERVER_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Drops server-maintained metadata.
pub(crate) fn strip_server_metadata(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in SERVER_METADATA {
            meta.remove(*field);
        }
    }
}

/// Drops server-maintained metadata, the last-applied annotation and, when `status` is
/// ignored for the kind, `status`.
pub(crate) fn strip_server_fields(obj: &mut Value, id: &ResourceId, ignore_status: IgnoreStatus) {
    strip_server_metadata(obj);
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let drop_status = match ignore_status {
        IgnoreStatus::All => true,
        IgnoreStatus::Crds => {
            id.group == "apiextensions.k8s.io" && id.kind == "CustomResourceDefinition"
        }
        IgnoreStatus::Never => false,
    };
    if drop_status {
        map.remove("status");
    }
    if let Some(annotations) = map
        .get_mut("metadata")
        .and_then(|meta| meta.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
}

/// Drops the `rules` of a ClusterRole that has an `aggregationRule`: the aggregation
/// controller fills them from the selected roles.
pub(crate) fn drop_aggregated_rules(obj: &mut Value, id: &ResourceId) {
    if id.group != "rbac.authorization.k8s.io" || id.kind != "ClusterRole" {
        return;
    }
    if let Some(map) = obj.as_object_mut()
        && map.get("aggregationRule").is_some_and(Value::is_object)
    {
        map.remove("rules");
    }
}

/// Folds a Secret's `stringData` into base64 `data`, as the API server does on write.
pub(crate) fn fold_string_data(obj: &mut Value, id: &ResourceId) -> Result<(), DiffError> {
    let Some(map) = obj.as_object_mut() else {
        return Ok(());
    };
    let Some(string_data) = map.remove("stringData") else {
        return Ok(());
    };
    let string_data = match string_data {
        Value::Null => return Ok(()),
        Value::Object(entries) => entries,
        _ => return Err(invalid(id, "stringData is not a map")),
    };
    let data = map
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if data.is_null() {
        *data = Value::Object(Map::new());
    }
    let Some(data) = data.as_object_mut() else {
        return Err(invalid(id, "data is not a map"));
    };
    for (key, value) in string_data {
        let Value::String(text) = value else {
            // Name the key only: the value may be a secret.
            return Err(invalid(id, &format!("stringData.{key} is not a string")));
        };
        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
        data.insert(key, Value::String(encoded));
    }
    Ok(())
}

fn invalid(id: &ResourceId, reason: &str) -> DiffError {
    DiffError::InvalidObject {
        resource: id.to_string(),
        reason: reason.into(),
    }
}

/// Null, `[]`, or a map holding nothing but such values.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.values().all(is_empty),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// Treats an empty map, list or null as equal to an absent field: removes such a field from
/// one side when the other side has nothing (or something equally empty) in its place. A field
/// that is empty on both sides in the same way (`emptyDir: {}`) is kept, since it is no drift.
pub(crate) fn reconcile_empty(a: &mut Value, b: &mut Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: Vec<String> = a.keys().chain(b.keys()).cloned().collect();
            for key in keys {
                match (a.get_mut(&key), b.get_mut(&key)) {
                    (Some(x), Some(y)) if x == y => {}
                    (Some(x), Some(y)) if is_empty(x) && is_empty(y) => {
                        a.remove(&key);
                        b.remove(&key);
                    }
                    (Some(x), Some(y)) => reconcile_empty(x, y),
                    (Some(x), None) if is_empty(x) => {
                        a.remove(&key);
                    }
                    (None, Some(y)) if is_empty(y) => {
                        b.remove(&key);
                    }
                    _ => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (x, y) in a.iter_mut().zip(b.iter_mut()) {
                reconcile_empty(x, y);
            }
        }
        _ => {}
    }
}

/// Removes nulls nested in maps: in a manifest, `key: null` means "not set".
pub(crate) fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret_id() -> ResourceId {
        ResourceId {
            kind: "Secret".into(),
            name: "s".into(),
            ..Default::default()
        }
    }

    #[test]
    fn strips_server_owned_fields() {
        let mut obj = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": "a", "namespace": "n", "uid": "123", "resourceVersion": "9",
                "generation": 2, "creationTimestamp": "2024-01-01T00:00:00Z", "selfLink": "/x",
                "managedFields": [{"manager": "kubectl"}],
                "annotations": {LAST_APPLIED_ANNOTATION: "{}", "keep": "me"}
            },
            "data": {"k": "v"},
            "status": {"phase": "x"}
        });
        let id = ResourceId::of(&obj);
        strip_server_fields(&mut obj, &id, IgnoreStatus::All);
        assert_eq!(
            obj,
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "a", "namespace": "n", "annotations": {"keep": "me"}},
                "data": {"k": "v"}
            })
        );
    }

    #[test]
    fn status_is_kept_where_the_compare_options_say() {
        let with_status = |api_version: &str, kind: &str| {
            json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "a"},
                "status": {"phase": "x"}})
        };
        let kept = |obj: Value, ignore: IgnoreStatus| {
            let mut obj = obj;
            let id = ResourceId::of(&obj);
            strip_server_fields(&mut obj, &id, ignore);
            obj.get("status").is_some()
        };
        let crd = || with_status("apiextensions.k8s.io/v1", "CustomResourceDefinition");
        let pod = || with_status("v1", "Pod");
        assert!(!kept(crd(), IgnoreStatus::All));
        assert!(!kept(pod(), IgnoreStatus::All));
        assert!(!kept(crd(), IgnoreStatus::Crds));
        assert!(kept(pod(), IgnoreStatus::Crds));
        assert!(kept(crd(), IgnoreStatus::Never));
        assert!(kept(pod(), IgnoreStatus::Never));
    }

    #[test]
    fn only_aggregated_cluster_roles_lose_their_rules() {
        let role = |kind: &str, aggregation: Value| {
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
                "metadata": {"name": "r"}, "aggregationRule": aggregation,
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})
        };
        let rules_kept = |obj: Value| {
            let mut obj = obj;
            let id = ResourceId::of(&obj);
            drop_aggregated_rules(&mut obj, &id);
            obj.get("rules").is_some()
        };
        let selector = json!({"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]});
        assert!(!rules_kept(role("ClusterRole", selector.clone())));
        assert!(rules_kept(role("ClusterRole", Value::Null)));
        assert!(rules_kept(role("Role", selector)));
    }

    #[test]
    fn folds_string_data_over_data() {
        let mut obj = json!({"kind": "Secret", "data": {"a": "eA==", "b": "eQ=="},
            "stringData": {"b": "hello"}});
        fold_string_data(&mut obj, &secret_id()).unwrap();
        assert_eq!(
            obj,
            json!({"kind": "Secret", "data": {"a": "eA==", "b": "aGVsbG8="}})
        );
    }

    #[test]
    fn string_data_error_names_key_not_value() {
        let mut obj = json!({"kind": "Secret", "stringData": {"port": 5432}});
        let err = fold_string_data(&mut obj, &secret_id())
            .unwrap_err()
            .to_string();
        assert!(err.contains("stringData.port"), "{err}");
        assert!(!err.contains("5432"), "{err}");
    }

    #[test]
    fn empty_versus_absent() {
        let mut a = json!({"metadata": {"labels": {}, "annotations": null, "x": {"y": {}}},
            "spec": {"volumes": [{"name": "v", "emptyDir": {}}], "tolerations": []}});
        let mut b = json!({"metadata": {}, "spec": {"volumes": [{"name": "v", "emptyDir": {}}]}});
        reconcile_empty(&mut a, &mut b);
        assert_eq!(a, b);
        assert_eq!(a.pointer("/spec/volumes/0/emptyDir"), Some(&json!({})));
    }

    #[test]
    fn empty_is_not_equal_to_content() {
        let mut a = json!({"metadata": {"labels": {}}});
        let mut b = json!({"metadata": {"labels": {"x": "y"}}});
        reconcile_empty(&mut a, &mut b);
        assert_ne!(a, b);
    }
}
