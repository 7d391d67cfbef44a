//! Config-management plugins, declared like Argo CD's `ConfigManagementPlugin` (`plugin.yaml`):
//! `init` and `generate` commands run in a private copy of the source directory, with the
//! `ARGOCD_APP_*`, `ARGOCD_ENV_*` and `PARAM_*` environment; `generate`'s stdout is the manifests.

use std::path::Path;

use ferry_types::source::ApplicationSourcePlugin;
use globset::GlobBuilder;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::AppContext;
use crate::env::BuildEnv;
use crate::error::ErrorKind;
use crate::manifest;
use crate::tool::{Invocation, ToolRunner};
use crate::workspace::Workspace;

/// A plugin declaration (`apiVersion: argoproj.io/v1alpha1`, `kind: ConfigManagementPlugin`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginConfig {
    pub metadata: PluginMetadata,
    pub spec: PluginSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginMetadata {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<PluginCommand>,
    pub generate: PluginCommand,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discover: Option<PluginDiscover>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<PluginParameters>,
}

/// The parameters a plugin announces to the UI and API (`GetAppDetails`): a fixed list, and a
/// command run in the source directory that prints more as a JSON list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginParameters {
    #[serde(default, rename = "static", skip_serializing_if = "Vec::is_empty")]
    pub fixed: Vec<ParameterAnnouncement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic: Option<PluginCommand>,
}

/// Argo CD's `ParameterAnnouncement`: a parameter the plugin takes, how to show it and its
/// default (`string`, `array` or `map`, by `collectionType`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterAnnouncement {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tooltip: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub item_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub collection_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub string: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub array: Vec<String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub map: std::collections::BTreeMap<String, String>,
}

/// A command and its arguments (no shell unless the command is one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginCommand {
    pub command: Vec<String>,
    #[serde(default)]
    pub args: Vec<String>,
}

/// When the plugin applies to a source that does not name it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginDiscover {
    /// A glob matched against the files of the source directory.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub find: Option<PluginFind>,
}

/// `find`: a glob (`**` crosses directories), or a command run in the source directory that
/// discovers the source when it prints anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginFind {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub glob: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

/// How a plugin's discover rule decides, as Argo CD's cmp-server tries them: `fileName`, else
/// `find.glob`, else `find.command`.
pub(crate) enum Discovery {
    /// No rule: the plugin is used only by name.
    None,
    /// A glob over the source directory's files, answered without running anything.
    Glob(globset::GlobMatcher),
    /// A command to run in a copy of the source.
    Command(PluginCommand),
}

impl PluginConfig {
    /// Parses a `plugin.yaml`.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        let doc: Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        if doc.get("kind").and_then(Value::as_str) != Some("ConfigManagementPlugin") {
            return Err("expected kind: ConfigManagementPlugin".into());
        }
        let cfg: Self = serde_json::from_value(doc).map_err(|e| e.to_string())?;
        if cfg.metadata.name.is_empty() {
            return Err("metadata.name is empty".into());
        }
        if cfg.spec.generate.command.is_empty() {
            return Err(format!(
                "plugin {}: generate.command is empty",
                cfg.metadata.name
            ));
        }
        Ok(cfg)
    }

    /// The plugins of a directory, in name order: each `*.yaml` / `*.yml` file in it (a
    /// ConfigMap mounted as a volume), and `<dir>/<name>/plugin.yaml` (Argo CD's sidecar
    /// layout). Hidden entries (a mounted ConfigMap's `..data`) are skipped. Errors name the file.
    pub fn load_dir(dir: &Path) -> Result<Vec<Self>, String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                let inner = path.join("plugin.yaml");
                if inner.is_file() {
                    files.push(inner);
                }
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
        files.sort();
        let mut plugins: Vec<Self> = Vec::new();
        for file in files {
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let plugin = Self::from_yaml(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            if plugins.iter().any(|p| p.full_name() == plugin.full_name()) {
                return Err(format!(
                    "{}: a second plugin named {}",
                    file.display(),
                    plugin.full_name()
                ));
            }
            plugins.push(plugin);
        }
        Ok(plugins)
    }

    /// The name Applications use: `<name>-<version>`, or `<name>` without a version.
    pub fn full_name(&self) -> String {
        if self.spec.version.is_empty() {
            self.metadata.name.clone()
        } else {
            format!("{}-{}", self.metadata.name, self.spec.version)
        }
    }

    /// The plugin's discover rule, compiled.
    pub(crate) fn discovery(&self) -> Result<Discovery, ErrorKind> {
        let Some(d) = &self.spec.discover else {
            return Ok(Discovery::None);
        };
        let find = d.find.as_ref();
        let pattern = if d.file_name.is_empty() {
            find.map(|f| f.glob.as_str()).unwrap_or_default()
        } else {
            d.file_name.as_str()
        };
        if pattern.is_empty() {
            return Ok(match find {
                Some(f) if !f.command.is_empty() => Discovery::Command(PluginCommand {
                    command: f.command.clone(),
                    args: f.args.clone(),
                }),
                _ => Discovery::None,
            });
        }
        let pattern = pattern.trim_start_matches("./");
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| {
                ErrorKind::Invalid(format!(
                    "plugin {} discover glob {pattern:?}: {e}",
                    self.full_name()
                ))
            })?
            .compile_matcher();
        Ok(Discovery::Glob(glob))
    }
}

