//! HorizontalPodAutoscaler: a failing `AbleToScale`/`ScalingActive` condition is Degraded, an
//! `AbleToScale` or `ScalingLimited` condition that holds is Healthy, anything else is still
//! waiting. `autoscaling/v1` carries its conditions in an annotation.

use serde::Deserialize;
use serde_json::Value;

use crate::object::{Condition, Metadata, read};
use crate::status::HealthStatus;

const V1_CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
const WAITING: &str = "Waiting to Autoscale";

#[derive(Deserialize, Default)]
#[serde(default)]
struct Hpa {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    metadata: Option<Metadata>,
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Status {
    conditions: Option<Vec<Condition>>,
}

pub(super) fn check(obj: &Value) -> Result<HealthStatus, String> {
    let hpa: Hpa = read(obj)?;
    let conditions = if hpa.api_version.as_deref() == Some("autoscaling/v1") {
        let meta = hpa.metadata.unwrap_or_default();
        match meta.annotation(V1_CONDITIONS) {
            Some(text) => serde_json::from_str::<Vec<Condition>>(text).map_err(|err| {
                format!("annotation {V1_CONDITIONS} does not hold a list of conditions: {err}")
            })?,
            None => Vec::new(),
        }
    } else {
        hpa.status.and_then(|s| s.conditions).unwrap_or_default()
    };

    if let Some(failing) = conditions.iter().find(|c| is_failing(c)) {
        return Ok(HealthStatus::degraded(failing.message()));
    }
    let healthy: Vec<&str> = conditions
        .iter()
        .filter(|c| (c.is("AbleToScale") || c.is("ScalingLimited")) && c.is_true())
        .map(Condition::message)
        .collect();
    Ok(if healthy.is_empty() {
        HealthStatus::progressing(WAITING)
    } else {
        HealthStatus::healthy(healthy.join(", "))
    })
}

/// gitops-engine's list (`FailedGetScale`, `FailedUpdateScale`, `FailedGetResourceMetric`,
/// `InvalidSelector`), widened to every `Failed...` reason of a condition that does not hold
/// (e.g. `FailedComputeMetricsReplicas`, `FailedGetExternalMetric`).
fn is_failing(condition: &Condition) -> bool {
    let relevant = condition.is("AbleToScale") || condition.is("ScalingActive");
    let reason = condition.reason();
    relevant
        && (reason == "InvalidSelector" || (reason.starts_with("Failed") && !condition.is_true()))
}
