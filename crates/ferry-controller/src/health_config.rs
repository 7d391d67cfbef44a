//! Custom health checks from Argo CD's `argocd-cm` ConfigMap: Lua scripts under
//! `resource.customizations.health.<group>_<Kind>` keys, or `health.lua` entries of the older
//! `resource.customizations` YAML block (keyed `group/Kind`). Read at start-up.

use std::collections::BTreeMap;

use ferry_health::HealthChecks;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde::Deserialize;
use tracing::{info, warn};

pub const ARGOCD_CM: &str = "argocd-cm";
const HEALTH_PREFIX: &str = "resource.customizations.health.";
const CUSTOMIZATIONS: &str = "resource.customizations";

pub async fn load(client: &kube::Client, namespace: &str) -> HealthChecks {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let data = match api.get_opt(ARGOCD_CM).await {
        Ok(found) => found.and_then(|cm| cm.data).unwrap_or_default(),
        Err(err) => {
            warn!("reading {ARGOCD_CM}: {err}; using built-in health checks only");
            BTreeMap::new()
        }
    };
    checks_from(&data)
}

#[derive(Deserialize)]
struct Customization {
    #[serde(rename = "health.lua", default)]
    health_lua: Option<String>,
}

/// The checks a ConfigMap's data configures; a bad entry is skipped with a warning naming it.
fn checks_from(data: &BTreeMap<String, String>) -> HealthChecks {
    let mut scripts: Vec<(String, String)> = Vec::new();
    if let Some(block) = data.get(CUSTOMIZATIONS) {
        match serde_yaml::from_str::<BTreeMap<String, Customization>>(block) {
            Ok(entries) => scripts.extend(
                entries
                    .into_iter()
                    .filter_map(|(gk, c)| Some((gk, c.health_lua?))),
            ),
            Err(err) => warn!("{ARGOCD_CM} {CUSTOMIZATIONS}: {err}"),
        }
    }
    for (key, script) in data {
        if let Some(group_kind) = key.strip_prefix(HEALTH_PREFIX) {
            // `<group>_<Kind>`; the core group has no prefix.
            let pattern = match group_kind.rsplit_once('_') {
                Some((group, kind)) => format!("{group}/{kind}"),
                None => group_kind.to_string(),
            };
            scripts.push((pattern, script.clone()));
        }
    }
    let mut checks = HealthChecks::new();
    for (pattern, script) in scripts {
        match checks.clone().with_lua(&pattern, script) {
            Ok(with) => {
                info!(resource = %pattern, "custom health check loaded");
                checks = with;
            }
            Err(err) => warn!("{ARGOCD_CM}: health check for {pattern}: {err}"),
        }
    }
    checks
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
                format!("{HEALTH_PREFIX}example.com_Widget"),
                SCRIPT.to_string(),
            ),
            (
                CUSTOMIZATIONS.to_string(),
                format!("other.io/Gadget:\n  health.lua: |\n{}\n", indent(SCRIPT)),
            ),
        ]);
        let checks = checks_from(&data);
        for (api_version, kind) in [("example.com/v1", "Widget"), ("other.io/v1", "Gadget")] {
            let ready = json!({"apiVersion": api_version, "kind": kind,
                "metadata": {"name": "w"}, "status": {"ready": true}});
            let health = ferry_health::assess(&ready, &checks).expect("a script applies");
            assert_eq!(health.status, ferry_health::HealthCode::Healthy, "{kind}");
        }
    }

    fn indent(text: &str) -> String {
        text.lines().map(|l| format!("    {l}\n")).collect()
    }
}
