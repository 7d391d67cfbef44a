//! Flux: HelmRelease, Kustomization and the sources (GitRepository, HelmRepository,
//! OCIRepository, HelmChart, Bucket). As in Argo CD, conditions are counted: `Ready` Unknown
//! plus `Reconciling` True is Progressing, enough successful conditions is Healthy, anything
//! else Degraded; the message is the `Ready` reason.

use serde::Deserialize;
use serde_json::Value;

use super::conditions::kind;
use crate::object::{Condition, read};
use crate::status::HealthStatus;

#[derive(Deserialize, Default)]
#[serde(default)]
struct FluxObject {
    spec: Option<Spec>,
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Spec {
    suspend: Option<bool>,
    #[serde(rename = "type")]
    repository_type: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Status {
    conditions: Option<Vec<Condition>>,
}

pub(super) fn check(obj: &Value) -> Result<HealthStatus, String> {
    let kind = kind(obj);
    let object: FluxObject = read(obj)?;
    let spec = object.spec.unwrap_or_default();
    // Argo CD's OCIRepository script is the one that does not look at `suspend`.
    if spec.suspend == Some(true) && kind != "OCIRepository" {
        return Ok(HealthStatus::suspended(format!("{kind} is suspended")));
    }
    if kind == "HelmRepository" && spec.repository_type.as_deref() == Some("oci") {
        return Ok(HealthStatus::healthy(
            "Helm repositories of type 'oci' do not contain any information in the status.",
        ));
    }
    let Some(conditions) = object.status.and_then(|s| s.conditions) else {
        return Ok(HealthStatus::progressing("Status unknown"));
    };
    // Which conditions count as successes besides `Ready`, and exactly how many make Healthy:
    // a HelmRelease whose tests also passed counts three and is Degraded, as in Argo CD.
    let (successes, needed): (&[&str], usize) = match kind {
        "Kustomization" => (&[], 1),
        "HelmRelease" => (&["Released", "TestSuccess"], 2),
        _ => (&["ArtifactInStorage"], 2),
    };
    let (mut progressing, mut succeeded, mut message) = (0, 0, String::new());
    for c in &conditions {
        match c.kind.as_deref().unwrap_or("") {
            "Ready" => {
                if c.is_true() {
                    succeeded += 1;
                } else if c.status.as_deref() == Some("Unknown") {
                    progressing += 1;
                }
                message = c.reason().to_owned();
            }
            "Reconciling" if c.is_true() => progressing += 1,
            // Only sources report it; its reason goes after the `Ready` reason seen so far.
            "ArtifactOutdated" if c.is_true() => {
                message.push(' ');
                message.push_str(c.reason());
            }
            other if c.is_true() && successes.contains(&other) => succeeded += 1,
            _ => {}
        }
    }
    Ok(if progressing == 2 {
        HealthStatus::progressing(message)
    } else if succeeded == needed {
        HealthStatus::healthy(message)
    } else {
        HealthStatus::degraded(message)
    })
}
