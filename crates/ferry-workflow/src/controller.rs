//! The Workflow controller: a kube-runtime Controller over Workflows and the pods they own.
//! Each reconcile lists the workflow's pods, runs one [`operate`] pass, creates and deletes
//! pods as it decided, and writes the status back with the object's resourceVersion (a
//! conflict means a newer object, which is reconciled next).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_types::workflow::{WorkflowSpec, labels};
use ferry_types::{ClusterWorkflowTemplate, Workflow, WorkflowTemplate};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use tracing::{info, warn};

use crate::claims::{self, ClaimError};
use crate::gc;
use crate::metrics::Metrics;
use crate::operator::{Outcome, http, operate, resource};
use crate::pod::{PodSettings, PodView};
use crate::templates::{self, Holder, join};

/// How often a running workflow is looked at even without events (a safety net).
const RESYNC: Duration = Duration::from_secs(60);

/// Settings of [`run`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// Only this namespace's Workflows, else all namespaces'.
    pub namespace: Option<String>,
    pub pods: PodSettings,
    pub concurrency: u16,
}

struct Context {
    client: Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    written: Written,
}

/// The workflows this controller wrote that its watch may not have delivered yet: by uid, the
/// resourceVersion replaced and the object written. A reconcile started by a pod's event meanwhile
/// operates on the written object, not on the one it replaced, whose write would conflict.
#[derive(Default)]
struct Written(std::sync::Mutex<BTreeMap<String, (String, Arc<Workflow>)>>);

impl Written {
    /// `workflow`, or what this controller wrote over it.
    fn latest(&self, workflow: Arc<Workflow>) -> Arc<Workflow> {
        let uid = workflow.metadata.uid.clone().unwrap_or_default();
        let mut written = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match written.remove(&uid) {
            Some((replaced, newer))
                if workflow.metadata.resource_version.as_ref() == Some(&replaced) =>
            {
                written.insert(uid, (replaced, newer.clone()));
                newer
            }
            _ => workflow,
        }
    }

    fn record(&self, replaced: &Workflow, newer: Workflow) {
        let (Some(uid), Some(version)) =
            (&replaced.metadata.uid, &replaced.metadata.resource_version)
        else {
            return;
        };
        let mut written = self.0.lock().unwrap_or_else(|e| e.into_inner());
        written.insert(uid.clone(), (version.clone(), Arc::new(newer)));
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ReconcileError(String);

/// Installs the CRDs if needed and runs until `shutdown` resolves.
pub async fn run(
    client: Client,
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    run_with_metrics(client, settings, Arc::default(), shutdown).await
}

/// [`run`], recording into `metrics` (the gauges read this controller's Workflow store).
pub async fn run_with_metrics(
    client: Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    for crd in ferry_runtime::install_workflow_crds(&client, "ferry-workflow-controller").await? {
        info!(crd, "installed CustomResourceDefinition");
    }
    let (workflows, pods): (Api<Workflow>, Api<Pod>) = match &settings.namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    let concurrency = settings.concurrency;
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    let crons = tokio::spawn(crate::cron_controller::run(
        client.clone(),
        settings.namespace.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));
    let controller = Controller::new(workflows, watcher::Config::default());
    metrics.watch(controller.store());
    let context = Arc::new(Context {
        client,
        settings,
        metrics,
        written: Written::default(),
    });
    controller
        .owns(pods, watcher::Config::default().labels(labels::WORKFLOW))
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(err) = result {
                warn!("workflow reconcile: {err}");
            }
        })
        .await;
    crons.abort();
    Ok(())
}

/// Keeps in the status, once, the specs and templates the workflow references and the
/// status lacks (`storedWorkflowTemplateSpec`, `storedTemplates`). One that does not exist is
/// left out: the spec's validation then fails the workflow naming it.
pub(crate) async fn store_references(
    client: &Client,
    workflow: &mut Workflow,
) -> Result<(), kube::Error> {
    let namespace = workflow.namespace().unwrap_or_default();
    let status = workflow.status.get_or_insert_default();
    if let Some(reference) = &workflow.spec.workflow_template_ref
        && status.stored_workflow_template_spec.is_none()
    {
        let holder = match reference.cluster_scope {
            Some(true) => Holder::Cluster(reference.name.clone()),
            _ => Holder::Namespaced(reference.name.clone()),
        };
        status.stored_workflow_template_spec = fetch(client, &namespace, &holder).await?;
    }
    let spec = match &status.stored_workflow_template_spec {
        Some(stored) => join(&workflow.spec, stored).unwrap_or_else(|_| workflow.spec.clone()),
        None => workflow.spec.clone(),
    };
    let mut tried = Vec::new();
    loop {
        let known = spec
            .templates
            .iter()
            .chain(status.stored_templates.values());
        let wanted: Vec<Holder> = templates::missing(known, &status.stored_templates)
            .into_iter()
            .filter(|h| !tried.contains(h))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        for holder in wanted {
            if let Some(spec) = fetch(client, &namespace, &holder).await? {
                templates::store(&mut status.stored_templates, &holder, &spec);
            }
            tried.push(holder);
        }
    }
}

