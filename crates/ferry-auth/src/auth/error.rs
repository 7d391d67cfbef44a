//! Why an authentication step failed. Messages name accounts, settings keys and token ids, never
//! a password, hash, signing key or token.

use super::accounts::Capability;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A setting of `argocd-cm` or `argocd-secret` that cannot be read.
    #[error("{object} {key}: {reason}")]
    Setting {
        object: &'static str,
        key: String,
        reason: String,
    },
    #[error("argocd-secret has no server.secretkey: tokens can be neither signed nor verified")]
    NoServerKey,
    /// Deliberately the same for an unknown user and a wrong password.
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("usernames are at most {max} bytes long")]
    UsernameTooLong { max: usize },
    /// Said of any username, known or not, so it tells nothing about which accounts exist;
    /// `scope` is `for this username` or `from this address`.
    #[error("too many failed login attempts {scope}: try again in {retry_after_secs} s")]
    TooManyFailedLogins {
        retry_after_secs: u64,
        scope: &'static str,
    },
    #[error("account {account} does not exist")]
    UnknownAccount { account: String },
    #[error("account {account} is disabled")]
    AccountDisabled { account: String },
    #[error("account {account} does not have the {capability} capability")]
    MissingCapability {
        account: String,
        capability: Capability,
    },
    #[error("password refused: {reason}")]
    PasswordRefused { reason: String },
    #[error("hashing the password failed: {reason}")]
    Hashing { reason: String },
    #[error("a token lifetime of {secs} s is out of range")]
    LifetimeOutOfRange { secs: u64 },
    #[error("signing the token failed: {reason}")]
    Signing { reason: String },
    #[error("invalid token: {reason}")]
    InvalidToken { reason: String },
    #[error("invalid token: the signature does not match server.secretkey")]
    BadSignature,
    #[error("the token has expired")]
    TokenExpired,
    #[error("the token is not valid yet")]
    TokenNotYetValid,
    #[error("the password of account {account} has changed since the token was issued")]
    PasswordChanged { account: String },
    /// `token` says which: `id <jti>`, or `issued at <iat>` for old project tokens without an id.
    #[error("the token ({token}) of {subject} is no longer listed: it was revoked")]
    TokenRevoked { subject: String, token: String },
    #[error("AppProject {project} does not exist")]
    UnknownProject { project: String },
    #[error("AppProject {project} has no role {role:?}")]
    UnknownRole { project: String, role: String },
    #[error("{action}: {source}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error("{name} kept changing while ferry was writing it; try again")]
    Contended { name: &'static str },
}

impl AuthError {
    pub(crate) fn invalid_token(reason: impl Into<String>) -> Self {
        Self::InvalidToken {
            reason: reason.into(),
        }
    }

    pub(crate) fn kube(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let action = action.into();
        move |source| Self::Kube { action, source }
    }
}
