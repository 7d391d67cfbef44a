//! Materializing a commit's tree into a fresh directory, straight from the mirror's object
//! database (no worktree, no index, so concurrent checkouts never interfere).
//!
//! Safety: every entry is created new (`create_new`, `create_dir`, `symlink`), so nothing that
//! already exists is ever written through, and entry names `.`, `..`, `.git`, or names holding
//! `/` or NUL are refused. Symbolic links are recreated verbatim, *including links that point
//! outside the checkout*: they are never followed here, and whoever reads the checkout (the
//! render side) must refuse to follow links out of it.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use git2::{FileMode, ObjectType, Oid, Repository, Tree};
use tempfile::TempDir;

use crate::GitError;

/// Options for [`crate::RepoCache::checkout`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckoutOptions {
    /// Also check out submodules, recursively (like `git submodule update --init --recursive`).
    pub submodules: bool,
    /// Most bytes of file contents (and symlink targets) the checkout may hold, submodules
    /// included; a commit with more fails with [`GitError::CheckoutTooLarge`] before the
    /// file that crosses the limit is read. `None`: no limit.
    pub max_bytes: Option<u64>,
}

/// A commit's files in a private directory, removed when this is dropped.
///
/// Symbolic links are as committed, even those pointing outside the directory: they were not
/// followed when writing it, and readers of the checkout must not follow them out of it.
#[derive(Debug)]
pub struct Checkout {
    dir: TempDir,
    sha: String,
}

impl Checkout {
    pub(crate) fn new(dir: TempDir, sha: String) -> Self {
        Checkout { dir, sha }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The commit checked out.
    pub fn sha(&self) -> &str {
        &self.sha
    }
}

/// A submodule entry met while materializing: where it goes and which commit it wants.
#[derive(Debug)]
pub(crate) struct Gitlink {
    /// Relative to the directory the tree was written to.
    pub path: PathBuf,
    pub commit: Oid,
    /// Its URL from `.gitmodules`, if listed there.
    pub url: Option<String>,
}

/// Context for error messages.
pub(crate) struct Source<'a> {
    pub url: &'a str,
    pub sha: &'a str,
}

/// The bytes one checkout (with its submodules) has written so far, and how many it may.
#[derive(Clone, Debug)]
pub(crate) struct Budget {
    used: Arc<AtomicU64>,
    limit: Option<u64>,
}

impl Budget {
    pub(crate) fn new(limit: Option<u64>) -> Self {
        Budget {
            used: Arc::default(),
            limit,
        }
    }

    /// Counts `bytes` more; fails, naming the top repository and commit, when that passes the
    /// limit.
    fn spend(&self, bytes: u64, top: &Source<'_>) -> Result<(), GitError> {
        let used = self.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        match self.limit {
            Some(limit) if used > limit => Err(GitError::CheckoutTooLarge {
                url: top.url.to_owned(),
                sha: top.sha.to_owned(),
                limit,
            }),
            _ => Ok(()),
        }
    }
}

/// Write the tree of `commit` into the empty directory `dest`; returns the submodules met
/// (their directories are created empty, as git does).
///
/// Every file's size is read from the object header and counted against `budget` before the
/// file is read, so an oversized commit fails without inflating the blob that crosses the limit.
/// `top` names the checkout the budget belongs to (the superproject of a submodule).
pub(crate) fn materialize(
    repo: &Repository,
    commit: Oid,
    dest: &Path,
    source: &Source<'_>,
    budget: &Budget,
    top: &Source<'_>,
) -> Result<Vec<Gitlink>, GitError> {
    let git_error = |e: git2::Error| GitError::Git {
        url: source.url.to_owned(),
        message: format!("reading commit {}: {}", source.sha, e.message()),
    };
    let tree = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(git_error)?;
    let odb = repo.odb().map_err(git_error)?;
    let mut writer = TreeWriter {
        repo,
        odb: &odb,
        source,
        budget,
        top,
        gitlinks: Vec::new(),
    };
    writer.write_tree(&tree, dest, Path::new(""))?;
    let mut gitlinks = writer.gitlinks;
    if !gitlinks.is_empty() {
        let urls = submodule_urls(repo, &tree, source)?;
        for link in &mut gitlinks {
            link.url = urls.get(&link.path).cloned();
        }
    }
    Ok(gitlinks)
}

struct TreeWriter<'a> {
    repo: &'a Repository,
    odb: &'a git2::Odb<'a>,
    source: &'a Source<'a>,
    budget: &'a Budget,
    top: &'a Source<'a>,
    gitlinks: Vec<Gitlink>,
}

