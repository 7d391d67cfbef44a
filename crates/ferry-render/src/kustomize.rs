//! Kustomize sources: Application options applied with `kustomize edit` in a private copy, as
//! Argo CD applies them, then `kustomize build`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use ferry_types::source::ApplicationSourceKustomize;
use serde_json::Value;

use crate::AppContext;
use crate::confine;
use crate::env::BuildEnv;
use crate::error::ErrorKind;
use crate::manifest;
use crate::tool::{Invocation, ToolRunner};
use crate::workspace::Workspace;

/// The file names kustomize accepts, in the order it looks for them.
pub(crate) const KUSTOMIZATION_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

pub(crate) fn find_kustomization(dir: &Path) -> Option<PathBuf> {
    KUSTOMIZATION_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

pub(crate) struct Build<'a> {
    pub runner: &'a ToolRunner,
    pub kustomize: &'a Path,
    pub ws: &'a Workspace,
    /// The source directory inside the workspace copy.
    pub app_dir: &'a Path,
    pub opts: &'a ApplicationSourceKustomize,
    pub app: &'a AppContext,
    pub env: &'a BuildEnv,
    /// Extra `kustomize build` flags from configuration (e.g. `--enable-helm`).
    pub build_options: &'a [String],
}

impl Build<'_> {
    pub(crate) async fn run(&self) -> Result<Vec<Value>, ErrorKind> {
        check_references(&self.ws.repo, self.app_dir)?;
        for edit in self.edits()? {
            self.kustomize_cmd("kustomize edit", edit).await?;
        }
        self.add_patches()?;
        let mut args: Vec<OsString> = vec!["build".into(), self.app_dir.into()];
        args.extend(self.build_options.iter().map(OsString::from));
        if self.build_options.iter().any(|o| o == "--enable-helm") {
            // Helm charts inflated by kustomize see the same cluster facts as Helm sources.
            let o = self.opts;
            let kube_version = if o.kube_version.is_empty() {
                &self.app.kube_version
            } else {
                &o.kube_version
            };
            if !kube_version.is_empty() {
                args.extend(["--helm-kube-version".into(), kube_version.into()]);
            }
            let api_versions = if o.api_versions.is_empty() {
                &self.app.api_versions
            } else {
                &o.api_versions
            };
            for v in api_versions {
                args.extend(["--helm-api-versions".into(), v.into()]);
            }
        }
        let out = self.kustomize_cmd("kustomize build", args).await?;
        manifest::parse_stream(&out, "kustomize build output")
    }

    async fn kustomize_cmd(&self, tool: &str, args: Vec<OsString>) -> Result<String, ErrorKind> {
        self.runner
            .run(Invocation {
                tool: tool.into(),
                program: self.kustomize,
                args,
                cwd: self.app_dir,
                home: &self.ws.home,
                env: self.env.0.clone(),
            })
            .await
    }

    /// The `kustomize edit` argument lists, in Argo CD's order.
    fn edits(&self) -> Result<Vec<Vec<OsString>>, ErrorKind> {
        let o = self.opts;
        let mut edits: Vec<Vec<String>> = Vec::new();
        if !o.name_prefix.is_empty() {
            edits.push(vec![
                "set".into(),
                "nameprefix".into(),
                "--".into(),
                o.name_prefix.clone(),
            ]);
        }
        if !o.name_suffix.is_empty() {
            edits.push(vec![
                "set".into(),
                "namesuffix".into(),
                "--".into(),
                o.name_suffix.clone(),
            ]);
        }
        if !o.images.is_empty() {
            let mut e = vec!["set".to_string(), "image".into()];
            e.extend(o.images.iter().map(|i| self.env.subst(i)));
            edits.push(e);
        }
        if !o.replicas.is_empty() {
            let mut e = vec!["set".to_string(), "replicas".into()];
            for r in &o.replicas {
                let count = r.count().map_err(ErrorKind::Invalid)?;
                e.push(format!("{}={count}", r.name));
            }
            edits.push(e);
        }
        if !o.common_labels.is_empty() {
            let mut e = vec!["add".to_string(), "label".into()];
            if o.force_common_labels {
                e.push("--force".into());
            }
            if o.label_without_selector {
                e.push("--without-selector".into());
            }
            if o.label_include_templates {
                e.push("--include-templates".into());
            }
            e.extend(
                o.common_labels
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", self.env.subst(v))),
            );
            edits.push(e);
        }
        if !o.common_annotations.is_empty() {
            let mut e = vec!["add".to_string(), "annotation".into()];
            if o.force_common_annotations {
                e.push("--force".into());
            }
            e.extend(o.common_annotations.iter().map(|(k, v)| {
                let v = if o.common_annotations_envsubst {
                    self.env.subst(v)
                } else {
                    v.clone()
                };
                format!("{k}:{v}")
            }));
            edits.push(e);
        }
        if !o.namespace.is_empty() {
            edits.push(vec![
                "set".into(),
                "namespace".into(),
                "--".into(),
                o.namespace.clone(),
            ]);
        }
        let mut components = vec!["add".to_string(), "component".into()];
        for c in &o.components {
            let path = confine::resolve(&self.ws.repo, self.app_dir, c, "kustomize component")?;
            if !path.exists() {
                if o.ignore_missing_components {
                    continue;
                }
                return Err(ErrorKind::Invalid(format!(
                    "kustomize component {c} does not exist"
                )));
            }
            components.push(c.clone());
        }
        if components.len() > 2 {
            edits.push(components);
        }
        Ok(edits
            .into_iter()
            .map(|e| e.into_iter().map(OsString::from).collect())
            .map(|mut e: Vec<OsString>| {
                e.insert(0, "edit".into());
                e
            })
            .collect())
    }

    /// Appends `kustomize.patches` to the kustomization's `patches` (there is no edit command
    /// for that; Argo CD edits the file too).
    fn add_patches(&self) -> Result<(), ErrorKind> {
        if self.opts.patches.is_empty() {
            return Ok(());
        }
        let file = find_kustomization(self.app_dir).ok_or_else(|| {
            ErrorKind::Invalid("kustomize.patches: no kustomization file in the source path".into())
        })?;
        let shown = confine::display_rel(&self.ws.repo, &file);
        let text = std::fs::read_to_string(&file).map_err(|e| ErrorKind::io(&shown, e))?;
        let mut doc: serde_yaml::Mapping =
            serde_yaml::from_str(&text).map_err(|e| ErrorKind::Manifest {
                file: shown.clone(),
                message: e.to_string(),
            })?;
        let added = serde_yaml::to_value(&self.opts.patches)
            .map_err(|e| ErrorKind::Invalid(e.to_string()))?;
        let serde_yaml::Value::Sequence(added) = added else {
            unreachable!("a Vec serializes to a sequence")
        };
        match doc.get_mut("patches") {
            Some(serde_yaml::Value::Sequence(existing)) => existing.extend(added),
            Some(_) => {
                return Err(ErrorKind::Manifest {
                    file: shown,
                    message: "`patches` must be a list".into(),
                });
            }
            None => {
                doc.insert("patches".into(), serde_yaml::Value::Sequence(added));
            }
        }
        let text = serde_yaml::to_string(&doc).map_err(|e| ErrorKind::Invalid(e.to_string()))?;
        std::fs::write(&file, text).map_err(|e| ErrorKind::io(&shown, e))
    }
}

