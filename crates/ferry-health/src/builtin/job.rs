//! Job: the terminal `Failed`/`Complete` conditions, or `Suspended`; otherwise still running.

use serde::Deserialize;
use serde_json::Value;

use crate::object::{Condition, condition, read};
use crate::status::HealthStatus;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Job {
    spec: Option<Spec>,
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Spec {
    suspend: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Status {
    conditions: Option<Vec<Condition>>,
}

pub(super) fn check(obj: &Value) -> Result<HealthStatus, String> {
    let job: Job = read(obj)?;
    let conditions = job.status.and_then(|s| s.conditions).unwrap_or_default();
    let holds = |kind| condition(&conditions, kind).filter(|c| c.is_true());

    if let Some(failed) = holds("Failed") {
        return Ok(HealthStatus::degraded(failed.message()));
    }
    if let Some(complete) = holds("Complete") {
        return Ok(HealthStatus::healthy(complete.message()));
    }
    if let Some(suspended) = holds("Suspended") {
        return Ok(HealthStatus::suspended(suspended.message()));
    }
    // The Job controller adds the Suspended condition shortly after it sees `spec.suspend`.
    if job.spec.and_then(|s| s.suspend) == Some(true) {
        return Ok(HealthStatus::suspended("Job is suspended"));
    }
    Ok(HealthStatus::progressing(""))
}
