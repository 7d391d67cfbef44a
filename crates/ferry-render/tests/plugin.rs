//! Config-management plugins: named or discovered, run in a private copy with Argo CD's
//! environment, output parsed as manifests.

mod common;

use common::*;
use ferry_render::PluginConfig;
use ferry_testkit::git::GitRepo;

/// A plugin that prints a ConfigMap built from its environment, and proves it ran `init` first
/// and may write into its (private) working directory.
const PLUGIN: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: ConfigManagementPlugin
metadata:
  name: envdump
spec:
  version: v1
  init:
    command: [sh, -c]
    args: ["echo initialized > .init-marker"]
  generate:
    command: [sh, -c]
    args:
      - |
        cat <<EOF
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: $ARGOCD_APP_NAME-$(cat name.txt)
          namespace: $ARGOCD_APP_NAMESPACE
        data:
          init: "$(cat .init-marker)"
          revision: "$ARGOCD_APP_REVISION"
          repo: "$ARGOCD_APP_SOURCE_REPO_URL"
          path: "$ARGOCD_APP_SOURCE_PATH"
          target: "$ARGOCD_APP_SOURCE_TARGET_REVISION"
          kube: "$KUBE_VERSION"
          apis: "$KUBE_API_VERSIONS"
          env: "$ARGOCD_ENV_GREETING"
          param: "$PARAM_MODE"
          listItem: "$PARAM_TARGETS_1"
          home: "$HOME"
          leak: "${CARGO_MANIFEST_DIR:-none}"
        EOF
  discover:
    fileName: "./name.txt"
"#;

#[tokio::test]
async fn named_plugin_gets_argo_environment_and_a_private_copy() {
    let repo = GitRepo::new().unwrap();
    repo.write("cmp/name.txt", "settings").unwrap();
    let sha = repo.commit("cmp").unwrap();
    let h = harness(vec![PluginConfig::from_yaml(PLUGIN).unwrap()]);
    let srcs = sources(&format!(
        r#"
- repoURL: {}
  path: cmp
  targetRevision: main
  plugin:
    name: envdump-v1
    env: [{{name: GREETING, value: "hi-$ARGOCD_APP_NAME"}}]
    parameters:
      - {{name: mode, string: fast}}
      - {{name: targets, array: [a, b]}}
"#,
        repo.file_url()
    ));
    let mut ctx = app("web", "prod");
    ctx.kube_version = "1.34.0".into();
    ctx.api_versions = vec!["v1".into(), "apps/v1".into()];
    // Set for this test process by cargo, but tools get a scrubbed environment.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let rendered = h.renderer.render(&ctx, &srcs).await.unwrap();
    assert_eq!(rendered.objects.len(), 1);
    let cm = &rendered.objects[0];
    assert_eq!(cm["metadata"]["name"], "web-settings");
    assert_eq!(cm["metadata"]["namespace"], "prod");
    let data = &cm["data"];
    assert_eq!(data["init"], "initialized");
    assert_eq!(data["revision"], sha.as_str());
    assert_eq!(data["repo"], repo.file_url().as_str());
    assert_eq!(data["path"], "cmp");
    assert_eq!(data["target"], "main");
    assert_eq!(data["kube"], "1.34.0");
    assert_eq!(data["apis"], "v1,apps/v1");
    assert_eq!(data["env"], "hi-web");
    assert_eq!(data["param"], "fast");
    assert_eq!(data["listItem"], "b");
    assert_eq!(data["leak"], "none");
    assert_ne!(
        data["home"],
        std::env::var("HOME").unwrap_or_default().as_str()
    );
    assert_eq!(
        rendered.sources[0].source_type,
        Some(ferry_types::source::SourceType::Plugin)
    );
}

#[tokio::test]
async fn plugin_is_discovered_and_bad_output_is_an_error() {
    let repo = GitRepo::new().unwrap();
    repo.write("cmp/name.txt", "x").unwrap();
    repo.commit("cmp").unwrap();
    let h = harness(vec![PluginConfig::from_yaml(PLUGIN).unwrap()]);
    let srcs = sources(&format!("- repoURL: {}\n  path: cmp\n", repo.file_url()));
    let rendered = h
        .renderer
        .render(&app("d", "default"), &srcs)
        .await
        .unwrap();
    assert_eq!(rendered.objects[0]["metadata"]["name"], "d-x");

    let broken = PLUGIN.replace(
        "cat <<EOF",
        "echo 'not: [a manifest' ; exit 0\n        cat <<EOF",
    );
    let h = harness(vec![PluginConfig::from_yaml(&broken).unwrap()]);
    let err = h
        .renderer
        .render(&app("d", "default"), &srcs)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("plugin envdump-v1 output"), "{err}");

    let unknown = sources(&format!(
        "- repoURL: {}\n  path: cmp\n  plugin: {{name: nope}}\n",
        repo.file_url()
    ));
    let err = h
        .renderer
        .render(&app("d", "default"), &unknown)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("plugin \"nope\" is not configured"), "{err}");
}

