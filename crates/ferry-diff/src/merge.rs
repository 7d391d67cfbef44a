//! Offline prediction of the object an apply would leave behind: the live object with the
//! desired fields merged in. Fields the manifest does not mention (server defaults, fields
//! other controllers set) stay as they are live, unless the last applied manifest shows the
//! user set them once: then their removal is drift. Lists that Kubernetes merges by key
//! (containers by name, ports by port, ...) are merged element by element.

use serde_json::{Map, Value};

use crate::normalize::drop_nulls;
use crate::quantity::{is_quantity_field, same_quantity};

/// Predicts the result of applying `desired` over `live`. `last_applied` is the previously
/// applied manifest, if known. `builtin` enables the merge keys of the built-in API types.
pub(crate) fn predict(
    live: &Value,
    desired: &Value,
    last_applied: Option<&Value>,
    builtin: bool,
) -> Value {
    Merger { builtin }.value(live, desired, last_applied, Field::ROOT)
}

/// The API groups served by Kubernetes itself (custom resources always have a dotted group,
/// and may not use `*.k8s.io` without API review).
pub(crate) fn is_builtin_group(group: &str) -> bool {
    !group.contains('.') || group.ends_with(".k8s.io")
}

/// Where a value sits: the key of its parent map and its own key.
#[derive(Clone, Copy)]
struct Field<'a> {
    parent: Option<&'a str>,
    key: Option<&'a str>,
}

impl Field<'_> {
    const ROOT: Field<'static> = Field {
        parent: None,
        key: None,
    };
}

enum ListMerge {
    /// Elements are maps identified by this field.
    Keyed(&'static str),
    /// Elements are scalars forming a set.
    Set,
}

struct Merger {
    builtin: bool,
}

impl Merger {
    fn value(&self, live: &Value, desired: &Value, orig: Option<&Value>, field: Field) -> Value {
        match (live, desired) {
            (Value::Object(l), Value::Object(d)) => {
                Value::Object(self.map(l, d, orig.and_then(Value::as_object), field.key))
            }
            (Value::Array(l), Value::Array(d)) => {
                Value::Array(self.list(l, d, orig.and_then(Value::as_array), field.key))
            }
            _ if live == desired => live.clone(),
            _ if field
                .key
                .is_some_and(|k| is_quantity_field(field.parent, k))
                && same_quantity(live, desired) =>
            {
                live.clone()
            }
            _ => clean(desired),
        }
    }

    fn map(
        &self,
        live: &Map<String, Value>,
        desired: &Map<String, Value>,
        orig: Option<&Map<String, Value>>,
        key: Option<&str>,
    ) -> Map<String, Value> {
        let mut out = live.clone();
        for (k, d) in desired {
            if d.is_null() {
                out.remove(k);
                continue;
            }
            let merged = match live.get(k) {
                Some(l) => {
                    let field = Field {
                        parent: key,
                        key: Some(k),
                    };
                    self.value(l, d, orig.and_then(|o| o.get(k)), field)
                }
                None => clean(d),
            };
            out.insert(k.clone(), merged);
        }
        // Set before, removed from the manifest since: the apply removes it.
        for (k, o) in orig.into_iter().flatten() {
            if !desired.contains_key(k) {
                subtract(&mut out, k, o);
            }
        }
        out
    }

    fn list(
        &self,
        live: &[Value],
        desired: &[Value],
        orig: Option<&Vec<Value>>,
        key: Option<&str>,
    ) -> Vec<Value> {
        let field = Field { parent: key, key };
        match self.strategy(key, live, desired) {
            Some(ListMerge::Keyed(merge_key)) => self.keyed(live, desired, orig, merge_key, field),
            Some(ListMerge::Set) => set_merge(live, desired, orig),
            // Same length: compare element by element so defaulted fields inside elements are
            // no drift; otherwise the manifest's list replaces the live one.
            None if live.len() == desired.len() => {
                let orig = orig.filter(|o| o.len() == desired.len());
                live.iter()
                    .zip(desired)
                    .enumerate()
                    .map(|(i, (l, d))| self.value(l, d, orig.map(|o| &o[i]), field))
                    .collect()
            }
            None => desired.iter().map(clean).collect(),
        }
    }

