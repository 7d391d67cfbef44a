//! The updater against real components: the sandbox's API server (Applications, Secrets,
//! Events), a CNCF distribution registry with test images pushed to it, and a Git server over
//! smart HTTP with basic auth. Each story runs one cycle, as `ferry-image-updater run --once`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use ferry_git::push::Author;
use ferry_image_updater::metrics::Metrics;
use ferry_image_updater::runner::{CycleReport, Runner, Settings};
use ferry_image_updater::templates::DEFAULT_COMMIT_MESSAGE;
use ferry_image_updater::writeback::CommitSettings;
use ferry_registry::{Registries, RegistriesConf, SecretReader};
use ferry_testkit::git::{GitRepo, HttpServer};
use ferry_testkit::kube::TestContext;
use ferry_testkit::registry::{ManifestFormat, Registry, RegistryOptions, TestImage};
use ferry_types::Application;
use ferry_types::secrets::{RepoSecret, RepoSecretKind};
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{ListParams, PostParams};

const IMAGE_LIST: &str = "argocd-image-updater.argoproj.io/image-list";

/// A registry holding `app` at `tags` (one build a minute apart, in order).
async fn registry_with(tags: &[&str]) -> Result<Registry> {
    let registry = Registry::start(RegistryOptions::default())?;
    for (i, tag) in tags.iter().enumerate() {
        let created = format!("2026-01-01T00:{i:02}:00Z");
        let image = TestImage {
            created: &created,
            ..TestImage::default()
        };
        registry
            .push_image("app", tag, &image, ManifestFormat::Oci)
            .await?;
    }
    Ok(registry)
}

fn runner(ctx: &TestContext, registry: &Registry) -> Result<Runner> {
    let conf = RegistriesConf::parse(&format!(
        "registries:\n- {{name: test, api_url: '{}', prefix: '{}'}}\n",
        registry.api_url(),
        registry.host()
    ))?;
    let secrets: Arc<dyn SecretReader> = Arc::new(ctx.client());
    let registries = Arc::new(Registries::new(&conf, Some(secrets))?);
    let settings = Settings {
        namespace: ctx.namespace().to_string(),
        watch_namespaces: vec![ctx.namespace().to_string()],
        interval: Duration::from_secs(120),
        max_concurrency: 4,
        dry_run: false,
        commit: CommitSettings {
            author: Author {
                name: "argocd-image-updater".into(),
                email: "noreply@argoproj.io".into(),
            },
            message_template: DEFAULT_COMMIT_MESSAGE.into(),
            control_namespace: ctx.namespace().to_string(),
            dry_run: false,
        },
        kube_events: true,
    };
    Ok(Runner::new(
        ctx.client(),
        registries,
        settings,
        Arc::new(Metrics::default()),
    ))
}

