//! Config-management plugins in the controller, declared as Argo CD's sidecar plugins declare
//! them (`plugin.yaml` files in the directory `--plugin-config-dir` names): an app naming
//! its plugin gets its env and parameters, apps without a name are discovered by `fileName`
//! or `find.command`, and a plugin that fails leaves the synced resources in place with a
//! ComparisonError that says which app, plugin and why. argocd-cm's `kustomize.buildOptions`
//! (`--enable-helm`) is honoured by the controller as well.

use anyhow::{Context, Result};
use ferry_e2e::{Story, is};
use ferry_types::Application;
use ferry_types::source::SourceType;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DynamicObject, PostParams};
use serde_json::{Value, json};
use tempfile::TempDir;

/// Prints a ConfigMap of what the plugin was given; fails on purpose when the source has a
/// `fail` file.
const ENVDUMP: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: ConfigManagementPlugin
metadata:
  name: envdump
spec:
  version: v1
  init:
    command: [sh, -c, 'if [ -f fail ]; then echo "template broken: $(cat fail)" >&2; exit 3; fi']
  generate:
    command: [sh, -c]
    args:
      - |
        cat <<EOF
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: envdump
        data:
          greeting: "$ARGOCD_ENV_GREETING"
          mode: "$PARAM_MODE"
          second: "$PARAM_TARGETS_1"
          app: "$ARGOCD_APP_NAME"
          namespace: "$ARGOCD_APP_NAMESPACE"
          revision: "$ARGOCD_APP_REVISION"
          path: "$ARGOCD_APP_SOURCE_PATH"
          kube: "$KUBE_VERSION"
          parameters: '$ARGOCD_APP_PARAMETERS'
        EOF
"#;

/// Discovers sources holding a `*.tmpl` file and turns each into a ConfigMap.
const BY_FILE: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: ConfigManagementPlugin
metadata:
  name: by-file
spec:
  generate:
    command: [sh, -c, 'for f in *.tmpl; do printf "%s\n" "---" "apiVersion: v1" "kind: ConfigMap" "metadata: {name: from-${f%.tmpl}}"; done']
  discover:
    fileName: "*.tmpl"
"#;

/// Discovers sources whose `marker` file asks for it, with the plugin's environment.
const BY_COMMAND: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: ConfigManagementPlugin
metadata:
  name: by-command
spec:
  generate:
    command: [sh, -c, 'printf "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: found-by-command}\ndata: {flavour: %s}\n" "$ARGOCD_ENV_FLAVOUR"']
  discover:
    find:
      command: [sh, -c, 'grep -l "use by-command" marker || true']
"#;

/// A story whose controller has the three plugins, and its repository with one directory per
/// app.
async fn story_with_plugins() -> Result<(Story, TempDir)> {
    let mut story = Story::new().await?;
    let plugins = tempfile::tempdir()?;
    let dir = plugins.path();
    std::fs::create_dir_all(dir.join("by-command"))?;
    std::fs::write(dir.join("envdump.yaml"), ENVDUMP)?;
    std::fs::write(dir.join("by-file.yaml"), BY_FILE)?;
    // Argo CD's sidecar layout: <name>/plugin.yaml.
    std::fs::write(dir.join("by-command/plugin.yaml"), BY_COMMAND)?;
    story.set_controller_flags(&["--plugin-config-dir", &dir.display().to_string()]);
    story.repo.write("named/README", "rendered by envdump\n")?;
    story.repo.write("templated/web.tmpl", "anything\n")?;
    story.repo.write("marked/marker", "use by-command\n")?;
    story.repo.commit("plugin sources")?;
    story.start_controller()?;
    Ok((story, plugins))
}

/// Creates an automatically synced (and pruned) app of `path` with `source` fields added.
async fn create_app(story: &Story, name: &str, path: &str, source: Value) -> Result<()> {
    let mut spec_source = json!({"repoURL": story.repo.file_url(), "path": path});
    merge(&mut spec_source, source);
    let app: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": story.namespace()},
        "spec": {
            "project": "default",
            "source": spec_source,
            "destination": {"server": "https://kubernetes.default.svc", "namespace": story.namespace()},
            "syncPolicy": {"automated": {"prune": true}},
        },
    }))?;
    story.apps().create(&PostParams::default(), &app).await?;
    Ok(())
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