/// Fields of a kustomization that name local files or directories.
const PATH_LISTS: [&str; 9] = [
    "resources",
    "bases",
    "components",
    "crds",
    "configurations",
    "generators",
    "transformers",
    "validators",
    "patchesStrategicMerge",
];

/// Walks the kustomizations reachable from `app_dir` and refuses local references that leave
/// the repository (`../..` past the root, absolute paths). Kustomize itself only restricts
/// files to the kustomization root, not directories of bases and components, so this check
/// runs before any kustomize process reads the tree. Remote references (URLs) are left to
/// kustomize.
pub(crate) fn check_references(root: &Path, app_dir: &Path) -> Result<(), ErrorKind> {
    let mut pending = vec![app_dir.to_path_buf()];
    let mut seen = std::collections::HashSet::new();
    while let Some(dir) = pending.pop() {
        if !seen.insert(dir.clone()) {
            continue;
        }
        let Some(file) = find_kustomization(&dir) else {
            continue;
        };
        let shown = confine::display_rel(root, &file);
        let text = std::fs::read_to_string(&file).map_err(|e| ErrorKind::io(&shown, e))?;
        let doc: Value = serde_yaml::from_str(&text).map_err(|e| ErrorKind::Manifest {
            file: shown.clone(),
            message: e.to_string(),
        })?;
        for (field, entry) in local_references(&doc) {
            if is_remote(&entry) {
                continue;
            }
            let path = confine::resolve(root, &dir, &entry, &format!("{shown}: {field} entry"))?;
            if path.is_dir() {
                pending.push(path);
            }
        }
    }
    Ok(())
}

