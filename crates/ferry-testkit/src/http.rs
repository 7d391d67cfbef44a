//! Small axum servers on a free loopback port (or on every interface, for pods on the sandbox's
//! real node), and the HTTP basic auth they may require.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
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
    /// Serves `app` on loopback over HTTP, or over HTTPS with `tls`.
    pub(crate) fn start(app: axum::Router, tls: Option<SelfSigned>) -> Result<Self> {
        Self::start_on(Ipv4Addr::LOCALHOST.into(), app, tls)
    }

    /// Serves `app` on `ip` (`0.0.0.0`: every interface); [`Self::addr`] is still a loopback
    /// address then.
    pub(crate) fn start_on(ip: IpAddr, app: axum::Router, tls: Option<SelfSigned>) -> Result<Self> {
        let listener = TcpListener::bind((ip, 0))?;
        listener.set_nonblocking(true)?;
        let mut addr = listener.local_addr()?;
        if addr.ip().is_unspecified() {
            addr.set_ip(Ipv4Addr::LOCALHOST.into());
        }
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
                let config = match &tls.client_ca {
                    None => RustlsConfig::from_pem(tls.cert.into(), tls.key.into())
                        .await
                        .expect("a self-signed certificate rustls takes"),
                    Some(client_ca) => RustlsConfig::from_config(Arc::new(
                        requiring_client_certs(&tls.cert, &tls.key, client_ca)
                            .expect("a certificate, key and CA rustls takes"),
                    )),
                };
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
/// presents over TLS, and what clients refuse unless told to skip verification. With
/// `client_ca`, the server requires a client certificate that CA signed.
pub(crate) struct SelfSigned {
    pub cert: String,
    pub key: String,
    pub client_ca: Option<String>,
}

impl SelfSigned {
    pub(crate) fn generate() -> Result<Self> {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])?;
        Ok(SelfSigned {
            cert: certified.cert.pem(),
            key: certified.signing_key.serialize_pem(),
            client_ca: None,
        })
    }
}

/// A certificate authority made for one test: it signs a server certificate for 127.0.0.1
/// and client certificates, as a company CA would (argocd-tls-certs-cm then holds its
/// certificate, repository Secrets a client certificate and key).
pub struct TestCa {
    cert: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// A certificate (PEM) and its private key (PEM, PKCS#8).
#[derive(Clone)]
pub struct Issued {
    pub cert: String,
    pub key: String,
}

impl TestCa {
    pub fn generate(name: &str) -> Result<Self> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key)?.pem();
        Ok(TestCa {
            cert,
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    /// The CA's certificate (PEM).
    pub fn certificate(&self) -> &str {
        &self.cert
    }

    /// A server certificate for 127.0.0.1.
    pub fn server(&self) -> Result<Issued> {
        self.issue("127.0.0.1", rcgen::ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate naming `name`.
    pub fn client(&self, name: &str) -> Result<Issued> {
        self.issue(name, rcgen::ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, name: &str, usage: rcgen::ExtendedKeyUsagePurpose) -> Result<Issued> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()])?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// A rustls server presenting `cert` and accepting only clients with a certificate signed by
/// `client_ca`.
fn requiring_client_certs(cert: &str, key: &str, client_ca: &str) -> Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(client_ca.as_bytes()) {
        roots.add(ca?)?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()?;
    let chain = CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, PrivateKeyDer::from_pem_slice(key.as_bytes())?)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
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
