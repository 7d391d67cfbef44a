//! Writing to a repository: clone a branch into a scratch work tree, apply an edit, commit it
//! and push, retrying on a concurrent push ([`commit_and_push`]). Used by `ferry ci set-image`
//! and the image updater's git write-back.
//!
//! - **Credentials** are ferry's repository credentials ([`Credentials::lookup`] for the URL
//!   and project): https username/password or token, ssh keys with known_hosts checks.
//! - **Never an empty commit**: an edit that leaves the tree as it was commits and pushes
//!   nothing ([`PushOutcome::Unchanged`]).
//! - **Never a lost commit**: pushes are never forced. When the remote branch moved meanwhile
//!   (libgit2's fast-forward check, or the server's compare-and-swap on the ref), the new head
//!   is fetched, the edit is applied again on it in a clean work tree and pushed again, up to
//!   [`PushRequest::max_attempts`] times.
//! - **Base and target branch** (the Image Updater's `git-branch: base:target`): the edit goes
//!   on the target branch's head when it exists, else on the base branch's, and is pushed to
//!   the target.
//! - **Confinement**: the work tree is checked out with `core.symlinks=false`, so a committed
//!   symbolic link is a plain file holding its target there and an edit cannot read or write
//!   through it out of the work tree (the link stays a link in the commit).
//!
//! Everything here blocks (libgit2): call it from `spawn_blocking` in async code.

use std::path::{Path, PathBuf};
use std::time::Duration;

use git2::{IndexAddOption, Oid, Repository, Signature, build::CheckoutBuilder};

use crate::remote::Session;
use crate::repo_url::RepoUrl;
use crate::{Credentials, GitError};

/// Who a commit is by (author and committer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Author {
    pub name: String,
    pub email: String,
}

/// What to push where.
#[derive(Clone, Debug)]
pub struct PushRequest {
    pub url: String,
    /// The AppProject whose credentials apply (`None`: global ones only).
    pub project: Option<String>,
    /// The branch the edit starts from when `target_branch` does not exist yet.
    pub base_branch: String,
    /// The branch pushed to; `None`: the base branch.
    pub target_branch: Option<String>,
    pub message: String,
    pub author: Author,
    /// Attempts in all (at least 1) before a push that keeps being rejected is an error.
    pub max_attempts: u32,
    /// Bound of each network operation.
    pub timeout: Duration,
    /// Edit and report, but commit and push nothing.
    pub dry_run: bool,
    /// Where the scratch work tree is made (a private temporary directory inside); `None`:
    /// the system's temporary directory.
    pub scratch_dir: Option<PathBuf>,
}

impl PushRequest {
    /// A request with 5 attempts, [`crate::DEFAULT_TIMEOUT`], no dry run.
    pub fn new(url: &str, branch: &str, message: &str, author: Author) -> Self {
        PushRequest {
            url: url.to_owned(),
            project: None,
            base_branch: branch.to_owned(),
            target_branch: None,
            message: message.to_owned(),
            author,
            max_attempts: 5,
            timeout: crate::DEFAULT_TIMEOUT,
            dry_run: false,
            scratch_dir: None,
        }
    }

    fn target(&self) -> &str {
        self.target_branch.as_deref().unwrap_or(&self.base_branch)
    }
}

/// What [`commit_and_push`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// `commit` is now the head of `branch`; `files` are the paths it changed.
    Pushed {
        commit: String,
        branch: String,
        files: Vec<String>,
        attempts: u32,
    },
    /// The edit left the files of `head` as they were: no commit, no push.
    Unchanged { head: String },
    /// Dry run: the commit would change `files` on top of `head`.
    WouldPush { head: String, files: Vec<String> },
}

/// A failure of [`commit_and_push`]: of git, or of the caller's edit.
#[derive(Debug, thiserror::Error)]
pub enum PushError<E> {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("{0}")]
    Edit(E),
}

/// Clone `request`'s branch into a scratch work tree, run `edit` on its root, and commit and
/// push what it changed (see the module's documentation). `edit` may run more than once (once
/// per attempt, each time on a clean work tree of the then current head); the value of the
/// run that was pushed (or found nothing to change) is returned with the outcome.
pub fn commit_and_push<T, E>(
    credentials: &Credentials,
    request: &PushRequest,
    edit: impl FnMut(&Path) -> Result<T, E>,
) -> Result<(PushOutcome, T), PushError<E>> {
    commit_and_push_with(credentials, request, edit, |_| request.message.clone())
}

