//! One network operation against a remote (blocking, libgit2): credentials, host key checks,
//! cancellation at a deadline, and turning libgit2's errors into [`GitError`] variants.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use git2::{
    CertificateCheckStatus, Cred, CredentialType, Direction, ErrorClass, ErrorCode, FetchOptions,
    FetchPrune, PushOptions, RemoteCallbacks, Repository,
};

use crate::http_transport::{self, HttpRemote};
use crate::known_hosts::Distrust;
use crate::repo_url::{RepoUrl, Transport, scrub};
use crate::{Credentials, GitError, RemoteRef, RepoCredential};

/// What the callbacks observed, to classify the error libgit2 reports afterwards.
#[derive(Default)]
struct Observed {
    host_key_rejected: Option<String>,
    tls_rejected: Option<String>,
    auth_failed: Option<String>,
    deadline_passed: bool,
    tried_ssh_key: bool,
    tried_password: bool,
}

pub(crate) struct Session<'a> {
    url: &'a RepoUrl,
    credential: Option<RepoCredential>,
    /// Where the trusted ssh host keys and TLS certificates come from.
    trust: &'a Credentials,
    timeout: Duration,
    deadline: Instant,
    observed: Rc<RefCell<Observed>>,
}

impl<'a> Session<'a> {
    pub fn new(
        url: &'a RepoUrl,
        credential: Option<RepoCredential>,
        trust: &'a Credentials,
        timeout: Duration,
    ) -> Self {
        Session {
            url,
            credential,
            trust,
            timeout,
            deadline: Instant::now() + timeout,
            observed: Rc::default(),
        }
    }

    /// The URL libgit2 is given, and the settings of ferry's HTTP transport while it needs them
    /// (see [`http_transport`]).
    fn libgit2_url(
        &self,
        credential: Option<&RepoCredential>,
    ) -> Result<(String, Option<http_transport::Active>), GitError> {
        if !http_transport::needed(self.url, credential) {
            return Ok((self.url.raw.clone(), None));
        }
        let http = HttpRemote::new(
            self.url,
            credential.expect("needed implies a credential"),
            self.trust,
            self.remaining(),
        )?;
        Ok((
            HttpRemote::libgit2_url(self.url),
            Some(http_transport::activate(std::sync::Arc::new(http))),
        ))
    }

