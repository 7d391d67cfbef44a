//! Helm sources: `helm template` on a chart from Git or pulled from a Helm repository / OCI
//! registry (see [`crate::chart`]), with Argo CD's options.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use ferry_types::source::ApplicationSourceHelm;
use serde_json::Value;

use crate::AppContext;
use crate::confine;
use crate::env::BuildEnv;
use crate::error::ErrorKind;
use crate::manifest;
use crate::tool::{Invocation, ToolRunner};
use crate::workspace::Workspace;

/// Everything `helm template` needs for one source.
pub(crate) struct Template<'a> {
    pub runner: &'a ToolRunner,
    pub helm: &'a Path,
    pub ws: &'a Workspace,
    /// Chart directory (inside the workspace).
    pub chart_dir: &'a Path,
    /// Root that value files and file parameters must stay inside (canonical).
    pub root: &'a Path,
    /// `$name` → canonical checkout root of the referenced source.
    pub refs: &'a BTreeMap<String, PathBuf>,
    pub opts: &'a ApplicationSourceHelm,
    pub app: &'a AppContext,
    pub env: &'a BuildEnv,
    /// URL schemes permitted for remote value files (none by default).
    pub value_file_schemes: &'a [String],
    /// Whether `file://` dependencies may lead outside `root` (`ferry render
    /// --allow-local-remotes`).
    pub allow_local_dependencies: bool,
}

impl Template<'_> {
    pub(crate) async fn run(&self) -> Result<Vec<Value>, ErrorKind> {
        let args = self.args()?;
        if needs_dependency_build(self.chart_dir)? {
            // `helm dependency build` copies every `file://` dependency it is given.
            if !self.allow_local_dependencies {
                check_local_dependencies(self.root, self.chart_dir)?;
            }
            self.helm_cmd(
                "helm dependency build",
                vec!["dependency".into(), "build".into(), ".".into()],
            )
            .await?;
        }
        let out = self.helm_cmd("helm template", args).await?;
        manifest::parse_stream(&out, "helm template output")
    }

    async fn helm_cmd(&self, tool: &str, args: Vec<OsString>) -> Result<String, ErrorKind> {
        self.runner
            .run(Invocation {
                tool: tool.into(),
                program: self.helm,
                args,
                cwd: self.chart_dir,
                home: &self.ws.home,
                env: self.env.0.clone(),
            })
            .await
    }

    /// The `helm template` arguments, the way Argo CD builds them.
    fn args(&self) -> Result<Vec<OsString>, ErrorKind> {
        let o = self.opts;
        let mut args: Vec<OsString> = vec!["template".into(), ".".into()];
        let mut push = |flag: &str, value: &str| {
            args.push(flag.into());
            args.push(value.into());
        };
        let release = if o.release_name.is_empty() {
            &self.app.name
        } else {
            &o.release_name
        };
        if !release.is_empty() {
            push("--name-template", release);
        }
        let namespace = if o.namespace.is_empty() {
            &self.app.namespace
        } else {
            &o.namespace
        };
        if !namespace.is_empty() {
            push("--namespace", namespace);
        }
        let kube_version = if o.kube_version.is_empty() {
            &self.app.kube_version
        } else {
            &o.kube_version
        };
        if !kube_version.is_empty() {
            push("--kube-version", kube_version);
        }
        let api_versions = if o.api_versions.is_empty() {
            &self.app.api_versions
        } else {
            &o.api_versions
        };
        for v in api_versions {
            push("--api-versions", v);
        }
        for file in &o.value_files {
            if let Some(path) = self.value_file(file)? {
                push("--values", &path);
            }
        }
        let inline = o
            .inline_values_yaml()
            .map_err(|e| ErrorKind::Invalid(format!("helm.valuesObject: {e}")))?;
        if let Some(yaml) = inline {
            let path = self.ws.scratch("inline-values.yaml");
            std::fs::write(&path, yaml).map_err(|e| ErrorKind::io(path.display(), e))?;
            push("--values", &path.to_string_lossy());
        }
        for p in &o.parameters {
            let flag = if p.force_string {
                "--set-string"
            } else {
                "--set"
            };
            push(
                flag,
                &format!("{}={}", p.name, escape_set_value(&self.env.subst(&p.value))),
            );
        }
        for p in &o.file_parameters {
            let path = self.env.subst(&p.path);
            let resolved = confine::resolve_repo_rooted(
                self.root,
                self.chart_dir,
                &path,
                "helm file parameter",
            )?;
            if !resolved.is_file() {
                return Err(ErrorKind::Invalid(format!(
                    "helm file parameter {}: {path} does not exist",
                    p.name
                )));
            }
            push(
                "--set-file",
                &format!(
                    "{}={}",
                    p.name,
                    escape_set_value(&resolved.to_string_lossy())
                ),
            );
        }
        if o.skip_crds {
            args.push("--skip-crds".into());
        } else {
            args.push("--include-crds".into());
        }
        if o.skip_tests {
            args.push("--skip-tests".into());
        }
        if o.skip_schema_validation {
            args.push("--skip-schema-validation".into());
        }
        Ok(args)
    }

    /// Resolves one `valueFiles` entry; `None` when it is missing and missing files are ignored.
    fn value_file(&self, raw: &str) -> Result<Option<String>, ErrorKind> {
        if let Some((scheme, _)) = raw.split_once("://") {
            if self
                .value_file_schemes
                .iter()
                .any(|s| s.eq_ignore_ascii_case(scheme))
            {
                return Ok(Some(raw.to_string()));
            }
            return Err(ErrorKind::unsafe_path(
                raw,
                format!("value files from {scheme}:// URLs are not allowed"),
            ));
        }
        let (root, base, rel) = match raw.strip_prefix('$') {
            Some(rest) => {
                let (name, rel) = rest.split_once('/').unwrap_or((rest, ""));
                let root = self.refs.get(name).ok_or_else(|| {
                    ErrorKind::Invalid(format!("value file {raw}: no source has `ref: {name}`"))
                })?;
                (root.as_path(), root.as_path(), self.env.subst(rel))
            }
            None => (self.root, self.chart_dir, self.env.subst(raw)),
        };
        let path = confine::resolve_repo_rooted(root, base, &rel, "value file")
            .map_err(|e| rename_unsafe(e, raw))?;
        if !path.is_file() {
            if self.opts.ignore_missing_value_files {
                tracing::debug!(value_file = raw, "ignoring missing value file");
                return Ok(None);
            }
            return Err(ErrorKind::Invalid(format!(
                "value file {raw} does not exist"
            )));
        }
        Ok(Some(path.to_string_lossy().into_owned()))
    }
}

