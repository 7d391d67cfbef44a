//! Tar archives unpacked into a directory of their own, which nothing in them may leave: the
//! layers of OCI sources, and the files `argocd app diff --local --server-side-generate` and
//! `argocd app manifests --local` upload ([`crate::Renderer::render_archive`]).

use std::io::Read;
use std::path::{Component, Path};

use crate::confine;

/// Most entries (files, directories, links) one archive may hold: a million empty files would
/// cost the disk's inodes without weighing anything.
pub(crate) const MAX_ENTRIES: u64 = 100_000;

/// Unpacks a tar stream into `dest`: regular files and directories, and with `symlinks` symbolic
/// links to relative paths that stay inside `dest` (checked once all are made, so a chain of
/// links cannot lead out either). Hard links, devices and the like are refused, as are absolute
/// paths, `..`, more than [`MAX_ENTRIES`] entries and more than `max_size` bytes — of files, and
/// of the tar stream itself (which bounds what a compressed archive may expand to).
pub(crate) fn unpack(
    data: impl Read,
    dest: &Path,
    max_size: u64,
    symlinks: bool,
) -> Result<(), String> {
    let mut archive = tar::Archive::new(data.take(max_size.saturating_add(1)));
    let (mut total, mut entries) = (0u64, 0u64);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        entries += 1;
        if entries > MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} entries"));
        }
        if path
            .components()
            .any(|part| matches!(part, Component::RootDir | Component::Prefix(_)))
        {
            return Err(format!("{} is an absolute path", path.display()));
        }
        let kind = entry.header().entry_type();
        let link = kind.is_symlink() && symlinks;
        if !(kind.is_file() || kind.is_dir() || link) {
            return Err(format!(
                "{} is a {kind:?}; only files{} and directories are unpacked",
                path.display(),
                if symlinks { ", symbolic links" } else { "" }
            ));
        }
        if link {
            let target = entry
                .link_name()
                .map_err(|e| e.to_string())?
                .unwrap_or_default();
            if target.is_absolute() {
                return Err(format!(
                    "{} links to the absolute path {}",
                    path.display(),
                    target.display()
                ));
            }
        }
        total += entry.size();
        if total > max_size {
            return Err(format!(
                "more than {} of files",
                crate::limits::format_size(max_size)
            ));
        }
        // unpack_in refuses paths with `..`, and entries whose directory leads out of `dest`.
        if !entry.unpack_in(dest).map_err(|e| e.to_string())? {
            return Err(format!("{} would be outside the archive", path.display()));
        }
    }
    if symlinks {
        let root = dest.canonicalize().map_err(|e| e.to_string())?;
        confine::check_symlinks(&root).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    enum Entry<'a> {
        File(&'a str, &'a [u8]),
        Link(&'a str, &'a str),
        HardLink(&'a str, &'a str),
    }

    fn tar(entries: &[Entry<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for entry in entries {
            let mut header = tar::Header::new_gnu();
            match entry {
                Entry::File(path, data) => {
                    header.set_size(data.len() as u64);
                    header.set_mode(0o644);
                    header.set_entry_type(tar::EntryType::Regular);
                    // Written raw: the builder's own path setters refuse `..` and `/`.
                    set_raw_path(&mut header, path);
                    header.set_cksum();
                    builder.append(&header, *data).unwrap();
                }
                Entry::Link(path, target) | Entry::HardLink(path, target) => {
                    header.set_size(0);
                    header.set_entry_type(if matches!(entry, Entry::Link(..)) {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    });
                    set_raw_path(&mut header, path);
                    header.set_link_name(target).unwrap();
                    header.set_cksum();
                    builder.append(&header, std::io::empty()).unwrap();
                }
            }
        }
        builder.into_inner().unwrap()
    }

    fn set_raw_path(header: &mut tar::Header, path: &str) {
        let name = &mut header.as_old_mut().name;
        name.fill(0);
        name[..path.len()].copy_from_slice(path.as_bytes());
    }

    fn unpacked(entries: &[Entry<'_>], max_size: u64) -> (tempfile::TempDir, Result<(), String>) {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("files");
        std::fs::create_dir(&dest).unwrap();
        let result = unpack(tar(entries).as_slice(), &dest, max_size, true);
        (dir, result)
    }

    #[test]
    fn files_and_links_inside_are_unpacked() {
        let (dir, result) = unpacked(
            &[
                Entry::File("app/cm.yaml", b"kind: ConfigMap\n"),
                Entry::Link("app/same.yaml", "cm.yaml"),
                Entry::Link("top.yaml", "app/cm.yaml"),
            ],
            1 << 20,
        );
        result.unwrap();
        let read = |path: &str| std::fs::read_to_string(dir.path().join("files").join(path));
        assert_eq!(read("app/same.yaml").unwrap(), "kind: ConfigMap\n");
        assert_eq!(read("top.yaml").unwrap(), "kind: ConfigMap\n");
    }

    #[test]
    fn nothing_leaves_the_directory() {
        let cases: &[(&[Entry<'_>], &str)] = &[
            (
                &[Entry::File("../escape.yaml", b"x")],
                "outside the archive",
            ),
            (&[Entry::File("/etc/escape.yaml", b"x")], "absolute path"),
            (
                &[Entry::Link("l", "/etc/passwd")],
                "absolute path /etc/passwd",
            ),
            (
                &[Entry::Link("l", "../../etc/passwd")],
                "outside the repository",
            ),
            // A link through a link: lexically inside, really outside.
            (
                &[Entry::Link("a", "."), Entry::Link("a/l", "../x")],
                "outside the repository",
            ),
            (&[Entry::HardLink("h", "/etc/passwd")], "Link"),
        ];
        for (entries, expected) in cases {
            let (dir, result) = unpacked(entries, 1 << 20);
            let err = result.unwrap_err();
            assert!(err.contains(expected), "{err} (expected {expected})");
            assert!(!dir.path().join("escape.yaml").exists());
        }
    }

    #[test]
    fn sizes_and_entries_are_bounded() {
        let big = vec![b'x'; 4096];
        let (_dir, result) = unpacked(&[Entry::File("a", &big), Entry::File("b", &big)], 6000);
        assert!(result.unwrap_err().contains("more than 5.9 KiB of files"));
        // The same directory again and again: counted each time, made once.
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        header.set_path("d/").unwrap();
        header.set_cksum();
        for _ in 0..=MAX_ENTRIES {
            builder.append(&header, std::io::empty()).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let err = unpack(
            builder.into_inner().unwrap().as_slice(),
            dir.path(),
            u64::MAX,
            true,
        )
        .unwrap_err();
        assert_eq!(err, format!("more than {MAX_ENTRIES} entries"));
    }
}
