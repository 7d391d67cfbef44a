//! Argo CD's ignoreResourceUpdates (its reconcile optimization): which changes of a live object
//! are too small to refresh the object's app. Read from argocd-cm as upstream's
//! GetIgnoreResourceUpdatesOverrides does:
//!
//! - `resource.ignoreResourceUpdatesEnabled` (Go bool, default true) turns it on;
//! - `resource.customizations.ignoreResourceUpdates.<group_kind>` (or `ignoreResourceUpdates`
//!   in the block) names fields by `jsonPointers` and `jqPathExpressions`;
//! - with `resource.compareoptions`' `ignoreDifferencesOnResourceUpdates` (default true) the
//!   system-wide ignoreDifferences and the `status` that `ignoreResourceStatusField` leaves out
//!   count too;
//! - `/metadata/resourceVersion`, `/metadata/generation` and `/metadata/managedFields` of every
//!   kind always do.
//!
//! `managedFieldsManagers` ignore nothing here: upstream's ignore normalizer, which the update
//! check runs, only applies pointers and jq expressions.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hasher};
use std::io;

use ferry_diff::{IgnoreRules, IgnoreStatus, ResourceIgnoreDifferences};
use ferry_types::application::parse_go_bool;
use ferry_types::resource_overrides::{OverrideIgnoreDiff, ResourceOverrides, split_override_key};
use serde_json::Value;

use crate::resource_compare_options::ResourceCompareOptions;

pub const ENABLED_KEY: &str = "resource.ignoreResourceUpdatesEnabled";

/// What every kind's updates ignore.
const ALWAYS_IGNORED: [&str; 3] = [
    "/metadata/resourceVersion",
    "/metadata/generation",
    "/metadata/managedFields",
];

/// How changes of live objects are told apart from changes that do not count.
#[derive(Clone, Debug)]
pub struct ResourceUpdates {
    /// `resource.ignoreResourceUpdatesEnabled`.
    pub enabled: bool,
    /// The fields removed from an object before its versions are compared.
    ignored: IgnoreRules,
}

impl Default for ResourceUpdates {
    /// Upstream's defaults: on, ignoring the metadata above and every kind's `status`.
    fn default() -> Self {
        Self::new(
            true,
            &ResourceOverrides::default(),
            &ResourceCompareOptions::default(),
        )
        .expect("the built-in rules compile")
    }
}

impl ResourceUpdates {
    /// Reads argocd-cm's `data` with its overrides and compare options; an error names the
    /// key or rule that cannot be read.
    pub fn from_argocd_cm(
        data: &BTreeMap<String, String>,
        overrides: &ResourceOverrides,
        compare_options: &ResourceCompareOptions,
    ) -> Result<Self, String> {
        let enabled = match data.get(ENABLED_KEY).map(|v| v.as_str()) {
            None | Some("") => true,
            Some(value) => parse_go_bool(value)
                .ok_or_else(|| format!("{ENABLED_KEY} {value:?} is not a boolean"))?,
        };
        Self::new(enabled, overrides, compare_options)
    }

    fn new(
        enabled: bool,
        overrides: &ResourceOverrides,
        compare_options: &ResourceCompareOptions,
    ) -> Result<Self, String> {
        let with_differences = compare_options.ignore_differences_on_resource_updates;
        let mut rules = Vec::new();
        for (key, found) in &overrides.overrides {
            let mut rule = rule(key, &found.ignore_resource_updates);
            if with_differences {
                let differences = rule_fields(&found.ignore_differences);
                rule.json_pointers.extend(differences.0);
                rule.jq_path_expressions.extend(differences.1);
            }
            if !rule.json_pointers.is_empty() || !rule.jq_path_expressions.is_empty() {
                rules.push(rule);
            }
        }
        let status_of = match compare_options.ignore_status {
            _ if !with_differences => None,
            IgnoreStatus::All => Some(("*", "*")),
            IgnoreStatus::Crds => Some(("apiextensions.k8s.io", "CustomResourceDefinition")),
            IgnoreStatus::Never => None,
        };
        if let Some((group, kind)) = status_of {
            rules.push(pointers(group, kind, &["/status"]));
        }
        rules.push(pointers("*", "*", &ALWAYS_IGNORED));
        let ignored =
            IgnoreRules::new(&rules).map_err(|err| format!("ignoreResourceUpdates: {err}"))?;
        Ok(Self { enabled, ignored })
    }

    /// A hash of `object` without the fields its updates ignore: two versions with the same
    /// hash differ only there. `None` when the rules could not be applied (a jq expression
    /// timed out), so that a change is never taken for an ignored one.
    pub fn hash(&self, object: &Value) -> Option<u64> {
        let mut object = object.clone();
        self.ignored.remove_ignored(&mut object).ok()?;
        let mut hasher = HashWriter(DefaultHasher::new());
        serde_json::to_writer(&mut hasher, &object).ok()?;
        Some(hasher.0.finish())
    }
}

