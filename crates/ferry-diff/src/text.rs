//! Unified text diff of the two objects rendered as YAML.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};
use serde_json::Value;
use similar::TextDiff;

use crate::DiffError;
use crate::object::ResourceId;

const CONTEXT_LINES: usize = 3;

/// `--- live <resource>` / `+++ desired <resource>` unified diff; empty when equal.
pub(crate) fn unified(
    id: &ResourceId,
    live: Option<&Value>,
    desired: Option<&Value>,
) -> Result<String, DiffError> {
    let (old, new) = (to_yaml(id, live)?, to_yaml(id, desired)?);
    if old == new {
        return Ok(String::new());
    }
    Ok(TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(CONTEXT_LINES)
        .header(&format!("live {id}"), &format!("desired {id}"))
        .to_string())
}

fn to_yaml(id: &ResourceId, value: Option<&Value>) -> Result<String, DiffError> {
    match value {
        None => Ok(String::new()),
        Some(value) => serde_yaml::to_string(&Sorted(value)).map_err(|source| DiffError::Render {
            resource: id.to_string(),
            source,
        }),
    }
}

/// Serializes maps with sorted keys whatever map type serde_json was built with, so equal
/// objects always render to equal text.
struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let sorted: BTreeMap<&String, Sorted> =
                    map.iter().map(|(k, v)| (k, Sorted(v))).collect();
                sorted.serialize(serializer)
            }
            Value::Array(items) => serializer.collect_seq(items.iter().map(Sorted)),
            scalar => scalar.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id() -> ResourceId {
        ResourceId {
            group: "apps".into(),
            kind: "Deployment".into(),
            namespace: "shop".into(),
            name: "web".into(),
        }
    }

    #[test]
    fn changed_field_shape() {
        let live = json!({"kind": "Deployment", "spec": {"replicas": 3, "paused": false}});
        let desired = json!({"kind": "Deployment", "spec": {"replicas": 2, "paused": false}});
        let text = unified(&id(), Some(&live), Some(&desired)).unwrap();
        assert_eq!(
            text,
            "--- live apps/Deployment shop/web\n\
             +++ desired apps/Deployment shop/web\n\
             @@ -1,4 +1,4 @@\n \
             kind: Deployment\n \
             spec:\n   \
             paused: false\n\
             -  replicas: 3\n\
             +  replicas: 2\n"
        );
    }

    #[test]
    fn missing_object_is_all_additions_and_equal_is_empty() {
        let desired = json!({"kind": "Deployment"});
        let text = unified(&id(), None, Some(&desired)).unwrap();
        assert!(
            text.ends_with("@@ -0,0 +1 @@\n+kind: Deployment\n"),
            "{text}"
        );
        assert_eq!(unified(&id(), Some(&desired), Some(&desired)).unwrap(), "");
    }
}