/// [`commit_and_push`] with the commit message made from what the edit returned (which may
/// differ between attempts: a bump on a head that moved), instead of [`PushRequest::message`].
pub fn commit_and_push_with<T, E>(
    credentials: &Credentials,
    request: &PushRequest,
    mut edit: impl FnMut(&Path) -> Result<T, E>,
    message: impl Fn(&T) -> String,
) -> Result<(PushOutcome, T), PushError<E>> {
    crate::libgit2_settings::apply();
    let url = RepoUrl::parse(&request.url)?;
    let credential = credentials.lookup(&request.url, request.project.as_deref());
    let session = || Session::new(&url, credential.clone(), credentials, request.timeout);
    let scratch_parent = request
        .scratch_dir
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    let scratch = tempfile::Builder::new()
        .prefix("ferry-push-")
        .tempdir_in(&scratch_parent)
        .map_err(|e| {
            GitError::io(
                format!("creating a directory in {}", scratch_parent.display()),
                e,
            )
        })?;
    let git_error = |e: git2::Error| GitError::Git {
        url: url.display(),
        message: e.message().to_owned(),
    };
    let repo = Repository::init(scratch.path()).map_err(git_error)?;
    repo.config()
        .and_then(|mut config| config.set_bool("core.symlinks", false))
        .map_err(git_error)?;

    let target = request.target();
    let attempts = request.max_attempts.max(1);
    let mut last_rejection = String::new();
    for attempt in 1..=attempts {
        let head = fetch_start(&session(), &repo, &url, request)?;
        let commit = repo.find_commit(head).map_err(git_error)?;
        let mut checkout = CheckoutBuilder::new();
        checkout.force().remove_untracked(true).remove_ignored(true);
        repo.checkout_tree(commit.as_object(), Some(&mut checkout))
            .and_then(|()| repo.set_head_detached(head))
            .map_err(git_error)?;
        let value = edit(scratch.path()).map_err(PushError::Edit)?;

        let mut index = repo.index().map_err(git_error)?;
        index
            .add_all(["*"], IndexAddOption::DEFAULT | IndexAddOption::FORCE, None)
            .and_then(|()| index.update_all(["*"], None))
            .map_err(git_error)?;
        let tree_id = index.write_tree().map_err(git_error)?;
        if tree_id == commit.tree_id() {
            return Ok((
                PushOutcome::Unchanged {
                    head: head.to_string(),
                },
                value,
            ));
        }
        let tree = repo.find_tree(tree_id).map_err(git_error)?;
        let files =
            changed_files(&repo, &commit.tree().map_err(git_error)?, &tree).map_err(git_error)?;
        if request.dry_run {
            let head = head.to_string();
            return Ok((PushOutcome::WouldPush { head, files }, value));
        }
        let author =
            Signature::now(&request.author.name, &request.author.email).map_err(git_error)?;
        let new = repo
            .commit(None, &author, &author, &message(&value), &tree, &[&commit])
            .map_err(git_error)?;
        repo.reference(PUSH_REF, new, true, "ferry push")
            .map_err(git_error)?;
        match session().push(&repo, &format!("{PUSH_REF}:refs/heads/{target}"))? {
            None => {
                return Ok((
                    PushOutcome::Pushed {
                        commit: new.to_string(),
                        branch: target.to_owned(),
                        files,
                        attempts: attempt,
                    },
                    value,
                ));
            }
            Some(why) => {
                tracing::info!(repo = %url.display(), branch = target, attempt, reason = %why,
                    "push rejected: the branch moved, applying the edit again on its new head");
                last_rejection = why;
            }
        }
    }
    Err(GitError::PushRejected {
        url: url.display(),
        branch: target.to_owned(),
        attempts,
        message: last_rejection,
    }
    .into())
}

/// The local ref a commit is pushed from (libgit2 pushes refs, not bare object ids).
const PUSH_REF: &str = "refs/heads/ferry-push";

