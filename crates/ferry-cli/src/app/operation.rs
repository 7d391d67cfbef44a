//! `ferry app sync`, `ferry app rollback`, `ferry app wait` and `ferry app terminate-op`. In core
//! mode a sync is requested the way Argo CD's API server requests one: the top-level `operation`
//! field of the Application is written (and the previous operation's state cleared), the
//! controller runs it, records the outcome in `status.operationState` and clears `operation`.
//! Through a server, the server's sync and rollback endpoints do that.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::ValueEnum;
use ferry_types::Application;
use ferry_types::application::{
    HealthStatusCode, Operation, OperationInitiator, OperationPhase, SyncOperation,
    SyncOperationResource, SyncStatusCode, SyncStrategy, SyncStrategyApply,
};
use futures::StreamExt;
use kube::runtime::watcher::watch_object;
use serde_json::json;
use tokio::time::Instant;

use super::show::{app_summary, operation_summary, resource_table, shown_namespace};
use super::{Conn, get_app, update_app};
use crate::core::Core;
use crate::{rendering, server};

/// Consecutive watch errors tolerated before waiting gives up.
const WATCH_ERRORS: usize = 5;

#[derive(clap::Args, Debug)]
pub struct SyncArgs {
    name: String,
    /// Delete resources that are no longer in Git.
    #[arg(long)]
    prune: bool,
    /// Go through the motions without changing anything.
    #[arg(long)]
    dry_run: bool,
    /// Sync only this resource (repeatable).
    #[arg(long = "resource", value_name = "GROUP:KIND:[NAMESPACE/]NAME")]
    resources: Vec<String>,
    /// Sync to this revision instead of the target revision (single-source apps).
    #[arg(long)]
    revision: Option<String>,
    /// Return once the sync is requested instead of waiting for it.
    #[arg(long = "async")]
    no_wait: bool,
    /// Replace resources that cannot be patched (delete and create them again).
    #[arg(long)]
    force: bool,
    /// How resources are synced: with hooks (default) or a plain apply skipping hooks.
    #[arg(long, value_enum, default_value_t)]
    strategy: Strategy,
    /// Sync only the resources that differ from Git.
    #[arg(long)]
    apply_out_of_sync_only: bool,
    /// Sync option such as `Replace=true` (repeatable).
    #[arg(long = "sync-option", value_name = "OPTION")]
    sync_options: Vec<String>,
    /// Give up waiting after this many seconds (0: no limit).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    timeout: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum Strategy {
    #[default]
    Hook,
    Apply,
}

#[derive(clap::Args, Debug)]
pub struct RollbackArgs {
    name: String,
    /// The history ID to roll back to (default: the deployment before the current one).
    id: Option<i64>,
    /// Delete resources that are not part of that revision.
    #[arg(long)]
    prune: bool,
    #[arg(long)]
    dry_run: bool,
    /// Return once the rollback is requested instead of waiting for it.
    #[arg(long = "async")]
    no_wait: bool,
    /// Give up waiting after this many seconds (0: no limit).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    timeout: u64,
}

#[derive(clap::Args, Debug)]
pub struct TerminateArgs {
    name: String,
}

#[derive(clap::Args, Debug)]
pub struct WaitArgs {
    name: String,
    /// Wait until the app is synced.
    #[arg(long)]
    sync: bool,
    /// Wait until the app is healthy.
    #[arg(long)]
    health: bool,
    /// Wait until no operation is requested or running.
    #[arg(long)]
    operation: bool,
    /// Wait until the app is suspended (with --health: healthy or suspended).
    #[arg(long)]
    suspended: bool,
    /// Wait until the app is degraded (with --health: healthy or degraded).
    #[arg(long)]
    degraded: bool,
    /// Give up after this many seconds (0: no limit).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    timeout: u64,
}

