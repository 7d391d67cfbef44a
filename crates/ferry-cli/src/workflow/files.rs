//! Manifests from the command line: files, directories (their `.yaml`, `.yml` and `.json`
//! files, recursively, as `argo lint` walks them) or `-` for standard input, each a stream
//! of YAML or JSON documents.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

/// The documents of every manifest under `paths`, by file.
pub fn read(paths: &[String]) -> anyhow::Result<Vec<(String, Vec<Value>)>> {
    let mut out = Vec::new();
    for path in paths {
        if path == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            out.push((
                path.clone(),
                documents(&text).context("reading standard input")?,
            ));
            continue;
        }
        walk(Path::new(path), &mut out)?;
    }
    Ok(out)
}

fn walk(path: &Path, out: &mut Vec<(String, Vec<Value>)>) -> anyhow::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.path());
        for entry in entries {
            let child = entry.path();
            let manifest = child
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json");
            if child.is_dir() || manifest {
                walk(&child, out)?;
            }
        }
        return Ok(());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let docs = documents(&text).with_context(|| format!("parsing {}", path.display()))?;
    out.push((path.display().to_string(), docs));
    Ok(())
}

/// The non-empty documents of a YAML (or JSON) stream.
pub fn documents(text: &str) -> anyhow::Result<Vec<Value>> {
    let mut docs = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let value = Value::deserialize(document)?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// The documents of `kind` among `files`, typed; another kind is an error naming the file.
pub fn objects<T: serde::de::DeserializeOwned>(
    files: &[(String, Vec<Value>)],
    kind: &str,
) -> anyhow::Result<Vec<T>> {
    let mut out = Vec::new();
    for (file, docs) in files {
        for doc in docs {
            let found = doc.get("kind").and_then(Value::as_str).unwrap_or("");
            if found != kind {
                anyhow::bail!("{file}: a {found:?} where a {kind} was expected");
            }
            out.push(
                serde_json::from_value(doc.clone()).with_context(|| format!("{file}: {kind}"))?,
            );
        }
    }
    Ok(out)
}
