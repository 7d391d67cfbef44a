//! Revision resolution against the refs a remote advertises, in Argo CD's order: a semver
//! constraint matched against tags first (highest matching version wins), then `HEAD`/empty,
//! then a ref by full or short name (`main`, `v1.0`, `refs/pull/1/head`, `pull/1/head`), then a
//! possibly truncated commit SHA. (Full SHAs never reach this: they need no remote lookup.)

use crate::version_constraint::{Constraint, parse_version};

/// One ref advertised by a remote, as `git ls-remote` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRef {
    /// Full name: `HEAD`, `refs/heads/main`, `refs/tags/v1`, and `refs/tags/v1^{}` for the
    /// commit an annotated tag points to.
    pub name: String,
    pub sha: String,
    /// The ref a symbolic ref (`HEAD`) points to, when the server says.
    pub symref_target: Option<String>,
}

/// A revision resolved to a commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// Full commit SHA (annotated tags are peeled to their commit).
    pub sha: String,
    /// The full ref name it came from (`refs/heads/main`, `refs/tags/v1.2.0`); `None` for a SHA.
    pub reference: Option<String>,
}

/// What the advertised refs say about a revision.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Found as a ref; `sha` may still be a tag object when the server did not advertise the
    /// peeled value, so callers peel it.
    Ref {
        sha: String,
        reference: String,
    },
    /// Not a ref, but could be an abbreviated commit SHA.
    ShortSha,
    NotFound(String),
}

const PEELED_SUFFIX: &str = "^{}";

pub(crate) fn is_full_sha(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Argo CD treats 7 to 39 hex digits as an abbreviated SHA.
pub(crate) fn is_short_sha(revision: &str) -> bool {
    (7..40).contains(&revision.len()) && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(crate) fn lookup(refs: &[RemoteRef], revision: &str) -> Lookup {
    let found = |r: &RemoteRef| Lookup::Ref {
        sha: peeled(refs, &r.name).unwrap_or(&r.sha).to_owned(),
        reference: r.name.clone(),
    };
    let plain = || refs.iter().filter(|r| !r.name.ends_with(PEELED_SUFFIX));
    let constraint = Constraint::parse(revision);
    if let Some(constraint) = &constraint {
        let mut best: Option<(semver::Version, &RemoteRef)> = None;
        for tag in plain() {
            let Some(name) = tag.name.strip_prefix("refs/tags/") else {
                continue;
            };
            let Some(version) = parse_version(name).filter(|v| constraint.matches(v)) else {
                continue;
            };
            if best.as_ref().is_none_or(|(max, _)| version > *max) {
                best = Some((version, tag));
            }
        }
        if let Some((_, tag)) = best {
            return found(tag);
        }
    }
    let wanted = if revision.is_empty() {
        "HEAD"
    } else {
        revision
    };
    if wanted == "HEAD"
        && let Some(head) = plain().find(|r| r.name == "HEAD")
    {
        return Lookup::Ref {
            sha: head.sha.clone(),
            reference: head
                .symref_target
                .clone()
                .unwrap_or_else(|| "HEAD".to_owned()),
        };
    }
    if let Some(r) = plain().find(|r| r.name == wanted || short_names(&r.name).any(|s| s == wanted))
    {
        return found(r);
    }
    if is_short_sha(revision) {
        return Lookup::ShortSha;
    }
    let mut message = "no branch, tag or ref has this name".to_owned();
    if constraint.is_some() {
        message.push_str(", and no tag satisfies it as a semver constraint");
    }
    Lookup::NotFound(message)
}

/// The commit an annotated tag points to, if the remote advertised it.
fn peeled<'a>(refs: &'a [RemoteRef], name: &str) -> Option<&'a str> {
    let peeled_name = format!("{name}{PEELED_SUFFIX}");
    refs.iter()
        .find(|r| r.name == peeled_name)
        .map(|r| r.sha.as_str())
}