/// An Application running `running` (in its status, as the controller reports it).
async fn create_app(
    ctx: &TestContext,
    name: &str,
    annotations: &[(&str, String)],
    source: &str,
    running: &str,
) -> Result<Application> {
    let annotations: String = annotations
        .iter()
        .map(|(k, v)| format!("    {k}: '{v}'\n"))
        .collect();
    let yaml = format!(
        "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
  annotations:
{annotations}spec:
  project: default
  destination: {{server: https://kubernetes.default.svc, namespace: default}}
  source: {source}
status:
  summary:
    images: ['{running}']
"
    );
    let app: Application = serde_yaml::from_str(&yaml)?;
    Ok(ctx.api().create(&PostParams::default(), &app).await?)
}

async fn get_app(ctx: &TestContext, name: &str) -> Result<Application> {
    Ok(ctx.api::<Application>().get(name).await?)
}

/// `reason: note` of the Events on Application `name`.
async fn events(ctx: &TestContext, name: &str) -> Result<Vec<String>> {
    let list = ctx
        .api::<Event>()
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await?;
    Ok(list
        .items
        .into_iter()
        .map(|e| {
            format!(
                "{}: {}",
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default()
            )
        })
        .collect())
}

fn helm_parameters(app: &Application) -> Vec<(String, String)> {
    app.spec
        .source
        .as_ref()
        .and_then(|s| s.helm.as_ref())
        .map(|h| {
            h.parameters
                .iter()
                .map(|p| (p.name.clone(), p.value.clone()))
                .collect()
        })
        .unwrap_or_default()
}

const HELM_SOURCE: &str = "{repoURL: 'https://example.com/charts', chart: app, targetRevision: 1.0.0, helm: {parameters: [{name: replicas, value: '2'}]}}";

#[tokio::test]
async fn argocd_write_back_sets_helm_parameters_and_kustomize_images() -> Result<()> {
    let ctx = TestContext::new().await?;
    ferry_runtime::install_crds(&ctx.client(), "image-updater-tests").await?;
    let registry = registry_with(&["1.0.0", "1.1.0", "1.2.0-rc.1", "2.0.0", "latest"]).await?;
    let image = format!("{}/app", registry.host());
    create_app(
        &ctx,
        "helm",
        &[(IMAGE_LIST, format!("app={image}:1.x"))],
        HELM_SOURCE,
        &format!("{image}:1.0.0"),
    )
    .await?;
    create_app(
        &ctx,
        "kustomize",
        &[
            (IMAGE_LIST, format!("app={image}")),
            (
                "argocd-image-updater.argoproj.io/app.update-strategy",
                "newest-build".into(),
            ),
            (
                "argocd-image-updater.argoproj.io/app.allow-tags",
                "regexp:^[0-9.]+$".into(),
            ),
        ],
        "{repoURL: 'https://example.com/config.git', path: overlays/prod, kustomize: {images: ['other:1']}}",
        &format!("{image}:1.0.0"),
    )
    .await?;

    let report: CycleReport = runner(&ctx, &registry)?.cycle(None).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.updated.len(), 2, "{report:?}");

    // semver within 1.x: 1.1.0 (2.0.0 is outside, the release candidate not asked for).
    let helm = get_app(&ctx, "helm").await?;
    assert_eq!(
        helm_parameters(&helm),
        [
            ("replicas".to_string(), "2".to_string()),
            ("image.name".to_string(), image.clone()),
            ("image.tag".to_string(), "1.1.0".to_string()),
        ]
    );
    // newest-build among the tags allow-tags lets through: 2.0.0, built last of them.
    let kustomize = get_app(&ctx, "kustomize").await?;
    let images = &kustomize
        .spec
        .source
        .as_ref()
        .unwrap()
        .kustomize
        .as_ref()
        .unwrap()
        .images;
    assert_eq!(images, &["other:1".to_string(), format!("{image}:2.0.0")]);
    let helm_events = events(&ctx, "helm").await?;
    assert!(
        helm_events.iter().any(|e| e.starts_with("ImagesUpdated:")
            && e.contains(&format!("{image} from '1.0.0' to '1.1.0'"))),
        "{helm_events:?}"
    );

    // The next cycle finds the spec as it wants it: nothing is written again.
    let again = runner(&ctx, &registry)?.cycle(None).await;
    assert!(again.updated.is_empty(), "{again:?}");
    Ok(())
}

#[tokio::test]
async fn no_matching_tag_and_registry_down_change_nothing() -> Result<()> {
    let ctx = TestContext::new().await?;
    ferry_runtime::install_crds(&ctx.client(), "image-updater-tests").await?;
    let mut registry = registry_with(&["1.0.0", "1.1.0"]).await?;
    let image = format!("{}/app", registry.host());
    create_app(
        &ctx,
        "nothing-matches",
        &[(IMAGE_LIST, format!("app={image}:3.x"))],
        HELM_SOURCE,
        &format!("{image}:1.0.0"),
    )
    .await?;
    let updater = runner(&ctx, &registry)?;
    let report = updater.cycle(None).await;
    assert!(
        report.errors.is_empty() && report.updated.is_empty(),
        "{report:?}"
    );
    let app = get_app(&ctx, "nothing-matches").await?;
    assert_eq!(
        helm_parameters(&app),
        [("replicas".to_string(), "2".to_string())]
    );

    create_app(
        &ctx,
        "registry-down",
        &[(IMAGE_LIST, format!("app={image}:1.x"))],
        HELM_SOURCE,
        &format!("{image}:1.0.0"),
    )
    .await?;
    registry.stop();
    let report = updater.cycle(None).await;
    assert!(report.updated.is_empty(), "{report:?}");
    let (_, error) = report
        .errors
        .iter()
        .find(|(app, _)| app.ends_with("/registry-down"))
        .expect("registry-down failed");
    assert!(
        error.contains("registry test (") && error.contains("Connection refused"),
        "{error}"
    );
    let app = get_app(&ctx, "registry-down").await?;
    assert_eq!(
        helm_parameters(&app),
        [("replicas".to_string(), "2".to_string())]
    );
    let events = events(&ctx, "registry-down").await?;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("RegistryError:") && e.contains("registry test (")),
        "{events:?}"
    );

    // Back up: the retry updates it (and still nothing for the app nothing matches).
    registry.restart()?;
    let report = updater.cycle(None).await;
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(report.updated.len(), 1, "{report:?}");
    assert!(
        report.updated[0].0.ends_with("/registry-down"),
        "{report:?}"
    );
    Ok(())
}