fn rule(key: &str, fields: &OverrideIgnoreDiff) -> ResourceIgnoreDifferences {
    let (group, kind) = split_override_key(key);
    let (json_pointers, jq_path_expressions) = rule_fields(fields);
    ResourceIgnoreDifferences {
        group: group.to_owned(),
        kind: kind.to_owned(),
        json_pointers,
        jq_path_expressions,
        ..Default::default()
    }
}

fn rule_fields(fields: &OverrideIgnoreDiff) -> (Vec<String>, Vec<String>) {
    (
        fields.json_pointers.clone().unwrap_or_default(),
        fields.jq_path_expressions.clone().unwrap_or_default(),
    )
}

fn pointers(group: &str, kind: &str, pointers: &[&str]) -> ResourceIgnoreDifferences {
    ResourceIgnoreDifferences {
        group: group.to_owned(),
        kind: kind.to_owned(),
        json_pointers: pointers.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    }
}

/// Feeds serialized JSON to a hasher without building the text.
struct HashWriter(DefaultHasher);

impl io::Write for HashWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.write(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(entries: &[(&str, &str)]) -> Result<ResourceUpdates, String> {
        let data: BTreeMap<String, String> = entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let overrides = ResourceOverrides::from_argocd_cm(&data);
        assert!(overrides.problems.is_empty(), "{:?}", overrides.problems);
        let compare_options = data
            .get(crate::resource_compare_options::KEY)
            .map(|text| ResourceCompareOptions::parse(text).unwrap())
            .unwrap_or_default();
        ResourceUpdates::from_argocd_cm(&data, &overrides, &compare_options)
    }

    fn deployment(replicas: u32, status: &str, generation: u32) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "generation": generation,
                         "resourceVersion": format!("{generation}00")},
            "spec": {"replicas": replicas}, "status": {"phase": status}})
    }

    fn same(updates: &ResourceUpdates, a: &Value, b: &Value) -> bool {
        updates.hash(a).unwrap() == updates.hash(b).unwrap()
    }

    #[test]
    fn by_default_metadata_counters_and_status_are_ignored_everywhere() {
        let updates = read(&[]).unwrap();
        assert!(updates.enabled);
        assert!(same(
            &updates,
            &deployment(1, "old", 1),
            &deployment(1, "new", 2)
        ));
        assert!(!same(
            &updates,
            &deployment(1, "old", 1),
            &deployment(2, "old", 1)
        ));
        assert!(same(
            &ResourceUpdates::default(),
            &deployment(1, "old", 1),
            &deployment(1, "new", 2)
        ));
    }

    #[test]
    fn own_rules_and_ignore_differences_count_unless_turned_off() {
        let own = (
            "resource.customizations.ignoreResourceUpdates.apps_Deployment",
            "jqPathExpressions: ['.spec.replicas']",
        );
        let differences = (
            "resource.customizations.ignoreDifferences.all",
            "jsonPointers: [/metadata/labels]\nmanagedFieldsManagers: [hpa]",
        );
        let labelled = |mut object: Value| {
            object["metadata"]["labels"] = json!({"team": "blue"});
            object
        };
        let updates = read(&[own, differences]).unwrap();
        let base = deployment(1, "old", 1);
        assert!(same(&updates, &base, &deployment(3, "old", 1)));
        assert!(same(&updates, &base, &labelled(deployment(1, "old", 1))));

        let off = (
            "resource.compareoptions",
            "ignoreDifferencesOnResourceUpdates: false",
        );
        let updates = read(&[own, differences, off]).unwrap();
        assert!(same(&updates, &base, &deployment(3, "old", 1)));
        assert!(!same(&updates, &base, &labelled(deployment(1, "old", 1))));
        // Without the system-wide ignoreDifferences, status counts again.
        assert!(!same(&updates, &base, &deployment(1, "new", 1)));
        assert!(same(&updates, &base, &deployment(1, "old", 2)));
    }

    #[test]
    fn status_follows_ignore_resource_status_field() {
        let crd_only = ("resource.compareoptions", "ignoreResourceStatusField: crd");
        let updates = read(&[crd_only]).unwrap();
        assert!(!same(
            &updates,
            &deployment(1, "old", 1),
            &deployment(1, "new", 1)
        ));
        let crd = |status: &str| {
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": "widgets.example.com"}, "status": {"phase": status}})
        };
        assert!(same(&updates, &crd("old"), &crd("new")));
    }

    #[test]
    fn the_switch_and_bad_rules() {
        assert!(!read(&[(ENABLED_KEY, "false")]).unwrap().enabled);
        assert!(read(&[(ENABLED_KEY, "TRUE")]).unwrap().enabled);
        let err = read(&[(ENABLED_KEY, "yes")]).unwrap_err();
        assert!(err.contains(ENABLED_KEY), "{err}");
        let err = read(&[(
            "resource.customizations.ignoreResourceUpdates.ConfigMap",
            "jsonPointers: [data]",
        )])
        .unwrap_err();
        assert!(err.contains("ignoreResourceUpdates"), "{err}");
    }
}