/// The spec of a WorkflowTemplate or ClusterWorkflowTemplate, if it exists.
async fn fetch(
    client: &Client,
    namespace: &str,
    holder: &Holder,
) -> Result<Option<WorkflowSpec>, kube::Error> {
    Ok(match holder {
        Holder::Local => None,
        Holder::Namespaced(name) => Api::<WorkflowTemplate>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await?
            .map(|t| t.spec),
        Holder::Cluster(name) => Api::<ClusterWorkflowTemplate>::all(client.clone())
            .get_opt(name)
            .await?
            .map(|t| t.spec),
    })
}

fn error_policy(_: Arc<Workflow>, err: &ReconcileError, _: Arc<Context>) -> Action {
    warn!("{err}");
    Action::requeue(Duration::from_secs(5))
}

/// One operation, timed for `argo_workflows_operation_duration_seconds`.
async fn reconcile(workflow: Arc<Workflow>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let result = operate_once(workflow, &ctx).await;
    ctx.metrics.operation(started.elapsed());
    result
}

async fn operate_once(workflow: Arc<Workflow>, ctx: &Context) -> Result<Action, ReconcileError> {
    let workflow = ctx.written.latest(workflow);
    let done = workflow.status.as_ref().and_then(|s| s.phase);
    let spec = &workflow.spec;
    if done.is_some_and(|p| p.is_completed())
        && spec.pod_gc.is_none()
        && spec.ttl_strategy.is_none()
    {
        return Ok(Action::await_change());
    }
    let name = workflow.name_any();
    let namespace = workflow.namespace().unwrap_or_default();
    let fail = |what: &str, err: kube::Error| {
        ReconcileError(format!("workflow {namespace}/{name}: {what}: {err}"))
    };
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let selector = format!("{}={name}", labels::WORKFLOW);
    let listed = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|err| fail("listing pods", err))?;
    let views: BTreeMap<String, PodView> = listed
        .items
        .iter()
        // Only this workflow's: a same-named workflow created again must not read old pods.
        .filter(|p| {
            p.owner_references()
                .iter()
                .any(|o| Some(&o.uid) == workflow.metadata.uid.as_ref())
        })
        .map(|p| (p.name_any(), PodView::of(p)))
        .collect();
    let finished = workflow
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .is_some_and(|p| p.is_completed());
    if finished {
        let again = collect_garbage(&ctx.client, &workflow, &views).await?;
        return Ok(again.map_or_else(Action::await_change, Action::requeue));
    }

    let mut resolved = (*workflow).clone();
    store_references(&ctx.client, &mut resolved)
        .await
        .map_err(|err| fail("reading templates", err))?;
    crate::artifact::store_repository(&ctx.client, &mut resolved)
        .await
        .map_err(|err| fail("reading the artifact repository", err))?;
    match claims::create(&ctx.client, &mut resolved).await {
        Ok(()) => {}
        Err(err @ ClaimError::Invalid(_)) => {
            return fail_workflow(ctx, &workflow, err.to_string()).await;
        }
        Err(err) => {
            return Err(ReconcileError(format!(
                "workflow {namespace}/{name}: {err}"
            )));
        }
    }
    let mut outcome = operate(
        &resolved,
        &views,
        &ctx.settings.pods,
        jiff::Timestamp::now(),
    );
    for pod in &outcome.create {
        match pods.create(&PostParams::default(), pod).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_already_exists() => {}
            Err(err) => return Err(fail(&format!("creating pod {}", pod.name_any()), err)),
        }
    }
    for pod in &outcome.delete {
        match pods.delete(pod, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(err) => return Err(fail(&format!("deleting pod {pod}"), err)),
        }
    }
    let (mut acted, waiting) = perform_resources(&ctx.client, &mut outcome).await;
    acted.extend(perform_http(&ctx.client, &mut outcome).await);
    let completed = outcome.status.phase.is_some_and(|p| p.is_completed());
    if let Some(phase) = outcome.status.phase.filter(|p| p.is_completed()) {
        let claims = &mut outcome.status.persistent_volume_claims;
        claims::delete(&ctx.client, &resolved, phase, claims).await;
    }
    if workflow.status.as_ref() != Some(&outcome.status) {
        let mut updated = (*workflow).clone();
        updated.status = Some(outcome.status.clone());
        if completed {
            updated
                .labels_mut()
                .insert(labels::COMPLETED.into(), "true".into());
            info!(workflow = %name, %namespace, phase = ?outcome.status.phase, "workflow finished");
        }
        let api: Api<Workflow> = Api::namespaced(ctx.client.clone(), &namespace);
        match api.replace(&name, &PostParams::default(), &updated).await {
            Ok(newer) => {
                ctx.written.record(&workflow, newer);
                if let Some(phase) = outcome.status.phase.filter(|p| Some(*p) != done) {
                    ctx.metrics.entered(&namespace, phase);
                }
            }
            // A newer object is on its way to this controller; its reconcile continues —
            // but what resource and HTTP nodes did must not be done twice, so their nodes
            // are merged into it first.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                if !acted.is_empty() {
                    let nodes: serde_json::Map<String, serde_json::Value> = acted
                        .iter()
                        .filter_map(|id| outcome.status.nodes.get(id).map(|n| (id, n)))
                        .filter_map(|(id, n)| Some((id.clone(), serde_json::to_value(n).ok()?)))
                        .collect();
                    let patch = serde_json::json!({"status": {"nodes": nodes}});
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map_err(|err| fail("writing resource nodes", err))?;
                }
                return Ok(Action::requeue(Duration::from_millis(200)));
            }
            Err(err) => return Err(fail("writing status", err)),
        }
    }
    let mut written = (*workflow).clone();
    written.status = Some(outcome.status.clone());
    let again = collect_garbage(&ctx.client, &written, &views).await?;
    if completed {
        return Ok(again.map_or_else(Action::await_change, Action::requeue));
    }
    let poll = waiting.then_some(resource::POLL);
    let wait = [outcome.requeue_after, again, poll, Some(RESYNC)];
    Ok(Action::requeue(
        wait.into_iter().flatten().min().unwrap_or(RESYNC),
    ))
}

