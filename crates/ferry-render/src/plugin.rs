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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginFind {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub glob: String,
}

impl PluginConfig {
    /// Parses a `plugin.yaml`.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        let doc: Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        if doc.get("kind").and_then(Value::as_str) != Some("ConfigManagementPlugin") {
            return Err("expected kind: ConfigManagementPlugin".into());
        }
        let cfg: Self = serde_json::from_value(doc).map_err(|e| e.to_string())?;
        if cfg.spec.generate.command.is_empty() {
            return Err(format!(
                "plugin {}: generate.command is empty",
                cfg.metadata.name
            ));
        }
        Ok(cfg)
    }

    /// The name Applications use: `<name>-<version>`, or `<name>` without a version.
    pub fn full_name(&self) -> String {
        if self.spec.version.is_empty() {
            self.metadata.name.clone()
        } else {
            format!("{}-{}", self.metadata.name, self.spec.version)
        }
    }

    /// True when the plugin's discover rule matches a file of `app_dir`.
    pub(crate) fn discovers(&self, app_dir: &Path) -> Result<bool, ErrorKind> {
        let Some(d) = &self.spec.discover else {
            return Ok(false);
        };
        let pattern = if d.file_name.is_empty() {
            d.find.as_ref().map(|f| f.glob.as_str()).unwrap_or_default()
        } else {
            d.file_name.as_str()
        };
        if pattern.is_empty() {
            return Ok(false);
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
        Ok(any_file(app_dir, app_dir, &|rel| glob.is_match(rel)))
    }
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
    out.push(("KUBE_VERSION".into(), app.kube_version.clone()));
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
        let d = tempfile::tempdir().unwrap();
        assert!(!p.discovers(d.path()).unwrap());
        std::fs::write(d.path().join("template.yaml"), "").unwrap();
        assert!(p.discovers(d.path()).unwrap());
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
        assert!(get("ARGOCD_APP_PARAMETERS").unwrap().contains("\"my-map\""));
    }
}
