//! The `ferry` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod admin;
mod app;
mod appset;
mod ci;
mod cluster;
mod core;
mod health;
mod image_updater;
mod output;
mod proj;
mod render;
mod rendering;
mod repo;
mod server;
mod sso;
mod workflow;

#[derive(Parser)]
#[command(
    name = "ferry",
    version,
    about = "GitOps continuous delivery for Kubernetes"
)]
struct Cli {
    #[command(flatten)]
    kube: core::KubeArgs,
    #[command(flatten)]
    server: server::ServerArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render an application source to Kubernetes manifests.
    Render(render::Args),
    /// Assess the health of a Kubernetes object.
    Health(health::Args),
    /// Manage applications.
    App(app::Args),
    /// Manage ApplicationSets.
    Appset(appset::Args),
    /// Manage repositories.
    Repo(repo::RepoArgs),
    /// Manage repository credential templates.
    Repocreds(repo::CredsArgs),
    /// Manage destination clusters.
    Cluster(cluster::Args),
    /// Manage projects.
    Proj(proj::Args),
    /// Administration tools: check the RBAC policy, list and run resource actions on a file.
    Admin(admin::Args),
    /// Log in to an API server and make it the current context.
    Login(server::login::LoginArgs),
    /// Log out: end the session and forget its token.
    Logout(server::login::LogoutArgs),
    /// Manage the server's accounts, passwords and API tokens.
    Account(server::account::Args),
    /// List the login contexts, or switch to one.
    Context(server::context::Args),
    /// Steps for CI pipelines: set an image in a config repository and push it.
    Ci(ci::Args),
    /// Image updater tools: which tag an image would be updated to.
    ImageUpdater(image_updater::Args),
    /// Argo Workflows' Workflows and WorkflowTemplates (the `argo` CLI's verbs).
    Wf(workflow::Args),
    /// Argo Workflows' CronWorkflows (`argo cron`).
    Cron(workflow::cron::Args),
}

fn main() -> ExitCode {
    // Renders run Jsonnet in this binary, started again as the worker: it needs no runtime.
    ferry_render::run_jsonnet_worker_if_asked();
    run_main()
}

#[tokio::main]
async fn run_main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = run(cli).await;
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let (kube, server) = (&cli.kube, &cli.server);
    match cli.command {
        Command::Render(args) => render::run(args).await,
        Command::Health(args) => health::run(args).await,
        Command::App(args) => app::run(kube, server.mode()?, args).await,
        Command::Appset(args) => appset::run(kube, server.mode()?, args).await,
        Command::Repo(args) => repo::run(kube, server.mode()?, args).await,
        Command::Repocreds(args) => repo::run_creds(kube, server.mode()?, args).await,
        Command::Cluster(args) => cluster::run(kube, server.mode()?, args).await,
        Command::Proj(args) => proj::run(kube, server.mode()?, args).await,
        Command::Admin(args) => admin::run(kube, args).await,
        Command::Login(args) => server::login::login(server, args).await,
        Command::Logout(args) => server::login::logout(server, args).await,
        Command::Account(args) => server::account::run(server, args).await,
        Command::Context(args) => server::context::run(server, args),
        Command::Ci(args) => ci::run(args).await,
        Command::ImageUpdater(args) => image_updater::run(kube, args).await,
        Command::Wf(args) => workflow::run(kube, args).await,
        Command::Cron(args) => workflow::cron::run(kube, args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn kube_options_go_before_or_after_the_subcommand() {
        let cli = Cli::try_parse_from(["ferry", "-N", "ops", "--context", "kind", "app", "list"])
            .unwrap();
        assert_eq!(cli.kube.control_namespace(), "ops");
        assert_eq!(cli.kube.context.as_deref(), Some("kind"));
        let cli = Cli::try_parse_from(["ferry", "app", "list", "--namespace", "ops"]).unwrap();
        assert_eq!(cli.kube.control_namespace(), "ops");
    }
}
