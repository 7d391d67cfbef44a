//! Fields owned by given field managers, read from the live object's `metadata.managedFields`
//! (`fieldsV1` format: `f:<field>`, `k:<key fields>`, `v:<value>`, `i:<index>`, `.` for the
//! element itself).

use serde_json::{Map, Value};

use crate::path::{Path, Step, child};

/// One element of a managed path.
#[derive(Debug, PartialEq)]
enum Element {
    Field(String),
    /// A list element identified by its key fields.
    Key(Map<String, Value>),
    /// A list element of a set, identified by its value.
    Value(Value),
    Index(usize),
}

/// A set of managed fields as a tree.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct FieldSet {
    /// `.`: the node itself is managed (for list elements: the manager added the element).
    member: bool,
    children: Vec<(Element, FieldSet)>,
}

impl FieldSet {
    pub fn parse(fields: &Value) -> Result<Self, String> {
        let Value::Object(map) = fields else {
            return Err("fieldsV1 is not a map".into());
        };
        let mut set = FieldSet::default();
        for (key, sub) in map {
            if key == "." {
                set.member = true;
                continue;
            }
            let element = parse_element(key)?;
            set.children.push((element, FieldSet::parse(sub)?));
        }
        Ok(set)
    }

    /// The paths in `doc` of managed fields whose value differs from `other` (the other side
    /// of the comparison). A managed list element the other side does not have at all is
    /// returned whole.
    pub fn differing_paths(&self, doc: &Value, other: Option<&Value>) -> Vec<Path> {
        let mut out = Vec::new();
        self.walk(doc, other, &mut Vec::new(), &mut out);
        out
    }

    fn walk(&self, doc: &Value, other: Option<&Value>, path: &mut Path, out: &mut Vec<Path>) {
        for (element, sub) in &self.children {
            let Some((step, node)) = resolve(doc, element) else {
                continue;
            };
            let counterpart = other.and_then(|o| resolve(o, element)).map(|(_, v)| v);
            path.push(step);
            let whole_element =
                sub.member && counterpart.is_none() && !matches!(element, Element::Field(_));
            if sub.children.is_empty() || whole_element {
                if counterpart != Some(node) {
                    out.push(path.clone());
                }
            } else {
                sub.walk(node, counterpart, path, out);
            }
            path.pop();
        }
    }
}

fn parse_element(key: &str) -> Result<Element, String> {
    let bad = |what: &str| format!("managedFields key `{key}`: {what}");
    let (prefix, rest) = key
        .split_at_checked(2)
        .ok_or_else(|| bad("unknown format"))?;
    Ok(match prefix {
        "f:" => Element::Field(rest.to_owned()),
        "k:" => match serde_json::from_str(rest) {
            Ok(Value::Object(keys)) => Element::Key(keys),
            _ => return Err(bad("key is not a JSON map")),
        },
        "v:" => Element::Value(serde_json::from_str(rest).map_err(|_| bad("value is not JSON"))?),
        "i:" => Element::Index(rest.parse().map_err(|_| bad("index is not a number"))?),
        _ => return Err(bad("unknown format")),
    })
}

fn resolve<'a>(node: &'a Value, element: &Element) -> Option<(Step, &'a Value)> {
    let step = match (element, node) {
        (Element::Field(name), Value::Object(_)) => Step::Key(name.clone()),
        (Element::Index(i), Value::Array(_)) => Step::Index(*i),
        (Element::Key(keys), Value::Array(items)) => Step::Index(
            items
                .iter()
                .position(|item| keys.iter().all(|(k, v)| item.get(k) == Some(v)))?,
        ),
        (Element::Value(value), Value::Array(items)) => {
            Step::Index(items.iter().position(|item| item == value)?)
        }
        _ => return None,
    };
    let value = child(node, &step)?;
    Some((step, value))
}

