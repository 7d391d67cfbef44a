//! Helm sources against the real `helm` binary: a chart with a dependency and values from
//! another source (`$values`), compared with `helm template` run by hand; and the path checks.

mod common;

use common::*;
use ferry_testkit::chart_repo::{ChartRepo, ChartRepoOptions};
use ferry_testkit::git::GitRepo;

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  namespace: {{ .Release.Namespace }}
  labels:
    env: {{ .Values.env }}
    {{- toYaml .Values.labels | nindent 4 }}
  annotations:
    note: {{ .Values.note | quote }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
"#;

const CONFIGMAP: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  config.json: {{ .Values.config | quote }}
  tagType: {{ kindOf .Values.image.tag }}
"#;

fn apps_repo() -> GitRepo {
    let repo = GitRepo::new().unwrap();
    repo.write(
        "charts/common/Chart.yaml",
        "apiVersion: v2\nname: common\nversion: 0.1.0\n",
    )
    .unwrap();
    repo.write("charts/common/values.yaml", "shared: from-common\n")
        .unwrap();
    repo.write(
        "charts/common/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-common\ndata:\n  shared: {{ .Values.shared | quote }}\n",
    )
    .unwrap();
    repo.write(
        "charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 1.0.0\ndependencies:\n  - name: common\n    version: 0.1.0\n    repository: file://../common\n",
    )
    .unwrap();
    repo.write(
        "charts/web/values.yaml",
        "replicaCount: 1\nimage: {repository: nginx, tag: latest}\nenv: dev\nnote: none\nlabels: {managed: ferry}\nconfig: \"\"\ncommon: {shared: from-web}\n",
    )
    .unwrap();
    repo.write(
        "charts/web/values-base.yaml",
        "env: base\nlabels: {tier: web}\n",
    )
    .unwrap();
    repo.write("charts/web/templates/deployment.yaml", DEPLOYMENT)
        .unwrap();
    repo.write("charts/web/templates/configmap.yaml", CONFIGMAP)
        .unwrap();
    repo.write(
        "charts/web/templates/tests/test.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}-test\n  annotations: {helm.sh/hook: test}\nspec:\n  containers: [{name: t, image: busybox}]\n",
    )
    .unwrap();
    repo.write(
        "charts/web/crds/widget.yaml",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  names: {kind: Widget, plural: widgets}\n  scope: Namespaced\n  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]\n",
    )
    .unwrap();
    repo.write("charts/web/files/config.json", "{\"feature\": true}\n")
        .unwrap();
    repo.commit("charts").unwrap();
    repo
}

fn config_repo() -> GitRepo {
    let repo = GitRepo::new().unwrap();
    repo.write(
        "envs/prod/values.yaml",
        "env: prod\nreplicaCount: 3\nnote: \"a,b\"\n",
    )
    .unwrap();
    repo.commit("prod values").unwrap();
    repo
}