/// Reports the path as the user wrote it (with its `$ref/`), not the part after the ref.
fn rename_unsafe(e: ErrorKind, raw: &str) -> ErrorKind {
    match e {
        ErrorKind::Unsafe { reason, .. } => ErrorKind::unsafe_path(raw, reason),
        other => other,
    }
}

/// Escapes commas so a value reaches Helm as one value; `{a,b}` list syntax is left alone.
fn escape_set_value(v: &str) -> String {
    if v.starts_with('{') && v.ends_with('}') {
        return v.to_string();
    }
    let mut out = String::with_capacity(v.len());
    let mut prev = None;
    for c in v.chars() {
        if c == ',' && prev != Some('\\') {
            out.push('\\');
        }
        out.push(c);
        prev = Some(c);
    }
    out
}

/// Where a chart declares its dependencies: `Chart.yaml` (apiVersion v2) or
/// `requirements.yaml` (apiVersion v1, which Helm 3 still reads).
const DEPENDENCY_FILES: [&str; 2] = ["Chart.yaml", "requirements.yaml"];

/// The lock files, whose dependencies (repositories included) are what `helm dependency
/// build` fetches when they are present.
const LOCK_FILES: [&str; 2] = ["Chart.lock", "requirements.lock"];

/// The dependencies listed in `files` of the chart (`Chart.yaml` must exist, the others may
/// not), with the file each came from.
fn listed_dependencies(
    chart_dir: &Path,
    files: &[&'static str],
) -> Result<Vec<(&'static str, Value)>, ErrorKind> {
    let mut out = Vec::new();
    for &file in files {
        let path = chart_dir.join(file);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && file != "Chart.yaml" => continue,
            Err(e) => return Err(ErrorKind::io(file, e)),
        };
        let doc: Value = serde_yaml::from_str(&text).map_err(|e| ErrorKind::Manifest {
            file: file.into(),
            message: e.to_string(),
        })?;
        out.extend(
            doc.get("dependencies")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|dep| (file, dep.clone())),
        );
    }
    Ok(out)
}

