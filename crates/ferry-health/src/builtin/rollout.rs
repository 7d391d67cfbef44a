//! Argo Rollouts' Rollout. Since v1.0 the controller writes its own phase and message, which
//! are surfaced as they are (`Paused` as Suspended); older rollouts are judged from their
//! conditions, pause state, replica counters and strategy, as Argo CD does.

use serde::Deserialize;
use serde_json::Value;

use crate::object::{Condition, Metadata, read};
use crate::status::{HealthCode, HealthStatus};

const WORKLOAD_GENERATION: &str = "rollout.argoproj.io/workload-generation";
const NOT_OBSERVED: &str = "Waiting for rollout spec update to be observed";

#[derive(Deserialize, Default)]
#[serde(default)]
struct Rollout {
    metadata: Option<Metadata>,
    spec: Option<Spec>,
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Spec {
    replicas: Option<i64>,
    paused: Option<bool>,
    strategy: Option<Strategy>,
    workload_ref: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Strategy {
    blue_green: Option<Value>,
    canary: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Status {
    // Strings since v1.0 (a spec hash before v0.10), hence read as any value.
    observed_generation: Option<Value>,
    workload_observed_generation: Option<Value>,
    phase: Option<String>,
    message: Option<String>,
    conditions: Option<Vec<Condition>>,
    pause_conditions: Option<Vec<Value>>,
    current_pod_hash: Option<String>,
    #[serde(rename = "stableRS")]
    stable_rs: Option<String>,
    canary: Option<CanaryStatus>,
    blue_green: Option<BlueGreenStatus>,
    replicas: Option<i64>,
    updated_replicas: Option<i64>,
    available_replicas: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CanaryStatus {
    #[serde(rename = "stableRS")]
    stable_rs: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct BlueGreenStatus {
    active_selector: Option<String>,
}

/// A number, or a string holding one, as Lua's `tonumber` reads them; hashes give `None`.
fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse(s),
        _ => None,
    }
}

fn parse(text: &str) -> Option<f64> {
    text.trim().parse().ok().filter(|n: &f64| n.is_finite())
}

pub(super) fn check(obj: &Value) -> Result<HealthStatus, String> {
    let rollout: Rollout = read(obj)?;
    let meta = rollout.metadata.unwrap_or_default();
    let spec = rollout.spec.unwrap_or_default();
    let Some(status) = rollout.status else {
        return Ok(HealthStatus::progressing(NOT_OBSERVED));
    };

    // A non-numeric or larger observed generation is a pre-v0.10 hash: nothing to compare.
    let generation_observed = match (number(status.observed_generation.as_ref()), meta.generation) {
        (Some(observed), Some(generation)) => observed >= generation as f64,
        _ => true,
    };
    let workload_observed = spec.workload_ref.is_none()
        || meta.annotations.is_none()
        || meta.annotation(WORKLOAD_GENERATION).and_then(parse)
            == number(status.workload_observed_generation.as_ref());
    if !generation_observed || !workload_observed {
        return Ok(HealthStatus::progressing(NOT_OBSERVED));
    }

    if let Some(phase) = status.phase.as_deref() {
        let message = status.message.unwrap_or_default();
        let code = match phase {
            "Paused" => HealthCode::Suspended,
            other => other
                .parse()
                .map_err(|err| format!("status.phase: {err}"))?,
        };
        return Ok(HealthStatus::new(code, message));
    }

    let conditions = status.conditions.unwrap_or_default();
    let failed = conditions.iter().find(|c| {
        c.is("InvalidSpec")
            || (c.is("Progressing")
                && matches!(c.reason(), "RolloutAborted" | "ProgressDeadlineExceeded"))
    });
    if let Some(c) = failed {
        return Ok(HealthStatus::degraded(c.message()));
    }
    if status.pause_conditions.is_some_and(|p| !p.is_empty()) || spec.paused == Some(true) {
        return Ok(HealthStatus::suspended("Rollout is paused"));
    }
    let Some(pod_hash) = status.current_pod_hash else {
        return Ok(HealthStatus::progressing(
            "Waiting for rollout to finish: status has not been reconciled.",
        ));
    };

    let desired = spec.replicas.unwrap_or(1);
    let replicas = status.replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < desired {
        return Ok(HealthStatus::progressing(
            "Waiting for roll out to finish: More replicas need to be updated",
        ));
    }
    if available < updated {
        return Ok(HealthStatus::progressing(
            "Waiting for roll out to finish: updated replicas are still becoming available",
        ));
    }

    // v0.8 moved the stable ReplicaSet from status.canary to status.
    let stable = status
        .stable_rs
        .or_else(|| status.canary.and_then(|c| c.stable_rs))
        .unwrap_or_default();
    let strategy = spec.strategy.unwrap_or_default();
    if strategy.blue_green.is_some() {
        let active = status.blue_green.and_then(|b| b.active_selector);
        if active.as_deref() != Some(pod_hash.as_str()) {
            return Ok(HealthStatus::progressing("active service cutover pending"));
        }
        // Blue-green rollouts before v0.8 have no stable ReplicaSet to wait for.
        if !stable.is_empty() && stable != pod_hash {
            return Ok(HealthStatus::progressing(
                "waiting for analysis to complete",
            ));
        }
    } else if strategy.canary.is_some() {
        if replicas > updated {
            return Ok(HealthStatus::progressing(
                "Waiting for roll out to finish: old replicas are pending termination",
            ));
        }
        if stable != pod_hash {
            return Ok(HealthStatus::progressing(
                "Waiting for rollout to finish steps",
            ));
        }
    }
    Ok(HealthStatus::healthy(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn generations_read_like_lua_tonumber() {
        assert_eq!(number(Some(&json!(6))), Some(6.0));
        assert_eq!(number(Some(&json!("6"))), Some(6.0));
        assert_eq!(number(Some(&json!(" 12 "))), Some(12.0));
        // Spec hashes of rollouts before v0.10, and what Rust parses but Lua does not.
        assert_eq!(number(Some(&json!("7d5979db69"))), None);
        assert_eq!(number(Some(&json!("inf"))), None);
        assert_eq!(number(Some(&json!(null))), None);
        assert_eq!(number(None), None);
    }
}
