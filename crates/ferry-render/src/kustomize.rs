//! Kustomize sources: Application options applied with `kustomize edit` in a private copy, as
//! Argo CD applies them, then `kustomize build`.
//!
//! kustomize runs with its default load restrictor (`LoadRestrictionsRootOnly`: files only from
//! a kustomization's own directory); build options that lift it are refused. Local references
//! are checked to stay inside the checkout before kustomize runs, and `file://` remote
//! targets are refused: kustomize would clone them with git from this machine's disk, where
//! other tenants' checkouts and the Git mirrors live (the tools' git cannot use the local
//! transport either, see [`crate::tool`]).

use std::collections::BTreeMap;
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
pub const KUSTOMIZATION_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

pub(crate) fn find_kustomization(dir: &Path) -> Option<PathBuf> {
    KUSTOMIZATION_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// `kustomize build` settings from `argocd-cm`, as Argo CD passes them with each manifest
/// request: `kustomize.buildOptions` for the default kustomize, and versions registered by
/// `kustomize.path.<version>` (or the older `kustomize.version.<version>`) with their own
/// `kustomize.buildOptions.<version>`, which an Application picks with `kustomize.version`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct KustomizeOptions {
    /// Flags for the default kustomize (whitespace-separated in `argocd-cm`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub build_options: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, KustomizeVersion>,
}

/// A kustomize version registered in `argocd-cm`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct KustomizeVersion {
    pub path: PathBuf,
    /// `kustomize.buildOptions.<version>`; `None`: the default's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_options: Option<Vec<String>>,
}

const BUILD_OPTIONS_KEY: &str = "kustomize.buildOptions";
const VERSION_KEY_PREFIXES: [&str; 2] = ["kustomize.path.", "kustomize.version."];

impl KustomizeOptions {
    /// The kustomize settings of an `argocd-cm`'s data. A version registered twice is an error,
    /// as in Argo CD; build options of a version nobody registered are ignored, as there.
    pub fn from_argocd_cm(data: &BTreeMap<String, String>) -> Result<Self, String> {
        let fields = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        let mut options = Self {
            build_options: data
                .get(BUILD_OPTIONS_KEY)
                .map_or_else(Vec::new, |s| fields(s)),
            versions: BTreeMap::new(),
        };
        for (key, value) in data {
            let Some(version) = VERSION_KEY_PREFIXES
                .iter()
                .find_map(|prefix| key.strip_prefix(prefix))
            else {
                continue;
            };
            if options.versions.contains_key(version) {
                return Err(format!("found duplicate kustomize version: {version}"));
            }
            let build_options = data
                .get(&format!("{BUILD_OPTIONS_KEY}.{version}"))
                .map(|s| fields(s));
            options.versions.insert(
                version.to_string(),
                KustomizeVersion {
                    path: value.trim().into(),
                    build_options,
                },
            );
        }
        Ok(options)
    }

    /// The binary (`None`: the configured default) and build flags for a source asking for
    /// `version` (empty: the default kustomize).
    pub(crate) fn select(&self, version: &str) -> Result<(Option<&Path>, &[String]), ErrorKind> {
        if version.is_empty() {
            return Ok((None, &self.build_options));
        }
        let registered = self.versions.get(version).ok_or_else(|| {
            ErrorKind::Invalid(format!(
                "kustomize version {version} is not registered (argocd-cm kustomize.path.{version})"
            ))
        })?;
        let options = registered
            .build_options
            .as_deref()
            .unwrap_or(&self.build_options);
        Ok((Some(&registered.path), options))
    }
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
    /// Extra `kustomize build` flags from `argocd-cm` (e.g. `--enable-helm`).
    pub build_options: &'a [String],
    /// Whether `file://` remote targets may be built (`ferry render --allow-local-remotes`).
    pub allow_local_remotes: bool,
}