/// True when a file under `app_dir` matches `glob` (relative to `app_dir`).
pub(crate) fn glob_matches(glob: &globset::GlobMatcher, app_dir: &Path) -> bool {
    any_file(app_dir, app_dir, &|rel| glob.is_match(rel))
}

fn any_file(base: &Path, dir: &Path, matches: &dyn Fn(&Path) -> bool) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.filter_map(Result::ok).any(|e| {
        let path = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => e.file_name() != ".git" && any_file(base, &path, matches),
            Ok(_) => path.strip_prefix(base).is_ok_and(matches),
            Err(_) => false,
        }
    })
}

/// The environment a plugin sees besides the scrubbed base, as Argo CD builds it.
pub(crate) fn plugin_env(
    env: &BuildEnv,
    app: &AppContext,
    opts: Option<&ApplicationSourcePlugin>,
) -> Result<Vec<(String, String)>, ErrorKind> {
    let mut out = env.0.clone();
    out.push(("KUBE_VERSION".into(), generic_version(&app.kube_version)));
    out.push(("KUBE_API_VERSIONS".into(), app.api_versions.join(",")));
    let Some(opts) = opts else { return Ok(out) };
    for e in &opts.env {
        out.push((format!("ARGOCD_ENV_{}", e.name), env.subst(&e.value)));
    }
    let params =
        serde_json::to_string(&opts.parameters).map_err(|e| ErrorKind::Invalid(e.to_string()))?;
    out.push(("ARGOCD_APP_PARAMETERS".into(), params));
    for p in &opts.parameters {
        let base = format!("PARAM_{}", escape_param(&p.name));
        if let Some(s) = &p.string {
            out.push((base.clone(), s.clone()));
        }
        for (k, v) in p.map.iter().flatten() {
            out.push((format!("{base}_{}", escape_param(k)), v.clone()));
        }
        for (i, v) in p.array.iter().flatten().enumerate() {
            out.push((format!("{base}_{i}"), v.clone()));
        }
    }
    Ok(out)
}

/// A server version as Argo CD gives it to plugins (`KUBE_VERSION`): Kubernetes' generic
/// parse, numbers only (`v1.34.4+k3s1` is `1.34.4`).
fn generic_version(version: &str) -> String {
    let numbers: Vec<&str> = version
        .trim_start_matches('v')
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .next()
        .unwrap_or_default()
        .split('.')
        .filter(|part| !part.is_empty())
        .collect();
    numbers.join(".")
}

