//! KEDA ScaledObject and ScaledJob: `Ready`, `Paused` and (ScaledObject) `Fallback`
//! conditions. The message is that of the last condition that mattered, as in Argo CD.

use serde_json::Value;

use super::conditions::{conditions, kind};
use crate::status::{HealthCode, HealthStatus};

pub(super) fn check(obj: &Value) -> Result<HealthStatus, String> {
    let job = kind(obj) == "ScaledJob";
    let (mut healthy, mut degraded, mut paused, mut message) = (false, false, false, None);
    for c in conditions(obj)?.unwrap_or_default() {
        let matters = match (c.kind.as_deref(), c.status.as_deref()) {
            (Some("Ready"), Some("True")) => {
                healthy = true;
                true
            }
            // HPA metrics that are not there yet (a fresh metrics pipeline) are not a failure.
            (Some("Ready"), Some("False")) => {
                degraded |= job || c.reason() != "HPAMetricsUnavailable";
                true
            }
            (Some("Ready"), Some("Unknown")) if job => {
                degraded = true;
                true
            }
            (Some("Paused"), Some("True")) => {
                paused = true;
                true
            }
            (Some("Fallback"), Some("True")) if !job => {
                degraded = true;
                true
            }
            _ => false,
        };
        if matters {
            message = c.message;
        }
    }
    let code = match (degraded, healthy, paused) {
        (true, _, _) => HealthCode::Degraded,
        (false, true, false) => HealthCode::Healthy,
        (false, true, true) => HealthCode::Suspended,
        _ if job => return Ok(HealthStatus::progressing("Waiting for ScaledJob")),
        _ => {
            let message = message.as_deref();
            return Ok(HealthStatus::progressing(
                message.unwrap_or("Creating HorizontalPodAutoscaler Object"),
            ));
        }
    };
    Ok(HealthStatus::new(code, message.unwrap_or_default()))
}
