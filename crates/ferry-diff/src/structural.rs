//! Comparison without an API server (server-side diff turned off, offline `ferry diff`).

use serde_json::Value;

use crate::merge::{is_builtin_group, predict};
use crate::normalize::{LAST_APPLIED_ANNOTATION, drop_nulls, fold_string_data};
use crate::object::ResourceId;
use crate::{DiffError, DiffOptions, DiffResult, compare};

/// Compares `desired` with `live` structurally: only fields the manifest mentions count, so
/// values the server defaulted or other controllers set are no drift, except fields the
/// last-applied annotation shows the user set once and has removed since. Resource quantities
/// compare by amount (`0.5` = `500m`). Either side may be absent (`Missing` / `Extra`).
pub fn structural_diff(
    desired: Option<&Value>,
    live: Option<&Value>,
    opts: &DiffOptions,
) -> Result<DiffResult, DiffError> {
    let id = ResourceId::of_pair(desired, live)?;
    let predicted = match (desired, live) {
        (Some(desired), Some(live)) => {
            let mut desired = desired.clone();
            fold_string_data(&mut desired, &id)?;
            let last_applied = last_applied(live, &id);
            Some(predict(
                live,
                &desired,
                last_applied.as_ref(),
                is_builtin_group(&id.group),
            ))
        }
        (Some(desired), None) => {
            let mut desired = desired.clone();
            fold_string_data(&mut desired, &id)?;
            drop_nulls(&mut desired);
            Some(desired)
        }
        (None, _) => None,
    };
    compare::finish(&id, predicted, live.cloned(), opts)
}

