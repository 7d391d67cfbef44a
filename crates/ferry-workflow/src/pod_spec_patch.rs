//! `podSpecPatch` (the workflow's, then the template's): a strategic merge patch of the pod's
//! spec, YAML or JSON, as upstream applies it (`strategicpatch.StrategicMergePatch` over a
//! PodSpec). Lists with a patch merge key in the Kubernetes API (containers by `name`, a
//! container's `env` by `name`, `ports` by `containerPort`, `volumeMounts` by `mountPath`...)
//! merge item by item, other lists are replaced, maps merge, `null` removes a field, and the
//! `$patch: delete` / `$patch: replace` directives work on maps and list items.

use k8s_openapi::api::core::v1::PodSpec;
use serde_json::{Map, Value};

/// Where in a pod spec a map is: the lists' merge keys depend on it.
#[derive(Clone, Copy)]
enum Level {
    PodSpec,
    Container,
    Other,
}

/// The merge key of list `field` in a map at `level`, and the level of its items.
fn merge_key(level: Level, field: &str) -> Option<(&'static str, Level)> {
    match (level, field) {
        (Level::PodSpec, "containers" | "initContainers" | "ephemeralContainers") => {
            Some(("name", Level::Container))
        }
        (Level::PodSpec, "volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates") => {
            Some(("name", Level::Other))
        }
        (Level::PodSpec, "hostAliases") => Some(("ip", Level::Other)),
        (Level::PodSpec, "topologySpreadConstraints") => Some(("topologyKey", Level::Other)),
        (Level::Container, "env") => Some(("name", Level::Other)),
        (Level::Container, "ports") => Some(("containerPort", Level::Other)),
        (Level::Container, "volumeMounts") => Some(("mountPath", Level::Other)),
        (Level::Container, "volumeDevices") => Some(("devicePath", Level::Other)),
        _ => None,
    }
}

/// Applies `patch` (its tags already substituted) to `spec`, a pod spec as JSON.
pub fn apply(spec: &mut Value, patch: &str) -> Result<(), String> {
    let parsed: Value = serde_yaml::from_str(patch).map_err(|err| {
        format!(
            "Error applying PodSpecPatch: Failed to convert the PodSpecPatch yaml to json: {err}"
        )
    })?;
    let invalid =
        |err: String| format!("Error applying PodSpecPatch: invalid podSpecPatch {patch:?}: {err}");
    let (Value::Object(base), Value::Object(patch_map)) = (&mut *spec, &parsed) else {
        return Err(invalid(format!("{} is not a pod spec", kind(&parsed))));
    };
    merge_map(base, patch_map, Level::PodSpec).map_err(invalid)?;
    serde_json::from_value::<PodSpec>(spec.clone())
        .map(drop)
        .map_err(|err| invalid(err.to_string()))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

fn directive(map: &Map<String, Value>) -> Option<&str> {
    map.get("$patch").and_then(Value::as_str)
}

/// The patch's value without its directives, to be set as it is.
fn clean(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| !key.starts_with('$'))
                .map(|(key, value)| (key.clone(), clean(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(clean).collect()),
        other => other.clone(),
    }
}

fn merge_map(
    base: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    level: Level,
) -> Result<(), String> {
    if directive(patch) == Some("replace") {
        let Value::Object(replacement) = clean(&Value::Object(patch.clone())) else {
            unreachable!("a map stays a map")
        };
        *base = replacement;
        return Ok(());
    }
    for (key, value) in patch {
        // Directives ($setElementOrder/..., $retainKeys) only order or prune what a full
        // client-side diff would; a hand-written patch does not need them.
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() {
            base.remove(key);
            continue;
        }
        if let Value::Object(map) = value
            && directive(map) == Some("delete")
        {
            base.remove(key);
            continue;
        }
        match (base.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(map)) => {
                merge_map(existing, map, Level::Other)?;
            }
            (Some(Value::Array(existing)), Value::Array(items)) => match merge_key(level, key) {
                Some((merge_key, item_level)) => {
                    merge_list(existing, items, merge_key, item_level)
                        .map_err(|err| format!("{key}: {err}"))?;
                }
                None => *existing = items.iter().map(clean).collect(),
            },
            (_, Value::Array(items)) if merge_key(level, key).is_some() => {
                let mut merged = Vec::new();
                let (merge_key, item_level) = merge_key(level, key).expect("checked");
                merge_list(&mut merged, items, merge_key, item_level)
                    .map_err(|err| format!("{key}: {err}"))?;
                base.insert(key.clone(), Value::Array(merged));
            }
            _ => {
                base.insert(key.clone(), clean(value));
            }
        }
    }
    Ok(())
}