#[tokio::test]
async fn chart_with_dependency_and_values_from_another_source_matches_helm() {
    let (apps, config) = (apps_repo(), config_repo());
    let h = harness(vec![]);
    let srcs = sources(&format!(
        r#"
- repoURL: {apps}
  path: charts/web
  targetRevision: main
  helm:
    releaseName: shop
    valueFiles: [values-base.yaml, $values/envs/prod/values.yaml, missing.yaml]
    ignoreMissingValueFiles: true
    parameters:
      - {{name: replicaCount, value: "5"}}
      - {{name: image.tag, value: "2.0", forceString: true}}
      - {{name: note, value: "x,y"}}
    fileParameters: [{{name: config, path: files/config.json}}]
    valuesObject: {{labels: {{team: shop}}}}
- repoURL: {config}
  targetRevision: main
  ref: values
"#,
        apps = apps.file_url(),
        config = config.file_url()
    ));
    let rendered = h
        .renderer
        .render(&app("shop-app", "prod"), &srcs)
        .await
        .unwrap();

    // The same chart through helm by hand.
    let scratch = tempfile::tempdir().unwrap();
    copy_tree(&apps.work_path(), scratch.path());
    let chart = scratch.path().join("charts/web");
    let helm = tool("helm");
    run(&helm, &["dependency", "build", "."], &chart);
    std::fs::write(
        scratch.path().join("inline.yaml"),
        "labels:\n  team: shop\n",
    )
    .unwrap();
    let prod_values = config.work_path().join("envs/prod/values.yaml");
    let inline = scratch.path().join("inline.yaml");
    let expected = objects(&run(
        &helm,
        &[
            "template",
            ".",
            "--name-template",
            "shop",
            "--namespace",
            "prod",
            "--values",
            "values-base.yaml",
            "--values",
            prod_values.to_str().unwrap(),
            "--values",
            inline.to_str().unwrap(),
            "--set",
            "replicaCount=5",
            "--set-string",
            "image.tag=2.0",
            "--set",
            "note=x\\,y",
            "--set-file",
            "config=files/config.json",
            "--include-crds",
        ],
        &chart,
    ));
    assert_eq!(rendered.objects, expected);

    // And it is the non-trivial result we think it is.
    assert_eq!(
        names(&rendered.objects),
        [
            "CustomResourceDefinition/widgets.example.com",
            "ConfigMap/shop-common",
            "ConfigMap/shop-config",
            "Deployment/shop-web",
            "Pod/shop-test",
        ]
    );
    let deploy = &rendered.objects[3];
    assert_eq!(deploy["spec"]["replicas"], 5);
    assert_eq!(deploy["metadata"]["namespace"], "prod");
    assert_eq!(deploy["metadata"]["labels"]["env"], "prod");
    assert_eq!(deploy["metadata"]["labels"]["team"], "shop");
    assert_eq!(deploy["metadata"]["labels"]["tier"], "web");
    assert_eq!(deploy["metadata"]["annotations"]["note"], "x,y");
    assert_eq!(rendered.objects[2]["data"]["tagType"], "string");
    assert_eq!(
        rendered.objects[2]["data"]["config.json"],
        "{\"feature\": true}\n"
    );
    assert_eq!(rendered.objects[1]["data"]["shared"], "from-web");

    assert_eq!(rendered.sources.len(), 2);
    assert_eq!(rendered.sources[0].revision, apps.head().unwrap());
    assert_eq!(rendered.sources[1].revision, config.head().unwrap());
    assert_eq!(rendered.sources[1].source_type, None);
}

#[tokio::test]
async fn skip_crds_and_skip_tests_leave_them_out() {
    let apps = apps_repo();
    let h = harness(vec![]);
    let srcs = sources(&format!(
        "- repoURL: {}\n  path: charts/web\n  helm: {{skipCrds: true, skipTests: true}}\n",
        apps.file_url()
    ));
    let rendered = h
        .renderer
        .render(&app("web", "default"), &srcs)
        .await
        .unwrap();
    assert_eq!(
        names(&rendered.objects),
        [
            "ConfigMap/web-common",
            "ConfigMap/web-config",
            "Deployment/web-web"
        ]
    );
}

async fn render_error(repo: &GitRepo, yaml_tail: &str) -> String {
    let h = harness(vec![]);
    let srcs = sources(&format!("- repoURL: {}\n{yaml_tail}", repo.file_url()));
    h.renderer
        .render(&app("web", "default"), &srcs)
        .await
        .unwrap_err()
        .to_string()
}

#[tokio::test]
async fn paths_leaving_the_repository_are_rejected() {
    let apps = apps_repo();
    let err = render_error(&apps, "  path: ../outside\n").await;
    assert!(
        err.contains("../outside: source path resolves outside the repository"),
        "{err}"
    );

    let err = render_error(
        &apps,
        "  path: charts/web\n  helm:\n    valueFiles: [../../../etc/passwd]\n",
    )
    .await;
    assert!(
        err.contains("../../../etc/passwd: value file resolves outside the repository"),
        "{err}"
    );

    let err = render_error(
        &apps,
        "  path: charts/web\n  helm:\n    valueFiles: [/etc/passwd]\n",
    )
    .await;
    // A leading slash is the repository root (as in Argo CD), so the host's file stays unread.
    assert!(
        err.contains("value file /etc/passwd does not exist"),
        "{err}"
    );

    let err = render_error(&apps, "  path: charts/web\n  helm:\n    fileParameters: [{name: x, path: ../../../../etc/hostname}]\n").await;
    assert!(
        err.contains("helm file parameter resolves outside the repository"),
        "{err}"
    );

    let err = render_error(
        &apps,
        "  path: charts/web\n  helm:\n    valueFiles: [https://example.com/values.yaml]\n",
    )
    .await;
    assert!(
        err.contains("value files from https:// URLs are not allowed"),
        "{err}"
    );
    // Errors name the source.
    assert!(
        err.contains(&format!("{} path charts/web", apps.file_url())),
        "{err}"
    );
}

