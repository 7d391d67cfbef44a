//! Bare mirror repositories (blocking helpers): one per repository URL and credential (see
//! [`crate::access`]), holding every fetched branch and tag. Only fetches write to a mirror
//! (under the cache's per-mirror lock); readers open their own handle and only read objects,
//! so they never disturb each other.

use std::path::Path;

use git2::{ErrorCode, ObjectType, Oid, Repository};

use crate::GitError;

/// What a fetch of a mirror asks for: every branch and tag, under their own names.
pub(crate) const REFSPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// Open an existing mirror; `None` when there is none (yet).
pub(crate) fn open(path: &Path) -> Option<Repository> {
    Repository::open_bare(path).ok()
}

/// Open the mirror, creating it if needed. Callers hold the mirror's lock. A new mirror is made in
/// a scratch directory and renamed into place, so lock-free readers never see half of one.
pub(crate) fn open_or_create(path: &Path, scratch_dir: &Path) -> Result<Repository, GitError> {
    if let Some(repo) = open(path) {
        return Ok(repo);
    }
    if path.exists() {
        // Left over from a crash, unusable: start again.
        std::fs::remove_dir_all(path)
            .map_err(|e| GitError::io(format!("removing broken mirror {}", path.display()), e))?;
    }
    crate::access::ensure_private_dir(scratch_dir)?;
    let scratch = tempfile::Builder::new()
        .prefix("mirror-")
        .tempdir_in(scratch_dir)
        .map_err(|e| {
            GitError::io(
                format!("creating a directory in {}", scratch_dir.display()),
                e,
            )
        })?;
    let libgit2_error = |doing: &str, e: git2::Error| {
        GitError::io(
            format!("{doing} mirror {}", path.display()),
            std::io::Error::other(e),
        )
    };
    Repository::init_bare(scratch.path()).map_err(|e| libgit2_error("creating", e))?;
    let scratch = scratch.keep();
    std::fs::rename(&scratch, path)
        .map_err(|e| GitError::io(format!("moving new mirror to {}", path.display()), e))?;
    Repository::open_bare(path).map_err(|e| libgit2_error("opening", e))
}

/// What the mirror holds for an object id.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The commit it is or (for an annotated tag) points to.
    Commit(Oid),
    Missing,
    Ambiguous,
    NotACommit(ObjectType),
}

/// Find the commit for a full object id or an abbreviated one.
pub(crate) fn find_commit(repo: &Repository, id: &str) -> Result<Lookup, git2::Error> {
    let object = match repo.find_object_by_prefix(id, None) {
        Ok(object) => object,
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(Lookup::Missing),
        Err(e) if e.code() == ErrorCode::Ambiguous => return Ok(Lookup::Ambiguous),
        Err(e) => return Err(e),
    };
    Ok(match object.peel_to_commit() {
        Ok(commit) => Lookup::Commit(commit.id()),
        Err(_) => Lookup::NotACommit(object.kind().unwrap_or(ObjectType::Any)),
    })
}