/// Sends the HTTP nodes' requests, all at once, and records their outcomes; returns the
/// nodes done.
async fn perform_http(client: &Client, outcome: &mut Outcome) -> Vec<String> {
    let sent = outcome.http.iter().map(|r| http::perform(client, r));
    let reports = futures::future::join_all(sent).await;
    let now = Time(jiff::Timestamp::now());
    let mut done = Vec::new();
    for (request, report) in outcome.http.iter().zip(reports) {
        resource::record(&mut outcome.status.nodes, &request.node_id, report, &now);
        done.push(request.node_id.clone());
    }
    done
}

/// Does the resource nodes' actions and checks and records them in the outcome's status;
/// returns the nodes whose action was done now, and whether one still waits.
async fn perform_resources(client: &Client, outcome: &mut Outcome) -> (Vec<String>, bool) {
    let now = Time(jiff::Timestamp::now());
    let mut acted = Vec::new();
    let mut waiting = false;
    for request in &outcome.resources {
        match resource::perform(client, request).await {
            Ok(report) => {
                waiting |= !report.phase.is_completed();
                if request.acted.is_none() && report.acted.is_some() {
                    acted.push(request.node_id.clone());
                }
                resource::record(&mut outcome.status.nodes, &request.node_id, report, &now);
            }
            Err(err) => {
                waiting = true;
                warn!(node = %request.node_id, "resource template: {err} (trying again)");
            }
        }
    }
    (acted, waiting)
}

/// Ends `workflow` in phase Error with `message` before any of its steps ran (upstream's
/// `markWorkflowError`).
async fn fail_workflow(
    ctx: &Context,
    workflow: &Workflow,
    message: String,
) -> Result<Action, ReconcileError> {
    let name = workflow.name_any();
    let namespace = workflow.namespace().unwrap_or_default();
    warn!(workflow = %name, %namespace, "{message}");
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now());
    let mut failed = workflow.clone();
    let status = failed.status.get_or_insert_default();
    status.phase = Some(ferry_types::workflow::Phase::Error);
    status.message = Some(message);
    status.started_at.get_or_insert(now.clone());
    status.finished_at = Some(now);
    failed
        .labels_mut()
        .insert(labels::COMPLETED.into(), "true".into());
    let api: Api<Workflow> = Api::namespaced(ctx.client.clone(), &namespace);
    match api.replace(&name, &PostParams::default(), &failed).await {
        Ok(_) => {
            ctx.metrics
                .entered(&namespace, ferry_types::workflow::Phase::Error);
            Ok(Action::await_change())
        }
        Err(kube::Error::Api(status)) if status.code == 409 => {
            Ok(Action::requeue(Duration::from_millis(200)))
        }
        Err(err) => Err(ReconcileError(format!(
            "workflow {namespace}/{name}: writing status: {err}"
        ))),
    }
}

/// Deletes what `podGC` and `ttlStrategy` say is due; returns when to look again.
async fn collect_garbage(
    client: &Client,
    workflow: &Workflow,
    views: &BTreeMap<String, PodView>,
) -> Result<Option<Duration>, ReconcileError> {
    let name = workflow.name_any();
    let namespace = workflow.namespace().unwrap_or_default();
    let due = match gc::collect(workflow, views, jiff::Timestamp::now()) {
        Ok(due) => due,
        Err(message) => {
            warn!(workflow = %name, %namespace, "{message}");
            return Ok(None);
        }
    };
    let fail = |what: String, err: kube::Error| {
        ReconcileError(format!("workflow {namespace}/{name}: {what}: {err}"))
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    for pod in &due.pods {
        match pods.delete(pod, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(err) => return Err(fail(format!("deleting pod {pod} (podGC)"), err)),
        }
    }
    if due.workflow {
        info!(workflow = %name, %namespace, "deleting the finished workflow (ttlStrategy)");
        let api: Api<Workflow> = Api::namespaced(client.clone(), &namespace);
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(err) => return Err(fail("deleting (ttlStrategy)".into(), err)),
        }
        return Ok(None);
    }
    Ok(due.requeue_after)
}