/// Upper case, anything but `A-Z0-9_` replaced by `_`.
fn escape_param(name: &str) -> String {
    name.to_uppercase()
        .chars()
        .map(|c| {
            if c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Runs `init` (when declared) and `generate` in `app_dir` (inside the workspace copy).
pub(crate) async fn run(
    runner: &ToolRunner,
    plugin: &PluginConfig,
    ws: &Workspace,
    app_dir: &Path,
    env: Vec<(String, String)>,
) -> Result<Vec<Value>, ErrorKind> {
    let name = plugin.full_name();
    if let Some(init) = &plugin.spec.init {
        command(
            runner,
            &format!("plugin {name} init"),
            init,
            ws,
            app_dir,
            env.clone(),
        )
        .await?;
    }
    let out = command(
        runner,
        &format!("plugin {name} generate"),
        &plugin.spec.generate,
        ws,
        app_dir,
        env,
    )
    .await?;
    manifest::parse_stream(&out, &format!("plugin {name} output"))
}

/// The parameters `plugin` announces for the source in `app_dir` (inside a workspace copy):
/// what its `parameters.dynamic` command prints (a JSON list), then its `parameters.static`
/// list, which comes later so that it wins where a client takes the last of a name, as in
/// Argo CD.
pub(crate) async fn announcements(
    runner: &ToolRunner,
    plugin: &PluginConfig,
    ws: &Workspace,
    app_dir: &Path,
    env: Vec<(String, String)>,
) -> Result<Vec<ParameterAnnouncement>, ErrorKind> {
    let Some(parameters) = &plugin.spec.parameters else {
        return Ok(Vec::new());
    };
    let mut announced = match &parameters.dynamic {
        Some(dynamic) if !dynamic.command.is_empty() => {
            let tool = format!("plugin {} parameters", plugin.full_name());
            let out = command(runner, &tool, dynamic, ws, app_dir, env).await?;
            serde_json::from_str::<Vec<ParameterAnnouncement>>(&out).map_err(|err| {
                ErrorKind::Invalid(format!(
                    "{tool}: the output is not a JSON list of parameter announcements: {err}"
                ))
            })?
        }
        _ => Vec::new(),
    };
    announced.extend(parameters.fixed.iter().cloned());
    Ok(announced)
}

/// Whether `find.command` run in `app_dir` (inside a workspace copy) discovers the source: it
/// does when it succeeds and prints something. A failing command does not, as in Argo CD.
pub(crate) async fn discovered_by_command(
    runner: &ToolRunner,
    plugin: &PluginConfig,
    find: &PluginCommand,
    ws: &Workspace,
    app_dir: &Path,
    env: Vec<(String, String)>,
) -> bool {
    let tool = format!("plugin {} discover", plugin.full_name());
    match command(runner, &tool, find, ws, app_dir, env).await {
        Ok(out) => !out.trim().is_empty(),
        Err(err) => {
            tracing::warn!("{tool}: {err}; the plugin does not discover this source");
            false
        }
    }
}

async fn command(
    runner: &ToolRunner,
    tool: &str,
    cmd: &PluginCommand,
    ws: &Workspace,
    app_dir: &Path,
    env: Vec<(String, String)>,
) -> Result<String, ErrorKind> {
    let (program, first_args) = cmd
        .command
        .split_first()
        .ok_or_else(|| ErrorKind::Invalid(format!("{tool}: empty command")))?;
    let program = crate::tool::locate(Path::new(program));
    let args = first_args.iter().chain(&cmd.args).map(Into::into).collect();
    runner
        .run(Invocation {
            tool: tool.into(),
            program: &program,
            args,
            cwd: app_dir,
            home: &ws.home,
            env,
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLUGIN: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: ConfigManagementPlugin
metadata:
  name: envsubst
spec:
  version: v1.0
  init:
    command: [sh, -c]
    args: ["echo init > .inited"]
  generate:
    command: [sh, -c]
    args: ["envsubst < template.yaml"]
  discover:
    fileName: "./template.yaml"
"#;

    #[test]
    fn parses_argo_plugin_yaml() {
        let p = PluginConfig::from_yaml(PLUGIN).unwrap();
        assert_eq!(p.full_name(), "envsubst-v1.0");
        assert_eq!(p.spec.generate.args, ["envsubst < template.yaml"]);
        let err = PluginConfig::from_yaml("kind: Other\n").unwrap_err();
        assert!(err.contains("ConfigManagementPlugin"));
    }

    #[test]
    fn discovers_by_file_name_glob() {
        let p = PluginConfig::from_yaml(PLUGIN).unwrap();
        let Discovery::Glob(glob) = p.discovery().unwrap() else {
            panic!("fileName is a glob");
        };
        let d = tempfile::tempdir().unwrap();
        assert!(!glob_matches(&glob, d.path()));
        std::fs::write(d.path().join("template.yaml"), "").unwrap();
        assert!(glob_matches(&glob, d.path()));
    }

    #[test]
    fn find_command_and_no_rule() {
        let by_command = PLUGIN.replace(
            "fileName: \"./template.yaml\"",
            "find:\n      command: [sh, -c]\n      args: [ls]",
        );
        let p = PluginConfig::from_yaml(&by_command).unwrap();
        let Discovery::Command(find) = p.discovery().unwrap() else {
            panic!("find.command");
        };
        assert_eq!(
            (find.command, find.args),
            (vec!["sh".into(), "-c".into()], vec!["ls".into()])
        );
        let bare = PLUGIN.replace("  discover:\n    fileName: \"./template.yaml\"\n", "");
        let p = PluginConfig::from_yaml(&bare).unwrap();
        assert!(matches!(p.discovery().unwrap(), Discovery::None));
    }

    #[test]
    fn a_directory_of_plugins_as_a_mounted_config_map_or_sidecar_layout() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("envsubst.yaml"), PLUGIN).unwrap();
        std::fs::create_dir_all(d.path().join("other")).unwrap();
        std::fs::write(
            d.path().join("other/plugin.yaml"),
            PLUGIN.replace("name: envsubst", "name: other"),
        )
        .unwrap();
        std::fs::create_dir_all(d.path().join("..data")).unwrap();
        std::fs::write(d.path().join("..data/x.yaml"), "not a plugin").unwrap();
        std::fs::write(d.path().join("README"), "ignored").unwrap();
        let names: Vec<String> = PluginConfig::load_dir(d.path())
            .unwrap()
            .iter()
            .map(PluginConfig::full_name)
            .collect();
        assert_eq!(names, ["envsubst-v1.0", "other-v1.0"]);
        std::fs::write(d.path().join("twice.yaml"), PLUGIN).unwrap();
        let err = PluginConfig::load_dir(d.path()).unwrap_err();
        assert!(
            err.contains("twice.yaml: a second plugin named envsubst-v1.0"),
            "{err}"
        );
        std::fs::write(
            d.path().join("twice.yaml"),
            "kind: ConfigManagementPlugin\n",
        )
        .unwrap();
        let err = PluginConfig::load_dir(d.path()).unwrap_err();
        assert!(err.contains("twice.yaml"), "{err}");
    }

    #[test]
    fn environment_follows_argo_names() {
        let opts: ApplicationSourcePlugin = serde_yaml::from_str(
            "env: [{name: FOO, value: '$ARGOCD_APP_NAME-x'}]\nparameters:\n- {name: mode, string: fast}\n- {name: my-map, map: {a.b: '1'}}\n- {name: list, array: [x, y]}\n",
        )
        .unwrap();
        let app = AppContext {
            name: "web".into(),
            kube_version: "1.34.0".into(),
            api_versions: vec!["v1".into(), "apps/v1".into()],
            ..Default::default()
        };
        let env = BuildEnv(vec![("ARGOCD_APP_NAME".into(), "web".into())]);
        let vars = plugin_env(&env, &app, Some(&opts)).unwrap();
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("ARGOCD_ENV_FOO"), Some("web-x"));
        assert_eq!(get("PARAM_MODE"), Some("fast"));
        assert_eq!(get("PARAM_MY_MAP_A_B"), Some("1"));
        assert_eq!(get("PARAM_LIST_1"), Some("y"));
        assert_eq!(get("KUBE_API_VERSIONS"), Some("v1,apps/v1"));
        assert_eq!(get("KUBE_VERSION"), Some("1.34.0"));
        assert_eq!(generic_version("v1.34.4+k3s1"), "1.34.4");
        assert_eq!(generic_version(""), "");
        assert!(get("ARGOCD_APP_PARAMETERS").unwrap().contains("\"my-map\""));
    }
}
