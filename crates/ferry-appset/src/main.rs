use std::path::PathBuf;

use clap::Parser;

/// Generates Argo CD Applications from ApplicationSets.
#[derive(Parser, Debug)]
#[command(name = "ferry-appset-controller", version, about)]
struct Args {
    /// Namespace of the ApplicationSets, AppProjects and repository/cluster Secrets.
    #[arg(long, short = 'n', env = "FERRY_NAMESPACE", default_value = "argocd")]
    namespace: String,
    /// Kubeconfig of the cluster holding the ApplicationSets (default: in-cluster or
    /// ~/.kube/config).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Context within the kubeconfig.
    #[arg(long)]
    context: Option<String>,
    /// Where Git mirrors and checkouts live.
    #[arg(long, env = "FERRY_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Most bytes a git generator's checkout may hold (0: no limit).
    #[arg(long, default_value_t = 0)]
    max_repo_size: u64,
    /// ApplicationSets reconciled at once.
    #[arg(long, default_value_t = 10)]
    concurrent_reconciliations: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
        // kube-client logs every failed request and every watch stream that ends; the callers
        // retry, and log an outage once with its cause and its recovery.
        .unwrap_or_else(|_| "info,kube=warn,kube_client::client=off".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let config =
        ferry_types::runtime::kube_config(args.kubeconfig.as_deref(), args.context.clone()).await?;
    let client = kube::Client::try_from(config)?;
    let cache = args
        .cache_dir
        .unwrap_or_else(|| std::env::temp_dir().join("ferry-appset"));
    let settings = ferry_appset::controller::Settings {
        namespace: args.namespace,
        git_root: cache.join("git"),
        max_repo_size: (args.max_repo_size > 0).then_some(args.max_repo_size),
        concurrency: args.concurrent_reconciliations,
    };
    ferry_appset::controller::run(client, settings, ferry_types::runtime::shutdown_signal()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Args::command().debug_assert();
    }
}
