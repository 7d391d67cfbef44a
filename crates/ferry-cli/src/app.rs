//! `ferry app`: Applications, read and written directly through the Kubernetes API (core mode)
//! or through an API server, with argocd's command names, flags and output either way.

mod confirm;
mod delete;
mod diff;
mod logs;
mod manifests;
mod operation;
mod resources;
mod show;
mod source;
mod spec;

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use ferry_types::{AppProject, Application};

pub use operation::Watched;
pub use show::app_table;

use crate::core::{Core, KubeArgs};
use crate::server::Mode;
use crate::server::client::ApiClient;

/// Where the app verbs read and write: the Kubernetes API, or an API server.
pub enum Conn {
    Core(Core),
    Server(ApiClient),
}

impl Conn {
    pub async fn connect(kube: &KubeArgs, mode: Mode) -> anyhow::Result<Self> {
        Ok(match mode {
            Mode::Core => Self::Core(Core::connect(kube).await?),
            Mode::Server(session) => Self::Server(session.api),
        })
    }

    /// The control namespace an app without one is shown in.
    pub fn namespace(&self) -> &str {
        match self {
            Self::Core(core) => &core.namespace,
            Self::Server(_) => "argocd",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create an application (from flags, a manifest, or both).
    Create(spec::CreateArgs),
    /// List applications.
    List(show::ListArgs),
    /// Show an application: its state, operation and resources.
    Get(show::GetArgs),
    /// Compare the rendered manifests with the live objects (exit 1 when they differ).
    Diff(diff::Args),
    /// Request a sync and wait for it.
    Sync(operation::SyncArgs),
    /// Wait until an application is synced, healthy and has no operation running.
    Wait(operation::WaitArgs),
    /// Show the deployment history.
    History(show::HistoryArgs),
    /// Sync to a revision from the history again.
    Rollback(operation::RollbackArgs),
    /// Change an application's spec: only the given flags change.
    Set(spec::SetArgs),
    /// Delete applications, and with them their resources unless --cascade=false.
    Delete(delete::Args),
    /// Approve the deletions waiting for confirmation (Delete=confirm).
    ConfirmDeletion(confirm::Args),
    /// Print an application's manifests, rendered from Git or as they are live.
    Manifests(manifests::Args),
    /// Stop the running operation.
    TerminateOp(operation::TerminateArgs),
    /// List the application's resources.
    Resources(resources::Args),
    /// Print the log of one of the application's pods.
    Logs(logs::Args),
}

pub async fn run(kube: &KubeArgs, mode: Mode, args: Args) -> anyhow::Result<ExitCode> {
    // A diff's errors exit 2, telling them apart from "differences found" (1).
    if let Command::Diff(args) = args.command {
        return Ok(match diff_command(kube, mode, args).await {
            Ok(code) => code,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::from(diff::EXIT_ERROR)
            }
        });
    }
    let conn = Conn::connect(kube, mode).await?;
    match args.command {
        Command::Create(args) => spec::create(&conn, args).await,
        Command::List(args) => show::list(&conn, args).await,
        Command::Get(args) => show::get(&conn, args).await,
        Command::Sync(args) => operation::sync(&conn, args).await,
        Command::Wait(args) => operation::wait(&conn, args).await,
        Command::History(args) => show::history(&conn, args).await,
        Command::Rollback(args) => operation::rollback(&conn, args).await,
        Command::Set(args) => spec::set(&conn, args).await,
        Command::Delete(args) => delete::run(&conn, args).await,
        Command::ConfirmDeletion(args) => confirm::run(&conn, args).await,
        Command::Manifests(args) => manifests::run(&conn, args).await,
        Command::TerminateOp(args) => operation::terminate(&conn, args).await,
        Command::Resources(args) => resources::run(&conn, args).await,
        Command::Logs(args) => logs::run(&conn, args).await,
        Command::Diff(_) => unreachable!("handled above"),
    }
}

async fn diff_command(kube: &KubeArgs, mode: Mode, args: diff::Args) -> anyhow::Result<ExitCode> {
    diff::run(&Conn::connect(kube, mode).await?, args).await
}

/// The app, or an error naming it (and in core mode the namespace looked in).
pub async fn get_app(conn: &Conn, name: &str) -> anyhow::Result<Application> {
    match conn {
        Conn::Core(core) => {
            let (apps, plain) = core.app_api(name).await?;
            apps.get_opt(plain)
                .await
                .with_context(|| format!("reading app {name}"))?
                .with_context(|| {
                    format!(
                        "app {plain} not found in namespace {}",
                        apps.namespace().unwrap_or(&core.namespace)
                    )
                })
        }
        Conn::Server(api) => crate::server::apps::get(api, name, None).await,
    }
}

/// The app's AppProject, or an error naming the one it references.
pub async fn project_of(core: &Core, app: &Application) -> anyhow::Result<AppProject> {
    let name = app.metadata.name.as_deref().unwrap_or_default();
    let project = app.project();
    core.projects()
        .get_opt(project)
        .await
        .with_context(|| format!("reading AppProject {project}"))?
        .with_context(|| format!("app {name} references project {project} which does not exist"))
}

/// Changes the app `name` names (`<namespace>/<name>` outside the control namespace) with
/// [`crate::core::update`].
pub async fn update_app(
    core: &Core,
    name: &str,
    change: impl FnMut(&mut Application) -> anyhow::Result<()>,
) -> anyhow::Result<(Application, bool)> {
    let (apps, plain) = core.app_api(name).await?;
    crate::core::update(&apps, "app", plain, change).await
}
