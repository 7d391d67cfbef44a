//! Keeping every file a render reads inside the repository checkout.
//!
//! User-supplied paths (source path, value files, file parameters, Jsonnet libraries, kustomize
//! components) are resolved lexically and then through the file system, so neither `..` nor a
//! symlink can lead outside the checkout. Absolute paths are refused, except for Helm value files
//! and file parameters, where Argo CD reads a leading `/` as the repository root.

use std::path::{Component, Path, PathBuf};

use crate::error::ErrorKind;

/// Resolves the user-supplied `rel` against `base` (a directory inside `root`) and returns the
/// resulting path, refusing absolute paths and anything that leaves `root`. `root` must be
/// canonical. `what` names the kind of path for the error message ("value file", ...).
pub(crate) fn resolve(
    root: &Path,
    base: &Path,
    rel: &str,
    what: &str,
) -> Result<PathBuf, ErrorKind> {
    if Path::new(rel).is_absolute() {
        return Err(ErrorKind::unsafe_path(
            rel,
            format!(
                "{what} must be a path relative to the repository, absolute paths are not allowed"
            ),
        ));
    }
    let joined = normalize(&base.join(rel));
    if !joined.starts_with(root) {
        return Err(ErrorKind::unsafe_path(
            rel,
            format!("{what} resolves outside the repository"),
        ));
    }
    check_real_path(root, &joined).map_err(|real| {
        ErrorKind::unsafe_path(
            rel,
            format!(
                "{what} follows a symlink outside the repository (to {})",
                real.display()
            ),
        )
    })?;
    Ok(joined)
}

/// Like [`resolve`], but an absolute `rel` names a file from the repository root (Argo CD's reading
/// of `/values/prod.yaml` in `valueFiles`), never from the host's file system.
pub(crate) fn resolve_repo_rooted(
    root: &Path,
    base: &Path,
    rel: &str,
    what: &str,
) -> Result<PathBuf, ErrorKind> {
    match rel.strip_prefix('/') {
        Some(from_root) => resolve(root, root, from_root.trim_start_matches('/'), what),
        None => resolve(root, base, rel, what),
    }
}

/// Checks that the real (symlink-free) location of `path`, or of its deepest existing ancestor
/// when it does not exist, is inside `root`. Returns the offending real path otherwise.
pub(crate) fn check_real_path(root: &Path, path: &Path) -> Result<(), PathBuf> {
    let mut probe = path;
    loop {
        match probe.canonicalize() {
            Ok(real) if real.starts_with(root) => return Ok(()),
            Ok(real) => return Err(real),
            Err(_) => match probe.parent() {
                Some(parent) => probe = parent,
                None => return Ok(()),
            },
        }
    }
}

/// Lexically removes `.` and resolves `..` (without touching the file system).
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Fails when any symlink under `root` points outside it (even a dangling one), as Argo CD
/// refuses such repositories: a tool could otherwise be steered to read files of the host.
/// `.git` is skipped: it is never handed to a tool.
pub(crate) fn check_symlinks(root: &Path) -> Result<(), ErrorKind> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| ErrorKind::io(dir.display(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| ErrorKind::io(dir.display(), e))?;
            let path = entry.path();
            let ty = entry
                .file_type()
                .map_err(|e| ErrorKind::io(path.display(), e))?;
            if ty.is_dir() {
                if entry.file_name() != ".git" {
                    stack.push(path);
                }
            } else if ty.is_symlink() {
                symlink_target(root, &path)?;
            }
        }
    }
    Ok(())
}

