//! The `ferry` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod admin;
mod app;
mod cluster;
mod core;
mod health;
mod output;
mod proj;
mod render;
mod rendering;
mod repo;

#[derive(Parser)]
#[command(
    name = "ferry",
    version,
    about = "GitOps continuous delivery for Kubernetes"
)]
struct Cli {
    #[command(flatten)]
    kube: core::KubeArgs,
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
    /// Manage repositories.
    Repo(repo::RepoArgs),
    /// Manage repository credential templates.
    Repocreds(repo::CredsArgs),
    /// Manage destination clusters.
    Cluster(cluster::Args),
    /// Manage projects.
    Proj(proj::Args),
    /// Administration tools: check the RBAC policy.
    Admin(admin::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Render(args) => render::run(args).await,
        Command::Health(args) => health::run(args).await,
        Command::App(args) => app::run(&cli.kube, args).await,
        Command::Repo(args) => repo::run(&cli.kube, args).await,
        Command::Repocreds(args) => repo::run_creds(&cli.kube, args).await,
        Command::Cluster(args) => cluster::run(&cli.kube, args).await,
        Command::Proj(args) => proj::run(&cli.kube, args).await,
        Command::Admin(args) => admin::run(&cli.kube, args).await,
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
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