pub async fn sync(conn: &Conn, args: SyncArgs) -> anyhow::Result<ExitCode> {
    let name = &args.name;
    let app = get_app(conn, name).await?;
    let resources = args
        .resources
        .iter()
        .map(|r| parse_resource(r))
        .collect::<anyhow::Result<Vec<_>>>()?;
    check_resources_exist(&app, &resources)?;
    let mut sync_options = args.sync_options.clone();
    if args.apply_out_of_sync_only {
        sync_options.push("ApplyOutOfSyncOnly=true".to_string());
    }
    let strategy = SyncStrategyApply {
        force: args.force,
        ..Default::default()
    };
    let sync_strategy = match args.strategy {
        Strategy::Hook => SyncStrategy {
            hook: Some(strategy),
            ..Default::default()
        },
        Strategy::Apply => SyncStrategy {
            apply: Some(strategy),
            ..Default::default()
        },
    };
    match conn {
        Conn::Core(core) => {
            ensure_manual_sync_allowed(core, &app).await?;
            let revision =
                sync_revision(core, &app, args.revision.as_deref(), args.dry_run).await?;
            let operation = Operation {
                sync: Some(SyncOperation {
                    revision,
                    prune: args.prune,
                    dry_run: args.dry_run,
                    sync_strategy: Some(sync_strategy),
                    resources,
                    sync_options,
                    ..Default::default()
                }),
                initiated_by: OperationInitiator {
                    username: core.username(),
                    ..Default::default()
                },
                ..Default::default()
            };
            request_operation(core, name, operation).await?;
        }
        // Argo CD's ApplicationSyncRequest; the server resolves the revision.
        Conn::Server(api) => {
            let request = json!({
                "name": name,
                "revision": args.revision.clone().unwrap_or_default(),
                "prune": args.prune,
                "dryRun": args.dry_run,
                "strategy": sync_strategy,
                "resources": resources,
                "syncOptions": {"items": sync_options},
            });
            server::apps::operate(api, name, "sync", &request).await?;
        }
    }
    if args.no_wait {
        println!("sync of app {name} requested");
        return Ok(ExitCode::SUCCESS);
    }
    wait_for_operation(conn, name, args.timeout).await
}

pub async fn rollback(conn: &Conn, args: RollbackArgs) -> anyhow::Result<ExitCode> {
    let name = &args.name;
    let app = get_app(conn, name).await?;
    let history = app.status.clone().map(|s| s.history).unwrap_or_default();
    let entry = match args.id {
        Some(id) => history
            .iter()
            .find(|h| h.id == id)
            .with_context(|| format!("app {name} has no deployment with ID {id} in its history"))?,
        None if history.len() < 2 => {
            bail!("app {name} needs at least two deployments in its history to roll back")
        }
        None => &history[history.len() - 2],
    };
    if entry.source.is_none() && entry.sources.is_empty() {
        bail!(
            "app {name}: deployment {} records no source (deployed by Argo CD 0.11 or older); sync to its revision instead",
            entry.id
        );
    }
    let id = entry.id;
    match conn {
        Conn::Server(api) => {
            let request =
                json!({"name": name, "id": id, "prune": args.prune, "dryRun": args.dry_run});
            server::apps::operate(api, name, "rollback", &request).await?;
        }
        Conn::Core(core) => rollback_core(core, entry, &args).await?,
    }
    if args.no_wait {
        println!("rollback of app {name} to deployment {id} requested");
        return Ok(ExitCode::SUCCESS);
    }
    wait_for_operation(conn, name, args.timeout).await
}

/// Writes the rollback operation (built and checked by ferry-types, as the API server does).
async fn rollback_core(
    core: &Core,
    entry: &ferry_types::application::RevisionHistory,
    args: &RollbackArgs,
) -> anyhow::Result<()> {
    let initiator = OperationInitiator {
        username: core.username(),
        ..Default::default()
    };
    update_app(core, &args.name, |app| {
        let operation =
            app.rollback_operation(entry.id, args.prune, args.dry_run, initiator.clone())?;
        Ok(app.request_operation(&operation)?)
    })
    .await?;
    Ok(())
}

