//! Directory sources: plain YAML/JSON manifests and Jsonnet files, with Argo CD's `recurse`,
//! `include` and `exclude` rules.

use std::io::Read;
use std::path::{Path, PathBuf};

use ferry_types::source::ApplicationSourceDirectory;
use globset::{GlobBuilder, GlobMatcher};
use serde_json::Value;

use crate::confine;
use crate::error::ErrorKind;
use crate::limits::ManifestBudget;
use crate::manifest;

/// A piece of a directory source, in path order.
#[derive(Debug)]
pub(crate) enum Part {
    /// The objects of a YAML or JSON file.
    Objects(Vec<Value>),
    /// A Jsonnet file, for the caller to evaluate (in a worker: see `jsonnet`).
    Jsonnet(PathBuf),
}

/// Reads every manifest file of `app_dir` (inside the canonical `root`), in path order. No file
/// larger than `max_file_size` is read, and reading stops as soon as the objects read would
/// overrun `budget` (what earlier sources of the app left).
pub(crate) fn read(
    root: &Path,
    app_dir: &Path,
    opts: &ApplicationSourceDirectory,
    max_file_size: u64,
    mut budget: ManifestBudget,
) -> Result<Vec<Part>, ErrorKind> {
    let include = glob(&opts.include, "include")?;
    let exclude = glob(&opts.exclude, "exclude")?;
    let mut files = Vec::new();
    walk(root, app_dir, app_dir, opts.recurse, &mut files)?;
    files.sort();
    let mut parts = Vec::new();
    for (rel, path) in files {
        if exclude.as_ref().is_some_and(|g| g.is_match(&rel)) {
            continue;
        }
        if include.as_ref().is_some_and(|g| !g.is_match(&rel)) {
            continue;
        }
        let shown = confine::display_rel(root, &path);
        if rel.ends_with(".jsonnet") {
            check_size(&path, &shown, max_file_size)?;
            parts.push(Part::Jsonnet(path));
        } else {
            let objects = read_manifest_file(&path, &shown, max_file_size)?;
            budget.spend(&objects)?;
            parts.push(Part::Objects(objects));
        }
    }
    Ok(parts)
}

fn glob(pattern: &str, field: &str) -> Result<Option<GlobMatcher>, ErrorKind> {
    if pattern.is_empty() {
        return Ok(None);
    }
    // `*` also matches `/`, as in Argo CD (gobwas/glob without separators).
    GlobBuilder::new(pattern)
        .literal_separator(false)
        .build()
        .map(|g| Some(g.compile_matcher()))
        .map_err(|e| ErrorKind::Invalid(format!("directory.{field} {pattern:?}: {e}")))
}

fn is_manifest_name(name: &str) -> bool {
    [".yaml", ".yml", ".json", ".jsonnet"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// Collects `(path relative to app_dir, path)` of candidate files. Symlinks are followed only
/// when they stay inside the repository; dangling ones and ones to non-files are skipped.
fn walk(
    root: &Path,
    app_dir: &Path,
    dir: &Path,
    recurse: bool,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), ErrorKind> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| ErrorKind::io(confine::display_rel(root, dir), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| ErrorKind::io(confine::display_rel(root, dir), e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let ty = entry
            .file_type()
            .map_err(|e| ErrorKind::io(confine::display_rel(root, &path), e))?;
        if ty.is_dir() {
            if recurse && name != ".git" {
                walk(root, app_dir, &path, recurse, out)?;
            }
            continue;
        }
        if !is_manifest_name(&name) {
            continue;
        }
        if ty.is_symlink() {
            let target = confine::symlink_target(root, &path)?;
            if !target.is_file() {
                tracing::warn!(file = %confine::display_rel(root, &path), "skipping symlink to a missing or non-regular file");
                continue;
            }
        } else if !ty.is_file() {
            continue;
        }
        let rel = path
            .strip_prefix(app_dir)
            .expect("walk stays under app_dir");
        out.push((rel.to_string_lossy().into_owned(), path));
    }
    Ok(())
}

/// Objects of one YAML or JSON file. JSON files hold exactly one value. A YAML file that does
/// not parse as manifests is an error when it looks like one (has `apiVersion:`, `kind:` and
/// `metadata:`) or already yielded objects; otherwise it is an unrelated YAML file (a values
/// file, CI config) and is skipped with a warning, as Argo CD does.
/// Files larger than `max_file_size` are refused unread.
fn read_manifest_file(
    path: &Path,
    shown: &str,
    max_file_size: u64,
) -> Result<Vec<Value>, ErrorKind> {
    let size = check_size(path, shown, max_file_size)?;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            f.take(max_file_size.saturating_add(1))
                .read_to_end(&mut bytes)
        })
        .map_err(|e| ErrorKind::io(shown, e))?;
    if bytes.len() as u64 > max_file_size {
        // It grew after it was measured.
        return Err(too_large(
            shown,
            size.max(bytes.len() as u64),
            max_file_size,
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        ErrorKind::io(
            shown,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            ),
        )
    })?;
    parse_manifest_file(&text, shown)
}

