//! argocd-cm's resource customizations as Argo CD's settings API shows them: `resourceOverrides`,
//! keyed `group/Kind` (`Kind` for the core group, `*/*` for `all`), from the older
//! `resource.customizations` block and the `resource.customizations.<type>.<group_kind>` keys.
//! Upstream's ResourceOverride writes its ignore rules as YAML text (`ignoreDifferences`,
//! `ignoreResourceUpdates`) and its health script as `health.lua`; the UI marks the fields the
//! system-wide rules ignore from them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tracing::warn;

const CUSTOMIZATIONS: &str = "resource.customizations";

/// One customization as the older block writes it (rules as YAML text, like upstream's).
#[derive(Deserialize, Default)]
struct Block {
    #[serde(rename = "health.lua", default)]
    health_lua: Option<String>,
    #[serde(rename = "health.lua.useOpenLibs", default)]
    use_open_libs: Option<bool>,
    #[serde(default)]
    actions: Option<String>,
    #[serde(rename = "ignoreDifferences", default)]
    ignore_differences: Option<String>,
    #[serde(rename = "ignoreResourceUpdates", default)]
    ignore_resource_updates: Option<String>,
    #[serde(rename = "knownTypeFields", default)]
    known_type_fields: Option<Vec<KnownTypeField>>,
}

/// Upstream's OverrideIgnoreDiff; an unset list is `null` in its YAML text, as upstream writes it.
#[derive(Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct IgnoreDiff {
    jq_path_expressions: Option<Vec<String>>,
    json_pointers: Option<Vec<String>>,
    managed_fields_managers: Option<Vec<String>>,
}

#[derive(Deserialize, Serialize)]
struct KnownTypeField {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    field: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    r#type: String,
}

#[derive(Default)]
struct Override {
    health_lua: String,
    use_open_libs: bool,
    actions: String,
    ignore_differences: IgnoreDiff,
    ignore_resource_updates: IgnoreDiff,
    known_type_fields: Vec<KnownTypeField>,
}

impl Override {
    fn view(&self) -> Value {
        let mut view = Map::new();
        if !self.health_lua.is_empty() {
            view.insert("health.lua".into(), json!(self.health_lua));
        }
        if self.use_open_libs {
            view.insert("health.lua.useOpenLibs".into(), json!(true));
        }
        if !self.actions.is_empty() {
            view.insert("actions".into(), json!(self.actions));
        }
        view.insert(
            "ignoreDifferences".into(),
            json!(yaml_text(&self.ignore_differences)),
        );
        view.insert(
            "ignoreResourceUpdates".into(),
            json!(yaml_text(&self.ignore_resource_updates)),
        );
        if !self.known_type_fields.is_empty() {
            view.insert("knownTypeFields".into(), json!(self.known_type_fields));
        }
        Value::Object(view)
    }
}

fn yaml_text(rules: &IgnoreDiff) -> String {
    serde_yaml::to_string(rules).unwrap_or_default()
}

/// `<group>_<Kind>` as upstream's override key `group/Kind`; `Kind` alone for the core group.
fn override_key(group_kind: &str) -> Option<String> {
    match group_kind.split('_').collect::<Vec<_>>()[..] {
        ["all"] => Some("*/*".into()),
        [kind] if !kind.is_empty() => Some(kind.into()),
        [group, kind] => Some(format!("{group}/{kind}")),
        _ => None,
    }
}

/// The `resourceOverrides` map of argocd-cm's `data`. An entry that does not parse is left out
/// with a warning naming its key (upstream fails the whole settings request, login page included).
pub fn resource_overrides(cm: &BTreeMap<String, String>) -> Map<String, Value> {
    let mut overrides: BTreeMap<String, Override> = BTreeMap::new();
    if let Some(block) = cm.get(CUSTOMIZATIONS).filter(|b| !b.trim().is_empty()) {
        match serde_yaml::from_str::<BTreeMap<String, Block>>(block) {
            Ok(entries) => {
                for (key, entry) in entries {
                    let found = overrides.entry(key.clone()).or_default();
                    found.health_lua = entry.health_lua.unwrap_or_default();
                    found.use_open_libs = entry.use_open_libs.unwrap_or_default();
                    found.actions = entry.actions.unwrap_or_default();
                    found.known_type_fields = entry.known_type_fields.unwrap_or_default();
                    for (text, into) in [
                        (entry.ignore_differences, &mut found.ignore_differences),
                        (
                            entry.ignore_resource_updates,
                            &mut found.ignore_resource_updates,
                        ),
                    ] {
                        match text.as_deref().map(serde_yaml::from_str).transpose() {
                            Ok(rules) => *into = rules.unwrap_or_default(),
                            Err(err) => warn!("argocd-cm {CUSTOMIZATIONS} {key}: {err}"),
                        }
                    }
                }
            }
            Err(err) => warn!("argocd-cm {CUSTOMIZATIONS}: {err}"),
        }
    }
    for (key, value) in cm {
        let Some(rest) = key
            .strip_prefix(CUSTOMIZATIONS)
            .and_then(|r| r.strip_prefix('.'))
        else {
            continue;
        };
        let Some((kind_of, group_kind)) = rest.split_once('.') else {
            continue;
        };
        let Some(id) = override_key(group_kind) else {
            warn!("argocd-cm {key}: not resource.customizations.<type>.<group_kind>");
            continue;
        };
        let found = overrides.entry(id).or_default();
        let parsed = match kind_of {
            "health" => {
                found.health_lua = value.clone();
                Ok(())
            }
            "useOpenLibs" => value
                .trim()
                .parse()
                .map(|open| found.use_open_libs = open)
                .map_err(|err| err.to_string()),
            "actions" => {
                found.actions = value.clone();
                Ok(())
            }
            "ignoreDifferences" => serde_yaml::from_str(value)
                .map(|rules| found.ignore_differences = rules)
                .map_err(|err| err.to_string()),
            "ignoreResourceUpdates" => serde_yaml::from_str(value)
                .map(|rules| found.ignore_resource_updates = rules)
                .map_err(|err| err.to_string()),
            "knownTypeFields" => serde_yaml::from_str(value)
                .map(|fields| found.known_type_fields = fields)
                .map_err(|err| err.to_string()),
            other => Err(format!("resource customization type {other} not supported")),
        };
        if let Err(err) = parsed {
            warn!("argocd-cm {key}: {err}");
        }
    }
    overrides
        .into_iter()
        .map(|(key, found)| (key, found.view()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore_rules(view: &Value, key: &str) -> IgnoreDiff {
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
