//! Helm charts from a real OCI registry (the CNCF distribution registry) pulled by the real
//! `helm`, as Argo CD's repo server does: repository URLs with and without `oci://`, exact
//! versions and semver constraints, basic auth with the credentials of an Argo CD repository
//! Secret, TLS, errors that say what went wrong, and the render cache.

mod common;

use common::charts::*;
use common::*;
use ferry_git::{Credentials, RepoCredential};
use ferry_testkit::git::GitRepo;
use ferry_testkit::registry::{Registry, RegistryOptions};

/// A registry holding `web` at each of `versions` under `charts/`.
fn registry_with(options: RegistryOptions<'_>, versions: &[&str]) -> Registry {
    let registry = Registry::start(options).unwrap();
    for version in versions {
        let dir = chart_dir(version, "hello");
        registry
            .push_chart(&dir.path().join("web"), "charts")
            .unwrap();
    }
    registry
}

#[tokio::test]
async fn a_chart_from_an_anonymous_registry_renders_as_helm_template_does() {
    let registry = registry_with(RegistryOptions::default(), &["1.0.0", "1.1.0"]);
    let h = harness(vec![]);
    let repo = format!("{}/charts", registry.host());

    let rendered = render(&h, &chart_source(&repo, "web", "1.0.0"))
        .await
        .unwrap();
    assert_eq!(rendered.objects, helm_template("1.0.0", "hello"));
    assert_eq!(rendered.sources[0].revision, "1.0.0");
    assert_eq!(rendered.sources[0].repo_url, repo);

    // `oci://` names the same chart.
    let with_scheme = render(&h, &chart_source(&format!("oci://{repo}"), "web", "1.0.0"))
        .await
        .unwrap();
    assert_eq!(with_scheme.objects, rendered.objects);
}

