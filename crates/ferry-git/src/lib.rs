//! Git access: mirror cache, revision resolution, credentials, checkouts.
//!
//! [`RepoCache`] keeps one bare mirror per repository URL and credential under a root directory
//! (so cached commits never outlive access: see [`RepoCache`]) and answers the
//! repo service's questions with Argo CD's semantics: which commit a `targetRevision` names
//! ([`RepoCache::resolve`]), what the remote advertises ([`RepoCache::ls_remote`]), the files
//! of a commit ([`RepoCache::checkout`]) and what Argo CD shows of one
//! ([`RepoCache::commit_metadata`]). Remotes are reached over file://, git://, http(s):// and
//! ssh (scp-like `user@host:path` too) with the [`Credentials`] that match the URL and the app's
//! AppProject ([`RepoCache::for_project`], [`Credentials::lookup`]); ssh host keys
//! are checked against known_hosts unless the credential is `insecure`. Errors name the URL with
//! any password scrubbed; secrets are never logged.
//!
//! [`push::commit_and_push`] writes: an edit of a branch's files committed and pushed with the
//! same credentials, retried on top of concurrent pushes, never empty and never forced.

mod access;
mod cache;
mod checkout;
mod credentials;
mod error;
pub mod github_app;
pub mod gpg_keys;
mod http_transport;
mod known_hosts;
mod libgit2_settings;
mod metadata;
mod mirror;
pub mod push;
mod remote;
pub mod repo_url;
mod revision;
pub mod signature;
mod tls_certs;
pub mod version_constraint;

pub use cache::{DEFAULT_TIMEOUT, GitRequest, RepoCache, RequestObserver};
pub use checkout::{Checkout, CheckoutOptions};
pub use credentials::{ClientCert, Credentials, RepoCredential, TOKEN_USERNAME};
pub use error::GitError;
pub use github_app::GithubApp;
pub use http_transport::repository_client;
pub use metadata::CommitMetadata;
pub use revision::{RemoteRef, Resolved};
pub use tls_certs::TlsCerts;