/// Names by which git's rev-parse rules find a ref (`refs/heads/x` is `x`, ...).
fn short_names(name: &str) -> impl Iterator<Item = &str> {
    ["refs/heads/", "refs/tags/", "refs/remotes/", "refs/"]
        .into_iter()
        .filter_map(move |prefix| name.strip_prefix(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, sha: &str) -> RemoteRef {
        RemoteRef {
            name: name.into(),
            sha: sha.into(),
            symref_target: None,
        }
    }

    fn refs() -> Vec<RemoteRef> {
        vec![
            RemoteRef {
                symref_target: Some("refs/heads/main".into()),
                ..r("HEAD", "a1")
            },
            r("refs/heads/1.0", "b1"),
            r("refs/heads/dev", "d1"),
            r("refs/heads/main", "a1"),
            r("refs/pull/7/head", "e1"),
            r("refs/tags/dev", "f1"),
            r("refs/tags/v1.0.0", "c1"),
            r("refs/tags/v1.2.0", "t2"),
            r("refs/tags/v1.2.0^{}", "c2"),
            r("refs/tags/v2.0.0-rc.1", "c3"),
            r("refs/tags/not-a-version", "c4"),
        ]
    }

    fn hit(revision: &str) -> (String, String) {
        match lookup(&refs(), revision) {
            Lookup::Ref { sha, reference } => (sha, reference),
            other => panic!("{revision}: {other:?}"),
        }
    }

    #[test]
    fn head_and_empty_follow_the_symref() {
        assert_eq!(hit("HEAD"), ("a1".into(), "refs/heads/main".into()));
        assert_eq!(hit(""), ("a1".into(), "refs/heads/main".into()));
    }

    #[test]
    fn names_short_and_full() {
        assert_eq!(hit("main"), ("a1".into(), "refs/heads/main".into()));
        assert_eq!(hit("refs/tags/dev"), ("f1".into(), "refs/tags/dev".into()));
        // A branch and a tag of the same name: the branch, as in Argo CD (refs come sorted).
        assert_eq!(hit("dev"), ("d1".into(), "refs/heads/dev".into()));
        assert_eq!(hit("pull/7/head"), ("e1".into(), "refs/pull/7/head".into()));
        assert_eq!(
            hit("refs/pull/7/head"),
            ("e1".into(), "refs/pull/7/head".into())
        );
    }

    #[test]
    fn annotated_tags_use_the_peeled_commit() {
        assert_eq!(hit("v1.2.0"), ("c2".into(), "refs/tags/v1.2.0".into()));
    }

    #[test]
    fn semver_picks_the_highest_matching_tag_before_names() {
        assert_eq!(hit("1.*"), ("c2".into(), "refs/tags/v1.2.0".into()));
        assert_eq!(
            hit(">=1.0.0 <1.2.0"),
            ("c1".into(), "refs/tags/v1.0.0".into())
        );
        assert_eq!(hit("1.0.0"), ("c1".into(), "refs/tags/v1.0.0".into()));
        // "1.0" is a constraint matched by tag v1.0.0: it wins over branch "1.0" (Argo CD order).
        assert_eq!(hit("1.0"), ("c1".into(), "refs/tags/v1.0.0".into()));
        assert_eq!(
            hit(">=2.0.0-rc.0"),
            ("c3".into(), "refs/tags/v2.0.0-rc.1".into())
        );
    }

    #[test]
    fn unmatched_constraint_falls_back_to_names_then_not_found() {
        let Lookup::NotFound(message) = lookup(&refs(), "9.*") else {
            panic!("9.* should not be found");
        };
        assert!(
            message.contains("no tag satisfies it as a semver constraint"),
            "{message}"
        );
        assert!(matches!(lookup(&refs(), "nope"), Lookup::NotFound(m) if !m.contains("semver")));
    }

    #[test]
    fn sha_forms() {
        assert_eq!(lookup(&refs(), "abc1234"), Lookup::ShortSha);
        assert_eq!(
            lookup(&refs(), "abc12"),
            Lookup::NotFound("no branch, tag or ref has this name".into())
        );
        assert!(is_full_sha(&"a".repeat(40)));
        assert!(!is_full_sha(&"g".repeat(40)));
    }
}