/// The size of the file at `path`; an error when it is over `limit`.
fn check_size(path: &Path, shown: &str, limit: u64) -> Result<u64, ErrorKind> {
    let size = std::fs::metadata(path)
        .map_err(|e| ErrorKind::io(shown, e))?
        .len();
    if size > limit {
        return Err(too_large(shown, size, limit));
    }
    Ok(size)
}

fn too_large(shown: &str, size: u64, limit: u64) -> ErrorKind {
    ErrorKind::ManifestFileTooLarge {
        file: shown.to_string(),
        size,
        limit,
    }
}

/// The objects of a manifest file's `text`, read as a directory source reads the file named
/// `shown` (see `read_manifest_file`); public for the fuzz targets.
pub fn parse_manifest_file(text: &str, shown: &str) -> Result<Vec<Value>, ErrorKind> {
    if shown.ends_with(".json") {
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        let value = match stream.next() {
            Some(Ok(v)) => v,
            Some(Err(e)) => return Err(manifest_error(shown, e.to_string())),
            None => return Err(manifest_error(shown, "empty JSON file".into())),
        };
        if stream.next().is_some() {
            return Err(manifest_error(
                shown,
                "found multiple objects; only a single object is allowed in a JSON file".into(),
            ));
        }
        manifest::check_object(&value).map_err(|m| manifest_error(shown, m))?;
        return manifest::flatten_lists(vec![value], shown);
    }
    let docs = manifest::documents(text, shown)?;
    let mut objects = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        if let Err(message) = manifest::check_object(&doc) {
            let looks_like_manifest = ["apiVersion:", "kind:", "metadata:"]
                .iter()
                .all(|k| text.contains(k));
            if objects.is_empty() && !looks_like_manifest {
                tracing::warn!(
                    file = shown,
                    "skipping YAML file that is not a Kubernetes manifest"
                );
                return Ok(Vec::new());
            }
            return Err(manifest_error(
                shown,
                format!("document {}: {message}", i + 1),
            ));
        }
        objects.push(doc);
    }
    manifest::flatten_lists(objects, shown)
}

fn manifest_error(file: &str, message: String) -> ErrorKind {
    ErrorKind::Manifest {
        file: file.to_string(),
        message,
    }
}

