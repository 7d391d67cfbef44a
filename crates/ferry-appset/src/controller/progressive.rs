//! Progressive syncs (`--enable-progressive-syncs`), Argo CD's `RollingSync` strategy: the
//! generated Applications lose automated sync; each belongs to the first step whose
//! `matchExpressions` (`In`/`NotIn` on its labels) it matches; a step's Applications that are
//! `Waiting` (out of sync, or changed) become `Pending` and are synced by the controller — at
//! most `maxUpdate` of a step at once — once every Application of the earlier steps is
//! `Healthy`. `status.applicationStatus` records each Application's state as upstream does:
//! Waiting → Pending → Progressing (its sync started) → Healthy (synced and healthy).

use std::collections::{HashMap, HashSet};

use ferry_types::application::{
    HealthStatusCode, Operation, OperationInitiator, SyncOperation, SyncStatusCode,
};
use ferry_types::application_set::{
    ApplicationMatchExpression, ApplicationSetApplicationStatus, ApplicationSetRolloutStep,
};
use ferry_types::{Application, ApplicationSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

pub const WAITING: &str = "Waiting";
pub const PENDING: &str = "Pending";
pub const PROGRESSING: &str = "Progressing";
pub const HEALTHY: &str = "Healthy";

/// The steps of a RollingSync strategy with steps, if the set has one.
pub fn rolling_steps(appset: &ApplicationSet) -> Option<&[ApplicationSetRolloutStep]> {
    let strategy = appset.spec.strategy.as_ref()?;
    let steps = &strategy.rolling_sync.as_ref()?.steps;
    (strategy.type_ == "RollingSync" && !steps.is_empty()).then_some(steps.as_slice())
}

/// Automated sync switched off (`enabled: false`), as upstream leaves the block; whether it
/// pruned.
pub fn disable_automated_sync(app: &mut Application) -> bool {
    let automated = app
        .spec
        .sync_policy
        .as_mut()
        .and_then(|p| p.automated.as_mut());
    match automated {
        Some(automated) => {
            let prune = automated.enabled != Some(false) && automated.prune;
            automated.enabled = Some(false);
            prune
        }
        None => false,
    }
}

fn matches(
    expression: &ApplicationMatchExpression,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    match (labels.get(&expression.key), expression.operator.as_str()) {
        (Some(value), "In") => expression.values.contains(value),
        (Some(value), "NotIn") => !expression.values.contains(value),
        (None, "In") => false,
        (None, "NotIn") => true,
        // Other operators select nothing, as upstream.
        _ => false,
    }
}

/// Each Application's step (index) — the first whose expressions all match — and each step's
/// Applications.
pub fn steps_of(
    steps: &[ApplicationSetRolloutStep],
    apps: &[Application],
) -> (HashMap<String, usize>, Vec<Vec<String>>) {
    let mut step_of = HashMap::new();
    let mut members = vec![Vec::new(); steps.len()];
    for app in apps {
        let labels = app.labels();
        for (i, step) in steps.iter().enumerate() {
            if step.match_expressions.iter().all(|e| matches(e, labels)) {
                members[i].push(app.name_any());
                step_of.entry(app.name_any()).or_insert(i);
            }
        }
    }
    (step_of, members)
}

fn revisions(app: &Application) -> Vec<String> {
    let Some(sync) = app.status.as_ref().map(|s| &s.sync) else {
        return Vec::new();
    };
    if sync.revisions.is_empty() {
        vec![sync.revision.clone()]
            .into_iter()
            .filter(|r| !r.is_empty())
            .collect()
    } else {
        sync.revisions.clone()
    }
}

fn step_label(step_of: &HashMap<String, usize>, name: &str) -> String {
    step_of.get(name).map_or(-1, |i| *i as i64 + 1).to_string()
}

/// The applications' new states. `changed` are those whose spec this reconcile updated.
pub fn update_statuses(
    appset: &ApplicationSet,
    apps: &[Application],
    changed: &HashSet<String>,
    step_of: &HashMap<String, usize>,
    now: &Time,
) -> Vec<ApplicationSetApplicationStatus> {
    let current = appset
        .status
        .as_ref()
        .map(|s| s.application_status.as_slice())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(apps.len());
    for app in apps {
        let name = app.name_any();
        let status = app.status.clone().unwrap_or_default();
        let old = current.iter().find(|s| s.application == name).cloned();
        let mut next = old
            .clone()
            .unwrap_or_else(|| ApplicationSetApplicationStatus {
                application: name.clone(),
                last_transition_time: Some(now.clone()),
                message: "No Application status found, defaulting status to Waiting".into(),
                status: WAITING.into(),
                step: String::new(),
                target_revisions: revisions(app),
            });
        next.step = step_label(step_of, &name);
        let set = |next: &mut ApplicationSetApplicationStatus, state: &str, message: &str| {
            next.status = state.into();
            next.message = message.into();
            next.last_transition_time = Some(now.clone());
        };
        let revisions_changed = old.is_some() && next.target_revisions != revisions(app);
        if revisions_changed || changed.contains(&name) {
            next.target_revisions = revisions(app);
            let message = match (revisions_changed, changed.contains(&name)) {
                (true, true) => {
                    "Application has pending changes (revision and spec differ), setting status to Waiting"
                }
                (true, false) => "Application has pending changes, setting status to Waiting",
                _ => "Application resource has changed, setting status to Waiting",
            };
            set(&mut next, WAITING, message);
        }
        let (sync, health) = (status.sync.status, status.health.status);
        let was = old.as_ref().map(|o| o.status.as_str()).unwrap_or(WAITING);
        if next.status == WAITING {
            if sync == SyncStatusCode::Synced {
                if health == HealthStatusCode::Healthy {
                    set(
                        &mut next,
                        HEALTHY,
                        "Application resource has synced, updating status to Healthy",
                    );
                } else {
                    set(
                        &mut next,
                        PROGRESSING,
                        "Application resource has synced, updating status to Progressing",
                    );
                }
            }
        } else {
            if was == PENDING {
                let since = old.as_ref().and_then(|o| o.last_transition_time.clone());
                let started_after = status
                    .operation_state
                    .as_ref()
                    .and_then(|s| s.started_at.as_ref())
                    .zip(since.as_ref())
                    .is_some_and(|(started, since)| started.0 >= since.0);
                let in_error = status.conditions.iter().any(|c| {
                    c.condition_type == "InvalidSpecError" || c.condition_type == "UnknownError"
                });
                if started_after {
                    set(
                        &mut next,
                        PROGRESSING,
                        "Application resource became Progressing, updating status from Pending to Progressing",
                    );
                } else if in_error {
                    set(
                        &mut next,
                        PROGRESSING,
                        "Application resource has error and cannot sync, updating status to Progressing",
                    );
                }
            }
            if was == PROGRESSING
                && sync == SyncStatusCode::Synced
                && health == HealthStatusCode::Healthy
            {
                set(
                    &mut next,
                    HEALTHY,
                    "Application resource became Healthy, updating status from Progressing to Healthy",
                );
            }
        }
        out.push(next);
    }
    out.sort_by(|a, b| a.application.cmp(&b.application));
    out
}

/// The Applications that may sync: every step's up to the first step not entirely Healthy.
pub fn apps_to_sync(
    statuses: &[ApplicationSetApplicationStatus],
    members: &[Vec<String>],
) -> HashSet<String> {
    let mut out = HashSet::new();
    for step in members {
        out.extend(step.iter().cloned());
        let healthy = step.iter().all(|name| {
            statuses
                .iter()
                .any(|s| &s.application == name && s.status == HEALTHY)
        });
        if !healthy {
            break;
        }
    }
    out
}

/// `maxUpdate` of a step of `total` Applications (all of them when unset).
fn max_update(value: Option<&IntOrString>, total: usize) -> usize {
    match value {
        None => total,
        Some(IntOrString::Int(n)) => (*n).max(0) as usize,
        Some(IntOrString::String(text)) => {
            let percent: f64 = text.trim_end_matches('%').parse().unwrap_or(100.0);
            // Rounded down, but at least one unless 0%, as upstream.
            let scaled = (percent * total as f64 / 100.0).floor() as usize;
            if text != "0%" { scaled.max(1) } else { scaled }
        }
    }
}

/// Moves `Waiting` Applications allowed to sync to `Pending`, within each step's `maxUpdate`;
/// the names moved.
pub fn promote(
    statuses: &mut [ApplicationSetApplicationStatus],
    steps: &[ApplicationSetRolloutStep],
    step_of: &HashMap<String, usize>,
    to_sync: &HashSet<String>,
    now: &Time,
) -> Vec<String> {
    let mut total = vec![0; steps.len()];
    let mut updating = vec![0; steps.len()];
    for status in statuses.iter() {
        if let Some(&step) = step_of.get(&status.application) {
            total[step] += 1;
            if status.status == PENDING || status.status == PROGRESSING {
                updating[step] += 1;
            }
        }
    }
    let mut moved = Vec::new();
    for status in statuses.iter_mut() {
        let Some(&step) = step_of.get(&status.application) else {
            continue;
        };
        let allowed = max_update(steps[step].max_update.as_ref(), total[step]);
        if status.status == WAITING
            && to_sync.contains(&status.application)
            && updating[step] < allowed
        {
            status.status = PENDING.into();
            status.message = "Application moved to Pending status, watching for the Application resource to start Progressing".into();
            status.last_transition_time = Some(now.clone());
            updating[step] += 1;
            moved.push(status.application.clone());
        }
    }
    moved
}

/// The sync the controller asks for, as upstream's RollingSync does.
pub fn sync_operation(app: &Application, prune: bool) -> Operation {
    let policy = app.spec.sync_policy.as_ref();
    Operation {
        sync: Some(SyncOperation {
            prune,
            sync_options: policy.map(|p| p.sync_options.clone()).unwrap_or_default(),
            ..Default::default()
        }),
        initiated_by: OperationInitiator {
            username: "applicationset-controller".into(),
            automated: true,
            ..Default::default()
        },
        info: vec![ferry_types::application::Info {
            name: "Reason".into(),
            value: "ApplicationSet RollingSync triggered a sync of this Application resource"
                .into(),
            ..Default::default()
        }],
        retry: Some(policy.and_then(|p| p.retry.clone()).unwrap_or(
            ferry_types::application::RetryStrategy {
                limit: 5,
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(yaml: &str) -> Vec<ApplicationSetRolloutStep> {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn app(name: &str, env: &str) -> Application {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "labels": {"env": env}},
            "spec": {},
        }))
        .unwrap()
    }

    fn status(name: &str, state: &str) -> ApplicationSetApplicationStatus {
        ApplicationSetApplicationStatus {
            application: name.into(),
            status: state.into(),
            ..Default::default()
        }
    }

    #[test]
    fn apps_belong_to_their_first_matching_step_and_steps_wait_for_the_earlier_ones() {
        let steps = steps(
            "- matchExpressions: [{key: env, operator: In, values: [dev]}]
- matchExpressions: [{key: env, operator: NotIn, values: [dev]}]
  maxUpdate: 50%
",
        );
        let apps = [
            app("a", "dev"),
            app("b", "prod"),
            app("c", "prod"),
            app("d", "qa"),
        ];
        let (step_of, members) = steps_of(&steps, &apps);
        assert_eq!(members, [vec!["a"], vec!["b", "c", "d"]]);
        assert_eq!(step_label(&step_of, "d"), "2");
        assert_eq!(step_label(&step_of, "z"), "-1");

        let mut statuses = vec![
            status("a", PROGRESSING),
            status("b", WAITING),
            status("c", WAITING),
            status("d", WAITING),
        ];
        let to_sync = apps_to_sync(&statuses, &members);
        assert!(
            to_sync.contains("a") && !to_sync.contains("b"),
            "{to_sync:?}"
        );
        statuses[0].status = HEALTHY.into();
        let to_sync = apps_to_sync(&statuses, &members);
        let now = Time(jiff::Timestamp::now());
        // 50% of three: one at a time.
        let moved = promote(&mut statuses, &steps, &step_of, &to_sync, &now);
        assert_eq!(moved, ["b"]);
        assert_eq!(
            promote(&mut statuses, &steps, &step_of, &to_sync, &now),
            Vec::<String>::new()
        );
    }

    #[test]
    fn max_update_is_a_count_or_a_percentage_of_the_step() {
        assert_eq!(max_update(None, 4), 4);
        assert_eq!(max_update(Some(&IntOrString::Int(2)), 4), 2);
        assert_eq!(max_update(Some(&IntOrString::String("25%".into())), 3), 1);
        assert_eq!(max_update(Some(&IntOrString::String("0%".into())), 3), 0);
        assert_eq!(max_update(Some(&IntOrString::String("100%".into())), 3), 3);
    }
}
