//! DaemonSet: observed generation, then updated and available pods against the desired count.

use serde::Deserialize;
use serde_json::Value;

use crate::object::{Metadata, read};
use crate::status::HealthStatus;

#[derive(Deserialize, Default)]
#[serde(default)]
struct DaemonSet {
    metadata: Option<Metadata>,
    spec: Option<Spec>,
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Spec {
    update_strategy: Option<UpdateStrategy>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UpdateStrategy {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Status {
    observed_generation: Option<i64>,
    desired_number_scheduled: Option<i64>,
    updated_number_scheduled: Option<i64>,
    number_available: Option<i64>,
}

pub(super) fn check(obj: &Value) -> Result<HealthStatus, String> {
    let daemon: DaemonSet = read(obj)?;
    let meta = daemon.metadata.unwrap_or_default();
    let spec = daemon.spec.unwrap_or_default();
    let status = daemon.status.unwrap_or_default();

    if meta.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0) {
        return Ok(HealthStatus::progressing(
            "Waiting for rollout to finish: observed daemon set generation less than desired generation",
        ));
    }
    let desired = status.desired_number_scheduled.unwrap_or(0);
    let updated = status.updated_number_scheduled.unwrap_or(0);
    let available = status.number_available.unwrap_or(0);
    // With OnDelete, pods are only replaced when someone deletes them: nothing to wait for.
    if spec.update_strategy.and_then(|s| s.kind).as_deref() == Some("OnDelete") {
        return Ok(HealthStatus::healthy(format!(
            "daemon set {updated} out of {desired} new pods have been updated"
        )));
    }
    if updated < desired {
        return Ok(HealthStatus::progressing(format!(
            "Waiting for daemon set {:?} rollout to finish: {updated} out of {desired} new pods have been updated...",
            meta.name()
        )));
    }
    if available < desired {
        return Ok(HealthStatus::progressing(format!(
            "Waiting for daemon set {:?} rollout to finish: {available} of {desired} updated pods are available...",
            meta.name()
        )));
    }
    Ok(HealthStatus::healthy(""))
}
