//! Kustomize sources against the real `kustomize` binary: an overlay with components and every
//! Application-level option, compared with `kustomize build` of an overlay written by hand
//! with the same edits.

mod common;

use common::*;
use ferry_testkit::git::GitRepo;

const BASE_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.25
        - name: sidecar
          image: busybox:1.36
";

const OVERLAY: &str = "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base
components:
  - ../../components/monitoring
patches:
  - target: {kind: Deployment, name: web}
    patch: |-
      - op: add
        path: /metadata/annotations
        value: {overlay: prod}
";

fn repo() -> GitRepo {
    let repo = GitRepo::new().unwrap();
    repo.write("base/deployment.yaml", BASE_DEPLOYMENT).unwrap();
    repo.write(
        "base/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n",
    )
    .unwrap();
    repo.write(
        "base/kustomization.yaml",
        "resources: [deployment.yaml, service.yaml]\n",
    )
    .unwrap();
    repo.write(
        "components/monitoring/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [monitor.yaml]\n",
    )
    .unwrap();
    repo.write(
        "components/monitoring/monitor.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: monitoring\ndata: {scrape: \"true\"}\n",
    )
    .unwrap();
    repo.write(
        "components/tls/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n  - target: {kind: Service, name: web}\n    patch: |-\n      - op: add\n        path: /spec/ports/-\n        value: {name: https, port: 443}\n",
    )
    .unwrap();
    repo.write("overlays/prod/kustomization.yaml", OVERLAY)
        .unwrap();
    repo.commit("kustomize").unwrap();
    repo
}

#[tokio::test]
async fn overlay_with_application_options_matches_a_hand_written_overlay() {
    let repo = repo();
    let h = harness(vec![]);
    let srcs = sources(&format!(
        r#"
- repoURL: {}
  path: overlays/prod
  kustomize:
    namePrefix: shop-
    nameSuffix: -v2
    namespace: prod
    images: [nginx=registry.example.com/nginx:1.27, "busybox:${{ARGOCD_APP_NAME}}"]
    commonLabels: {{team: shop}}
    commonAnnotations: {{owner: "$ARGOCD_APP_NAME"}}
    replicas: [{{name: web, count: 4}}]
    components: [../../components/tls, ../../components/missing]
    ignoreMissingComponents: true
    patches:
      - target: {{kind: ConfigMap, name: monitoring}}
        patch: |-
          - op: replace
            path: /data/scrape
            value: "false"
"#,
        repo.file_url()
    ));
    let rendered = h
        .renderer
        .render(&app("shop", "ignored"), &srcs)
        .await
        .unwrap();

    // The same result written as a kustomization by hand: what `kustomize edit` produces. Common
    // annotations are not env-substituted unless commonAnnotationsEnvsubst is set; images are.
    let scratch = tempfile::tempdir().unwrap();
    copy_tree(&repo.work_path(), scratch.path());
    let expected_dir = scratch.path().join("overlays/expected");
    std::fs::create_dir_all(&expected_dir).unwrap();
    std::fs::write(
        expected_dir.join("kustomization.yaml"),
        r#"apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base
components:
  - ../../components/monitoring
  - ../../components/tls
patches:
  - target: {kind: Deployment, name: web}
    patch: |-
      - op: add
        path: /metadata/annotations
        value: {overlay: prod}
  - target: {kind: ConfigMap, name: monitoring}
    patch: |-
      - op: replace
        path: /data/scrape
        value: "false"
namePrefix: shop-
nameSuffix: -v2
namespace: prod
images:
  - name: nginx
    newName: registry.example.com/nginx
    newTag: "1.27"
  - name: busybox
    newTag: shop
labels:
  - pairs: {team: shop}
    includeSelectors: true
commonAnnotations:
  owner: $ARGOCD_APP_NAME
replicas:
  - name: web
    count: 4
"#,
    )
    .unwrap();
    let expected = objects(&run(&tool("kustomize"), &["build", "."], &expected_dir));
    assert_eq!(rendered.objects, expected);

    // Spot checks that every option took effect.
    assert_eq!(
        names(&rendered.objects),
        [
            "ConfigMap/shop-monitoring-v2",
            "Service/shop-web-v2",
            "Deployment/shop-web-v2"
        ]
    );
    let deploy = &rendered.objects[2];
    assert_eq!(deploy["metadata"]["namespace"], "prod");
    assert_eq!(deploy["spec"]["replicas"], 4);
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/nginx:1.27"
    );
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][1]["image"],
        "busybox:shop"
    );
    assert_eq!(deploy["spec"]["selector"]["matchLabels"]["team"], "shop");
    assert_eq!(deploy["metadata"]["annotations"]["overlay"], "prod");
    assert_eq!(rendered.objects[1]["spec"]["ports"][1]["port"], 443);
    assert_eq!(rendered.objects[0]["data"]["scrape"], "false");
}

