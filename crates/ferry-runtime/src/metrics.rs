//! The metrics listener every ferry process has: `GET /metrics` in the Prometheus text format
//! and `GET /healthz` for liveness probes (the process answers).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// A process's metrics, kept in a registry.
pub trait Exposition: Send + Sync + 'static {
    fn registry(&self) -> &Registry;

    /// The metrics in the Prometheus text format (version 0.0.4).
    fn render(&self) -> Result<String, fmt::Error> {
        let mut text = String::new();
        prometheus_text::encode(&mut text, self.registry())?;
        Ok(text)
    }
}

/// `/metrics` and `/healthz`.
pub fn router<M: Exposition>(metrics: Arc<M>) -> Router {
    Router::new()
        .route("/metrics", get(scrape::<M>))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(metrics)
}

/// Serves the metrics on `address` in the background. A taken port is logged, not fatal: a
/// process's work matters more than its metrics.
pub async fn spawn<M: Exposition>(metrics: Arc<M>, address: SocketAddr) {
    match TcpListener::bind(address).await {
        Ok(listener) => {
            tracing::info!(%address, "serving metrics at /metrics");
            tokio::spawn(async move {
                if let Err(err) = serve(metrics, listener).await {
                    tracing::error!("serving metrics: {err}");
                }
            });
        }
        Err(err) => tracing::error!("cannot serve metrics on {address}: {err}"),
    }
}

/// Serves [`router`] on `listener` for as long as the process runs.
pub async fn serve<M: Exposition>(metrics: Arc<M>, listener: TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router(metrics)).await
}

async fn scrape<M: Exposition>(State(metrics): State<Arc<M>>) -> Response {
    match metrics.render() {
        Ok(text) => (
            [(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
