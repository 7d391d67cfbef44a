//! Git's smart HTTP protocol over reqwest, for the http(s) remotes libgit2's own transport
//! cannot reach: with a TLS client certificate (libgit2 has no way to present one) or through
//! a proxy with Argo CD's `noProxy` exceptions.
//!
//! libgit2 picks a transport by URL scheme, so such remotes are handed to it as
//! `ferry-https://…` (`ferry-http://…`), a scheme registered once per process; the settings
//! of the operation (client, credentials) are the calling thread's, set by [`activate`] for
//! the duration of one libgit2 call (libgit2 runs a transport on the thread that called it).

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream, Transport};
use reqwest::blocking::{Client, Response};
use reqwest::header::{self, HeaderValue};

use crate::credentials::TOKEN_USERNAME;
use crate::libgit2_settings::STALL_TIMEOUT;
use crate::repo_url::{RepoUrl, Transport as Scheme};
use crate::{Credentials, GitError, RepoCredential};

/// The prefix of the schemes this transport is registered for.
const SCHEME_PREFIX: &str = "ferry-";

thread_local! {
    static CURRENT: RefCell<Option<Arc<HttpRemote>>> = const { RefCell::new(None) };
    static TLS_FAILURE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Registers the `ferry-http` and `ferry-https` schemes with libgit2.
pub(crate) fn register() {
    for scheme in ["http", "https"] {
        // SAFETY: called once, from `libgit2_settings::apply`, before this process's first
        // libgit2 operation, so no transport is being created concurrently.
        #[allow(unsafe_code)]
        let registered = unsafe {
            git2::transport::register(&format!("{SCHEME_PREFIX}{scheme}"), |remote| {
                let http = CURRENT
                    .with(|current| current.borrow().clone())
                    .ok_or_else(|| git2::Error::from_str("no HTTP settings for this remote"))?;
                Transport::smart(remote, true, Subtransport { http })
            })
        };
        if let Err(e) = registered {
            tracing::warn!(error = %e, scheme, "could not register ferry's HTTP transport");
        }
    }
}

/// Whether `credential` needs this transport for `url`: an http(s) remote with a client
/// certificate or a proxy.
pub(crate) fn needed(url: &RepoUrl, credential: Option<&RepoCredential>) -> bool {
    matches!(url.transport, Scheme::Http | Scheme::Https)
        && credential.is_some_and(|c| {
            c.tls_client_cert.is_some() || c.proxy.as_deref().is_some_and(|p| !p.trim().is_empty())
        })
}

/// How one operation reaches one http(s) remote.
pub(crate) struct HttpRemote {
    client: Client,
    /// The repository URL without userinfo.
    base: String,
    authorization: Option<HeaderValue>,
}

impl HttpRemote {
    /// The client for `url` with `credential`: the TLS certificates `trust` configures for its
    /// host, the client certificate, the proxy unless `noProxy` covers the host.
    pub(crate) fn new(
        url: &RepoUrl,
        credential: &RepoCredential,
        trust: &Credentials,
        timeout: Duration,
    ) -> Result<Self, GitError> {
        let display = url.display();
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            GitError::InvalidCredentials(format!("{what} for repository {display}: {e}"))
        };
        let mut parsed = url::Url::parse(&url.raw).map_err(|e| GitError::InvalidUrl {
            url: display.clone(),
            reason: e.to_string(),
        })?;
        let url_user = Some(parsed.username().to_owned()).filter(|u| !u.is_empty());
        let url_password = parsed.password().map(str::to_owned);
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);

        let client = client(url, credential, trust, parsed.host_str(), timeout)?;

        let password = url_password.or_else(|| credential.password.clone());
        let authorization = match password {
            Some(password) => {
                let user = credential
                    .username
                    .clone()
                    .or(url_user)
                    .unwrap_or_else(|| TOKEN_USERNAME.to_owned());
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                let mut value = HeaderValue::from_str(&format!("Basic {token}"))
                    .map_err(|e| invalid("username/password", &e))?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(HttpRemote {
            client,
            base: parsed.as_str().trim_end_matches('/').to_owned(),
            authorization,
        })
    }

    /// The URL libgit2 is given for `url`: this transport's scheme.
    pub(crate) fn libgit2_url(url: &RepoUrl) -> String {
        format!("{SCHEME_PREFIX}{}", url.raw)
    }
}

/// A blocking HTTP client for requests on behalf of repository `url` to `host`: the TLS
/// certificates `trust` configures for `host`, `credential`'s client certificate, `insecure`,
/// and its proxy unless `noProxy` covers the host.
pub(crate) fn client(
    url: &RepoUrl,
    credential: &RepoCredential,
    trust: &Credentials,
    host: Option<&str>,
    timeout: Duration,
) -> Result<Client, GitError> {
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        GitError::InvalidCredentials(format!("{what} for repository {}: {e}", url.display()))
    };
    let mut builder = Client::builder()
        .use_rustls_tls()
        .connect_timeout(STALL_TIMEOUT)
        .timeout(timeout)
        .user_agent(concat!("git/2.0 (ferry ", env!("CARGO_PKG_VERSION"), ")"));
    if credential.insecure {
        builder = builder.danger_accept_invalid_certs(true);
    }
    if let Some(pem) = host.and_then(|h| trust.tls_certs().pem_for(h)) {
        for cert in reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| invalid("TLS certificates", &e))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let Some(cert) = &credential.tls_client_cert {
        let pem = format!("{}\n{}", cert.cert_pem.trim(), cert.key_pem.trim());
        let identity = reqwest::Identity::from_pem(pem.as_bytes())
            .map_err(|e| invalid("tlsClientCertData/tlsClientCertKey", &error_chain(&e)))?;
        builder = builder.identity(identity);
    }
    // Without a `proxy` of its own a repository is reached directly, whatever the
    // environment says (as ferry's other remotes).
    builder = match credential.proxy.as_deref().map(str::trim) {
        Some(proxy) if !proxy.is_empty() => {
            let no_proxy = credential
                .no_proxy
                .as_deref()
                .and_then(reqwest::NoProxy::from_string);
            builder.proxy(
                reqwest::Proxy::all(proxy)
                    .map_err(|e| invalid("proxy", &e))?
                    .no_proxy(no_proxy),
            )
        }
        _ => builder.no_proxy(),
    };
    builder.build().map_err(|e| invalid("HTTP client", &e))
}

