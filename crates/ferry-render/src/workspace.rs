//! A private, writable copy of a checkout for tools that change files (`kustomize edit`,
//! `helm dependency build`, plugins), so the shared checkout is never modified and concurrent
//! renders of the same commit cannot see each other's edits.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::confine;
use crate::error::ErrorKind;

pub(crate) struct Workspace {
    dir: tempfile::TempDir,
    /// The copy of the repository (canonical path).
    pub repo: PathBuf,
    /// Private HOME for the tools.
    pub home: PathBuf,
}

impl Workspace {
    /// An empty workspace (for charts pulled from a Helm repository).
    pub(crate) fn empty(parent: &Path) -> Result<Self, ErrorKind> {
        std::fs::create_dir_all(parent).map_err(|e| ErrorKind::io(parent.display(), e))?;
        // Random (16 characters) and private: one render cannot guess, or as another user
        // enter, another render's workspace.
        let dir = tempfile::Builder::new()
            .prefix("ferry-render-")
            .rand_bytes(16)
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(parent)
            .map_err(|e| ErrorKind::io(parent.display(), e))?;
        let root = dir
            .path()
            .canonicalize()
            .map_err(|e| ErrorKind::io(dir.path().display(), e))?;
        let repo = root.join("repo");
        let home = root.join("home");
        for d in [&repo, &home, &home.join("tmp")] {
            std::fs::create_dir_all(d).map_err(|e| ErrorKind::io(d.display(), e))?;
        }
        Ok(Self { dir, repo, home })
    }

    /// A workspace holding a copy of `checkout` (canonical), without `.git`. Symlinks are
    /// re-created pointing into the copy; ones leaving the checkout are refused.
    pub(crate) fn copy_of(parent: &Path, checkout: &Path) -> Result<Self, ErrorKind> {
        let ws = Self::empty(parent)?;
        copy_tree(checkout, &ws.repo, checkout, &ws.repo)?;
        Ok(ws)
    }

    /// A file in the workspace outside the repository copy (inline values and the like).
    pub(crate) fn scratch(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn copy_tree(root: &Path, copy_root: &Path, from: &Path, to: &Path) -> Result<(), ErrorKind> {
    let rel = |p: &Path| confine::display_rel(root, p);
    let entries = std::fs::read_dir(from).map_err(|e| ErrorKind::io(rel(from), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| ErrorKind::io(rel(from), e))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let ty = entry.file_type().map_err(|e| ErrorKind::io(rel(&src), e))?;
        if ty.is_dir() {
            if entry.file_name() == ".git" {
                continue;
            }
            std::fs::create_dir(&dst).map_err(|e| ErrorKind::io(rel(&src), e))?;
            copy_tree(root, copy_root, &src, &dst)?;
        } else if ty.is_symlink() {
            let target = confine::symlink_target(root, &src)?;
            let inside = target.strip_prefix(root).expect("checked to be inside");
            std::os::unix::fs::symlink(copy_root.join(inside), &dst)
                .map_err(|e| ErrorKind::io(rel(&src), e))?;
        } else if ty.is_file() {
            std::fs::copy(&src, &dst).map_err(|e| ErrorKind::io(rel(&src), e))?;
        }
        // Sockets, fifos and devices are not repository content; they are left out.
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_skips_git_and_repoints_symlinks_into_the_copy() {
        let src = tempfile::tempdir().unwrap();
        let root = src.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join(".git/objects")).unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/values.yaml"), "x: 1").unwrap();
        std::os::unix::fs::symlink("../values.yaml", root.join("a/b/link.yaml")).unwrap();
        std::os::unix::fs::symlink(root.join("a"), root.join("abs")).unwrap();
        let parent = tempfile::tempdir().unwrap();
        let ws = Workspace::copy_of(parent.path(), &root).unwrap();
        assert!(!ws.repo.join(".git").exists());
        assert_eq!(
            std::fs::read_to_string(ws.repo.join("a/b/link.yaml")).unwrap(),
            "x: 1"
        );
        let link = std::fs::read_link(ws.repo.join("a/b/link.yaml")).unwrap();
        assert!(link.starts_with(&ws.repo), "{link:?}");
        assert_eq!(
            std::fs::read_link(ws.repo.join("abs")).unwrap(),
            ws.repo.join("a")
        );
        // Writing through the copy never touches the checkout.
        std::fs::write(ws.repo.join("a/b/link.yaml"), "changed").unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("a/values.yaml")).unwrap(),
            "x: 1"
        );
    }

    #[test]
    fn workspaces_are_private_and_unpredictable() {
        let parent = tempfile::tempdir().unwrap();
        let one = Workspace::empty(parent.path()).unwrap();
        let two = Workspace::empty(parent.path()).unwrap();
        assert_ne!(one.dir.path(), two.dir.path());
        for ws in [&one, &two] {
            let name = ws.dir.path().file_name().unwrap().to_string_lossy();
            assert!(
                name.trim_start_matches("ferry-render-").len() >= 16,
                "{name}"
            );
            let mode = std::fs::metadata(ws.dir.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700, "{name}: {mode:o}");
        }
    }

    #[test]
    fn copy_refuses_symlinks_out_of_the_checkout() {
        let outside = tempfile::tempdir().unwrap();
        let src = tempfile::tempdir().unwrap();
        let root = src.path().canonicalize().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        let parent = tempfile::tempdir().unwrap();
        let err = Workspace::copy_of(parent.path(), &root).err().unwrap();
        assert!(
            err.to_string().starts_with("out: symlink points outside"),
            "{err}"
        );
    }
}
