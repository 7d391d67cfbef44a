//! Sync operations: started when an Application's `operation` is set (by a person through the
//! CLI or API, or by automated sync), run in the background with their progress written to
//! `status.operationState`, retried per `retry`, and finished by recording the result, a history
//! entry, and clearing `operation`. Because the state is persisted before the first apply, a
//! controller that dies mid-sync resumes the operation when it starts again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ferry_sync::{
    Checkpoint, CheckpointRequest, Engine, OnApplied, PruneConfirmation, PruneGuard, SyncOptionSet,
    SyncReport, SyncRequest,
};
use ferry_types::application::{
    ApplicationStatus, Operation, OperationPhase, OperationState, ResourceResult, RevisionHistory,
    SyncOperation, SyncOperationResult,
};
use ferry_types::source::ApplicationSource;
use ferry_types::{Application, ResourceKey};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::appstate;
use crate::context::Context;
use crate::impersonation;
use crate::metrics::AppIdentity;
use crate::patch;
use crate::status_size;

/// How often a running sync's progress is written to the Application at most.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// How long after an operation ended here a view still showing it is taken as trailing
/// without a fresh read (the watch brings the end in well under that).
const TRAILING_LIMIT: Duration = Duration::from_secs(30);

/// The operations running in this controller.
pub struct Operations {
    running: Mutex<HashMap<String, CancellationToken>>,
    /// The start of each app's operation that ended here, and when it ended, until the app's
    /// view shows the end: a view still showing it running trails, and needs no fresh read.
    finished: Mutex<HashMap<String, (Option<Time>, Instant)>>,
    slots: Arc<Semaphore>,
}