#[tokio::test]
async fn invalid_settings_are_an_event_naming_the_annotation() -> Result<()> {
    let ctx = TestContext::new().await?;
    ferry_runtime::install_crds(&ctx.client(), "image-updater-tests").await?;
    let registry = registry_with(&["1.0.0"]).await?;
    let image = format!("{}/app", registry.host());
    create_app(
        &ctx,
        "bad-regexp",
        &[
            (IMAGE_LIST, format!("app={image}")),
            (
                "argocd-image-updater.argoproj.io/app.allow-tags",
                "regexp:^(".into(),
            ),
        ],
        HELM_SOURCE,
        &format!("{image}:0.9.0"),
    )
    .await?;
    let report = runner(&ctx, &registry)?.cycle(None).await;
    assert!(report.updated.is_empty(), "{report:?}");
    let events = events(&ctx, "bad-regexp").await?;
    assert!(
        events.iter().any(|e| e.starts_with(
            "InvalidConfiguration: annotation argocd-image-updater.argoproj.io/app.allow-tags: invalid regular expression"
        )),
        "{events:?}"
    );
    Ok(())
}

/// The files a commit changed, from the bare repository.
fn changed_files(repo: &GitRepo, commit: &str) -> Result<Vec<String>> {
    let out = bare_git(repo, &["show", "--name-only", "--format=", commit])?;
    Ok(out
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

fn bare_git(repo: &GitRepo, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(repo.bare_path())
        .args(args)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

#[tokio::test]
async fn git_write_back_commits_only_the_target_file() -> Result<()> {
    let ctx = TestContext::new().await?;
    ferry_runtime::install_crds(&ctx.client(), "image-updater-tests").await?;
    let registry = registry_with(&["1.0.0", "1.1.0"]).await?;
    let image = format!("{}/app", registry.host());

    let repo = GitRepo::new()?;
    repo.write(
        "apps/web/kustomization.yaml",
        "# the web app\nresources: [deployment.yaml]\nimages:\n  - name: app # pinned by CI\n    newTag: 0.1.0\n",
    )?;
    repo.write("apps/web/deployment.yaml", "kind: Deployment\n")?;
    repo.write("apps/api/values.yaml", "replicas: 1\n")?;
    repo.commit("config")?;
    let server = HttpServer::start(&repo, Some(("git", "s3cret")))?;
    // The repository's credentials, as Argo CD keeps them (git:repocreds).
    let mut secret = RepoSecret::new(RepoSecretKind::Repository, &server.url());
    secret.username = Some("git".into());
    secret.password = Some("s3cret".into());
    let secret: Secret = secret.to_secret(ctx.namespace());
    ctx.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;

    let source_at = |path: &str, kind: &str, revision: &str| {
        format!(
            "{{repoURL: '{}', path: {path}, targetRevision: {revision}, {kind}: {{}}}}",
            server.url()
        )
    };
    let source = |path: &str, kind: &str| source_at(path, kind, "main");
    // Default target: .argocd-source-<app>.yaml beside the Helm source, on the branch HEAD
    // names.
    create_app(
        &ctx,
        "api",
        &[
            (IMAGE_LIST, format!("app={image}:1.x")),
            (
                "argocd-image-updater.argoproj.io/write-back-method",
                "git".into(),
            ),
        ],
        &source_at("apps/api", "helm", "HEAD"),
        &format!("{image}:1.0.0"),
    )
    .await?;
    let report = runner(&ctx, &registry)?.cycle(None).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let head = bare_git(&repo, &["rev-parse", "main"])?;
    assert_eq!(
        changed_files(&repo, &head)?,
        ["apps/api/.argocd-source-api.yaml"]
    );
    let written = bare_git(&repo, &["show", "main:apps/api/.argocd-source-api.yaml"])?;
    assert!(written.contains("value: 1.1.0"), "{written}");
    assert!(written.contains(&format!("value: {image}")), "{written}");
    let message = bare_git(&repo, &["log", "-1", "--format=%an <%ae>%n%B", "main"])?;
    assert_eq!(
        message,
        format!(
            "argocd-image-updater <noreply@argoproj.io>\nbuild: automatic update of api\n\nupdates image {image} tag '1.0.0' to '1.1.0'"
        )
    );
    // The Application itself is left alone.
    assert_eq!(helm_parameters(&get_app(&ctx, "api").await?), []);

    // kustomization target: the kustomization's images, comments kept, nothing else.
    create_app(
        &ctx,
        "web",
        &[
            (IMAGE_LIST, format!("app={image}:1.x")),
            (
                "argocd-image-updater.argoproj.io/app.kustomize.image-name",
                "app".into(),
            ),
            (
                "argocd-image-updater.argoproj.io/write-back-method",
                "git:repocreds".into(),
            ),
            (
                "argocd-image-updater.argoproj.io/write-back-target",
                "kustomization".into(),
            ),
        ],
        &source("apps/web", "kustomize"),
        &format!("{image}:1.0.0"),
    )
    .await?;
    let report = runner(&ctx, &registry)?.cycle(None).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let head = bare_git(&repo, &["rev-parse", "main"])?;
    assert_eq!(
        changed_files(&repo, &head)?,
        ["apps/web/kustomization.yaml"]
    );
    let kustomization = bare_git(&repo, &["show", "main:apps/web/kustomization.yaml"])?;
    assert_eq!(
        kustomization,
        format!(
            "# the web app\nresources: [deployment.yaml]\nimages:\n  - name: app # pinned by CI\n    newTag: 1.1.0\n    newName: {image}"
        )
    );

    // helmvalues target: the values file at the configured parameter paths.
    create_app(
        &ctx,
        "api-values",
        &[
            (IMAGE_LIST, format!("app={image}:1.x")),
            (
                "argocd-image-updater.argoproj.io/app.helm.image-name",
                "image.repository".into(),
            ),
            (
                "argocd-image-updater.argoproj.io/app.helm.image-tag",
                "image.tag".into(),
            ),
            (
                "argocd-image-updater.argoproj.io/write-back-method",
                "git".into(),
            ),
            (
                "argocd-image-updater.argoproj.io/write-back-target",
                "helmvalues:values.yaml".into(),
            ),
        ],
        &source("apps/api", "helm"),
        &format!("{image}:1.0.0"),
    )
    .await?;
    let report = runner(&ctx, &registry)?.cycle(None).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let head = bare_git(&repo, &["rev-parse", "main"])?;
    assert_eq!(changed_files(&repo, &head)?, ["apps/api/values.yaml"]);
    let values: serde_yaml::Value =
        serde_yaml::from_str(&bare_git(&repo, &["show", "main:apps/api/values.yaml"])?)?;
    assert_eq!(values["replicas"], 1);
    assert_eq!(values["image"]["repository"], image.as_str());
    assert_eq!(values["image"]["tag"], "1.1.0");

    // git:secret:<ns>/<name>: that Secret's credentials, not the repository's.
    let named = |password: &str| -> Result<Secret> {
        Ok(serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "git-creds"},
            "stringData": {"username": "git", "password": password},
        }))?)
    };
    let secrets = ctx.api::<Secret>();
    secrets
        .create(&PostParams::default(), &named("wrong")?)
        .await?;
    create_app(
        &ctx,
        "api-secret",
        &[
            (IMAGE_LIST, format!("app={image}:1.x")),
            (
                "argocd-image-updater.argoproj.io/write-back-method",
                format!("git:secret:{}/git-creds", ctx.namespace()),
            ),
        ],
        &source("apps/api", "helm"),
        &format!("{image}:1.0.0"),
    )
    .await?;
    let report = runner(&ctx, &registry)?.cycle(None).await;
    let failed: Vec<_> = report
        .errors
        .iter()
        .filter(|(app, _)| app.ends_with("/api-secret"))
        .collect();
    assert_eq!(failed.len(), 1, "{report:?}");
    assert!(
        !failed[0].1.contains("wrong"),
        "no password in errors: {failed:?}"
    );
    secrets.delete("git-creds", &Default::default()).await?;
    secrets
        .create(&PostParams::default(), &named("s3cret")?)
        .await?;
    let report = runner(&ctx, &registry)?.cycle(None).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let head = bare_git(&repo, &["rev-parse", "main"])?;
    assert_eq!(
        changed_files(&repo, &head)?,
        ["apps/api/.argocd-source-api-secret.yaml"]
    );

    // Nothing new: no commit at all.
    let report = runner(&ctx, &registry)?.cycle(None).await;
    assert!(
        report.errors.is_empty() && report.updated.is_empty(),
        "{report:?}"
    );
    assert_eq!(bare_git(&repo, &["rev-parse", "main"])?, head);
    Ok(())
}

