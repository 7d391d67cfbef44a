//! Bitbucket Cloud `repo:push` events. The payload lists the changed refs but no files, and not
//! the default branch.

use serde::Deserialize;

use super::error::WebhookError;
use super::event::{PushEvent, PushedRef, decode, distinct};
use super::provider::Provider;

#[derive(Deserialize)]
struct RepoPush {
    push: Push,
    repository: Repository,
}

#[derive(Deserialize)]
struct Push {
    changes: Vec<Change>,
}

/// `old` is null when the ref was created, `new` when it was deleted.
#[derive(Deserialize)]
struct Change {
    new: Option<RefState>,
    old: Option<RefState>,
}

#[derive(Deserialize)]
struct RefState {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    target: Option<Target>,
}

#[derive(Deserialize)]
struct Target {
    hash: Option<String>,
}

#[derive(Deserialize)]
struct Repository {
    links: Links,
}

#[derive(Deserialize)]
struct Links {
    html: Option<Link>,
}

#[derive(Deserialize)]
struct Link {
    href: String,
}

pub(crate) fn parse(event: &str, body: &[u8]) -> Result<PushEvent, WebhookError> {
    if event != "repo:push" {
        return Err(WebhookError::not_a_push(Provider::BitbucketCloud, event));
    }
    let push: RepoPush = decode(Provider::BitbucketCloud, body)?;
    Ok(PushEvent {
        provider: Provider::BitbucketCloud,
        repo_urls: distinct([push.repository.links.html.as_ref().map(|l| l.href.as_str())]),
        revision_refs: push.push.changes.iter().filter_map(pushed_ref).collect(),
        default_branch: None,
        changed_files: Vec::new(),
    })
}

fn pushed_ref(change: &Change) -> Option<PushedRef> {
    let state = change.new.as_ref().or(change.old.as_ref())?;
    let full_ref = match state.kind.as_str() {
        "branch" => format!("refs/heads/{}", state.name),
        "tag" => format!("refs/tags/{}", state.name),
        _ => state.name.clone(),
    };
    let hash = |state: &Option<RefState>| {
        state
            .as_ref()
            .and_then(|s| s.target.as_ref())
            .and_then(|t| t.hash.clone())
    };
    Some(PushedRef::new(
        &full_ref,
        hash(&change.old).as_deref(),
        hash(&change.new).as_deref(),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::{RefKind, fixture};
    use super::*;

    #[test]
    fn a_push_of_a_branch_and_a_new_tag() {
        let push = parse("repo:push", &fixture("bitbucket-cloud-push.json")).unwrap();
        assert_eq!(push.repo_urls, ["https://bitbucket.org/acme/guestbook"]);
        assert_eq!(
            push.revision_refs,
            [
                PushedRef {
                    full_ref: "refs/heads/main".into(),
                    name: "main".into(),
                    kind: RefKind::Branch,
                    before: Some("1e65c05c1d5171631d92438a13901ca7dae9618c".into()),
                    after: Some("2ab4c07e4a3c0b1f4d5e6f708192a3b4c5d6e7f8".into()),
                },
                PushedRef {
                    full_ref: "refs/tags/v2.0.0".into(),
                    name: "v2.0.0".into(),
                    kind: RefKind::Tag,
                    before: None,
                    after: Some("2ab4c07e4a3c0b1f4d5e6f708192a3b4c5d6e7f8".into()),
                },
            ]
        );
        assert_eq!(push.default_branch, None);
        assert!(push.changed_files.is_empty());
    }

    #[test]
    fn a_deleted_branch_is_named_by_its_old_state() {
        let body = br#"{"push": {"changes": [{"new": null, "old": {"type": "branch",
            "name": "feature", "target": {"hash": "1e65c05c1d5171631d92438a13901ca7dae9618c"}}}]},
            "repository": {"links": {"html": {"href": "https://bitbucket.org/acme/guestbook"}}}}"#;
        let push = parse("repo:push", body).unwrap();
        let pushed = &push.revision_refs[0];
        assert_eq!(pushed.full_ref, "refs/heads/feature");
        assert_eq!(pushed.after, None);
    }

    #[test]
    fn other_events_are_not_pushes() {
        let err = parse("pullrequest:created", b"{}").unwrap_err();
        assert_eq!(
            err,
            WebhookError::not_a_push(Provider::BitbucketCloud, "pullrequest:created")
        );
    }
}