/// True when the chart declares dependencies that `charts/` does not hold (as a directory
/// named after the chart, or a `<name>-<version>.tgz` archive).
fn needs_dependency_build(chart_dir: &Path) -> Result<bool, ErrorKind> {
    let deps = listed_dependencies(chart_dir, &DEPENDENCY_FILES)?;
    let present: Vec<String> = std::fs::read_dir(chart_dir.join("charts"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    Ok(deps.iter().any(|(_, dep)| {
        let name = dep.get("name").and_then(Value::as_str).unwrap_or_default();
        !present
            .iter()
            .any(|p| p == name || (p.starts_with(&format!("{name}-")) && p.ends_with(".tgz")))
    }))
}

/// Refuses `repository: file://...` dependencies that lead outside `root` (the checkout, or the
/// pulled chart): `helm dependency build` would copy another tenant's chart (or any directory
/// of this machine) into the render. `file://../sibling` inside the checkout, as monorepos
/// write it, stays fine. The lock files count too: with one present, helm fetches the
/// dependencies it lists, and its digest (which the repository's author writes) is all that
/// ties them to `Chart.yaml`'s.
fn check_local_dependencies(root: &Path, chart_dir: &Path) -> Result<(), ErrorKind> {
    let files = [DEPENDENCY_FILES, LOCK_FILES].concat();
    for (file, dep) in listed_dependencies(chart_dir, &files)? {
        let repository = dep
            .get("repository")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(path) = repository
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("file://"))
            .map(|_| &repository[7..])
        else {
            continue;
        };
        let name = dep.get("name").and_then(Value::as_str).unwrap_or_default();
        let shown = confine::display_rel(root, &chart_dir.join(file));
        let what = format!("{shown}: dependency {name:?} repository");
        if Path::new(path).is_absolute() {
            return Err(ErrorKind::unsafe_path(
                repository,
                format!(
                    "{what} is a directory on this machine's disk outside the repository; a \
                     render may only read the application's own repository"
                ),
            ));
        }
        confine::resolve(root, chart_dir, path, &what).map_err(|e| rename_unsafe(e, repository))?;
    }
    Ok(())
}

/// `helm version --short`, for the cache key.
pub(crate) async fn version(
    runner: &ToolRunner,
    helm: &Path,
    ws: &Workspace,
) -> Result<String, ErrorKind> {
    let out = runner
        .run(Invocation {
            tool: "helm version".into(),
            program: helm,
            args: vec!["version".into(), "--short".into()],
            cwd: &ws.home,
            home: &ws.home,
            env: Vec::new(),
        })
        .await?;
    Ok(out.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_values_escape_commas_like_argo() {
        assert_eq!(escape_set_value("a,b"), "a\\,b");
        assert_eq!(escape_set_value("a\\,b"), "a\\,b");
        assert_eq!(escape_set_value("{a,b}"), "{a,b}");
        assert_eq!(escape_set_value("plain"), "plain");
    }

    #[test]
    fn dependency_build_needed_only_when_charts_lack_a_dependency() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("Chart.yaml"),
            "apiVersion: v2\nname: a\nversion: 1.0.0\n",
        )
        .unwrap();
        assert!(!needs_dependency_build(d.path()).unwrap());
        std::fs::write(
            d.path().join("Chart.yaml"),
            "apiVersion: v2\nname: a\nversion: 1.0.0\ndependencies:\n- name: common\n  version: 0.1.0\n  repository: file://../common\n",
        )
        .unwrap();
        assert!(needs_dependency_build(d.path()).unwrap());
        std::fs::create_dir_all(d.path().join("charts")).unwrap();
        std::fs::write(d.path().join("charts/common-0.1.0.tgz"), "").unwrap();
        assert!(!needs_dependency_build(d.path()).unwrap());
    }

    #[test]
    fn local_dependencies_must_stay_in_the_checkout() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("repo/charts/web")).unwrap();
        std::fs::create_dir_all(d.path().join("repo/charts/common")).unwrap();
        let root = d.path().join("repo").canonicalize().unwrap();
        let chart = root.join("charts/web");
        let chart_yaml = |deps: &str| {
            std::fs::write(
                chart.join("Chart.yaml"),
                format!("apiVersion: v2\nname: web\nversion: 1.0.0\ndependencies:\n{deps}"),
            )
            .unwrap();
        };
        // A sibling chart in the same checkout, and non-local repositories.
        chart_yaml(
            "- {name: common, version: 0.1.0, repository: 'file://../common'}\n\
             - {name: redis, version: 1.0.0, repository: 'https://charts.example.com'}\n\
             - {name: db, version: 1.0.0, repository: 'oci://registry.example.com/charts'}\n\
             - {name: alias, version: 1.0.0, repository: '@stable'}\n",
        );
        check_local_dependencies(&root, &chart).unwrap();

        for (repository, reason) in [
            (
                "file:///srv/ferry/checkouts/team-b/charts/db",
                "charts/web/Chart.yaml: dependency \"db\" repository is a directory on this \
                 machine's disk outside the repository; a render may only read the \
                 application's own repository",
            ),
            (
                "FILE:///etc",
                "charts/web/Chart.yaml: dependency \"db\" repository is a directory on this \
                 machine's disk outside the repository; a render may only read the \
                 application's own repository",
            ),
            (
                "file://../../../team-b/charts/db",
                "charts/web/Chart.yaml: dependency \"db\" repository resolves outside the \
                 repository",
            ),
        ] {
            chart_yaml(&format!(
                "- {{name: db, version: 1.0.0, repository: '{repository}'}}\n"
            ));
            let err = check_local_dependencies(&root, &chart).unwrap_err();
            assert_eq!(err.to_string(), format!("{repository}: {reason}"));
        }

        // apiVersion v1 charts declare them in requirements.yaml; helm 3 reads that too.
        std::fs::write(
            chart.join("Chart.yaml"),
            "apiVersion: v1\nname: web\nversion: 1.0.0\n",
        )
        .unwrap();
        std::fs::write(
            chart.join("requirements.yaml"),
            "dependencies:\n- {name: db, version: 1.0.0, repository: 'file:///srv/other/db'}\n",
        )
        .unwrap();
        assert!(needs_dependency_build(&chart).unwrap());
        let err = check_local_dependencies(&root, &chart).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "file:///srv/other/db: charts/web/requirements.yaml: dependency \"db\" repository"
            ),
            "{err}"
        );

        // What helm fetches when a lock file is present is the lock file's list.
        std::fs::write(
            chart.join("requirements.yaml"),
            "dependencies:\n- {name: db, version: 1.0.0, repository: 'file://../common'}\n",
        )
        .unwrap();
        check_local_dependencies(&root, &chart).unwrap();
        for lock in ["Chart.lock", "requirements.lock"] {
            std::fs::write(
                chart.join(lock),
                "dependencies:\n- {name: db, version: 1.0.0, repository: 'file:///srv/other/db'}\n\
                 digest: sha256:0000\n",
            )
            .unwrap();
            let err = check_local_dependencies(&root, &chart).unwrap_err();
            assert!(
                err.to_string().starts_with(&format!(
                    "file:///srv/other/db: charts/web/{lock}: dependency \"db\" repository is a \
                     directory on this machine's disk"
                )),
                "{err}"
            );
            std::fs::remove_file(chart.join(lock)).unwrap();
        }
    }
}
