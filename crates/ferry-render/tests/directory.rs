//! Directory sources through Git: nested directories with recurse/include/exclude, multi-doc
//! files and Lists; Jsonnet with TLAs, external variables and libraries; out-of-repo symlinks.

mod common;

use common::*;
use ferry_testkit::git::GitRepo;
use serde_json::json;

fn cm(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n")
}

fn repo() -> GitRepo {
    let repo = GitRepo::new().unwrap();
    repo.write(
        "app/10-multi.yaml",
        format!("{}---\n---\n{}", cm("multi-1"), cm("multi-2")),
    )
    .unwrap();
    repo.write(
        "app/20-list.yml",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: list-1}\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: list-2}\n",
    )
    .unwrap();
    repo.write(
        "app/30-one.json",
        r#"{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "json-sa"}}"#,
    )
    .unwrap();
    repo.write("app/values.yaml", "replicas: 2\n").unwrap();
    repo.write("app/notes.txt", "apiVersion: v1\nkind: ConfigMap\n")
        .unwrap();
    repo.write("app/nested/a.yaml", cm("nested-a")).unwrap();
    repo.write("app/nested/deeper/b.yaml", cm("deeper-b"))
        .unwrap();
    repo.write("app/nested/deeper/skip-me.yaml", cm("skipped"))
        .unwrap();
    repo.write(
        "app/tests/fixture.json",
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fixture"}}"#,
    )
    .unwrap();
    repo.commit("dir").unwrap();
    repo
}

#[tokio::test]
async fn plain_directory_renders_top_level_files_in_order() {
    let repo = repo();
    let h = harness(vec![]);
    let srcs = sources(&format!("- repoURL: {}\n  path: app\n", repo.file_url()));
    let rendered = h
        .renderer
        .render(&app("a", "default"), &srcs)
        .await
        .unwrap();
    assert_eq!(
        names(&rendered.objects),
        [
            "ConfigMap/multi-1",
            "ConfigMap/multi-2",
            "Secret/list-1",
            "Secret/list-2",
            "ServiceAccount/json-sa"
        ]
    );
    assert_eq!(
        rendered.sources[0].source_type,
        Some(ferry_types::source::SourceType::Directory)
    );
}

#[tokio::test]
async fn recurse_include_exclude() {
    let repo = repo();
    let h = harness(vec![]);
    let srcs = sources(&format!(
        "- repoURL: {}\n  path: app\n  directory:\n    recurse: true\n    include: '{{*.yaml,*.json}}'\n    exclude: '{{tests/*,*/skip-*}}'\n",
        repo.file_url()
    ));
    let rendered = h
        .renderer
        .render(&app("a", "default"), &srcs)
        .await
        .unwrap();
    assert_eq!(
        names(&rendered.objects),
        [
            "ConfigMap/multi-1",
            "ConfigMap/multi-2",
            "ServiceAccount/json-sa",
            "ConfigMap/nested-a",
            "ConfigMap/deeper-b",
        ]
    );
}

#[tokio::test]
async fn jsonnet_with_tlas_ext_vars_and_libs() {
    let repo = GitRepo::new().unwrap();
    repo.write(
        "vendor/kube.libsonnet",
        "{ deployment(name, replicas):: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: name }, spec: { replicas: replicas } } }",
    )
    .unwrap();
    repo.write(
        "jsonnet/lib/naming.libsonnet",
        "{ full(env, name):: env + '-' + name }",
    )
    .unwrap();
    repo.write(
        "jsonnet/main.jsonnet",
        "local kube = import 'kube.libsonnet';\n\
         local naming = import 'lib/naming.libsonnet';\n\
         function(env, replicas=1, debug=false)\n\
         [\n\
           kube.deployment(naming.full(env, 'web'), replicas * std.extVar('scale')),\n\
           { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: naming.full(env, 'settings') },\n\
             data: { region: std.extVar('region'), debug: std.toString(debug), revision: std.extVar('rev'), features: std.join(',', std.extVar('features')) } },\n\
         ]\n",
    )
    .unwrap();
    repo.write("jsonnet/list.jsonnet", "{ apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ns-' + std.extVar('region') } }] }").unwrap();
    let sha = repo.commit("jsonnet").unwrap();
    let h = harness(vec![]);
    let srcs = sources(&format!(
        r#"
- repoURL: {}
  path: jsonnet
  directory:
    jsonnet:
      tlas:
        - {{name: env, value: prod}}
        - {{name: replicas, value: "2 + 1", code: true}}
        - {{name: debug, value: "true", code: true}}
      extVars:
        - {{name: region, value: eu-west}}
        - {{name: scale, value: "10", code: true}}
        - {{name: rev, value: "$ARGOCD_APP_REVISION_SHORT"}}
        - {{name: features, value: "['a', 'b']", code: true}}
      libs: [vendor]
"#,
        repo.file_url()
    ));
    let rendered = h
        .renderer
        .render(&app("a", "default"), &srcs)
        .await
        .unwrap();
    assert_eq!(
        rendered.objects,
        vec![
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns-eu-west"}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "prod-web"}, "spec": {"replicas": 30}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "prod-settings"},
                   "data": {"region": "eu-west", "debug": "true", "revision": &sha[..7], "features": "a,b"}}),
        ]
    );
}

#[tokio::test]
async fn jsonnet_import_outside_the_repository_is_rejected() {
    let repo = GitRepo::new().unwrap();
    repo.write(
        "j/leak.jsonnet",
        "importstr '../../../../../../etc/hostname'",
    )
    .unwrap();
    repo.commit("leak").unwrap();
    let h = harness(vec![]);
    let srcs = sources(&format!("- repoURL: {}\n  path: j\n", repo.file_url()));
    let err = h
        .renderer
        .render(&app("a", "default"), &srcs)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("j/leak.jsonnet: jsonnet:"), "{err}");
    assert!(err.contains("resolves outside the repository"), "{err}");
}

#[tokio::test]
async fn symlink_escaping_the_repository_is_rejected() {
    let repo = repo();
    repo.symlink("app/host.yaml", "/etc/hostname").unwrap();
    repo.commit("escape").unwrap();
    let h = harness(vec![]);
    let srcs = sources(&format!("- repoURL: {}\n  path: app\n", repo.file_url()));
    let err = h
        .renderer
        .render(&app("a", "default"), &srcs)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("app/host.yaml"), "{err}");
    assert!(err.contains("symlink") || err.contains("unsafe"), "{err}");
}

#[tokio::test]
async fn broken_manifest_fails_the_whole_render() {
    let repo = repo();
    repo.write(
        "app/40-bad.yaml",
        format!("{}---\nmetadata: {{name: no-kind}}\n", cm("ok")),
    )
    .unwrap();
    repo.commit("bad").unwrap();
    let h = harness(vec![]);
    let srcs = sources(&format!("- repoURL: {}\n  path: app\n", repo.file_url()));
    let err = h
        .renderer
        .render(&app("a", "default"), &srcs)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("app/40-bad.yaml: document 2: object has no `apiVersion`"),
        "{err}"
    );
}