/// Fetch the target branch (or, when it does not exist, the base branch) into `repo` and return
/// its head: what the edit goes on.
fn fetch_start(
    session: &Session<'_>,
    repo: &Repository,
    url: &RepoUrl,
    request: &PushRequest,
) -> Result<Oid, GitError> {
    let advertised = session.ls_remote()?;
    let head_of = |branch: &str| {
        let name = format!("refs/heads/{branch}");
        advertised
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.sha.clone())
    };
    let (branch, sha) = match head_of(request.target()) {
        Some(sha) => (request.target(), sha),
        None => match head_of(&request.base_branch) {
            Some(sha) => (request.base_branch.as_str(), sha),
            None => {
                return Err(GitError::UnknownRevision {
                    url: url.display(),
                    revision: request.base_branch.clone(),
                    message: "no such branch".to_owned(),
                });
            }
        },
    };
    session.fetch(
        repo,
        &[&format!(
            "+refs/heads/{branch}:refs/remotes/origin/{branch}"
        )],
    )?;
    Oid::from_str(&sha).map_err(|e| GitError::Git {
        url: url.display(),
        message: e.message().to_owned(),
    })
}

/// The paths that differ between two trees.
fn changed_files(
    repo: &Repository,
    old: &git2::Tree<'_>,
    new: &git2::Tree<'_>,
) -> Result<Vec<String>, git2::Error> {
    let diff = repo.diff_tree_to_tree(Some(old), Some(new), None)?;
    Ok(diff
        .deltas()
        .filter_map(|delta| delta.new_file().path().or(delta.old_file().path()))
        .map(|path| path.to_string_lossy().into_owned())
        .collect())
}

/// Commit the current contents of `paths` (files of the work tree of the repository that
/// holds `dir`) on top of its `HEAD`, as `git commit <paths>` does: other changes, staged or
/// not, stay out of the commit and where they were. Returns the new commit, or `None` when the
/// files are as `HEAD` has them (no empty commit). No network.
pub fn commit_paths(
    dir: &Path,
    paths: &[PathBuf],
    message: &str,
    author: &Author,
) -> Result<Option<String>, GitError> {
    let local = || dir.display().to_string();
    let git_error = |e: git2::Error| GitError::Git {
        url: local(),
        message: e.message().to_owned(),
    };
    let repo = Repository::discover(dir).map_err(git_error)?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| GitError::Git {
            url: local(),
            message: "a bare repository has no files to commit".to_owned(),
        })?
        .canonicalize()
        .map_err(|e| GitError::io(format!("resolving {}", local()), e))?;
    let head = repo
        .head()
        .and_then(|head| head.peel_to_commit())
        .map_err(git_error)?;
    let head_tree = head.tree().map_err(git_error)?;
    let mut index = git2::Index::new().map_err(git_error)?;
    index.read_tree(&head_tree).map_err(git_error)?;
    let mut relative = Vec::new();
    for path in paths {
        let absolute = dir
            .join(path)
            .canonicalize()
            .map_err(|e| GitError::io(format!("resolving {}", path.display()), e))?;
        let rel = absolute.strip_prefix(&workdir).map_err(|_| GitError::Git {
            url: local(),
            message: format!("{} is outside the work tree", path.display()),
        })?;
        let content = std::fs::read(&absolute)
            .map_err(|e| GitError::io(format!("reading {}", absolute.display()), e))?;
        let mode = index
            .get_path(rel, 0)
            .map(|entry| entry.mode)
            .unwrap_or(0o100644);
        let entry = git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode,
            uid: 0,
            gid: 0,
            file_size: content.len() as u32,
            id: repo.blob(&content).map_err(git_error)?,
            flags: 0,
            flags_extended: 0,
            path: rel.as_os_str().as_encoded_bytes().to_vec(),
        };
        index.add(&entry).map_err(git_error)?;
        relative.push(rel.to_owned());
    }
    let tree_id = index.write_tree_to(&repo).map_err(git_error)?;
    if tree_id == head_tree.id() {
        return Ok(None);
    }
    let tree = repo.find_tree(tree_id).map_err(git_error)?;
    let signature = Signature::now(&author.name, &author.email).map_err(git_error)?;
    let commit = repo
        .commit(
            Some("HEAD"),
            &signature,
            &signature,
            message,
            &tree,
            &[&head],
        )
        .map_err(git_error)?;
    // The committed files are no longer changes in the work tree's index either.
    let mut work_index = repo.index().map_err(git_error)?;
    for rel in &relative {
        work_index.add_path(rel).map_err(git_error)?;
    }
    work_index.write().map_err(git_error)?;
    Ok(Some(commit.to_string()))
}
