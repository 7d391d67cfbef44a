//! One live object as the cache keeps it: stripped of what comparison and health never read,
//! with its key, owners and tracked app extracted once on the way in, and the rest kept as
//! compact JSON text. A `Value` tree costs several times its text (every map is a B-tree node of
//! about 630 bytes, even with one entry), and most cached objects (Pods, ReplicaSets, objects no
//! app tracks) are never read again; the few that are get parsed when read.

use std::mem::size_of;

use ferry_types::{ResourceKey, group_of};
use serde_json::Value;

use crate::tracking::TrackingMethod;

pub use ferry_types::bookkeeping::{LAST_APPLIED_ANNOTATION, strip};

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
    pub api_version: String,
    pub uid: String,
    pub resource_version: String,
    pub owners: Vec<OwnerRef>,
    /// The app instance the object is tracked to, by the cache's tracking method.
    pub app: Option<String>,
    /// The object without `metadata.managedFields` and the last-applied annotation, as compact
    /// JSON (keys sorted, as `Value` writes them).
    json: Box<str>,
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
        let api_version = text(&object["apiVersion"]);
        let app = tracking.app_of(&object);
        let json = object.to_string().into_boxed_str();
        let approx_bytes = size_of::<Self>()
            + json.len()
            + api_version.len()
            + key.group.len()
            + key.kind.len()
            + key.namespace.len()
            + key.name.len()
            + uid.len()
            + resource_version.len();
        Some(Self {
            key,
            api_version,
            uid,
            resource_version,
            owners,
            app,
            json,
            approx_bytes,
        })
    }

    /// The object (without managedFields and the last-applied annotation), parsed anew.
    pub fn object(&self) -> Value {
        serde_json::from_str(&self.json)
            .expect("the cache's text was written from a JSON value and parses back")
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
        assert!(cached.object()["metadata"].get("managedFields").is_none());
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
    fn objects_read_back_as_they_were_stripped() {
        let cached = CachedObject::new(replica_set(), &TrackingMethod::label()).unwrap();
        let mut expected = replica_set();
        strip(&mut expected);
        assert_eq!(cached.object(), expected);
        assert_eq!(cached.api_version, "apps/v1");
        assert_eq!(
            cached.object(),
            cached.object(),
            "every read parses the same text"
        );
    }

    #[test]
    fn size_estimate_grows_with_content() {
        let object = |data: &str| {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cm", "namespace": "prod"}, "data": {"a": data}})
        };
        let small = CachedObject::new(object("b"), &TrackingMethod::default()).unwrap();
        let large = CachedObject::new(object(&"b".repeat(1000)), &TrackingMethod::default());
        let (small, large) = (small.approx_bytes, large.unwrap().approx_bytes);
        assert!(large >= small + 999, "{small} vs {large}");
    }
}
