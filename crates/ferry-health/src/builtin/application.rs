//! argoproj.io Application (app of apps): the child's own reported health. Argo CD dropped
//! this built-in in 1.8 and documents a Lua customization restoring exactly this behaviour.

use serde::Deserialize;
use serde_json::Value;

use crate::object::read;
use crate::status::{HealthCode, HealthStatus};

#[derive(Deserialize, Default)]
#[serde(default)]
struct Application {
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Status {
    health: Option<Health>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Health {
    status: Option<String>,
    message: Option<String>,
}

pub(super) fn check(obj: &Value) -> Result<HealthStatus, String> {
    let app: Application = read(obj)?;
    let Some(health) = app.status.and_then(|s| s.health) else {
        return Ok(HealthStatus::progressing(""));
    };
    let message = health.message.unwrap_or_default();
    match health.status.as_deref() {
        None | Some("") => Ok(HealthStatus::progressing(message)),
        Some(code) => {
            let code: HealthCode = code
                .parse()
                .map_err(|err| format!("status.health.status: {err}"))?;
            Ok(HealthStatus::new(code, message))
        }
    }
}
