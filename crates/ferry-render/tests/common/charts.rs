//! Chart `web` and what tests do with it: the files of a version, a source naming it in a
//! Helm repository or OCI registry, and a render as app `shop` in namespace `prod`.

use ferry_git::RepoCredential;
use ferry_render::Rendered;
use ferry_types::secrets::RepoSecret;
use serde_json::Value;

use super::{Harness, app, objects, run, sources, tool};

pub const USER: &str = "alice";
pub const PASSWORD: &str = "s3cret-Pa55";

/// The files of chart `web` at `version`; `greeting` tells builds of one version apart.
pub fn chart_files(version: &str, greeting: &str) -> Vec<(String, String)> {
    [
        (
            "Chart.yaml",
            format!("apiVersion: v2\nname: web\nversion: {version}\n"),
        ),
        (
            "values.yaml",
            format!("replicaCount: 1\ngreeting: {greeting}\nenv: dev\nlabels: {{}}\n"),
        ),
        ("values-prod.yaml", "env: prod\nreplicaCount: 3\n".into()),
        (
            "templates/configmap.yaml",
            r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
  namespace: {{ .Release.Namespace }}
  labels:
    chart-version: {{ .Chart.Version | quote }}
    {{- with .Values.labels }}{{ toYaml . | nindent 4 }}{{ end }}
data:
  greeting: {{ .Values.greeting | quote }}
  env: {{ .Values.env | quote }}
  replicas: {{ .Values.replicaCount | quote }}
"#
            .into(),
        ),
    ]
    .map(|(path, content)| (path.to_string(), content))
    .into()
}

/// Chart `web` at `version` in a directory of its own.
pub fn chart_dir(version: &str, greeting: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("web");
    for (path, content) in chart_files(version, greeting) {
        let file = chart.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }
    dir
}

/// What the real `helm template` renders of chart `web` at `version` (release `shop` in
/// `prod`, as [`chart_source`]'s apps name it): the output a pulled chart must match.
pub fn helm_template(version: &str, greeting: &str) -> Vec<Value> {
    let dir = chart_dir(version, greeting);
    objects(&run(
        &tool("helm"),
        &[
            "template",
            "web",
            "--name-template",
            "shop",
            "--namespace",
            "prod",
            "--include-crds",
        ],
        dir.path(),
    ))
}

pub fn chart_source(repo_url: &str, chart: &str, version: &str) -> String {
    format!("- repoURL: {repo_url}\n  chart: {chart}\n  targetRevision: \"{version}\"\n")
}

pub async fn render(h: &Harness, yaml: &str) -> Result<Rendered, String> {
    h.renderer
        .render(&app("shop", "prod"), &sources(yaml))
        .await
        .map_err(|e| e.to_string())
}

pub fn config_data(rendered: &Rendered) -> &Value {
    &rendered.objects[0]["data"]
}

/// The credential of an Argo CD repository or repo-creds Secret, from its YAML.
pub fn secret_credential(yaml: &str) -> RepoCredential {
    let secret: k8s_openapi::api::core::v1::Secret = serde_yaml::from_str(yaml).unwrap();
    ferry_render::repo_credential(&RepoSecret::from_secret(&secret).unwrap())
}
