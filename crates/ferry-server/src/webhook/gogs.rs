//! Gitea and Gogs `push` events (Gitea's payload is Gogs' with more fields).

use serde::Deserialize;

use super::error::WebhookError;
use super::event::{CommitFiles, PushEvent, PushedRef, changed_files, decode, distinct};
use super::provider::Provider;

#[derive(Deserialize)]
struct Push {
    #[serde(rename = "ref")]
    reference: String,
    before: Option<String>,
    after: Option<String>,
    repository: Repository,
    /// `null` from Gitea when a push has no commits.
    #[serde(default)]
    commits: Option<Vec<CommitFiles>>,
}

/// `url` is left out on purpose: Gitea puts its API URL there.
#[derive(Deserialize)]
struct Repository {
    html_url: Option<String>,
    clone_url: Option<String>,
    ssh_url: Option<String>,
    default_branch: Option<String>,
}

pub(crate) fn parse(
    provider: Provider,
    event: &str,
    body: &[u8],
) -> Result<PushEvent, WebhookError> {
    if event != "push" {
        return Err(WebhookError::not_a_push(provider, event));
    }
    let push: Push = decode(provider, body)?;
    let repo = &push.repository;
    Ok(PushEvent {
        provider,
        repo_urls: distinct([
            repo.html_url.as_deref(),
            repo.clone_url.as_deref(),
            repo.ssh_url.as_deref(),
        ]),
        revision_refs: vec![PushedRef::new(
            &push.reference,
            push.before.as_deref(),
            push.after.as_deref(),
        )],
        default_branch: repo.default_branch.clone(),
        changed_files: changed_files(push.commits.as_deref().unwrap_or_default()),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{RefKind, fixture};
    use super::*;

    #[test]
    fn a_gitea_push() {
        let push = parse(Provider::Gitea, "push", &fixture("gitea-push.json")).unwrap();
        assert_eq!(push.provider, Provider::Gitea);
        assert_eq!(
            push.repo_urls,
            [
                "https://gitea.example.com/platform/guestbook",
                "https://gitea.example.com/platform/guestbook.git",
                "ssh://git@gitea.example.com:2222/platform/guestbook.git",
            ]
        );
        let pushed = &push.revision_refs[0];
        assert_eq!(
            (pushed.kind, pushed.name.as_str()),
            (RefKind::Branch, "main")
        );
        assert_eq!(push.default_branch.as_deref(), Some("main"));
        assert_eq!(push.changed_files, ["charts/redis/values.yaml"]);
    }

    #[test]
    fn a_gogs_push() {
        let push = parse(Provider::Gogs, "push", &fixture("gogs-push.json")).unwrap();
        assert_eq!(push.default_branch.as_deref(), Some("master"));
        assert_eq!(push.revision_refs[0].name, "master");
        assert_eq!(push.changed_files, ["app/deployment.yaml"]);
        assert_eq!(push.repo_urls[2], "git@gogs.example.com:ops/guestbook.git");
    }

    #[test]
    fn pushes_without_commits() {
        let body = br#"{"ref": "refs/tags/v1", "commits": null,
                        "repository": {"html_url": "https://gitea.example.com/a/b"}}"#;
        let push = parse(Provider::Gitea, "push", body).unwrap();
        assert!(push.changed_files.is_empty());
        assert_eq!(push.revision_refs[0].kind, RefKind::Tag);
    }

    #[test]
    fn other_events_are_not_pushes() {
        let err = parse(Provider::Gogs, "create", b"{}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Gogs event \"create\" is not a push: ignored"
        );
    }
}
