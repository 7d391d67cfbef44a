//! One reconcile of one Application: check the spec against its project, render and compare,
//! write what was found to `status`, and start whatever operation is due.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_types::Application;
use ferry_types::application::{
    ApplicationCondition, ApplicationStatus, ComparedTo, HealthStatus, HealthStatusCode, Operation,
    REFRESH_ANNOTATION, SyncStatus, SyncStatusCode, condition,
};
use kube::ResourceExt;
use kube::runtime::controller::Action;
use rand::Rng;
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::{debug, info, warn};

use crate::appstate::{self, Observed};
use crate::automation::{self, Decision};
use crate::context::{Context, WrittenStatus};
use crate::metrics::AppIdentity;
use crate::operation;
use crate::status_size;
use crate::stored_app::StoredApp;
use crate::{delete_hooks, deletion, patch};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing application {app}: {source}")]
    Write {
        app: String,
        #[source]
        source: kube::Error,
    },
}

pub async fn reconcile(object: Arc<StoredApp>, ctx: Arc<Context>) -> Result<Action, Error> {
    if skips_reconcile(&object) {
        // Left untouched until the annotation changes, which the watch reports.
        debug!(app = %object.name_any(), "skip-reconcile annotation set");
        return Ok(Action::await_change());
    }
    if !ctx.sharding.manages_app(&ctx.clusters, &object) {
        // Another shard's app; looked at again each resync in case its cluster moves here.
        debug!(app = %object.name_any(), "not in this controller's shard");
        return Ok(Action::requeue(ctx.resync()));
    }
    let started = Instant::now();
    let result = reconcile_app(object.clone(), ctx.clone()).await;
    ctx.metrics
        .reconciled(&AppIdentity::of_object(&object), started.elapsed());
    result
}

/// Argo CD's `argocd.argoproj.io/skip-reconcile`, read as Go reads a bool.
fn skips_reconcile(object: &StoredApp) -> bool {
    object
        .annotations()
        .get(ferry_types::application::SKIP_RECONCILE_ANNOTATION)
        .is_some_and(|value| ferry_types::application::parse_go_bool(value) == Some(true))
}

async fn reconcile_app(object: Arc<StoredApp>, ctx: Arc<Context>) -> Result<Action, Error> {
    // The key of the app's comparison, backoffs and operation, and in logs.
    let name = ctx.key_of(object.as_ref());
    let write_error = |source| Error::Write {
        app: name.clone(),
        source,
    };
    let app = match object.application() {
        Ok(app) => app,
        Err(err) => return report_invalid_spec(&ctx, &name, &object, err).await,
    };
    if app.metadata.deletion_timestamp.is_some() {
        return deletion::finalize(&ctx, &app).await.map_err(write_error);
    }

    if let Some(wait) = operation_throttle(&ctx, &name) {
        return Ok(Action::requeue(wait));
    }
    let old = app.status.clone().unwrap_or_default();
    let mut new = old.clone();
    new.controller_namespace = ctx.settings.namespace.clone();
    let mut conditions = unsupported_fields(&app, Conditions::new(&old.conditions));
    let refresh = app.refresh_requested();
    let mut requeue = jittered(&ctx);
    let had_comparison = ctx.has_comparison(&name);
    let observed = observe(&ctx, &app, &mut new, &mut conditions).await;

    let mut automated = None;
    let can_automate =
        app.operation.is_none() && !ctx.operations.is_running(&name) && !conditions.has_error();
    if can_automate && let Some((setup, found)) = &observed {
        automated = automate(
            &ctx,
            &app,
            &new,
            setup,
            found,
            &mut conditions,
            &mut requeue,
        );
    }
    let comparison_failed = match &observed {
        None => true,
        Some((_, found)) => !found.comparison.errors.is_empty(),
    };
    requeue = back_off_failed_comparison(&ctx, &name, comparison_failed, &conditions, requeue);
    new.conditions = conditions.done();
    // As Argo CD's: reconciledAt moves with a refresh and a comparison from scratch (the first,
    // the first after a sync or a settings change), and with any change of the status; not
    // for a comparison that a live change caused and that found nothing new.
    let from_scratch = !had_comparison && observed.as_ref().is_some_and(|(_, o)| o.fresh);
    let mark = refresh.is_some() || from_scratch || old.reconciled_at.is_none();
    if mark || new != old {
        new.reconciled_at = Some(operation::now());
    }
    if let Some((_, found)) = &observed {
        // Before the status write, whose new resourceVersion this patch would not carry.
        delete_hooks::keep_finalizers(&ctx, &app, &found.desired)
            .await
            .map_err(write_error)?;
    }
    let write = mark || !trails_written_status(&ctx, &name, &app, &new);
    if let Some(op) = automated {
        // No operation is requested or runs (automation's precondition): nothing to drive.
        let new = write.then_some(&new);
        start_automated_sync(&ctx, &name, &app, (&old, new), refresh.is_some(), op)
            .await
            .map_err(write_error)?;
    } else {
        if write {
            write_and_remember_status(&ctx, &name, &app, &old, &new, refresh.is_some())
                .await
                .map_err(write_error)?;
        }
        operation::drive(&ctx, &app).await.map_err(write_error)?;
    }
    if ctx.reconcile_backoff.succeeded(&name) {
        info!(app = %name, "reconcile recovered");
    }
    Ok(Action::requeue(requeue))
}