/// Stops the running operation as Argo CD does: its phase becomes `Terminating`, which the
/// controller acts on.
pub async fn terminate(conn: &Conn, args: TerminateArgs) -> anyhow::Result<ExitCode> {
    let name = &args.name;
    match conn {
        Conn::Server(api) => server::apps::terminate(api, name).await?,
        Conn::Core(core) => {
            update_app(core, name, |app| {
                let state = app
                    .status
                    .as_mut()
                    .and_then(|s| s.operation_state.as_mut())
                    .filter(|s| s.phase == OperationPhase::Running);
                let Some(state) = state else {
                    bail!("app {name}: no operation is running");
                };
                state.phase = OperationPhase::Terminating;
                Ok(())
            })
            .await?;
        }
    }
    println!("Application '{name}' operation terminating");
    Ok(ExitCode::SUCCESS)
}

pub async fn wait(conn: &Conn, args: WaitArgs) -> anyhow::Result<ExitCode> {
    let name = &args.name;
    let conditions = WaitConditions::from_args(&args);
    let mut last_line = String::new();
    let outcome = watch_app(conn, name, timeout(args.timeout), |app| {
        let app = app.with_context(|| format!("app {name} was deleted"))?;
        let line = progress_line(app);
        if line != last_line {
            println!("{line}");
            last_line = line;
        }
        Ok(conditions.hold(app).then(|| app.clone()))
    })
    .await?;
    match outcome {
        Watched::Done(app) => {
            print!("{}", app_summary(shown_namespace(conn, &app), &app));
            Ok(ExitCode::SUCCESS)
        }
        Watched::TimedOut(app) => bail!(
            "app {name}: timed out after {}s waiting for {}; {}",
            args.timeout,
            conditions.describe(),
            app.as_deref()
                .map_or_else(|| "no state seen".to_string(), progress_line)
        ),
    }
}

/// What `ferry app wait` waits for; sync, health and operation when nothing is named (argocd's
/// defaults).
#[derive(Debug, PartialEq, Eq)]
struct WaitConditions {
    sync: bool,
    health: bool,
    operation: bool,
    suspended: bool,
    degraded: bool,
}

impl WaitConditions {
    fn from_args(args: &WaitArgs) -> Self {
        let nothing =
            !(args.sync || args.health || args.operation || args.suspended || args.degraded);
        Self {
            sync: args.sync || nothing,
            health: args.health || nothing,
            operation: args.operation || nothing,
            suspended: args.suspended,
            degraded: args.degraded,
        }
    }

    /// The health codes that count as reached: with --health, suspended and degraded widen
    /// healthy; alone they are the goal.
    fn accepted_health(&self) -> Vec<HealthStatusCode> {
        let mut accepted = Vec::new();
        if self.health {
            accepted.push(HealthStatusCode::Healthy);
        }
        if self.suspended {
            accepted.push(HealthStatusCode::Suspended);
        }
        if self.degraded {
            accepted.push(HealthStatusCode::Degraded);
        }
        accepted
    }

    fn hold(&self, app: &Application) -> bool {
        let status = app.status.clone().unwrap_or_default();
        let synced = !self.sync || status.sync.status == SyncStatusCode::Synced;
        let accepted = self.accepted_health();
        let health = accepted.is_empty() || accepted.contains(&status.health.status);
        let operation = !self.operation || operation_done(app);
        synced && health && operation
    }

    fn describe(&self) -> String {
        let mut goals = Vec::new();
        if self.sync {
            goals.push("sync".to_string());
        }
        let health: Vec<String> = self
            .accepted_health()
            .iter()
            .map(|h| h.to_string())
            .collect();
        if !health.is_empty() {
            goals.push(format!("health {}", health.join(" or ")));
        }
        if self.operation {
            goals.push("the operation to finish".to_string());
        }
        goals.join(", ")
    }
}

/// No operation requested and none running.
fn operation_done(app: &Application) -> bool {
    let state = app.status.as_ref().and_then(|s| s.operation_state.as_ref());
    app.operation.is_none() && state.is_none_or(|s| s.phase.is_completed())
}

