//! GitHub (and GitHub Enterprise) `push` events.

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
    #[serde(default)]
    commits: Vec<CommitFiles>,
}

#[derive(Deserialize)]
struct Repository {
    html_url: Option<String>,
    clone_url: Option<String>,
    ssh_url: Option<String>,
    git_url: Option<String>,
    default_branch: Option<String>,
}

pub(crate) fn parse(event: &str, body: &[u8]) -> Result<PushEvent, WebhookError> {
    match event {
        "push" => {}
        "ping" => {
            return Err(WebhookError::Ping {
                provider: Provider::GitHub,
            });
        }
        other => return Err(WebhookError::not_a_push(Provider::GitHub, other)),
    }
    let push: Push = decode(Provider::GitHub, body)?;
    let repo = &push.repository;
    Ok(PushEvent {
        provider: Provider::GitHub,
        repo_urls: distinct([
            repo.html_url.as_deref(),
            repo.clone_url.as_deref(),
            repo.ssh_url.as_deref(),
            repo.git_url.as_deref(),
        ]),
        revision_refs: vec![PushedRef::new(
            &push.reference,
            push.before.as_deref(),
            push.after.as_deref(),
        )],
        default_branch: repo.default_branch.clone(),
        changed_files: changed_files(&push.commits),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{RefKind, fixture};
    use super::*;

    #[test]
    fn a_branch_push() {
        let push = parse("push", &fixture("github-push.json")).unwrap();
        assert_eq!(
            push.repo_urls,
            [
                "https://github.com/octo-org/guestbook",
                "https://github.com/octo-org/guestbook.git",
                "git@github.com:octo-org/guestbook.git",
                "git://github.com/octo-org/guestbook.git",
            ]
        );
        assert_eq!(
            push.revision_refs,
            [PushedRef {
                full_ref: "refs/heads/main".into(),
                name: "main".into(),
                kind: RefKind::Branch,
                before: Some("6113728f27ae82c7b1a177c8d03f9e96e0adf246".into()),
                after: Some("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c".into()),
            }]
        );
        assert_eq!(push.default_branch.as_deref(), Some("main"));
        assert_eq!(
            push.changed_files,
            [
                "guestbook/hpa.yaml",
                "guestbook/frontend-deployment.yaml",
                "guestbook/legacy-service.yaml",
            ]
        );
    }

    #[test]
    fn a_tag_push() {
        let push = parse("push", &fixture("github-tag.json")).unwrap();
        let pushed = &push.revision_refs[0];
        assert_eq!(
            (pushed.kind, pushed.name.as_str()),
            (RefKind::Tag, "v1.4.0")
        );
        assert_eq!(pushed.before, None);
        assert!(push.changed_files.is_empty());
    }

    #[test]
    fn a_push_needs_a_ref_and_a_repository() {
        let err = parse("push", br#"{"repository": {}}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed GitHub webhook payload: missing field `ref` at line 1 column 18"
        );
        let err = parse("push", br#"{"ref": "refs/heads/x"}"#).unwrap_err();
        assert!(
            err.to_string().contains("missing field `repository`"),
            "{err}"
        );
    }
}
