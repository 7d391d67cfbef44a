//! The ignoreDifferences rules one app is compared with.

use ferry_diff::{IgnoreRules, ResourceIgnoreDifferences};
use ferry_types::Application;

/// The app's `spec.ignoreDifferences` and the system-wide rules of `argocd-cm`
/// ([`crate::argocd_cm::ArgoSettings::ignore_differences`]), compiled. The error names the
/// rule that does not compile.
pub fn ignore_rules(
    app: &Application,
    system: &[ResourceIgnoreDifferences],
) -> Result<IgnoreRules, String> {
    let own = app
        .spec
        .ignore_differences
        .iter()
        .map(|rule| ResourceIgnoreDifferences {
            group: rule.group.clone(),
            kind: rule.kind.clone(),
            name: rule.name.clone(),
            namespace: rule.namespace.clone(),
            json_pointers: rule.json_pointers.clone(),
            jq_path_expressions: rule.jq_path_expressions.clone(),
            managed_fields_managers: rule.managed_fields_managers.clone(),
        });
    let rules: Vec<_> = own.chain(system.iter().cloned()).collect();
    IgnoreRules::new(&rules).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_rules_and_system_rules_both_apply() {
        let app: Application = serde_yaml::from_str(
            "metadata: {name: web}\nspec: {ignoreDifferences: [{group: apps, kind: Deployment, \
             jsonPointers: [/spec/replicas]}]}",
        )
        .unwrap();
        let system = [ResourceIgnoreDifferences {
            kind: "ConfigMap".into(),
            json_pointers: vec!["/data/color".into()],
            ..Default::default()
        }];
        let rules = ignore_rules(&app, &system).unwrap();
        let ignored = |live: serde_json::Value, desired: serde_json::Value| {
            let result = ferry_diff::structural_diff(
                Some(&desired),
                Some(&live),
                &ferry_diff::DiffOptions {
                    ignore_differences: rules.clone(),
                    ..Default::default()
                },
            )
            .unwrap();
            result.status == ferry_diff::SyncStatus::Synced
        };
        let deployment = |replicas: u32| {
            serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "d", "namespace": "n"}, "spec": {"replicas": replicas}})
        };
        let config_map = |color: &str| {
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "n"}, "data": {"color": color}})
        };
        assert!(ignored(deployment(3), deployment(1)));
        assert!(ignored(config_map("red"), config_map("blue")));

        let bad = [ResourceIgnoreDifferences {
            kind: "ConfigMap".into(),
            json_pointers: vec!["no-slash".into()],
            ..Default::default()
        }];
        assert!(ignore_rules(&app, &bad).is_err());
    }
}
