//! `ferry app list`, `ferry app get` and `ferry app history`, and the summaries and tables the
//! operation commands print too, laid out as argocd prints them.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use ferry_types::application::{
    OperationState, REFRESH_ANNOTATION, ResourceStatus, SyncStatusCode,
};
use ferry_types::source::ApplicationSource;
use ferry_types::{Application, ResourceKey};
use kube::Api;
use kube::api::ListParams;

use super::operation::{Watched, watch_app};
use super::{Conn, get_app, update_app};
use crate::core::{Core, is_not_found};
use crate::output::{ListFormat, ObjectFormat, Table, or_none, print_json, print_yaml, summary};
use crate::server;

/// How long `get --refresh` waits for the controller to take the refresh request.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Only apps of this project (repeatable).
    #[arg(long, short = 'p')]
    project: Vec<String>,
    /// Only apps matching this label selector, e.g. `team=web`.
    #[arg(long, short = 'l')]
    selector: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: ListFormat,
}

#[derive(clap::Args, Debug)]
pub struct GetArgs {
    name: String,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: ObjectFormat,
    /// Ask the controller to compare with Git again first, and wait for it.
    #[arg(long)]
    refresh: bool,
    /// Like --refresh, also dropping cached manifests.
    #[arg(long, conflicts_with = "refresh")]
    hard_refresh: bool,
}

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    name: String,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: ObjectFormat,
}

