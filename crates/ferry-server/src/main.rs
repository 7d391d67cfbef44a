//! `ferry-server`: the API server as a process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use ferry_auth::auth::{LoginGuard, SharedFailures, ensure_initial_admin, share_failures};
use ferry_server::api::StaticAssets;
use ferry_server::settings_watch::watch_settings;
use ferry_server::{AppState, serve, serve_tls, tls_config};
use ferry_types::allowed_namespaces::AllowedNamespaces;

#[derive(Parser)]
#[command(
    name = "ferry-server",
    version,
    about = "Serves Argo CD's API over the Applications of a namespace"
)]
struct Args {
    /// Namespace of Argo CD's settings, the Applications and the AppProjects.
    #[arg(long, short = 'n', env = "FERRY_NAMESPACE", default_value = "argocd")]
    namespace: String,
    /// Namespaces besides --namespace whose Applications are served, comma-separated: names,
    /// globs (`team-*`) or `/regular expressions/` (Argo CD's flag).
    #[arg(long, env = "ARGOCD_APPLICATION_NAMESPACES", value_delimiter = ',')]
    application_namespaces: Vec<String>,
    /// Kubeconfig of the cluster holding them (default: in-cluster or ~/.kube/config).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Context of `--kubeconfig` to use (default: its current context).
    #[arg(long)]
    context: Option<String>,
    /// Address to serve the API on: HTTPS with `--tls-cert` and `--tls-key`, else plain HTTP.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Certificate chain (PEM) to serve HTTPS with.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of `--tls-cert`.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Address to serve Prometheus metrics on, at `/metrics`.
    #[arg(long, default_value = "127.0.0.1:8083")]
    metrics_listen: SocketAddr,
    /// Where the application controller serves managed resources, resource trees and
    /// manifests (its `--view-listen`); for a sharded controller, one URL per shard (repeat
    /// the flag or separate with commas), asked in turn until the app's owner answers.
    #[arg(
        long,
        env = "FERRY_CONTROLLER_URL",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8084"
    )]
    controller_url: Vec<url::Url>,
    /// Directory of config-management plugin configs, as the controller's flag of the same
    /// name: app details then tell plugin sources and the parameters their plugins announce.
    #[arg(long)]
    plugin_config_dir: Option<PathBuf>,
    /// Directory of the web UI's built files (`ui/dist`, what `scripts/ui` builds) to serve
    /// besides the API, instead of those built into the binary.
    #[arg(long, env = "ARGOCD_SERVER_STATIC_ASSETS")]
    staticassets: Option<PathBuf>,
    /// `X-Frame-Options` of the UI's pages; empty to leave it out.
    #[arg(
        long,
        env = "ARGOCD_SERVER_X_FRAME_OPTIONS",
        default_value = "sameorigin"
    )]
    x_frame_options: String,
    /// `Content-Security-Policy` of the UI's pages; empty to leave it out.
    #[arg(
        long,
        env = "ARGOCD_SERVER_CONTENT_SECURITY_POLICY",
        default_value = "frame-ancestors 'self';"
    )]
    content_security_policy: String,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
}

/// Failed logins count across replicas: each guard publishes its own and adds the others'.
async fn share_login_failures(state: &AppState, namespace: &str) -> anyhow::Result<()> {
    // Unique per process: the host (a pod's name) and a random suffix.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let replica = format!("{}-{:08x}", host.trim(), rand::random::<u32>());
    for (guard, kind) in [
        (state.login_guard(), "users"),
        (state.client_guard(), "clients"),
    ] {
        let shared = Arc::new(SharedFailures::new(kind, &replica));
        guard.share_with(shared.clone());
        share_failures(guard.clone(), shared, state.client(), namespace).await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ferry_runtime::init_logging(args.log_json);

    let client = client(&args).await?;
    let generated = ensure_initial_admin(client.clone(), &args.namespace)
        .await
        .context("initializing the admin account")?;
    if !generated.is_empty() {
        tracing::info!(keys = ?generated, "generated missing settings in argocd-secret");
    }
    if ferry_runtime::ensure_default_project(&client, &args.namespace)
        .await
        .context("creating the default AppProject")?
    {
        tracing::info!("created the default AppProject");
    }
    let (settings, watching) = watch_settings(client.clone(), &args.namespace)
        .await
        .context("loading the settings")?;
    let app_namespaces = AllowedNamespaces::new(&args.namespace, &args.application_namespaces)
        .map_err(|e| anyhow::anyhow!("--application-namespaces {e}"))?;
    let mut state = AppState::new(client, app_namespaces, settings, LoginGuard::default())
        .with_controller(args.controller_url.clone());
    if args.tls_cert.is_some() {
        state = state.with_tls();
    }
    if let Some(dir) = &args.plugin_config_dir {
        let plugins = ferry_render::PluginConfig::load_dir(dir)
            .map_err(|err| anyhow::anyhow!("--plugin-config-dir: {err}"))?;
        state = state.with_plugins(plugins);
    }
    let assets = match &args.staticassets {
        Some(dir) => Some(
            StaticAssets::new(dir, &args.x_frame_options, &args.content_security_policy)
                .map_err(|err| anyhow::anyhow!("--staticassets: {err}"))?,
        ),
        None => StaticAssets::built_in(&args.x_frame_options, &args.content_security_policy),
    };
    match assets {
        Some(assets) => {
            tracing::info!(files = %assets.source(), "serving the web UI");
            state = state.with_static_assets(assets);
        }
        None => tracing::info!(
            "no web UI: none built in (ui/dist was not built with this binary) and no --staticassets"
        ),
    }
    let following_revocations = state
        .revocations()
        .follow(state.client(), &args.namespace)
        .await
        .context("loading the revoked tokens")?;
    share_login_failures(&state, &args.namespace)
        .await
        .context("loading the other replicas' failed logins")?;
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("listening on {}", args.listen))?;
    ferry_runtime::metrics::spawn(state.metrics().clone(), args.metrics_listen).await;
    let address = listener.local_addr()?;
    match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let tls = tls_config(cert, key).await.with_context(|| {
                format!(
                    "reading the TLS certificate {} and key {}",
                    cert.display(),
                    key.display()
                )
            })?;
            tracing::info!(%address, namespace = args.namespace, "serving HTTPS");
            serve_tls(listener, tls, state, stop_signal()).await?;
        }
        _ => {
            if !address.ip().is_loopback() {
                tracing::warn!(%address, "serving plain HTTP beyond loopback: put TLS in front, or pass --tls-cert and --tls-key");
            }
            tracing::info!(%address, namespace = args.namespace, "serving");
            listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            serve(listener, state, stop_signal()).await?;
        }
    }
    watching.abort();
    following_revocations.abort();
    tracing::info!("stopped");
    Ok(())
}

async fn client(args: &Args) -> anyhow::Result<kube::Client> {
    let config =
        ferry_runtime::kube_config(args.kubeconfig.as_deref(), args.context.clone()).await?;
    Ok(kube::Client::try_from(config)?)
}

/// SIGTERM or SIGINT, logged.
async fn stop_signal() {
    ferry_runtime::shutdown_signal().await;
    tracing::info!("shutting down");
}
