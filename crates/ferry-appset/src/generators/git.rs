//! The git generator: one parameter set per directory matching `directories`, or per object in
//! the JSON/YAML files matching `files`, at `revision` of `repoURL`.
//!
//! The commit is resolved and checked out with ferry-git (its mirror cache and the repository
//! credentials of the template's project); symbolic links are never followed and hidden
//! directories (`.git`, ...) are skipped, as Argo CD's repo server does.

use std::path::Path;

use ferry_git::{CheckoutOptions, RepoCache};
use ferry_types::application_set::{GitGenerator, GitPathItem};
use globset::{GlobBuilder, GlobMatcher};
use serde_json::{Value, json};

use super::GeneratorError;
use crate::params::{Params, flatten, sanitize_name};

/// Where the git generator reads repositories.
#[derive(Clone)]
pub struct GitSource {
    pub cache: RepoCache,
    /// Most bytes a checkout may hold.
    pub max_checkout_bytes: Option<u64>,
}

/// `project` is the template's project when it is not templated: its scoped repository
/// credentials apply, as in Argo CD.
pub async fn generate(
    git: &GitGenerator,
    source: &GitSource,
    project: Option<&str>,
    go_template: bool,
) -> Result<Vec<Params>, GeneratorError> {
    let kind = if !git.directories.is_empty() {
        Kind::Directories
    } else if !git.files.is_empty() {
        Kind::Files
    } else {
        return Err(GeneratorError::new(
            "git generator: neither directories nor files are given",
        ));
    };
    let cache = match project {
        Some(project) if !project.is_empty() => source.cache.for_project(project),
        _ => source.cache.clone(),
    };
    let fail = |e: ferry_git::GitError| {
        GeneratorError::new(format!("error generating params from git: {e}"))
    };
    let resolved = cache
        .resolve(&git.repo_url, &git.revision)
        .await
        .map_err(fail)?;
    let options = CheckoutOptions {
        max_bytes: source.max_checkout_bytes,
        ..Default::default()
    };
    let checkout = cache
        .checkout(&git.repo_url, &resolved.sha, &options)
        .await
        .map_err(fail)?;
    let root = checkout.path().to_path_buf();
    let tree = tokio::task::spawn_blocking(move || Tree::read(&root))
        .await
        .map_err(|e| GeneratorError::new(format!("listing the checkout: {e}")))??;
    let mut out = match kind {
        Kind::Directories => directories(git, &tree.dirs, go_template)?,
        Kind::Files => files(git, checkout.path(), &tree.files, go_template)?,
    };
    for params in &mut out {
        super::append_values(&git.values, params, go_template)?;
    }
    Ok(out)
}

enum Kind {
    Directories,
    Files,
}

/// A checkout's directories and regular files, relative and `/`-separated, sorted.
struct Tree {
    dirs: Vec<String>,
    files: Vec<String>,
}

impl Tree {
    fn read(root: &Path) -> Result<Self, GeneratorError> {
        let mut tree = Tree {
            dirs: Vec::new(),
            files: Vec::new(),
        };
        tree.walk(root, "")?;
        tree.dirs.sort();
        tree.files.sort();
        Ok(tree)
    }

    fn walk(&mut self, dir: &Path, prefix: &str) -> Result<(), GeneratorError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| GeneratorError::new(format!("reading {prefix:?}: {e}")))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| GeneratorError::new(format!("reading {prefix:?}: {e}")))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // file_type does not follow symbolic links: a link is neither a dir nor a file.
            let file_type = entry
                .file_type()
                .map_err(|e| GeneratorError::new(format!("reading {prefix}{name}: {e}")))?;
            let path = format!("{prefix}{name}");
            if file_type.is_dir() {
                if name.starts_with('.') {
                    continue;
                }
                self.dirs.push(path.clone());
                self.walk(&entry.path(), &format!("{path}/"))?;
            } else if file_type.is_file() {
                self.files.push(path);
            }
        }
        Ok(())
    }
}

/// A path pattern of the git generator, matched as upstream matches it.
struct PathPattern {
    glob: GlobMatcher,
    /// A files pattern without wildcards: git also matches every file under it.
    directory: Option<String>,
}