/// The field sets of the named managers in the live object's managedFields.
pub(crate) fn owned_by(live: &Value, managers: &[String]) -> Result<Vec<FieldSet>, String> {
    let entries = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    entries
        .iter()
        .filter(|entry| {
            let manager = entry
                .get("manager")
                .and_then(Value::as_str)
                .unwrap_or_default();
            managers.iter().any(|m| m == manager)
        })
        .filter_map(|entry| entry.get("fieldsV1"))
        .map(FieldSet::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::to_pointer;
    use serde_json::json;

    /// Shaped like what kube-apiserver records for an HPA scaling and a sidecar injector.
    fn live() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "web",
                "managedFields": [
                    {"manager": "ferry", "operation": "Apply", "fieldsType": "FieldsV1",
                     "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {
                        "f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}},
                    {"manager": "kube-controller-manager", "operation": "Update", "subresource": "scale",
                     "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
                    {"manager": "injector", "operation": "Update", "fieldsType": "FieldsV1",
                     "fieldsV1": {
                        "f:metadata": {"f:annotations": {".": {}, "f:injected": {}}},
                        "f:spec": {"f:template": {"f:spec": {"f:containers": {
                            "k:{\"name\":\"proxy\"}": {".": {}, "f:image": {}, "f:name": {}},
                            "k:{\"name\":\"web\"}": {"f:env": {".": {},
                                "k:{\"name\":\"PROXY\"}": {".": {}, "f:name": {}, "f:value": {}}}}}}}}}}
                ]
            },
            "spec": {"replicas": 5, "template": {"spec": {"containers": [
                {"name": "proxy", "image": "proxy:1"},
                {"name": "web", "image": "nginx", "env": [{"name": "PROXY", "value": "on"}]}
            ]}}}
        })
    }

    fn desired() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "web", "image": "nginx"}
            ]}}}
        })
    }

    fn pointers(paths: Vec<Path>) -> Vec<String> {
        let mut out: Vec<String> = paths.iter().map(|p| to_pointer(p)).collect();
        out.sort();
        out
    }

    #[test]
    fn parses_all_element_kinds() {
        let set = FieldSet::parse(&json!({"f:a": {".": {}, "i:2": {}, "v:\"x\"": {},
            "k:{\"port\":80,\"protocol\":\"TCP\"}": {}}}))
        .unwrap();
        let a = &set.children[0].1;
        assert!(a.member);
        assert_eq!(a.children.len(), 3);
        assert!(FieldSet::parse(&json!({"x:y": {}})).is_err());
        assert!(FieldSet::parse(&json!({"k:[1]": {}})).is_err());
    }

    #[test]
    fn replicas_owned_by_controller_manager() {
        let sets = owned_by(&live(), &["kube-controller-manager".into()]).unwrap();
        assert_eq!(sets.len(), 1);
        assert_eq!(
            pointers(sets[0].differing_paths(&live(), Some(&desired()))),
            ["/spec/replicas"]
        );
        assert_eq!(
            pointers(sets[0].differing_paths(&desired(), Some(&live()))),
            ["/spec/replicas"]
        );
    }

    #[test]
    fn injected_elements_resolve_by_key() {
        let sets = owned_by(&live(), &["injector".into()]).unwrap();
        let paths = pointers(sets[0].differing_paths(&live(), Some(&desired())));
        assert_eq!(
            paths,
            [
                "/spec/template/spec/containers/0",
                "/spec/template/spec/containers/1/env/0"
            ]
        );
        // The desired side has none of those fields: nothing to remove there.
        assert!(
            sets[0]
                .differing_paths(&desired(), Some(&live()))
                .is_empty()
        );
    }

    #[test]
    fn equal_fields_are_not_reported() {
        let sets = owned_by(&live(), &["ferry".into()]).unwrap();
        assert_eq!(
            pointers(sets[0].differing_paths(&live(), Some(&desired()))),
            ["/spec/replicas"]
        );
    }
}