#[tokio::test]
async fn edits_happen_in_a_private_copy_and_leave_the_checkout_alone() {
    let repo = repo();
    let h = harness(vec![]);
    let with_prefix = sources(&format!(
        "- repoURL: {}\n  path: overlays/prod\n  kustomize: {{namePrefix: a-}}\n",
        repo.file_url()
    ));
    let plain = sources(&format!(
        "- repoURL: {}\n  path: overlays/prod\n",
        repo.file_url()
    ));
    let first = h
        .renderer
        .render(&app("x", "default"), &with_prefix)
        .await
        .unwrap();
    assert!(
        names(&first.objects).iter().all(|n| n.contains("/a-")),
        "{:?}",
        names(&first.objects)
    );
    // Same commit without options: no trace of the previous edit.
    let second = h
        .renderer
        .render(&app("x", "default"), &plain)
        .await
        .unwrap();
    assert_eq!(
        names(&second.objects),
        ["ConfigMap/monitoring", "Service/web", "Deployment/web"]
    );
}

#[tokio::test]
async fn missing_component_without_ignore_is_an_error() {
    let repo = repo();
    let h = harness(vec![]);
    let srcs = sources(&format!(
        "- repoURL: {}\n  path: overlays/prod\n  kustomize: {{components: [../../components/nope]}}\n",
        repo.file_url()
    ));
    let err = h
        .renderer
        .render(&app("x", "default"), &srcs)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("kustomize component ../../components/nope does not exist"),
        "{err}"
    );
}

#[tokio::test]
async fn kustomization_reaching_outside_the_repository_is_rejected() {
    let repo = repo();
    repo.write(
        "overlays/evil/kustomization.yaml",
        "resources: [../../../../../../etc]\n",
    )
    .unwrap();
    repo.commit("evil").unwrap();
    let h = harness(vec![]);
    let srcs = sources(&format!(
        "- repoURL: {}\n  path: overlays/evil\n",
        repo.file_url()
    ));
    let err = h
        .renderer
        .render(&app("x", "default"), &srcs)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "overlays/evil/kustomization.yaml: resources entry resolves outside the repository"
        ),
        "{err}"
    );
    let components = sources(&format!(
        "- repoURL: {}\n  path: overlays/prod\n  kustomize: {{components: [../../../../x]}}\n",
        repo.file_url()
    ));
    let err = h
        .renderer
        .render(&app("x", "default"), &components)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("kustomize component resolves outside the repository"),
        "{err}"
    );
}

/// `kustomize.version` picks a kustomize registered in argocd-cm (`kustomize.path.<version>`)
/// with its own build options; an unregistered version is an error naming it.
#[tokio::test]
async fn a_registered_kustomize_version_renders_with_its_binary_and_options() {
    let repo = GitRepo::new().unwrap();
    repo.write(
        "app/kustomization.yaml",
        "resources: [cm.yaml]\ncommonLabels: {team: a}\n",
    )
    .unwrap();
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n",
    )
    .unwrap();
    repo.commit("app").unwrap();
    // The default kustomize does not exist: only the registered one can render.
    let h = harness_configured(ferry_git::Credentials::default(), |c| {
        c.kustomize = "/nonexistent/kustomize".into();
    });
    let mut context = app("web", "default");
    context.kustomize = ferry_render::KustomizeOptions::from_argocd_cm(
        &[
            (
                "kustomize.path.v5-pinned",
                tool("kustomize").display().to_string(),
            ),
            (
                "kustomize.buildOptions.v5-pinned",
                "--reorder none".to_string(),
            ),
            (
                "kustomize.path.v5-strict",
                tool("kustomize").display().to_string(),
            ),
            (
                "kustomize.buildOptions.v5-strict",
                "--no-such-flag".to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    )
    .unwrap();
    let render = |version: &str| {
        let srcs = sources(&format!(
            "- repoURL: {}\n  path: app\n  kustomize: {{version: '{version}'}}\n",
            repo.file_url()
        ));
        let (h, context) = (&h, &context);
        async move {
            h.renderer
                .render(context, &srcs)
                .await
                .map_err(|e| e.to_string())
        }
    };
    let rendered = render("v5-pinned").await.unwrap();
    assert_eq!(rendered.objects[0]["metadata"]["labels"]["team"], "a");
    let err = render("").await.unwrap_err();
    assert!(err.contains("/nonexistent/kustomize"), "{err}");
    // The version's own options are the ones passed.
    let err = render("v5-strict").await.unwrap_err();
    assert!(err.contains("no-such-flag"), "{err}");
    let err = render("v4").await.unwrap_err();
    assert!(
        err.contains("kustomize version v4 is not registered"),
        "{err}"
    );
}