pub async fn list(conn: &Conn, args: ListArgs) -> anyhow::Result<ExitCode> {
    let apps = match conn {
        Conn::Core(core) => list_core(core, &args).await?,
        Conn::Server(api) => {
            server::apps::list(api, &args.project, args.selector.as_deref()).await?
        }
    };
    match args.output {
        ListFormat::Json => print_json(&apps)?,
        ListFormat::Yaml => print_yaml(&apps)?,
        ListFormat::Name => {
            for app in &apps {
                println!("{}", listed_name(conn, app));
            }
        }
        ListFormat::Wide => {
            let mut named = apps.clone();
            for app in &mut named {
                app.metadata.name = Some(listed_name(conn, app));
            }
            print!("{}", app_table(&named).render());
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn list_core(core: &Core, args: &ListArgs) -> anyhow::Result<Vec<Application>> {
    let mut params = ListParams::default();
    if let Some(selector) = &args.selector {
        params = params.labels(selector);
    }
    // With apps in other namespaces served, those too (named `<namespace>/<name>`).
    let allowed = core.app_namespaces().await?;
    let api = if allowed.control_only() {
        core.apps()
    } else {
        Api::all(core.client.clone())
    };
    let result = api.list(&params).await.map_err(anyhow::Error::from);
    let apps = match result {
        Ok(list) => list.items,
        Err(err) if is_not_found(&err) => bail!(
            "the Application CRD is not installed in this cluster (`ferry app create` installs it)"
        ),
        Err(err) => {
            return Err(err).with_context(|| format!("listing apps in {}", core.namespace));
        }
    };
    Ok(apps
        .into_iter()
        .filter(|app| allowed.allows(app.metadata.namespace.as_deref().unwrap_or_default()))
        .filter(|app| args.project.is_empty() || args.project.iter().any(|p| p == app.project()))
        .collect())
}

/// How a listing names an app: `<namespace>/<name>` for one outside the control namespace in
/// core mode, as `get` and the other verbs take it.
fn listed_name(conn: &Conn, app: &Application) -> String {
    let name = app.metadata.name.clone().unwrap_or_default();
    match (conn, app.metadata.namespace.as_deref()) {
        (Conn::Core(core), Some(namespace)) if namespace != core.namespace => {
            format!("{namespace}/{name}")
        }
        _ => name,
    }
}

pub fn app_table(apps: &[Application]) -> Table {
    let mut table = Table::new(&[
        "NAME",
        "CLUSTER",
        "NAMESPACE",
        "PROJECT",
        "STATUS",
        "HEALTH",
        "SYNCPOLICY",
        "CONDITIONS",
        "REPO",
        "PATH",
        "TARGET",
    ]);
    for app in apps {
        let status = app.status.clone().unwrap_or_default();
        let source = first_source(app);
        table.row(vec![
            app.metadata.name.clone().unwrap_or_default(),
            cluster_of(app),
            app.spec.destination.namespace.clone(),
            app.project().to_string(),
            status.sync.status.to_string(),
            status.health.status.to_string(),
            sync_policy_short(app).to_string(),
            conditions_summary(app),
            source.repo_url,
            source.path,
            source.target_revision,
        ]);
    }
    table
}

pub async fn get(conn: &Conn, args: GetArgs) -> anyhow::Result<ExitCode> {
    let refresh = match (args.refresh, args.hard_refresh) {
        (_, true) => Some("hard"),
        (true, false) => Some("normal"),
        (false, false) => None,
    };
    let app = match (conn, refresh) {
        (Conn::Core(core), Some(kind)) => refresh_app(conn, core, &args.name, kind).await?,
        // The server does the refresh and answers once the controller has done it.
        (Conn::Server(api), Some(kind)) => server::apps::get(api, &args.name, Some(kind)).await?,
        (_, None) => get_app(conn, &args.name).await?,
    };
    match args.output {
        ObjectFormat::Json => print_json(&app)?,
        ObjectFormat::Yaml => print_yaml(&app)?,
        ObjectFormat::Wide => {
            print!("{}", app_summary(shown_namespace(conn, &app), &app));
            if let Some(state) = app.status.as_ref().and_then(|s| s.operation_state.as_ref()) {
                println!();
                print!("{}", operation_summary(state));
            }
            let table = resource_table(&app);
            if !table.is_empty() {
                println!();
                print!("{}", table.render());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The app's namespace, else the control namespace.
pub fn shown_namespace<'a>(conn: &'a Conn, app: &'a Application) -> &'a str {
    app.metadata
        .namespace
        .as_deref()
        .unwrap_or_else(|| conn.namespace())
}

/// Sets the refresh annotation and waits until the controller has done the refresh (it
/// removes the annotation then).
async fn refresh_app(
    conn: &Conn,
    core: &Core,
    name: &str,
    kind: &str,
) -> anyhow::Result<Application> {
    update_app(core, name, |app| {
        app.metadata
            .annotations
            .get_or_insert_default()
            .insert(REFRESH_ANNOTATION.to_string(), kind.to_string());
        Ok(())
    })
    .await?;
    let outcome = watch_app(conn, name, Some(REFRESH_TIMEOUT), |app| {
        let app = app.with_context(|| format!("app {name} was deleted"))?;
        let pending = app
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(REFRESH_ANNOTATION));
        Ok((!pending).then(|| app.clone()))
    })
    .await?;
    match outcome {
        Watched::Done(app) => Ok(app),
        Watched::TimedOut(_) => bail!(
            "app {name}: the {kind} refresh was not done within {}s; is the controller running?",
            REFRESH_TIMEOUT.as_secs()
        ),
    }
}

/// The `Name:`, `Project:`, ... block of `app get`.
pub fn app_summary(namespace: &str, app: &Application) -> String {
    let status = app.status.clone().unwrap_or_default();
    let name = app.metadata.name.as_deref().unwrap_or_default();
    let dest = &app.spec.destination;
    let mut fields = vec![
        ("Name", format!("{namespace}/{name}")),
        ("Project", app.project().to_string()),
        ("Server", cluster_of(app)),
        ("Namespace", dest.namespace.clone()),
    ];
    for (i, source) in app.sources().iter().enumerate() {
        if app.is_multi_source() {
            fields.push(("Source", format!("{}", i + 1)));
        }
        fields.push(("Repo", source.repo_url.clone()));
        fields.push(("Target", source.target_revision.clone()));
        if source.is_chart() {
            fields.push(("Chart", source.chart.clone()));
        } else {
            fields.push(("Path", source.path.clone()));
        }
    }
    let sync_policy = if app
        .spec
        .sync_policy
        .as_ref()
        .is_some_and(|p| p.is_automated())
    {
        let prune = app
            .spec
            .sync_policy
            .as_ref()
            .and_then(|p| p.automated.as_ref())
            .is_some_and(|a| a.prune);
        if prune {
            "Automated (Prune)"
        } else {
            "Automated"
        }
    } else {
        "Manual"
    };
    fields.push(("Sync Policy", sync_policy.to_string()));
    fields.push(("Sync Status", sync_status(app)));
    let health = &status.health;
    let mut health_text = health.status.to_string();
    if !health.message.is_empty() {
        health_text.push_str(&format!(" ({})", health.message));
    }
    fields.push(("Health Status", health_text));
    if let Some(operation) = &app.operation {
        let by = &operation.initiated_by;
        let who = if by.automated {
            "automated sync policy".to_string()
        } else {
            or_none(&by.username)
        };
        fields.push((
            "Operation",
            format!("Sync requested by {who}, not started yet"),
        ));
    }
    let mut out = summary(&fields);
    if !status.conditions.is_empty() {
        let mut table = Table::new(&["CONDITION", "MESSAGE", "LAST TRANSITION"]);
        for condition in &status.conditions {
            table.row(vec![
                condition.condition_type.clone(),
                condition.message.clone(),
                condition
                    .last_transition_time
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .unwrap_or_default(),
            ]);
        }
        out.push('\n');
        out.push_str(&table.render());
    }
    out
}

/// `Synced to main (1a2b3c4)`, as argocd says it.
fn sync_status(app: &Application) -> String {
    let status = app.status.clone().unwrap_or_default();
    let target = first_source(app).target_revision;
    let target = if target.is_empty() {
        "HEAD".to_string()
    } else {
        target
    };
    let mut text = status.sync.status.to_string();
    match status.sync.status {
        SyncStatusCode::Synced => text.push_str(&format!(" to {target}")),
        SyncStatusCode::OutOfSync => text.push_str(&format!(" from {target}")),
        SyncStatusCode::Unknown => {}
    }
    let revision = if app.is_multi_source() {
        status
            .sync
            .revisions
            .iter()
            .map(|r| short_sha(r))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        short_sha(&status.sync.revision).to_string()
    };
    if !revision.is_empty() && !target.starts_with(&revision) {
        text.push_str(&format!(" ({revision})"));
    }
    text
}

/// The `Operation:`, `Phase:`, ... block of the last operation.
pub fn operation_summary(state: &OperationState) -> String {
    let sync = state.operation.sync.clone().unwrap_or_default();
    let result = state.sync_result.clone().unwrap_or_default();
    let revision = [
        result.revision.clone(),
        result.revisions.join(", "),
        sync.revision.clone(),
    ]
    .into_iter()
    .find(|r| !r.is_empty())
    .unwrap_or_default();
    let mut fields = vec![
        ("Operation", "Sync".to_string()),
        ("Sync Revision", revision),
        ("Phase", format!("{:?}", state.phase)),
    ];
    if let Some(started) = &state.started_at {
        fields.push(("Start", started.0.to_string()));
    }
    if let Some(finished) = &state.finished_at {
        fields.push(("Finished", finished.0.to_string()));
        if let Some(started) = &state.started_at {
            let seconds = finished.0.as_second() - started.0.as_second();
            fields.push(("Duration", format!("{seconds}s")));
        }
    }
    fields.push(("Message", state.message.clone()));
    summary(&fields)
}

/// GROUP KIND NAMESPACE NAME STATUS HEALTH HOOK MESSAGE: the resources of the last operation
/// with their current state, then the other resources of the app (argocd's order).
pub fn resource_table(app: &Application) -> Table {
    let status = app.status.clone().unwrap_or_default();
    let mut by_key: BTreeMap<ResourceKey, &ResourceStatus> =
        status.resources.iter().map(|r| (r.key(), r)).collect();
    let mut table = Table::new(&[
        "GROUP",
        "KIND",
        "NAMESPACE",
        "NAME",
        "STATUS",
        "HEALTH",
        "HOOK",
        "MESSAGE",
    ]);
    let results = status
        .operation_state
        .as_ref()
        .and_then(|s| s.sync_result.as_ref())
        .map(|r| r.resources.clone())
        .unwrap_or_default();
    let mut seen = BTreeSet::new();
    for result in &results {
        let key = result.key();
        // A hook's row shows its phase and result; a resource's its current state.
        let (sync, health) = match by_key.get(&key) {
            Some(resource) if result.hook_type.is_none() => (
                resource.status.map(|s| s.to_string()).unwrap_or_default(),
                resource
                    .health
                    .as_ref()
                    .map(|h| h.status.to_string())
                    .unwrap_or_default(),
            ),
            _ => (
                result
                    .hook_phase
                    .map(|p| format!("{p:?}"))
                    .unwrap_or_default(),
                result.status.map(|s| format!("{s:?}")).unwrap_or_default(),
            ),
        };
        table.row(vec![
            result.group.clone(),
            result.kind.clone(),
            result.namespace.clone(),
            result.name.clone(),
            sync,
            health,
            result
                .hook_type
                .map(|h| format!("{h:?}"))
                .unwrap_or_default(),
            result.message.clone(),
        ]);
        seen.insert(key);
    }
    by_key.retain(|key, _| !seen.contains(key));
    for resource in by_key.values() {
        table.row(vec![
            resource.group.clone(),
            resource.kind.clone(),
            resource.namespace.clone(),
            resource.name.clone(),
            resource.status.map(|s| s.to_string()).unwrap_or_default(),
            resource
                .health
                .as_ref()
                .map(|h| h.status.to_string())
                .unwrap_or_default(),
            String::new(),
            resource
                .health
                .as_ref()
                .map(|h| h.message.clone())
                .unwrap_or_default(),
        ]);
    }
    table
}

pub async fn history(conn: &Conn, args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let app = get_app(conn, &args.name).await?;
    let history = app.status.map(|s| s.history).unwrap_or_default();
    match args.output {
        ObjectFormat::Json => print_json(&history)?,
        ObjectFormat::Yaml => print_yaml(&history)?,
        ObjectFormat::Wide => {
            let mut table = Table::new(&["ID", "DATE", "REVISION"]);
            for entry in &history {
                let revision = if entry.sources.is_empty() {
                    let target = entry.source.as_ref().map(|s| s.target_revision.clone());
                    revision_label(&target.unwrap_or_default(), &entry.revision)
                } else {
                    entry
                        .sources
                        .iter()
                        .zip(
                            entry
                                .revisions
                                .iter()
                                .chain(std::iter::repeat(&String::new())),
                        )
                        .map(|(source, revision)| revision_label(&source.target_revision, revision))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                table.row(vec![
                    entry.id.to_string(),
                    entry
                        .deployed_at
                        .as_ref()
                        .map(|t| t.0.to_string())
                        .unwrap_or_default(),
                    revision,
                ]);
            }
            print!("{}", table.render());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `main (1a2b3c4)`: the target as written and the commit it was.
fn revision_label(target: &str, revision: &str) -> String {
    let target = if target.is_empty() { "HEAD" } else { target };
    if revision.len() >= 7 && revision != target {
        format!("{target} ({})", short_sha(revision))
    } else {
        target.to_string()
    }
}

fn short_sha(revision: &str) -> &str {
    let is_sha = revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit());
    if is_sha { &revision[..7] } else { revision }
}

/// The first source (argocd's `GetSource`), or an empty one.
fn first_source(app: &Application) -> ApplicationSource {
    app.sources().first().cloned().unwrap_or_default()
}

/// The destination cluster as given: the server URL, else the name.
fn cluster_of(app: &Application) -> String {
    let dest = &app.spec.destination;
    if dest.server.is_empty() {
        dest.name.clone()
    } else {
        dest.server.clone()
    }
}

/// `Manual`, `Auto` or `Auto-Prune`.
fn sync_policy_short(app: &Application) -> &'static str {
    match &app.spec.sync_policy {
        Some(policy) if policy.is_automated() => {
            if policy.automated.as_ref().is_some_and(|a| a.prune) {
                "Auto-Prune"
            } else {
                "Auto"
            }
        }
        _ => "Manual",
    }
}

/// Condition types with their counts, e.g. `OrphanedResourceWarning,SyncError(2)`; `<none>`.
fn conditions_summary(app: &Application) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for condition in app.status.iter().flat_map(|s| &s.conditions) {
        *counts.entry(condition.condition_type.as_str()).or_default() += 1;
    }
    let items: Vec<String> = counts
        .into_iter()
        .map(|(kind, n)| {
            if n > 1 {
                format!("{kind}({n})")
            } else {
                kind.to_string()
            }
        })
        .collect();
    or_none(&items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(yaml: &str) -> Application {
        serde_yaml::from_str(yaml).unwrap()
    }

    const SYNCED: &str = r#"
metadata: {name: guestbook, namespace: argocd}
spec:
  project: default
  source: {repoURL: "https://github.com/argoproj/argocd-example-apps", path: guestbook, targetRevision: main}
  destination: {server: "https://kubernetes.default.svc", namespace: web}
  syncPolicy: {automated: {prune: true}}
status:
  sync: {status: Synced, revision: 53e28ff20cc530b9ada2173fbbd64d48338583ba}
  health: {status: Healthy}
  conditions:
    - {type: OrphanedResourceWarning, message: "1 orphan"}
    - {type: SyncError, message: a}
    - {type: SyncError, message: b}
  resources:
    - {version: v1, kind: Service, namespace: web, name: guestbook-ui, status: Synced, health: {status: Healthy}}
    - {group: apps, version: v1, kind: Deployment, namespace: web, name: guestbook-ui, status: Synced, health: {status: Progressing, message: "rolling out"}}
  operationState:
    phase: Succeeded
    message: successfully synced (all tasks run)
    startedAt: "2024-05-01T10:00:00Z"
    finishedAt: "2024-05-01T10:00:08Z"
    operation: {sync: {revision: 53e28ff20cc530b9ada2173fbbd64d48338583ba}}
    syncResult:
      revision: 53e28ff20cc530b9ada2173fbbd64d48338583ba
      resources:
        - {group: apps, version: v1, kind: Deployment, namespace: web, name: guestbook-ui, status: Synced, message: deployment.apps/guestbook-ui configured}
        - {group: batch, version: v1, kind: Job, namespace: web, name: migrate, status: Synced, hookType: PreSync, hookPhase: Succeeded, message: job completed}
  history:
    - {id: 1, revision: 1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, deployedAt: "2024-04-01T09:00:00Z", source: {repoURL: r, targetRevision: main}}
"#;

    #[test]
    fn list_rows_are_argocds_columns() {
        let table = app_table(&[app(SYNCED)]).render();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("NAME       CLUSTER"), "{table}");
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "guestbook",
                "https://kubernetes.default.svc",
                "web",
                "default",
                "Synced",
                "Healthy",
                "Auto-Prune",
                "OrphanedResourceWarning,SyncError(2)",
                "https://github.com/argoproj/argocd-example-apps",
                "guestbook",
                "main"
            ]
        );
    }

    #[test]
    fn get_shows_summary_operation_and_resources() {
        let app = app(SYNCED);
        let text = app_summary("argocd", &app);
        assert!(
            text.contains("Name:           argocd/guestbook\n"),
            "{text}"
        );
        assert!(
            text.contains("Sync Policy:    Automated (Prune)\n"),
            "{text}"
        );
        assert!(
            text.contains("Sync Status:    Synced to main (53e28ff)\n"),
            "{text}"
        );
        assert!(text.contains("CONDITION                MESSAGE"), "{text}");

        let state = app
            .status
            .as_ref()
            .unwrap()
            .operation_state
            .as_ref()
            .unwrap();
        let op = operation_summary(state);
        assert!(op.contains("Phase:          Succeeded\n"), "{op}");
        assert!(op.contains("Duration:       8s\n"), "{op}");

        let rows: Vec<Vec<String>> = resource_table(&app)
            .render()
            .lines()
            .map(|l| {
                l.split("  ")
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(String::from)
                    .collect()
            })
            .collect();
        assert_eq!(
            rows[1],
            [
                "apps",
                "Deployment",
                "web",
                "guestbook-ui",
                "Synced",
                "Progressing",
                "deployment.apps/guestbook-ui configured"
            ]
        );
        assert_eq!(
            rows[2],
            [
                "batch",
                "Job",
                "web",
                "migrate",
                "Succeeded",
                "Synced",
                "PreSync",
                "job completed"
            ]
        );
        assert_eq!(
            rows[3],
            ["Service", "web", "guestbook-ui", "Synced", "Healthy"]
        );
    }

    #[test]
    fn history_labels_show_target_and_commit() {
        assert_eq!(
            revision_label("main", "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            "main (1111111)"
        );
        assert_eq!(revision_label("", ""), "HEAD");
        assert_eq!(revision_label("1.2.3", "1.2.3"), "1.2.3");
    }
}
