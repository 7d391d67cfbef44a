//! GitLab push and tag push events, as project webhooks or system hooks send them.

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
    project: Option<Project>,
    repository: Option<Repository>,
    #[serde(default)]
    commits: Vec<CommitFiles>,
}

#[derive(Deserialize)]
struct Project {
    web_url: Option<String>,
    git_http_url: Option<String>,
    git_ssh_url: Option<String>,
    default_branch: Option<String>,
}

/// The older, deprecated copy of the project's URLs; still sent, and read for old servers.
#[derive(Deserialize)]
struct Repository {
    homepage: Option<String>,
    git_http_url: Option<String>,
    git_ssh_url: Option<String>,
}

/// A system hook's kind of event.
#[derive(Deserialize)]
struct SystemHook {
    object_kind: Option<String>,
    event_name: Option<String>,
}

pub(crate) fn parse(event: &str, body: &[u8]) -> Result<PushEvent, WebhookError> {
    match event {
        "Push Hook" | "Tag Push Hook" => {}
        // System hooks carry every kind of instance event; only pushes are of interest.
        "System Hook" => {
            let hook: SystemHook = decode(Provider::GitLab, body)?;
            let kind = hook.object_kind.or(hook.event_name).unwrap_or_default();
            if kind != "push" && kind != "tag_push" {
                return Err(WebhookError::not_a_push(
                    Provider::GitLab,
                    &format!("System Hook ({kind})"),
                ));
            }
        }
        other => return Err(WebhookError::not_a_push(Provider::GitLab, other)),
    }
    let push: Push = decode(Provider::GitLab, body)?;
    let project = push.project.as_ref();
    let repository = push.repository.as_ref();
    Ok(PushEvent {
        provider: Provider::GitLab,
        repo_urls: distinct([
            project.and_then(|p| p.web_url.as_deref()),
            project.and_then(|p| p.git_http_url.as_deref()),
            project.and_then(|p| p.git_ssh_url.as_deref()),
            repository.and_then(|r| r.homepage.as_deref()),
            repository.and_then(|r| r.git_http_url.as_deref()),
            repository.and_then(|r| r.git_ssh_url.as_deref()),
        ]),
        revision_refs: vec![PushedRef::new(
            &push.reference,
            push.before.as_deref(),
            push.after.as_deref(),
        )],
        default_branch: project.and_then(|p| p.default_branch.clone()),
        changed_files: changed_files(&push.commits),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{RefKind, fixture};
    use super::*;

    #[test]
    fn a_branch_push() {
        let push = parse("Push Hook", &fixture("gitlab-push.json")).unwrap();
        assert_eq!(
            push.repo_urls,
            [
                "https://gitlab.example.com/platform/guestbook",
                "https://gitlab.example.com/platform/guestbook.git",
                "git@gitlab.example.com:platform/guestbook.git",
            ]
        );
        let pushed = &push.revision_refs[0];
        assert_eq!(
            (pushed.kind, pushed.name.as_str()),
            (RefKind::Branch, "develop")
        );
        assert_eq!(
            pushed.after.as_deref(),
            Some("da1560886d4f094c3e6c9ef40349f7d38b5d27d7")
        );
        assert_eq!(push.default_branch.as_deref(), Some("main"));
        assert_eq!(
            push.changed_files,
            [
                "overlays/dev/patch.yaml",
                "overlays/dev/kustomization.yaml",
                "overlays/dev/old.yaml",
            ]
        );
    }

    #[test]
    fn a_tag_push() {
        let push = parse("Tag Push Hook", &fixture("gitlab-tag.json")).unwrap();
        let pushed = &push.revision_refs[0];
        assert_eq!(
            (pushed.kind, pushed.name.as_str()),
            (RefKind::Tag, "v1.0.0")
        );
        assert_eq!(pushed.before, None);
    }

    #[test]
    fn system_hooks_count_only_when_they_are_pushes() {
        let push = parse("System Hook", &fixture("gitlab-push.json")).unwrap();
        assert_eq!(push.revision_refs[0].name, "develop");
        let err = parse(
            "System Hook",
            br#"{"object_kind": "merge_request", "event_type": "merge_request"}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "GitLab event \"System Hook (merge_request)\" is not a push: ignored"
        );
        let err = parse("Merge Request Hook", b"{}").unwrap_err();
        assert_eq!(
            err,
            WebhookError::not_a_push(Provider::GitLab, "Merge Request Hook")
        );
    }
}
