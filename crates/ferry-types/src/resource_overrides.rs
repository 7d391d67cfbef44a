//! argocd-cm's resource customizations, Argo CD's `ResourceOverride`s keyed `group/Kind`
//! (`Kind` for the core group, globs allowed, `*/*` for all): the older `resource.customizations`
//! YAML block, then the `resource.customizations.<type>.<group_kind>` keys, each of which
//! replaces one field of its group/kind's override (upstream's GetResourceOverrides). The one
//! reading of these keys for health checks, actions, ignore rules and the settings API.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::application::parse_go_bool;

/// The block's key, and the prefix of the split keys.
pub const RESOURCE_CUSTOMIZATIONS: &str = "resource.customizations";

/// What argocd-cm customizes for one group/kind.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResourceOverride {
    /// A Lua health script (`health.lua`; empty: none).
    pub health_lua: String,
    pub use_open_libs: bool,
    /// The actions' YAML (`discovery.lua`, `definitions`, `mergeBuiltinActions`), as written.
    pub actions: String,
    pub ignore_differences: OverrideIgnoreDiff,
    pub ignore_resource_updates: OverrideIgnoreDiff,
    pub known_type_fields: Vec<KnownTypeField>,
}

/// Upstream's OverrideIgnoreDiff. An unset list stays `None`: upstream writes it as `null` in
/// the YAML text its settings API shows (fields in the order its YAML sorts them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OverrideIgnoreDiff {
    #[serde(default)]
    pub jq_path_expressions: Option<Vec<String>>,
    #[serde(default)]
    pub json_pointers: Option<Vec<String>>,
    #[serde(default)]
    pub managed_fields_managers: Option<Vec<String>>,
}

impl OverrideIgnoreDiff {
    pub fn is_empty(&self) -> bool {
        [
            &self.jq_path_expressions,
            &self.json_pointers,
            &self.managed_fields_managers,
        ]
        .iter()
        .all(|list| list.as_ref().is_none_or(Vec::is_empty))
    }
}

/// A field whose values are compared as a known Kubernetes type (`core/v1/PodSpec`, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownTypeField {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
}

/// An argocd-cm entry that could not be read; the rest is read all the same.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverrideProblem {
    /// The argocd-cm key.
    pub key: String,
    /// The customization type the key (or the block entry's field) sets: `health`, `actions`,
    /// ...; `None` when the whole block could not be read.
    pub customization: Option<String>,
    pub reason: String,
}

impl fmt::Display for OverrideProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "argocd-cm key {:?}: {}", self.key, self.reason)
    }
}

/// argocd-cm's overrides by group/kind key, with what could not be read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResourceOverrides {
    pub overrides: BTreeMap<String, ResourceOverride>,
    pub problems: Vec<OverrideProblem>,
}

/// One entry of the block: the ignore rules are YAML text there, as in upstream's JSON form.
#[derive(Deserialize, Default)]
struct BlockEntry {
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

impl ResourceOverrides {
    /// Reads an argocd-cm ConfigMap's `data` (other keys are ignored).
    pub fn from_argocd_cm<K, V>(data: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut block = None;
        let mut split = Vec::new();
        for (key, value) in data {
            let (key, value) = (key.as_ref(), value.as_ref());
            if key == RESOURCE_CUSTOMIZATIONS {
                block = Some(value.to_owned());
            } else if key.starts_with(RESOURCE_CUSTOMIZATIONS) {
                split.push((key.to_owned(), value.to_owned()));
            }
        }
        let mut read = Self::default();
        if let Some(block) = block.filter(|block| !block.trim().is_empty()) {
            read.block(&block);
        }
        // Sorted by key, so the same ConfigMap always reads the same.
        split.sort();
        for (key, value) in split {
            // resource.customizations.<type>.<group_kind>; shorter keys are not overrides.
            if let Some((customization, group_kind)) = key
                .strip_prefix(RESOURCE_CUSTOMIZATIONS)
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(|rest| rest.split_once('.'))
            {
                read.split_key(&key, customization, group_kind, &value);
            }
        }
        read
    }

    /// The override for exactly this key, if any.
    pub fn get(&self, key: &str) -> Option<&ResourceOverride> {
        self.overrides.get(key)
    }

    fn problem(&mut self, key: &str, customization: Option<&str>, reason: String) {
        self.problems.push(OverrideProblem {
            key: key.to_owned(),
            customization: customization.map(str::to_owned),
            reason,
        });
    }

    fn block(&mut self, block: &str) {
        let entries: BTreeMap<String, BlockEntry> = match serde_yaml::from_str(block) {
            Ok(entries) => entries,
            Err(err) => {
                let reason = format!("not a map of group/kind to overrides: {err}");
                return self.problem(RESOURCE_CUSTOMIZATIONS, None, reason);
            }
        };
        for (group_kind, entry) in entries {
            let mut found = ResourceOverride {
                health_lua: entry.health_lua.unwrap_or_default(),
                use_open_libs: entry.use_open_libs.unwrap_or_default(),
                actions: entry.actions.unwrap_or_default(),
                known_type_fields: entry.known_type_fields.unwrap_or_default(),
                ..ResourceOverride::default()
            };
            for (field, text, into) in [
                (
                    "ignoreDifferences",
                    entry.ignore_differences,
                    &mut found.ignore_differences,
                ),
                (
                    "ignoreResourceUpdates",
                    entry.ignore_resource_updates,
                    &mut found.ignore_resource_updates,
                ),
            ] {
                match text.as_deref().map(serde_yaml::from_str).transpose() {
                    Ok(rules) => *into = rules.unwrap_or_default(),
                    Err(err) => {
                        let reason = format!("{group_kind} {field}: {err}");
                        self.problem(RESOURCE_CUSTOMIZATIONS, Some(field), reason);
                    }
                }
            }
            self.overrides.insert(group_kind, found);
        }
    }