/// A blocking HTTP client for requests other than Git's on behalf of repository `url` (a Helm
/// repository's `index.yaml`): the same TLS trust, client certificate, `insecure` and proxy.
pub fn repository_client(
    url: &str,
    credential: &RepoCredential,
    trust: &Credentials,
    timeout: Duration,
) -> Result<Client, GitError> {
    let parsed = RepoUrl::parse(url)?;
    let host = url::Url::parse(url.trim())
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned));
    client(&parsed, credential, trust, host.as_deref(), timeout)
}

/// While alive, this thread's libgit2 operations on `ferry-http(s)://` URLs use `remote`.
pub(crate) struct Active(());

pub(crate) fn activate(remote: Arc<HttpRemote>) -> Active {
    CURRENT.with(|current| *current.borrow_mut() = Some(remote));
    TLS_FAILURE.with(|failure| failure.borrow_mut().take());
    Active(())
}

impl Drop for Active {
    fn drop(&mut self) {
        CURRENT.with(|current| current.borrow_mut().take());
    }
}

/// The TLS failure this thread's last request met, if any (for classifying the error libgit2
/// reports afterwards).
pub(crate) fn take_tls_failure() -> Option<String> {
    TLS_FAILURE.with(|failure| failure.borrow_mut().take())
}

struct Subtransport {
    http: Arc<HttpRemote>,
}

impl SmartSubtransport for Subtransport {
    fn action(
        &self,
        _url: &str,
        service: Service,
    ) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        Ok(Box::new(Stream {
            http: self.http.clone(),
            service,
            body: Vec::new(),
            response: None,
        }))
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

/// One request: what libgit2 writes is the body, sent on its first read.
struct Stream {
    http: Arc<HttpRemote>,
    service: Service,
    body: Vec<u8>,
    response: Option<Response>,
}

impl Stream {
    fn send(&mut self) -> io::Result<Response> {
        let (path, service, advertisement) = match self.service {
            Service::UploadPackLs => ("info/refs?service=git-upload-pack", "upload-pack", true),
            Service::ReceivePackLs => ("info/refs?service=git-receive-pack", "receive-pack", true),
            Service::UploadPack => ("git-upload-pack", "upload-pack", false),
            Service::ReceivePack => ("git-receive-pack", "receive-pack", false),
        };
        let url = format!("{}/{path}", self.http.base);
        let mut request = if advertisement {
            self.http.client.get(&url)
        } else {
            self.http
                .client
                .post(&url)
                .header(
                    header::CONTENT_TYPE,
                    format!("application/x-git-{service}-request"),
                )
                .header(
                    header::ACCEPT,
                    format!("application/x-git-{service}-result"),
                )
                .body(std::mem::take(&mut self.body))
        };
        if let Some(authorization) = &self.http.authorization {
            request = request.header(header::AUTHORIZATION, authorization.clone());
        }
        let response = request.send().map_err(|e| {
            let message = error_chain(&e);
            if is_tls(&e) {
                TLS_FAILURE.with(|failure| *failure.borrow_mut() = Some(message.clone()));
            }
            io::Error::other(message)
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(io::Error::other(format!(
                "unexpected http status code: {}",
                status.as_u16()
            )));
        }
        let expected = if advertisement {
            format!("application/x-git-{service}-advertisement")
        } else {
            format!("application/x-git-{service}-result")
        };
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if content_type != expected {
            return Err(io::Error::other(format!(
                "the server answered with content type {content_type:?}, not {expected:?}: \
                 not a Git smart HTTP server"
            )));
        }
        Ok(response)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.response.is_none() {
            self.response = Some(self.send()?);
        }
        self.response.as_mut().expect("sent above").read(buf)
    }
}

impl Write for Stream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.body.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The error and its causes, joined: reqwest's own message rarely names the cause.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = cause.source();
    }
    message
}

/// Whether the failure is the TLS handshake's (a certificate refused on either side). An
/// `io::Error`'s `source` skips the error it wraps, so those are opened explicitly.
fn is_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    if error.downcast_ref::<rustls::Error>().is_some() {
        return true;
    }
    let wrapped = error
        .downcast_ref::<io::Error>()
        .and_then(|io| io.get_ref())
        .is_some_and(|inner| is_tls(inner));
    wrapped || error.source().is_some_and(is_tls)
}
