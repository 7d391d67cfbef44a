//! Progressive syncs (`--enable-progressive-syncs`), Argo CD's `RollingSync` strategy: the
//! generated Applications lose automated sync; each belongs to the first step whose
//! `matchExpressions` (`In`/`NotIn` on its labels) it matches; a step's Applications that are
//! `Waiting` (out of sync, or changed) become `Pending` and are synced by the controller — at
//! most `maxUpdate` of a step at once — once every Application of the earlier steps is
//! `Healthy`. `status.applicationStatus` records each Application's state as upstream does:
//! Waiting → Pending → Progressing (its sync started) → Healthy (synced and healthy), and the
//! `RolloutProgressing` and `InvalidRolloutConfig` conditions say how the rollout goes. With
//! `deletionOrder: Reverse` the set's Applications are deleted with it step by step, the last
//! step first.

use std::collections::{BTreeMap, HashMap, HashSet};

use ferry_types::application::{
    HealthStatusCode, Operation, OperationInitiator, OperationPhase, SyncOperation, SyncStatusCode,
};
use ferry_types::application_set::{
    ApplicationMatchExpression, ApplicationSetApplicationStatus, ApplicationSetCondition,
    ApplicationSetRolloutStep, condition, reason,
};
use ferry_types::{Application, ApplicationSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

pub const WAITING: &str = "Waiting";
pub const PENDING: &str = "Pending";
pub const PROGRESSING: &str = "Progressing";
pub const HEALTHY: &str = "Healthy";

/// Whether the set asks for a RollingSync (with steps or not).
pub fn is_rolling_sync(appset: &ApplicationSet) -> bool {
    appset
        .spec
        .strategy
        .as_ref()
        .is_some_and(|s| s.type_ == "RollingSync" && s.rolling_sync.is_some())
}

/// The steps of a RollingSync strategy with steps, if the set has one.
pub fn rolling_steps(appset: &ApplicationSet) -> Option<&[ApplicationSetRolloutStep]> {
    let strategy = appset.spec.strategy.as_ref()?;
    let steps = &strategy.rolling_sync.as_ref()?.steps;
    (is_rolling_sync(appset) && !steps.is_empty()).then_some(steps.as_slice())
}

/// Whether the set's Applications are deleted the last step first (`deletionOrder: Reverse`,
/// any case, on a RollingSync with steps).
pub fn deletion_reversed(appset: &ApplicationSet) -> bool {
    rolling_steps(appset).is_some()
        && appset
            .spec
            .strategy
            .as_ref()
            .is_some_and(|s| s.deletion_order.eq_ignore_ascii_case("Reverse"))
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

/// What is wrong with a rollout's configuration (upstream's `InvalidRolloutConfig`).
#[derive(Debug, Default, PartialEq)]
pub struct Issues {
    /// (step index, operator) of expressions whose operator is neither `In` nor `NotIn`.
    invalid_operators: Vec<(usize, String)>,
    /// Applications selected by more than one step, with those steps' indexes.
    duplicates: BTreeMap<String, Vec<usize>>,
    /// (step index, value) of `maxUpdate`s that are neither a count nor a whole percentage.
    invalid_max_updates: Vec<(usize, String)>,
    empty_steps: Vec<usize>,
}

impl Issues {
    /// The message of the most important issue, upstream's wording; `None` when all is well.
    pub fn message(&self) -> Option<String> {
        let numbers = |steps: &mut dyn Iterator<Item = usize>, sep: &str| {
            steps
                .map(|i| (i + 1).to_string())
                .collect::<Vec<_>>()
                .join(sep)
        };
        if !self.invalid_operators.is_empty() {
            let steps = numbers(&mut self.invalid_operators.iter().map(|(i, _)| *i), ", ");
            let operators: Vec<_> = self
                .invalid_operators
                .iter()
                .map(|(_, o)| o.as_str())
                .collect();
            let supported = "Supported Operators are 'In' and 'NotIn'";
            return Some(if self.invalid_operators.len() == 1 {
                format!(
                    "Step {steps} has invalid matchExpression operators: {}. {supported}",
                    operators.join(", ")
                )
            } else {
                format!(
                    "Steps {steps} have invalid matchExpression operators: {}. {supported}",
                    operators.join(", ")
                )
            });
        }
        if !self.duplicates.is_empty() {
            let names: Vec<_> = self.duplicates.keys().map(String::as_str).collect();
            let steps: Vec<_> = self
                .duplicates
                .values()
                .map(|s| numbers(&mut s.iter().copied(), "-"))
                .collect();
            return Some(if names.len() == 1 {
                format!(
                    "Application '{}' is selected by multiple steps: ({})",
                    names[0], steps[0]
                )
            } else {
                format!(
                    "Applications '{}' are selected by multiple steps: [({})]",
                    names.join("', '"),
                    steps.join("), (")
                )
            });
        }
        if !self.invalid_max_updates.is_empty() {
            let steps = numbers(&mut self.invalid_max_updates.iter().map(|(i, _)| *i), ", ");
            let values: Vec<_> = self
                .invalid_max_updates
                .iter()
                .map(|(_, v)| v.as_str())
                .collect();
            return Some(if self.invalid_max_updates.len() == 1 {
                format!(
                    "Step {steps} has an invalid maxUpdate value: {}",
                    values.join(", ")
                )
            } else {
                format!(
                    "Steps {steps} have invalid maxUpdate values: [{}]",
                    values.join(", ")
                )
            });
        }
        if !self.empty_steps.is_empty() {
            // Go's %v of a string slice.
            let steps: Vec<_> = self
                .empty_steps
                .iter()
                .map(|i| (i + 1).to_string())
                .collect();
            return Some(format!(
                "Steps [{}] have no applications matching their criteria",
                steps.join(" ")
            ));
        }
        None
    }
}

/// Whether a label value matches `expression`; `None` for an operator other than `In`/`NotIn`.
fn value_matches(expression: &ApplicationMatchExpression, value: &str) -> Option<bool> {
    let listed = expression.values.iter().any(|v| v == value);
    match expression.operator.as_str() {
        "In" => Some(listed),
        "NotIn" => Some(!listed),
        _ => None,
    }
}

/// Each Application's step (index) — the first that selects it — each step's Applications, and
/// what is wrong with the steps. A step selects an Application when every expression whose key
/// it has matches and it lacks no key of an `In` expression, as upstream.
pub fn steps_of(
    steps: &[ApplicationSetRolloutStep],
    apps: &[Application],
) -> (HashMap<String, usize>, Vec<Vec<String>>, Issues) {
    let mut step_of = HashMap::new();
    let mut members = vec![Vec::new(); steps.len()];
    let mut issues = Issues::default();
    for app in apps {
        let name = app.name_any();
        let labels = app.labels();
        for (i, step) in steps.iter().enumerate() {
            let mut selected = true;
            for expression in &step.match_expressions {
                match labels.get(&expression.key) {
                    Some(value) => match value_matches(expression, value) {
                        Some(true) => {}
                        Some(false) => {
                            selected = false;
                            break;
                        }
                        None => {
                            let issue = (i, expression.operator.clone());
                            if !issues.invalid_operators.contains(&issue) {
                                issues.invalid_operators.push(issue);
                            }
                            selected = false;
                            break;
                        }
                    },
                    None if expression.operator == "In" => {
                        selected = false;
                        break;
                    }
                    None => {}
                }
            }
            if !selected {
                continue;
            }
            members[i].push(name.clone());
            match step_of.get(&name) {
                Some(&first) => issues
                    .duplicates
                    .entry(name.clone())
                    .or_insert_with(|| vec![first])
                    .push(i),
                None => {
                    step_of.insert(name.clone(), i);
                }
            }
        }
    }
    issues.empty_steps = (0..steps.len())
        .filter(|i| members[*i].is_empty())
        .collect();
    (step_of, members, issues)
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
                _ => "Application has pending changes (spec differs), setting status to Waiting",
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
            // Only an Application reconciled since it became Pending says anything new.
            let since = old.as_ref().and_then(|o| o.last_transition_time.clone());
            let reconciled_since = match (&status.reconciled_at, &since) {
                (Some(reconciled), Some(since)) => reconciled.0 >= since.0,
                _ => true,
            };
            if was == PENDING && reconciled_since {
                let operation = status.operation_state.as_ref();
                let started_after = operation
                    .and_then(|s| s.started_at.as_ref())
                    .zip(since.as_ref())
                    .is_some_and(|(started, since)| started.0 >= since.0);
                let in_error = status.conditions.iter().any(|c| {
                    c.condition_type == "InvalidSpecError" || c.condition_type == "UnknownError"
                });
                if started_after {
                    let message = match operation.map(|o| o.phase) {
                        Some(OperationPhase::Succeeded) => {
                            "Application resource completed a sync successfully, updating status from Pending to Progressing"
                        }
                        Some(phase) if phase.is_completed() => {
                            "Application resource completed a sync, updating status from Pending to Progressing"
                        }
                        _ => {
                            "Application resource became Progressing, updating status from Pending to Progressing"
                        }
                    };
                    set(&mut next, PROGRESSING, message);
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

/// `maxUpdate` of a step of `total` Applications (all of them when unset): a count, or a whole
/// percentage rounded down but at least one unless `0%`, as upstream. A value that is neither
/// is `Err` with the one-at-a-time it falls back to.
fn max_update(value: Option<&IntOrString>, total: usize) -> Result<usize, usize> {
    match value {
        None => Ok(total),
        Some(IntOrString::Int(n)) => Ok((*n).max(0) as usize),
        Some(IntOrString::String(text)) => {
            let percent = text.strip_suffix('%').and_then(|p| p.parse::<i64>().ok());
            let Some(percent) = percent else {
                return Err(1);
            };
            let scaled = (percent.max(0) as usize * total) / 100;
            Ok(if text != "0%" { scaled.max(1) } else { scaled })
        }
    }
}

/// Moves `Waiting` Applications allowed to sync to `Pending`, within each step's `maxUpdate`;
/// the names moved. An unusable `maxUpdate` is recorded in `issues`.
pub fn promote(
    statuses: &mut [ApplicationSetApplicationStatus],
    steps: &[ApplicationSetRolloutStep],
    step_of: &HashMap<String, usize>,
    to_sync: &HashSet<String>,
    now: &Time,
    issues: &mut Issues,
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
    let mut allowed = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        allowed.push(
            max_update(step.max_update.as_ref(), total[i]).unwrap_or_else(|fallback| {
                let value = match &step.max_update {
                    Some(IntOrString::String(s)) => s.clone(),
                    Some(IntOrString::Int(n)) => n.to_string(),
                    None => String::new(),
                };
                if total[i] > 0 {
                    issues.invalid_max_updates.push((i, value));
                }
                fallback
            }),
        );
    }
    let mut moved = Vec::new();
    for status in statuses.iter_mut() {
        let Some(&step) = step_of.get(&status.application) else {
            continue;
        };
        if status.status == WAITING
            && to_sync.contains(&status.application)
            && updating[step] < allowed[step]
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

/// `RolloutProgressing`: true while a step with Applications is not all Healthy, naming it.
pub fn progressing_condition(
    steps: &[ApplicationSetRolloutStep],
    statuses: &[ApplicationSetApplicationStatus],
) -> ApplicationSetCondition {
    let step_done = |step: &str| {
        let mut of_step = statuses.iter().filter(|s| s.step == step).peekable();
        of_step.peek()?;
        Some(of_step.all(|s| s.status == HEALTHY))
    };
    let running = (1..=steps.len())
        .map(|i| i.to_string())
        .find(|step| step_done(step) == Some(false));
    match running {
        Some(step) => entry(
            condition::ROLLOUT_PROGRESSING,
            "True",
            reason::APPLICATION_SET_MODIFIED,
            &format!("ApplicationSet is performing rollout of step {step}"),
        ),
        None => entry(
            condition::ROLLOUT_PROGRESSING,
            "False",
            reason::APPLICATION_SET_ROLLOUT_COMPLETE,
            "ApplicationSet Rollout has completed",
        ),
    }
}

/// `InvalidRolloutConfig`: the most important issue, or that the steps are fine.
pub fn config_condition(issues: &Issues) -> ApplicationSetCondition {
    match issues.message() {
        Some(message) => entry(
            condition::INVALID_ROLLOUT_CONFIG,
            "True",
            reason::INVALID_ROLLOUT_CONFIG,
            &message,
        ),
        None => entry(
            condition::INVALID_ROLLOUT_CONFIG,
            "False",
            reason::VALID_ROLLOUT_CONFIG,
            "Rolling Sync Configured correctly",
        ),
    }
}

fn entry(type_: &str, status: &str, reason: &str, message: &str) -> ApplicationSetCondition {
    ApplicationSetCondition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: None,
    }
}

/// The order of a reverse deletion: the Applications of the last step first, each step in
/// name order (those of no step are left to Kubernetes' garbage collector, as upstream).
pub fn reverse_deletion_order(
    steps: &[ApplicationSetRolloutStep],
    apps: &[Application],
) -> Vec<String> {
    let (step_of, _, _) = steps_of(steps, apps);
    let mut order: Vec<_> = step_of.into_iter().collect();
    order.sort_by(|(a, sa), (b, sb)| sb.cmp(sa).then_with(|| a.cmp(b)));
    order.into_iter().map(|(name, _)| name).collect()
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

    fn status_in(name: &str, state: &str, step: &str) -> ApplicationSetApplicationStatus {
        ApplicationSetApplicationStatus {
            step: step.into(),
            ..status(name, state)
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
        let (step_of, members, issues) = steps_of(&steps, &apps);
        assert_eq!(members, [vec!["a"], vec!["b", "c", "d"]]);
        assert_eq!(issues.message(), None);
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
        let mut issues = Issues::default();
        // 50% of three: one at a time.
        let moved = promote(&mut statuses, &steps, &step_of, &to_sync, &now, &mut issues);
        assert_eq!(moved, ["b"]);
        assert_eq!(
            promote(&mut statuses, &steps, &step_of, &to_sync, &now, &mut issues),
            Vec::<String>::new()
        );
        assert_eq!(issues, Issues::default());
    }

    #[test]
    fn max_update_is_a_count_or_a_whole_percentage_of_the_step() {
        let text = |s: &str| IntOrString::String(s.into());
        assert_eq!(max_update(None, 4), Ok(4));
        assert_eq!(max_update(Some(&IntOrString::Int(2)), 4), Ok(2));
        assert_eq!(max_update(Some(&text("25%")), 3), Ok(1));
        assert_eq!(max_update(Some(&text("0%")), 3), Ok(0));
        assert_eq!(max_update(Some(&text("100%")), 3), Ok(3));
        assert_eq!(max_update(Some(&text("50%")), 5), Ok(2));
        assert_eq!(max_update(Some(&text("half")), 5), Err(1));
        assert_eq!(max_update(Some(&text("12.5%")), 5), Err(1));
    }

    /// Upstream's InvalidRolloutConfig messages, the most important issue first.
    #[test]
    fn rollout_config_issues_are_named_as_upstream_does() {
        let apps = [app("a", "dev"), app("b", "prod")];
        let config = |yaml: &str| {
            let steps = steps(yaml);
            let (_, _, issues) = steps_of(&steps, &apps);
            config_condition(&issues)
        };
        let ok = config(
            "- matchExpressions: [{key: env, operator: In, values: [dev]}]
- matchExpressions: [{key: env, operator: In, values: [prod]}]
",
        );
        assert_eq!(
            (ok.status.as_str(), ok.reason.as_str(), ok.message.as_str()),
            (
                "False",
                "ApplicationSetValidRolloutConfig",
                "Rolling Sync Configured correctly"
            )
        );
        let bad = config(
            "- matchExpressions: [{key: env, operator: Exists}]
- matchExpressions: [{key: env, operator: In, values: [prod]}]
",
        );
        assert_eq!(bad.status, "True");
        assert_eq!(bad.reason, "ApplicationSetInvalidRolloutConfig");
        assert_eq!(
            bad.message,
            "Step 1 has invalid matchExpression operators: Exists. Supported Operators are 'In' and 'NotIn'"
        );
        let twice = config(
            "- matchExpressions: [{key: env, operator: NotIn, values: [qa]}]
- matchExpressions: [{key: env, operator: In, values: [prod]}]
",
        );
        assert_eq!(
            twice.message,
            "Application 'b' is selected by multiple steps: (1-2)"
        );
        let empty = config(
            "- matchExpressions: [{key: env, operator: In, values: [dev, prod]}]
- matchExpressions: [{key: env, operator: In, values: [qa]}]
",
        );
        assert_eq!(
            empty.message,
            "Steps [2] have no applications matching their criteria"
        );
    }

    #[test]
    fn the_rollout_progresses_while_a_step_is_not_healthy() {
        let steps = steps("[{}, {}, {}]");
        let progressing = progressing_condition(
            &steps,
            &[
                status_in("a", HEALTHY, "1"),
                status_in("b", PENDING, "3"),
                status_in("c", HEALTHY, "3"),
            ],
        );
        assert_eq!(
            (progressing.status.as_str(), progressing.reason.as_str()),
            ("True", "ApplicationSetModified")
        );
        assert_eq!(
            progressing.message,
            "ApplicationSet is performing rollout of step 3"
        );
        let done = progressing_condition(&steps, &[status_in("a", HEALTHY, "1")]);
        assert_eq!(
            (
                done.status.as_str(),
                done.reason.as_str(),
                done.message.as_str()
            ),
            (
                "False",
                "ApplicationSetRolloutComplete",
                "ApplicationSet Rollout has completed"
            )
        );
    }

    #[test]
    fn reverse_deletion_goes_from_the_last_step_to_the_first() {
        let steps = steps(
            "- matchExpressions: [{key: env, operator: In, values: [dev]}]
- matchExpressions: [{key: env, operator: In, values: [qa]}]
- matchExpressions: [{key: env, operator: In, values: [prod]}]
",
        );
        let apps = [
            app("d1", "dev"),
            app("p2", "prod"),
            app("q1", "qa"),
            app("p1", "prod"),
            app("x", "other"),
        ];
        assert_eq!(
            reverse_deletion_order(&steps, &apps),
            ["p1", "p2", "q1", "d1"]
        );
    }
}