/// A plugin discovered by `find.command`: the command runs in a copy of the source with the
/// plugin's environment, and discovers it when it prints something.
const BY_COMMAND: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: ConfigManagementPlugin
metadata:
  name: by-command
spec:
  generate:
    command: [sh, -c, 'printf "kind: ConfigMap\napiVersion: v1\nmetadata: {name: found-by-command}\n"']
  discover:
    find:
      command: [sh, -c, 'grep -l "render-me" *.txt || true']
"#;

#[tokio::test]
async fn plugin_is_discovered_by_its_find_command_and_named_ones_must_discover() {
    let repo = GitRepo::new().unwrap();
    repo.write("marked/notes.txt", "please render-me\n")
        .unwrap();
    repo.write("plain/notes.txt", "nothing\n").unwrap();
    repo.write(
        "plain/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n",
    )
    .unwrap();
    repo.commit("two dirs").unwrap();
    let h = harness(vec![PluginConfig::from_yaml(BY_COMMAND).unwrap()]);
    let render = |path: &str, plugin: &str| {
        let srcs = sources(&format!(
            "- repoURL: {}\n  path: {path}\n{plugin}",
            repo.file_url()
        ));
        let h = &h;
        async move {
            h.renderer
                .render(&app("d", "default"), &srcs)
                .await
                .map(|r| {
                    r.objects[0]["metadata"]["name"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .map_err(|e| e.to_string())
        }
    };
    assert_eq!(render("marked", "").await.unwrap(), "found-by-command");
    // The command prints nothing here: a plain directory.
    assert_eq!(render("plain", "").await.unwrap(), "plain");
    // Named, the plugin must still discover the source (Argo CD's rule).
    let named = "  plugin: {name: by-command}\n";
    assert_eq!(render("marked", named).await.unwrap(), "found-by-command");
    let err = render("plain", named).await.unwrap_err();
    assert!(
        err.contains("plugin \"by-command\" does not discover"),
        "{err}"
    );
}

/// A plugin announcing parameters: a fixed list and a command whose output depends on the
/// source (and which writes a file, into its private copy only).
const ANNOUNCING: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: ConfigManagementPlugin
metadata:
  name: announcer
spec:
  generate:
    command: [cat, all.yaml]
  discover:
    fileName: "values.txt"
  parameters:
    static:
      - name: replicas
        title: Replicas
        tooltip: How many pods
        required: true
        itemType: number
        string: "1"
      - name: labels
        collectionType: map
        map: {team: web}
    dynamic:
      command: [sh, -c]
      args:
        - |
          touch written-by-dynamic
          printf '[{"name":"%s","collectionType":"array","array":["%s"]}]' "$(cat values.txt)" "$ARGOCD_APP_NAME"
"#;

#[tokio::test]
async fn a_plugin_source_is_inspected_with_the_parameters_its_plugin_announces() {
    let repo = GitRepo::new().unwrap();
    repo.write("cmp/values.txt", "regions").unwrap();
    repo.write("cmp/all.yaml", "").unwrap();
    repo.write("plain/cm.yaml", "kind: ConfigMap\n").unwrap();
    repo.commit("sources").unwrap();
    let h = harness(vec![PluginConfig::from_yaml(ANNOUNCING).unwrap()]);
    let source = |path: &str| sources(&format!("- repoURL: {}\n  path: {path}\n", repo.file_url()));
    let checkout = repo.work_path();

    let details = h
        .renderer
        .inspect_checkout(&app("web", "prod"), &source("cmp")[0], &checkout, "main")
        .await
        .unwrap();
    assert_eq!(details.kind, ferry_types::source::SourceType::Plugin);
    let plugin = details.plugin.expect("a plugin source");
    assert_eq!(plugin.name, "announcer");
    // Dynamic first, static after (static wins for clients that keep the last of a name).
    let announced = serde_json::to_value(&plugin.parameters).unwrap();
    assert_eq!(
        announced,
        serde_json::json!([
            {"name": "regions", "collectionType": "array", "array": ["web"]},
            {"name": "replicas", "title": "Replicas", "tooltip": "How many pods",
             "required": true, "itemType": "number", "string": "1"},
            {"name": "labels", "collectionType": "map", "map": {"team": "web"}},
        ])
    );
    assert!(
        !checkout.join("cmp/written-by-dynamic").exists(),
        "the dynamic command wrote into the checkout"
    );

    let plain = h
        .renderer
        .inspect_checkout(&app("web", "prod"), &source("plain")[0], &checkout, "main")
        .await
        .unwrap();
    assert_eq!(plain.kind, ferry_types::source::SourceType::Directory);
    assert_eq!(plain.plugin, None);

    // Output that is not a list of announcements is an error naming the plugin.
    let broken = ANNOUNCING.replace("printf '[{", "printf '{");
    let h = harness(vec![PluginConfig::from_yaml(&broken).unwrap()]);
    let err = h
        .renderer
        .inspect_checkout(&app("web", "prod"), &source("cmp")[0], &checkout, "main")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("plugin announcer parameters"), "{err}");
}
