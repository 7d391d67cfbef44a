//! The controller as a library against the shared sandbox: `ferry_controller::run` for a test
//! namespace of its own (its control namespace and the apps' destination), apps from a local Git
//! repository. What e2e stories check through the binaries, here without them, and with faults
//! only a library can inject (a view of the apps that trails the controller's own writes).

mod ignored_updates;
mod watch_lag;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use ferry_controller::{ControllerSettings, Metrics};
use ferry_testkit::git::{GitRepo, fixture_source_repos};
use ferry_testkit::kube::TestContext;
use ferry_types::application::condition::COMPARISON_ERROR;
use ferry_types::application::{HealthStatusCode, OperationPhase, SyncStatusCode};
use ferry_types::{AppProject, Application};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::watch_lag::WatchLag;

const CONFIG_MAP: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: blue}\n";

/// A controller running for one test's namespace until dropped or stopped.
struct Controller {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<()>>>,
    /// Holds back the controller's Application watch events when set.
    lag: WatchLag,
    _cache: tempfile::TempDir,
}

impl Controller {
    /// The CRDs and a `default` project that also permits the fixture repositories, then the
    /// controller (which keeps an existing `default` project as it is), comparing every 3 s.
    async fn start(ctx: &TestContext) -> Result<Self> {
        Self::start_with_resync(ctx, Duration::from_secs(3)).await
    }

    /// As `start`, comparing every `resync`.
    async fn start_with_resync(ctx: &TestContext, resync: Duration) -> Result<Self> {
        ferry_runtime::install_crds(&ctx.client(), "ferry-controller-test").await?;
        let mut project = AppProject::default_project(ctx.namespace());
        project.spec.source_repos.push(fixture_source_repos());
        ctx.api::<AppProject>()
            .create(&PostParams::default(), &project)
            .await
            .context("creating the default project")?;
        let cache = tempfile::tempdir()?;
        let mut settings = ControllerSettings {
            namespace: ctx.namespace().to_string(),
            resync,
            resync_jitter: Duration::ZERO,
            git_root: cache.path().join("git"),
            ..ControllerSettings::default()
        };
        settings.render.work_dir = cache.path().join("render");
        let lag = WatchLag::default();
        let config = kube::Config::from_custom_kubeconfig(
            Kubeconfig::read_from(ctx.kubeconfig())?,
            &KubeConfigOptions::default(),
        )
        .await?;
        let client = kube::client::ClientBuilder::try_from(config)?
            .with_layer(&lag)
            .build();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(ferry_controller::run(
            client,
            settings,
            Arc::new(Metrics::default()),
            async {
                let _ = stopped.await;
            },
        ));
        Ok(Self {
            stop: Some(stop),
            task: Some(task),
            lag,
            _cache: cache,
        })
    }