fn local_references(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    for field in PATH_LISTS {
        out.extend(
            strings(doc.get(field))
                .into_iter()
                .map(|s| (field.to_string(), s)),
        );
    }
    for field in ["patches", "patchesJson6902"] {
        for p in doc
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(path) = p.get("path").and_then(Value::as_str) {
                out.push((field.to_string(), path.to_string()));
            }
        }
    }
    for field in ["configMapGenerator", "secretGenerator"] {
        for g in doc
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for f in strings(g.get("files"))
                .into_iter()
                .chain(strings(g.get("envs")))
            {
                // `key=path` names the key; the path follows.
                let path = f.split_once('=').map_or(f.as_str(), |(_, p)| p);
                out.push((field.to_string(), path.to_string()));
            }
            if let Some(env) = g.get("env").and_then(Value::as_str) {
                out.push((field.to_string(), env.to_string()));
            }
        }
    }
    if let Some(home) = doc
        .pointer("/helmGlobals/chartHome")
        .and_then(Value::as_str)
    {
        out.push(("helmGlobals.chartHome".into(), home.to_string()));
    }
    for c in doc
        .get("helmCharts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(v) = c.get("valuesFile").and_then(Value::as_str) {
            out.push(("helmCharts.valuesFile".into(), v.to_string()));
        }
        out.extend(
            strings(c.get("additionalValuesFiles"))
                .into_iter()
                .map(|s| ("helmCharts.additionalValuesFiles".to_string(), s)),
        );
    }
    out
}

/// Remote kustomize targets: URLs and `host/org/repo//path?ref=` git shorthands.
fn is_remote(entry: &str) -> bool {
    entry.contains("://")
        || entry.starts_with("git@")
        || entry.starts_with("github.com/")
        || entry.starts_with("gitlab.com/")
}

/// `kustomize version`, for the cache key.
pub(crate) async fn version(
    runner: &ToolRunner,
    kustomize: &Path,
    ws: &Workspace,
) -> Result<String, ErrorKind> {
    let out = runner
        .run(Invocation {
            tool: "kustomize version".into(),
            program: kustomize,
            args: vec!["version".into()],
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

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn references_inside_the_repo_pass_and_escapes_fail() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("repo");
        write(&root, "base/kustomization.yaml", "resources: [cm.yaml]\n");
        write(&root, "comp/kustomization.yaml", "kind: Component\n");
        write(
            &root,
            "app/kustomization.yaml",
            "resources: [../base, https://example.com/x.yaml]\ncomponents: [../comp]\nconfigMapGenerator:\n- name: c\n  files: [k=conf.txt]\n",
        );
        let root = root.canonicalize().unwrap();
        check_references(&root, &root.join("app")).unwrap();

        write(
            &root,
            "base/kustomization.yaml",
            "resources: [../../outside]\n",
        );
        let err = check_references(&root, &root.join("app")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "../../outside: base/kustomization.yaml: resources entry resolves outside the repository"
        );
        write(&root, "base/kustomization.yaml", "resources: []\n");
        write(
            &root,
            "app/kustomization.yaml",
            "configMapGenerator:\n- name: c\n  files: [/etc/passwd]\n",
        );
        let err = check_references(&root, &root.join("app")).unwrap_err();
        assert!(
            err.to_string().contains("absolute paths are not allowed"),
            "{err}"
        );
    }
}