    fn strategy(&self, key: Option<&str>, live: &[Value], desired: &[Value]) -> Option<ListMerge> {
        let all = |pred: &dyn Fn(&Value) -> bool| live.iter().chain(desired).all(pred);
        let keyed = |merge_key: &'static str| {
            all(&|v| v.get(merge_key).is_some_and(|k| !k.is_null()))
                .then_some(ListMerge::Keyed(merge_key))
        };
        match key? {
            "finalizers" => all(&Value::is_string).then_some(ListMerge::Set),
            "ownerReferences" => keyed("uid"),
            _ if !self.builtin => None,
            "containers"
            | "initContainers"
            | "ephemeralContainers"
            | "volumes"
            | "env"
            | "imagePullSecrets"
            | "resourceClaims" => keyed("name"),
            "volumeMounts" => keyed("mountPath"),
            "volumeDevices" => keyed("devicePath"),
            "hostAliases" => keyed("ip"),
            "topologySpreadConstraints" => keyed("topologyKey"),
            // Container ports merge by containerPort, Service ports by port.
            "ports" => keyed("containerPort").or_else(|| keyed("port")),
            _ => None,
        }
    }

    fn keyed(
        &self,
        live: &[Value],
        desired: &[Value],
        orig: Option<&Vec<Value>>,
        merge_key: &str,
        field: Field,
    ) -> Vec<Value> {
        let id = |v: &Value| v.get(merge_key).cloned();
        let find = |items: &[Value], k: &Option<Value>| items.iter().find(|v| &id(v) == k).cloned();
        let orig: &[Value] = orig.map_or(&[], Vec::as_slice);
        let in_desired = |v: &Value| find(desired, &id(v)).is_some();
        let in_live = |v: &Value| find(live, &id(v)).is_some();
        // A live-only element stays unless the last applied manifest had it.
        let kept = |v: &Value| !in_desired(v) && find(orig, &id(v)).is_none();
        let merged = |d: &Value| match find(live, &id(d)) {
            Some(l) => self.value(&l, d, find(orig, &id(d)).as_ref(), field),
            None => clean(d),
        };

        let live_order: Vec<_> = live.iter().filter(|v| in_desired(v)).map(id).collect();
        let desired_order: Vec<_> = desired.iter().filter(|v| in_live(v)).map(id).collect();
        let mut out = Vec::with_capacity(live.len().max(desired.len()));
        if live_order == desired_order {
            // Keep the live order (it may interleave elements other managers added).
            for l in live {
                match find(desired, &id(l)) {
                    Some(d) => out.push(merged(&d)),
                    None if kept(l) => out.push(l.clone()),
                    None => {}
                }
            }
            out.extend(desired.iter().filter(|d| !in_live(d)).map(merged));
        } else {
            out.extend(desired.iter().map(merged));
            out.extend(live.iter().filter(|l| kept(l)).cloned());
        }
        out
    }
}

/// Removes from `map[key]` what `applied` set there: a map loses only the applied entries
/// (others' entries stay), anything else goes whole.
fn subtract(map: &mut Map<String, Value>, key: &str, applied: &Value) {
    match (map.get_mut(key), applied) {
        (Some(Value::Object(live)), Value::Object(applied)) => {
            for (k, a) in applied {
                subtract(live, k, a);
            }
            if live.is_empty() && !applied.is_empty() {
                map.remove(key);
            }
        }
        _ => {
            map.remove(key);
        }
    }
}

fn set_merge(live: &[Value], desired: &[Value], orig: Option<&Vec<Value>>) -> Vec<Value> {
    let orig: &[Value] = orig.map_or(&[], Vec::as_slice);
    let mut out: Vec<Value> = live
        .iter()
        .filter(|v| desired.contains(v) || !orig.contains(v))
        .cloned()
        .collect();
    out.extend(desired.iter().filter(|d| !live.contains(d)).cloned());
    out
}