impl PathPattern {
    /// Directories: Go's `path.Match` (`*` stops at `/`; `**` is just `*`). Files: a pathspec
    /// of `git ls-files --` (`*` and `?` cross `/`, `**` is just `*`, and a pattern without
    /// wildcards names a file or a directory).
    fn new(pattern: &str, for_files: bool) -> Result<Self, GeneratorError> {
        let mut collapsed = String::with_capacity(pattern.len());
        for c in pattern.chars() {
            if !(c == '*' && collapsed.ends_with('*')) {
                collapsed.push(c);
            }
        }
        let glob = GlobBuilder::new(&collapsed)
            .literal_separator(!for_files)
            .build()
            .map(|g| g.compile_matcher())
            .map_err(|e| GeneratorError::new(format!("invalid path pattern {pattern:?}: {e}")))?;
        let literal = !pattern.contains(['*', '?', '[']);
        let directory = (for_files && literal).then(|| pattern.trim_end_matches('/').to_string());
        Ok(Self { glob, directory })
    }

    fn is_match(&self, path: &str) -> bool {
        self.glob.is_match(path)
            || self.directory.as_deref().is_some_and(|dir| {
                path.strip_prefix(dir)
                    .is_some_and(|rest| rest.starts_with('/'))
            })
    }
}

/// Patterns for the included and the excluded paths.
fn patterns(
    items: &[GitPathItem],
    for_files: bool,
) -> Result<(Vec<PathPattern>, Vec<PathPattern>), GeneratorError> {
    let (mut include, mut exclude) = (Vec::new(), Vec::new());
    for item in items {
        let matcher = PathPattern::new(&item.path, for_files)?;
        if item.exclude {
            exclude.push(matcher);
        } else {
            include.push(matcher);
        }
    }
    Ok((include, exclude))
}

/// Directories match like Go's `path.Match` (`*` stops at `/`).
fn directories(
    git: &GitGenerator,
    dirs: &[String],
    go_template: bool,
) -> Result<Vec<Params>, GeneratorError> {
    let (include, exclude) = patterns(&git.directories, false)?;
    Ok(dirs
        .iter()
        .filter(|d| include.iter().any(|m| m.is_match(d)) && !exclude.iter().any(|m| m.is_match(d)))
        .map(|dir| path_params(&git.path_param_prefix, dir, None, go_template))
        .collect())
}

/// Files match like git pathspecs (`*` crosses `/`), as `git ls-files` matches them for Argo CD.
fn files(
    git: &GitGenerator,
    root: &Path,
    files: &[String],
    go_template: bool,
) -> Result<Vec<Params>, GeneratorError> {
    let (include, exclude) = patterns(&git.files, true)?;
    let mut out = Vec::new();
    for file in files {
        if !include.iter().any(|m| m.is_match(file)) || exclude.iter().any(|m| m.is_match(file)) {
            continue;
        }
        let content = std::fs::read_to_string(root.join(file)).map_err(|e| {
            GeneratorError::new(format!(
                "unable to process file '{file}' from repository '{}': {e}",
                git.repo_url
            ))
        })?;
        let objects = parse_objects(&content).map_err(|e| {
            GeneratorError::new(format!(
                "unable to process file '{file}' from repository '{}': unable to parse file: {e}",
                git.repo_url
            ))
        })?;
        for object in objects {
            let mut params = if go_template {
                object
            } else {
                flatten(&object)
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect()
            };
            let dir = go_dir(file);
            let with_path = path_params(&git.path_param_prefix, &dir, Some(file), go_template);
            params.extend(with_path);
            out.push(params);
        }
    }
    Ok(out)
}

/// A file holds one object or a list of objects.
fn parse_objects(content: &str) -> Result<Vec<Params>, serde_yaml::Error> {
    match serde_yaml::from_str::<Params>(content) {
        Ok(object) => Ok(vec![object]),
        Err(_) => serde_yaml::from_str::<Vec<Params>>(content),
    }
}

/// Go's `path.Dir`: `.` for a file at the top.
fn go_dir(file: &str) -> String {
    match file.rsplit_once('/') {
        Some((dir, _)) if !dir.is_empty() => dir.to_string(),
        Some(_) => "/".to_string(),
        None => ".".to_string(),
    }
}

/// Go's `path.Base`.
fn go_base(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((_, base)) => base,
        None if trimmed.is_empty() => "/",
        None => trimmed,
    }
}

