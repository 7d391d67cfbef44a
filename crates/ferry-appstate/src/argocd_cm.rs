//! Settings from Argo CD's `argocd-cm` ConfigMap that decide how apps are compared and
//! rendered (the controller follows them live, the CLI reads them for each command):
//!
//! - custom health checks: Lua under `resource.customizations.health.<group>_<Kind>`, or
//!   `health.lua` in the older `resource.customizations` block (keyed `group/Kind`);
//! - system-wide `ignoreDifferences`: `resource.customizations.ignoreDifferences.<group>_<Kind>`
//!   and `resource.customizations.ignoreDifferences.all`, or `ignoreDifferences` in the older
//!   block;
//! - the resource tracking method (`application.resourceTrackingMethod`,
//!   `application.instanceLabelKey`) and the `installationID` the tracking annotations carry;
//! - `kustomize.buildOptions` and registered kustomize versions, sent with each render;
//! - `resource.exclusions` / `resource.inclusions`: the kinds the cluster caches watch;
//! - `timeout.reconciliation`: how often apps are compared again;
//! - `resource.compareoptions`: whose `status` and which aggregated ClusterRoles' `rules` the
//!   comparison leaves out ([`crate::resource_compare_options`]);
//! - `resource.ignoreResourceUpdatesEnabled` and the `ignoreResourceUpdates` customizations:
//!   which live changes do not refresh an app ([`crate::resource_updates`]).

use std::collections::BTreeMap;

use std::time::Duration;

use crate::resource_compare_options::{self as compare_options, ResourceCompareOptions};
use crate::resource_updates::ResourceUpdates;
use ferry_cache::{ResourceFilter, ResourceRule, TrackingMethod};
use ferry_diff::ResourceIgnoreDifferences;
use ferry_health::HealthChecks;
use ferry_render::KustomizeOptions;
use ferry_types::resource_overrides::{ResourceOverrides, split_override_key};
use globset::Glob;
use serde::Deserialize;
use tracing::{info, warn};

pub const ARGOCD_CM: &str = "argocd-cm";
const INCLUSIONS: &str = "resource.inclusions";
const EXCLUSIONS: &str = "resource.exclusions";
const RECONCILIATION: &str = "timeout.reconciliation";

/// What `argocd-cm` configures for comparisons.
#[derive(Clone, Debug, Default)]
pub struct ArgoSettings {
    pub health: HealthChecks,
    pub ignore_differences: Vec<ResourceIgnoreDifferences>,
    /// `None` when the ConfigMap does not say.
    pub tracking: Option<TrackingMethod>,
    pub kustomize: KustomizeOptions,
    /// `resource.inclusions` / `resource.exclusions`; `None` when neither is set (the
    /// controller's defaults, Argo CD's shipped exclusions, apply).
    pub resources: Option<ResourceRules>,
    /// `timeout.reconciliation`; `None` when unset.
    pub reconciliation: Option<Duration>,
    /// `resource.compareoptions`.
    pub compare_options: ResourceCompareOptions,
    /// ignoreResourceUpdates.
    pub resource_updates: ResourceUpdates,
    /// Entries that were skipped, each naming its key and why. The controller takes a changed
    /// ConfigMap only without any (a typo must not drop a health check or an ignore rule).
    pub problems: Vec<String>,
}

/// Argo CD's `FilteredResource`: API group and kind globs, and the clusters (server URL
/// globs) the rule is for (all when empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilteredResource {
    #[serde(default)]
    pub api_groups: Vec<String>,
    #[serde(default)]
    pub kinds: Vec<String>,
    #[serde(default)]
    pub clusters: Vec<String>,
}

impl FilteredResource {
    fn for_cluster(&self, server: &str) -> bool {
        self.clusters.is_empty()
            || self.clusters.iter().any(|pattern| {
                Glob::new(pattern).is_ok_and(|g| g.compile_matcher().is_match(server))
            })
    }

    fn rule(&self) -> ResourceRule {
        ResourceRule {
            groups: self.api_groups.clone(),
            kinds: self.kinds.clone(),
        }
    }
}

/// `resource.inclusions` and `resource.exclusions` as written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceRules {
    pub inclusions: Vec<FilteredResource>,
    pub exclusions: Vec<FilteredResource>,
}

impl ResourceRules {
    /// The kinds a cache of cluster `server` watches: the rules for that cluster (Argo CD
    /// excludes a kind of a cluster that some inclusion names when no inclusion matches it).
    pub fn filter_for(&self, server: &str) -> ResourceFilter {
        let pick = |rules: &[FilteredResource]| {
            rules
                .iter()
                .filter(|r| r.for_cluster(server))
                .map(FilteredResource::rule)
                .collect()
        };
        ResourceFilter {
            include: pick(&self.inclusions),
            exclude: pick(&self.exclusions),
        }
    }
}