#[tokio::test]
async fn an_image_updater_tracks_a_mutable_tag_by_digest_and_reports_in_its_status() -> Result<()> {
    let ctx = TestContext::new().await?;
    ferry_runtime::install_crds(&ctx.client(), "image-updater-tests").await?;
    let registry = registry_with(&["1.0.0"]).await?;
    let first = registry
        .push_image("app", "latest", &TestImage::default(), ManifestFormat::Oci)
        .await?;
    let image = format!("{}/app", registry.host());
    for name in ["tracker-a", "other"] {
        create_app(&ctx, name, &[], HELM_SOURCE, &format!("{image}:latest")).await?;
    }
    let updater: ferry_types::ImageUpdater = serde_yaml::from_str(&format!(
        r#"apiVersion: argocd-image-updater.argoproj.io/v1alpha1
kind: ImageUpdater
metadata: {{name: trackers}}
spec:
  applicationRefs:
    - namePattern: "tracker-*"
      images:
        - alias: app
          imageName: "{image}:latest"
          commonUpdateSettings: {{updateStrategy: digest}}
          manifestTargets:
            helm: {{name: app.repository, tag: app.tag}}
"#
    ))?;
    ctx.api::<ferry_types::ImageUpdater>()
        .create(&PostParams::default(), &updater)
        .await?;

    let updater_run = runner(&ctx, &registry)?;
    let report = updater_run.cycle(None).await;
    assert!(report.errors.is_empty(), "{report:?}");
    let tag = |app: &Application| {
        helm_parameters(app)
            .into_iter()
            .find(|(name, _)| name == "app.tag")
            .map(|(_, value)| value)
    };
    assert_eq!(
        tag(&get_app(&ctx, "tracker-a").await?),
        Some(format!("latest@{first}"))
    );
    assert_eq!(tag(&get_app(&ctx, "other").await?), None, "not selected");

    let status = ctx
        .api::<ferry_types::ImageUpdater>()
        .get_status("trackers")
        .await?
        .status
        .expect("a status");
    assert_eq!(status.applications_matched, 1);
    assert_eq!(status.images_managed, 1);
    assert_eq!(status.recent_updates.len(), 1, "{status:?}");
    assert_eq!(
        status.recent_updates[0].new_version,
        format!("latest@{first}")
    );
    assert_eq!(status.conditions[0].status, "True");

    // A new push of the tag: the new digest.
    let rebuilt = TestImage {
        created: "2026-02-01T00:00:00Z",
        ..TestImage::default()
    };
    let second = registry
        .push_image("app", "latest", &rebuilt, ManifestFormat::Oci)
        .await?;
    assert_ne!(first, second);
    let report = updater_run.cycle(None).await;
    assert_eq!(report.updated.len(), 1, "{report:?}");
    assert_eq!(
        tag(&get_app(&ctx, "tracker-a").await?),
        Some(format!("latest@{second}"))
    );
    Ok(())
}