/// The manifest `kubectl apply` recorded on the live object, if any and usable.
fn last_applied(live: &Value, id: &ResourceId) -> Option<Value> {
    let text = live
        .pointer("/metadata/annotations")?
        .get(LAST_APPLIED_ANNOTATION)?
        .as_str()?;
    let Ok(mut applied) = serde_json::from_str::<Value>(text) else {
        // Not the caller's input and not fatal: compare without it (two-way).
        tracing::warn!(resource = %id, "ignoring unparsable last-applied-configuration annotation");
        return None;
    };
    match fold_string_data(&mut applied, id) {
        Ok(()) => Some(applied),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IgnoreRules, ResourceIgnoreDifferences, SyncStatus};
    use serde_json::json;

    fn opts(yaml: &str) -> DiffOptions {
        let rules: Vec<ResourceIgnoreDifferences> = serde_yaml::from_str(yaml).unwrap();
        DiffOptions {
            ignore_differences: IgnoreRules::new(&rules).unwrap(),
            ..DiffOptions::default()
        }
    }

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    /// A Deployment as the API server returns it after `kubectl apply` of `desired()`.
    fn live() -> Value {
        yaml(include_str!("../tests/data/deployment-live.yaml"))
    }

    fn desired() -> Value {
        yaml(include_str!("../tests/data/deployment-desired.yaml"))
    }

    #[test]
    fn defaulted_fields_and_server_metadata_are_no_drift() {
        let result =
            structural_diff(Some(&desired()), Some(&live()), &DiffOptions::default()).unwrap();
        assert_eq!(result.status, SyncStatus::Synced, "{}", result.text);
        assert!(result.patch.0.is_empty());
        assert_eq!(result.text, "");
        let live = result.normalized_live.unwrap();
        assert!(live.pointer("/metadata/managedFields").is_none());
        assert!(live.pointer("/metadata/uid").is_none());
        assert!(live.get("status").is_none());
    }

    #[test]
    fn changed_replicas_is_drift_with_patch_and_text() {
        let mut live = live();
        live["spec"]["replicas"] = json!(5);
        let result =
            structural_diff(Some(&desired()), Some(&live), &DiffOptions::default()).unwrap();
        assert_eq!(result.status, SyncStatus::OutOfSync);
        let patch = serde_json::to_value(&result.patch).unwrap();
        assert_eq!(
            patch,
            json!([{"op": "replace", "path": "/spec/replicas", "value": 2}])
        );
        assert!(
            result.text.contains("-  replicas: 5\n+  replicas: 2\n"),
            "{}",
            result.text
        );
        assert!(result.text.starts_with(
            "--- live apps/Deployment shop/web\n+++ desired apps/Deployment shop/web\n"
        ));
    }

    #[test]
    fn ignore_differences_hide_drift() {
        let mut live = live();
        live["spec"]["replicas"] = json!(5);
        let by_pointer =
            opts("- group: apps\n  kind: Deployment\n  jsonPointers: [/spec/replicas]\n");
        let result = structural_diff(Some(&desired()), Some(&live), &by_pointer).unwrap();
        assert_eq!(result.status, SyncStatus::Synced, "{}", result.text);

        let by_jq = opts("- group: apps\n  kind: '*'\n  jqPathExpressions: ['.spec.replicas']\n");
        let result = structural_diff(Some(&desired()), Some(&live), &by_jq).unwrap();
        assert_eq!(result.status, SyncStatus::Synced, "{}", result.text);
    }

    #[test]
    fn fields_of_trusted_managers_are_no_drift() {
        let mut live = live();
        live["spec"]["replicas"] = json!(5);
        live["metadata"]["managedFields"]
            .as_array_mut()
            .unwrap()
            .push(
                json!({"manager": "hpa-controller", "operation": "Update", "apiVersion": "apps/v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}},
                "subresource": "scale", "time": "2025-05-02T10:00:00Z"}),
            );
        let trusted =
            opts("- group: apps\n  kind: Deployment\n  managedFieldsManagers: [hpa-controller]\n");
        let result = structural_diff(Some(&desired()), Some(&live), &trusted).unwrap();
        assert_eq!(result.status, SyncStatus::Synced, "{}", result.text);
        let other =
            opts("- group: apps\n  kind: Deployment\n  managedFieldsManagers: [someone-else]\n");
        let result = structural_diff(Some(&desired()), Some(&live), &other).unwrap();
        assert_eq!(result.status, SyncStatus::OutOfSync);
    }

    #[test]
    fn removed_label_that_was_applied_is_drift() {
        let mut desired = desired();
        desired["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove("tier");
        let result =
            structural_diff(Some(&desired), Some(&live()), &DiffOptions::default()).unwrap();
        assert_eq!(result.status, SyncStatus::OutOfSync);
        let patch = serde_json::to_value(&result.patch).unwrap();
        assert_eq!(
            patch,
            json!([{"op": "remove", "path": "/metadata/labels/tier"}])
        );
    }

    #[test]
    fn empty_maps_and_quantities_are_no_drift() {
        let mut desired = desired();
        desired["metadata"]["annotations"] = json!({});
        desired["spec"]["template"]["spec"]["containers"][0]["resources"] =
            json!({"limits": {"cpu": 0.5, "memory": "128Mi"}, "requests": {"cpu": "0.1"}});
        let mut live = live();
        live["spec"]["template"]["spec"]["containers"][0]["resources"] =
            json!({"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m"}});
        let result = structural_diff(Some(&desired), Some(&live), &DiffOptions::default()).unwrap();
        assert_eq!(result.status, SyncStatus::Synced, "{}", result.text);
    }

    #[test]
    fn missing_and_extra() {
        let result = structural_diff(Some(&desired()), None, &DiffOptions::default()).unwrap();
        assert_eq!(result.status, SyncStatus::Missing);
        assert!(result.normalized_live.is_none());
        assert!(
            result.text.contains("+kind: Deployment\n"),
            "{}",
            result.text
        );

        let result = structural_diff(None, Some(&live()), &DiffOptions::default()).unwrap();
        assert_eq!(result.status, SyncStatus::Extra);
        assert!(result.normalized_desired.is_none());
        assert!(
            result.text.contains("-kind: Deployment\n"),
            "{}",
            result.text
        );
        let patch = serde_json::to_value(&result.patch).unwrap();
        assert_eq!(patch, json!([{"op": "replace", "path": "", "value": null}]));
    }

    #[test]
    fn secret_diff_is_masked() {
        let desired = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": "shop"},
            "stringData": {"password": "n3w-pa55", "user": "admin"}});
        let live = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": "shop", "uid": "1"}, "type": "Opaque",
            "data": {"password": "b2xkLXBhNTU=", "user": "YWRtaW4="}});
        let result = structural_diff(Some(&desired), Some(&live), &DiffOptions::default()).unwrap();
        assert_eq!(result.status, SyncStatus::OutOfSync);
        let everything = format!(
            "{}{:?}{:?}{:?}",
            result.text, result.patch, result.normalized_live, result.normalized_desired
        );
        for secret in [
            "n3w-pa55",
            "bjN3LXBhNTU=",
            "b2xkLXBhNTU=",
            "YWRtaW4=",
            "admin",
        ] {
            assert!(
                !everything.contains(secret),
                "{secret} leaked: {everything}"
            );
        }
        assert!(
            result
                .text
                .contains("-  password: ++++++++++++\n+  password: ++++++++\n"),
            "{}",
            result.text
        );
        assert!(
            result.text.contains("   user: ++++++++\n"),
            "{}",
            result.text
        );
    }

    #[test]
    fn secret_with_equal_data_is_synced() {
        let desired = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
            "stringData": {"user": "admin"}});
        let live = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": "shop"}, "type": "Opaque",
            "data": {"user": "YWRtaW4="}});
        let result = structural_diff(Some(&desired), Some(&live), &DiffOptions::default()).unwrap();
        assert_eq!(result.status, SyncStatus::Synced, "{}", result.text);
    }

    #[test]
    fn status_counts_only_when_the_compare_options_keep_it() {
        let never = DiffOptions {
            ignore_status: crate::IgnoreStatus::Never,
            ..DiffOptions::default()
        };
        // The live status alone is what the server reports, not drift.
        let result = structural_diff(Some(&desired()), Some(&live()), &never).unwrap();
        assert_eq!(result.status, SyncStatus::Synced, "{}", result.text);
        assert!(result.normalized_live.unwrap().get("status").is_some());
        // A status the manifest sets differently is drift once status counts.
        let mut desired = desired();
        desired["status"] = json!({"replicas": 7});
        let result = structural_diff(Some(&desired), Some(&live()), &never).unwrap();
        assert_eq!(result.status, SyncStatus::OutOfSync);
        assert!(result.text.contains("replicas: 7"), "{}", result.text);
        let result = structural_diff(Some(&desired), Some(&live()), &DiffOptions::default());
        assert_eq!(result.unwrap().status, SyncStatus::Synced);
    }

    #[test]
    fn aggregated_cluster_role_rules_filled_by_the_cluster_are_ignored_on_request() {
        let role = |rules: Value| {
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "view-all"},
                "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "yes"}}]},
                "rules": rules})
        };
        let desired = role(json!([]));
        let live = role(json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]));
        let result = structural_diff(Some(&desired), Some(&live), &DiffOptions::default());
        assert_eq!(result.unwrap().status, SyncStatus::OutOfSync);
        let ignore = DiffOptions {
            ignore_aggregated_roles: true,
            ..DiffOptions::default()
        };
        let result = structural_diff(Some(&desired), Some(&live), &ignore).unwrap();
        assert_eq!(result.status, SyncStatus::Synced, "{}", result.text);
    }
}