    fn remaining(&self) -> Duration {
        self.deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1))
    }

    /// The credential the operation authenticates with: a GitHub App's is its installation
    /// token (fetched, or cached), as the password of `x-access-token` over https.
    fn effective_credential(&self) -> Result<Option<RepoCredential>, GitError> {
        let Some(credential) = &self.credential else {
            return Ok(None);
        };
        let https = matches!(self.url.transport, Transport::Http | Transport::Https);
        let Some(app) = credential
            .github_app
            .as_ref()
            .filter(|_| https && credential.password.is_none())
        else {
            return Ok(Some(credential.clone()));
        };
        let api = app.api();
        let api_host = url::Url::parse(&api)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned));
        let client = http_transport::client(
            self.url,
            credential,
            self.trust,
            api_host.as_deref(),
            self.remaining(),
        )?;
        let token = app.token(&client, &self.url.display())?;
        Ok(Some(RepoCredential {
            username: Some(crate::TOKEN_USERNAME.to_owned()),
            password: Some(token),
            ..credential.clone()
        }))
    }

    /// `git ls-remote`: the advertised refs, without fetching.
    pub fn ls_remote(&self) -> Result<Vec<RemoteRef>, GitError> {
        let classify = |e| self.classify(e, "ls-remote");
        let credential = self.effective_credential()?;
        let (url, _http) = self.libgit2_url(credential.as_ref())?;
        let mut remote = git2::Remote::create_detached(url.as_str()).map_err(classify)?;
        let connection = remote
            .connect_auth(Direction::Fetch, Some(self.callbacks(credential)), None)
            .map_err(classify)?;
        let heads = connection.list().map_err(classify)?;
        Ok(heads
            .iter()
            .map(|head| RemoteRef {
                name: head.name().to_owned(),
                sha: head.oid().to_string(),
                symref_target: head.symref_target().map(str::to_owned),
            })
            .collect())
    }

    /// Fetch `refspecs` into `repo` (a bare mirror), pruning refs deleted upstream.
    pub fn fetch(&self, repo: &Repository, refspecs: &[&str]) -> Result<(), GitError> {
        let classify = |e| self.classify(e, "fetch");
        let credential = self.effective_credential()?;
        let (url, _http) = self.libgit2_url(credential.as_ref())?;
        let mut remote = repo.remote_anonymous(&url).map_err(classify)?;
        let mut options = FetchOptions::new();
        options
            .remote_callbacks(self.callbacks(credential))
            .prune(FetchPrune::On)
            .download_tags(git2::AutotagOption::None)
            .update_fetchhead(false);
        remote
            .fetch(refspecs, Some(&mut options), None)
            .map_err(classify)
    }

    /// Push `refspec` (`<local ref>:<remote ref>`, never forced) from `repo`. `Ok(Some(why))`
    /// when the remote ref was not updated because it moved: libgit2 refuses a push that is not
    /// a fast-forward of what the remote advertised, the server refuses an update whose old
    /// value is no longer the ref's (a concurrent push in between), and a remote ref that is
    /// already the pushed commit means another writer made the very same commit (same parent,
    /// tree, author, message and second) meanwhile: the push would change nothing.
    pub fn push(&self, repo: &Repository, refspec: &str) -> Result<Option<String>, GitError> {
        let classify = |e| self.classify(e, "push");
        let credential = self.effective_credential()?;
        let (url, _http) = self.libgit2_url(credential.as_ref())?;
        let mut remote = repo.remote_anonymous(&url).map_err(classify)?;
        let rejected = Rc::new(RefCell::new(None));
        let mut callbacks = self.callbacks(credential);
        let seen = rejected.clone();
        callbacks.push_update_reference(move |_, status| {
            if let Some(status) = status {
                *seen.borrow_mut() = Some(status.to_owned());
            }
            Ok(())
        });
        let identical = rejected.clone();
        callbacks.push_negotiation(move |updates| {
            if updates.iter().any(|update| update.src() == update.dst()) {
                *identical.borrow_mut() =
                    Some("the branch already has this very commit, made concurrently".to_owned());
                return Err(git2::Error::from_str("the remote already has this commit"));
            }
            Ok(())
        });
        let mut options = PushOptions::new();
        options.remote_callbacks(callbacks);
        match remote.push(&[refspec], Some(&mut options)) {
            Ok(()) => Ok(rejected.take()),
            Err(_) if rejected.borrow().is_some() => Ok(rejected.take()),
            Err(e) if e.code() == ErrorCode::NotFastForward => Ok(Some(scrub(e.message()))),
            Err(e) => Err(classify(e)),
        }
    }

    /// Callbacks for one operation (ls-remote or fetch): each may offer the secrets anew.
    fn callbacks(&self, credential: Option<RepoCredential>) -> RemoteCallbacks<'_> {
        *self.observed.borrow_mut() = Observed::default();
        let mut callbacks = RemoteCallbacks::new();
        let observed = self.observed.clone();
        let credential = credential.unwrap_or_default();
        callbacks.credentials(move |_url, username_from_url, allowed| {
            let mut observed = observed.borrow_mut();
            let result = supply_credentials(&credential, username_from_url, allowed, &mut observed);
            if let Err(e) = &result {
                observed.auth_failed = Some(e.message().to_owned());
            }
            result
        });

        let observed = self.observed.clone();
        callbacks.certificate_check(move |cert, host| {
            if self.credential.as_ref().is_some_and(|c| c.insecure) {
                return Ok(CertificateCheckStatus::CertificateOk);
            }
            // X.509 (https) certificates: libgit2 verifies them against the system CAs; the
            // certificates configured for the host are trusted too.
            if let Some(x509) = cert.as_x509() {
                return Ok(match self.trust.tls_certs().verify(host, x509.data()) {
                    Some(Ok(())) => CertificateCheckStatus::CertificateOk,
                    Some(Err(why)) => {
                        observed.borrow_mut().tls_rejected = Some(why);
                        CertificateCheckStatus::CertificatePassthrough
                    }
                    None => CertificateCheckStatus::CertificatePassthrough,
                });
            }
            let Some(hostkey) = cert.as_hostkey() else {
                return Ok(CertificateCheckStatus::CertificatePassthrough);
            };
            let verdict = match (&self.url.ssh_endpoint, hostkey.hostkey()) {
                (Some((host, port)), Some(key)) => {
                    self.trust.known_hosts().verify(host, *port, key)
                }
                _ => Err(Distrust::Malformed(
                    "the server's host key is unavailable".to_owned(),
                )),
            };
            verdict
                .map(|()| CertificateCheckStatus::CertificateOk)
                .map_err(|distrust| {
                    let message = describe(distrust, self.url);
                    observed.borrow_mut().host_key_rejected = Some(message.clone());
                    git2::Error::new(ErrorCode::Certificate, ErrorClass::Ssh, message)
                })
        });

        // Returning false from the progress callbacks cancels the transfer.
        let (observed, deadline) = (self.observed.clone(), self.deadline);
        let in_time = move || {
            let ok = Instant::now() < deadline;
            if !ok {
                observed.borrow_mut().deadline_passed = true;
            }
            ok
        };
        let in_time_too = in_time.clone();
        callbacks.transfer_progress(move |_| in_time());
        callbacks.sideband_progress(move |_| in_time_too());
        callbacks
    }

    /// Map a libgit2 error to the variant callers act on, with secrets scrubbed.
    fn classify(&self, error: git2::Error, operation: &'static str) -> GitError {
        let url = self.url.display();
        let message = scrub(error.message());
        let observed = self.observed.borrow();
        if let Some(message) = &observed.host_key_rejected {
            return GitError::HostKeyRejected {
                url,
                message: message.clone(),
            };
        }
        if let Some(message) = &observed.tls_rejected
            && (error.code() == ErrorCode::Certificate || error.class() == ErrorClass::Ssl)
        {
            return GitError::CertificateRejected {
                url,
                message: message.clone(),
            };
        }
        if let Some(message) = http_transport::take_tls_failure() {
            return GitError::Tls { url, message };
        }
        if let Some(message) = &observed.auth_failed {
            return GitError::AuthFailed {
                url,
                message: message.clone(),
            };
        }
        if observed.deadline_passed {
            return GitError::Timeout {
                url,
                operation,
                after: self.timeout,
            };
        }
        let lower = message.to_lowercase();
        let auth = error.code() == ErrorCode::Auth
            || lower.contains("status code: 401")
            || lower.contains("status code: 403")
            || (error.class() == ErrorClass::Ssh && lower.contains("authenticat"));
        let unreachable = matches!(error.class(), ErrorClass::Net | ErrorClass::Os)
            || lower.contains("status code: 404")
            || lower.contains("could not find repository")
            || lower.contains("not exported")
            || lower.contains("does not appear to be a git repository");
        if auth {
            GitError::AuthFailed { url, message }
        } else if error.class() == ErrorClass::Ssl {
            // OpenSSL reports a server refusing a client without certificate vaguely.
            let message = format!(
                "{message} (a server requiring a TLS client certificate ends the handshake so; \
                 a repository Secret gives one in tlsClientCertData and tlsClientCertKey)"
            );
            GitError::Tls { url, message }
        } else if unreachable {
            GitError::Unreachable { url, message }
        } else {
            GitError::Git { url, message }
        }
    }
}

