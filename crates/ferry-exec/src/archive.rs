//! Upstream's artifact archives: a tar.gz whose single top entry is the file or directory by
//! its base name, and unpacking into a path (a single entry becomes the path itself).

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::Path;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

/// Packs `source` (a file or a directory) into the tar.gz `dest`.
pub fn tar_gz(source: &Path, dest: &Path) -> Result<(), String> {
    let shown = source.display();
    let metadata = fs::metadata(source).map_err(|err| format!("{shown}: {err}"))?;
    let base = source
        .file_name()
        .ok_or_else(|| format!("{shown}: no file name to archive it by"))?;
    let out = File::create(dest).map_err(|err| format!("creating {}: {err}", dest.display()))?;
    let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::default()));
    // Symbolic links are archived as links, never followed out of the artifact.
    tar.follow_symlinks(false);
    let added = if metadata.is_dir() {
        tar.append_dir_all(base, source)
    } else {
        tar.append_path_with_name(source, base)
    };
    added
        .and_then(|()| tar.into_inner())
        .and_then(|gz| gz.finish())
        .map(drop)
        .map_err(|err| format!("archiving {shown}: {err}"))
}

/// Whether `path` is a gzip file (an archive to unpack rather than a file to keep as is).
pub fn is_gzip(path: &Path) -> Result<bool, String> {
    let mut magic = [0u8; 2];
    let mut file = File::open(path).map_err(|err| format!("{}: {err}", path.display()))?;
    Ok(file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b])
}

/// Unpacks the tar.gz `archive` into `dest`: a single top entry becomes `dest`, several become
/// `dest`'s entries. Entries cannot land outside `dest` (the tar crate skips `..` paths).
pub fn unpack(archive: &Path, dest: &Path) -> Result<(), String> {
    let staging = dest.with_extension("unpacking");
    fs::create_dir_all(&staging).map_err(|err| format!("{}: {err}", staging.display()))?;
    let file = File::open(archive).map_err(|err| format!("{}: {err}", archive.display()))?;
    tar::Archive::new(GzDecoder::new(BufReader::new(file)))
        .unpack(&staging)
        .map_err(|err| format!("unpacking {}: {err}", archive.display()))?;
    let entries: Vec<_> = fs::read_dir(&staging)
        .and_then(|dir| dir.collect::<Result<_, _>>())
        .map_err(|err| format!("{}: {err}", staging.display()))?;
    let moved = match entries.as_slice() {
        [single] => fs::rename(single.path(), dest).and_then(|()| fs::remove_dir(&staging)),
        _ => fs::rename(&staging, dest),
    };
    moved.map_err(|err| format!("moving the unpacked artifact to {}: {err}", dest.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_round_trips_under_its_own_name() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("site");
        fs::create_dir_all(source.join("css")).unwrap();
        fs::write(source.join("index.html"), "<h1>hi</h1>").unwrap();
        fs::write(source.join("css/a.css"), "h1 {}").unwrap();
        let archive = dir.path().join("site.tgz");
        tar_gz(&source, &archive).unwrap();
        assert!(is_gzip(&archive).unwrap());

        let names: Vec<String> = tar::Archive::new(GzDecoder::new(File::open(&archive).unwrap()))
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(names.contains(&"site/index.html".to_string()), "{names:?}");

        let dest = dir.path().join("elsewhere");
        unpack(&archive, &dest).unwrap();
        assert_eq!(fs::read_to_string(dest.join("css/a.css")).unwrap(), "h1 {}");
    }

    #[test]
    fn a_single_file_unpacks_to_the_path_itself() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("message.txt");
        fs::write(&source, "hello").unwrap();
        let archive = dir.path().join("a.tgz");
        tar_gz(&source, &archive).unwrap();
        let dest = dir.path().join("in");
        unpack(&archive, &dest).unwrap();
        assert_eq!(fs::read_to_string(&dest).unwrap(), "hello");
        assert!(!is_gzip(&dest).unwrap());
    }

    #[test]
    fn a_missing_path_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = tar_gz(&dir.path().join("nope"), &dir.path().join("x.tgz")).unwrap_err();
        assert!(err.contains("nope"), "{err}");
    }
}