/// `app web: sync OutOfSync, health Progressing, operation Running`.
fn progress_line(app: &Application) -> String {
    let status = app.status.clone().unwrap_or_default();
    let operation = match (&app.operation, &status.operation_state) {
        (Some(_), state) if state.is_none() => "requested".to_string(),
        (_, Some(state)) => format!("{:?}", state.phase),
        (_, None) => "none".to_string(),
    };
    format!(
        "app {}: sync {}, health {}, operation {operation}",
        app.metadata.name.as_deref().unwrap_or_default(),
        status.sync.status,
        status.health.status
    )
}

/// `GROUP:KIND:NAME` or `GROUP:KIND:NAMESPACE/NAME` (the group is empty for the core group).
pub fn parse_resource(selector: &str) -> anyhow::Result<SyncOperationResource> {
    let parts: Vec<&str> = selector.split(':').collect();
    let [group, kind, name] = parts[..] else {
        bail!("--resource {selector:?}: expected GROUP:KIND:NAME or GROUP:KIND:NAMESPACE/NAME");
    };
    let (namespace, name) = name.split_once('/').unwrap_or(("", name));
    if kind.is_empty() || name.is_empty() {
        bail!("--resource {selector:?}: the kind and the name must not be empty");
    }
    Ok(SyncOperationResource {
        group: group.to_string(),
        kind: kind.to_string(),
        namespace: namespace.to_string(),
        name: name.to_string(),
        ..Default::default()
    })
}

/// Each selected resource must be one of the app's, once the controller has listed them.
fn check_resources_exist(
    app: &Application,
    selected: &[SyncOperationResource],
) -> anyhow::Result<()> {
    let known = app
        .status
        .as_ref()
        .map(|s| &s.resources[..])
        .unwrap_or_default();
    if known.is_empty() {
        return Ok(());
    }
    for wanted in selected {
        let found = known.iter().any(|r| {
            r.group == wanted.group
                && r.kind == wanted.kind
                && r.name == wanted.name
                && (wanted.namespace.is_empty() || r.namespace == wanted.namespace)
        });
        if !found {
            let name = app.metadata.name.as_deref().unwrap_or_default();
            bail!(
                "app {name} has no resource {}:{}:{}{}",
                wanted.group,
                wanted.kind,
                if wanted.namespace.is_empty() {
                    String::new()
                } else {
                    format!("{}/", wanted.namespace)
                },
                wanted.name
            );
        }
    }
    Ok(())
}

/// The revision a sync request names, as Argo CD's API server works it out: nothing with
/// automated sync (the controller syncs to the target), the version as given for charts, and
/// the commit a Git revision resolves to now, so the sync deploys what was asked for even if
/// the branch moves on.
async fn sync_revision(
    core: &Core,
    app: &Application,
    requested: Option<&str>,
    dry_run: bool,
) -> anyhow::Result<String> {
    let name = app.metadata.name.as_deref().unwrap_or_default();
    if app.is_multi_source() {
        if requested.is_some() {
            bail!("app {name} has several sources; --revision is for single-source apps");
        }
        return Ok(String::new());
    }
    let Some(source) = app.sources().first() else {
        bail!("app {name} has no source");
    };
    let automated = app
        .spec
        .sync_policy
        .as_ref()
        .is_some_and(|p| p.is_automated());
    if automated && !dry_run {
        if let Some(revision) = requested.filter(|r| *r != source.target_revision) {
            bail!(
                "cannot sync app {name} to {revision}: auto-sync is enabled and syncs to {:?}",
                source.target_revision
            );
        }
        return Ok(String::new());
    }
    let revision = requested.unwrap_or(&source.target_revision);
    if source.is_chart() {
        return Ok(revision.to_string());
    }
    let git = rendering::repo_cache(core.git_credentials().await?);
    let resolved = git
        .for_project(app.project())
        .resolve(&source.repo_url, revision)
        .await
        .with_context(|| {
            format!(
                "app {name}: resolving revision {revision:?} of {}",
                source.repo_url
            )
        })?;
    Ok(resolved.sha)
}

