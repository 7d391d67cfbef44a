//! Small axum servers on a free loopback port, and the HTTP basic auth they may require.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::Result;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use base64::Engine;

/// A running server; it stops (and its thread ends) when dropped.
pub(crate) struct LoopbackServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl LoopbackServer {
    /// Serves `app` over HTTP, or over HTTPS with `tls`.
    pub(crate) fn start(app: axum::Router, tls: Option<SelfSigned>) -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // Its own thread and runtime, so the server works from sync and async tests alike.
        let thread = thread::spawn(move || {
            runtime.block_on(async move {
                let Some(tls) = tls else {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("loopback listener");
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                    return;
                };
                // kube and reqwest use ring too; one provider for the process.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let config = RustlsConfig::from_pem(tls.cert.into(), tls.key.into())
                    .await
                    .expect("a self-signed certificate rustls takes");
                let handle: Handle<SocketAddr> = Handle::new();
                let stopping = handle.clone();
                tokio::spawn(async move {
                    let _ = stopped.await;
                    stopping.graceful_shutdown(Some(Duration::from_secs(1)));
                });
                let server = axum_server::from_tcp_rustls(listener, config).expect("listener");
                let _ = server.handle(handle).serve(app.into_make_service()).await;
            });
        });
        Ok(LoopbackServer {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A self-signed certificate for 127.0.0.1 and its private key, PEM: what a test server
/// presents over TLS, and what clients refuse unless told to skip verification.
pub(crate) struct SelfSigned {
    pub cert: String,
    pub key: String,
}

impl SelfSigned {
    pub(crate) fn generate() -> Result<Self> {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])?;
        Ok(SelfSigned {
            cert: certified.cert.pem(),
            key: certified.signing_key.serialize_pem(),
        })
    }
}

/// The credentials a server requires, if any.
#[derive(Clone, Default)]
pub(crate) struct BasicAuth {
    /// The expected `Authorization` header value.
    expected: Option<Arc<str>>,
}

impl BasicAuth {
    pub(crate) fn new(credentials: Option<(&str, &str)>) -> Self {
        let expected = credentials.map(|(user, password)| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            Arc::from(format!("Basic {token}"))
        });
        BasicAuth { expected }
    }

    pub(crate) fn is_required(&self) -> bool {
        self.expected.is_some()
    }

    /// The 401 answer to a request without the right credentials; `None` lets it through.
    pub(crate) fn refusal(&self, headers: &HeaderMap) -> Option<Response> {
        let expected = self.expected.as_deref()?;
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given == Some(expected) {
            return None;
        }
        let mut response = (StatusCode::UNAUTHORIZED, "authentication required").into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"ferry-test\""),
        );
        Some(response)
    }
}

/// Middleware refusing requests without the credentials of `auth`.
pub(crate) async fn require_basic_auth(
    State(auth): State<BasicAuth>,
    request: Request,
    next: Next,
) -> Response {
    match auth.refusal(request.headers()) {
        Some(refusal) => refusal,
        None => next.run(request).await,
    }
}
