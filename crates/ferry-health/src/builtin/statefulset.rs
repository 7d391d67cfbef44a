//! StatefulSet: observed generation, ready replicas, then the update strategy: a partitioned
//! rolling update only has to reach the pods above the partition, `OnDelete` never rolls.

use serde::Deserialize;
use serde_json::Value;

use crate::object::{Metadata, read};
use crate::status::HealthStatus;

#[derive(Deserialize, Default)]
#[serde(default)]
struct StatefulSet {
    metadata: Option<Metadata>,
    spec: Option<Spec>,
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Spec {
    replicas: Option<i64>,
    update_strategy: Option<UpdateStrategy>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct UpdateStrategy {
    #[serde(rename = "type")]
    kind: Option<String>,
    rolling_update: Option<RollingUpdate>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RollingUpdate {
    partition: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Status {
    observed_generation: Option<i64>,
    ready_replicas: Option<i64>,
    updated_replicas: Option<i64>,
    current_replicas: Option<i64>,
    current_revision: Option<String>,
    update_revision: Option<String>,
}

pub(super) fn check(obj: &Value) -> Result<HealthStatus, String> {
    let sts: StatefulSet = read(obj)?;
    let meta = sts.metadata.unwrap_or_default();
    let spec = sts.spec.unwrap_or_default();
    let status = sts.status.unwrap_or_default();

    let observed = status.observed_generation.unwrap_or(0);
    if observed == 0 || meta.generation.unwrap_or(0) > observed {
        return Ok(HealthStatus::progressing(
            "Waiting for statefulset spec update to be observed...",
        ));
    }
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    if let Some(desired) = spec.replicas.filter(|&desired| ready < desired) {
        return Ok(HealthStatus::progressing(format!(
            "Waiting for {} pods to be ready...",
            desired - ready
        )));
    }
    let strategy = spec.update_strategy.unwrap_or_default();
    match strategy.kind.as_deref().unwrap_or("RollingUpdate") {
        "OnDelete" => {
            return Ok(HealthStatus::healthy(format!(
                "statefulset has {ready} ready pods ({updated} updated)"
            )));
        }
        // The API server always fills in `rollingUpdate.partition` (0 by default) on live objects.
        "RollingUpdate" if strategy.rolling_update.is_some() => {
            let partition = strategy.rolling_update.and_then(|r| r.partition);
            if let (Some(desired), Some(partition)) = (spec.replicas, partition) {
                let to_update = desired - partition;
                if updated < to_update {
                    return Ok(HealthStatus::progressing(format!(
                        "Waiting for partitioned roll out to finish: {updated} out of {to_update} new pods have been updated..."
                    )));
                }
            }
            return Ok(HealthStatus::healthy(format!(
                "partitioned roll out complete: {updated} new pods have been updated..."
            )));
        }
        _ => {}
    }
    let update_revision = status.update_revision.unwrap_or_default();
    let current_revision = status.current_revision.unwrap_or_default();
    if update_revision != current_revision {
        return Ok(HealthStatus::progressing(format!(
            "waiting for statefulset rolling update to complete {updated} pods at revision {update_revision}..."
        )));
    }
    Ok(HealthStatus::healthy(format!(
        "statefulset rolling update complete {} pods at revision {current_revision}...",
        status.current_replicas.unwrap_or(0)
    )))
}