/// As Argo CD's API server (and so `argocd --core`) checks: a sync asked for by hand is refused
/// while a window of the app's project blocks it.
async fn ensure_manual_sync_allowed(core: &Core, app: &Application) -> anyhow::Result<()> {
    let project = core
        .projects()
        .get(app.project())
        .await
        .with_context(|| format!("reading AppProject {}", app.project()))?;
    let windows = project
        .sync_windows(app)
        .map_err(|err| anyhow::anyhow!("cannot sync: invalid sync window: {err}"))?;
    if !windows.can_sync(jiff::Timestamp::now(), true) {
        bail!("cannot sync: blocked by sync window");
    }
    Ok(())
}

/// Writes the operation unless one is requested or running.
async fn request_operation(core: &Core, name: &str, operation: Operation) -> anyhow::Result<()> {
    update_app(core, name, |app| Ok(app.request_operation(&operation)?)).await?;
    Ok(())
}

/// Waits for the requested operation to finish and prints its outcome; an error unless it
/// succeeded.
async fn wait_for_operation(
    conn: &Conn,
    name: &str,
    timeout_secs: u64,
) -> anyhow::Result<ExitCode> {
    let outcome = watch_app(conn, name, timeout(timeout_secs), |app| {
        let app = app.with_context(|| format!("app {name} was deleted during the operation"))?;
        let finished = app
            .status
            .as_ref()
            .and_then(|s| s.operation_state.as_ref())
            .filter(|s| s.phase.is_completed());
        Ok((app.operation.is_none() && finished.is_some()).then(|| app.clone()))
    })
    .await?;
    let app = match outcome {
        Watched::Done(app) => app,
        Watched::TimedOut(app) => bail!(
            "app {name}: the operation did not finish within {timeout_secs}s; {}",
            app.as_deref()
                .map_or_else(|| "no state seen".to_string(), progress_line)
        ),
    };
    print!("{}", app_summary(shown_namespace(conn, &app), &app));
    let state = app
        .status
        .as_ref()
        .and_then(|s| s.operation_state.as_ref())
        .expect("finished above");
    println!();
    print!("{}", operation_summary(state));
    let table = resource_table(&app);
    if !table.is_empty() {
        println!();
        print!("{}", table.render());
    }
    if state.phase != OperationPhase::Succeeded {
        bail!("app {name}: operation {:?}: {}", state.phase, state.message);
    }
    Ok(ExitCode::SUCCESS)
}

