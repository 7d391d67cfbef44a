//! PodDisruptionBudget: any condition that does not hold is Degraded, except too few pods to
//! allow a disruption, which is normal for small or scaled-down workloads.

use serde_json::Value;

use super::conditions::conditions;
use crate::status::HealthStatus;

pub(super) fn check(obj: &Value) -> Result<HealthStatus, String> {
    let mut health = HealthStatus::progressing("Waiting for status");
    for c in conditions(obj)?.unwrap_or_default() {
        let message = format!("PodDisruptionBudget has {}", c.reason());
        if c.is_false() && c.reason() != "InsufficientPods" {
            return Ok(HealthStatus::degraded(message));
        }
        health = HealthStatus::healthy(message);
    }
    Ok(health)
}