#[tokio::test]
async fn value_file_in_another_source_cannot_escape_it() {
    let (apps, config) = (apps_repo(), config_repo());
    let h = harness(vec![]);
    let srcs = sources(&format!(
        "- repoURL: {}\n  path: charts/web\n  helm:\n    valueFiles: [$values/../../../../etc/passwd]\n- repoURL: {}\n  ref: values\n",
        apps.file_url(),
        config.file_url()
    ));
    let err = h
        .renderer
        .render(&app("web", "default"), &srcs)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("$values/../../../../etc/passwd: value file resolves outside the repository"),
        "{err}"
    );

    let srcs = sources(&format!(
        "- repoURL: {}\n  path: charts/web\n  helm:\n    valueFiles: [$nope/values.yaml]\n",
        apps.file_url()
    ));
    let err = h
        .renderer
        .render(&app("web", "default"), &srcs)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no source has `ref: nope`"), "{err}");
}

#[tokio::test]
async fn symlinked_value_file_pointing_outside_is_rejected() {
    let apps = apps_repo();
    apps.symlink("charts/web/leak.yaml", "/etc/passwd").unwrap();
    apps.commit("leak").unwrap();
    let err = render_error(
        &apps,
        "  path: charts/web\n  helm:\n    valueFiles: [leak.yaml]\n",
    )
    .await;
    // Either the checkout or the renderer refuses it; never does helm read /etc/passwd.
    assert!(err.contains("symlink") || err.contains("unsafe"), "{err}");
    assert!(err.contains("leak.yaml"), "{err}");
}

#[tokio::test]
async fn tool_failure_is_reported_with_stderr() {
    let apps = apps_repo();
    apps.write(
        "charts/web/templates/broken.yaml",
        "{{ .Values.nope.deeper }}\n",
    )
    .unwrap();
    apps.commit("broken").unwrap();
    let err = render_error(&apps, "  path: charts/web\n").await;
    assert!(err.contains("helm template failed"), "{err}");
    assert!(
        err.contains("nil pointer") || err.contains("deeper"),
        "{err}"
    );
}

#[tokio::test]
async fn chart_from_a_helm_repository_matches_helm_and_is_cached_by_version() {
    let helm = tool("helm");
    let src = tempfile::tempdir().unwrap();
    let chart = src.path().join("demo");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: demo\nversion: 0.3.1\n",
    )
    .unwrap();
    std::fs::write(chart.join("values.yaml"), "size: small\n").unwrap();
    std::fs::write(chart.join("values-big.yaml"), "size: big\n").unwrap();
    std::fs::write(
        chart.join("templates/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-demo\ndata:\n  size: {{ .Values.size }}\n  chart: {{ .Chart.Version }}\n",
    )
    .unwrap();
    let repo = ChartRepo::start(ChartRepoOptions::default()).unwrap();
    repo.add_chart(&chart).unwrap();
    let url = repo.url();

    let h = harness(vec![]);
    let srcs = sources(&format!(
        "- repoURL: {url}\n  chart: demo\n  targetRevision: 0.3.1\n  helm:\n    valueFiles: [values-big.yaml]\n    parameters: [{{name: extra, value: x}}]\n"
    ));
    let rendered = h.renderer.render(&app("rel", "ns"), &srcs).await.unwrap();
    let expected = objects(&run(
        &helm,
        &[
            "template",
            ".",
            "--name-template",
            "rel",
            "--namespace",
            "ns",
            "--values",
            "values-big.yaml",
            "--set",
            "extra=x",
            "--include-crds",
        ],
        &chart,
    ));
    assert_eq!(rendered.objects, expected);
    assert_eq!(
        rendered.objects[0]["data"],
        serde_json::json!({"size": "big", "chart": "0.3.1"})
    );
    assert_eq!(rendered.sources[0].revision, "0.3.1");

    let runs = h.renderer.stats().tool_runs;
    h.renderer.render(&app("rel", "ns"), &srcs).await.unwrap();
    assert_eq!(
        h.renderer.stats().tool_runs,
        runs,
        "an exact chart version is answered from the cache"
    );
    assert_eq!(h.renderer.stats().cache.hits, 1);

    let escape = sources(&format!(
        "- repoURL: {url}\n  chart: demo\n  targetRevision: 0.3.1\n  helm: {{valueFiles: [../../x.yaml]}}\n"
    ));
    let err = h
        .renderer
        .render(&app("rel", "ns"), &escape)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("value file resolves outside the repository"),
        "{err}"
    );
    assert!(err.contains(&format!("{url} chart demo")), "{err}");
}