    /// Stops the controller; an error it ended with fails the test.
    async fn stop(mut self) -> Result<()> {
        let _ = self.stop.take().map(|stop| stop.send(()));
        let task = self.task.take().expect("stopped once");
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .context("the controller did not stop")??
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// One test's app of `repo`'s `app` directory: named after the test's namespace, since
/// controllers of other tests see the same cluster and prune what an app of their own name
/// tracks.
struct App {
    api: Api<Application>,
    name: String,
}

impl App {
    async fn create(ctx: &TestContext, repo: &GitRepo, sync_policy: Value) -> Result<Self> {
        Self::create_named(ctx, repo, "web", "app", sync_policy).await
    }

    /// An app `<prefix>-<namespace>` of `repo`'s directory `path`.
    async fn create_named(
        ctx: &TestContext,
        repo: &GitRepo,
        prefix: &str,
        path: &str,
        sync_policy: Value,
    ) -> Result<Self> {
        let name = format!("{prefix}-{}", ctx.namespace());
        let app: Application = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": ctx.namespace()},
            "spec": {
                "project": "default",
                "source": {"repoURL": repo.file_url(), "path": path, "targetRevision": "HEAD"},
                "destination": {"server": "https://kubernetes.default.svc",
                                "namespace": ctx.namespace()},
                "syncPolicy": sync_policy
            }
        }))?;
        let api = ctx.api::<Application>();
        api.create(&PostParams::default(), &app).await?;
        Ok(Self { api, name })
    }

    /// Waits (up to `limit`) until the app's status satisfies `done`, naming `what` otherwise.
    async fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        done: impl Fn(&Application) -> bool,
    ) -> Result<Application> {
        let deadline = Instant::now() + limit;
        loop {
            let app = self.api.get(&self.name).await?;
            if done(&app) {
                return Ok(app);
            }
            if Instant::now() > deadline {
                bail!("app {} never {what}; status: {:?}", self.name, app.status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

const SYNC_LIMIT: Duration = Duration::from_secs(120);

fn synced_and_healthy(app: &Application) -> bool {
    app.status.as_ref().is_some_and(|s| {
        s.sync.status == SyncStatusCode::Synced && s.health.status == HealthStatusCode::Healthy
    })
}

fn sync_status(app: &Application) -> Option<SyncStatusCode> {
    app.status.as_ref().map(|s| s.sync.status)
}

fn health(app: &Application) -> Option<HealthStatusCode> {
    app.status.as_ref().map(|s| s.health.status)
}

async fn set_color(ctx: &TestContext, color: &str) -> Result<()> {
    ctx.api::<ConfigMap>()
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"color": color}})),
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn an_automated_app_is_synced_and_healthy() -> Result<()> {
    let ctx = TestContext::new().await?;
    let repo = GitRepo::new()?;
    repo.write("app/settings.yaml", CONFIG_MAP)?;
    let revision = repo.commit("a ConfigMap")?;
    let controller = Controller::start(&ctx).await?;
    let automated = json!({"automated": {"prune": true, "selfHeal": true}});
    let app = App::create(&ctx, &repo, automated).await?;

    let app = app
        .wait_for("Synced and Healthy", SYNC_LIMIT, synced_and_healthy)
        .await?;
    let status = app.status.expect("a status");
    assert_eq!(status.sync.revision, revision);
    assert_eq!(status.resources.len(), 1, "{:?}", status.resources);
    let config_map = ctx.api::<ConfigMap>().get("settings").await?;
    assert_eq!(config_map.data.unwrap_or_default()["color"], "blue");
    controller.stop().await
}

#[tokio::test]
async fn a_source_that_does_not_render_is_a_comparison_error_and_prunes_nothing() -> Result<()> {
    let ctx = TestContext::new().await?;
    let repo = GitRepo::new()?;
    repo.write("app/settings.yaml", CONFIG_MAP)?;
    repo.commit("a ConfigMap")?;
    let controller = Controller::start(&ctx).await?;
    let automated = json!({"automated": {"prune": true, "selfHeal": true}});
    let app = App::create(&ctx, &repo, automated).await?;
    app.wait_for("Synced and Healthy", SYNC_LIMIT, synced_and_healthy)
        .await?;

    // The ConfigMap's file replaced by YAML that does not parse: nothing is desired any more
    // only because rendering failed, so the synced ConfigMap must stay.
    repo.write(
        "app/settings.yaml",
        "kind: ConfigMap\nmetadata: [unclosed\n",
    )?;
    repo.commit("broken YAML")?;
    let reported = app
        .wait_for("reported a ComparisonError", SYNC_LIMIT, |app| {
            app.status
                .as_ref()
                .and_then(|s| s.condition(COMPARISON_ERROR))
                .is_some()
        })
        .await?;
    let status = reported.status.expect("a status");
    let message = &status.condition(COMPARISON_ERROR).unwrap().message;
    assert!(message.contains("settings.yaml"), "{message}");
    // Several resync periods later the ConfigMap is still there and the error still reported.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let status = app.api.get(&app.name).await?.status.expect("a status");
    assert!(status.condition(COMPARISON_ERROR).is_some(), "{status:?}");
    let config_map = ctx.api::<ConfigMap>().get("settings").await?;
    assert_eq!(config_map.data.unwrap_or_default()["color"], "blue");
    controller.stop().await
}

/// How far the controller's view of its apps trails in the next test: far longer than two
/// reconciles take, so both see the app as it was before either wrote.
const LAG: Duration = Duration::from_secs(8);

/// argocd-cm's health check for ConfigMaps in the next test: red is on its way, any other
/// color healthy.
const COLOR_HEALTH: &str = r#"hs = {status = "Healthy"}
if obj.data ~= nil and obj.data.color == "red" then
  hs = {status = "Progressing", message = "turning red"}
end
return hs"#;

/// A reconcile whose view still shows the status from before the controller's last write, as
/// the parent of an app of apps saw it: health goes Healthy -> Progressing (written, not yet in
/// the view) -> Healthy, while the app stays OutOfSync. The last status must be written whole
/// although its health equals the view's: a patch made from the view alone would leave the
/// written Progressing in place, and the controller, having written this status as far as it
/// knows, would not write it again.
#[tokio::test]
async fn a_status_is_written_whole_when_the_view_trails_the_last_write() -> Result<()> {
    let ctx = TestContext::new().await?;
    let settings: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "argocd-cm"},
        "data": {"resource.customizations.health.ConfigMap": COLOR_HEALTH}
    }))?;
    ctx.api::<ConfigMap>()
        .create(&PostParams::default(), &settings)
        .await?;
    let repo = GitRepo::new()?;
    repo.write("app/settings.yaml", CONFIG_MAP)?;
    repo.commit("a ConfigMap")?;
    let controller = Controller::start(&ctx).await?;
    // Automated without self-heal: a live change at the synced revision is reported, not undone.
    let app = App::create(&ctx, &repo, json!({"automated": {"prune": true}})).await?;
    app.wait_for("synced once, Synced and Healthy", SYNC_LIMIT, |app| {
        synced_and_healthy(app)
            && app
                .status
                .as_ref()
                .and_then(|s| s.operation_state.as_ref())
                .is_some_and(|o| o.phase == OperationPhase::Succeeded)
    })
    .await?;
    // Let the view catch up with the sync's last writes, then hold it there.
    tokio::time::sleep(Duration::from_secs(2)).await;
    controller.lag.set(LAG);

    let changed = Instant::now();
    set_color(&ctx, "red").await?;
    app.wait_for("Progressing", LAG / 2, |app| {
        health(app) == Some(HealthStatusCode::Progressing)
    })
    .await?;
    set_color(&ctx, "green").await?;
    let second_change = changed.elapsed();
    assert!(
        second_change < LAG / 2,
        "the change took {second_change:?}, the view may have caught up"
    );

    // Well before the controller would take its view as someone else's change (30 s).
    let healthy = app
        .wait_for("Healthy again", LAG + Duration::from_secs(10), |app| {
            health(app) == Some(HealthStatusCode::Healthy)
        })
        .await?;
    assert_eq!(sync_status(&healthy), Some(SyncStatusCode::OutOfSync));
    assert!(
        controller.lag.held_back() > 0,
        "no Application watch event was held back"
    );
    controller.stop().await
}
