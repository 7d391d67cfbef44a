//! Pod: failing container waits (image pulls, crash loops) first, then the phase. Pods that
//! do not restart (`restartPolicy` `OnFailure`/`Never`) are usually sync hooks: while running they
//! stay Progressing and their waits are not judged, so a hook is not failed before it had a chance.

use serde::Deserialize;
use serde_json::Value;

use crate::object::{Condition, Metadata, condition, read};
use crate::status::HealthStatus;

/// Judges a running pod by readiness even when its restart policy is not `Always`
/// (for operator-managed pods that are not hooks).
const IGNORE_RESTART_POLICY: &str = "argocd.argoproj.io/ignore-restart-policy";

#[derive(Deserialize, Default)]
#[serde(default)]
struct Pod {
    metadata: Option<Metadata>,
    spec: Option<Spec>,
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Spec {
    restart_policy: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Status {
    phase: Option<String>,
    message: Option<String>,
    conditions: Option<Vec<Condition>>,
    init_container_statuses: Option<Vec<ContainerStatus>>,
    container_statuses: Option<Vec<ContainerStatus>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ContainerStatus {
    name: Option<String>,
    state: Option<ContainerState>,
    last_state: Option<ContainerState>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ContainerState {
    waiting: Option<Waiting>,
    terminated: Option<Terminated>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Waiting {
    reason: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Terminated {
    reason: Option<String>,
    message: Option<String>,
    exit_code: Option<i64>,
}

impl ContainerStatus {
    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    /// The message of a wait that will not resolve by itself: `ErrImagePull`,
    /// `ImagePullBackOff`, `CrashLoopBackOff`, `CreateContainerConfigError`, ...
    fn failing_wait(&self) -> Option<String> {
        let waiting = self.state.as_ref()?.waiting.as_ref()?;
        let reason = waiting.reason.as_deref().unwrap_or("");
        let failing =
            reason.starts_with("Err") || reason.ends_with("Error") || reason.ends_with("BackOff");
        if !failing {
            return None;
        }
        Some(match waiting.message.as_deref() {
            Some(message) if !message.is_empty() => message.to_owned(),
            _ => format!("container {:?} is waiting: {reason}", self.name()),
        })
    }

    /// Why a terminated container failed, if it did.
    fn failure(&self) -> Option<String> {
        let terminated = self.state.as_ref()?.terminated.as_ref()?;
        let exit_code = terminated.exit_code.unwrap_or(0);
        match (terminated.message.as_deref(), terminated.reason.as_deref()) {
            (Some(message), _) if !message.is_empty() => Some(message.to_owned()),
            (_, Some("OOMKilled")) => Some("OOMKilled".to_owned()),
            _ if exit_code != 0 => Some(format!(
                "container {:?} failed with exit code {exit_code}",
                self.name()
            )),
            _ => None,
        }
    }

    fn restarted_after(&self) -> Option<String> {
        let terminated = self.last_state.as_ref()?.terminated.as_ref()?;
        Some(format!(
            "container {:?} is not ready and last terminated with {} (exit code {})",
            self.name(),
            terminated.reason.as_deref().unwrap_or("no reason"),
            terminated.exit_code.unwrap_or(0)
        ))
    }
}

pub(super) fn check(obj: &Value) -> Result<HealthStatus, String> {
    let pod: Pod = read(obj)?;
    let meta = pod.metadata.unwrap_or_default();
    let spec = pod.spec.unwrap_or_default();
    let status = pod.status.unwrap_or_default();
    let message = status.message.clone().unwrap_or_default();
    let init = status.init_container_statuses.unwrap_or_default();
    let main = status.container_statuses.unwrap_or_default();
    let restarts_always = spec.restart_policy.as_deref().unwrap_or("Always") == "Always";

    if restarts_always {
        let waits: Vec<String> = init
            .iter()
            .chain(&main)
            .filter_map(ContainerStatus::failing_wait)
            .collect();
        if !waits.is_empty() {
            return Ok(HealthStatus::degraded(waits.join(", ")));
        }
    }

    Ok(match status.phase.as_deref().unwrap_or("") {
        "Pending" => HealthStatus::progressing(message),
        "Succeeded" => HealthStatus::healthy(message),
        "Failed" if !message.is_empty() => HealthStatus::degraded(message),
        "Failed" => HealthStatus::degraded(
            init.iter()
                .chain(&main)
                .find_map(ContainerStatus::failure)
                .unwrap_or_default(),
        ),
        "Running" if restarts_always || meta.annotation(IGNORE_RESTART_POLICY).is_some() => {
            let conditions = status.conditions.unwrap_or_default();
            if condition(&conditions, "Ready").is_some_and(Condition::is_true) {
                HealthStatus::healthy(message)
            } else if let Some(restarted) = main.iter().find_map(ContainerStatus::restarted_after) {
                HealthStatus::degraded(if message.is_empty() {
                    restarted
                } else {
                    message
                })
            } else {
                HealthStatus::progressing(message)
            }
        }
        "Running" => HealthStatus::progressing(message),
        _ => HealthStatus::unknown(message),
    })
}