/// An app whose spec does not read: without a spec nothing else can be done, so the status
/// says why where users look.
async fn report_invalid_spec(
    ctx: &Context,
    name: &str,
    object: &StoredApp,
    err: serde_json::Error,
) -> Result<Action, Error> {
    let old: ApplicationStatus = serde_json::from_value(object.status()).unwrap_or_default();
    let mut new = old.clone();
    new.conditions = Conditions::new(&old.conditions)
        .with(
            condition::INVALID_SPEC_ERROR,
            format!("invalid application: {err}"),
        )
        .done();
    new.sync.status = SyncStatusCode::Unknown;
    ctx.written_statuses
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(name);
    write_status(ctx, name, &old, None, &new, false)
        .await
        .map_err(|source| Error::Write {
            app: name.to_string(),
            source,
        })?;
    Ok(Action::requeue(ctx.resync()))
}

/// An UnsupportedFieldsWarning naming the spec's fields ferry does not know, if any.
fn unsupported_fields(app: &Application, conditions: Conditions) -> Conditions {
    let unknown = app.unknown_fields();
    if unknown.is_empty() {
        return conditions;
    }
    conditions.with(
        condition::UNSUPPORTED_FIELDS_WARNING,
        format!(
            "ferry does not support these fields, which are ignored: {}",
            unknown.join(", ")
        ),
    )
}

/// A failed comparison is tried again with backoff (within `requeue`); only the first failure
/// of a streak is a warning, and the first success after one is told.
fn back_off_failed_comparison(
    ctx: &Context,
    name: &str,
    failed: bool,
    conditions: &Conditions,
    requeue: Duration,
) -> Duration {
    if failed {
        let retry = ctx.error_backoff.failed(name, ctx.resync());
        if retry.first {
            warn!(app = %name, "comparison failed, retrying with backoff: {}", conditions.error_messages());
        }
        return requeue.min(retry.after);
    }
    if ctx.error_backoff.succeeded(name) {
        info!(app = %name, "comparison recovered");
    }
    requeue
}

/// Writes `new` over `old` and remembers it as the status last written.
async fn write_and_remember_status(
    ctx: &Context,
    name: &str,
    app: &Application,
    old: &ApplicationStatus,
    new: &ApplicationStatus,
    clear_refresh: bool,
) -> kube::Result<()> {
    let last = last_written_status(ctx, name, app);
    let written = write_status(ctx, name, old, last.as_ref(), new, clear_refresh).await?;
    if let Some(owned) = written {
        remember_written_status(ctx, name, app, new, owned);
    }
    Ok(())
}