fn merge_list(
    base: &mut Vec<Value>,
    patch: &[Value],
    key: &str,
    level: Level,
) -> Result<(), String> {
    let replace = |item: &Value| {
        item.as_object()
            .is_some_and(|map| directive(map) == Some("replace"))
    };
    if patch.iter().any(replace) {
        *base = patch
            .iter()
            .filter(|item| !replace(item))
            .map(clean)
            .collect();
        return Ok(());
    }
    for item in patch {
        let Value::Object(map) = item else {
            return Err(format!("{item} is not a map with the merge key {key}"));
        };
        let Some(wanted) = map.get(key) else {
            return Err(format!(
                "map: {item} does not contain declared merge key: {key}"
            ));
        };
        let found = base.iter().position(|b| b.get(key) == Some(wanted));
        match (found, directive(map)) {
            (Some(index), Some("delete")) => {
                base.remove(index);
            }
            (None, Some("delete")) => {}
            (Some(index), _) => {
                let Value::Object(existing) = &mut base[index] else {
                    unreachable!("found by a key of its map")
                };
                merge_map(existing, map, level)?;
            }
            (None, _) => base.push(clean(item)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> Value {
        json!({
            "restartPolicy": "Never",
            "containers": [{
                "name": "main",
                "image": "busybox",
                "command": ["echo"],
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "volumeMounts": [{"name": "x", "mountPath": "/x"}],
            }],
            "volumes": [{"name": "x", "emptyDir": {}}],
            "tolerations": [{"key": "a", "operator": "Exists"}],
        })
    }

    #[test]
    fn lists_with_a_merge_key_merge_by_it_and_others_are_replaced() {
        let mut s = spec();
        apply(
            &mut s,
            r#"{"containers":[{"name":"main","resources":{"limits":{"cpu":"100m"}},"env":[{"name":"B","value":"two"},{"name":"C","value":"3"}]}]}"#,
        )
        .unwrap();
        apply(
            &mut s,
            "containers:\n- name: main\n  resources: {limits: {memory: 100Mi}}\ntolerations: [{key: b, operator: Exists}]\nnodeSelector: {disk: ssd}\n",
        )
        .unwrap();
        let main = &s["containers"][0];
        assert_eq!(main["image"], "busybox", "the rest stays");
        assert_eq!(
            main["resources"],
            json!({"limits": {"cpu": "100m", "memory": "100Mi"}})
        );
        assert_eq!(
            main["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "two"}, {"name": "C", "value": "3"}])
        );
        assert_eq!(
            s["tolerations"],
            json!([{"key": "b", "operator": "Exists"}])
        );
        assert_eq!(s["nodeSelector"], json!({"disk": "ssd"}));
    }

    #[test]
    fn directives_and_nulls_remove_and_replace() {
        let mut s = spec();
        apply(
            &mut s,
            r#"{"volumes":[{"name":"x","$patch":"delete"},{"name":"y","emptyDir":{}}],
               "containers":[{"name":"main","env":[{"$patch":"replace"},{"name":"Z","value":"z"}],"volumeMounts":null},
                             {"name":"extra","image":"busybox"}],
               "restartPolicy":null}"#,
        )
        .unwrap();
        assert_eq!(s["volumes"], json!([{"name": "y", "emptyDir": {}}]));
        assert_eq!(
            s["containers"][0]["env"],
            json!([{"name": "Z", "value": "z"}])
        );
        assert!(s["containers"][0].get("volumeMounts").is_none());
        assert_eq!(s["containers"][1]["name"], "extra");
        assert!(s.get("restartPolicy").is_none());
    }

    #[test]
    fn invalid_patches_are_errors_naming_the_patch() {
        let err = apply(&mut spec(), "containers: [").unwrap_err();
        assert!(
            err.starts_with(
                "Error applying PodSpecPatch: Failed to convert the PodSpecPatch yaml to json: "
            ),
            "{err}"
        );
        let err = apply(&mut spec(), r#"{"activeDeadlineSeconds": "soon"}"#).unwrap_err();
        assert!(
            err.starts_with(
                r#"Error applying PodSpecPatch: invalid podSpecPatch "{\"activeDeadlineSeconds\": \"soon\"}": "#
            ),
            "{err}"
        );
        let err = apply(&mut spec(), r#"{"containers": [{"image": "x"}]}"#).unwrap_err();
        assert!(
            err.contains("does not contain declared merge key: name"),
            "{err}"
        );
        let err = apply(&mut spec(), "just text").unwrap_err();
        assert!(err.ends_with("a string is not a pod spec"), "{err}");
    }
}
