//! What a push changed, in one shape for every provider.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::WebhookError;
use super::provider::Provider;

/// A verified push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEvent {
    pub provider: Provider,
    /// Every URL the payload gives for the repository (web page, HTTPS, SSH and git clone URLs),
    /// without duplicates.
    pub repo_urls: Vec<String>,
    /// The refs the push changed: one, except on Bitbucket, where one push may change several.
    pub revision_refs: Vec<PushedRef>,
    /// The repository's default branch, when the payload says (GitHub, GitLab, Gitea, Gogs).
    pub default_branch: Option<String>,
    /// Files the pushed commits added, modified or removed, when the payload lists them (GitHub,
    /// GitLab, Gitea, Gogs); empty when it does not, which means "unknown", not "none".
    pub changed_files: Vec<String>,
}

/// A ref a push changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedRef {
    /// `refs/heads/main`, `refs/tags/v1.0.0`.
    pub full_ref: String,
    /// `main`, `v1.0.0`: the branch or tag name (the full ref for other refs).
    pub name: String,
    pub kind: RefKind,
    /// The commit before the push; `None` when the ref was created.
    pub before: Option<String>,
    /// The commit after the push; `None` when the ref was deleted.
    pub after: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Branch,
    Tag,
    Other,
}

impl PushedRef {
    /// From a full ref name and the commits around the push as the payload gives them (all-zero
    /// ids and empty strings mean "none").
    pub(crate) fn new(full_ref: &str, before: Option<&str>, after: Option<&str>) -> Self {
        let (kind, name) = if let Some(branch) = full_ref.strip_prefix("refs/heads/") {
            (RefKind::Branch, branch)
        } else if let Some(tag) = full_ref.strip_prefix("refs/tags/") {
            (RefKind::Tag, tag)
        } else {
            (RefKind::Other, full_ref)
        };
        Self {
            full_ref: full_ref.to_string(),
            name: name.to_string(),
            kind,
            before: commit(before),
            after: commit(after),
        }
    }
}

fn commit(id: Option<&str>) -> Option<String> {
    id.map(str::trim)
        .filter(|id| !id.is_empty() && !id.bytes().all(|b| b == b'0'))
        .map(str::to_string)
}

/// The non-blank values, trimmed, each once, in order of appearance.
pub(crate) fn distinct<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for value in values.into_iter().flatten().map(str::trim) {
        if !value.is_empty() && !out.iter().any(|known| known == value) {
            out.push(value.to_string());
        }
    }
    out
}

/// A commit's file lists as GitHub, GitLab, Gitea and Gogs send them (Gitea and Gogs send
/// `null` for empty lists).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CommitFiles {
    #[serde(default)]
    added: Option<Vec<String>>,
    #[serde(default)]
    modified: Option<Vec<String>>,
    #[serde(default)]
    removed: Option<Vec<String>>,
}

/// Every file the commits touch, each once.
pub(crate) fn changed_files(commits: &[CommitFiles]) -> Vec<String> {
    distinct(commits.iter().flat_map(|commit| {
        [&commit.added, &commit.modified, &commit.removed]
            .into_iter()
            .flatten()
            .flatten()
            .map(|file| Some(file.as_str()))
    }))
}

/// The payload as `T`, or an error naming the field that did not fit.
pub(crate) fn decode<T: DeserializeOwned>(
    provider: Provider,
    body: &[u8],
) -> Result<T, WebhookError> {
    let mut json = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut json).map_err(|err| {
        let path = err.path().to_string();
        let reason = if path == "." {
            err.inner().to_string()
        } else {
            format!("{path}: {}", err.inner())
        };
        WebhookError::malformed(provider, reason)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_are_branches_tags_or_other() {
        let zero = "0000000000000000000000000000000000000000";
        let branch = PushedRef::new("refs/heads/feature/x", Some(zero), Some("abc"));
        assert_eq!(
            branch,
            PushedRef {
                full_ref: "refs/heads/feature/x".into(),
                name: "feature/x".into(),
                kind: RefKind::Branch,
                before: None,
                after: Some("abc".into()),
            }
        );
        let tag = PushedRef::new("refs/tags/v1", Some("abc"), Some(zero));
        assert_eq!((tag.kind, tag.name.as_str()), (RefKind::Tag, "v1"));
        assert_eq!((tag.before.as_deref(), tag.after), (Some("abc"), None));
        let other = PushedRef::new("refs/pull/1/head", None, Some(""));
        assert_eq!(
            (other.kind, other.name.as_str(), other.after),
            (RefKind::Other, "refs/pull/1/head", None)
        );
    }

    #[test]
    fn changed_files_are_listed_once() {
        let commits: Vec<CommitFiles> = serde_json::from_str(
            r#"[{"added": ["a"], "modified": ["b"], "removed": null},
                {"modified": ["b", "c"], "removed": ["a"]}]"#,
        )
        .unwrap();
        assert_eq!(changed_files(&commits), ["a", "b", "c"]);
    }

    #[test]
    fn distinct_skips_blanks_and_repeats() {
        assert_eq!(
            distinct([Some(" x "), None, Some(""), Some("y"), Some("x")]),
            ["x", "y"]
        );
    }
}
