//! Directory sources: plain YAML/JSON manifests and Jsonnet files, with Argo CD's `recurse`,
//! `include` and `exclude` rules.

use std::path::{Path, PathBuf};

use ferry_types::source::ApplicationSourceDirectory;
use globset::{GlobBuilder, GlobMatcher};
use serde_json::Value;

use crate::confine;
use crate::env::BuildEnv;
use crate::error::ErrorKind;
use crate::jsonnet;
use crate::manifest;

/// Renders every manifest file of `app_dir` (inside the canonical `root`), in path order.
pub(crate) fn render(
    root: &Path,
    app_dir: &Path,
    opts: &ApplicationSourceDirectory,
    env: &BuildEnv,
) -> Result<Vec<Value>, ErrorKind> {
    let include = glob(&opts.include, "include")?;
    let exclude = glob(&opts.exclude, "exclude")?;
    let mut files = Vec::new();
    walk(root, app_dir, app_dir, opts.recurse, &mut files)?;
    files.sort();
    let mut objects = Vec::new();
    for (rel, path) in files {
        if exclude.as_ref().is_some_and(|g| g.is_match(&rel)) {
            continue;
        }
        if include.as_ref().is_some_and(|g| !g.is_match(&rel)) {
            continue;
        }
        let shown = confine::display_rel(root, &path);
        if rel.ends_with(".jsonnet") {
            let value = jsonnet::evaluate(root, app_dir, &path, &opts.jsonnet, env)?;
            objects.extend(jsonnet_objects(value, &shown)?);
        } else {
            objects.extend(read_manifest_file(&path, &shown)?);
        }
    }
    Ok(objects)
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
fn read_manifest_file(path: &Path, shown: &str) -> Result<Vec<Value>, ErrorKind> {
    let text = std::fs::read_to_string(path).map_err(|e| ErrorKind::io(shown, e))?;
    parse_manifest_file(&text, shown)
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
fn jsonnet_objects(value: Value, shown: &str) -> Result<Vec<Value>, ErrorKind> {
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
        let objs = render(&root, &root.join("app"), &opts("{}"), &BuildEnv::default()).unwrap();
        assert_eq!(names(&objs), ["a1", "a2", "b1", "b2"]);
    }

    #[test]
    fn recurse_with_include_and_exclude_braces() {
        let (_d, root) = fixture();
        let o =
            opts("recurse: true\ninclude: '{*.yml,*.yaml}'\nexclude: '{sub/skip.yaml,*/deep/*}'\n");
        let objs = render(&root, &root.join("app"), &o, &BuildEnv::default()).unwrap();
        assert_eq!(names(&objs), ["a1", "a2", "c"]);
        let o = opts("recurse: true\nexclude: 'sub/*'\n");
        let objs = render(&root, &root.join("app"), &o, &BuildEnv::default()).unwrap();
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
        let err = render(
            &root,
            &root.join("app"),
            &opts("recurse: true"),
            &BuildEnv::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "app/sub/bad.yaml: document 2: object has no `apiVersion`; not a Kubernetes manifest"
        );
        write(
            &root,
            "app/sub/bad.yaml",
            "apiVersion: v1\nkind: [\nmetadata: {}\n",
        );
        let err = render(
            &root,
            &root.join("app"),
            &opts("recurse: true"),
            &BuildEnv::default(),
        )
        .unwrap_err();
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
        let err = render(&root, &root.join("app"), &opts("{}"), &BuildEnv::default()).unwrap_err();
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
        let err = render(&root, &root.join("app"), &opts("{}"), &BuildEnv::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("app/leak.yaml: symlink points outside"),
            "{err}"
        );
    }

    #[test]
    fn bad_glob_is_an_error() {
        let (_d, root) = fixture();
        let err = render(
            &root,
            &root.join("app"),
            &opts("include: '{a,'"),
            &BuildEnv::default(),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("directory.include"), "{err}");
    }
}
