//! What the controller keeps per app (comparisons, written statuses, backoffs, ended
//! operations, live-change generations, per-app metric series) follows the apps: a deleted
//! app's is forgotten. Read from `ferry_app_state_entries` and `argocd_app_sync_total`, with
//! `ferry_controller::run` as a library against the shared sandbox.

use ferry_runtime::metrics::Exposition;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use ferry_controller::{ControllerSettings, Metrics};
use ferry_testkit::git::{GitRepo, fixture_source_repos};
use ferry_testkit::kube::TestContext;
use ferry_types::application::{HealthStatusCode, SyncStatusCode};
use ferry_types::{AppProject, Application};
use kube::api::{Api, PostParams};
use serde_json::json;

/// An app named `name` of `repo`'s directory of the same name, synced automatically.
async fn create_app(ctx: &TestContext, repo: &GitRepo, name: &str) -> Result<()> {
    let app: Application = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": ctx.namespace()},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo.file_url(), "path": name, "targetRevision": "HEAD"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": ctx.namespace()},
            "syncPolicy": {"automated": {"prune": true, "selfHeal": true}}
        }
    }))?;
    ctx.api::<Application>()
        .create(&PostParams::default(), &app)
        .await?;
    Ok(())
}

async fn wait_synced(apps: &Api<Application>, name: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let app = apps.get(name).await?;
        let done = app.status.as_ref().is_some_and(|s| {
            s.sync.status == SyncStatusCode::Synced && s.health.status == HealthStatusCode::Healthy
        });
        if done {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("app {name} never Synced and Healthy: {:?}", app.status);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A scrape: `ferry_app_state_entries` by kind, and the apps named in `argocd_app_sync_total`.
struct AppState {
    entries: Vec<(String, u64)>,
    synced: Vec<String>,
}

impl AppState {
    fn scrape(metrics: &Metrics) -> Result<Self> {
        let text = metrics.render()?;
        let mut state = Self {
            entries: Vec::new(),
            synced: Vec::new(),
        };
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("ferry_app_state_entries{kind=\"") {
                let (kind, count) = rest.split_once("\"} ").context("a gauge line")?;
                state.entries.push((kind.to_string(), count.parse()?));
            } else if line.starts_with("argocd_app_sync_total{") {
                let name = line.split("name=\"").nth(1).context("a name label")?;
                let name = name.split('"').next().unwrap_or_default();
                state.synced.push(name.to_string());
            }
        }
        Ok(state)
    }

    fn count(&self, kind: &str) -> Option<u64> {
        self.entries
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, n)| *n)
    }
}

#[tokio::test]
async fn a_deleted_app_leaves_nothing_behind_in_the_controller() -> Result<()> {
    let ctx = TestContext::new().await?;
    ferry_runtime::install_crds(&ctx.client(), "ferry-controller-test").await?;
    let project: AppProject = serde_json::from_value(json!({
        "metadata": {"name": "default", "namespace": ctx.namespace()},
        "spec": {"sourceRepos": [fixture_source_repos()],
                 "destinations": [{"server": "*", "namespace": ctx.namespace()}]}
    }))?;
    ctx.api::<AppProject>()
        .create(&PostParams::default(), &project)
        .await?;
    let repo = GitRepo::new()?;
    for (app, color) in [("web", "blue"), ("kept", "red")] {
        repo.write(
            &format!("{app}/settings.yaml"),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {app}}}\ndata: {{color: {color}}}\n"
            ),
        )?;
    }
    repo.commit("two apps' ConfigMaps")?;

    let git_root = tempfile::tempdir()?;
    let settings = ControllerSettings {
        namespace: ctx.namespace().to_string(),
        // Long enough that the periodic sweep does not run during the test: the deletion's
        // own watch event must be what forgets the app.
        resync: Duration::from_secs(600),
        resync_jitter: Duration::ZERO,
        git_root: git_root.path().to_path_buf(),
        ..ControllerSettings::default()
    };
    let metrics = Arc::new(Metrics::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(ferry_controller::run(
        ctx.client(),
        settings,
        metrics.clone(),
        async {
            let _ = stopped.await;
        },
    ));

    let apps = ctx.api::<Application>();
    for name in ["web", "kept"] {
        create_app(&ctx, &repo, name).await?;
    }
    for name in ["web", "kept"] {
        wait_synced(&apps, name).await?;
    }
    // Both apps were compared, given a status and synced once.
    let before = AppState::scrape(&metrics)?;
    for kind in ["comparisons", "written_statuses", "sync_series"] {
        assert_eq!(before.count(kind), Some(2), "{kind}: {:?}", before.entries);
    }
    assert!(
        before.synced.iter().any(|n| n == "web"),
        "{:?}",
        before.synced
    );

    apps.delete("web", &Default::default()).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let after = AppState::scrape(&metrics)?;
        // Only the other app's state remains: at most one entry of each kind, and its
        // comparison and sync series.
        let forgotten = after.entries.iter().all(|(_, n)| *n <= 1)
            && after.count("comparisons") == Some(1)
            && !after.synced.iter().any(|n| n == "web");
        if forgotten {
            assert!(
                after.synced.iter().any(|n| n == "kept"),
                "{:?}",
                after.synced
            );
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "the deleted app's state stayed: {:?}, sync series of {:?}",
                after.entries,
                after.synced
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(60), controller)
        .await
        .context("the controller did not stop")??
}
