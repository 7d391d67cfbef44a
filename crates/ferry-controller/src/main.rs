//! `ferry-controller`: the application controller as a process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use ferry_controller::{ControllerSettings, Metrics};
use ferry_render::{JsonnetWorker, parse_size};
use ferry_types::secrets::IN_CLUSTER_SERVER;

// jemalloc gives memory back after a large app (glibc's malloc kept the 442 MiB peak of a
// 5,000-object sync for good: docs/benchmarks.md, "Memory after a large app").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "ferry-controller",
    version,
    about = "Reconciles Argo CD Applications"
)]
struct Args {
    /// Namespace of the Applications, AppProjects and repository/cluster Secrets.
    #[arg(long, short = 'n', env = "FERRY_NAMESPACE", default_value = "argocd")]
    namespace: String,
    /// Namespaces besides --namespace whose Applications are reconciled, comma-separated: names,
    /// globs (`team-*`) or `/regular expressions/` (Argo CD's flag). Such an app is processed
    /// only when its project lists its namespace in `spec.sourceNamespaces`.
    #[arg(long, env = "ARGOCD_APPLICATION_NAMESPACES", value_delimiter = ',')]
    application_namespaces: Vec<String>,
    /// Kubeconfig of the cluster holding the Applications (default: in-cluster or ~/.kube/config).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Context within the kubeconfig.
    #[arg(long)]
    context: Option<String>,
    /// Seconds between full comparisons of each Application with Git.
    #[arg(long, default_value_t = 180)]
    resync: u64,
    /// Up to this many seconds are added at random to each app's resync, so that apps created
    /// together do not all compare at once (Argo CD's reconciliation jitter).
    #[arg(long, default_value_t = 30)]
    resync_jitter: u64,
    /// Comparisons that may run at once.
    #[arg(long, default_value_t = 20)]
    status_processors: u16,
    /// Syncs that may run at once.
    #[arg(long, default_value_t = 10)]
    operation_processors: usize,
    /// First self-heal delay in seconds (doubles per attempt).
    #[arg(long, default_value_t = 2)]
    self_heal_backoff: u64,
    /// Where Git mirrors and render work directories live.
    #[arg(long, env = "FERRY_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// `helm` binary.
    #[arg(long, default_value = "helm")]
    helm: PathBuf,
    /// `kustomize` binary.
    #[arg(long, default_value = "kustomize")]
    kustomize: PathBuf,
    /// Seconds any single tool (helm, kustomize, a plugin, a Jsonnet evaluation) may run
    /// (Argo CD's ARGOCD_EXEC_TIMEOUT).
    #[arg(long, default_value_t = 90)]
    tool_timeout: u64,
    /// Most a tool may write to stdout, and to stderr, before it is killed (bytes, or with a
    /// unit: Ki, Mi, Gi, k, M, G).
    #[arg(long, value_parser = parse_size, default_value = "128Mi", value_name = "SIZE")]
    max_tool_output: u64,
    /// Memory each tool process may map (its data limit, RLIMIT_DATA).
    #[arg(long, value_parser = parse_size, default_value = "2Gi", value_name = "SIZE")]
    max_tool_memory: u64,
    /// Largest manifest file (or Jsonnet file or import) a directory source reads.
    #[arg(long, value_parser = parse_size, default_value = "10Mi", value_name = "SIZE")]
    max_manifest_file_size: u64,
    /// Most rendered manifests of one app, all sources together, as compact JSON.
    #[arg(long, value_parser = parse_size, default_value = "64Mi", value_name = "SIZE")]
    max_manifest_size: u64,
    /// Most file contents a repository checkout may hold, submodules included.
    #[arg(long, value_parser = parse_size, default_value = "1Gi", value_name = "SIZE")]
    max_repo_size: u64,
    /// Compare with a server-side apply dry run (false: offline structural comparison, Argo
    /// CD's default; its `controller.diff.server.side` parameter sets the same variable).
    #[arg(
        long,
        env = "ARGOCD_APPLICATION_CONTROLLER_SERVER_SIDE_DIFF",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    server_side_diff: bool,
    /// Seconds a sync waits for a wave (or hook) to become healthy before it fails; counted
    /// from the wait's start even across controller restarts (0: no limit).
    #[arg(long, default_value_t = 600)]
    health_timeout: u64,
    /// Most JSON an Application's `status.resources` may take; beyond, resources that are
    /// Synced and Healthy are left out of it and a ResourcesTruncatedWarning says so.
    #[arg(long, value_parser = parse_size, default_value = "512Ki", value_name = "SIZE")]
    max_status_resources_size: u64,
    /// Memory for the API server's server-side diff answers, reused while a resource's manifest
    /// and live object stay the same (0: ask the API server on every comparison).
    #[arg(long, value_parser = parse_size, default_value = "64Mi", value_name = "SIZE")]
    server_side_diff_cache_size: u64,
    /// Refuse to prune more than this fraction of an app's resources in one sync.
    #[arg(long)]
    prune_max_fraction: Option<f64>,
    /// Seconds a rendered source is reused for the same commit (Argo CD's repo cache
    /// expiration); a hard refresh renders again at once.
    #[arg(long, default_value_t = 24 * 60 * 60)]
    render_cache_expiration: u64,
    /// Address to serve Prometheus metrics on, at `/metrics`.
    #[arg(long, default_value = "127.0.0.1:8082")]
    metrics_listen: SocketAddr,
    /// Address the API server reads apps' managed resources, resource trees and manifests
    /// from (token-protected).
    #[arg(long, default_value = "127.0.0.1:8084")]
    view_listen: SocketAddr,
    /// Directory of config-management plugin configs (Argo CD's `ConfigManagementPlugin`
    /// `plugin.yaml`): each `*.yaml` in it (a mounted ConfigMap) and each `<name>/plugin.yaml`.
    /// Their commands run in the controller's container under the render limits.
    #[arg(long, env = "FERRY_PLUGIN_CONFIG_DIR")]
    plugin_config_dir: Option<PathBuf>,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
    #[command(flatten)]
    ha: ferry_controller::ha::HaArgs,
}

