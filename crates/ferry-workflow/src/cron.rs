//! CronWorkflows: when a run is due (`schedule`/`schedules` in `timezone`,
//! `startingDeadlineSeconds`), what `concurrencyPolicy` does with the running ones, and which
//! finished workflows the history limits let go. Pure; the controller applies it.

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use ferry_types::workflow::{CronWorkflowSpec, Phase};
use ferry_types::{CronWorkflow, Workflow};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// On a CronWorkflow's workflows: the CronWorkflow's name.
pub const LABEL: &str = "workflows.argoproj.io/cron-workflow";

/// What to do now.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// The scheduled time of the run to start now.
    pub run: Option<Timestamp>,
    /// Running workflows to delete first (`Replace`).
    pub replace: Vec<String>,
    /// Finished workflows beyond the history limits.
    pub prune: Vec<String>,
    /// The scheduled time this pass consumed (run or skipped), for `lastScheduledTime`.
    pub consumed: Option<Timestamp>,
    /// The next scheduled time.
    pub next: Option<Timestamp>,
}

fn schedules(spec: &CronWorkflowSpec) -> Result<Vec<Cron>, String> {
    let texts = spec.schedule.iter().chain(&spec.schedules);
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    let crons: Vec<Cron> = texts
        .map(|text| {
            parser
                .parse(text)
                .map_err(|err| format!("schedule {text:?}: {err}"))
        })
        .collect::<Result<_, _>>()?;
    if crons.is_empty() {
        return Err("spec.schedule or spec.schedules is required".into());
    }
    Ok(crons)
}

/// The plan for `cron` at `now`, given the workflows it made (`last` is its
/// `lastScheduledTime`, else its creation).
pub fn plan(
    cron: &CronWorkflow,
    workflows: &[Workflow],
    last: Timestamp,
    now: Timestamp,
) -> Result<Plan, String> {
    let spec = &cron.spec;
    let zone = match &spec.timezone {
        Some(name) if !name.is_empty() => {
            TimeZone::get(name).map_err(|err| format!("spec.timezone {name:?}: {err}"))?
        }
        _ => TimeZone::UTC,
    };
    let here = now.to_zoned(zone);
    let mut plan = Plan::default();
    for cron in schedules(spec)? {
        let previous = cron
            .find_previous_occurrence(&here, true)
            .map_err(|err| err.to_string())?
            .timestamp();
        if previous > last && plan.consumed.is_none_or(|c| previous > c) {
            plan.consumed = Some(previous);
        }
        let next = cron
            .find_next_occurrence(&here, false)
            .map_err(|err| err.to_string())?
            .timestamp();
        plan.next = Some(plan.next.map_or(next, |n: Timestamp| n.min(next)));
    }
    plan.prune = prune(spec, workflows);
    let active: Vec<String> = workflows
        .iter()
        .filter(|w| !completed(w))
        .filter_map(|w| w.metadata.name.clone())
        .collect();
    let Some(due) = plan.consumed else {
        return Ok(plan);
    };
    if spec.suspend == Some(true) {
        plan.consumed = None;
        return Ok(plan);
    }
    let missed = spec
        .starting_deadline_seconds
        .is_some_and(|seconds| now > due + SignedDuration::from_secs(seconds));
    match spec.concurrency_policy.as_deref() {
        _ if missed => {}
        Some("Forbid") if !active.is_empty() => {}
        Some("Replace") => {
            plan.replace = active;
            plan.run = Some(due);
        }
        _ => plan.run = Some(due),
    }
    Ok(plan)
}

fn completed(workflow: &Workflow) -> bool {
    workflow
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .is_some_and(|p| p.is_completed())
}

/// Finished workflows beyond `successfulJobsHistoryLimit` (3) and `failedJobsHistoryLimit`
/// (1), oldest first.
fn prune(spec: &CronWorkflowSpec, workflows: &[Workflow]) -> Vec<String> {
    let mut finished: Vec<&Workflow> = workflows.iter().filter(|w| completed(w)).collect();
    // Newest first.
    finished.sort_by_key(|w| {
        std::cmp::Reverse(
            w.status
                .as_ref()
                .and_then(|s| s.finished_at.clone())
                .map(|t| t.0),
        )
    });
    let succeeded =
        |w: &&Workflow| w.status.as_ref().and_then(|s| s.phase) == Some(Phase::Succeeded);
    let keep = |limit: Option<i64>, default: usize| limit.map_or(default, |l| l.max(0) as usize);
    let mut out = Vec::new();
    let ok: Vec<&&Workflow> = finished.iter().filter(|w| succeeded(w)).collect();
    let bad: Vec<&&Workflow> = finished.iter().filter(|w| !succeeded(w)).collect();
    for (list, limit) in [
        (ok, keep(spec.successful_jobs_history_limit, 3)),
        (bad, keep(spec.failed_jobs_history_limit, 1)),
    ] {
        out.extend(
            list.iter()
                .skip(limit)
                .filter_map(|w| w.metadata.name.clone()),
        );
    }
    out
}