    fn split_key(&mut self, key: &str, customization: &str, group_kind: &str, value: &str) {
        let Some(id) = override_key(group_kind) else {
            let reason = "expected resource.customizations.<type>.<group>_<Kind> or \
                          resource.customizations.<type>.<Kind>"
                .to_owned();
            return self.problem(key, Some(customization), reason);
        };
        let found = self.overrides.entry(id).or_default();
        let parsed = match customization {
            "health" => {
                found.health_lua = value.to_owned();
                Ok(())
            }
            "useOpenLibs" => parse_go_bool(value.trim())
                .map(|open| found.use_open_libs = open)
                .ok_or_else(|| format!("{value:?} is not a boolean")),
            "actions" => {
                found.actions = value.to_owned();
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
        if let Err(reason) = parsed {
            self.problem(key, Some(customization), reason);
        }
    }
}

/// `<group>_<Kind>` as the override key `group/Kind`, `Kind` alone for the core group, `all`
/// as `*/*` (upstream's convertToOverrideKey: one `_` at most).
fn override_key(group_kind: &str) -> Option<String> {
    match group_kind.split('_').collect::<Vec<_>>()[..] {
        ["all"] => Some("*/*".into()),
        [kind] if !kind.is_empty() => Some(kind.into()),
        [group, kind] => Some(format!("{group}/{kind}")),
        _ => None,
    }
}

/// An override key as `(group, kind)`: `Kind` alone is the core group.
pub fn split_override_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(data: &[(&str, &str)]) -> ResourceOverrides {
        ResourceOverrides::from_argocd_cm(data.iter().copied())
    }

    #[test]
    fn split_keys_replace_single_fields_of_the_block() {
        let read = read(&[
            (
                "resource.customizations",
                "apps/Deployment:\n  health.lua: old\n  actions: 'discovery.lua: x'\n  \
                 ignoreDifferences: |\n    jsonPointers: [/spec/replicas]\n",
            ),
            ("resource.customizations.health.apps_Deployment", "new"),
            ("resource.customizations.useOpenLibs.apps_Deployment", "T"),
            ("resource.customizations.health.Service", "svc"),
            (
                "resource.customizations.ignoreResourceUpdates.all",
                "jsonPointers: [/status]",
            ),
            (
                "resource.customizations.knownTypeFields.apps_Deployment",
                "- {field: spec.template.spec, type: core/v1/PodSpec}",
            ),
            ("url", "https://cd.example"),
        ]);
        assert_eq!(read.problems, []);
        let deployment = read.get("apps/Deployment").unwrap();
        assert_eq!(deployment.health_lua, "new");
        assert!(deployment.use_open_libs);
        assert_eq!(deployment.actions, "discovery.lua: x");
        assert_eq!(
            deployment.ignore_differences.json_pointers,
            Some(vec!["/spec/replicas".to_owned()])
        );
        assert_eq!(deployment.known_type_fields[0].kind, "core/v1/PodSpec");
        assert_eq!(read.get("Service").unwrap().health_lua, "svc");
        let all = read.get("*/*").unwrap();
        assert_eq!(
            all.ignore_resource_updates.json_pointers,
            Some(vec!["/status".to_owned()])
        );
        assert!(all.ignore_differences.is_empty());
        assert_eq!(
            read.overrides.keys().collect::<Vec<_>>(),
            ["*/*", "Service", "apps/Deployment"]
        );
    }

    #[test]
    fn what_cannot_be_read_is_named_and_the_rest_kept() {
        let read = read(&[
            ("resource.customizations.health.a_b_C", "x"),
            ("resource.customizations.colour.ConfigMap", "x"),
            ("resource.customizations.useOpenLibs.ConfigMap", "yes"),
            (
                "resource.customizations.ignoreDifferences.apps_Deployment",
                "jsonPointers: {not: a list}",
            ),
            ("resource.customizations.health.Service", "svc"),
            // Not an override key at all.
            ("resource.customizations.health", "x"),
        ]);
        let named: Vec<(&str, Option<&str>)> = read
            .problems
            .iter()
            .map(|p| (p.key.as_str(), p.customization.as_deref()))
            .collect();
        assert_eq!(
            named,
            [
                ("resource.customizations.colour.ConfigMap", Some("colour")),
                ("resource.customizations.health.a_b_C", Some("health")),
                (
                    "resource.customizations.ignoreDifferences.apps_Deployment",
                    Some("ignoreDifferences")
                ),
                (
                    "resource.customizations.useOpenLibs.ConfigMap",
                    Some("useOpenLibs")
                ),
            ]
        );
        assert!(
            read.problems[0]
                .to_string()
                .contains("colour not supported")
        );
        assert_eq!(read.get("Service").unwrap().health_lua, "svc");

        let broken = ResourceOverrides::from_argocd_cm([(RESOURCE_CUSTOMIZATIONS, "- a list")]);
        assert_eq!(broken.problems[0].customization, None);
        assert!(broken.overrides.is_empty());
    }

    #[test]
    fn override_keys_split_into_group_and_kind() {
        assert_eq!(
            split_override_key("apps/Deployment"),
            ("apps", "Deployment")
        );
        assert_eq!(split_override_key("ConfigMap"), ("", "ConfigMap"));
        assert_eq!(split_override_key("*/*"), ("*", "*"));
    }
}
