//! Deployment: paused, observed generation, progress deadline, then rollout counters
//! (the checks of `kubectl rollout status`).

use serde::Deserialize;
use serde_json::Value;

use crate::object::{Condition, Metadata, condition, read};
use crate::status::HealthStatus;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Deployment {
    metadata: Option<Metadata>,
    spec: Option<Spec>,
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Spec {
    paused: Option<bool>,
    replicas: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Status {
    observed_generation: Option<i64>,
    replicas: Option<i64>,
    updated_replicas: Option<i64>,
    available_replicas: Option<i64>,
    conditions: Option<Vec<Condition>>,
}

pub(super) fn check(obj: &Value) -> Result<HealthStatus, String> {
    let deployment: Deployment = read(obj)?;
    let meta = deployment.metadata.unwrap_or_default();
    let spec = deployment.spec.unwrap_or_default();
    let status = deployment.status.unwrap_or_default();

    if spec.paused == Some(true) {
        return Ok(HealthStatus::suspended("Deployment is paused"));
    }
    if meta.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0) {
        return Ok(HealthStatus::progressing(
            "Waiting for rollout to finish: observed deployment generation less than desired generation",
        ));
    }
    let conditions = status.conditions.unwrap_or_default();
    if condition(&conditions, "Progressing")
        .is_some_and(|c| c.reason() == "ProgressDeadlineExceeded")
    {
        return Ok(HealthStatus::degraded(format!(
            "Deployment {:?} exceeded its progress deadline",
            meta.name()
        )));
    }
    let replicas = status.replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if let Some(desired) = spec.replicas.filter(|&desired| updated < desired) {
        return Ok(HealthStatus::progressing(format!(
            "Waiting for rollout to finish: {updated} out of {desired} new replicas have been updated..."
        )));
    }
    if replicas > updated {
        return Ok(HealthStatus::progressing(format!(
            "Waiting for rollout to finish: {} old replicas are pending termination...",
            replicas - updated
        )));
    }
    if available < updated {
        return Ok(HealthStatus::progressing(format!(
            "Waiting for rollout to finish: {available} of {updated} updated replicas are available..."
        )));
    }
    Ok(HealthStatus::healthy(""))
}