#[tokio::test]
async fn the_binary_runs_one_cycle_with_once() -> Result<()> {
    let ctx = TestContext::new().await?;
    ferry_runtime::install_crds(&ctx.client(), "image-updater-tests").await?;
    let registry = registry_with(&["1.0.0", "1.0.1"]).await?;
    let image = format!("{}/app", registry.host());
    create_app(
        &ctx,
        "once",
        &[(IMAGE_LIST, format!("app={image}:~1.0"))],
        HELM_SOURCE,
        &format!("{image}:1.0.0"),
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "registries:\n- name: test\n  api_url: {}\n  prefix: {}\n",
            registry.api_url(),
            registry.host()
        ),
    )?;
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ferry-image-updater"))
            .arg("run")
            .arg("--kubeconfig")
            .arg(ctx.kubeconfig())
            .args(["--namespace", ctx.namespace(), "--once"])
            .arg("--registries-conf-path")
            .arg(&conf)
            .args(extra)
            .output()
    };
    // --dry-run decides but writes nothing.
    let out = run(&["--dry-run"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        helm_parameters(&get_app(&ctx, "once").await?),
        [("replicas".to_string(), "2".to_string())]
    );
    let out = run(&[])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        helm_parameters(&get_app(&ctx, "once").await?)
            .contains(&("image.tag".to_string(), "1.0.1".to_string()))
    );
    // A cycle with an error exits non-zero.
    drop(registry);
    let out = run(&[])?;
    assert!(!out.status.success());
    Ok(())
}

