//! `ferry app`: Applications in the control namespace, read and written directly through the
//! Kubernetes API, with argocd's command names, flags and output.

mod delete;
mod diff;
mod manifests;
mod operation;
mod show;
mod source;
mod spec;

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use ferry_types::Application;
use kube::Api;

use crate::core::{Core, KubeArgs};

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
    /// Print an application's manifests, rendered from Git or as they are live.
    Manifests(manifests::Args),
}

pub async fn run(kube: &KubeArgs, args: Args) -> anyhow::Result<ExitCode> {
    // A diff's errors exit 2, telling them apart from "differences found" (1).
    if let Command::Diff(args) = args.command {
        return Ok(match diff_command(kube, args).await {
            Ok(code) => code,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::from(diff::EXIT_ERROR)
            }
        });
    }
    let core = Core::connect(kube).await?;
    match args.command {
        Command::Create(args) => spec::create(&core, args).await,
        Command::List(args) => show::list(&core, args).await,
        Command::Get(args) => show::get(&core, args).await,
        Command::Sync(args) => operation::sync(&core, args).await,
        Command::Wait(args) => operation::wait(&core, args).await,
        Command::History(args) => show::history(&core, args).await,
        Command::Rollback(args) => operation::rollback(&core, args).await,
        Command::Set(args) => spec::set(&core, args).await,
        Command::Delete(args) => delete::run(&core, args).await,
        Command::Manifests(args) => manifests::run(&core, args).await,
        Command::Diff(_) => unreachable!("handled above"),
    }
}

async fn diff_command(kube: &KubeArgs, args: diff::Args) -> anyhow::Result<ExitCode> {
    diff::run(&Core::connect(kube).await?, args).await
}

/// The app, or an error naming it and the namespace looked in.
pub async fn get_app(core: &Core, name: &str) -> anyhow::Result<Application> {
    core.apps()
        .get_opt(name)
        .await
        .with_context(|| format!("reading app {name}"))?
        .with_context(|| format!("app {name} not found in namespace {}", core.namespace))
}

/// Changes an app with [`crate::core::update`].
pub async fn update_app(
    api: &Api<Application>,
    name: &str,
    change: impl FnMut(&mut Application) -> anyhow::Result<()>,
) -> anyhow::Result<(Application, bool)> {
    crate::core::update(api, "app", name, change).await
}