#[tokio::test]
async fn version_constraints_resolve_against_the_registry_tags() {
    let registry = registry_with(
        RegistryOptions::default(),
        &["1.0.0", "1.2.0", "1.3.0-rc.1", "2.0.0"],
    );
    let h = harness(vec![]);
    let repo = format!("{}/charts", registry.host());
    for (constraint, resolved) in [("1.*", "1.2.0"), (">=1.0.0", "2.0.0"), ("", "2.0.0")] {
        let rendered = render(&h, &chart_source(&repo, "web", constraint))
            .await
            .unwrap();
        assert_eq!(rendered.sources[0].revision, resolved, "{constraint:?}");
        assert_eq!(
            rendered.objects[0]["metadata"]["labels"]["chart-version"], resolved,
            "{constraint:?}"
        );
    }
    let err = render(&h, &chart_source(&repo, "web", "3.*"))
        .await
        .unwrap_err();
    assert!(
        err.starts_with(&format!(
            "{repo} chart web: registry {}: no version of chart web matches 3.*",
            registry.host()
        )),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_version_or_chart_is_a_clear_error() {
    let registry = registry_with(RegistryOptions::default(), &["1.0.0"]);
    let h = harness(vec![]);
    let repo = format!("{}/charts", registry.host());
    for (chart, version) in [("web", "9.9.9"), ("nope", "1.0.0")] {
        let err = render(&h, &chart_source(&repo, chart, version))
            .await
            .unwrap_err();
        let expected = format!(
            "{repo} chart {chart}: registry {}: chart {chart} version {version} not found (helm pull: ",
            registry.host()
        );
        assert!(err.starts_with(&expected), "{err}");
    }
}

/// The credentials come from an Argo CD repository Secret as users write it for an OCI Helm
/// repository: `type: helm`, `enableOCI`, the URL without a scheme.
#[tokio::test]
async fn a_registry_with_basic_auth_takes_the_repository_secrets_credentials() {
    let registry = registry_with(
        RegistryOptions {
            auth: Some((USER, PASSWORD)),
            ..Default::default()
        },
        &["1.0.0"],
    );
    let repo = format!("{}/charts", registry.host());
    let source = chart_source(&repo, "web", "1.0.0");
    let credential = secret_credential(&format!(
        r#"
metadata:
  name: charts
  labels: {{argocd.argoproj.io/secret-type: repository}}
stringData:
  url: {repo}
  type: helm
  enableOCI: "true"
  insecureOCIForceHttp: "true"
  username: {USER}
  password: {PASSWORD}
"#
    ));
    assert!(credential.insecure_oci_force_http);
    let h = harness_with(vec![], Credentials::new().with_repo(&repo, credential));
    let rendered = render(&h, &source).await.unwrap();
    assert_eq!(config_data(&rendered)["greeting"], "hello");

    // A credential template for the whole registry works as well.
    let h = harness_with(
        vec![],
        Credentials::new().with_template(&registry.host(), RepoCredential::basic(USER, PASSWORD)),
    );
    render(&h, &source).await.unwrap();

    let err = render(&harness(vec![]), &source).await.unwrap_err();
    assert!(
        err.starts_with(&format!(
            "{repo} chart web: registry {}: authentication required: no repository Secret with a \
             username and password matches {repo} (helm pull: ",
            registry.host()
        )),
        "{err}"
    );

    let wrong = "not-the-Pa55word";
    let h = harness_with(
        vec![],
        Credentials::new().with_repo(&repo, RepoCredential::basic(USER, wrong)),
    );
    let err = render(&h, &source).await.unwrap_err();
    assert!(
        err.starts_with(&format!(
            "{repo} chart web: registry {}: authentication failed: the registry refused the \
             credentials of the repository Secret (helm registry login: ",
            registry.host()
        )),
        "{err}"
    );
    assert!(!err.contains(wrong) && !err.contains(PASSWORD), "{err}");
}

/// `insecure` skips TLS verification of a registry with a self-signed certificate;
/// `insecureOCIForceHttp` makes helm speak plain HTTP, which a TLS registry answers with 400.
#[tokio::test]
async fn a_tls_registry_with_a_self_signed_certificate_needs_insecure() {
    let registry = registry_with(
        RegistryOptions {
            tls: true,
            ..Default::default()
        },
        &["1.0.0"],
    );
    let repo = format!("{}/charts", registry.host());
    let source = chart_source(&repo, "web", "1.0.0");
    let with = |credential: RepoCredential| {
        harness_with(vec![], Credentials::new().with_repo(&repo, credential))
    };

    let err = render(&harness(vec![]), &source).await.unwrap_err();
    assert!(
        err.starts_with(&format!(
            "{repo} chart web: registry {}: its TLS certificate is not trusted",
            registry.host()
        )),
        "{err}"
    );
    let insecure = with(RepoCredential::default().insecure(true));
    assert_eq!(
        config_data(&render(&insecure, &source).await.unwrap())["greeting"],
        "hello"
    );
    let plain_http = with(RepoCredential {
        insecure_oci_force_http: true,
        ..RepoCredential::default()
    });
    let err = render(&plain_http, &source).await.unwrap_err();
    assert!(
        err.contains("cannot pull chart web version 1.0.0") && err.contains("400"),
        "{err}"
    );
}

/// The same chart from Git and from a registry, with the same Helm options, renders the same.
#[tokio::test]
async fn helm_options_apply_to_registry_charts_as_to_git_charts() {
    let registry = registry_with(RegistryOptions::default(), &["1.0.0"]);
    let git = GitRepo::new().unwrap();
    for (path, content) in chart_files("1.0.0", "hello") {
        git.write(&format!("charts/web/{path}"), content).unwrap();
    }
    git.commit("web").unwrap();
    let helm = r#"
  helm:
    releaseName: storefront
    valueFiles: [values-prod.yaml]
    parameters:
      - {name: greeting, value: "hi,there"}
    valuesObject: {labels: {team: shop}}
"#;
    let h = harness(vec![]);
    let from_registry = render(
        &h,
        &format!(
            "{}{helm}",
            chart_source(&format!("{}/charts", registry.host()), "web", "1.0.0")
        ),
    )
    .await
    .unwrap();
    let from_git = render(
        &h,
        &format!(
            "- repoURL: {}\n  path: charts/web\n  targetRevision: main\n{helm}",
            git.file_url()
        ),
    )
    .await
    .unwrap();
    assert_eq!(from_registry.objects, from_git.objects);
    let config = &from_registry.objects[0];
    assert_eq!(config["metadata"]["name"], "storefront-config");
    assert_eq!(config["metadata"]["labels"]["team"], "shop");
    assert_eq!(config["data"]["greeting"], "hi,there");
    assert_eq!(config["data"]["env"], "prod");
    assert_eq!(config["data"]["replicas"], "3");
}

/// A render of an exact chart version is cached under registry, chart and version: asking
/// again runs no tool; another version, chart or registry is rendered on its own.
#[tokio::test]
async fn the_render_cache_keys_on_registry_chart_and_version() {
    let first = registry_with(RegistryOptions::default(), &["1.0.0", "1.1.0"]);
    let second = Registry::start(RegistryOptions::default()).unwrap();
    let other = chart_dir("1.0.0", "from-the-second-registry");
    second
        .push_chart(&other.path().join("web"), "charts")
        .unwrap();
    first
        .push_chart(&other.path().join("web"), "other-charts")
        .unwrap();
    let h = harness(vec![]);
    let at = |registry: &Registry, path: &str, version: &str| {
        chart_source(&format!("{}/{path}", registry.host()), "web", version)
    };

    let one = render(&h, &at(&first, "charts", "1.0.0")).await.unwrap();
    let runs = h.renderer.stats().tool_runs;
    assert_eq!(
        render(&h, &at(&first, "charts", "1.0.0")).await.unwrap(),
        one
    );
    assert_eq!(h.renderer.stats().tool_runs, runs, "a hit runs no tool");
    assert_eq!(h.renderer.stats().cache.hits, 1);

    let newer = render(&h, &at(&first, "charts", "1.1.0")).await.unwrap();
    assert_eq!(newer.sources[0].revision, "1.1.0");
    let elsewhere = render(&h, &at(&second, "charts", "1.0.0")).await.unwrap();
    assert_eq!(
        config_data(&elsewhere)["greeting"],
        "from-the-second-registry"
    );
    let other_path = render(&h, &at(&first, "other-charts", "1.0.0"))
        .await
        .unwrap();
    assert_eq!(
        config_data(&other_path)["greeting"],
        "from-the-second-registry"
    );
    let stats = h.renderer.stats().cache;
    assert_eq!((stats.hits, stats.misses, stats.entries), (1, 4, 4));
}