fn main() -> anyhow::Result<()> {
    // Renders run Jsonnet in this binary, started again as the worker: it needs no runtime.
    ferry_render::run_jsonnet_worker_if_asked();
    run_main()
}

#[tokio::main]
async fn run_main() -> anyhow::Result<()> {
    let args = Args::parse();
    ferry_runtime::init_logging(args.log_json);

    let metrics = Arc::new(Metrics::default());
    ferry_runtime::metrics::spawn(metrics.clone(), args.metrics_listen).await;
    let client = client(&args, &metrics).await?;
    let mut settings = ControllerSettings {
        namespace: args.namespace.clone(),
        application_namespaces: args.application_namespaces.clone(),
        resync: Duration::from_secs(args.resync),
        resync_jitter: Duration::from_secs(args.resync_jitter),
        status_processors: args.status_processors,
        operation_processors: args.operation_processors,
        self_heal_backoff: Duration::from_secs(args.self_heal_backoff),
        server_side_diff: args.server_side_diff,
        server_side_diff_cache_size: args.server_side_diff_cache_size,
        prune_max_fraction: args.prune_max_fraction,
        health_timeout: (args.health_timeout > 0).then(|| Duration::from_secs(args.health_timeout)),
        max_status_resources_size: usize::try_from(args.max_status_resources_size)
            .unwrap_or(usize::MAX),
        view_listen: Some(args.view_listen),
        ..ControllerSettings::default()
    };
    if let Some(dir) = &args.cache_dir {
        settings.git_root = dir.join("git");
        settings.render.work_dir = dir.join("render");
    }
    settings.render.cache_ttl = Duration::from_secs(args.render_cache_expiration);
    settings.render.helm = args.helm.clone();
    settings.render.kustomize = args.kustomize.clone();
    settings.render.jsonnet_worker = JsonnetWorker::this_executable();
    settings.render.tool_timeout = Duration::from_secs(args.tool_timeout);
    settings.render.max_tool_output = args.max_tool_output;
    settings.render.max_tool_memory = args.max_tool_memory;
    settings.render.max_manifest_file_size = args.max_manifest_file_size;
    settings.render.max_manifest_size = args.max_manifest_size;
    settings.render.max_repo_size = args.max_repo_size;
    if let Some(dir) = &args.plugin_config_dir {
        settings.render.plugins = ferry_render::PluginConfig::load_dir(dir)
            .map_err(|err| anyhow::anyhow!("--plugin-config-dir: {err}"))?;
        for plugin in &settings.render.plugins {
            tracing::info!(plugin = %plugin.full_name(), "config-management plugin loaded");
        }
    }
    args.ha.check()?;
    settings.sharding = args.ha.shard_settings();
    settings.dynamic_sharding = args.ha.dynamic();
    let leadership = match args.ha.election(&args.namespace, settings.sharding.shard) {
        Some(election) => {
            let config = kube_config(&args).await?;
            tokio::select! {
                acquired = election.acquire(config) => Some(Arc::new(acquired?)),
                // A standby stops when asked: as a container's PID 1 without a handler it would
                // ignore SIGTERM and be killed only at the end of the grace period (30 s of
                // every rolling update or pod deletion).
                () = ferry_runtime::shutdown_signal() => return Ok(()),
            }
        }
        None => None,
    };
    if let Some(leadership) = &leadership {
        // What was running is resumed by the new leader from the Applications' status.
        leadership.exit_when_lost();
    }
    ferry_controller::run(client, settings, metrics, ferry_runtime::shutdown_signal()).await?;
    if let Some(leadership) = leadership {
        leadership.release().await;
    }
    Ok(())
}

/// A client whose requests the metrics count.
async fn client(args: &Args, metrics: &Metrics) -> anyhow::Result<kube::Client> {
    Ok(metrics
        .kube_clients()
        .client(kube_config(args).await?, IN_CLUSTER_SERVER)?)
}

async fn kube_config(args: &Args) -> anyhow::Result<kube::Config> {
    Ok(ferry_runtime::kube_config(args.kubeconfig.as_deref(), args.context.clone()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn limit_flags_default_to_the_renderers_limits() {
        let args = Args::try_parse_from(["ferry-controller"]).unwrap();
        let defaults = ferry_render::RenderConfig::default();
        assert_eq!(
            Duration::from_secs(args.tool_timeout),
            defaults.tool_timeout
        );
        assert_eq!(args.max_tool_output, defaults.max_tool_output);
        assert_eq!(args.max_tool_memory, defaults.max_tool_memory);
        assert_eq!(args.max_manifest_file_size, defaults.max_manifest_file_size);
        assert_eq!(args.max_manifest_size, defaults.max_manifest_size);
        assert_eq!(args.max_repo_size, defaults.max_repo_size);
        let settings = ControllerSettings::default();
        assert_eq!(
            Some(Duration::from_secs(args.health_timeout)),
            settings.health_timeout
        );
        assert_eq!(
            args.max_status_resources_size as usize,
            settings.max_status_resources_size
        );
        assert_eq!(
            Duration::from_secs(args.resync_jitter),
            settings.resync_jitter
        );
        assert_eq!(
            args.server_side_diff_cache_size,
            settings.server_side_diff_cache_size
        );
        let args =
            Args::try_parse_from(["ferry-controller", "--max-manifest-size", "100Mi"]).unwrap();
        assert_eq!(args.max_manifest_size, 100 << 20);
    }
}