/// `path`, `path.basename`, `path.basenameNormalized`, `path[N]` (fasttemplate) or the `path`
/// map with `segments` (Go templates), under `pathParamPrefix` if set; with `file`, also
/// `filename` and `filenameNormalized`.
fn path_params(prefix: &str, dir: &str, file: Option<&str>, go_template: bool) -> Params {
    let base = go_base(dir);
    let filename = file.map(go_base);
    let mut params = Params::new();
    if go_template {
        let mut path = json!({
            "path": dir,
            "basename": base,
            "basenameNormalized": sanitize_name(base),
            "segments": dir.split('/').collect::<Vec<_>>(),
        });
        if let Some(filename) = filename {
            path["filename"] = filename.into();
            path["filenameNormalized"] = sanitize_name(filename).into();
        }
        if prefix.is_empty() {
            params.insert("path".into(), path);
        } else {
            params.insert(prefix.into(), json!({ "path": path }));
        }
    } else {
        let name = if prefix.is_empty() {
            "path".to_string()
        } else {
            format!("{prefix}.path")
        };
        params.insert(name.clone(), dir.into());
        params.insert(format!("{name}.basename"), base.into());
        params.insert(
            format!("{name}.basenameNormalized"),
            sanitize_name(base).into(),
        );
        if let Some(filename) = filename {
            params.insert(format!("{name}.filename"), filename.into());
            params.insert(
                format!("{name}.filenameNormalized"),
                sanitize_name(filename).into(),
            );
        }
        for (i, segment) in dir.split('/').enumerate() {
            if !segment.is_empty() {
                params.insert(format!("{name}[{i}]"), segment.into());
            }
        }
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_git::Credentials;
    use ferry_testkit::git::GitRepo;

    fn source() -> (GitSource, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let cache = RepoCache::new(dir.path().join("git"), Credentials::new());
        (
            GitSource {
                cache,
                max_checkout_bytes: None,
            },
            dir,
        )
    }

    fn generator(repo: &GitRepo, yaml: &str) -> GitGenerator {
        let mut git: GitGenerator = serde_yaml::from_str(yaml).unwrap();
        git.repo_url = repo.file_url();
        git
    }

    fn repo(files: &[(&str, &str)]) -> GitRepo {
        let repo = GitRepo::new().unwrap();
        for (path, content) in files {
            repo.write(path, content).unwrap();
        }
        repo.commit("fixtures").unwrap();
        repo
    }

    /// Upstream's cluster-addons example: one app per directory, one excluded.
    /// What `git ls-files --full-name -- <pattern>` (files) and Go's `path.Match`
    /// (directories) answer for the same paths.
    #[test]
    fn paths_match_as_git_and_go_match_them() {
        let paths = [
            "apps/x.json",
            "apps/a/y.json",
            "apps/a/b/z.json",
            "cfg/c.json",
            "top.json",
        ];
        let files = |pattern: &str| -> Vec<&str> {
            let p = PathPattern::new(pattern, true).unwrap();
            paths.iter().copied().filter(|f| p.is_match(f)).collect()
        };
        let under_apps = ["apps/x.json", "apps/a/y.json", "apps/a/b/z.json"];
        assert_eq!(files("apps"), under_apps);
        assert_eq!(files("apps/"), under_apps);
        assert_eq!(files("apps/*"), under_apps);
        assert_eq!(files("apps/*.json"), under_apps);
        assert_eq!(files("ap*s"), Vec::<&str>::new());
        assert_eq!(files("apps/?/y.json"), ["apps/a/y.json"]);
        assert_eq!(files("apps/**/z.json"), ["apps/a/b/z.json"]);
        assert_eq!(files("a*/[xy].json"), ["apps/x.json", "apps/a/y.json"]);
        assert_eq!(files("cfg/c.json"), ["cfg/c.json"]);
        assert_eq!(files("*.json").len(), 5);

        let dirs = ["apps", "apps/a", "apps/a/b"];
        let directories = |pattern: &str| -> Vec<&str> {
            let p = PathPattern::new(pattern, false).unwrap();
            dirs.iter().copied().filter(|d| p.is_match(d)).collect()
        };
        assert_eq!(directories("apps/*"), ["apps/a"]);
        assert_eq!(directories("apps/**"), ["apps/a"], "** is * for path.Match");
        assert_eq!(directories("apps"), ["apps"]);
        assert_eq!(directories("*/*/*"), ["apps/a/b"]);
    }

    #[tokio::test]
    async fn directories_with_excludes() {
        let repo = repo(&[
            ("cluster-addons/argo-workflows/kustomization.yaml", "{}"),
            ("cluster-addons/prometheus-operator/Chart.yaml", "{}"),
            ("cluster-addons/exclude-helm-guestbook/Chart.yaml", "{}"),
            ("cluster-addons/.hidden/x.yaml", "{}"),
            ("other/a/x.yaml", "{}"),
        ]);
        let (source, _dir) = source();
        let git = generator(
            &repo,
            "revision: HEAD
directories:
- path: cluster-addons/*
- path: cluster-addons/exclude-helm-guestbook
  exclude: true
",
        );
        let params = generate(&git, &source, None, false).await.unwrap();
        let paths: Vec<_> = params.iter().map(|p| p["path"].as_str().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "cluster-addons/argo-workflows",
                "cluster-addons/prometheus-operator"
            ]
        );
        let first = &params[0];
        assert_eq!(first["path.basename"], "argo-workflows");
        assert_eq!(first["path[0]"], "cluster-addons");
        assert_eq!(first["path[1]"], "argo-workflows");
        assert_eq!(first["path.basenameNormalized"], "argo-workflows");

        let go = generate(&git, &source, None, true).await.unwrap();
        assert_eq!(go[1]["path"]["basename"], "prometheus-operator");
        assert_eq!(
            go[1]["path"]["segments"],
            json!(["cluster-addons", "prometheus-operator"])
        );
    }

    #[tokio::test]
    async fn path_param_prefix_and_values() {
        let repo = repo(&[("apps/web/k.yaml", "{}")]);
        let (source, _dir) = source();
        let git = generator(
            &repo,
            "revision: HEAD
directories: [{path: 'apps/*'}]
pathParamPrefix: app
values: {name: '{{app.path.basename}}-x'}
",
        );
        let flat = generate(&git, &source, None, false).await.unwrap();
        assert_eq!(flat[0]["app.path"], "apps/web");
        assert_eq!(flat[0]["app.path.basename"], "web");
        assert_eq!(flat[0]["values.name"], "web-x");
        let mut go_git = git.clone();
        go_git
            .values
            .insert("name".into(), "{{.app.path.basename}}-y".into());
        let go = generate(&go_git, &source, None, true).await.unwrap();
        assert_eq!(go[0]["app"]["path"]["path"], "apps/web");
        assert_eq!(go[0]["values"]["name"], "web-y");
    }

    /// Upstream's git files example: config.json per cluster, flattened for fasttemplate.
    #[tokio::test]
    async fn files_json_and_yaml() {
        let repo = repo(&[
            (
                "cluster-config/engineering/dev/config.json",
                r#"{"aws_account": "123456", "asset_id": "11223344",
                    "cluster": {"owner": "cluster-admin@company.com", "name": "engineering-dev",
                                "address": "https://1.2.3.4"}}"#,
            ),
            (
                "cluster-config/engineering/prod/config.yaml",
                "- cluster: {name: prod-a}\n- cluster: {name: prod-b}\n",
            ),
            ("cluster-config/engineering/prod/skip.json", "{}"),
        ]);
        let (source, _dir) = source();
        let git = generator(
            &repo,
            "revision: HEAD
files:
- path: cluster-config/**/config.*
- path: cluster-config/**/skip.json
  exclude: true
",
        );
        let params = generate(&git, &source, None, false).await.unwrap();
        assert_eq!(params.len(), 3);
        let dev = &params[0];
        assert_eq!(dev["cluster.name"], "engineering-dev");
        assert_eq!(dev["cluster.address"], "https://1.2.3.4");
        assert_eq!(dev["path"], "cluster-config/engineering/dev");
        assert_eq!(dev["path.basename"], "dev");
        assert_eq!(dev["path.filename"], "config.json");
        assert_eq!(dev["path[2]"], "dev");
        assert_eq!(params[1]["cluster.name"], "prod-a");
        assert_eq!(params[2]["cluster.name"], "prod-b");

        let go = generate(&git, &source, None, true).await.unwrap();
        assert_eq!(go[0]["cluster"]["owner"], "cluster-admin@company.com");
        assert_eq!(go[0]["path"]["filenameNormalized"], "config.json");
    }

    #[tokio::test]
    async fn bad_files_and_revisions_are_errors_naming_them() {
        let repo = repo(&[("c/config.json", "{not json")]);
        let (source, _dir) = source();
        let git = generator(&repo, "revision: HEAD\nfiles: [{path: 'c/*.json'}]");
        let err = generate(&git, &source, None, false)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("c/config.json") && err.contains("unable to parse"),
            "{err}"
        );
        let git = generator(&repo, "revision: nope\nfiles: [{path: 'c/*.json'}]");
        let err = generate(&git, &source, None, false)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope"), "{err}");
    }
}
