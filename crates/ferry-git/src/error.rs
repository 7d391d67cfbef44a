//! The error type of every public operation. Each variant names the repository URL with any
//! password scrubbed (see [`crate::repo_url::scrub`]), never a secret.

use std::path::PathBuf;
use std::time::Duration;

/// Cloned for every caller of an operation they shared (one ls-remote for many lookups).
#[derive(Clone, Debug, thiserror::Error)]
pub enum GitError {
    #[error("invalid repository URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error("repository {url} is unreachable or does not exist: {message}")]
    Unreachable { url: String, message: String },

    #[error("authentication to repository {url} failed: {message}")]
    AuthFailed { url: String, message: String },

    #[error("host key of repository {url} rejected: {message}")]
    HostKeyRejected { url: String, message: String },

    #[error("TLS certificate of repository {url} rejected: {message}")]
    CertificateRejected { url: String, message: String },

    /// The TLS handshake failed otherwise: a client certificate missing or refused, a protocol
    /// mismatch.
    #[error("TLS connection to repository {url} failed: {message}")]
    Tls { url: String, message: String },

    #[error("revision {revision:?} not found in repository {url}: {message}")]
    UnknownRevision {
        url: String,
        revision: String,
        message: String,
    },

    #[error("{operation} of repository {url} timed out after {after:?}")]
    Timeout {
        url: String,
        operation: &'static str,
        after: Duration,
    },

    #[error("invalid credential configuration: {0}")]
    InvalidCredentials(String),

    #[error("commit {sha} of repository {url} has an unsafe tree entry {path:?}: {reason}")]
    UnsafeTree {
        url: String,
        sha: String,
        path: PathBuf,
        reason: String,
    },

    #[error(
        "commit {sha} of repository {url} holds more than {limit} bytes of files, the most a \
         checkout may hold"
    )]
    CheckoutTooLarge {
        url: String,
        sha: String,
        limit: u64,
    },

    #[error("submodule {path:?} of repository {url}: {message}")]
    Submodule {
        url: String,
        path: PathBuf,
        message: String,
    },

    #[error(
        "push to branch {branch:?} of repository {url} was still rejected after {attempts} \
         attempts: {message}"
    )]
    PushRejected {
        url: String,
        branch: String,
        attempts: u32,
        message: String,
    },

    #[error("git operation on repository {url} failed: {message}")]
    Git { url: String, message: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::sync::Arc<std::io::Error>,
    },
}

impl GitError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        GitError::Io {
            context: context.into(),
            source: std::sync::Arc::new(source),
        }
    }
}