impl Build<'_> {
    pub(crate) async fn run(&self) -> Result<Vec<Value>, ErrorKind> {
        check_build_options(self.build_options)?;
        check_references(&self.ws.repo, self.app_dir, self.allow_local_remotes)?;
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
/// the repository (`../..` past the root, absolute paths) and, unless `allow_local_remotes`,
/// remote targets on this machine (`file://` URLs, which kustomize clones with git). Kustomize
/// itself only restricts files to the kustomization root, not directories of bases and
/// components, so this check runs before any kustomize process reads the tree. Other remote
/// references (URLs) are left to kustomize, whose git cannot read local paths.
pub(crate) fn check_references(
    root: &Path,
    app_dir: &Path,
    allow_local_remotes: bool,
) -> Result<(), ErrorKind> {
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
            if is_local_remote(&entry) {
                if allow_local_remotes {
                    continue;
                }
                return Err(ErrorKind::unsafe_path(
                    &entry,
                    format!(
                        "{shown}: {field} entry is a repository on this machine's disk \
                         (file://); a render may only read the application's own repository"
                    ),
                ));
            }
            if is_remote(&entry) || field == "helmCharts.repo" {
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

/// Refuses `kustomize build` options that lift kustomize's root-only load restrictor: with
/// `LoadRestrictionsNone`, any file a kustomization names (`../../../..`, an absolute path)
/// would be read, other tenants' checkouts included.
fn check_build_options(options: &[String]) -> Result<(), ErrorKind> {
    let mut options = options.iter();
    while let Some(option) = options.next() {
        let (flag, value) = match option.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_string())),
            None => (option.as_str(), None),
        };
        if flag != "--load-restrictor" && flag != "--load_restrictor" {
            continue;
        }
        let value = value
            .or_else(|| options.next().cloned())
            .unwrap_or_default();
        if value != "LoadRestrictionsRootOnly" {
            return Err(ErrorKind::unsafe_path(
                format!("{flag} {value}"),
                "kustomize build option not allowed: kustomize keeps its root-only load \
                 restrictor, so a kustomization reads files only under its own directory",
            ));
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
    for r in doc
        .get("replacements")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(path) = r.get("path").and_then(Value::as_str) {
            out.push(("replacements".into(), path.to_string()));
        }
    }
    if let Some(path) = doc.pointer("/openapi/path").and_then(Value::as_str) {
        out.push(("openapi.path".into(), path.to_string()));
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
        // A chart repository URL, never a path to resolve: only checked for `file://`.
        if let Some(repo) = c.get("repo").and_then(Value::as_str) {
            out.push(("helmCharts.repo".into(), repo.to_string()));
        }
        out.extend(
            strings(c.get("additionalValuesFiles"))
                .into_iter()
                .map(|s| ("helmCharts.additionalValuesFiles".to_string(), s)),
        );
    }
    out
}

/// Remote targets on this machine: `file://` URLs (any case, also behind kustomize's `git::`
/// prefix), which kustomize would clone with git from the local disk.
fn is_local_remote(entry: &str) -> bool {
    let lower = entry.trim().to_ascii_lowercase();
    let url = lower.strip_prefix("git::").unwrap_or(&lower);
    url.starts_with("file:")
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
        check_references(&root, &root.join("app"), false).unwrap();

        write(
            &root,
            "base/kustomization.yaml",
            "resources: [../../outside]\n",
        );
        let err = check_references(&root, &root.join("app"), false).unwrap_err();
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
        let err = check_references(&root, &root.join("app"), false).unwrap_err();
        assert!(
            err.to_string().contains("absolute paths are not allowed"),
            "{err}"
        );
    }

    #[test]
    fn local_remote_targets_are_refused_with_file_and_entry() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("repo");
        write(&root, "base/kustomization.yaml", "resources: [cm.yaml]\n");
        let root = root.canonicalize().unwrap();
        let mirror = "file:///var/cache/ferry/git/mirrors/0123456789abcdef0123456789abcdef.git";
        for (field, yaml) in [
            (
                "resources",
                format!("resources: [../base, '{mirror}//app?ref=main']"),
            ),
            ("bases", format!("bases: ['{mirror}//app']")),
            ("components", format!("components: ['git::{mirror}//c']")),
            (
                "resources",
                "resources: ['FILE:///srv/git/team-b.git//app']".to_string(),
            ),
            (
                "helmCharts.repo",
                "helmCharts: [{name: web, repo: 'file:///srv/charts'}]".to_string(),
            ),
        ] {
            write(&root, "app/kustomization.yaml", &yaml);
            let err = check_references(&root, &root.join("app"), false).unwrap_err();
            let ErrorKind::Unsafe { path, reason } = &err else {
                panic!("{err}")
            };
            assert!(path.to_ascii_lowercase().contains("file:///"), "{err}");
            assert_eq!(
                reason,
                &format!(
                    "app/kustomization.yaml: {field} entry is a repository on this machine's \
                     disk (file://); a render may only read the application's own repository"
                ),
                "{yaml}"
            );
            // `ferry render --allow-local-remotes` lets them through to kustomize.
            check_references(&root, &root.join("app"), true).unwrap();
        }
        // Nested in a local base, too.
        write(&root, "app/kustomization.yaml", "resources: [../base]\n");
        write(
            &root,
            "base/kustomization.yaml",
            &format!("resources: ['{mirror}//app']\n"),
        );
        let err = check_references(&root, &root.join("app"), false).unwrap_err();
        assert!(
            err.to_string()
                .contains("base/kustomization.yaml: resources entry is a repository on"),
            "{err}"
        );
        // Remote targets elsewhere are kustomize's (its git cannot use the local transport).
        write(
            &root,
            "base/kustomization.yaml",
            "resources: ['https://github.com/org/repo//app?ref=v1', 'ssh://git@host/org/r.git']\n",
        );
        check_references(&root, &root.join("app"), false).unwrap();
    }

    #[test]
    fn replacement_and_openapi_files_stay_in_the_repository() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("repo");
        write(
            &root,
            "app/kustomization.yaml",
            "replacements: [{path: r.yaml}]\nopenapi: {path: schema.json}\n",
        );
        let root = root.canonicalize().unwrap();
        check_references(&root, &root.join("app"), false).unwrap();
        write(
            &root,
            "app/kustomization.yaml",
            "replacements: [{path: ../../../etc/r.yaml}]\n",
        );
        let err = check_references(&root, &root.join("app"), false).unwrap_err();
        assert!(
            err.to_string()
                .contains("replacements entry resolves outside the repository"),
            "{err}"
        );
        write(
            &root,
            "app/kustomization.yaml",
            "openapi: {path: /etc/schema.json}\n",
        );
        let err = check_references(&root, &root.join("app"), false).unwrap_err();
        assert!(err.to_string().contains("openapi.path entry"), "{err}");
    }

    #[test]
    fn build_options_keep_the_root_only_load_restrictor() {
        let opts = |o: &[&str]| o.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        check_build_options(&opts(&["--enable-helm"])).unwrap();
        check_build_options(&opts(&["--load-restrictor", "LoadRestrictionsRootOnly"])).unwrap();
        check_build_options(&opts(&["--load-restrictor=LoadRestrictionsRootOnly"])).unwrap();
        for bad in [
            &["--enable-helm", "--load-restrictor", "LoadRestrictionsNone"][..],
            &["--load-restrictor=LoadRestrictionsNone"],
            &["--load_restrictor", "LoadRestrictionsNone"],
            &["--load-restrictor"],
        ] {
            let err = check_build_options(&opts(bad)).unwrap_err();
            assert!(
                err.to_string().contains(
                    "kustomize build option not allowed: kustomize keeps its root-only load restrictor"
                ),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn argocd_cm_build_options_and_versions() {
        let data: BTreeMap<String, String> = [
            (
                "kustomize.buildOptions",
                "--enable-helm  --load-restrictor LoadRestrictionsRootOnly",
            ),
            ("kustomize.path.v5.0.0", "/tools/kustomize-5"),
            ("kustomize.buildOptions.v5.0.0", "--enable-alpha-plugins"),
            ("kustomize.version.v4.5.7", "/tools/kustomize-4"),
            ("kustomize.buildOptions.v9", "--unregistered"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let o = KustomizeOptions::from_argocd_cm(&data).unwrap();
        let (binary, flags) = o.select("").unwrap();
        assert_eq!(binary, None);
        assert_eq!(
            flags,
            [
                "--enable-helm",
                "--load-restrictor",
                "LoadRestrictionsRootOnly"
            ]
        );
        let (binary, flags) = o.select("v5.0.0").unwrap();
        assert_eq!(binary, Some(Path::new("/tools/kustomize-5")));
        assert_eq!(flags, ["--enable-alpha-plugins"]);
        // A version without options of its own gets the default's.
        assert_eq!(o.select("v4.5.7").unwrap().1, o.build_options.as_slice());
        let err = o.select("v9").unwrap_err().to_string();
        assert!(
            err.contains("kustomize version v9 is not registered"),
            "{err}"
        );
        let mut twice = data.clone();
        twice.insert("kustomize.version.v5.0.0".into(), "/elsewhere".into());
        let err = KustomizeOptions::from_argocd_cm(&twice).unwrap_err();
        assert_eq!(err, "found duplicate kustomize version: v5.0.0");
    }
}
