//! Bitbucket Server (Data Center) `repo:refs_changed` events. The payload lists the changed refs
//! and the clone URLs, but no files and not the default branch.

use serde::Deserialize;

use super::error::WebhookError;
use super::event::{PushEvent, PushedRef, decode, distinct};
use super::provider::Provider;

#[derive(Deserialize)]
struct RefsChanged {
    repository: Repository,
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Repository {
    links: Option<Links>,
}

#[derive(Deserialize)]
struct Links {
    #[serde(default)]
    clone: Vec<Link>,
}

#[derive(Deserialize)]
struct Link {
    href: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Change {
    #[serde(rename = "ref")]
    reference: Option<Ref>,
    ref_id: Option<String>,
    from_hash: Option<String>,
    to_hash: Option<String>,
}

#[derive(Deserialize)]
struct Ref {
    id: String,
}

pub(crate) fn parse(event: &str, body: &[u8]) -> Result<PushEvent, WebhookError> {
    match event {
        "repo:refs_changed" => {}
        "diagnostics:ping" => {
            return Err(WebhookError::Ping {
                provider: Provider::BitbucketServer,
            });
        }
        other => return Err(WebhookError::not_a_push(Provider::BitbucketServer, other)),
    }
    let push: RefsChanged = decode(Provider::BitbucketServer, body)?;
    let clone_links = push.repository.links.iter().flat_map(|l| &l.clone);
    Ok(PushEvent {
        provider: Provider::BitbucketServer,
        repo_urls: distinct(clone_links.map(|link| Some(link.href.as_str()))),
        revision_refs: push
            .changes
            .iter()
            .filter_map(|change| {
                let full_ref = change
                    .reference
                    .as_ref()
                    .map(|r| r.id.as_str())
                    .or(change.ref_id.as_deref())?;
                Some(PushedRef::new(
                    full_ref,
                    change.from_hash.as_deref(),
                    change.to_hash.as_deref(),
                ))
            })
            .collect(),
        default_branch: None,
        changed_files: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{RefKind, fixture};
    use super::*;

    #[test]
    fn a_refs_changed_event() {
        let body = fixture("bitbucket-server-refs-changed.json");
        let push = parse("repo:refs_changed", &body).unwrap();
        assert_eq!(
            push.repo_urls,
            [
                "ssh://git@bitbucket.example.com:7999/plat/guestbook.git",
                "https://bitbucket.example.com/scm/plat/guestbook.git",
            ]
        );
        assert_eq!(
            push.revision_refs,
            [PushedRef {
                full_ref: "refs/heads/release/1.x".into(),
                name: "release/1.x".into(),
                kind: RefKind::Branch,
                before: Some("ecddabb624f6f5ba43816f5926e580a5f680a932".into()),
                after: Some("178864a7d521b6f5e720b386b2c2b0ef8563e0dc".into()),
            }]
        );
    }

    #[test]
    fn refs_may_be_named_by_ref_id_alone() {
        let body = br#"{"repository": {"links": {"clone": [{"href": "https://b.example.com/scm/p/r.git", "name": "http"}]}},
            "changes": [{"refId": "refs/tags/v3", "fromHash": "0000000000000000000000000000000000000000", "toHash": "abc"}]}"#;
        let push = parse("repo:refs_changed", body).unwrap();
        assert_eq!(push.revision_refs[0].kind, RefKind::Tag);
        assert_eq!(push.revision_refs[0].before, None);
    }

    #[test]
    fn pings_and_other_events() {
        assert_eq!(
            parse("diagnostics:ping", b"{}"),
            Err(WebhookError::Ping {
                provider: Provider::BitbucketServer
            })
        );
        assert_eq!(
            parse("pr:opened", b"{}"),
            Err(WebhookError::not_a_push(
                Provider::BitbucketServer,
                "pr:opened"
            ))
        );
    }
}
