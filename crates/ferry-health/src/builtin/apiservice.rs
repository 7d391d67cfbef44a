//! APIService: its `Available` condition.

use serde::Deserialize;
use serde_json::Value;

use crate::object::{Condition, condition, read};
use crate::status::HealthStatus;

#[derive(Deserialize, Default)]
#[serde(default)]
struct ApiService {
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Status {
    conditions: Option<Vec<Condition>>,
}

pub(super) fn check(obj: &Value) -> Result<HealthStatus, String> {
    let service: ApiService = read(obj)?;
    let conditions = service
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    Ok(match condition(&conditions, "Available") {
        Some(available) => {
            let message = format!("{}: {}", available.reason(), available.message());
            if available.is_true() {
                HealthStatus::healthy(message)
            } else {
                HealthStatus::progressing(message)
            }
        }
        None => HealthStatus::progressing("Waiting to be processed"),
    })
}