impl Operations {
    pub fn new(concurrency: usize) -> Self {
        Self {
            running: Mutex::default(),
            finished: Mutex::default(),
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    pub fn is_running(&self, app: &str) -> bool {
        self.lock().contains_key(app)
    }

    /// Asks a running operation to stop (it finishes as Failed, "Operation terminated").
    pub fn terminate(&self, app: &str) {
        if let Some(cancel) = self.lock().get(app) {
            cancel.cancel();
        }
    }

    /// How many operations run now.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Waits until no operation runs, at most `grace`.
    pub async fn wait_idle(&self, grace: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + grace;
        while self.count() > 0 {
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        true
    }

    /// Forgets the ended operations of every app `keep` refuses (deleted, or another shard's).
    /// Running ones are left alone: each removes itself when it ends.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.finished().retain(|app, _| keep(app));
    }

    /// How many apps have an ended operation remembered.
    pub fn finished_len(&self) -> usize {
        self.finished().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finished(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Option<Time>, Instant)>> {
        self.finished.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `app` still shows as running the operation that ended here (the finish's watch
    /// event has not come yet); forgets the end once the view shows something else.
    fn trails_finished(&self, name: &str, app: &Application) -> bool {
        let mut finished = self.finished();
        let Some((started_at, ended)) = finished.get(name) else {
            return false;
        };
        let state = app.status.as_ref().and_then(|s| s.operation_state.as_ref());
        let trails = ended.elapsed() < TRAILING_LIMIT
            && state.is_some_and(|state| {
                matches!(
                    state.phase,
                    OperationPhase::Running | OperationPhase::Terminating
                ) && state.started_at == *started_at
            });
        if !trails {
            finished.remove(name);
        }
        trails
    }
}

/// Looks at an Application's requested operation and its recorded state, and starts, resumes,
/// terminates or cleans up as needed. Writes `status.operationState` itself (before a sync
/// starts, so a restarted controller can resume it).
pub async fn drive(ctx: &Arc<Context>, app: &Application) -> kube::Result<()> {
    let name = ctx.key_of(app);
    let running_here = ctx.operations.is_running(&name);
    if app.operation.is_none() || running_here {
        return act(ctx, app, running_here).await;
    }
    if ctx.operations.trails_finished(&name, app) {
        // The finish's own watch event brings the app back.
        debug!(app = %name, "the view still shows the operation that ended here");
        return Ok(());
    }
    // About to start or resume a sync: decide on the object as it is now, not on the
    // controller's view of it, which can trail an operation that just finished.
    let (apps, app_name) = ctx.app_api(&name);
    let fresh = apps.get(app_name).await?;
    match serde_json::to_value(&fresh).and_then(serde_json::from_value::<Application>) {
        Ok(fresh) => act(ctx, &fresh, ctx.operations.is_running(&name)).await,
        Err(_) => Ok(()),
    }
}

async fn act(ctx: &Arc<Context>, app: &Application, running_here: bool) -> kube::Result<()> {
    let name = ctx.key_of(app);
    let status = app.status.clone().unwrap_or_default();
    let state = status.operation_state.clone();
    if let Some(state) = &state
        && state.phase == OperationPhase::Terminating
    {
        if running_here {
            ctx.operations.terminate(&name);
        } else if app.operation.is_some() {
            // Nothing runs it any more (the controller restarted): it ends here.
            let mut done = state.clone();
            done.phase = OperationPhase::Failed;
            done.message = "Operation terminated".into();
            finish(
                ctx,
                &name,
                &status,
                app.revision_history_limit(),
                done,
                None,
            )
            .await?;
            ctx.metrics
                .sync_completed(&AppIdentity::of_app(app), OperationPhase::Failed);
        }
        return Ok(());
    }
    let Some(operation) = app.operation.clone() else {
        return Ok(());
    };
    if running_here {
        return Ok(());
    }
    match &state {
        Some(state) if state.operation == operation && state.phase == OperationPhase::Running => {
            info!(app = %name, "resuming the operation left running by an earlier controller");
            spawn(ctx, name, state.clone(), true, app.clone());
        }
        // A finished operation's state is written together with clearing `operation` (one
        // patch), so an operation beside a finished state is always a new request, even one
        // equal to the last (`argocd app sync` again at the same revision).
        _ => {
            let state = starting(&operation);
            write_state(ctx, &name, &status.operation_state, &state).await?;
            info!(app = %name, automated = operation.initiated_by.automated, "sync started");
            spawn(ctx, name, state, false, app.clone());
        }
    }
    Ok(())
}

/// The state of `operation` starting now.
fn starting(operation: &Operation) -> OperationState {
    OperationState {
        operation: operation.clone(),
        phase: OperationPhase::Running,
        message: String::new(),
        sync_result: None,
        started_at: Some(now()),
        finished_at: None,
        retry_count: 0,
        waiting_since: None,
        unknown: Default::default(),
    }
}

/// For a request of `operation` written together with its start: the Running state, and the
/// change of `status` that turns the app's `previous` state into it.
pub fn requested(
    previous: &Option<OperationState>,
    operation: &Operation,
) -> (OperationState, Option<Value>) {
    let state = starting(operation);
    let change = ferry_types::merge_patch(
        &json!({"operationState": previous}),
        &json!({"operationState": state}),
    );
    (state, change)
}

/// Runs the operation `app` (the API server's answer to the write that requested it) shows
/// requested and Running in `state`.
pub fn start_requested(ctx: &Arc<Context>, name: &str, state: OperationState, app: Application) {
    info!(app = %name, automated = state.operation.initiated_by.automated, "sync started");
    spawn(ctx, name.to_string(), state, false, app);
}

/// Runs the operation in the background; `app` is the Application as just read, which the
/// first attempt starts from.
fn spawn(ctx: &Arc<Context>, name: String, state: OperationState, resume: bool, app: Application) {
    let cancel = CancellationToken::new();
    ctx.operations.lock().insert(name.clone(), cancel.clone());
    ctx.operations.finished().remove(&name);
    let started_at = state.started_at.clone();
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let outcome = {
            let _slot = ctx.operations.slots.clone().acquire_owned().await;
            // Made only once a slot is free: the sync's future is tens of kilobytes, and when
            // 1,000 apps sync at once the ones waiting for a slot would each hold one.
            Box::pin(run(&ctx, &name, state, resume, app, &cancel)).await
        };
        match outcome {
            Ok(()) => {
                let ended = (started_at, Instant::now());
                ctx.operations.finished().insert(name.clone(), ended);
            }
            Err(err) => warn!(app = %name, "recording the operation's result failed: {err}"),
        }
        ctx.operations.lock().remove(&name);
        ctx.triggers.app(&name);
    });
}

/// Runs the operation to the end, retrying per its retry strategy, and records the result.
async fn run(
    ctx: &Arc<Context>,
    name: &str,
    mut state: OperationState,
    resume: bool,
    app: Application,
    cancel: &CancellationToken,
) -> kube::Result<()> {
    let mut written = Some(state.clone());
    // The app as the last attempt read it; the first attempt takes it as just read.
    let mut app = Some(app);
    let mut fresh = true;
    let mut previous = if resume {
        let resources = state
            .sync_result
            .as_ref()
            .map(|r| r.resources.clone())
            .unwrap_or_default();
        let waiting_since = state.waiting_since.clone().map(|t| SystemTime::from(t.0));
        Some((resources, waiting_since))
    } else {
        None
    };
    loop {
        if !std::mem::take(&mut fresh) {
            // A retry syncs the app as it is now (its spec may have changed).
            app = None;
        }
        let outcome = attempt(
            ctx,
            name,
            &mut app,
            &mut state,
            &mut written,
            previous,
            cancel,
        )
        .await;
        previous = None;
        state.waiting_since = None;
        let (report, result) = match outcome {
            Ok(done) => done,
            Err(message) => {
                let report = SyncReport {
                    phase: OperationPhase::Error,
                    message,
                    resources: Vec::new(),
                    waiting_since: None,
                };
                (report, None)
            }
        };
        let retry = state.operation.retry.clone().unwrap_or_default();
        let retryable = report.phase != OperationPhase::Succeeded
            && !cancel.is_cancelled()
            && state.operation.retry.is_some()
            && retry.allows_retry(state.retry_count);
        if !retryable {
            state.phase = if cancel.is_cancelled() {
                OperationPhase::Failed
            } else {
                report.phase
            };
            state.message = report.message.clone();
            if let Some(mut result) = result {
                result.resources = report.resources;
                state.sync_result = Some(result);
            }
            // The history as the attempt read it is the history now: only an operation's end
            // writes it, and this app's operations run here one at a time.
            let current = match app {
                Some(app) => app,
                None => read_app(ctx, name).await?,
            };
            let status = current.status.clone().unwrap_or_default();
            let phase = state.phase;
            finish(
                ctx,
                name,
                &status,
                current.revision_history_limit(),
                state,
                written,
            )
            .await?;
            ctx.metrics
                .sync_completed(&AppIdentity::of_app(&current), phase);
            return Ok(());
        }
        let delay = retry
            .backoff_delay(state.retry_count)
            .unwrap_or(Duration::from_secs(5));
        state.retry_count += 1;
        state.message = format!(
            "Retrying attempt #{} in {}s: {}",
            state.retry_count,
            delay.as_secs(),
            report.message
        );
        write_state(ctx, name, &written, &state).await?;
        written = Some(state.clone());
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = cancel.cancelled() => {}
        }
    }
}

/// One try: render, compare, sync. `Err` is an error before the sync could start (phase
/// Error); a sync that ran and failed is an `Ok` report with phase Failed.
/// `app` is the Application to sync when already read; else it is read, and left there.
async fn attempt(
    ctx: &Arc<Context>,
    name: &str,
    app: &mut Option<Application>,
    state: &mut OperationState,
    written: &mut Option<OperationState>,
    previous: Option<(Vec<ResourceResult>, Option<SystemTime>)>,
    cancel: &CancellationToken,
) -> Result<(SyncReport, Option<SyncOperationResult>), String> {
    let app = read_once(ctx, name, app).await?;
    let (apps, app_name) = ctx.app_api(name);
    let setup = appstate::setup(ctx, &app).await?;
    let sync = state.operation.sync.clone().unwrap_or_default();
    let manual = !state.operation.initiated_by.automated;
    let windows = setup
        .project
        .sync_windows(&app)
        .map_err(|err| err.to_string())?;
    if !windows.can_sync(jiff::Timestamp::now(), manual) {
        return Err("Cannot sync: Blocked by sync window".into());
    }
    let identity = impersonation::sync_identity(ctx, &app, &setup)?;
    let sources = operation_sources(&app, &sync);
    let pinned = pinned_sources(&sources, &sync);
    let observed = appstate::observe(ctx, &app, &setup, &pinned, false).await?;
    let comparison = &observed.comparison;
    if !comparison.errors.is_empty() {
        return Err(comparison.errors.join("; "));
    }
    if !comparison.forbidden.is_empty() {
        return Err(comparison.forbidden.join("; "));
    }

    let policy = app.spec.sync_policy.clone().unwrap_or_default();
    let options = sync_options(&policy.sync_options, &sync)?;
    let live: Vec<Value> = setup
        .cache
        .app_resources(&setup.instance)
        .iter()
        .map(|o| o.object())
        .collect();
    let resources = selected_resources(&sync, &observed.desired, &live);
    let desired = if options.respect_ignore_differences {
        respecting_ignored(ctx, &app, &setup, &observed.desired).await?
    } else {
        observed.desired.clone()
    };
    let (checkpoint, saves) = Checkpoint::new();
    let request = SyncRequest {
        app: app.name_any(),
        app_namespace: app
            .foreign_namespace(&ctx.settings.namespace)
            .map(str::to_string),
        tracking: ctx.settings.tracking.clone(),
        namespace: app.spec.destination.namespace.clone(),
        desired,
        live,
        options,
        prune: sync.prune,
        dry_run: sync.dry_run,
        resources,
        out_of_sync: Some(comparison.out_of_sync.clone()),
        prune_guard: PruneGuard {
            // A person asking for a prune means it; automation needs allowEmpty.
            allow_empty: manual || policy.automated.as_ref().is_some_and(|a| a.allow_empty),
            max_fraction: ctx.settings.prune_max_fraction,
        },
        health_timeout: ctx.settings.health_timeout,
        previous: previous
            .clone()
            .map(|(resources, _)| resources)
            .unwrap_or_default(),
        waiting_since: previous.and_then(|(_, since)| since),
        run_id: run_id(&app, state),
        checkpoint: Some(checkpoint),
        on_applied: applied_predictions(ctx),
        managed_namespace: policy.managed_namespace_metadata.clone(),
        prune_confirmed: Some(prune_confirmation(
            apps.clone(),
            app_name,
            state.started_at.clone(),
        )),
    };
    let engine = setup
        .cluster
        .engine(
            &ctx.settings,
            &ctx.argo_cm.get().health,
            identity.as_deref(),
        )
        .await
        .map_err(|err| format!("{err:#}"))?;

    let result = sync_result(&app, &observed, sources, &policy);
    state.sync_result = Some(result.clone());
    let report = run_with_progress(
        ctx,
        name,
        state,
        written,
        (&*engine, request, saves),
        cancel,
    )
    .await;
    Ok((report, Some(result)))
}

/// The Application to sync: `app` when already read, else read now and kept there.
async fn read_once(
    ctx: &Context,
    name: &str,
    app: &mut Option<Application>,
) -> Result<Application, String> {
    if app.is_none() {
        let read = read_app(ctx, name).await.map_err(|err| match err {
            kube::Error::SerdeError(err) => format!("application {name}: invalid spec: {err}"),
            err => format!("reading application {name}: {err}"),
        })?;
        *app = Some(read);
    }
    app.clone()
        .ok_or_else(|| format!("reading application {name}"))
}

/// The sync options of the app's sync policy and then the operation's; an unknown one is an
/// error naming it. A sync strategy's `force` (apply or hook) forces every apply.
fn sync_options(policy: &[String], sync: &SyncOperation) -> Result<SyncOptionSet, String> {
    let mut options = SyncOptionSet::default();
    let mut unknown = options.apply(policy.iter().map(String::as_str));
    unknown.extend(options.apply(sync.sync_options.iter().map(String::as_str)));
    if !unknown.is_empty() {
        let names: Vec<_> = unknown.into_iter().map(|u| u.0).collect();
        return Err(format!("unknown sync options: {}", names.join(", ")));
    }
    if let Some(strategy) = &sync.sync_strategy {
        let force = |s: &Option<ferry_types::application::SyncStrategyApply>| {
            s.as_ref().is_some_and(|a| a.force)
        };
        options.force |= force(&strategy.apply) || force(&strategy.hook);
    }
    Ok(options)
}

/// The operation's result before the sync runs: the revisions and sources synced (one, or
/// each of a multi-source app's) and the managed namespace metadata asked for.
fn sync_result(
    app: &Application,
    observed: &appstate::Observed,
    sources: Vec<ApplicationSource>,
    policy: &ferry_types::application::SyncPolicy,
) -> SyncOperationResult {
    let multi = app.is_multi_source();
    let revisions: Vec<String> = observed
        .rendered
        .sources
        .iter()
        .map(|s| s.revision.clone())
        .collect();
    let mut result = SyncOperationResult {
        revision: if multi {
            String::new()
        } else {
            revisions.first().cloned().unwrap_or_default()
        },
        revisions: if multi { revisions } else { Vec::new() },
        // Compared with the spec's afterwards: a change makes the app OutOfSync.
        managed_namespace_metadata: policy.managed_namespace_metadata.clone(),
        ..Default::default()
    };
    if multi {
        result.sources = sources;
    } else {
        result.source = sources.into_iter().next();
    }
    result
}

/// Runs the sync (`engine` running `request`, answering its checkpoint `saves`), writing its
/// progress to the Application meanwhile.
async fn run_with_progress(
    ctx: &Context,
    name: &str,
    state: &mut OperationState,
    written: &mut Option<OperationState>,
    (engine, request, mut saves): (&Engine, SyncRequest, mpsc::Receiver<CheckpointRequest>),
    cancel: &CancellationToken,
) -> SyncReport {
    let (progress, mut updates) = watch::channel(SyncReport::running());
    let finished = CancellationToken::new();
    let sync = async {
        let report = engine.sync(request, cancel.clone(), &progress).await;
        finished.cancel();
        report
    };
    // Progress goes to the Application at most once per interval, the first one interval into
    // the attempt (a sync shorter than that writes only its end), without holding up the sync
    // or its end.
    // A checkpoint (before a finished hook is deleted) is written at once and acknowledged.
    let writer = async {
        let mut pending = false;
        let mut next_write = tokio::time::Instant::now() + PROGRESS_INTERVAL;
        loop {
            tokio::select! {
                changed = updates.changed(), if !pending => {
                    if changed.is_err() { break }
                    pending = true;
                }
                _ = tokio::time::sleep_until(next_write), if pending => {
                    let report = updates.borrow_and_update().clone();
                    save_progress(ctx, name, state, written, report).await;
                    pending = false;
                    next_write = tokio::time::Instant::now() + PROGRESS_INTERVAL;
                }
                Some((report, answer)) = saves.recv() => {
                    let saved = save_progress(ctx, name, state, written, report).await;
                    let _ = answer.send(saved);
                }
                _ = finished.cancelled() => break,
            }
        }
    };
    let (report, ()) = tokio::join!(sync, writer);
    report
}

/// The Application as it is now.
async fn read_app(ctx: &Context, name: &str) -> kube::Result<Application> {
    let (apps, app_name) = ctx.app_api(name);
    let object = apps.get(app_name).await?;
    serde_json::to_value(&object)
        .and_then(serde_json::from_value)
        .map_err(kube::Error::SerdeError)
}

/// What the sync applies, kept as the server-side diff's prediction for those objects as
/// applied: the comparisons its changes trigger need no dry run of them.
fn applied_predictions(ctx: &Arc<Context>) -> Option<OnApplied> {
    ctx.predictions.as_ref()?;
    let (applied, starting) = (ctx.clone(), ctx.clone());
    let on_applied = OnApplied::new(move |sent, answer| {
        if let Some(predictions) = &applied.predictions {
            predictions.remember_applied(sent, answer, &applied.settings.field_manager);
        }
    });
    // A comparison that sees the object before the answer is back waits for it.
    Some(on_applied.with_start(move |sent| {
        let manager = &starting.settings.field_manager;
        let applying = starting
            .predictions
            .as_ref()
            .map(|p| p.applying(sent, manager));
        Box::new(applying)
    }))
}

/// Writes a sync's progress into the operation state; whether it was written.
async fn save_progress(
    ctx: &Context,
    name: &str,
    state: &mut OperationState,
    written: &mut Option<OperationState>,
    report: SyncReport,
) -> bool {
    if let Some(result) = state.sync_result.as_mut() {
        result.resources = report.resources;
    }
    // What the sync is waiting for, when it says (a prune's confirmation).
    if !report.message.is_empty() {
        state.message = report.message;
    }
    // Written in whole seconds, rounded down: a resumed wait ends no later than due.
    state.waiting_since = report
        .waiting_since
        .and_then(|since| jiff::Timestamp::try_from(since).ok())
        .map(Time);
    let saved = write_state(ctx, name, written, state).await.is_ok();
    if saved {
        *written = Some(state.clone());
    }
    saved
}

/// The identity of one run of an operation, which the hooks it creates are labelled with: the
/// same when a restarted controller resumes it, another for a retry or the next operation (the
/// Application's uid, the operation's start and retry count, the operation itself).
fn run_id(app: &Application, state: &OperationState) -> String {
    let mut hash = Sha256::new();
    hash.update(app.metadata.uid.as_deref().unwrap_or_default());
    hash.update(serde_json::to_vec(&state.started_at).unwrap_or_default());
    hash.update(state.retry_count.to_be_bytes());
    hash.update(serde_json::to_vec(&state.operation).unwrap_or_default());
    hex::encode(&hash.finalize()[..8])
}

/// The sources an operation syncs, as recorded in its result and history: a rollback's
/// recorded source(s), else the spec's.
fn operation_sources(app: &Application, sync: &SyncOperation) -> Vec<ApplicationSource> {
    if !sync.sources.is_empty() {
        sync.sources.clone()
    } else if let Some(source) = &sync.source {
        vec![source.clone()]
    } else {
        app.sources().to_vec()
    }
}

/// The sources to render: `sources` with the operation's revision(s) in place of
/// `targetRevision`.
fn pinned_sources(sources: &[ApplicationSource], sync: &SyncOperation) -> Vec<ApplicationSource> {
    let mut sources = sources.to_vec();
    if !sync.revisions.is_empty() {
        for (source, revision) in sources.iter_mut().zip(&sync.revisions) {
            if !revision.is_empty() {
                source.target_revision = revision.clone();
            }
        }
    } else if !sync.revision.is_empty()
        && let [source] = sources.as_mut_slice()
    {
        source.target_revision = sync.revision.clone();
    }
    sources
}

/// The keys a selective sync names, matched against the desired and live objects (a resource
/// given without a namespace matches it in any namespace).
fn selected_resources(
    sync: &SyncOperation,
    desired: &[Value],
    live: &[Value],
) -> Option<Vec<ResourceKey>> {
    if sync.resources.is_empty() {
        return None;
    }
    let known: HashSet<ResourceKey> = desired
        .iter()
        .chain(live)
        .filter_map(ResourceKey::of)
        .collect();
    let selected = known
        .into_iter()
        .filter(|key| {
            sync.resources.iter().any(|r| {
                r.group == key.group
                    && r.kind == key.kind
                    && r.name == key.name
                    && (r.namespace.is_empty() || r.namespace == key.namespace)
            })
        })
        .collect();
    Some(selected)
}

/// Records the end of an operation: its final state, a history entry for a successful real
/// sync, and `operation` cleared, in one write.
async fn finish(
    ctx: &Context,
    name: &str,
    status: &ApplicationStatus,
    history_limit: i64,
    mut state: OperationState,
    written: Option<OperationState>,
) -> kube::Result<()> {
    state.finished_at = Some(now());
    let left_out = status_size::fit_sync_result(&mut state);
    state.message = status_size::with_left_out(&state.message, left_out);
    let mut history = status.history.clone();
    let dry_run = state.operation.sync.as_ref().is_some_and(|s| s.dry_run);
    if state.phase == OperationPhase::Succeeded
        && !dry_run
        && let Some(result) = &state.sync_result
    {
        history.push(RevisionHistory {
            id: history.iter().map(|h| h.id + 1).max().unwrap_or(0),
            revision: result.revision.clone(),
            revisions: result.revisions.clone(),
            source: result.source.clone(),
            sources: result.sources.clone(),
            deployed_at: state.finished_at.clone(),
            deploy_started_at: state.started_at.clone(),
            initiated_by: Some(state.operation.initiated_by.clone()),
            unknown: Default::default(),
        });
        let limit = usize::try_from(history_limit.max(1)).unwrap_or(1);
        let excess = history.len().saturating_sub(limit);
        history.drain(..excess);
    }
    info!(app = %name, phase = ?state.phase, message = %state.message, "sync finished");
    let old = json!({"operationState": written.or_else(|| status.operation_state.clone()), "history": status.history});
    let new = json!({"operationState": state, "history": history});
    let mut body = json!({"operation": null});
    if let Some(change) = ferry_types::merge_patch(&old, &new) {
        body["status"] = change;
    }
    let (apps, app_name) = ctx.app_api(name);
    patch::write(&apps, app_name, &ctx.settings.field_manager, body).await?;
    ctx.forget_comparison(name);
    Ok(())
}

/// Writes the change from the last written operation state to `state`.
async fn write_state(
    ctx: &Context,
    name: &str,
    written: &Option<OperationState>,
    state: &OperationState,
) -> kube::Result<()> {
    // Both sides trimmed alike, so an unchanged big list is no change.
    let fitted = |state: &OperationState| {
        let mut state = state.clone();
        status_size::fit_sync_result(&mut state);
        state
    };
    let written = written.as_ref().map(fitted);
    let state = fitted(state);
    let old = json!({"operationState": written});
    let new = json!({"operationState": state});
    if let Some(change) = ferry_types::merge_patch(&old, &new) {
        let (apps, app_name) = ctx.app_api(name);
        patch::write(
            &apps,
            app_name,
            &ctx.settings.field_manager,
            json!({"status": change}),
        )
        .await?;
    }
    Ok(())
}

/// `Prune=confirm` prunes go ahead once the app's deletion-approved annotation is at or after
/// the operation's start (Argo CD's `IsDeletionConfirmed(startedAt)`), read afresh each time.
fn prune_confirmation(
    apps: kube::Api<kube::api::DynamicObject>,
    name: &str,
    started_at: Option<Time>,
) -> PruneConfirmation {
    let name = name.to_string();
    PruneConfirmation::new(move || {
        let (apps, name, since) = (apps.clone(), name.clone(), started_at.clone());
        async move {
            let (Some(since), Ok(object)) = (since, apps.get(&name).await) else {
                return false;
            };
            serde_json::to_value(object)
                .and_then(serde_json::from_value::<Application>)
                .is_ok_and(|app| app.deletion_approved_since(since.0))
        }
    })
}

pub fn now() -> Time {
    Time(
        jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap_or_else(|_| jiff::Timestamp::now()),
    )
}

/// A sync requested by automation for the given revisions.
pub fn automated_operation(
    app: &Application,
    revisions: &[String],
    self_heal_attempts: i64,
) -> Operation {
    let policy = app.spec.sync_policy.clone().unwrap_or_default();
    let automated = policy.automated.clone().unwrap_or_default();
    let multi = app.is_multi_source();
    Operation {
        sync: Some(SyncOperation {
            revision: if multi {
                String::new()
            } else {
                revisions.first().cloned().unwrap_or_default()
            },
            revisions: if multi {
                revisions.to_vec()
            } else {
                Vec::new()
            },
            prune: automated.prune,
            sync_options: policy.sync_options.clone(),
            auto_heal_attempts_count: self_heal_attempts,
            ..Default::default()
        }),
        initiated_by: ferry_types::application::OperationInitiator {
            automated: true,
            ..Default::default()
        },
        retry: policy.retry.clone(),
        ..Default::default()
    }
}

/// `RespectIgnoreDifferences=true`: what the app's ignoreDifferences leave out of the
/// comparison is not applied either; each existing resource keeps its live values there (an
/// autoscaler's replica count, an injected sidecar), as Argo CD does.
async fn respecting_ignored(
    ctx: &Context,
    app: &Application,
    setup: &appstate::Setup,
    desired: &[Value],
) -> Result<Vec<Value>, String> {
    let rules = appstate::ignore_rules(ctx, app)?;
    if rules.is_empty() {
        return Ok(desired.to_vec());
    }
    let mut out = Vec::with_capacity(desired.len());
    for object in desired {
        let Some(key) = ResourceKey::of(object) else {
            out.push(object.clone());
            continue;
        };
        let Some(cached) = setup.cache.get(&key) else {
            out.push(object.clone());
            continue;
        };
        let live = if rules.needs_managed_fields(&key.group, &key.kind, &key.namespace, &key.name) {
            ferry_appstate::read_with_managed_fields(
                &setup.cache,
                &setup.cluster.client,
                &cached.api_version,
                &key,
            )
            .await
            .map_err(|err| format!("{key}: reading its managedFields: {err}"))?
        } else {
            Some(cached.object())
        };
        match live {
            Some(live) => out.push(
                ferry_diff::respect_ignore_differences(object, &live, &rules)
                    .map_err(|err| format!("{key}: {err}"))?,
            ),
            None => out.push(object.clone()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn showing(phase: OperationPhase, started_at: Option<Time>) -> Application {
        let mut app = Application::default();
        let state = OperationState {
            operation: Operation::default(),
            phase,
            message: String::new(),
            sync_result: None,
            started_at,
            finished_at: None,
            retry_count: 0,
            waiting_since: None,
            unknown: Default::default(),
        };
        app.status = Some(ApplicationStatus {
            operation_state: Some(state),
            ..Default::default()
        });
        app
    }

    #[test]
    fn a_view_still_showing_the_operation_that_ended_here_trails() {
        let operations = Operations::new(1);
        let started = Some(now());
        let running = showing(OperationPhase::Running, started.clone());
        assert!(
            !operations.trails_finished("web", &running),
            "nothing ended"
        );

        operations
            .finished()
            .insert("web".into(), (started.clone(), Instant::now()));
        assert!(operations.trails_finished("web", &running));
        let terminating = showing(OperationPhase::Terminating, started.clone());
        assert!(operations.trails_finished("web", &terminating));
        assert!(!operations.trails_finished("db", &running), "another app");

        // A view showing something else is up to date: the end is forgotten.
        let other = showing(OperationPhase::Running, None);
        assert!(!operations.trails_finished("web", &other));
        assert!(!operations.trails_finished("web", &running));

        // Long after the end, the view is read afresh.
        let long_ago = Instant::now() - TRAILING_LIMIT;
        operations
            .finished()
            .insert("web".into(), (started, long_ago));
        assert!(!operations.trails_finished("web", &running));
    }
}
