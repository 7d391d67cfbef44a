//! What every ferry process does the same way at its edges: log, find its cluster (a kubeconfig
//! file and context, else kube's inference: `KUBECONFIG`, `~/.kube/config`, in-cluster),
//! discover its APIs and stop on SIGTERM or SIGINT.

use std::io::IsTerminal;
use std::path::Path;

use kube::config::{InferConfigError, KubeConfigOptions, Kubeconfig, KubeconfigError};

/// Logs to stderr as `FERRY_LOG` filters (`info` by default), as JSON lines with `json`.
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
        // kube-client logs every failed request and every watch stream that ends; the callers
        // retry, and log an outage once with its cause and its recovery.
        .unwrap_or_else(|_| "info,kube=warn,kube_client::client=off".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes would litter `kubectl logs` and log collectors.
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        logs.json().init();
    } else {
        logs.init();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading kubeconfig {path}: {source}")]
    Read {
        path: String,
        source: KubeconfigError,
    },
    #[error("kubeconfig {path}: {source}")]
    Load {
        path: String,
        source: KubeconfigError,
    },
    #[error(transparent)]
    Infer(#[from] InferConfigError),
}

/// The client configuration of `kubeconfig` (at `context`, else its current one), or the one
/// kube infers when no file is given.
pub async fn kube_config(
    kubeconfig: Option<&Path>,
    context: Option<String>,
) -> Result<kube::Config, ConfigError> {
    let Some(path) = kubeconfig else {
        return Ok(kube::Config::infer().await?);
    };
    let shown = path.display().to_string();
    let file = Kubeconfig::read_from(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    let options = KubeConfigOptions {
        context,
        ..KubeConfigOptions::default()
    };
    kube::Config::from_custom_kubeconfig(file, &options)
        .await
        .map_err(|source| ConfigError::Load {
            path: shown,
            source,
        })
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        // Without a SIGTERM handler (not expected on Unix), Ctrl-C still stops the process.
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Discovers the cluster's APIs: aggregated discovery (one snapshot of every group, two
/// requests) where the server offers it, else group by group. A group removed between the
/// listing and its own request (a CRD being deleted) fails the group-by-group walk with a 404,
/// so that walk is tried again a few times before giving up.
pub async fn discover(client: &kube::Client) -> kube::Result<kube::Discovery> {
    use kube::Discovery;
    if let Ok(discovery) = Discovery::new(client.clone()).run_aggregated().await {
        return Ok(discovery);
    }
    let mut attempt = 0;
    loop {
        match Discovery::new(client.clone()).run().await {
            Err(kube::Error::Api(status)) if status.code == 404 && attempt < 3 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
            }
            result => return result,
        }
    }
}
