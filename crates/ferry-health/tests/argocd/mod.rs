//! Reading Argo CD's `resource_customizations` test data (shared by the conformance tests).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// The corpus at the release pinned in tools/versions.env.
pub fn corpus() -> PathBuf {
    ferry_testkit::argocd_source::resource_customizations().unwrap()
}

/// Every directory under `dir` holding a file named `file`, sorted.
pub fn dirs_with(dir: &Path, file: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    collect(dir, file, &mut found);
    found
}

fn collect(dir: &Path, file: &str, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, file, found);
        } else if path.file_name().is_some_and(|n| n == file) {
            found.push(dir.to_owned());
        }
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The file's first YAML document, as Go's YAML decoding reads it (some inputs hold more).
pub fn first_document(path: &Path) -> Value {
    let text = read(path);
    let first = serde_yaml::Deserializer::from_str(&text)
        .next()
        .unwrap_or_else(|| panic!("{} holds no YAML document", path.display()));
    Value::deserialize(first).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A test file of the corpus.
pub fn tests<T: for<'de> Deserialize<'de>>(path: &Path) -> T {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
