//! `status.conditions`, `status.resources` and `status.health`, as Argo CD's ApplicationSet
//! controller writes them, through the status subresource and only when they changed.

use ferry_types::application::{HealthStatus, HealthStatusCode, ResourceStatus};
use ferry_types::application_set::{
    ApplicationSetApplicationStatus, ApplicationSetCondition, ApplicationSetStatus, condition,
    reason,
};
use ferry_types::{Application, ApplicationSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// The conditions of a generation that succeeded, or failed with `error` (reason, message);
/// `generated` says whether the parameters were generated.
pub fn conditions(error: Option<(&str, &str)>, generated: bool) -> Vec<ApplicationSetCondition> {
    let entry = |type_: &str, status: &str, reason: &str, message: &str| ApplicationSetCondition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: None,
    };
    match error {
        None => {
            let message = "All applications have been generated successfully";
            vec![
                entry(
                    condition::PARAMETERS_GENERATED,
                    "True",
                    reason::PARAMETERS_GENERATED,
                    "Successfully generated parameters for all Applications",
                ),
                entry(
                    condition::RESOURCES_UP_TO_DATE,
                    "True",
                    reason::APPLICATION_SET_UP_TO_DATE,
                    message,
                ),
                entry(
                    condition::ERROR_OCCURRED,
                    "False",
                    reason::APPLICATION_SET_UP_TO_DATE,
                    message,
                ),
            ]
        }
        Some((why, message)) => {
            let parameters = if generated {
                entry(
                    condition::PARAMETERS_GENERATED,
                    "True",
                    reason::PARAMETERS_GENERATED,
                    "Successfully generated parameters for all Applications",
                )
            } else {
                entry(
                    condition::PARAMETERS_GENERATED,
                    "False",
                    reason::ERROR_OCCURRED,
                    message,
                )
            };
            vec![
                parameters,
                entry(condition::ERROR_OCCURRED, "True", why, message),
                entry(
                    condition::RESOURCES_UP_TO_DATE,
                    "False",
                    reason::ERROR_OCCURRED,
                    message,
                ),
            ]
        }
    }
}

