//! Reading live objects: typed views of the fields a check needs.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

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