impl TreeWriter<'_> {
    fn write_tree(&mut self, tree: &Tree<'_>, dir: &Path, rel: &Path) -> Result<(), GitError> {
        let (repo, source) = (self.repo, self.source);
        for entry in tree.iter() {
            let name = OsStr::from_bytes(entry.name_bytes());
            let rel_path = rel.join(name);
            let unsafe_entry = |reason: &str| GitError::UnsafeTree {
                url: source.url.to_owned(),
                sha: source.sha.to_owned(),
                path: rel_path.clone(),
                reason: reason.to_owned(),
            };
            check_name(entry.name_bytes()).map_err(unsafe_entry)?;
            let path = dir.join(name);
            let io_error = |e: std::io::Error| {
                GitError::io(
                    format!("writing {} of commit {}", rel_path.display(), source.sha),
                    e,
                )
            };
            let git_error = |e: git2::Error| GitError::Git {
                url: source.url.to_owned(),
                message: format!(
                    "reading {} of commit {}: {}",
                    rel_path.display(),
                    source.sha,
                    e.message()
                ),
            };
            // Counted before the blob is read (the header holds its size).
            let blob = || {
                let (size, _) = self.odb.read_header(entry.id()).map_err(git_error)?;
                self.budget.spend(size as u64, self.top)?;
                repo.find_blob(entry.id()).map_err(git_error)
            };
            match entry.filemode() {
                mode if mode == i32::from(FileMode::Tree) => {
                    std::fs::create_dir(&path).map_err(io_error)?;
                    let subtree = repo.find_tree(entry.id()).map_err(git_error)?;
                    self.write_tree(&subtree, &path, &rel_path)?;
                }
                mode if mode == i32::from(FileMode::Blob)
                    || mode == i32::from(FileMode::BlobGroupWritable) =>
                {
                    write_file(&path, blob()?.content(), 0o644).map_err(io_error)?;
                }
                mode if mode == i32::from(FileMode::BlobExecutable) => {
                    write_file(&path, blob()?.content(), 0o755).map_err(io_error)?;
                }
                mode if mode == i32::from(FileMode::Link) => {
                    let target = OsStr::from_bytes(blob()?.content()).to_owned();
                    std::os::unix::fs::symlink(target, &path).map_err(io_error)?;
                }
                mode if mode == i32::from(FileMode::Commit) => {
                    std::fs::create_dir(&path).map_err(io_error)?;
                    self.gitlinks.push(Gitlink {
                        path: rel_path.clone(),
                        commit: entry.id(),
                        url: None,
                    });
                }
                mode => return Err(unsafe_entry(&format!("unknown file mode {mode:o}"))),
            }
        }
        Ok(())
    }
}

/// Git itself refuses these names in trees; a crafted repository may still contain them.
fn check_name(name: &[u8]) -> Result<(), &'static str> {
    match name {
        b"" => Err("empty name"),
        b"." | b".." => Err("name is a relative path component"),
        _ if name.eq_ignore_ascii_case(b".git") => Err(".git is reserved"),
        _ if name.contains(&b'/') || name.contains(&0) => Err("name contains '/' or NUL"),
        _ => Ok(()),
    }
}

fn write_file(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(content)
}

/// Submodule path -> URL from the tree's `.gitmodules` (read from the object database, never
/// from the checkout, where it could be a symlink).
fn submodule_urls(
    repo: &Repository,
    tree: &Tree<'_>,
    source: &Source<'_>,
) -> Result<HashMap<PathBuf, String>, GitError> {
    let Some(entry) = tree.get_name(".gitmodules") else {
        return Ok(HashMap::new());
    };
    let error = |message: String| GitError::Submodule {
        url: source.url.to_owned(),
        path: PathBuf::from(".gitmodules"),
        message,
    };
    if entry.kind() != Some(ObjectType::Blob) || entry.filemode() == i32::from(FileMode::Link) {
        return Err(error("is not a regular file".to_owned()));
    }
    let blob = repo
        .find_blob(entry.id())
        .map_err(|e| error(e.message().to_owned()))?;
    // libgit2 parses config only from files: give it a private copy.
    let mut copy =
        tempfile::NamedTempFile::new().map_err(|e| GitError::io("creating a temporary file", e))?;
    copy.write_all(blob.content())
        .map_err(|e| GitError::io("writing a temporary file", e))?;
    let config = git2::Config::open(copy.path())
        .map_err(|e| error(format!("unparsable: {}", e.message())))?;
    let mut paths = HashMap::new();
    let mut urls = HashMap::new();
    let mut entries = config
        .entries(Some(r"^submodule\..*\.(path|url)$"))
        .map_err(|e| error(e.message().to_owned()))?;
    while let Some(entry) = entries.next() {
        let entry = entry.map_err(|e| error(e.message().to_owned()))?;
        let (Ok(key), Ok(value)) = (entry.name(), entry.value()) else {
            continue;
        };
        let Some((name, field)) = key
            .strip_prefix("submodule.")
            .and_then(|k| k.rsplit_once('.'))
        else {
            continue;
        };
        let target = if field == "path" {
            &mut paths
        } else {
            &mut urls
        };
        target.insert(name.to_owned(), value.to_owned());
    }
    Ok(paths
        .into_iter()
        .filter_map(|(name, path)| Some((PathBuf::from(path), urls.remove(&name)?)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_dangerous_names() {
        for bad in [&b""[..], b".", b"..", b".git", b".GIT", b"a/b", b"a\0b"] {
            assert!(
                check_name(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        for good in [&b"a"[..], b".gitmodules", b"...", b"git", b".github"] {
            assert!(
                check_name(good).is_ok(),
                "{:?}",
                String::from_utf8_lossy(good)
            );
        }
    }
}