/// The lexical target of the symlink at `link`, checked to stay inside `root` both lexically and
/// (when it exists) after following further symlinks.
pub(crate) fn symlink_target(root: &Path, link: &Path) -> Result<PathBuf, ErrorKind> {
    let rel = link
        .strip_prefix(root)
        .unwrap_or(link)
        .display()
        .to_string();
    let target = std::fs::read_link(link).map_err(|e| ErrorKind::io(&rel, e))?;
    let lexical = normalize(&link.parent().unwrap_or(root).join(&target));
    let outside = || {
        ErrorKind::unsafe_path(
            &rel,
            format!(
                "symlink points outside the repository (to {})",
                target.display()
            ),
        )
    };
    if !lexical.starts_with(root) {
        return Err(outside());
    }
    check_real_path(root, &lexical).map_err(|_| outside())?;
    Ok(lexical)
}

/// The path of `path` relative to `root`, for messages and for the tools' view of the repo.
pub(crate) fn display_rel(root: &Path, path: &Path) -> String {
    match path.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
        Ok(rel) => rel.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        std::fs::create_dir_all(root.join("app/sub")).unwrap();
        std::fs::write(root.join("app/values.yaml"), "a: 1").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        let root = root.canonicalize().unwrap();
        (dir, root)
    }

    #[test]
    fn relative_paths_inside_resolve() {
        let (_d, root) = repo();
        let base = root.join("app/sub");
        assert_eq!(
            resolve(&root, &base, "../values.yaml", "value file").unwrap(),
            root.join("app/values.yaml")
        );
        assert_eq!(
            resolve(&root, &base, "../../app/./x", "value file").unwrap(),
            root.join("app/x")
        );
    }

    #[test]
    fn dotdot_and_absolute_are_refused() {
        let (_d, root) = repo();
        let err = resolve(&root, &root.join("app"), "../../secret", "value file").unwrap_err();
        assert!(
            err.to_string()
                .contains("../../secret: value file resolves outside the repository"),
            "{err}"
        );
        let err = resolve(&root, &root, "/etc/passwd", "value file").unwrap_err();
        assert!(
            err.to_string().contains("absolute paths are not allowed"),
            "{err}"
        );
    }

    #[test]
    fn repo_rooted_paths_stay_in_the_repo() {
        let (_d, root) = repo();
        let base = root.join("app");
        assert_eq!(
            resolve_repo_rooted(&root, &base, "/app/x", "value file").unwrap(),
            root.join("app/x")
        );
        assert_eq!(
            resolve_repo_rooted(&root, &base, "/etc/passwd", "value file").unwrap(),
            root.join("etc/passwd"),
            "a leading slash is the repository root, not the host's"
        );
        let err = resolve_repo_rooted(&root, &base, "/../secret", "value file").unwrap_err();
        assert!(err.to_string().contains("outside the repository"), "{err}");
    }

    #[test]
    fn symlinks_leaving_the_repo_are_refused() {
        let (d, root) = repo();
        std::os::unix::fs::symlink(d.path().join("secret"), root.join("app/leak.yaml")).unwrap();
        std::os::unix::fs::symlink(d.path(), root.join("app/outdir")).unwrap();
        let err = resolve(&root, &root.join("app"), "leak.yaml", "value file").unwrap_err();
        assert!(
            err.to_string().contains("symlink outside the repository"),
            "{err}"
        );
        // Even a path under a symlinked directory that does not exist yet.
        let err = resolve(&root, &root.join("app"), "outdir/new.yaml", "value file").unwrap_err();
        assert!(err.to_string().contains("symlink outside"), "{err}");
        let err = check_symlinks(&root).unwrap_err();
        assert!(
            err.to_string()
                .contains("symlink points outside the repository"),
            "{err}"
        );
    }

    #[test]
    fn symlinks_inside_the_repo_are_fine() {
        let (_d, root) = repo();
        std::os::unix::fs::symlink("../values.yaml", root.join("app/sub/v.yaml")).unwrap();
        std::os::unix::fs::symlink("missing.yaml", root.join("app/dangling.yaml")).unwrap();
        check_symlinks(&root).unwrap();
        assert!(resolve(&root, &root.join("app/sub"), "v.yaml", "value file").is_ok());
    }
}
