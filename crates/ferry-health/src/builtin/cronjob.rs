//! CronJob (Argo CD ships this one as a Lua script): suspended, never scheduled, running, or
//! judged by whether the last scheduled run succeeded. A running job or a first run that has not
//! finished yet is not held against the CronJob.

use serde::Deserialize;
use serde_json::Value;

use crate::object::read;
use crate::status::HealthStatus;

#[derive(Deserialize, Default)]
#[serde(default)]
struct CronJob {
    spec: Option<Spec>,
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Spec {
    suspend: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Status {
    active: Option<Vec<Value>>,
    last_schedule_time: Option<String>,
    last_successful_time: Option<String>,
}

pub(super) fn check(obj: &Value) -> Result<HealthStatus, String> {
    let cron: CronJob = read(obj)?;
    if cron.spec.and_then(|s| s.suspend) == Some(true) {
        return Ok(HealthStatus::suspended("CronJob is suspended"));
    }
    let Some(status) = cron.status else {
        return Ok(HealthStatus::progressing("Waiting for CronJob status"));
    };
    let Some(last_schedule) = status.last_schedule_time else {
        return Ok(HealthStatus::healthy("CronJob has not been scheduled yet"));
    };
    if status.active.is_some_and(|active| !active.is_empty()) {
        return Ok(HealthStatus::healthy("CronJob has a job running"));
    }
    // Kubernetes writes these times as RFC 3339 in UTC with second precision, so they order as text.
    Ok(match status.last_successful_time {
        None => HealthStatus::healthy("CronJob has not completed a job successfully yet"),
        Some(last_success) if last_success < last_schedule => {
            HealthStatus::degraded("CronJob's last scheduled job did not complete successfully")
        }
        Some(_) => HealthStatus::healthy("CronJob's last scheduled job completed successfully"),
    })
}