/// `resource.inclusions` / `resource.exclusions`, each a YAML list of `FilteredResource`s; a
/// list that does not parse, or whose globs do not compile, is a problem (and no rules).
fn resource_rules(
    data: &BTreeMap<String, String>,
    problems: &mut Vec<String>,
) -> Option<ResourceRules> {
    if !data.contains_key(INCLUSIONS) && !data.contains_key(EXCLUSIONS) {
        return None;
    }
    let mut parse = |key: &str| -> Vec<FilteredResource> {
        let Some(text) = data.get(key) else {
            return Vec::new();
        };
        let rules: Vec<FilteredResource> = match serde_yaml::from_str::<Option<_>>(text) {
            Ok(rules) => rules.unwrap_or_default(),
            Err(err) => {
                problems.push(format!("{key}: {err}"));
                return Vec::new();
            }
        };
        let patterns = rules
            .iter()
            .flat_map(|r| r.api_groups.iter().chain(&r.kinds).chain(&r.clusters));
        for pattern in patterns {
            if let Err(err) = Glob::new(pattern) {
                problems.push(format!("{key}: pattern {pattern:?}: {err}"));
            }
        }
        rules
    };
    Some(ResourceRules {
        inclusions: parse(INCLUSIONS),
        exclusions: parse(EXCLUSIONS),
    })
}

