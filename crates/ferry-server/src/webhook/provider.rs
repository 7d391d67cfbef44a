//! Which provider sent a delivery, told by its headers, and how each one authenticates.

use std::fmt;

use http::HeaderMap;

use super::error::WebhookError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    GitHub,
    GitLab,
    BitbucketCloud,
    BitbucketServer,
    Gitea,
    Gogs,
}

/// How a provider proves a delivery is genuine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credential {
    /// A hex HMAC-SHA256 of the body, keyed with the secret, after `prefix`.
    HmacSha256 {
        header: &'static str,
        prefix: &'static str,
    },
    /// The secret itself, sent back in a header.
    Token { header: &'static str },
}

impl Provider {
    /// The `argocd-secret` key holding this provider's secret (Gitea shares Gogs', as in Argo CD).
    pub fn secret_key(self) -> &'static str {
        match self {
            Self::GitHub => "webhook.github.secret",
            Self::GitLab => "webhook.gitlab.secret",
            Self::BitbucketCloud => "webhook.bitbucket.uuid",
            Self::BitbucketServer => "webhook.bitbucketserver.secret",
            Self::Gitea | Self::Gogs => "webhook.gogs.secret",
        }
    }

    pub(crate) fn credential(self) -> Credential {
        match self {
            Self::GitHub => Credential::HmacSha256 {
                header: "X-Hub-Signature-256",
                prefix: "sha256=",
            },
            Self::BitbucketServer => Credential::HmacSha256 {
                header: "X-Hub-Signature",
                prefix: "sha256=",
            },
            Self::Gitea => Credential::HmacSha256 {
                header: "X-Gitea-Signature",
                prefix: "",
            },
            Self::Gogs => Credential::HmacSha256 {
                header: "X-Gogs-Signature",
                prefix: "",
            },
            Self::GitLab => Credential::Token {
                header: "X-Gitlab-Token",
            },
            Self::BitbucketCloud => Credential::Token {
                header: "X-Hook-UUID",
            },
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::GitHub => "GitHub",
            Self::GitLab => "GitLab",
            Self::BitbucketCloud => "Bitbucket Cloud",
            Self::BitbucketServer => "Bitbucket Server",
            Self::Gitea => "Gitea",
            Self::Gogs => "Gogs",
        })
    }
}

/// A header's value, if present, text and not blank.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// The provider and the event name of a delivery. Gitea and Gogs come first because Gitea also
/// sends GitHub's headers, with a payload GitHub's parser must not see.
pub(crate) fn detect(headers: &HeaderMap) -> Result<(Provider, &str), WebhookError> {
    if let Some(event) = header(headers, "x-gitea-event") {
        return Ok((Provider::Gitea, event));
    }
    if let Some(event) = header(headers, "x-gogs-event") {
        return Ok((Provider::Gogs, event));
    }
    if let Some(event) = header(headers, "x-github-event") {
        return Ok((Provider::GitHub, event));
    }
    if let Some(event) = header(headers, "x-gitlab-event") {
        return Ok((Provider::GitLab, event));
    }
    if let Some(event) = header(headers, "x-event-key") {
        // Both Bitbucket flavours send X-Event-Key; only the Cloud names a hook UUID, and only
        // the Cloud's push is `repo:push` (the Server's is `repo:refs_changed`).
        let cloud = event == "repo:push" || header(headers, "x-hook-uuid").is_some();
        let provider = if cloud {
            Provider::BitbucketCloud
        } else {
            Provider::BitbucketServer
        };
        return Ok((provider, event));
    }
    Err(WebhookError::UnknownSender)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn detected(
        pairs: &[(&'static str, &'static str)],
    ) -> Result<(Provider, String), WebhookError> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        detect(&headers).map(|(provider, event)| (provider, event.to_string()))
    }

    #[test]
    fn providers_are_told_by_their_headers() {
        assert_eq!(
            detected(&[("x-github-event", "push")]),
            Ok((Provider::GitHub, "push".into()))
        );
        assert_eq!(
            detected(&[("x-gitlab-event", "Tag Push Hook")]),
            Ok((Provider::GitLab, "Tag Push Hook".into()))
        );
        assert_eq!(
            detected(&[("x-event-key", "repo:push"), ("x-hook-uuid", "u")]),
            Ok((Provider::BitbucketCloud, "repo:push".into()))
        );
        assert_eq!(
            detected(&[("x-event-key", "repo:push")]),
            Ok((Provider::BitbucketCloud, "repo:push".into()))
        );
        assert_eq!(
            detected(&[("x-event-key", "repo:refs_changed")]),
            Ok((Provider::BitbucketServer, "repo:refs_changed".into()))
        );
        assert_eq!(
            detected(&[("x-gogs-event", "push")]),
            Ok((Provider::Gogs, "push".into()))
        );
        assert_eq!(
            detected(&[
                ("x-github-event", "push"),
                ("x-gogs-event", "push"),
                ("x-gitea-event", "push")
            ]),
            Ok((Provider::Gitea, "push".into()))
        );
        assert_eq!(
            detected(&[("x-github-event", "  ")]),
            Err(WebhookError::UnknownSender)
        );
    }
}