async fn config_map(story: &Story, name: &str) -> Result<ConfigMap> {
    story
        .ctx
        .api::<ConfigMap>()
        .get(name)
        .await
        .with_context(|| format!("ConfigMap {name}"))
}

#[tokio::test]
async fn a_named_plugin_renders_with_the_apps_env_and_parameters() -> Result<()> {
    let (story, _plugins) = story_with_plugins().await?;
    let app = story.app_name("envdump");
    create_app(
        &story,
        &app,
        "named",
        json!({"plugin": {
            "name": "envdump-v1",
            "env": [{"name": "GREETING", "value": "hello from $ARGOCD_APP_NAME"}],
            "parameters": [
                {"name": "mode", "string": "fast"},
                {"name": "targets", "array": ["a", "b"]},
            ],
        }}),
    )
    .await?;
    let synced = story
        .wait_app(&app, "Synced and Healthy", is::synced_and_healthy)
        .await?;
    let revision = synced.status.context("status")?.sync.revision;

    let data = config_map(&story, "envdump").await?.data.context("data")?;
    assert_eq!(data["greeting"], format!("hello from {app}"));
    assert_eq!(data["mode"], "fast");
    assert_eq!(data["second"], "b");
    assert_eq!(data["app"], app);
    assert_eq!(data["namespace"], story.namespace());
    assert_eq!(data["revision"], revision);
    assert_eq!(data["path"], "named");
    assert!(data["kube"].starts_with("1."), "{}", data["kube"]);
    let parameters: Value = serde_json::from_str(&data["parameters"])?;
    assert_eq!(
        parameters[1],
        json!({"name": "targets", "array": ["a", "b"]})
    );
    Ok(())
}

#[tokio::test]
async fn plugins_are_discovered_by_file_name_and_by_find_command() -> Result<()> {
    let (story, _plugins) = story_with_plugins().await?;
    let templated = story.app_name("templated");
    let marked = story.app_name("marked");
    // No plugin block at all: discovery decides the source type.
    create_app(&story, &templated, "templated", json!({})).await?;
    // A plugin block without a name: discovery, with the app's env.
    create_app(
        &story,
        &marked,
        "marked",
        json!({"plugin": {"env": [{"name": "FLAVOUR", "value": "mint"}]}}),
    )
    .await?;
    for app in [&templated, &marked] {
        story
            .wait_app(app, "Synced and Healthy", is::synced_and_healthy)
            .await?;
    }
    assert!(config_map(&story, "from-web").await.is_ok());
    let found = config_map(&story, "found-by-command").await?;
    assert_eq!(found.data.context("data")?["flavour"], "mint");
    let source_type = |app: &Application| app.status.as_ref().and_then(|s| s.source_type);
    for app in [&templated, &marked] {
        assert_eq!(
            source_type(&story.app(app).await?),
            Some(SourceType::Plugin)
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_failing_plugin_leaves_the_resources_in_place_and_says_why() -> Result<()> {
    let (story, _plugins) = story_with_plugins().await?;
    let app = story.app_name("failing");
    create_app(
        &story,
        &app,
        "named",
        json!({"plugin": {"name": "envdump-v1"}}),
    )
    .await?;
    story
        .wait_app(&app, "Synced and Healthy", is::synced_and_healthy)
        .await?;

    story.repo.write("named/fail", "missing value\n")?;
    story.repo.commit("break the template")?;
    let message = story.wait_condition(&app, "ComparisonError").await?;
    for part in [
        app.as_str(),
        "plugin envdump-v1 init",
        "template broken: missing value",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
    // Several resyncs later the synced ConfigMap is still there, and still listed.
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    assert!(config_map(&story, "envdump").await.is_ok());
    let status = story.app(&app).await?.status.context("status")?;
    assert!(
        status.resources.iter().any(|r| r.name == "envdump"),
        "{:?}",
        status.resources
    );
    Ok(())
}
