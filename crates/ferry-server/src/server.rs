//! Serving the API on a listener until shutdown is asked for.

use std::future::Future;

use tokio::net::TcpListener;

use crate::api::{AppState, router};

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
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
