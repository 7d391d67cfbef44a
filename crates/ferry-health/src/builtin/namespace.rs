//! Namespace: `Active` is healthy; a terminating namespace is on its way out (Argo CD itself
//! has no built-in Namespace check).

use serde::Deserialize;
use serde_json::Value;

use crate::object::read;
use crate::status::HealthStatus;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Namespace {
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Status {
    phase: Option<String>,
}

pub(super) fn check(obj: &Value) -> Result<HealthStatus, String> {
    let namespace: Namespace = read(obj)?;
    Ok(match namespace.status.and_then(|s| s.phase).as_deref() {
        Some("Terminating") => HealthStatus::progressing("Namespace is terminating"),
        _ => HealthStatus::healthy(""),
    })
}