/// Requests the automated sync `op` and starts it. The request, the sync's Running state and
/// the status found (`new`, when it is to be written over `old`) are one write.
async fn start_automated_sync(
    ctx: &Arc<Context>,
    name: &str,
    app: &Application,
    (old, new): (&ApplicationStatus, Option<&ApplicationStatus>),
    clear_refresh: bool,
    op: Operation,
) -> kube::Result<()> {
    info!(app = %name, revisions = ?op.sync.as_ref().map(|s| (&s.revision, &s.revisions)), "automated sync");
    let last = last_written_status(ctx, name, app);
    let (mut body, owned) = match new {
        Some(new) => status_patch(old, last.as_ref(), new, clear_refresh)?,
        None => (serde_json::Map::new(), None),
    };
    let (state, change) = operation::requested(&old.operation_state, &op);
    body.insert("operation".into(), json!(op));
    // The status part never holds `operationState` (see `owned_fields`): its change joins it.
    if let Some(serde_json::Value::Object(change)) = change
        && let Some(status) = body
            .entry("status")
            .or_insert_with(|| json!({}))
            .as_object_mut()
    {
        status.extend(change);
    }
    let (apps, app_name) = ctx.app_api(name);
    let written = patch::write(&apps, app_name, &ctx.settings.field_manager, body.into()).await?;
    if let (Some(new), Some(owned)) = (new, owned) {
        remember_written_status(ctx, name, app, new, owned);
    }
    // Started from the object just written: the controller's own view may trail behind it,
    // and must not request the same sync twice; the write's answer is fresh.
    match serde_json::to_value(&written).and_then(serde_json::from_value::<Application>) {
        Ok(requested) => operation::start_requested(ctx, name, state, requested),
        Err(err) => warn!(app = %name, "the automated sync's answer does not read: {err}"),
    }
    Ok(())
}

/// The spec checked against its project, the sources rendered and compared with the live
/// state, recorded in `new` and `conditions`; `None` when the spec is invalid or the
/// comparison failed (which `conditions` then says).
async fn observe(
    ctx: &Context,
    app: &Application,
    new: &mut ApplicationStatus,
    conditions: &mut Conditions,
) -> Option<(appstate::Setup, Observed)> {
    let refresh = app.refresh_requested();
    match appstate::setup(ctx, app).await {
        Err(message) => {
            let kind = if appstate::namespace_refused(ctx, app) {
                condition::UNKNOWN_ERROR
            } else {
                condition::INVALID_SPEC_ERROR
            };
            *conditions = std::mem::take(conditions).with(kind, message);
            new.sync.status = SyncStatusCode::Unknown;
        }
        Ok(setup) => {
            match appstate::observe(ctx, app, &setup, app.sources(), refresh.is_none()).await {
                Err(message) => {
                    // Keep the last known resources and health: a failed render says nothing
                    // about the live state, and must never look like "everything is gone".
                    *conditions =
                        std::mem::take(conditions).with(condition::COMPARISON_ERROR, message);
                    new.sync.status = SyncStatusCode::Unknown;
                }
                Ok(found) => {
                    record_comparison(app, &found, new, conditions);
                    let budget = ctx.settings.max_status_resources_size;
                    if let Some(message) = status_size::fit_resources(&mut new.resources, budget) {
                        *conditions = std::mem::take(conditions)
                            .with(condition::RESOURCES_TRUNCATED_WARNING, message);
                    }
                    if let Some(message) = orphans(app, &setup) {
                        *conditions = std::mem::take(conditions)
                            .with(condition::ORPHANED_RESOURCE_WARNING, message);
                    }
                    return Some((setup, found));
                }
            }
        }
    }
    None
}

/// What automation would do, decided on the status just found (`new`): the sync to request,
/// if one is due and its sync windows allow it now. A sync to try later shortens `requeue`;
/// a failed decision is a SyncError condition.
fn automate(
    ctx: &Context,
    app: &Application,
    new: &ApplicationStatus,
    setup: &appstate::Setup,
    found: &Observed,
    conditions: &mut Conditions,
    requeue: &mut Duration,
) -> Option<Operation> {
    let revisions: Vec<String> = found
        .rendered
        .sources
        .iter()
        .map(|s| s.revision.clone())
        .collect();
    let mut current = app.clone();
    current.status = Some(new.clone());
    let now = jiff::Timestamp::now();
    match automation::decide(
        &current,
        &found.comparison,
        &revisions,
        &ctx.settings,
        now.as_second(),
    ) {
        Decision::Sync { self_heal_attempts } => {
            let allowed = setup
                .project
                .sync_windows(app)
                .is_ok_and(|w| w.can_sync(now, false));
            if allowed {
                return Some(operation::automated_operation(
                    app,
                    &revisions,
                    self_heal_attempts,
                ));
            } else {
                debug!(app = %app.name_any(), "automated sync blocked by a sync window");
                *requeue = (*requeue).min(Duration::from_secs(60));
            }
        }
        Decision::Later(delay) => *requeue = (*requeue).min(delay + Duration::from_millis(100)),
        Decision::Failed(message) => {
            *conditions = std::mem::take(conditions).with(condition::SYNC_ERROR, message);
        }
        Decision::No(why) => debug!(app = %app.name_any(), "no automated sync: {why}"),
    }
    None
}

