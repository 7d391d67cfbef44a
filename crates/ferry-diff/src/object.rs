//! Identity of the objects being compared: for matching rules and naming them in messages.

use std::fmt;

use ferry_types::group_of;
use serde_json::Value;

use crate::DiffError;

/// Group, kind, namespace and name of a resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ResourceId {
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ResourceId {
    /// Reads the identity leniently: missing fields stay empty.
    pub fn of(obj: &Value) -> Self {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
        let meta = obj.get("metadata");
        Self {
            group: group_of(obj.get("apiVersion").and_then(Value::as_str).unwrap_or("")).to_owned(),
            kind: text(obj.get("kind")),
            namespace: text(meta.and_then(|m| m.get("namespace"))),
            name: text(meta.and_then(|m| m.get("name"))),
        }
    }

    /// The identity of a desired/live pair, checking that both sides name the same resource.
    /// The live namespace wins: rendered objects may leave it to the destination default.
    pub fn of_pair(desired: Option<&Value>, live: Option<&Value>) -> Result<Self, DiffError> {
        let (d, l) = (desired.map(Self::of), live.map(Self::of));
        let id = match (&d, &l) {
            (Some(d), Some(l)) => {
                let same = d.group == l.group
                    && d.kind == l.kind
                    && d.name == l.name
                    && (d.namespace.is_empty() || d.namespace == l.namespace);
                if !same {
                    return Err(DiffError::InvalidObject {
                        resource: d.to_string(),
                        reason: format!("compared with a different live object {l}"),
                    });
                }
                l.clone()
            }
            (Some(id), None) | (None, Some(id)) => id.clone(),
            (None, None) => {
                return Err(DiffError::InvalidObject {
                    resource: "<none>".into(),
                    reason: "neither a desired nor a live object was given".into(),
                });
            }
        };
        for obj in [desired, live].into_iter().flatten() {
            validate(obj, &id)?;
        }
        Ok(id)
    }

    pub fn is_secret(&self) -> bool {
        self.group.is_empty() && self.kind == "Secret"
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.group.is_empty() {
            write!(f, "{}/", self.group)?;
        }
        write!(f, "{} ", self.kind)?;
        if !self.namespace.is_empty() {
            write!(f, "{}/", self.namespace)?;
        }
        f.write_str(&self.name)
    }
}

fn validate(obj: &Value, id: &ResourceId) -> Result<(), DiffError> {
    let invalid = |reason: &str| DiffError::InvalidObject {
        resource: id.to_string(),
        reason: reason.into(),
    };
    if !obj.is_object() {
        return Err(invalid("is not a JSON object"));
    }
    let non_empty = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    if !non_empty(obj.get("apiVersion")) {
        return Err(invalid("has no apiVersion"));
    }
    if !non_empty(obj.get("kind")) {
        return Err(invalid("has no kind"));
    }
    if !non_empty(obj.pointer("/metadata/name")) {
        return Err(invalid("has no metadata.name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identity_and_display() {
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"}});
        assert_eq!(ResourceId::of(&obj).to_string(), "apps/Deployment shop/web");
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}});
        let id = ResourceId::of(&secret);
        assert!(id.is_secret());
        assert_eq!(id.to_string(), "Secret s");
    }

    #[test]
    fn pair_takes_live_namespace_and_rejects_mismatch() {
        let desired = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "ns"}});
        let id = ResourceId::of_pair(Some(&desired), Some(&live)).unwrap();
        assert_eq!(id.namespace, "ns");

        let other = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "b", "namespace": "ns"}});
        let err = ResourceId::of_pair(Some(&desired), Some(&other)).unwrap_err();
        assert!(err.to_string().contains("ConfigMap ns/b"), "{err}");
    }

    #[test]
    fn pair_requires_identity_fields() {
        let nameless = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}});
        let err = ResourceId::of_pair(Some(&nameless), None).unwrap_err();
        assert!(err.to_string().contains("metadata.name"), "{err}");
        assert!(ResourceId::of_pair(None, None).is_err());
    }
}
