use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ferry_git::push::Author;
use ferry_image_updater::metrics::{Metrics, router};
use ferry_image_updater::runner::{Runner, Settings};
use ferry_image_updater::templates::DEFAULT_COMMIT_MESSAGE;
use ferry_image_updater::try_image::{self, TestArgs};
use ferry_image_updater::writeback::CommitSettings;
use ferry_leader::LeaderElection;
use ferry_registry::{Registries, RegistriesConf, SecretReader};

/// The Lease replicas of the image updater compete for.
const LEASE: &str = "ferry-image-updater";

/// Keeps the images of Argo CD Applications up to date (Argo CD Image Updater compatible).
#[derive(Parser, Debug)]
#[command(name = "ferry-image-updater", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the updater: a cycle every --interval (or one with --once).
    Run(RunArgs),
    /// Shows which tag an image would be updated to, and why.
    Test(TestArgs),
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Argo CD's namespace: repository Secrets, the Lease, and Applications named without a
    /// namespace prefix in .argocd-source-<app>.yaml.
    #[arg(long, short = 'n', env = "FERRY_NAMESPACE", default_value = "argocd")]
    namespace: String,
    /// Namespaces whose Applications and ImageUpdaters are updated: comma-separated, `*` for
    /// all (default: --namespace).
    #[arg(
        long,
        env = "IMAGE_UPDATER_WATCH_NAMESPACES",
        alias = "applications-namespaces"
    )]
    watch_namespaces: Option<String>,
    /// How often to look for new images (Go duration: 2m, 30s).
    #[arg(long, env = "IMAGE_UPDATER_INTERVAL", default_value = "2m", value_parser = go_duration)]
    interval: Duration,
    /// One cycle, then exit (non-zero when something failed).
    #[arg(long)]
    once: bool,
    /// Decide and log, but write nothing.
    #[arg(long)]
    dry_run: bool,
    /// registries.conf (upstream's format).
    #[arg(long, default_value = "/app/config/registries.conf")]
    registries_conf_path: PathBuf,
    /// Applications updated at once.
    #[arg(
        long,
        alias = "max-concurrent-apps",
        env = "MAX_CONCURRENT_APPS",
        default_value_t = 10
    )]
    max_concurrency: usize,
    /// Port of /metrics and /healthz (0: none).
    #[arg(long, default_value_t = 8081)]
    metrics_port: u16,
    /// Author name of write-back commits.
    #[arg(long, env = "GIT_COMMIT_USER", default_value = "argocd-image-updater")]
    git_commit_user: String,
    /// Author email of write-back commits.
    #[arg(long, env = "GIT_COMMIT_EMAIL", default_value = "noreply@argoproj.io")]
    git_commit_email: String,
    /// A Go template for commit messages (`.AppName`, `.AppChanges`); upstream's default when
    /// the file is missing.
    #[arg(long, default_value = "/app/config/commit.template")]
    git_commit_message_path: PathBuf,
    /// Record no Kubernetes Events.
    #[arg(long, env = "IMAGE_UPDATER_KUBE_EVENTS")]
    disable_kube_events: bool,
    /// Update only while holding the Lease `ferry-image-updater` (replicas wait as standbys).
    #[arg(long, env = "IMAGE_UPDATER_LEADER_ELECTION")]
    leader_election: bool,
    /// Kubeconfig (default: in-cluster or ~/.kube/config).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
}

fn go_duration(text: &str) -> Result<Duration, String> {
    ferry_types::duration::parse_go_duration(text).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    ferry_runtime::init_logging(false);
    match Cli::parse().command {
        Command::Test(args) => {
            let secrets = if args.reads_secrets()? {
                Some(Arc::new(kube::Client::try_default().await?) as Arc<dyn SecretReader>)
            } else {
                None
            };
            print!("{}", try_image::run(&args, secrets).await?);
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Run(args) => run(args).await,
    }
}

async fn run(args: RunArgs) -> anyhow::Result<std::process::ExitCode> {
    let config = ferry_runtime::kube_config(args.kubeconfig.as_deref(), None).await?;
    let client = kube::Client::try_from(config.clone())?;
    let conf = match RegistriesConf::load(&args.registries_conf_path) {
        Ok(conf) => conf,
        Err(_) if !args.registries_conf_path.exists() => RegistriesConf::parse("registries: []")?,
        Err(err) => return Err(err.into()),
    };
    let registries = Arc::new(Registries::new(
        &conf,
        Some(Arc::new(client.clone()) as Arc<dyn SecretReader>),
    )?);
    let message_template = std::fs::read_to_string(&args.git_commit_message_path)
        .unwrap_or_else(|_| DEFAULT_COMMIT_MESSAGE.to_string());
    let watch_namespaces = match args.watch_namespaces.as_deref().map(str::trim) {
        Some("*") => Vec::new(),
        Some(list) if !list.is_empty() => list.split(',').map(|s| s.trim().to_string()).collect(),
        _ => vec![args.namespace.clone()],
    };
    let settings = Settings {
        namespace: args.namespace.clone(),
        watch_namespaces,
        interval: args.interval,
        max_concurrency: args.max_concurrency,
        dry_run: args.dry_run,
        commit: CommitSettings {
            author: Author {
                name: args.git_commit_user,
                email: args.git_commit_email,
            },
            message_template,
            control_namespace: args.namespace.clone(),
            dry_run: args.dry_run,
        },
        kube_events: !args.disable_kube_events,
    };
    let metrics = Arc::new(Metrics::default());
    if args.metrics_port != 0 && !args.once {
        let listener = tokio::net::TcpListener::bind(("0.0.0.0", args.metrics_port)).await?;
        let app = router(metrics.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    let leadership = if args.leader_election && !args.once {
        let election = LeaderElection {
            namespace: args.namespace.clone(),
            lease: LEASE.to_string(),
            identity: ferry_leader::default_identity(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        };
        let leadership = tokio::select! {
            acquired = election.acquire(config) => Arc::new(acquired?),
            () = ferry_runtime::shutdown_signal() => return Ok(std::process::ExitCode::SUCCESS),
        };
        leadership.exit_when_lost();
        Some(leadership)
    } else {
        None
    };
    let runner = Runner::new(client, registries, settings, metrics);
    if args.once {
        let report = runner.cycle(None).await;
        return Ok(if report.errors.is_empty() {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        });
    }
    runner.run(ferry_runtime::shutdown_signal()).await;
    if let Some(leadership) = leadership {
        leadership.release().await;
    }
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_parse() {
        Cli::command().debug_assert();
        let cli = Cli::parse_from([
            "ferry-image-updater",
            "run",
            "--interval",
            "30s",
            "--once",
            "--max-concurrent-apps",
            "3",
        ]);
        let Command::Run(args) = cli.command else {
            panic!()
        };
        assert_eq!(args.interval, Duration::from_secs(30));
        assert_eq!(args.max_concurrency, 3);
    }
}