impl ArgoSettings {
    /// The settings a ConfigMap's data gives. A bad tracking method is an error (guessing would
    /// misattribute resources); a bad health check or ignore entry is skipped with a warning
    /// naming it.
    pub fn from_data(data: &BTreeMap<String, String>) -> anyhow::Result<ArgoSettings> {
        let overrides = ResourceOverrides::from_argocd_cm(data);
        let mut problems: Vec<String> = overrides.problems.iter().map(|p| p.to_string()).collect();
        let mut health = HealthChecks::new();
        let mut ignore_differences = Vec::new();
        for (pattern, found) in &overrides.overrides {
            if !found.health_lua.trim().is_empty() {
                match health.clone().with_lua(pattern, found.health_lua.as_str()) {
                    Ok(with) => {
                        info!(resource = %pattern, "custom health check loaded");
                        health = with;
                    }
                    Err(err) => problems.push(format!("health check for {pattern}: {err}")),
                }
            }
            let ignore = &found.ignore_differences;
            if !ignore.is_empty() {
                let (group, kind) = split_override_key(pattern);
                ignore_differences.push(ResourceIgnoreDifferences {
                    group: group.to_owned(),
                    kind: kind.to_owned(),
                    json_pointers: ignore.json_pointers.clone().unwrap_or_default(),
                    jq_path_expressions: ignore.jq_path_expressions.clone().unwrap_or_default(),
                    managed_fields_managers: ignore
                        .managed_fields_managers
                        .clone()
                        .unwrap_or_default(),
                    ..Default::default()
                });
            }
        }
        if let Err(err) = ferry_diff::IgnoreRules::new(&ignore_differences) {
            problems.push(format!("ignoreDifferences: {err}"));
        }
        let resources = resource_rules(data, &mut problems);
        let reconciliation = data.get(RECONCILIATION).and_then(|text| {
            match ferry_types::duration::parse_go_duration(text.trim()) {
                // Argo CD's 0s turns periodic refreshes off; ferry always has them.
                Ok(period) if period.is_zero() => {
                    warn!("{ARGOCD_CM}: {RECONCILIATION} 0s: periodic comparisons stay on");
                    None
                }
                Ok(period) => Some(period),
                Err(err) => {
                    problems.push(format!("{RECONCILIATION} {text:?}: {err}"));
                    None
                }
            }
        });
        let kustomize = KustomizeOptions::from_argocd_cm(data).unwrap_or_else(|err| {
            problems.push(err);
            KustomizeOptions::default()
        });
        let compare_options = data
            .get(compare_options::KEY)
            .map(|text| ResourceCompareOptions::parse(text))
            .transpose()
            .unwrap_or_else(|err| {
                problems.push(err);
                None
            })
            .unwrap_or_default();
        let resource_updates = ResourceUpdates::from_argocd_cm(data, &overrides, &compare_options)
            .unwrap_or_else(|err| {
                problems.push(err);
                ResourceUpdates::default()
            });
        for problem in &problems {
            warn!("{ARGOCD_CM}: {problem}");
        }
        let method = data.get("application.resourceTrackingMethod");
        let label_key = data.get("application.instanceLabelKey");
        let installation_id = data.get("installationID");
        let tracking = if method.is_some() || label_key.is_some() || installation_id.is_some() {
            let method = TrackingMethod::from_settings(
                method.map(String::as_str),
                label_key.map(String::as_str),
                installation_id.map(String::as_str),
            )
            .map_err(|err| anyhow::anyhow!("{ARGOCD_CM}: {err}"))?;
            Some(method)
        } else {
            None
        };
        Ok(ArgoSettings {
            health,
            ignore_differences,
            tracking,
            kustomize,
            resources,
            reconciliation,
            compare_options,
            resource_updates,
            problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCRIPT: &str = r#"hs = {}
if obj.status ~= nil and obj.status.ready then
  hs.status = "Healthy"; hs.message = "ready"
else
  hs.status = "Progressing"; hs.message = "waiting"
end
return hs"#;

    #[test]
    fn both_key_styles_configure_scripts() {
        let data = BTreeMap::from([
            (
                "resource.customizations.health.example.com_Widget".to_string(),
                SCRIPT.to_string(),
            ),
            (
                "resource.customizations".to_string(),
                format!("other.io/Gadget:\n  health.lua: |\n{}\n", indent(SCRIPT)),
            ),
        ]);
        let checks = ArgoSettings::from_data(&data).unwrap().health;
        for (api_version, kind) in [("example.com/v1", "Widget"), ("other.io/v1", "Gadget")] {
            let ready = json!({"apiVersion": api_version, "kind": kind,
                "metadata": {"name": "w"}, "status": {"ready": true}});
            let health = ferry_health::assess(&ready, &checks).expect("a script applies");
            assert_eq!(health.status, ferry_health::HealthCode::Healthy, "{kind}");
        }
    }

    #[test]
    fn system_wide_ignores_and_tracking() {
        let data = BTreeMap::from([
            (
                "resource.customizations.ignoreDifferences.apps_Deployment".to_string(),
                "jsonPointers: [/spec/replicas]\n".to_string(),
            ),
            (
                "resource.customizations.ignoreDifferences.all".to_string(),
                "managedFieldsManagers: [kube-controller-manager]\n".to_string(),
            ),
            ("application.resourceTrackingMethod".into(), "label".into()),
        ]);
        let settings = ArgoSettings::from_data(&data).unwrap();
        let rules: Vec<_> = settings
            .ignore_differences
            .iter()
            .map(|r| (r.group.as_str(), r.kind.as_str()))
            .collect();
        // In the ConfigMap's key order.
        assert_eq!(rules, [("*", "*"), ("apps", "Deployment")]);
        assert_eq!(
            settings.ignore_differences[1].json_pointers,
            ["/spec/replicas"]
        );
        assert_eq!(settings.tracking, Some(TrackingMethod::label()));
        let bad = BTreeMap::from([("application.resourceTrackingMethod".into(), "uid".into())]);
        assert!(ArgoSettings::from_data(&bad).is_err());
        assert!(
            ArgoSettings::from_data(&BTreeMap::new())
                .unwrap()
                .tracking
                .is_none()
        );
        let installation = BTreeMap::from([("installationID".into(), "blue".into())]);
        assert_eq!(
            ArgoSettings::from_data(&installation).unwrap().tracking,
            Some(TrackingMethod::Annotation {
                installation_id: Some("blue".into())
            })
        );
    }

    #[test]
    fn compare_options_are_read_and_a_bad_block_is_a_problem() {
        let data = |text: &str| BTreeMap::from([(compare_options::KEY.into(), text.into())]);
        let settings = ArgoSettings::from_data(&data(
            "ignoreAggregatedRoles: true\nignoreResourceStatusField: none\n",
        ))
        .unwrap();
        assert!(settings.compare_options.ignore_aggregated_roles);
        assert_eq!(
            settings.compare_options.ignore_status,
            ferry_diff::IgnoreStatus::Never
        );
        assert!(settings.problems.is_empty(), "{:?}", settings.problems);
        let bad = ArgoSettings::from_data(&data("ignoreResourceStatusField: some")).unwrap();
        assert_eq!(bad.problems.len(), 1, "{:?}", bad.problems);
        assert_eq!(bad.compare_options, ResourceCompareOptions::default());
    }

    fn indent(text: &str) -> String {
        text.lines().map(|l| format!("    {l}\n")).collect()
    }
}
