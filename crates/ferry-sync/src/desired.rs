//! Where a desired object goes: namespaced objects in the destination namespace unless they name
//! one, cluster-scoped objects without a namespace (ferry-appstate prepares objects for
//! comparison the same way).

use ferry_types::group_of;
use serde_json::{Value, json};

/// Gives a namespaced object without a namespace the destination's (when there is one), and
/// takes the namespace off a cluster-scoped object.
pub fn settle_namespace(object: &mut Value, namespaced: bool, namespace: &str) {
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if !namespaced {
        metadata.remove("namespace");
    } else if metadata
        .get("namespace")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
        && !namespace.is_empty()
    {
        metadata.insert("namespace".into(), json!(namespace));
    }
}

/// Whether a kind defined by a CustomResourceDefinition among `objects` is namespaced.
pub fn crd_scope(objects: &[Value], api_version: &str, kind: &str) -> Option<bool> {
    let group = group_of(api_version);
    objects.iter().find_map(|crd| {
        (crd["kind"] == "CustomResourceDefinition"
            && crd.pointer("/spec/group").and_then(Value::as_str) == Some(group)
            && crd.pointer("/spec/names/kind").and_then(Value::as_str) == Some(kind))
        .then(|| crd.pointer("/spec/scope").and_then(Value::as_str) != Some("Cluster"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_settle_by_scope_and_crds_declare_theirs() {
        let mut config_map = json!({"kind": "ConfigMap", "metadata": {"name": "a"}});
        settle_namespace(&mut config_map, true, "dest");
        assert_eq!(config_map["metadata"]["namespace"], "dest");
        let mut named =
            json!({"kind": "ConfigMap", "metadata": {"name": "b", "namespace": "other"}});
        settle_namespace(&mut named, true, "dest");
        assert_eq!(named["metadata"]["namespace"], "other");
        let mut role = json!({"kind": "ClusterRole", "metadata": {"name": "r", "namespace": "x"}});
        settle_namespace(&mut role, false, "dest");
        assert!(role["metadata"]["namespace"].is_null());

        let crds = [json!({"kind": "CustomResourceDefinition",
            "spec": {"group": "example.com", "names": {"kind": "Widget"}, "scope": "Cluster"}})];
        assert_eq!(crd_scope(&crds, "example.com/v1", "Widget"), Some(false));
        assert_eq!(crd_scope(&crds, "example.com/v1", "Gadget"), None);
    }
}
