//! Serving the API on a listener until shutdown is asked for: plain HTTP, or HTTPS with a
//! certificate and key from PEM files (what a production install runs, as Argo CD's server
//! serves TLS unless told `--insecure`).

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpListener;

use crate::api::{AppState, router};

/// How long a graceful shutdown of the TLS listener waits for requests in flight.
const TLS_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves [`router`] on `listener` until `shutdown` completes, then lets requests in flight
/// finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stopping = state.stopping().clone();
    let shutdown = async move {
        shutdown.await;
        stopping.cancel();
    };
    // The peer address is kept for the per-client login limits.
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The TLS configuration of a certificate chain and its private key, both PEM files.
pub async fn tls_config(cert: &Path, key: &Path) -> std::io::Result<RustlsConfig> {
    // kube and reqwest use ring too; one provider for the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    RustlsConfig::from_pem_file(cert, key).await
}

/// [`serve`] over TLS.
pub async fn serve_tls(
    listener: std::net::TcpListener,
    tls: RustlsConfig,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle: Handle<std::net::SocketAddr> = Handle::new();
    let stopping = state.stopping().clone();
    let on_shutdown = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopping.cancel();
        on_shutdown.graceful_shutdown(Some(TLS_SHUTDOWN_GRACE));
    });
    listener.set_nonblocking(true)?;
    axum_server::from_tcp_rustls(listener, tls)?
        .handle(handle)
        .serve(router(state).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .await
}
