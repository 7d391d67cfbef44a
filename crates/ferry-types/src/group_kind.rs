//! A kind of object without its version: what discovery, watches, statistics and Argo CD's
//! settings (`<group>_<Kind>` keys) name.

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
}

impl fmt::Display for GroupKind {
    /// `apps/Deployment`, or just `ConfigMap` for the core group.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.kind)
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
}
