//! Runs CronWorkflows: each reconcile applies [`cron::plan`] — creates the due run's
//! Workflow, deletes the ones `Replace` or the history limits let go — writes `status.active`
//! and `status.lastScheduledTime`, and comes back at the next scheduled time.

use std::sync::Arc;
use std::time::Duration;

use ferry_types::{CronWorkflow, Workflow};
use futures::StreamExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use crate::cron;
use crate::metrics::Metrics;

/// At least this often, whatever the schedule says.
const RESYNC: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct CronError(String);

struct Context {
    client: Client,
    metrics: Arc<Metrics>,
}

/// Runs the CronWorkflows of `namespace` (all namespaces when `None`) until `shutdown`.
pub async fn run(
    client: Client,
    namespace: Option<String>,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (crons, workflows): (Api<CronWorkflow>, Api<Workflow>) = match &namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    Controller::new(crons, watcher::Config::default())
        .owns(workflows, watcher::Config::default().labels(cron::LABEL))
        .graceful_shutdown_on(shutdown)
        .run(
            reconcile,
            error_policy,
            Arc::new(Context { client, metrics }),
        )
        .for_each(|result| async move {
            if let Err(err) = result {
                warn!("cron workflow reconcile: {err}");
            }
        })
        .await;
}

fn error_policy(_: Arc<CronWorkflow>, err: &CronError, _: Arc<Context>) -> Action {
    warn!("{err}");
    Action::requeue(Duration::from_secs(10))
}

async fn reconcile(cron: Arc<CronWorkflow>, ctx: Arc<Context>) -> Result<Action, CronError> {
    let client = &ctx.client;
    let name = cron.name_any();
    let namespace = cron.namespace().unwrap_or_default();
    let fail = |what: &str, err: kube::Error| {
        CronError(format!("cron workflow {namespace}/{name}: {what}: {err}"))
    };
    let workflows: Api<Workflow> = Api::namespaced((*client).clone(), &namespace);
    let mine: Vec<Workflow> = workflows
        .list(&ListParams::default().labels(&format!("{}={name}", cron::LABEL)))
        .await
        .map_err(|err| fail("listing workflows", err))?
        .items
        .into_iter()
        .filter(|w| {
            w.owner_references()
                .iter()
                .any(|o| Some(&o.uid) == cron.metadata.uid.as_ref())
        })
        .collect();
    let status = cron.status.clone().unwrap_or_else(|| json!({}));
    let last = status["lastScheduledTime"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .or_else(|| cron.metadata.creation_timestamp.clone().map(|t| t.0))
        .unwrap_or_else(jiff::Timestamp::now);
    let plan = match cron::plan(&cron, &mine, last, jiff::Timestamp::now()) {
        Ok(plan) => plan,
        Err(message) => {
            warn!(cron = %name, %namespace, "{message}");
            return Ok(Action::await_change());
        }
    };
    for old in plan.replace.iter().chain(&plan.prune) {
        match workflows.delete(old, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_not_found() => {}
            Err(err) => return Err(fail(&format!("deleting workflow {old}"), err)),
        }
    }
    let mut active: Vec<&Workflow> = mine
        .iter()
        .filter(|w| !plan.replace.contains(&w.name_any()))
        .filter(|w| {
            w.status
                .as_ref()
                .and_then(|s| s.phase)
                .is_none_or(|p| !p.is_completed())
        })
        .collect();
    let created;
    if let Some(at) = plan.run {
        let workflow = cron::workflow(&cron, at);
        created = match workflows.create(&PostParams::default(), &workflow).await {
            Ok(created) => created,
            Err(kube::Error::Api(s)) if s.is_already_exists() => workflow,
            Err(err) => return Err(fail("creating the scheduled workflow", err)),
        };
        info!(cron = %name, %namespace, workflow = %created.name_any(), "scheduled run");
        ctx.metrics.cron_triggered(&namespace, &name);
        active.push(&created);
    }
    let mut updated_status = status.clone();
    updated_status["active"] = json!(
        active
            .iter()
            .map(|w| json!({
                "apiVersion": ferry_types::API_VERSION, "kind": "Workflow",
                "namespace": namespace, "name": w.name_any(), "uid": w.metadata.uid,
            }))
            .collect::<Vec<_>>()
    );
    if let Some(at) = plan.consumed {
        updated_status["lastScheduledTime"] = json!(at.to_string());
    }
    if updated_status != status {
        let mut updated = (*cron).clone();
        updated.status = Some(updated_status);
        let api: Api<CronWorkflow> = Api::namespaced((*client).clone(), &namespace);
        match api.replace(&name, &PostParams::default(), &updated).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {
                return Ok(Action::requeue(Duration::from_millis(200)));
            }
            Err(err) => return Err(fail("writing status", err)),
        }
    }
    let wait = plan.next.map_or(RESYNC, |next| {
        let seconds = jiff::Timestamp::now()
            .duration_until(next)
            .as_secs_f64()
            .max(0.0);
        Duration::from_secs_f64(seconds + 0.5)
    });
    Ok(Action::requeue(wait.min(RESYNC)))
}
