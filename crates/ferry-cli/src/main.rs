//! The `ferry` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod health;
mod render;

#[derive(Parser)]
#[command(
    name = "ferry",
    version,
    about = "GitOps continuous delivery for Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render an application source to Kubernetes manifests.
    Render(render::Args),
    /// Assess the health of a Kubernetes object.
    Health(health::Args),
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
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
