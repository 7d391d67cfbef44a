use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use ferry_workflow::controller::{Settings, run_with_metrics};
use ferry_workflow::metrics::Metrics;
use ferry_workflow::pod::PodSettings;

/// Runs Argo Workflows' Workflows: each container or script template as a pod.
#[derive(Parser, Debug)]
#[command(name = "ferry-workflow-controller", version, about)]
struct Args {
    /// Only this namespace's Workflows (Argo's --namespaced); all namespaces when unset.
    #[arg(long, short = 'n', env = "FERRY_WORKFLOW_NAMESPACE")]
    namespace: Option<String>,
    /// Kubeconfig of the cluster (default: in-cluster or ~/.kube/config).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Context within the kubeconfig.
    #[arg(long)]
    context: Option<String>,
    /// The image with the static `/ferry-exec`, run as every workflow pod's init container.
    #[arg(long, env = "FERRY_EXECUTOR_IMAGE")]
    executor_image: String,
    /// imagePullPolicy of the executor image (Kubernetes' default when unset).
    #[arg(long)]
    executor_image_pull_policy: Option<String>,
    /// Workflows reconciled at once.
    #[arg(long, default_value_t = 32)]
    workflow_workers: u16,
    /// Address to serve Prometheus metrics on, at `/metrics` (upstream's port).
    #[arg(long, default_value = "127.0.0.1:9090")]
    metrics_listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ferry_runtime::init_logging(false);
    let config =
        ferry_runtime::kube_config(args.kubeconfig.as_deref(), args.context.clone()).await?;
    let client = kube::Client::try_from(config)?;
    let settings = Settings {
        namespace: args.namespace,
        pods: PodSettings {
            executor_image: args.executor_image,
            executor_pull_policy: args.executor_image_pull_policy,
        },
        concurrency: args.workflow_workers,
    };
    let metrics = Arc::new(Metrics::default());
    ferry_runtime::metrics::spawn(metrics.clone(), args.metrics_listen).await;
    run_with_metrics(client, settings, metrics, ferry_runtime::shutdown_signal()).await
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
