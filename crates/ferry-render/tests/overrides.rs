//! `.argocd-source.yaml` and `.argocd-source-<app>.yaml` (Argo CD's parameter override files,
//! the Image Updater's default write-back target) change how a source renders, as in Argo CD.

mod common;

use common::*;
use ferry_testkit::git::GitRepo;
use serde_json::Value;

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.example.com/web:1.0.0}]
";

fn image_of(objects: &[Value], name: &str) -> String {
    let deployment = objects
        .iter()
        .find(|o| o["metadata"]["name"] == name)
        .unwrap();
    deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn override_files_are_merged_into_the_source_for_their_app() {
    let repo = GitRepo::new().unwrap();
    repo.write("app/deployment.yaml", DEPLOYMENT).unwrap();
    repo.write("app/kustomization.yaml", "resources: [deployment.yaml]\n")
        .unwrap();
    repo.write(
        "app/.argocd-source.yaml",
        "kustomize:\n  namePrefix: all-\n",
    )
    .unwrap();
    repo.write(
        "app/.argocd-source-shop.yaml",
        "# written by the image updater\nkustomize:\n  images:\n  - registry.example.com/web:1.1.0\n",
    )
    .unwrap();
    // Overrides cannot move the source.
    repo.write(
        "app/.argocd-source-other.yaml",
        "path: elsewhere\nrepoURL: https://evil.example/x\n",
    )
    .unwrap();
    repo.commit("app").unwrap();
    let h = harness(vec![]);
    let srcs = sources(&format!("- repoURL: {}\n  path: app\n", repo.file_url()));

    let shop = h
        .renderer
        .render(&app("shop", "default"), &srcs)
        .await
        .unwrap();
    assert_eq!(
        image_of(&shop.objects, "all-web"),
        "registry.example.com/web:1.1.0"
    );
    let other = h
        .renderer
        .render(&app("other", "default"), &srcs)
        .await
        .unwrap();
    assert_eq!(
        image_of(&other.objects, "all-web"),
        "registry.example.com/web:1.0.0"
    );
}

#[tokio::test]
async fn helm_parameters_from_the_app_override_file() {
    let repo = GitRepo::new().unwrap();
    repo.write(
        "chart/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    )
    .unwrap();
    repo.write("chart/values.yaml", "image:\n  tag: \"1.0.0\"\n")
        .unwrap();
    repo.write(
        "chart/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {tag: {{ .Values.image.tag | quote }}}\n",
    )
    .unwrap();
    repo.write(
        "chart/.argocd-source-shop.yaml",
        "helm:\n  parameters:\n  - name: image.tag\n    value: \"1.10\"\n    forceString: true\n",
    )
    .unwrap();
    repo.commit("chart").unwrap();
    let h = harness(vec![]);
    let srcs = sources(&format!("- repoURL: {}\n  path: chart\n", repo.file_url()));
    let rendered = h
        .renderer
        .render(&app("shop", "default"), &srcs)
        .await
        .unwrap();
    assert_eq!(rendered.objects[0]["data"]["tag"], "1.10");
}

#[tokio::test]
async fn override_files_are_not_read_through_a_link_out_of_the_repository() {
    let repo = GitRepo::new().unwrap();
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
    )
    .unwrap();
    repo.symlink("app/.argocd-source-shop.yaml", "/etc/hostname")
        .unwrap();
    repo.write(
        "bad/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
    )
    .unwrap();
    repo.write("bad/.argocd-source.yaml", "kustomize: [not, a, mapping\n")
        .unwrap();
    repo.commit("app").unwrap();
    let h = harness(vec![]);
    let srcs = sources(&format!("- repoURL: {}\n  path: app\n", repo.file_url()));
    let err = h
        .renderer
        .render(&app("shop", "default"), &srcs)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(".argocd-source-shop.yaml"),
        "{err}"
    );
    let srcs = sources(&format!("- repoURL: {}\n  path: bad\n", repo.file_url()));
    let err = h
        .renderer
        .render(&app("shop", "default"), &srcs)
        .await
        .unwrap_err();
    assert!(err.to_string().contains(".argocd-source.yaml"), "{err}");
}
