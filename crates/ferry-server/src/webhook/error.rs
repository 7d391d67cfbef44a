//! Why a webhook delivery leads to no refresh.

use super::MAX_PAYLOAD_BYTES;
use super::provider::Provider;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the payload is {size} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit")]
    TooLarge { size: usize },
    #[error(
        "not a Git push webhook: none of the X-GitHub-Event, X-Gitlab-Event, X-Event-Key, \
         X-Gitea-Event or X-Gogs-Event headers is set"
    )]
    UnknownSender,
    #[error(
        "{provider} webhooks are refused: no secret is configured (set `{key}` in the \
         argocd-secret Secret)"
    )]
    SecretNotConfigured {
        provider: Provider,
        key: &'static str,
    },
    #[error("{provider} webhook refused: the {header} header is missing")]
    MissingSignature {
        provider: Provider,
        header: &'static str,
    },
    #[error("{provider} webhook refused: the {header} header does not match the configured secret")]
    BadSignature {
        provider: Provider,
        header: &'static str,
    },
    /// The provider checking that the webhook works: answer it, refresh nothing.
    #[error("{provider} ping: the webhook works, there is nothing to refresh")]
    Ping { provider: Provider },
    #[error("{provider} event {event:?} is not a push: ignored")]
    NotAPush { provider: Provider, event: String },
    /// A pull request event of an action that changes no generator's output (an edit, a review).
    #[error(
        "{provider} event {event:?} with action {action:?} changes no generated pull request \
         list: ignored"
    )]
    IgnoredAction {
        provider: Provider,
        event: String,
        action: String,
    },
    #[error("malformed {provider} webhook payload: {reason}")]
    Malformed { provider: Provider, reason: String },
}

impl WebhookError {
    /// The provider the delivery came from, when its headers told.
    pub fn provider(&self) -> Option<Provider> {
        match self {
            Self::TooLarge { .. } | Self::UnknownSender => None,
            Self::SecretNotConfigured { provider, .. }
            | Self::MissingSignature { provider, .. }
            | Self::BadSignature { provider, .. }
            | Self::Ping { provider }
            | Self::NotAPush { provider, .. }
            | Self::IgnoredAction { provider, .. }
            | Self::Malformed { provider, .. } => Some(*provider),
        }
    }

    pub(crate) fn malformed(provider: Provider, reason: impl Into<String>) -> Self {
        Self::Malformed {
            provider,
            reason: reason.into(),
        }
    }

    pub(crate) fn not_a_push(provider: Provider, event: &str) -> Self {
        Self::NotAPush {
            provider,
            event: event.to_string(),
        }
    }
}