#[tokio::test]
async fn concurrent_write_backs_to_one_repository_all_land() -> Result<()> {
    let ctx = TestContext::new().await?;
    ferry_runtime::install_crds(&ctx.client(), "image-updater-tests").await?;
    let registry = registry_with(&["1.0.0", "1.1.0"]).await?;
    let image = format!("{}/app", registry.host());
    let repo = GitRepo::new()?;
    let apps = ["a", "b", "c", "d"];
    for app in apps {
        repo.write(&format!("apps/{app}/values.yaml"), "replicas: 1\n")?;
    }
    repo.commit("config")?;
    for app in apps {
        create_app(
            &ctx,
            app,
            &[
                (IMAGE_LIST, format!("app={image}:1.x")),
                (
                    "argocd-image-updater.argoproj.io/write-back-method",
                    "git".into(),
                ),
            ],
            &format!(
                "{{repoURL: '{}', path: apps/{app}, targetRevision: main, helm: {{}}}}",
                repo.file_url()
            ),
            &format!("{image}:1.0.0"),
        )
        .await?;
    }
    // Four apps of one repository in one cycle (max_concurrency 4): their write-backs take
    // turns on the repository, and every commit lands.
    let report = runner(&ctx, &registry)?.cycle(None).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.updated.len(), apps.len(), "{report:?}");
    let log = bare_git(&repo, &["log", "--format=%s", "main"])?;
    assert_eq!(log.lines().count(), apps.len() + 1, "{log}");
    for app in apps {
        let file = format!("main:apps/{app}/.argocd-source-{app}.yaml");
        assert!(bare_git(&repo, &["show", &file])?.contains("value: 1.1.0"));
    }
    Ok(())
}
