//! argocd-cm's resource customizations as Argo CD's settings API shows them: `resourceOverrides`,
//! keyed `group/Kind` (`Kind` for the core group, `*/*` for `all`), read by
//! [`ResourceOverrides`]. Upstream's ResourceOverride writes its ignore rules as YAML text
//! (`ignoreDifferences`, `ignoreResourceUpdates`) and its health script as `health.lua`; the UI
//! marks the fields the system-wide rules ignore from them.

use std::collections::BTreeMap;

use ferry_types::resource_overrides::{OverrideIgnoreDiff, ResourceOverride, ResourceOverrides};
use serde_json::{Map, Value, json};
use tracing::warn;

fn view(found: &ResourceOverride) -> Value {
    let mut view = Map::new();
    if !found.health_lua.is_empty() {
        view.insert("health.lua".into(), json!(found.health_lua));
    }
    if found.use_open_libs {
        view.insert("health.lua.useOpenLibs".into(), json!(true));
    }
    if !found.actions.is_empty() {
        view.insert("actions".into(), json!(found.actions));
    }
    view.insert(
        "ignoreDifferences".into(),
        json!(yaml_text(&found.ignore_differences)),
    );
    view.insert(
        "ignoreResourceUpdates".into(),
        json!(yaml_text(&found.ignore_resource_updates)),
    );
    if !found.known_type_fields.is_empty() {
        view.insert("knownTypeFields".into(), json!(found.known_type_fields));
    }
    Value::Object(view)
}

fn yaml_text(rules: &OverrideIgnoreDiff) -> String {
    serde_yaml::to_string(rules).unwrap_or_default()
}

/// The `resourceOverrides` map of argocd-cm's `data`. An entry that does not parse is left out
/// with a warning naming its key (upstream fails the whole settings request, login page included).
pub fn resource_overrides(cm: &BTreeMap<String, String>) -> Map<String, Value> {
    let read = ResourceOverrides::from_argocd_cm(cm);
    for problem in &read.problems {
        warn!("{problem}");
    }
    read.overrides
        .iter()
        .map(|(key, found)| (key.clone(), view(found)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore_rules(view: &Value, key: &str) -> OverrideIgnoreDiff {
        serde_yaml::from_str(view[key]["ignoreDifferences"].as_str().unwrap()).unwrap()
    }

    #[test]
    fn both_key_styles_keyed_as_upstream() {
        let cm = BTreeMap::from([
            (
                "resource.customizations.ignoreDifferences.apps_Deployment".to_string(),
                "jsonPointers:\n- /spec/replicas\n".to_string(),
            ),
            (
                "resource.customizations.ignoreDifferences.all".to_string(),
                "managedFieldsManagers: [kube-controller-manager]\n".to_string(),
            ),
            (
                "resource.customizations.health.Service".to_string(),
                "return {status = 'Healthy'}".to_string(),
            ),
            (
                "resource.customizations".to_string(),
                "example.com/Widget:\n  ignoreDifferences: |\n    jqPathExpressions: ['.spec.x']\n  actions: |\n    discovery.lua: return {}\n"
                    .to_string(),
            ),
            ("url".to_string(), "https://cd.example".to_string()),
        ]);
        let view = Value::Object(resource_overrides(&cm));
        let keys: Vec<&String> = view.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["*/*", "Service", "apps/Deployment", "example.com/Widget"]
        );
        assert_eq!(
            ignore_rules(&view, "apps/Deployment").json_pointers,
            Some(vec!["/spec/replicas".to_string()])
        );
        assert_eq!(
            ignore_rules(&view, "*/*").managed_fields_managers,
            Some(vec!["kube-controller-manager".to_string()])
        );
        assert_eq!(
            ignore_rules(&view, "example.com/Widget").jq_path_expressions,
            Some(vec![".spec.x".to_string()])
        );
        assert_eq!(view["Service"]["health.lua"], "return {status = 'Healthy'}");
        assert!(view["example.com/Widget"]["actions"].is_string());
        // Unset lists are null in the text, as upstream's YAML of an empty OverrideIgnoreDiff.
        assert_eq!(
            view["Service"]["ignoreDifferences"],
            "jqPathExpressions: null\njsonPointers: null\nmanagedFieldsManagers: null\n"
        );
    }

    #[test]
    fn a_bad_entry_is_left_out_and_the_rest_kept() {
        let cm = BTreeMap::from([
            (
                "resource.customizations.ignoreDifferences.apps_Deployment".to_string(),
                "jsonPointers: {not: a list}\n".to_string(),
            ),
            (
                "resource.customizations.ignoreDifferences.a_b_C".to_string(),
                "jsonPointers: [/x]\n".to_string(),
            ),
            (
                "resource.customizations.ignoreDifferences.ConfigMap".to_string(),
                "jsonPointers: [/data/x]\n".to_string(),
            ),
        ]);
        let view = Value::Object(resource_overrides(&cm));
        assert!(
            ignore_rules(&view, "apps/Deployment")
                .json_pointers
                .is_none()
        );
        assert_eq!(
            ignore_rules(&view, "ConfigMap").json_pointers,
            Some(vec!["/data/x".to_string()])
        );
        assert_eq!(view.as_object().unwrap().len(), 2);
    }
}
