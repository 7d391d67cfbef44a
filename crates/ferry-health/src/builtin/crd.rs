//! CustomResourceDefinition: terminating, names not accepted, not established, or a
//! non-structural schema.

use serde::Deserialize;
use serde_json::Value;

use crate::object::{Condition, read};
use crate::status::HealthStatus;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Crd {
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Status {
    conditions: Option<Vec<Condition>>,
}

pub(super) fn check(obj: &Value) -> Result<HealthStatus, String> {
    let crd: Crd = read(obj)?;
    let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
    if conditions.is_empty() {
        return Ok(HealthStatus::progressing("Status conditions not found"));
    }
    let find = |kind: &str, holds: fn(&Condition) -> bool| {
        conditions.iter().find(|c| c.is(kind) && holds(c))
    };
    if let Some(c) = find("Terminating", Condition::is_true) {
        return Ok(HealthStatus::progressing(format!(
            "CRD is being terminated: {}",
            c.message()
        )));
    }
    if let Some(c) = find("NamesAccepted", Condition::is_false) {
        return Ok(HealthStatus::degraded(format!(
            "CRD names have not been accepted: {}",
            c.message()
        )));
    }
    if find("Established", Condition::is_true).is_none() {
        let message = find("Established", |_| true).map_or("", Condition::message);
        return Ok(HealthStatus::degraded(format!(
            "CRD is not established: {message}"
        )));
    }
    if let Some(c) = find("NonStructuralSchema", Condition::is_true) {
        return Ok(HealthStatus::degraded(format!(
            "Schema violations found: {}",
            c.message()
        )));
    }
    Ok(HealthStatus::healthy("CRD is healthy"))
}
