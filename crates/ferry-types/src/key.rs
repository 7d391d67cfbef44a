//! The identity of a Kubernetes object across ferry: group, kind, namespace and name (the version
//! is not part of it, as in Argo CD: one object served at several versions is one resource).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResourceKey {
    #[serde(default)]
    pub group: String,
    pub kind: String,
    #[serde(default)]
    pub namespace: String,
    pub name: String,
}

impl ResourceKey {
    pub fn new(group: &str, kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            group: group.to_string(),
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// The key of an object; `None` when it lacks `apiVersion`, `kind` or `metadata.name`.
    pub fn of(obj: &Value) -> Option<Self> {
        let api_version = obj.get("apiVersion")?.as_str()?;
        let kind = obj.get("kind")?.as_str()?;
        let metadata = obj.get("metadata")?;
        let name = metadata.get("name")?.as_str()?;
        let namespace = metadata
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        Some(Self::new(group_of(api_version), kind, namespace, name))
    }
}

/// The group of an `apiVersion` (`apps/v1` → `apps`, `v1` → the core group, "").
pub fn group_of(api_version: &str) -> &str {
    split_api_version(api_version).0
}

/// An `apiVersion` as group and version (`apps/v1` → `("apps", "v1")`, `v1` → `("", "v1")`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

impl fmt::Display for ResourceKey {
    /// `apps/Deployment/ns/name`; the core group and cluster scope leave their part empty
    /// (`/Namespace//prod`), as Argo CD prints resource keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.group, self.kind, self.namespace, self.name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_come_from_objects() {
        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "prod"}});
        assert_eq!(
            ResourceKey::of(&deploy),
            Some(ResourceKey::new("apps", "Deployment", "prod", "web"))
        );
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}});
        assert_eq!(
            ResourceKey::of(&ns).unwrap().to_string(),
            "/Namespace//prod"
        );
        assert_eq!(ResourceKey::of(&json!({"kind": "ConfigMap"})), None);
    }
}
