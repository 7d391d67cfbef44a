//! One live object as the cache keeps it: stripped of what comparison and health never read,
//! with its key, owners and tracked app extracted once on the way in.

use std::mem::size_of;

use ferry_types::{ResourceKey, group_of};
use serde_json::Value;

use crate::tracking::TrackingMethod;

/// The annotation `kubectl apply` leaves behind: a full second copy of the object.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A reference to an owner (`metadata.ownerReferences`), which is always in the same namespace or
/// cluster-scoped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerRef {
    pub uid: String,
    pub group: String,
    pub kind: String,
    pub name: String,
    pub controller: bool,
}

/// A live object in the cache. Shared between readers as `Arc<CachedObject>`; never mutated.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedObject {
    pub key: ResourceKey,
    pub uid: String,
    pub resource_version: String,
    pub owners: Vec<OwnerRef>,
    /// The app instance the object is tracked to, by the cache's tracking method.
    pub app: Option<String>,
    /// The object without `metadata.managedFields` and the last-applied annotation.
    pub object: Value,
    /// Approximate heap size of this entry, for statistics.
    pub approx_bytes: usize,
}

impl CachedObject {
    /// Takes a live object as the API serves it (with `apiVersion` and `kind`). `None` when it
    /// lacks `apiVersion`, `kind` or `metadata.name`, which the API never serves.
    pub fn new(mut object: Value, tracking: &TrackingMethod) -> Option<Self> {
        strip(&mut object);
        let key = ResourceKey::of(&object)?;
        let metadata = &object["metadata"];
        let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
        let owners = metadata["ownerReferences"]
            .as_array()
            .map(|refs| refs.iter().filter_map(owner_ref).collect())
            .unwrap_or_default();
        let uid = text(&metadata["uid"]);
        let resource_version = text(&metadata["resourceVersion"]);
        let app = tracking.app_of(&object);
        let approx_bytes = size_of::<Self>()
            + approx_value_bytes(&object)
            + key.group.len()
            + key.kind.len()
            + key.namespace.len()
            + key.name.len()
            + uid.len()
            + resource_version.len();
        Some(Self {
            key,
            uid,
            resource_version,
            owners,
            app,
            object,
            approx_bytes,
        })
    }
}

fn owner_ref(reference: &Value) -> Option<OwnerRef> {
    let text = |field: &str| reference.get(field).and_then(Value::as_str);
    Some(OwnerRef {
        uid: text("uid")?.to_string(),
        group: group_of(text("apiVersion")?).to_string(),
        kind: text("kind")?.to_string(),
        name: text("name")?.to_string(),
        controller: reference
            .get("controller")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// Drops `metadata.managedFields` and the last-applied annotation (and the annotation map if that
/// leaves it empty): together they are often larger than the rest of the object.
pub fn strip(object: &mut Value) {
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    metadata.remove("managedFields");
    if let Some(annotations) = metadata
        .get_mut("annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED_ANNOTATION);
        if annotations.is_empty() {
            metadata.remove("annotations");
        }
    }
}

/// A rough size of a JSON value: its own slot plus the heap it owns.
pub(crate) fn approx_value_bytes(value: &Value) -> usize {
    size_of::<Value>() + heap_bytes(value)
}

/// Maps are B-trees whose nodes hold up to 11 entries inline, so even a one-entry map costs a
/// whole node: that, not the text, dominates small Kubernetes objects.
fn heap_bytes(value: &Value) -> usize {
    const ENTRIES_PER_NODE: usize = 11;
    const NODE_BYTES: usize = ENTRIES_PER_NODE * (size_of::<String>() + size_of::<Value>()) + 16;
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        Value::String(text) => text.len(),
        Value::Array(items) => items
            .iter()
            .map(|item| size_of::<Value>() + heap_bytes(item))
            .sum(),
        Value::Object(map) => {
            map.len().div_ceil(ENTRIES_PER_NODE) * NODE_BYTES
                + map
                    .iter()
                    .map(|(key, item)| key.len() + heap_bytes(item))
                    .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn replica_set() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": "web-5d9f", "namespace": "prod", "uid": "rs-uid", "resourceVersion": "42",
                "labels": {"app.kubernetes.io/instance": "shop"},
                "annotations": {
                    LAST_APPLIED_ANNOTATION: "{\"huge\": true}",
                    "deployment.kubernetes.io/revision": "3"
                },
                "managedFields": [{"manager": "kube-controller-manager", "fieldsV1": {"f:spec": {}}}],
                "ownerReferences": [
                    {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                     "uid": "deploy-uid", "controller": true},
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "cm-uid"},
                    {"kind": "Broken"}
                ]
            },
            "spec": {"replicas": 2},
            "status": {"readyReplicas": 2}
        })
    }

    #[test]
    fn stripping_drops_managed_fields_and_last_applied_only() {
        let mut object = replica_set();
        strip(&mut object);
        let metadata = &object["metadata"];
        assert!(metadata.get("managedFields").is_none());
        assert!(
            metadata["annotations"]
                .get(LAST_APPLIED_ANNOTATION)
                .is_none()
        );
        assert_eq!(
            metadata["annotations"]["deployment.kubernetes.io/revision"],
            "3"
        );
        assert_eq!(object["status"]["readyReplicas"], 2);
        assert_eq!(object["spec"]["replicas"], 2);

        let mut only_last_applied = json!({"metadata": {"name": "x",
            "annotations": {LAST_APPLIED_ANNOTATION: "{}"}}});
        strip(&mut only_last_applied);
        assert_eq!(only_last_applied, json!({"metadata": {"name": "x"}}));

        // Objects without metadata are left alone rather than refused.
        let mut odd = json!({"kind": "X"});
        strip(&mut odd);
        assert_eq!(odd, json!({"kind": "X"}));
    }

    #[test]
    fn cached_objects_carry_key_owners_and_app() {
        let cached = CachedObject::new(replica_set(), &TrackingMethod::label()).unwrap();
        assert_eq!(
            cached.key,
            ResourceKey::new("apps", "ReplicaSet", "prod", "web-5d9f")
        );
        assert_eq!(cached.uid, "rs-uid");
        assert_eq!(cached.resource_version, "42");
        assert_eq!(cached.app.as_deref(), Some("shop"));
        assert_eq!(
            cached.owners,
            vec![
                OwnerRef {
                    uid: "deploy-uid".into(),
                    group: "apps".into(),
                    kind: "Deployment".into(),
                    name: "web".into(),
                    controller: true,
                },
                OwnerRef {
                    uid: "cm-uid".into(),
                    group: "".into(),
                    kind: "ConfigMap".into(),
                    name: "cm".into(),
                    controller: false,
                },
            ],
            "malformed owner references are skipped"
        );
        assert!(cached.object["metadata"].get("managedFields").is_none());
        // Annotation tracking finds no tracking id here.
        let cached = CachedObject::new(replica_set(), &TrackingMethod::annotation()).unwrap();
        assert_eq!(cached.app, None);
    }

    #[test]
    fn objects_without_identity_are_refused() {
        let nameless = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}});
        assert!(CachedObject::new(nameless, &TrackingMethod::default()).is_none());
    }

    #[test]
    fn size_estimate_grows_with_content() {
        let small = approx_value_bytes(&json!({"a": "b"}));
        let large = approx_value_bytes(&json!({"a": "b".repeat(1000)}));
        assert!(large >= small + 999, "{small} vs {large}");
        let stripped = CachedObject::new(replica_set(), &TrackingMethod::default()).unwrap();
        assert!(stripped.approx_bytes > approx_value_bytes(&stripped.object));
    }
}