/// The owned Applications as `status.resources` entries, by name.
pub fn resources(apps: &[Application]) -> Vec<ResourceStatus> {
    let mut out: Vec<_> = apps
        .iter()
        .map(|app| {
            let status = app.status.as_ref();
            ResourceStatus {
                group: ferry_types::GROUP.into(),
                version: ferry_types::VERSION.into(),
                kind: "Application".into(),
                namespace: app.namespace().unwrap_or_default(),
                name: app.name_any(),
                status: status.map(|s| s.sync.status),
                health: status.map(|s| HealthStatus {
                    status: s.health.status,
                    message: s.health.message.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// `conditions` over the set's current ones, as upstream merges them: a condition of a type
/// given replaces the current one (which keeps its transition time if nothing changed), the
/// other types stay — but the rollout's conditions go when the set has no RollingSync — and
/// they are sorted by type.
pub fn merged(
    appset: &ApplicationSet,
    conditions: Vec<ApplicationSetCondition>,
    now: &Time,
) -> Vec<ApplicationSetCondition> {
    let current = appset
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let rolling = super::progressive::is_rolling_sync(appset);
    let mut next: Vec<_> = current
        .iter()
        .filter(|c| !conditions.iter().any(|n| n.type_ == c.type_))
        .filter(|c| {
            rolling
                || (c.type_ != condition::ROLLOUT_PROGRESSING
                    && c.type_ != condition::INVALID_ROLLOUT_CONFIG)
        })
        .cloned()
        .collect();
    for mut c in conditions {
        let same = current.iter().find(|old| {
            old.type_ == c.type_
                && old.status == c.status
                && old.reason == c.reason
                && old.message == c.message
        });
        c.last_transition_time = same
            .and_then(|old| old.last_transition_time.clone())
            .or_else(|| Some(now.clone()));
        next.push(c);
    }
    next.sort_by(|a, b| a.type_.cmp(&b.type_));
    next
}

/// Writes `conditions` (merged with the current ones, see [`merged`]) and `resources`, when
/// given, if they differ from what `appset` shows.
pub async fn write(
    api: &Api<ApplicationSet>,
    appset: &ApplicationSet,
    conditions: Vec<ApplicationSetCondition>,
    resources: Option<Vec<ResourceStatus>>,
) -> Result<(), kube::Error> {
    let current = appset.status.clone().unwrap_or_default();
    // Whole seconds, as the API server stores times, so a re-read status compares equal.
    let now = jiff::Timestamp::now();
    let now = Time(now.round(jiff::Unit::Second).unwrap_or(now));
    let mut next = ApplicationSetStatus {
        conditions: merged(appset, conditions, &now),
        health: None,
        ..current.clone()
    };
    if let Some(resources) = resources {
        next.resources_count = resources.len() as i64;
        next.resources = resources;
    }
    next.health = Some(health(&next));
    if next == current {
        return Ok(());
    }
    let patch = json!({"status": {
        "conditions": next.conditions,
        "resources": next.resources,
        "resourcesCount": next.resources_count,
        "health": next.health,
    }});
    api.patch_status(
        &appset.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// Writes `status.applicationStatus` (a rolling sync's states) if it differs.
pub async fn write_application_status(
    api: &Api<ApplicationSet>,
    appset: &ApplicationSet,
    statuses: Vec<ApplicationSetApplicationStatus>,
) -> Result<(), kube::Error> {
    let current = appset.status.as_ref().map(|s| &s.application_status);
    if current.map_or(statuses.is_empty(), |c| *c == statuses) {
        return Ok(());
    }
    let patch = json!({"status": {"applicationStatus": statuses}});
    api.patch_status(
        &appset.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// Degraded on an error, Healthy when up to date.
fn health(status: &ApplicationSetStatus) -> HealthStatus {
    let with = |type_: &str| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == "True")
    };
    let (code, message) = if let Some(c) = with(condition::ERROR_OCCURRED) {
        (HealthStatusCode::Degraded, c.message.clone())
    } else if let Some(c) = with(condition::RESOURCES_UP_TO_DATE) {
        (HealthStatusCode::Healthy, c.message.clone())
    } else {
        (
            HealthStatusCode::Unknown,
            "Waiting for health status to be determined".into(),
        )
    };
    HealthStatus {
        status: code,
        message,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_say_what_happened() {
        let ok = conditions(None, true);
        let types: Vec<_> = ok
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(
            types,
            [
                ("ParametersGenerated", "True"),
                ("ResourcesUpToDate", "True"),
                ("ErrorOccurred", "False")
            ]
        );
        let failed = conditions(Some(("RenderTemplateParamsError", "bad template")), false);
        assert_eq!(failed[0].status, "False");
        assert_eq!(failed[1].reason, "RenderTemplateParamsError");
        assert_eq!(failed[1].message, "bad template");
        let status = ApplicationSetStatus {
            conditions: failed,
            ..Default::default()
        };
        assert_eq!(health(&status).status, HealthStatusCode::Degraded);
    }

    /// Upstream keeps the types not evaluated, drops the rollout's without a RollingSync, keeps
    /// an unchanged condition's time and sorts by type.
    #[test]
    fn conditions_merge_over_the_current_ones() {
        let t0 = Time(jiff::Timestamp::from_second(1_000).unwrap());
        let now = Time(jiff::Timestamp::from_second(2_000).unwrap());
        let mut appset: ApplicationSet = serde_yaml::from_str(
            "spec:
  strategy: {type: RollingSync, rollingSync: {steps: [{}]}}
status:
  conditions:
  - {type: RolloutProgressing, status: 'True', reason: ApplicationSetModified, message: step 1, lastTransitionTime: '1970-01-01T00:16:40Z'}
  - {type: ResourcesUpToDate, status: 'True', reason: ApplicationSetUpToDate, message: All applications have been generated successfully, lastTransitionTime: '1970-01-01T00:16:40Z'}
",
        )
        .unwrap();
        let failed = merged(
            &appset,
            conditions(Some(("RenderTemplateParamsError", "bad")), false),
            &now,
        );
        let types: Vec<_> = failed.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            [
                "ErrorOccurred",
                "ParametersGenerated",
                "ResourcesUpToDate",
                "RolloutProgressing"
            ]
        );
        assert_eq!(failed[3].last_transition_time, Some(t0.clone()));
        assert_eq!(failed[2].last_transition_time, Some(now.clone()));

        let ok = merged(&appset, conditions(None, true), &now);
        assert_eq!(ok[2].type_, "ResourcesUpToDate");
        assert_eq!(ok[2].last_transition_time, Some(t0), "unchanged: same time");

        appset.spec.strategy = None;
        let types: Vec<_> = merged(&appset, conditions(None, true), &now)
            .into_iter()
            .map(|c| c.type_)
            .collect();
        assert_eq!(
            types,
            ["ErrorOccurred", "ParametersGenerated", "ResourcesUpToDate"]
        );
    }
}