fn timeout(seconds: u64) -> Option<Duration> {
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

/// How watching an app ended.
pub enum Watched<T> {
    Done(T),
    /// With the last state seen, if any.
    TimedOut(Option<Box<Application>>),
}

/// Watches one app until `check` returns a value (it is given `None` once the app is gone),
/// or until `timeout`.
pub async fn watch_app<T>(
    conn: &Conn,
    name: &str,
    timeout: Option<Duration>,
    check: impl FnMut(Option<&Application>) -> anyhow::Result<Option<T>>,
) -> anyhow::Result<Watched<T>> {
    match conn {
        Conn::Core(core) => watch_core(core, name, timeout, check).await,
        Conn::Server(api) => server::apps::watch(api, name, timeout, false, check).await,
    }
}

/// Watches through the Kubernetes API. Watch errors are retried a few times: the watcher
/// resumes by itself.
async fn watch_core<T>(
    core: &Core,
    name: &str,
    timeout: Option<Duration>,
    mut check: impl FnMut(Option<&Application>) -> anyhow::Result<Option<T>>,
) -> anyhow::Result<Watched<T>> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let (apps, plain) = core.app_api(name).await?;
    let mut events = std::pin::pin!(watch_object(apps, plain));
    let mut last = None;
    let mut errors = 0;
    loop {
        let next = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, events.next()).await {
                Ok(next) => next,
                Err(_) => return Ok(Watched::TimedOut(last.map(Box::new))),
            },
            None => events.next().await,
        };
        match next {
            Some(Ok(app)) => {
                errors = 0;
                if let Some(done) = check(app.as_ref())? {
                    return Ok(Watched::Done(done));
                }
                last = app;
            }
            Some(Err(err)) => {
                errors += 1;
                if errors >= WATCH_ERRORS {
                    return Err(err).with_context(|| format!("watching app {name}"));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            None => bail!("the watch on app {name} ended"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_selectors_are_argocds() {
        let r = parse_resource("apps:Deployment:web/guestbook").unwrap();
        assert_eq!(
            (
                r.group.as_str(),
                r.kind.as_str(),
                r.namespace.as_str(),
                r.name.as_str()
            ),
            ("apps", "Deployment", "web", "guestbook")
        );
        let r = parse_resource(":Service:guestbook").unwrap();
        assert_eq!((r.group.as_str(), r.namespace.as_str()), ("", ""));
        for bad in [
            "Deployment/guestbook",
            "a:b:c:d",
            "apps::x",
            "apps:Deployment:web/",
        ] {
            assert!(parse_resource(bad).is_err(), "{bad} was accepted");
        }
    }

    fn app(yaml: &str) -> Application {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn selected_resources_must_belong_to_the_app() {
        let a = app(
            "metadata: {name: web}\nspec: {}\nstatus: {resources: [{group: apps, kind: Deployment, namespace: w, name: web}]}",
        );
        check_resources_exist(&a, &[parse_resource("apps:Deployment:web").unwrap()]).unwrap();
        let err = check_resources_exist(&a, &[parse_resource(":Service:w/web").unwrap()])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "app web has no resource :Service:w/web");
        // Before the controller has listed resources, nothing can be checked.
        check_resources_exist(&app("spec: {}"), &[parse_resource(":Service:x").unwrap()]).unwrap();
    }

    #[test]
    fn a_second_operation_is_refused() {
        let mut running = app(
            "metadata: {name: web}\nspec: {}\nstatus: {operationState: {phase: Running, operation: {}}}",
        );
        let err = running
            .request_operation(&Operation::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "application web: another operation is already in progress"
        );
        let mut requested = app("metadata: {name: web}\nspec: {}\noperation: {sync: {}}");
        assert!(requested.request_operation(&Operation::default()).is_err());
        let mut done = app(
            "metadata: {name: web}\nspec: {}\nstatus: {operationState: {phase: Failed, operation: {}}}",
        );
        done.request_operation(&Operation::default()).unwrap();
        assert!(done.operation.is_some());
        assert!(done.status.unwrap().operation_state.is_none());
    }

    #[test]
    fn wait_defaults_and_health_combinations_follow_argocd() {
        let args = |flags: &[&str]| {
            use clap::Parser;
            #[derive(Parser)]
            struct W {
                #[command(flatten)]
                args: WaitArgs,
            }
            W::try_parse_from([&["wait", "web"], flags].concat())
                .unwrap()
                .args
        };
        let all = WaitConditions::from_args(&args(&[]));
        assert!(all.sync && all.health && all.operation);
        let suspended = WaitConditions::from_args(&args(&["--suspended"]));
        assert_eq!(suspended.accepted_health(), [HealthStatusCode::Suspended]);
        assert!(!suspended.sync);
        let either = WaitConditions::from_args(&args(&["--health", "--degraded"]));
        assert_eq!(
            either.accepted_health(),
            [HealthStatusCode::Healthy, HealthStatusCode::Degraded]
        );

        let synced = app(
            "metadata: {name: web}\nspec: {}\nstatus: {sync: {status: Synced}, health: {status: Progressing}}",
        );
        assert!(!all.hold(&synced));
        assert!(WaitConditions::from_args(&args(&["--sync", "--operation"])).hold(&synced));
        assert_eq!(
            progress_line(&synced),
            "app web: sync Synced, health Progressing, operation none"
        );
        assert_eq!(
            all.describe(),
            "sync, health Healthy, the operation to finish"
        );
    }
}
