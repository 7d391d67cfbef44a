//! ReplicaSet: observed generation, a `ReplicaFailure` condition, then available replicas.

use serde::Deserialize;
use serde_json::Value;

use crate::object::{Condition, Metadata, condition, read};
use crate::status::HealthStatus;

#[derive(Deserialize, Default)]
#[serde(default)]
struct ReplicaSet {
    metadata: Option<Metadata>,
    spec: Option<Spec>,
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Spec {
    replicas: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Status {
    observed_generation: Option<i64>,
    available_replicas: Option<i64>,
    conditions: Option<Vec<Condition>>,
}

pub(super) fn check(obj: &Value) -> Result<HealthStatus, String> {
    let rs: ReplicaSet = read(obj)?;
    let meta = rs.metadata.unwrap_or_default();
    let spec = rs.spec.unwrap_or_default();
    let status = rs.status.unwrap_or_default();

    if meta.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0) {
        return Ok(HealthStatus::progressing(
            "Waiting for rollout to finish: observed replica set generation less than desired generation",
        ));
    }
    let conditions = status.conditions.unwrap_or_default();
    if let Some(failure) = condition(&conditions, "ReplicaFailure").filter(|c| c.is_true()) {
        return Ok(HealthStatus::degraded(failure.message()));
    }
    let available = status.available_replicas.unwrap_or(0);
    if let Some(desired) = spec.replicas.filter(|&desired| available < desired) {
        return Ok(HealthStatus::progressing(format!(
            "Waiting for rollout to finish: {available} out of {desired} new replicas are available..."
        )));
    }
    Ok(HealthStatus::healthy(""))
}
