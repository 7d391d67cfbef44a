//! Rendered objects as a sync applies them, so a comparison sees what a sync would change:
//! namespaced objects in the destination namespace unless they name one, cluster-scoped
//! objects without a namespace, and the app's tracking metadata on every named object.

use ferry_cache::TrackingMethod;
use ferry_sync::{crd_scope, settle_namespace};
use serde_json::Value;

/// Prepares `rendered` for the app tracked as `instance` (Argo CD's instance name:
/// `<namespace>_<name>` for an app outside the control namespace). `scope` says whether a kind (`apiVersion`, `kind`) is
/// namespaced, `None` when the server does not serve it; such kinds take the scope their
/// CustomResourceDefinition among `rendered` declares, else namespaced.
pub fn prepare(
    rendered: &[Value],
    namespace: &str,
    instance: &str,
    tracking: &TrackingMethod,
    scope: impl Fn(&str, &str) -> Option<bool>,
) -> Result<Vec<Value>, String> {
    let mut problems = Vec::new();
    let desired = rendered
        .iter()
        .map(|object| {
            let mut object = object.clone();
            let api_version = object["apiVersion"].as_str().unwrap_or_default();
            let kind = object["kind"].as_str().unwrap_or_default();
            let namespaced = scope(api_version, kind)
                .or_else(|| crd_scope(rendered, api_version, kind))
                .unwrap_or(true);
            settle_namespace(&mut object, namespaced, namespace);
            if object["metadata"]["name"].is_string()
                && let Err(err) = tracking.mark(&mut object, instance, None)
            {
                problems.push(err.to_string());
            }
            object
        })
        .collect();
    if problems.is_empty() {
        Ok(desired)
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn namespaces_settle_and_objects_are_marked() {
        let rendered = [
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "namespace": "other"}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "r", "namespace": "ignored"}}),
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}),
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": "widgets.example.com"},
                "spec": {"group": "example.com", "names": {"kind": "Widget"}, "scope": "Cluster"}}),
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"generateName": "hook-"}}),
        ];
        let scope = |_: &str, kind: &str| match kind {
            "ConfigMap" | "Job" => Some(true),
            "ClusterRole" | "CustomResourceDefinition" => Some(false),
            _ => None,
        };
        let desired = prepare(&rendered, "dest", "shop", &TrackingMethod::label(), scope).unwrap();
        let namespaces: Vec<_> = desired
            .iter()
            .map(|o| o["metadata"]["namespace"].as_str())
            .collect();
        assert_eq!(
            namespaces,
            [Some("dest"), Some("other"), None, None, None, Some("dest")]
        );
        assert_eq!(
            desired[0]["metadata"]["labels"]["app.kubernetes.io/instance"],
            "shop"
        );
        // Nameless objects are marked once the server names them.
        assert!(desired[5]["metadata"]["labels"].is_null());
        assert_eq!(crd_scope(&rendered, "example.com/v1", "Gadget"), None);
    }
}
