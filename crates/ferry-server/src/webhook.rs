//! Git providers' push and pull request webhooks: who sent one, whether it is genuine, what it
//! pushed or which pull requests changed, and which Application sources or ApplicationSet
//! generators it concerns. Nothing here refreshes anything; the server does that with what
//! [`parse`], [`matches`] and [`PullRequestEvent::concerns`] tell it.
//!
//! Supported: GitHub (and GitHub Enterprise), GitLab, Bitbucket Cloud, Bitbucket Server (Data
//! Center), Gitea and Gogs, authenticated with the secrets Argo CD keeps in `argocd-secret`.
//! Unlike Argo CD, which accepts any payload of a provider whose secret is not set, ferry refuses
//! them: an unauthenticated webhook would let anyone make it fetch every repository at will.

mod bitbucket_cloud;
mod bitbucket_server;
mod error;
mod event;
mod github;
mod gitlab;
mod gogs;
mod matching;
mod provider;
mod pull_request;
mod secrets;
mod verify;

use http::HeaderMap;

pub use error::WebhookError;
pub use event::{PushEvent, PushedRef, RefKind};
pub use matching::{matches, same_repository};
pub use provider::Provider;
pub use pull_request::{PullRequestEvent, PullRequestRepository};
pub use secrets::WebhookSecrets;

/// The largest payload accepted, in bytes (1 MiB). Push payloads are far smaller, except for
/// pushes of thousands of commits; larger bodies are refused before any work is done.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// What a verified delivery reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    Push(PushEvent),
    /// A GitHub pull request or GitLab merge request event, for pull-request generators.
    PullRequest(PullRequestEvent),
}

/// The push or pull request event a webhook delivery reports, once its sender, size and
/// signature check out. Pings and other events are errors ([`WebhookError::Ping`],
/// [`WebhookError::NotAPush`], [`WebhookError::IgnoredAction`]) so that nothing but a verified
/// event ever reaches a refresh.
pub fn parse(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &WebhookSecrets,
) -> Result<WebhookEvent, WebhookError> {
    if body.len() > MAX_PAYLOAD_BYTES {
        return Err(WebhookError::TooLarge { size: body.len() });
    }
    let (provider, event) = provider::detect(headers)?;
    let secret = secrets
        .get(provider)
        .ok_or(WebhookError::SecretNotConfigured {
            provider,
            key: provider.secret_key(),
        })?;
    verify::authenticate(provider, headers, body, secret)?;
    match (provider, event) {
        (Provider::GitHub, "pull_request") => {
            pull_request::github(event, body).map(WebhookEvent::PullRequest)
        }
        (Provider::GitLab, "Merge Request Hook") => {
            pull_request::gitlab(event, body).map(WebhookEvent::PullRequest)
        }
        _ => parse_push(provider, event, body).map(WebhookEvent::Push),
    }
}

fn parse_push(provider: Provider, event: &str, body: &[u8]) -> Result<PushEvent, WebhookError> {
    let push = match provider {
        Provider::GitHub => github::parse(event, body)?,
        Provider::GitLab => gitlab::parse(event, body)?,
        Provider::BitbucketCloud => bitbucket_cloud::parse(event, body)?,
        Provider::BitbucketServer => bitbucket_server::parse(event, body)?,
        Provider::Gitea | Provider::Gogs => gogs::parse(provider, event, body)?,
    };
    if push.repo_urls.is_empty() {
        return Err(WebhookError::malformed(
            provider,
            "the payload names no repository URL",
        ));
    }
    if push.revision_refs.is_empty() {
        return Err(WebhookError::malformed(
            provider,
            "the payload names no pushed ref",
        ));
    }
    Ok(push)
}