/// A reconcile that failed (the status could not be written, say) is tried again with
/// backoff; only the first failure of a streak is a warning.
pub fn error_policy(object: Arc<StoredApp>, error: &Error, ctx: Arc<Context>) -> Action {
    let name = ctx.key_of(object.as_ref());
    let retry = ctx.reconcile_backoff.failed(&name, ctx.resync());
    if retry.first {
        warn!(app = %name, "reconcile failed, retrying with backoff: {error}");
    } else {
        debug!(app = %name, "reconcile still failing: {error}");
    }
    Action::requeue(retry.after)
}

/// Copies a comparison into the status.
fn record_comparison(
    app: &Application,
    found: &Observed,
    status: &mut ApplicationStatus,
    conditions: &mut Conditions,
) {
    let comparison = &found.comparison;
    let mut sync = SyncStatus {
        status: comparison.sync,
        compared_to: Some(ComparedTo {
            source: app.spec.source.clone().filter(|_| !app.is_multi_source()),
            sources: app.spec.sources.clone(),
            destination: app.spec.destination.clone(),
            ignore_differences: app.spec.ignore_differences.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let revisions: Vec<String> = found
        .rendered
        .sources
        .iter()
        .map(|s| s.revision.clone())
        .collect();
    if app.is_multi_source() {
        sync.revisions = revisions;
    } else {
        sync.revision = revisions.into_iter().next().unwrap_or_default();
    }
    if sync.status == SyncStatusCode::Synced && app.has_changed_managed_namespace_metadata() {
        sync.status = SyncStatusCode::OutOfSync;
    }
    status.sync = sync;
    let old_resources = std::mem::take(&mut status.resources);
    status.resources = comparison.resources.clone();
    // Keep the time each resource's health last changed.
    for resource in &mut status.resources {
        let before = old_resources.iter().find(|r| r.key() == resource.key());
        if let (Some(health), Some(before)) =
            (&mut resource.health, before.and_then(|b| b.health.as_ref()))
        {
            if before.status == health.status {
                health.last_transition_time = before.last_transition_time.clone();
            } else {
                health.last_transition_time = Some(operation::now());
            }
        }
    }
    let mut health: HealthStatus = comparison.health.clone();
    health.last_transition_time = if status.health.status == health.status {
        status.health.last_transition_time.clone()
    } else {
        Some(operation::now())
    };
    if status.health.status == HealthStatusCode::Unknown
        && health.status == HealthStatusCode::Unknown
    {
        health.last_transition_time = status.health.last_transition_time.clone();
    }
    status.health = health;
    status.summary.images = comparison.images.clone();
    let types: Vec<_> = found
        .rendered
        .sources
        .iter()
        .filter_map(|s| s.source_type)
        .collect();
    if app.is_multi_source() {
        status.source_types = types;
        status.source_type = None;
    } else {
        status.source_type = types.into_iter().next();
        status.source_types = Vec::new();
    }
    if !comparison.errors.is_empty() {
        *conditions = std::mem::take(conditions)
            .with(condition::COMPARISON_ERROR, comparison.errors.join("; "));
    }
    if !comparison.forbidden.is_empty() {
        *conditions = std::mem::take(conditions)
            .with(condition::COMPARISON_ERROR, comparison.forbidden.join("; "));
    }
    if !comparison.shared.is_empty() {
        *conditions = std::mem::take(conditions).with(
            condition::SHARED_RESOURCE_WARNING,
            comparison.shared.join("; "),
        );
    }
}

/// With the project's `orphanedResources` warning on: how many top-level objects in the app's
/// destination namespace no app tracks.
fn orphans(app: &Application, setup: &appstate::Setup) -> Option<String> {
    let settings = setup.project.spec.orphaned_resources.as_ref()?;
    let namespace = &app.spec.destination.namespace;
    if !settings.is_warn() || namespace.is_empty() {
        return None;
    }
    let count = setup
        .cache
        .namespace_resources(namespace)
        .iter()
        .filter(|o| o.app.is_none() && o.owners.is_empty())
        .filter(|o| !settings.ignores(&o.key.group, &o.key.kind, &o.key.name))
        .count();
    (count > 0).then(|| format!("Application has {count} orphaned resources"))
}

/// Writes the reconcile's findings, and with `clear_refresh` removes the refresh request in the
/// same patch (as Argo CD does): one write per refresh, and no watch event shows the new status
/// beside the old request. `operationState` and `history` belong to operations and are never
/// written from here (an automated sync's request writes its Running state with the status).
/// The patch turns both the app's view (`old`) and the last status written here (`last`, which
/// the view may trail) into `new`, so nothing a trailing view hides is left out. Returns the
/// owned fields written, if a write was needed.
async fn write_status(
    ctx: &Context,
    key: &str,
    old: &ApplicationStatus,
    last: Option<&serde_json::Value>,
    new: &ApplicationStatus,
    clear_refresh: bool,
) -> kube::Result<Option<serde_json::Value>> {
    let (body, owned) = status_patch(old, last, new, clear_refresh)?;
    if body.is_empty() {
        return Ok(None);
    }
    let (apps, name) = ctx.app_api(key);
    patch::write(&apps, name, &ctx.settings.field_manager, body.into()).await?;
    Ok(owned)
}

/// The body of [`write_status`]'s patch (empty when nothing is to be written), and the owned
/// fields it writes when it writes any.
fn status_patch(
    old: &ApplicationStatus,
    last: Option<&serde_json::Value>,
    new: &ApplicationStatus,
    clear_refresh: bool,
) -> kube::Result<(
    serde_json::Map<String, serde_json::Value>,
    Option<serde_json::Value>,
)> {
    let old = owned_fields(old)?;
    let new = owned_fields(new)?;
    let bases: Vec<&serde_json::Value> = std::iter::once(&old).chain(last).collect();
    let mut body = serde_json::Map::new();
    if let Some(change) = ferry_types::merge_patch_from_any(&bases, &new) {
        body.insert("status".into(), change);
    }
    if clear_refresh {
        let clear = json!({"annotations": {REFRESH_ANNOTATION: null}});
        body.insert("metadata".into(), clear);
    }
    let owned = (!body.is_empty()).then_some(new);
    Ok((body, owned))
}

/// What [`write_status`] owns of a status: all but the operation's `operationState` and
/// `history`.
fn owned_fields(status: &ApplicationStatus) -> kube::Result<serde_json::Value> {
    let mut owned = serde_json::to_value(status).map_err(kube::Error::SerdeError)?;
    if let Some(map) = owned.as_object_mut() {
        map.remove("operationState");
        map.remove("history");
    }
    Ok(owned)
}

/// The digest of what [`write_status`] owns of a status, without `reconciledAt` and the
/// transition times (a view that trails a health change makes the same change a second later).
fn status_digest(status: &ApplicationStatus) -> Vec<u8> {
    let mut status = status.clone();
    status.reconciled_at = None;
    status.operation_state = None;
    status.history = Vec::new();
    let mut value = serde_json::to_value(&status).unwrap_or_default();
    without_transition_times(&mut value);
    Sha256::digest(value.to_string()).to_vec()
}

fn without_transition_times(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove("lastTransitionTime");
            map.values_mut().for_each(without_transition_times);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(without_transition_times),
        _ => {}
    }
}

/// How long after a write a view that differs from it is taken to trail it: watch events lag
/// by milliseconds, so a view still different after this shows someone else's change.
const TRAIL_LIMIT: Duration = Duration::from_secs(30);

/// Whether `new` is the status this controller last wrote to this very app, shortly ago: the
/// app's view then trails that write (the watch has not brought it yet), and writing again would
/// send the same status.
fn trails_written_status(
    ctx: &Context,
    key: &str,
    app: &Application,
    new: &ApplicationStatus,
) -> bool {
    let uid = app.metadata.uid.as_deref().unwrap_or_default();
    let written = ctx
        .written_statuses
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    written.get(key).is_some_and(|w| {
        w.uid == uid && w.at.elapsed() < TRAIL_LIMIT && w.digest == status_digest(new)
    })
}

/// The owned fields last written to this very app, as a second base for the next patch.
fn last_written_status(ctx: &Context, key: &str, app: &Application) -> Option<serde_json::Value> {
    let uid = app.metadata.uid.as_deref().unwrap_or_default();
    let written = ctx
        .written_statuses
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let w = written.get(key).filter(|w| w.uid == uid)?;
    serde_json::from_str(&w.owned).ok()
}

fn remember_written_status(
    ctx: &Context,
    key: &str,
    app: &Application,
    new: &ApplicationStatus,
    owned: serde_json::Value,
) {
    let written = WrittenStatus {
        uid: app.metadata.uid.clone().unwrap_or_default(),
        digest: status_digest(new),
        owned: owned.to_string(),
        at: Instant::now(),
    };
    ctx.written_statuses
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key.to_string(), written);
}

/// While an operation of the app runs here, its status is written at most once per
/// [`operation::PROGRESS_INTERVAL`] (each object the sync applies changes it): how long to wait
/// before this reconcile, if at all.
fn operation_throttle(ctx: &Context, key: &str) -> Option<Duration> {
    if !ctx.operations.is_running(key) {
        return None;
    }
    let written = ctx
        .written_statuses
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let since = written.get(key)?.at.elapsed();
    operation::PROGRESS_INTERVAL.checked_sub(since)
}

fn jittered(ctx: &Context) -> Duration {
    let jitter = ctx.settings.resync_jitter.as_millis() as u64;
    let extra = if jitter == 0 {
        0
    } else {
        rand::rng().random_range(0..jitter)
    };
    ctx.resync() + Duration::from_millis(extra)
}

/// The conditions being built for a status: the same condition keeps its transition time.
#[derive(Default)]
struct Conditions {
    before: Vec<ApplicationCondition>,
    now: Vec<ApplicationCondition>,
}

impl Conditions {
    fn new(before: &[ApplicationCondition]) -> Self {
        Self {
            before: before.to_vec(),
            now: Vec::new(),
        }
    }

    fn with(mut self, condition_type: &str, message: String) -> Self {
        if let Some(existing) = self
            .now
            .iter_mut()
            .find(|c| c.condition_type == condition_type)
        {
            existing.message = format!("{}; {message}", existing.message);
            return self;
        }
        let last_transition_time = self
            .before
            .iter()
            .find(|c| c.condition_type == condition_type && c.message == message)
            .and_then(|c| c.last_transition_time.clone())
            .or_else(|| Some(operation::now()));
        self.now.push(ApplicationCondition {
            condition_type: condition_type.to_string(),
            message,
            last_transition_time,
            ..Default::default()
        });
        self
    }

    fn has_error(&self) -> bool {
        self.now
            .iter()
            .any(|c| condition::is_error(&c.condition_type))
    }

    /// The error conditions' messages, for the log.
    fn error_messages(&self) -> String {
        let errors: Vec<String> = self
            .now
            .iter()
            .filter(|c| condition::is_error(&c.condition_type))
            .map(|c| format!("{}: {}", c.condition_type, c.message))
            .collect();
        errors.join("; ")
    }

    fn done(self) -> Vec<ApplicationCondition> {
        self.now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_written_again_a_second_later_has_the_same_digest() {
        let mut first = ApplicationStatus::default();
        first.health.status = HealthStatusCode::Progressing;
        first.health.last_transition_time = Some(operation::now());
        first.reconciled_at = Some(operation::now());
        let mut again = first.clone();
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(1);
        again.health.last_transition_time =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(later));
        again.reconciled_at = again.health.last_transition_time.clone();
        assert_eq!(status_digest(&first), status_digest(&again));

        let mut healthy = first.clone();
        healthy.health.status = HealthStatusCode::Healthy;
        assert_ne!(status_digest(&first), status_digest(&healthy));
    }
}
