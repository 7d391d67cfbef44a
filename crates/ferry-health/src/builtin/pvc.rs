//! PersistentVolumeClaim: by phase (`Bound`, `Pending`, `Lost`).

use serde::Deserialize;
use serde_json::Value;

use crate::object::read;
use crate::status::HealthStatus;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Claim {
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Status {
    phase: Option<String>,
}

pub(super) fn check(obj: &Value) -> Result<HealthStatus, String> {
    let claim: Claim = read(obj)?;
    let phase = claim.status.and_then(|s| s.phase).unwrap_or_default();
    Ok(match phase.as_str() {
        "Bound" => HealthStatus::healthy("PersistentVolumeClaim is bound"),
        "Pending" => HealthStatus::progressing("Waiting for the claim to be bound"),
        "Lost" => HealthStatus::degraded("The claim lost its underlying volume"),
        "" => HealthStatus::unknown("PersistentVolumeClaim has no phase"),
        other => HealthStatus::unknown(format!("Unexpected PersistentVolumeClaim phase {other:?}")),
    })
}
