//! Which Application sources a push concerns, by Argo CD's rules: the same repository, however
//! its URL is spelled, and a target revision that follows one of the pushed refs.

use super::event::{PushEvent, PushedRef, RefKind};

/// Whether a source of `app_source_repo` at `target_revision` may have changed with `event`.
///
/// The target revision follows a pushed ref when it is `HEAD` (or empty) and the ref is the
/// default branch (any branch when the payload does not say which is default, as on Bitbucket,
/// so the app is refreshed rather than missed), when it is the branch or tag name, or when it
/// is the full ref (`refs/heads/main`). A commit SHA never matches: a pinned source does not
/// move.
pub fn matches(app_source_repo: &str, target_revision: &str, event: &PushEvent) -> bool {
    let same_repo = event
        .repo_urls
        .iter()
        .any(|url| same_repository(url, app_source_repo));
    same_repo
        && event
            .revision_refs
            .iter()
            .any(|pushed| follows(target_revision, pushed, event.default_branch.as_deref()))
}

fn follows(target_revision: &str, pushed: &PushedRef, default_branch: Option<&str>) -> bool {
    let target = target_revision.trim();
    if target.is_empty() || target == "HEAD" {
        return pushed.kind == RefKind::Branch
            && default_branch.is_none_or(|default| default == pushed.name);
    }
    target == pushed.full_ref || target == pushed.name
}

/// Whether two URLs name the same repository: compared as Argo CD compares a payload's URL with
/// an app's (lower case, and whatever the scheme, user, port, `ssh.`/`altssh.` host prefix,
/// scp-style `host:path` or `.git` suffix), so the `https://host/org/repo` a payload gives
/// matches an app's `git@host:org/repo.git`.
pub fn same_repository(a: &str, b: &str) -> bool {
    host_and_path(a) == host_and_path(b)
}

/// `host/path`, lower case, of an http(s), git, ssh or scp-style URL.
fn host_and_path(url: &str) -> String {
    let url = url.trim().to_lowercase();
    let rest = match url.split_once("://") {
        Some((_, rest)) => rest.to_string(),
        // scp-style `git@host:org/repo`: the first `:` before any `/` ends the host.
        None => match url.find([':', '/']) {
            Some(i) if url[i..].starts_with(':') => format!("{}/{}", &url[..i], &url[i + 1..]),
            _ => url.clone(),
        },
    };
    let (authority, path) = rest.split_once('/').unwrap_or((&rest, ""));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = match host.strip_prefix('[') {
        // An IPv6 literal keeps its colons; only a port after `]` goes.
        Some(v6) => v6.split_once(']').map_or(host, |(address, _)| address),
        None => host.split_once(':').map_or(host, |(name, _)| name),
    };
    let host = host
        .strip_prefix("altssh.")
        .or_else(|| host.strip_prefix("ssh."))
        .unwrap_or(host);
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    format!("{host}/{path}")
}

#[cfg(test)]
mod tests {
    use super::super::provider::Provider;
    use super::*;

    fn push(refs: &[&str], default_branch: Option<&str>) -> PushEvent {
        PushEvent {
            provider: Provider::GitHub,
            repo_urls: vec!["https://github.com/octo-org/guestbook".into()],
            revision_refs: refs
                .iter()
                .map(|r| PushedRef::new(r, None, Some("abc")))
                .collect(),
            default_branch: default_branch.map(str::to_string),
            changed_files: Vec::new(),
        }
    }

    #[test]
    fn repository_urls_match_across_spellings() {
        let web = "https://github.com/octo-org/guestbook";
        for url in [
            "https://github.com/octo-org/guestbook.git",
            "https://GitHub.com/Octo-Org/Guestbook/",
            "http://github.com/octo-org/guestbook",
            "git@github.com:octo-org/guestbook.git",
            "ssh://git@github.com/octo-org/guestbook.git",
            "ssh://git@ssh.github.com:443/octo-org/guestbook.git",
            "ssh://git@altssh.github.com:443/octo-org/guestbook",
            "github.com:octo-org/guestbook",
            " https://github.com/octo-org/guestbook.git/ ",
            "https://bot:token@github.com/octo-org/guestbook.git",
            "git://github.com/octo-org/guestbook.git",
        ] {
            assert!(same_repository(web, url), "{url}");
        }
        for url in [
            "https://github.com/octo-org/guestbook-fork",
            "https://github.com/octo-org/guestbook/sub",
            "https://gitlab.com/octo-org/guestbook",
            "git@github.com:other-org/guestbook.git",
        ] {
            assert!(!same_repository(web, url), "{url}");
        }
        assert!(same_repository(
            "ssh://git@[::1]:2222/srv/guestbook.git",
            "https://[::1]/srv/guestbook"
        ));
        assert!(same_repository(
            "ssh://git@bitbucket.example.com:7999/plat/guestbook.git",
            "git@bitbucket.example.com:plat/guestbook"
        ));
    }

    #[test]
    fn head_follows_the_default_branch() {
        let push_main = push(&["refs/heads/main"], Some("main"));
        let push_dev = push(&["refs/heads/dev"], Some("main"));
        let push_tag = push(&["refs/tags/main"], Some("main"));
        let repo = "git@github.com:octo-org/guestbook.git";
        for target in ["HEAD", "", " HEAD "] {
            assert!(matches(repo, target, &push_main), "{target:?}");
            assert!(!matches(repo, target, &push_dev), "{target:?}");
            assert!(!matches(repo, target, &push_tag), "{target:?}");
        }
        // Without a default branch in the payload, any branch may be HEAD.
        assert!(matches(repo, "HEAD", &push(&["refs/heads/dev"], None)));
        assert!(!matches(repo, "HEAD", &push(&["refs/tags/v1"], None)));
    }

    #[test]
    fn revisions_follow_names_and_full_refs() {
        let repo = "https://github.com/octo-org/guestbook";
        let push_branch = push(&["refs/heads/release/1.x"], Some("main"));
        assert!(matches(repo, "release/1.x", &push_branch));
        assert!(matches(repo, "refs/heads/release/1.x", &push_branch));
        assert!(!matches(repo, "refs/tags/release/1.x", &push_branch));
        assert!(!matches(repo, "release", &push_branch));
        assert!(!matches(
            repo,
            "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
            &push_branch
        ));
        let push_tags = push(&["refs/heads/main", "refs/tags/v2.0.0"], None);
        assert!(matches(repo, "v2.0.0", &push_tags));
        assert!(matches(repo, "refs/tags/v2.0.0", &push_tags));
        assert!(!matches(repo, "v2.0.1", &push_tags));
        assert!(!matches(
            "https://github.com/octo-org/other",
            "v2.0.0",
            &push_tags
        ));
    }
}