/// The Workflow of the run scheduled at `at`: named `<cron>-<unix seconds>` as upstream's,
/// labelled and owned by the CronWorkflow.
pub fn workflow(cron: &CronWorkflow, at: Timestamp) -> Workflow {
    let name = cron.metadata.name.clone().unwrap_or_default();
    let mut workflow = Workflow::default();
    workflow.metadata.name = Some(format!("{name}-{}", at.as_second()));
    workflow.metadata.namespace = cron.metadata.namespace.clone();
    workflow.metadata.labels = Some([(LABEL.to_string(), name.clone())].into());
    workflow.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: ferry_types::API_VERSION.into(),
            kind: "CronWorkflow".into(),
            name,
            uid: cron.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        },
    ]);
    workflow.spec = cron.spec.workflow_spec.clone();
    workflow
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn cron(yaml: &str) -> CronWorkflow {
        serde_yaml::from_str(&format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: CronWorkflow\nmetadata: {{name: c}}\nspec:\n  workflowSpec: {{entrypoint: main}}\n{yaml}"
        ))
        .unwrap()
    }

    fn workflow(name: &str, phase: Option<Phase>, finished: &str) -> Workflow {
        let mut w = Workflow::default();
        w.metadata.name = Some(name.into());
        let status = w.status.get_or_insert_default();
        status.phase = phase;
        status.finished_at = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(
            finished,
        )));
        w
    }

    #[test]
    fn the_latest_schedule_since_the_last_runs_in_its_time_zone() {
        let c = cron("  schedule: '0 9 * * *'\n  timezone: Europe/Paris\n");
        let plan = plan(
            &c,
            &[],
            at("2026-12-06T00:00:00Z"),
            at("2026-12-07T08:30:00Z"),
        )
        .unwrap();
        // 09:00 in Paris is 08:00 UTC in December.
        assert_eq!(plan.run, Some(at("2026-12-07T08:00:00Z")));
        assert_eq!(plan.next, Some(at("2026-12-08T08:00:00Z")));
        let again = plan_at(&c, "2026-12-07T08:00:00Z", "2026-12-07T08:30:00Z");
        assert_eq!(again.run, None, "consumed already");
        let c = cron("  schedules: ['0 9 * * *', '15 8 * * *']\n");
        assert_eq!(
            plan_at(&c, "2026-12-06T00:00:00Z", "2026-12-07T08:30:00Z").run,
            Some(at("2026-12-07T08:15:00Z"))
        );
    }

    fn plan_at(c: &CronWorkflow, last: &str, now: &str) -> Plan {
        plan(c, &[], at(last), at(now)).unwrap()
    }

    #[test]
    fn deadline_suspend_and_concurrency_policies() {
        let late = cron("  schedule: '0 9 * * *'\n  startingDeadlineSeconds: 60\n");
        assert_eq!(
            plan_at(&late, "2026-12-06T00:00:00Z", "2026-12-07T09:02:00Z").run,
            None
        );
        assert!(
            plan_at(&late, "2026-12-06T00:00:00Z", "2026-12-07T09:00:30Z")
                .run
                .is_some()
        );
        let paused = cron("  schedule: '0 9 * * *'\n  suspend: true\n");
        assert_eq!(
            plan_at(&paused, "2026-12-06T00:00:00Z", "2026-12-07T09:02:00Z").run,
            None
        );
        let running = [workflow(
            "c-1",
            Some(Phase::Running),
            "2026-12-06T09:00:00Z",
        )];
        let forbid = cron("  schedule: '0 9 * * *'\n  concurrencyPolicy: Forbid\n");
        let p = plan(
            &forbid,
            &running,
            at("2026-12-06T09:00:00Z"),
            at("2026-12-07T09:01:00Z"),
        )
        .unwrap();
        assert_eq!(
            (p.run, p.consumed.is_some()),
            (None, true),
            "skipped, not kept for later"
        );
        let replace = cron("  schedule: '0 9 * * *'\n  concurrencyPolicy: Replace\n");
        let p = plan(
            &replace,
            &running,
            at("2026-12-06T09:00:00Z"),
            at("2026-12-07T09:01:00Z"),
        )
        .unwrap();
        assert_eq!(p.replace, ["c-1"]);
        assert!(p.run.is_some());
        let allow = cron("  schedule: '0 9 * * *'\n");
        let p = plan(
            &allow,
            &running,
            at("2026-12-06T09:00:00Z"),
            at("2026-12-07T09:01:00Z"),
        )
        .unwrap();
        assert!(p.run.is_some() && p.replace.is_empty());
        assert!(
            plan(
                &cron(""),
                &[],
                at("2026-12-06T09:00:00Z"),
                at("2026-12-07T09:01:00Z")
            )
            .is_err()
        );
    }

    #[test]
    fn history_limits_keep_the_newest() {
        let c = cron("  schedule: '0 9 * * *'\n  successfulJobsHistoryLimit: 1\n");
        let done = [
            workflow("ok-old", Some(Phase::Succeeded), "2026-12-01T00:00:00Z"),
            workflow("ok-new", Some(Phase::Succeeded), "2026-12-02T00:00:00Z"),
            workflow("bad-old", Some(Phase::Failed), "2026-12-01T00:00:00Z"),
            workflow("bad-new", Some(Phase::Error), "2026-12-02T00:00:00Z"),
        ];
        let p = plan(
            &c,
            &done,
            at("2026-12-07T09:00:00Z"),
            at("2026-12-07T09:01:00Z"),
        )
        .unwrap();
        assert_eq!(p.prune, ["ok-old", "bad-old"]);
    }
}