fn clean(value: &Value) -> Value {
    let mut value = value.clone();
    drop_nulls(&mut value);
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live_deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "generation": 3,
                "annotations": {"deployment.kubernetes.io/revision": "2"}},
            "spec": {
                "replicas": 2, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                "strategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                        "containers": [
                            {"name": "istio-proxy", "image": "proxy:1"},
                            {"name": "web", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent",
                             "terminationMessagePath": "/dev/termination-log",
                             "ports": [{"containerPort": 80, "protocol": "TCP"}],
                             "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}}
                        ]
                    }
                }
            }
        })
    }

    fn desired_deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [
                        {"name": "web", "image": "nginx:1.27",
                         "ports": [{"containerPort": 80}],
                         "resources": {"limits": {"cpu": 0.5, "memory": "1024Mi"}}}
                    ]}
                }
            }
        })
    }

    #[test]
    fn defaults_and_other_managers_fields_are_kept() {
        let live = live_deployment();
        assert_eq!(predict(&live, &desired_deployment(), None, true), live);
    }

    #[test]
    fn changed_field_is_taken_from_desired() {
        let mut desired = desired_deployment();
        desired["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.28");
        desired["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] =
            json!("1");
        let predicted = predict(&live_deployment(), &desired, None, true);
        let web = &predicted["spec"]["template"]["spec"]["containers"][1];
        assert_eq!(web["image"], "nginx:1.28");
        assert_eq!(web["resources"]["limits"]["cpu"], "1");
        assert_eq!(web["imagePullPolicy"], "IfNotPresent");
    }

    #[test]
    fn last_applied_turns_removal_into_drift() {
        let mut live = live_deployment();
        live["metadata"]["labels"] = json!({"team": "a", "tier": "front"});
        let mut orig = desired_deployment();
        orig["metadata"]["labels"] = json!({"team": "a", "tier": "front"});
        let mut desired = desired_deployment();
        desired["metadata"]["labels"] = json!({"team": "a"});
        let predicted = predict(&live, &desired, Some(&orig), true);
        assert_eq!(predicted["metadata"]["labels"], json!({"team": "a"}));
        // Without the last applied manifest the extra label looks like someone else's field.
        let predicted = predict(&live, &desired, None, true);
        assert_eq!(
            predicted["metadata"]["labels"],
            json!({"team": "a", "tier": "front"})
        );
    }

    #[test]
    fn last_applied_removes_only_applied_entries() {
        let live = json!({"metadata": {"annotations": {"mine": "1", "revision": "2"}}});
        let orig = json!({"metadata": {"annotations": {"mine": "1"}}});
        let desired = json!({"metadata": {}});
        let predicted = predict(&live, &desired, Some(&orig), true);
        assert_eq!(
            predicted,
            json!({"metadata": {"annotations": {"revision": "2"}}})
        );
        // kubectl records `annotations: {}`: that removes nothing.
        let orig = json!({"metadata": {"annotations": {}}});
        assert_eq!(predict(&live, &desired, Some(&orig), true), live);
    }

    #[test]
    fn last_applied_removes_keyed_element() {
        let live = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let orig = live.clone();
        let desired = json!({"spec": {"containers": [{"name": "a", "image": "x"}]}});
        let predicted = predict(&live, &desired, Some(&orig), true);
        assert_eq!(predicted, desired);
    }

    #[test]
    fn reordered_keyed_list_follows_desired() {
        let live = json!({"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]});
        let desired = json!({"env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]});
        assert_eq!(predict(&live, &desired, None, true), desired);
    }

    #[test]
    fn custom_resources_replace_lists_of_different_length() {
        let live = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let desired = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(predict(&live, &desired, None, false), desired);
        assert_eq!(predict(&live, &desired, None, true), live);
    }

    #[test]
    fn explicit_null_removes_and_finalizers_merge_as_set() {
        let live = json!({"metadata": {"finalizers": ["kubernetes.io/pvc-protection"],
            "annotations": {"a": "1", "b": "2"}}});
        let desired = json!({"metadata": {"finalizers": ["example.com/f"],
            "annotations": {"b": null}}});
        let predicted = predict(&live, &desired, None, true);
        assert_eq!(
            predicted,
            json!({"metadata": {"finalizers": ["kubernetes.io/pvc-protection", "example.com/f"],
                "annotations": {"a": "1"}}})
        );
    }

    #[test]
    fn builtin_groups() {
        assert!(is_builtin_group(""));
        assert!(is_builtin_group("apps"));
        assert!(is_builtin_group("networking.k8s.io"));
        assert!(!is_builtin_group("argoproj.io"));
        assert!(!is_builtin_group("cluster.x-k8s.io"));
    }
}