/// A Jsonnet file yields one object or an array of objects; lists inside are flattened.
pub(crate) fn jsonnet_objects(value: Value, shown: &str) -> Result<Vec<Value>, ErrorKind> {
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    for (i, item) in items.iter().enumerate() {
        manifest::check_object(item)
            .map_err(|m| manifest_error(shown, format!("output item {i}: {m}")))?;
    }
    manifest::flatten_lists(items, shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_FILE: u64 = 1 << 20;

    fn unlimited() -> ManifestBudget {
        ManifestBudget::new(u64::MAX)
    }

    /// The objects of a directory without Jsonnet files.
    fn render(
        root: &Path,
        app_dir: &Path,
        opts: &ApplicationSourceDirectory,
    ) -> Result<Vec<Value>, ErrorKind> {
        let mut objects = Vec::new();
        for part in read(root, app_dir, opts, MAX_FILE, unlimited())? {
            match part {
                Part::Objects(o) => objects.extend(o),
                Part::Jsonnet(path) => panic!("unexpected Jsonnet file {}", path.display()),
            }
        }
        Ok(objects)
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn cm(name: &str) -> String {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n")
    }

    fn names(objs: &[Value]) -> Vec<String> {
        objs.iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    }

    fn opts(yaml: &str) -> ApplicationSourceDirectory {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn fixture() -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        write(
            &root,
            "app/a.yaml",
            &format!("{}---\n{}", cm("a1"), cm("a2")),
        );
        write(
            &root,
            "app/b.json",
            r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"b1"}},{"apiVersion":"v1","kind":"Secret","metadata":{"name":"b2"}}]}"#,
        );
        write(&root, "app/sub/c.yml", &cm("c"));
        write(&root, "app/sub/deep/d.yaml", &cm("d"));
        write(&root, "app/sub/skip.yaml", &cm("skip"));
        write(&root, "app/README.md", "# not a manifest");
        write(&root, "app/values.yaml", "replicas: 3\nimage: nginx\n");
        (d, root)
    }

    #[test]
    fn top_level_only_without_recurse() {
        let (_d, root) = fixture();
        let objs = render(&root, &root.join("app"), &opts("{}")).unwrap();
        assert_eq!(names(&objs), ["a1", "a2", "b1", "b2"]);
    }

    #[test]
    fn recurse_with_include_and_exclude_braces() {
        let (_d, root) = fixture();
        let o =
            opts("recurse: true\ninclude: '{*.yml,*.yaml}'\nexclude: '{sub/skip.yaml,*/deep/*}'\n");
        let objs = render(&root, &root.join("app"), &o).unwrap();
        assert_eq!(names(&objs), ["a1", "a2", "c"]);
        let o = opts("recurse: true\nexclude: 'sub/*'\n");
        let objs = render(&root, &root.join("app"), &o).unwrap();
        assert_eq!(names(&objs), ["a1", "a2", "b1", "b2"]);
    }

    #[test]
    fn broken_manifest_names_the_file() {
        let (_d, root) = fixture();
        write(
            &root,
            "app/sub/bad.yaml",
            &format!("{}---\nkind: Service\n", cm("x")),
        );
        let err = render(&root, &root.join("app"), &opts("recurse: true")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "app/sub/bad.yaml: document 2: object has no `apiVersion`; not a Kubernetes manifest"
        );
        write(
            &root,
            "app/sub/bad.yaml",
            "apiVersion: v1\nkind: [\nmetadata: {}\n",
        );
        let err = render(&root, &root.join("app"), &opts("recurse: true")).unwrap_err();
        assert!(
            err.to_string().starts_with("app/sub/bad.yaml: document 1:"),
            "{err}"
        );
    }

    #[test]
    fn json_must_be_a_single_object() {
        let (_d, root) = fixture();
        write(
            &root,
            "app/two.json",
            r#"{"apiVersion":"v1","kind":"A"} {"apiVersion":"v1","kind":"B"}"#,
        );
        let err = render(&root, &root.join("app"), &opts("{}")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("app/two.json: found multiple objects"),
            "{err}"
        );
    }

    #[test]
    fn symlink_out_of_the_repo_is_refused() {
        let (_d, root) = fixture();
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "x.yaml", &cm("leak"));
        std::os::unix::fs::symlink(outside.path().join("x.yaml"), root.join("app/leak.yaml"))
            .unwrap();
        let err = render(&root, &root.join("app"), &opts("{}")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("app/leak.yaml: symlink points outside"),
            "{err}"
        );
    }

    #[test]
    fn bad_glob_is_an_error() {
        let (_d, root) = fixture();
        let err = render(&root, &root.join("app"), &opts("include: '{a,'")).unwrap_err();
        assert!(err.to_string().starts_with("directory.include"), "{err}");
    }

    #[test]
    fn files_over_the_size_limit_are_refused_unread() {
        let (_d, root) = fixture();
        write(
            &root,
            "app/c-big.yaml",
            &format!("{}data:\n  x: {}\n", cm("big"), "y".repeat(2000)),
        );
        let app = root.join("app");
        let err = read(&root, &app, &opts("{}"), 2000, unlimited()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "app/c-big.yaml: the file is 2065 B, over the limit of 2000 B for one manifest file (--max-manifest-file-size)"
        );
        assert!(read(&root, &app, &opts("{}"), 2100, unlimited()).is_ok());
        // Jsonnet files too, before any evaluation.
        write(
            &root,
            "app/j.jsonnet",
            &format!("{{ x: '{}' }}", "y".repeat(3000)),
        );
        let err = read(&root, &app, &opts("{}"), 2100, unlimited()).unwrap_err();
        assert!(
            err.to_string().starts_with("app/j.jsonnet: the file is"),
            "{err}"
        );
    }

    #[test]
    fn reading_stops_at_the_manifest_budget() {
        let (_d, root) = fixture();
        let app = root.join("app");
        let all = render(&root, &app, &opts("{}")).unwrap();
        let size = crate::limits::json_size(&all);
        // Earlier sources used 100 bytes; this one needs `size` more.
        let budget = |limit| {
            let mut b = ManifestBudget::new(limit);
            b.spend(&[serde_json::json!("x".repeat(98))]).unwrap();
            b
        };
        assert!(read(&root, &app, &opts("{}"), MAX_FILE, budget(100 + size)).is_ok());
        let err = read(&root, &app, &opts("{}"), MAX_FILE, budget(100 + size - 1)).unwrap_err();
        assert!(
            matches!(err, ErrorKind::ManifestsTooLarge { size: s, limit } if s == 100 + size && limit == 100 + size - 1),
            "{err}"
        );
        assert!(err.to_string().ends_with("(--max-manifest-size)"), "{err}");
    }
}