/// A recorded provider payload from `tests/fixtures/webhook/`, for the tests of every provider.
#[cfg(test)]
fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/webhook/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use hmac::{Hmac, Mac};
    use http::{HeaderName, HeaderValue};
    use sha2::Sha256;

    use super::*;

    const SECRET: &str = "It's a Secret to Everybody";
    const UUID: &str = "{0d0b4d0c-6a8f-4c55-9d0e-2a6f1e3b7c44}";

    /// The push a delivery reports.
    fn delivered_push(
        headers: &HeaderMap,
        body: &[u8],
        secrets: &WebhookSecrets,
    ) -> Result<PushEvent, WebhookError> {
        parse(headers, body, secrets).map(|event| match event {
            WebhookEvent::Push(push) => push,
            other => panic!("not a push: {other:?}"),
        })
    }

    fn all_secrets() -> WebhookSecrets {
        let mut data = BTreeMap::new();
        for key in [
            "webhook.github.secret",
            "webhook.gitlab.secret",
            "webhook.bitbucketserver.secret",
            "webhook.gogs.secret",
        ] {
            data.insert(key.to_string(), SECRET.as_bytes().to_vec());
        }
        data.insert("webhook.bitbucket.uuid".into(), UUID.as_bytes().to_vec());
        WebhookSecrets::from_secret_data(&data)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                )
            })
            .collect()
    }

    fn hmac_hex(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    /// A delivery as each provider signs it, with `secret`.
    fn signed(provider: Provider, event: &str, body: &[u8], secret: &str) -> HeaderMap {
        let signature = hmac_hex(secret, body);
        match provider {
            Provider::GitHub => headers(&[
                ("X-GitHub-Event", event),
                ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
                ("X-Hub-Signature-256", &format!("sha256={signature}")),
            ]),
            Provider::GitLab => headers(&[("X-Gitlab-Event", event), ("X-Gitlab-Token", secret)]),
            Provider::BitbucketCloud => headers(&[("X-Event-Key", event), ("X-Hook-UUID", secret)]),
            Provider::BitbucketServer => headers(&[
                ("X-Event-Key", event),
                ("X-Request-Id", "3b4b5e8a-0c2f-4d8e-9f1a-6b7c8d9e0f1a"),
                ("X-Hub-Signature", &format!("sha256={signature}")),
            ]),
            // Gitea sends its own headers, Gogs' and GitHub's (with a signature of its own).
            Provider::Gitea => headers(&[
                ("X-Gitea-Event", event),
                ("X-Gitea-Signature", &signature),
                ("X-Gogs-Event", event),
                ("X-Gogs-Signature", &signature),
                ("X-GitHub-Event", event),
                ("X-Hub-Signature-256", &format!("sha256={signature}")),
            ]),
            Provider::Gogs => headers(&[("X-Gogs-Event", event), ("X-Gogs-Signature", &signature)]),
        }
    }

    /// Each provider's push fixture, the event it comes with and its credential.
    fn deliveries() -> Vec<(Provider, &'static str, &'static str, &'static str)> {
        vec![
            (Provider::GitHub, "push", "github-push.json", SECRET),
            (Provider::GitLab, "Push Hook", "gitlab-push.json", SECRET),
            (
                Provider::BitbucketCloud,
                "repo:push",
                "bitbucket-cloud-push.json",
                UUID,
            ),
            (
                Provider::BitbucketServer,
                "repo:refs_changed",
                "bitbucket-server-refs-changed.json",
                SECRET,
            ),
            (Provider::Gitea, "push", "gitea-push.json", SECRET),
            (Provider::Gogs, "push", "gogs-push.json", SECRET),
        ]
    }

    #[test]
    fn genuine_pushes_of_every_provider_are_accepted() {
        for (provider, event, file, credential) in deliveries() {
            let body = fixture(file);
            let push = delivered_push(
                &signed(provider, event, &body, credential),
                &body,
                &all_secrets(),
            )
            .unwrap_or_else(|err| panic!("{file}: {err}"));
            assert_eq!(push.provider, provider, "{file}");
            assert!(!push.repo_urls.is_empty(), "{file}");
            assert!(!push.revision_refs.is_empty(), "{file}");
        }
    }

    #[test]
    fn forged_and_unsigned_pushes_are_refused() {
        for (provider, event, file, _) in deliveries() {
            let body = fixture(file);
            let forged = signed(provider, event, &body, "not the secret");
            let err = parse(&forged, &body, &all_secrets()).unwrap_err();
            assert!(
                matches!(err, WebhookError::BadSignature { provider: p, .. } if p == provider),
                "{file}: {err}"
            );

            // A genuine signature of another body does not carry over.
            let mut tampered = body.clone();
            tampered.extend_from_slice(b" ");
            let genuine = signed(provider, event, &body, SECRET);
            if provider != Provider::GitLab && provider != Provider::BitbucketCloud {
                let err = parse(&genuine, &tampered, &all_secrets()).unwrap_err();
                assert!(
                    matches!(err, WebhookError::BadSignature { .. }),
                    "{file}: {err}"
                );
            }

            let mut unsigned = genuine.clone();
            for header in [
                "x-hub-signature-256",
                "x-hub-signature",
                "x-gitlab-token",
                "x-hook-uuid",
                "x-gitea-signature",
                "x-gogs-signature",
            ] {
                unsigned.remove(header);
            }
            if provider == Provider::BitbucketCloud {
                // Without its UUID header, a Bitbucket Cloud push is still recognised by its event.
                assert_eq!(provider::detect(&unsigned).unwrap().0, provider);
            }
            let err = parse(&unsigned, &body, &all_secrets()).unwrap_err();
            assert!(
                matches!(err, WebhookError::MissingSignature { provider: p, .. } if p == provider),
                "{file}: {err}"
            );
        }
    }

    #[test]
    fn providers_without_a_secret_are_refused_naming_the_key() {
        let body = fixture("github-push.json");
        let err = delivered_push(
            &signed(Provider::GitHub, "push", &body, SECRET),
            &body,
            &WebhookSecrets::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "GitHub webhooks are refused: no secret is configured (set `webhook.github.secret` \
             in the argocd-secret Secret)"
        );
        let only_gitlab = WebhookSecrets::from_secret_data(&BTreeMap::from([(
            "webhook.gitlab.secret".to_string(),
            SECRET.as_bytes().to_vec(),
        )]));
        let body = fixture("gitea-push.json");
        let err = delivered_push(
            &signed(Provider::Gitea, "push", &body, SECRET),
            &body,
            &only_gitlab,
        )
        .unwrap_err();
        assert_eq!(
            err,
            WebhookError::SecretNotConfigured {
                provider: Provider::Gitea,
                key: "webhook.gogs.secret"
            }
        );
    }

    #[test]
    fn pings_and_other_events_are_not_pushes() {
        let body = fixture("github-ping.json");
        let err = delivered_push(
            &signed(Provider::GitHub, "ping", &body, SECRET),
            &body,
            &all_secrets(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            WebhookError::Ping {
                provider: Provider::GitHub
            }
        );
        let body = b"{\"action\": \"opened\"}";
        let err = delivered_push(
            &signed(Provider::GitHub, "issues", body, SECRET),
            body,
            &all_secrets(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "GitHub event \"issues\" is not a push: ignored"
        );
        let body = b"{\"test\": true}";
        let err = delivered_push(
            &signed(Provider::BitbucketServer, "diagnostics:ping", body, SECRET),
            body,
            &all_secrets(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            WebhookError::Ping {
                provider: Provider::BitbucketServer
            }
        );
        // A forged ping is refused as a forgery, not answered.
        let err = delivered_push(
            &signed(
                Provider::BitbucketServer,
                "diagnostics:ping",
                body,
                "forged",
            ),
            body,
            &all_secrets(),
        )
        .unwrap_err();
        assert!(matches!(err, WebhookError::BadSignature { .. }), "{err}");
    }

    #[test]
    fn unknown_senders_are_refused() {
        let err = delivered_push(
            &headers(&[("User-Agent", "curl/8.0")]),
            b"{}",
            &all_secrets(),
        )
        .unwrap_err();
        assert_eq!(err, WebhookError::UnknownSender);
    }

    #[test]
    fn oversize_bodies_are_refused_before_anything_else() {
        let body = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        let err = parse(&HeaderMap::new(), &body, &WebhookSecrets::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the payload is 1048577 bytes, over the 1048576-byte limit"
        );
        let body = vec![b' '; MAX_PAYLOAD_BYTES];
        let err = parse(&HeaderMap::new(), &body, &WebhookSecrets::default()).unwrap_err();
        assert_eq!(err, WebhookError::UnknownSender);
    }

    #[test]
    fn malformed_payloads_say_where() {
        let body = b"{\"ref\": \"refs/heads/main\", \"repository\": {\"html_url\": 42}}";
        let err = delivered_push(
            &signed(Provider::GitHub, "push", body, SECRET),
            body,
            &all_secrets(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed GitHub webhook payload: repository.html_url: invalid type: integer `42`, \
             expected a string at line 1 column 56"
        );
        let body = b"not json";
        let err = delivered_push(
            &signed(Provider::GitLab, "Push Hook", body, SECRET),
            body,
            &all_secrets(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("malformed GitLab webhook payload: expected ident"),
            "{err}"
        );
        let body = b"{\"ref\": \"refs/heads/main\", \"repository\": {}}";
        let err = delivered_push(
            &signed(Provider::Gogs, "push", body, SECRET),
            body,
            &all_secrets(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed Gogs webhook payload: the payload names no repository URL"
        );
    }

    #[test]
    fn pushes_match_the_apps_they_concern() {
        let body = fixture("github-push.json");
        let push = delivered_push(
            &signed(Provider::GitHub, "push", &body, SECRET),
            &body,
            &all_secrets(),
        )
        .unwrap();
        assert!(matches(
            "git@github.com:octo-org/guestbook.git",
            "HEAD",
            &push
        ));
        assert!(matches(
            "https://github.com/Octo-Org/guestbook",
            "main",
            &push
        ));
        assert!(!matches(
            "https://github.com/octo-org/guestbook",
            "v1.4.0",
            &push
        ));
        assert!(!matches("https://github.com/octo-org/other", "main", &push));

        let body = fixture("github-tag.json");
        let push = delivered_push(
            &signed(Provider::GitHub, "push", &body, SECRET),
            &body,
            &all_secrets(),
        )
        .unwrap();
        assert!(matches(
            "https://github.com/octo-org/guestbook.git",
            "v1.4.0",
            &push
        ));
        assert!(matches(
            "ssh://git@github.com/octo-org/guestbook",
            "refs/tags/v1.4.0",
            &push
        ));
        assert!(!matches(
            "https://github.com/octo-org/guestbook",
            "HEAD",
            &push
        ));
    }

    /// GitHub's and GitLab's pull request deliveries, each with its event and fixture.
    fn pull_request_deliveries() -> [(Provider, &'static str, &'static str); 2] {
        [
            (Provider::GitHub, "pull_request", "github-pull-request.json"),
            (
                Provider::GitLab,
                "Merge Request Hook",
                "gitlab-merge-request.json",
            ),
        ]
    }

    #[test]
    fn pull_requests_are_verified_as_pushes_are() {
        for (provider, event, file) in pull_request_deliveries() {
            let body = fixture(file);
            let genuine = signed(provider, event, &body, SECRET);
            match parse(&genuine, &body, &all_secrets()) {
                Ok(WebhookEvent::PullRequest(pull)) => assert_eq!(pull.provider, provider),
                other => panic!("{file}: {other:?}"),
            }
            let forged = signed(provider, event, &body, "not the secret");
            let err = parse(&forged, &body, &all_secrets()).unwrap_err();
            assert!(
                matches!(err, WebhookError::BadSignature { .. }),
                "{file}: {err}"
            );
            let mut unsigned = genuine.clone();
            unsigned.remove("x-hub-signature-256");
            unsigned.remove("x-gitlab-token");
            let err = parse(&unsigned, &body, &all_secrets()).unwrap_err();
            assert!(
                matches!(err, WebhookError::MissingSignature { .. }),
                "{file}: {err}"
            );
            let err = parse(&genuine, &body, &WebhookSecrets::default()).unwrap_err();
            assert!(
                matches!(err, WebhookError::SecretNotConfigured { .. }),
                "{file}: {err}"
            );
        }
        // Gitea sends GitHub's event header too, but its pull requests are not GitHub's.
        let body = fixture("github-pull-request.json");
        let err = parse(
            &signed(Provider::Gitea, "pull_request", &body, SECRET),
            &body,
            &all_secrets(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            WebhookError::not_a_push(Provider::Gitea, "pull_request")
        );
    }
}
