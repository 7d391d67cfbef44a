//! Reading live objects: their group/kind, and typed views of the fields a check needs.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

/// An object's API group and kind, e.g. `apps`/`Deployment`, or `""`/`Service` for the core group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupKind<'a> {
    pub group: &'a str,
    pub kind: &'a str,
}

impl<'a> GroupKind<'a> {
    pub fn new(group: &'a str, kind: &'a str) -> Self {
        GroupKind { group, kind }
    }

    /// Reads `apiVersion` and `kind`; `None` when either is missing or not a string.
    pub fn of(obj: &'a Value) -> Option<Self> {
        let api_version = obj.get("apiVersion")?.as_str()?;
        let kind = obj.get("kind")?.as_str()?;
        if kind.is_empty() || api_version.is_empty() {
            return None;
        }
        Some(GroupKind {
            group: ferry_types::group_of(api_version),
            kind,
        })
    }
}

/// Argo CD's resource-customization key: `group/Kind`, or just `Kind` for the core group.
impl fmt::Display for GroupKind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(self.kind)
        } else {
            write!(f, "{}/{}", self.group, self.kind)
        }
    }
}

/// The `metadata` fields health checks look at.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Metadata {
    pub name: Option<String>,
    pub generation: Option<i64>,
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Metadata {
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

/// A status condition (`type`, `status`, `reason`, `message`), shared by most kinds.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Condition {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
    #[serde(rename = "lastTransitionTime")]
    pub last_transition_time: Option<String>,
}

impl Condition {
    pub fn is(&self, kind: &str) -> bool {
        self.kind.as_deref() == Some(kind)
    }

    pub fn is_true(&self) -> bool {
        self.status.as_deref() == Some("True")
    }

    pub fn is_false(&self) -> bool {
        self.status.as_deref() == Some("False")
    }

    pub fn reason(&self) -> &str {
        self.reason.as_deref().unwrap_or("")
    }

    pub fn message(&self) -> &str {
        self.message.as_deref().unwrap_or("")
    }
}

/// The first condition of the given type.
pub(crate) fn condition<'c>(conditions: &'c [Condition], kind: &str) -> Option<&'c Condition> {
    conditions.iter().find(|c| c.is(kind))
}

/// Deserializes the typed view `T` of an object, naming the offending field on failure
/// (e.g. `spec.replicas: invalid type: string "3", expected i64`).
pub(crate) fn read<'a, T: Deserialize<'a>>(obj: &'a Value) -> Result<T, String> {
    serde_path_to_error::deserialize(obj).map_err(|err| {
        let path = err.path().to_string();
        let cause = err.into_inner();
        if path == "." {
            cause.to_string()
        } else {
            format!("{path}: {cause}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn group_kind_from_api_version() {
        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment"});
        let svc = json!({"apiVersion": "v1", "kind": "Service"});
        assert_eq!(
            GroupKind::of(&deploy),
            Some(GroupKind::new("apps", "Deployment"))
        );
        assert_eq!(GroupKind::of(&svc), Some(GroupKind::new("", "Service")));
        assert_eq!(
            GroupKind::of(&deploy).unwrap().to_string(),
            "apps/Deployment"
        );
        assert_eq!(GroupKind::of(&svc).unwrap().to_string(), "Service");
        assert_eq!(GroupKind::of(&json!({"kind": "Service"})), None);
        assert_eq!(GroupKind::of(&json!({"apiVersion": "v1", "kind": 3})), None);
        assert_eq!(GroupKind::of(&json!([1, 2])), None);
    }

    #[test]
    fn read_names_the_bad_field() {
        let err = read::<Metadata>(&json!({"name": "web", "generation": "2"})).unwrap_err();
        assert!(
            err.starts_with("generation: invalid type: string \"2\""),
            "{err}"
        );
    }

    #[test]
    fn nulls_read_as_absent() {
        let meta: Metadata =
            read(&json!({"name": "web", "annotations": null, "generation": null})).unwrap();
        assert_eq!(meta.name(), "web");
        assert_eq!(meta.annotation("a"), None);
        assert_eq!(meta.generation, None);
    }
}