/// Offer each kind of secret once: a second request means the server refused it.
fn supply_credentials(
    credential: &RepoCredential,
    username_from_url: Option<&str>,
    allowed: CredentialType,
    observed: &mut Observed,
) -> Result<Cred, git2::Error> {
    let refused = |what: &str| git2::Error::new(ErrorCode::Auth, ErrorClass::Callback, what);
    let ssh_user = username_from_url
        .or(credential.username.as_deref())
        .unwrap_or("git");
    if allowed.contains(CredentialType::USERNAME) {
        return Cred::username(ssh_user);
    }
    if allowed.contains(CredentialType::SSH_KEY)
        && let Some(key) = &credential.ssh_private_key
    {
        if std::mem::replace(&mut observed.tried_ssh_key, true) {
            return Err(refused("the server refused the ssh private key"));
        }
        return Cred::ssh_key_from_memory(ssh_user, None, key, None)
            .map_err(|e| refused(&format!("unusable ssh private key: {}", e.message())));
    }
    if allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
        && let Some(password) = &credential.password
    {
        if std::mem::replace(&mut observed.tried_password, true) {
            return Err(refused("the server refused the username/password"));
        }
        let username = credential
            .username
            .as_deref()
            .or(username_from_url)
            .unwrap_or(crate::credentials::TOKEN_USERNAME);
        return Cred::userpass_plaintext(username, password);
    }
    Err(refused(
        "the server requires credentials and none are configured for this repository",
    ))
}

fn describe(distrust: Distrust, url: &RepoUrl) -> String {
    let (host, port) = url.ssh_endpoint.clone().unwrap_or_default();
    match distrust {
        Distrust::Unknown => format!("no known_hosts entry for {host} port {port}"),
        Distrust::Mismatch { known_algorithms } => format!(
            "the key of {host} port {port} differs from its known_hosts entries ({})",
            known_algorithms.join(", ")
        ),
        Distrust::Revoked => format!("the key of {host} port {port} is marked @revoked"),
        Distrust::Malformed(reason) => {
            format!("unusable host key from {host} port {port}: {reason}")
        }
    }
}
