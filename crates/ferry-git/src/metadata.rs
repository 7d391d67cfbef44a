//! What Argo CD shows of a commit (its `RevisionMetadata`): author, author date, message and the
//! tags that point at it — `git show -s --format='%an <%ae>%n%at%n%B'` and
//! `git tag --points-at`, read from the mirror and from the remote's refs.

use std::path::Path;

use git2::{Oid, Repository};

use crate::repo_url::RepoUrl;
use crate::revision::{self, RemoteRef};
use crate::{GitError, RepoCache};

/// One commit, as Argo CD's repo server describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitMetadata {
    /// The full SHA.
    pub sha: String,
    /// `Name <email>` of the author.
    pub author: String,
    /// The author date, in seconds since the epoch.
    pub date: i64,
    /// The whole message, without surrounding whitespace.
    pub message: String,
    /// Tags that point at the commit (annotated ones peeled), by short name, sorted.
    pub tags: Vec<String>,
}

impl RepoCache {
    /// The metadata of commit `sha` (a full or abbreviated SHA, as Argo CD requires: a branch or
    /// tag name must be resolved first) of repository `url`.
    pub async fn commit_metadata(&self, url: &str, sha: &str) -> Result<CommitMetadata, GitError> {
        let repo_url = RepoUrl::parse(url)?;
        let sha = sha.trim();
        if !revision::is_full_sha(sha) && !revision::is_short_sha(sha) {
            return Err(GitError::UnknownRevision {
                url: repo_url.display(),
                revision: sha.to_owned(),
                message: "revision must be resolved to a commit SHA".to_owned(),
            });
        }
        let commit = self.resolve(url, sha).await?.sha;
        let tags = tags_at(&self.ls_remote(url).await?, &commit);
        let mirror = self.mirror_of(url)?;
        let display = repo_url.display();
        let (author, date, message) = tokio::task::spawn_blocking({
            let commit = commit.clone();
            move || read_commit(&mirror, &display, &commit)
        })
        .await
        .map_err(|err| GitError::Git {
            url: repo_url.display(),
            message: format!("git worker failed: {err}"),
        })??;
        Ok(CommitMetadata {
            sha: commit,
            author,
            date,
            message,
            tags,
        })
    }
}

fn read_commit(mirror: &Path, url: &str, sha: &str) -> Result<(String, i64, String), GitError> {
    let git_error = |err: git2::Error| GitError::Git {
        url: url.to_owned(),
        message: err.message().to_owned(),
    };
    let repo = Repository::open_bare(mirror).map_err(git_error)?;
    let commit = repo
        .find_commit(Oid::from_str(sha).map_err(git_error)?)
        .map_err(git_error)?;
    let author = commit.author();
    let who = format!(
        "{} <{}>",
        String::from_utf8_lossy(author.name_bytes()),
        String::from_utf8_lossy(author.email_bytes())
    );
    let message = String::from_utf8_lossy(commit.message_bytes())
        .trim()
        .to_owned();
    Ok((who, author.when().seconds(), message))
}

/// The tags among `refs` that point at `sha`: lightweight ones directly, annotated ones by
/// their peeled entry (`refs/tags/v1^{}`).
fn tags_at(refs: &[RemoteRef], sha: &str) -> Vec<String> {
    let mut tags: Vec<String> = refs
        .iter()
        .filter(|reference| reference.sha == sha)
        .filter_map(|reference| reference.name.strip_prefix("refs/tags/"))
        .map(|tag| tag.trim_end_matches("^{}").to_owned())
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(name: &str, sha: &str) -> RemoteRef {
        RemoteRef {
            name: name.to_owned(),
            sha: sha.to_owned(),
            symref_target: None,
        }
    }

    #[test]
    fn tags_pointing_at_a_commit_lightweight_and_peeled() {
        let refs = [
            reference("HEAD", "c1"),
            reference("refs/heads/main", "c1"),
            reference("refs/tags/v2", "c1"),
            reference("refs/tags/v1", "tagobject"),
            reference("refs/tags/v1^{}", "c1"),
            reference("refs/tags/v0", "c0"),
        ];
        assert_eq!(tags_at(&refs, "c1"), ["v1", "v2"]);
        assert!(tags_at(&refs, "c9").is_empty());
    }
}
