//! A kind of object without its version: what discovery, watches, statistics and Argo CD's
//! settings (`<group>_<Kind>` keys) name. [`GroupKind`] owns its names (for maps and keys),
//! [`GroupKindRef`] borrows them from an object, for what looks at every object (health checks,
//! actions) without allocating.

use std::fmt;

use crate::ResourceKey;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKind {
    pub group: String,
    pub kind: String,
}

impl GroupKind {
    pub fn new(group: &str, kind: &str) -> Self {
        Self {
            group: group.to_string(),
            kind: kind.to_string(),
        }
    }

    pub fn of(key: &ResourceKey) -> Self {
        Self::new(&key.group, &key.kind)
    }

    pub fn as_ref(&self) -> GroupKindRef<'_> {
        GroupKindRef::new(&self.group, &self.kind)
    }
}

impl fmt::Display for GroupKind {
    /// `apps/Deployment`, or just `ConfigMap` for the core group.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_ref().fmt(f)
    }
}

/// A [`GroupKind`] borrowed from an object or a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupKindRef<'a> {
    pub group: &'a str,
    pub kind: &'a str,
}

impl<'a> GroupKindRef<'a> {
    pub fn new(group: &'a str, kind: &'a str) -> Self {
        Self { group, kind }
    }

    /// An object's `apiVersion` group and `kind`; `None` when either is missing, empty or not
    /// a string.
    pub fn of(obj: &'a serde_json::Value) -> Option<Self> {
        let api_version = obj.get("apiVersion")?.as_str()?;
        let kind = obj.get("kind")?.as_str()?;
        if kind.is_empty() || api_version.is_empty() {
            return None;
        }
        Some(Self::new(crate::group_of(api_version), kind))
    }

    pub fn to_owned(self) -> GroupKind {
        GroupKind::new(self.group, self.kind)
    }
}

impl fmt::Display for GroupKindRef<'_> {
    /// `apps/Deployment`, or just `ConfigMap` for the core group (Argo CD's
    /// resource-customization key).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(self.kind)
        } else {
            write!(f, "{}/{}", self.group, self.kind)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_print_and_come_from_keys() {
        let deployments = GroupKind::new("apps", "Deployment");
        assert_eq!(deployments.to_string(), "apps/Deployment");
        assert_eq!(GroupKind::new("", "ConfigMap").to_string(), "ConfigMap");
        let key = ResourceKey::new("apps", "Deployment", "prod", "web");
        assert_eq!(GroupKind::of(&key), deployments);
    }

    #[test]
    fn borrowed_kinds_come_from_objects() {
        let object = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment"});
        let gk = GroupKindRef::of(&object).unwrap();
        assert_eq!(gk, GroupKindRef::new("apps", "Deployment"));
        assert_eq!(gk.to_owned().as_ref(), gk);
        let config_map = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap"});
        assert_eq!(
            GroupKindRef::of(&config_map).unwrap().to_string(),
            "ConfigMap"
        );
        for without in [
            serde_json::json!({"kind": "ConfigMap"}),
            serde_json::json!({"apiVersion": "v1", "kind": 3}),
            serde_json::json!([1, 2]),
        ] {
            assert_eq!(GroupKindRef::of(&without), None);
        }
    }
}
