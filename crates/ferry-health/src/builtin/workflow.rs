//! Argo Workflows' Workflow: by phase.

use serde::Deserialize;
use serde_json::Value;

use crate::object::read;
use crate::status::HealthStatus;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Workflow {
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Status {
    phase: Option<String>,
    message: Option<String>,
}

pub(super) fn check(obj: &Value) -> Result<HealthStatus, String> {
    let workflow: Workflow = read(obj)?;
    let status = workflow.status.unwrap_or_default();
    let message = status.message.unwrap_or_default();
    Ok(match status.phase.as_deref().unwrap_or("") {
        "" | "Pending" | "Running" => HealthStatus::progressing(message),
        "Succeeded" => HealthStatus::healthy(message),
        "Failed" | "Error" => HealthStatus::degraded(message),
        _ => HealthStatus::unknown(message),
    })
}
