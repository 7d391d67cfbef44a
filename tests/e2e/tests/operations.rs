//! Syncs as a person runs them: hooks and waves in order, a project that says no, a sync window
//! that holds syncs, a rollback, a controller killed in the middle of a sync, and deleting an app
//! with its resources.

use std::collections::BTreeMap;

use anyhow::Result;
use ferry_e2e::{Story, is, job_hook};
use ferry_types::AppProject;
use ferry_types::application::{OperationPhase, ResultCode, SyncPhase, condition};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Service};
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};

fn config_map(name: &str, wave: i32) -> String {
    format!(
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  annotations: {{argocd.argoproj.io/sync-wave: \"{wave}\"}}
data: {{wave: \"{wave}\"}}
"
    )
}

#[tokio::test]
async fn hooks_and_waves_run_in_order() -> Result<()> {
    let mut story = Story::new().await?;
    story.repo.write(
        "ordered/pre.yaml",
        job_hook("pre", "PreSync", "HookSucceeded"),
    )?;
    story
        .repo
        .write("ordered/first.yaml", config_map("first", -1))?;
    story
        .repo
        .write("ordered/middle.yaml", config_map("middle", 0))?;
    story
        .repo
        .write("ordered/last.yaml", config_map("last", 2))?;
    story.repo.write(
        "ordered/post.yaml",
        job_hook("post", "PostSync", "HookFailed"),
    )?;
    story.repo.commit("ordered app")?;
    story.start_controller()?;
    let app = story.app_name("ordered");
    story.create_app(&app, "ordered", &[])?;
    story
        .wait_app(&app, "OutOfSync before any sync", is::out_of_sync)
        .await?;

    story.ferry(&["app", "sync", &app, "--timeout", "120"])?;
    let synced = story
        .wait_app(&app, "the sync finished", is::operation_finished)
        .await?;
    let state = synced.status.unwrap().operation_state.unwrap();
    assert_eq!(state.phase, OperationPhase::Succeeded, "{}", state.message);
    let order: Vec<String> = state
        .sync_result
        .unwrap()
        .resources
        .iter()
        .map(|r| format!("{:?}:{}", r.sync_phase.unwrap(), r.name))
        .collect();
    assert_eq!(
        order,
        [
            "PreSync:pre",
            "Sync:first",
            "Sync:middle",
            "Sync:last",
            "PostSync:post"
        ]
    );
    // HookSucceeded removed the PreSync Job; HookFailed kept the PostSync one.
    let jobs = story.ctx.api::<Job>();
    story
        .eventually("the PreSync hook is deleted", || async {
            Ok(jobs.get_opt("pre").await?.is_none())
        })
        .await?;
    assert!(jobs.get_opt("post").await?.is_some());
    story.wait_app(&app, "Synced", is::synced).await?;
    Ok(())
}

#[tokio::test]
async fn a_project_that_denies_the_destination_stops_the_app() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    // The story's repository is on disk: projects must list file:// repositories themselves.
    story.ferry(&[
        "proj",
        "create",
        "restricted",
        "--src",
        "*",
        "--src",
        &story.repo.file_url(),
        "--dest",
        "https://kubernetes.default.svc,somewhere-else",
    ])?;
    let app = story.app_name("denied");
    // The CLI refuses it up front, as Argo CD's API does...
    let refused = story.ferry_output(&[
        "app",
        "create",
        &app,
        "--repo",
        &story.repo.file_url(),
        "--path",
        "guestbook",
        "--dest-server",
        "https://kubernetes.default.svc",
        "--dest-namespace",
        story.namespace(),
        "--project",
        "restricted",
    ])?;
    assert!(!refused.status.success());
    // ...but an Application applied as a manifest reaches the controller, which must refuse it.
    let manifest: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": app},
        "spec": {
            "project": "restricted",
            "source": {"repoURL": story.repo.file_url(), "path": "guestbook"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": story.namespace()},
            "syncPolicy": {"automated": {"prune": true}}
        }
    }))?;
    story
        .apps()
        .create(&PostParams::default(), &manifest)
        .await?;
    let message = story
        .wait_condition(&app, condition::INVALID_SPEC_ERROR)
        .await?;
    assert!(
        message.contains("do not match any of the allowed destinations"),
        "{message}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    assert!(
        story
            .ctx
            .api::<Service>()
            .get_opt("guestbook")
            .await?
            .is_none()
    );

    // A manual sync is refused too.
    let output = story.ferry_output(&["app", "sync", &app, "--timeout", "60"])?;
    assert!(!output.status.success());
    assert!(
        story
            .ctx
            .api::<Service>()
            .get_opt("guestbook")
            .await?
            .is_none()
    );

    // `*` permits any remote repository, never one on the controller's disk (another
    // tenant's, or a Git mirror): the CLI and the controller both say why.
    story.ferry(&[
        "proj",
        "create",
        "anything-remote",
        "--src",
        "*",
        "--dest",
        &format!("https://kubernetes.default.svc,{}", story.namespace()),
    ])?;
    let local = story.app_name("local");
    let refused = story.ferry_output(&[
        "app",
        "create",
        &local,
        "--repo",
        &story.repo.file_url(),
        "--path",
        "guestbook",
        "--dest-server",
        "https://kubernetes.default.svc",
        "--dest-namespace",
        story.namespace(),
        "--project",
        "anything-remote",
    ])?;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!(
            "application repo {} is not permitted in project 'anything-remote': file:// \
             repositories must be listed explicitly in sourceRepos",
            story.repo.file_url()
        )),
        "{stderr}"
    );
    let manifest: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": local},
        "spec": {
            "project": "anything-remote",
            "source": {"repoURL": story.repo.file_url(), "path": "guestbook"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": story.namespace()},
            "syncPolicy": {"automated": {"prune": true}}
        }
    }))?;
    story
        .apps()
        .create(&PostParams::default(), &manifest)
        .await?;
    let message = story
        .wait_condition(&local, condition::INVALID_SPEC_ERROR)
        .await?;
    assert_eq!(
        message,
        format!(
            "application repo {} is not permitted in project 'anything-remote': file:// \
             repositories must be listed explicitly in sourceRepos",
            story.repo.file_url()
        )
    );
    Ok(())
}

#[tokio::test]
async fn rollback_returns_to_a_recorded_revision() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    let app = story.app_name("rollback");
    story.create_app(&app, "guestbook", &[])?;
    let first = story.repo.head()?;
    story.ferry(&["app", "sync", &app, "--timeout", "120"])?;

    story.repo.write(
        "guestbook/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: guestbook-config\ndata:\n  greeting: hola\n",
    )?;
    let second = story.repo.commit("Spanish greeting")?;
    story
        .wait_app(&app, "OutOfSync at the second commit", |a| {
            is::at_revision(&second)(a) && is::out_of_sync(a)
        })
        .await?;
    story.ferry(&["app", "sync", &app, "--timeout", "120"])?;
    let configmaps = story.ctx.api::<ConfigMap>();
    assert_eq!(
        configmaps.get("guestbook-config").await?.data.unwrap()["greeting"],
        "hola"
    );

    let history = story.app(&app).await?.status.unwrap().history;
    let ids: Vec<(i64, String)> = history.iter().map(|h| (h.id, h.revision.clone())).collect();
    assert_eq!(ids, [(0, first.clone()), (1, second.clone())]);

    story.ferry(&["app", "rollback", &app, "0", "--timeout", "120"])?;
    assert_eq!(
        configmaps.get("guestbook-config").await?.data.unwrap()["greeting"],
        "hello"
    );
    let after = story
        .wait_app(&app, "the rollback recorded", is::operation_finished)
        .await?;
    let history = after.status.unwrap().history;
    assert_eq!(history.len(), 3);
    assert_eq!(history[2].revision, first);
    // Git still says "hola": the app is OutOfSync until someone syncs forward again.
    story
        .wait_app(&app, "OutOfSync after the rollback", is::out_of_sync)
        .await?;
    Ok(())
}

#[tokio::test]
async fn syncing_again_at_the_same_revision_runs_again() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    let app = story.app_name("resync");
    story.create_app(&app, "guestbook", &[])?;
    story.ferry(&["app", "sync", &app, "--timeout", "120"])?;
    let first = story.app(&app).await?.status.unwrap().history;
    assert_eq!(first.len(), 1);

    // The same request again (same revision, same options): a new sync, as in Argo CD — not
    // the finished one's leftover.
    story.ferry(&["app", "sync", &app, "--timeout", "120"])?;
    let after = story
        .wait_app(&app, "the second sync recorded", |a| {
            a.status.as_ref().is_some_and(|s| s.history.len() == 2)
        })
        .await?;
    let history = after.status.unwrap().history;
    assert_eq!(history[1].revision, history[0].revision);
    Ok(())
}

#[tokio::test]
async fn a_controller_killed_mid_sync_resumes_without_redoing_work() -> Result<()> {
    let mut story = Story::new().await?;
    let gate = format!("ferry.dev/gate-{}", story.namespace());
    story
        .repo
        .write("slow/hook.yaml", job_hook("once", "PreSync", "HookFailed"))?;
    story.repo.write("slow/a.yaml", config_map("early", 0))?;
    // Wave 1 cannot become healthy until a node carries the gate label.
    story.repo.write(
        "slow/deployment.yaml",
        format!(
            "apiVersion: apps/v1
kind: Deployment
metadata:
  name: gated
  annotations: {{argocd.argoproj.io/sync-wave: \"1\"}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: gated}}}}
  template:
    metadata: {{labels: {{app: gated}}}}
    spec:
      nodeSelector: {{\"{gate}\": \"open\"}}
      tolerations: [{{operator: Exists}}]
      containers: [{{name: c, image: nginx}}]
"
        ),
    )?;
    story.repo.write("slow/z.yaml", config_map("late", 2))?;
    story.repo.commit("gated app")?;
    story.start_controller()?;
    let app = story.app_name("gated");
    story.create_app(&app, "slow", &[])?;
    story.wait_app(&app, "OutOfSync", is::out_of_sync).await?;
    story.ferry(&["app", "sync", &app, "--async"])?;

    // The sync is waiting for the gated Deployment: the hook ran, wave 0 is applied.
    story
        .wait_app(&app, "the sync waiting on wave 1", |a| {
            is::operation_phase(a) == Some(OperationPhase::Running)
                && a.status
                    .as_ref()
                    .and_then(|s| s.operation_state.as_ref())
                    .and_then(|o| o.sync_result.as_ref())
                    .is_some_and(|r| r.resources.iter().any(|x| x.name == "gated"))
        })
        .await?;
    let jobs = story.ctx.api::<Job>();
    let configmaps = story.ctx.api::<ConfigMap>();
    let hook_uid = jobs.get("once").await?.uid();
    let early_version = configmaps.get("early").await?.resource_version();
    assert!(configmaps.get_opt("late").await?.is_none());

    story.kill_controller()?;
    open_gate(&story, &gate).await?;
    story.start_controller()?;

    let done = story
        .wait_app(&app, "the resumed sync finished", is::operation_finished)
        .await?;
    let status = done.status.unwrap();
    let state = status.operation_state.unwrap();
    assert_eq!(state.phase, OperationPhase::Succeeded, "{}", state.message);
    assert!(configmaps.get_opt("late").await?.is_some(), "wave 2 ran");
    assert_eq!(
        jobs.get("once").await?.uid(),
        hook_uid,
        "the hook was not run again"
    );
    assert_eq!(
        configmaps.get("early").await?.resource_version(),
        early_version,
        "wave 0 was not changed again"
    );
    assert_eq!(status.history.len(), 1);
    let results: BTreeMap<String, (Option<ResultCode>, Option<SyncPhase>)> = state
        .sync_result
        .unwrap()
        .resources
        .into_iter()
        .map(|r| (r.name, (r.status, r.sync_phase)))
        .collect();
    assert_eq!(results.len(), 4, "{results:?}");
    close_gate(&story, &gate).await?;
    Ok(())
}

async fn open_gate(story: &Story, gate: &str) -> Result<()> {
    let nodes: Api<Node> = Api::all(story.ctx.client());
    let node = nodes.list(&Default::default()).await?.items.remove(0);
    nodes
        .patch(
            &node.name_any(),
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {gate: "open"}}})),
        )
        .await?;
    Ok(())
}

async fn close_gate(story: &Story, gate: &str) -> Result<()> {
    let nodes: Api<Node> = Api::all(story.ctx.client());
    for node in nodes.list(&Default::default()).await?.items {
        nodes
            .patch(
                &node.name_any(),
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"metadata": {"labels": {gate: null}}})),
            )
            .await?;
    }
    Ok(())
}

#[tokio::test]
async fn deleting_an_app_with_the_finalizer_deletes_its_resources() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    let app = story.app_name("doomed");
    story.create_app(&app, "guestbook", &["--sync-policy", "automated"])?;
    story
        .wait_app(&app, "Synced and Healthy", is::synced_and_healthy)
        .await?;
    // An object in the namespace that the app does not track must survive.
    let configmaps = story.ctx.api::<ConfigMap>();
    configmaps
        .create(
            &Default::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "bystander"}}))?,
        )
        .await?;

    story.ferry(&["app", "delete", &app, "--yes", "--wait"])?;
    let deployments = story.ctx.api::<Deployment>();
    story
        .eventually("the app and its resources are gone", || async {
            Ok(story.apps().get_opt(&app).await?.is_none()
                && deployments.get_opt("guestbook").await?.is_none()
                && configmaps.get_opt("guestbook-config").await?.is_none())
        })
        .await?;
    assert!(configmaps.get_opt("bystander").await?.is_some());
    Ok(())
}

#[tokio::test]
async fn orphaned_resources_are_reported_when_the_project_asks() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    let target = format!("{}-orphans", story.namespace());
    story.ferry(&[
        "proj",
        "create",
        "watchful",
        "--src",
        "*",
        "--src",
        &story.repo.file_url(),
        "--dest",
        "https://kubernetes.default.svc,*",
        "--orphaned-resources",
        "--orphaned-resources-warn",
    ])?;
    let app = story.app_name("watched");
    story.ferry(&[
        "app",
        "create",
        &app,
        "--repo",
        &story.repo.file_url(),
        "--path",
        "guestbook",
        "--dest-server",
        "https://kubernetes.default.svc",
        "--dest-namespace",
        &target,
        "--project",
        "watchful",
        "--sync-policy",
        "automated",
        "--sync-option",
        "CreateNamespace=true",
    ])?;
    story
        .wait_app(&app, "Synced and Healthy", is::synced_and_healthy)
        .await?;
    assert!(!is::condition(condition::ORPHANED_RESOURCE_WARNING)(
        &story.app(&app).await?
    ));

    // Something nobody declared appears next to the app's resources.
    let stray: Api<ConfigMap> = Api::namespaced(story.ctx.client(), &target);
    stray
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "stray"}}))?,
        )
        .await?;
    let message = story
        .wait_condition(&app, condition::ORPHANED_RESOURCE_WARNING)
        .await?;
    assert_eq!(message, "Application has 1 orphaned resources");
    // A warning, not an error: the app stays Synced.
    assert!(is::synced(&story.app(&app).await?));

    stray.delete("stray", &Default::default()).await?;
    story
        .wait_app(&app, "the warning cleared", |a| {
            !is::condition(condition::ORPHANED_RESOURCE_WARNING)(a)
        })
        .await?;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(story.ctx.client());
    namespaces.delete(&target, &Default::default()).await?;
    Ok(())
}

/// An automated sync that fails (its ConfigMap's namespace does not exist yet) is retried with
/// the app's backoff, and succeeds once the cause is gone — without anyone syncing again.
#[tokio::test]
async fn a_failed_sync_is_retried_with_backoff_until_it_succeeds() -> Result<()> {
    let mut story = Story::new().await?;
    let later = format!("{}-later", story.namespace());
    story.repo.write(
        "retrying/settings.yaml",
        format!(
            "apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: {later}}}
data: {{k: v}}
"
        ),
    )?;
    story
        .repo
        .commit("a ConfigMap for a namespace still to come")?;
    let app = story.app_name("retrying");
    story.create_app(&app, "retrying", &[])?;
    story
        .apps()
        .patch(
            &app,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"syncPolicy": {
                "automated": {},
                "retry": {"limit": 10,
                    "backoff": {"duration": "1s", "factor": 2, "maxDuration": "2s"}}}}})),
        )
        .await?;
    story.start_controller()?;

    let retrying = story
        .wait_app(&app, "the failed sync is being retried", |a| {
            a.status
                .as_ref()
                .and_then(|s| s.operation_state.as_ref())
                .is_some_and(|o| o.retry_count >= 1 && o.message.starts_with("Retrying"))
        })
        .await?;
    let state = retrying.status.unwrap().operation_state.unwrap();
    assert_eq!(state.phase, OperationPhase::Running, "{}", state.message);
    // duration * factor^(n-1), capped at maxDuration.
    let wait = if state.retry_count == 1 { "1s" } else { "2s" };
    let expected = format!("Retrying attempt #{} in {wait}", state.retry_count);
    assert!(state.message.starts_with(&expected), "{}", state.message);

    let namespaces = Api::<k8s_openapi::api::core::v1::Namespace>::all(story.ctx.client());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": later}}))?,
        )
        .await?;
    let done = story
        .wait_app(&app, "a retry succeeded", is::operation_finished)
        .await;
    let configmaps = Api::<ConfigMap>::namespaced(story.ctx.client(), &later);
    let settings = configmaps.get_opt("settings").await;
    namespaces.delete(&later, &Default::default()).await?;
    let state = done?.status.unwrap().operation_state.unwrap();
    assert_eq!(state.phase, OperationPhase::Succeeded, "{}", state.message);
    assert!(state.retry_count >= 1);
    assert!(settings?.is_some());
    Ok(())
}

/// Sets the default project's sync windows.
async fn set_sync_windows(story: &Story, windows: serde_json::Value) -> Result<()> {
    story
        .ctx
        .api::<AppProject>()
        .patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"syncWindows": windows}})),
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_sync_window_holds_syncs_until_it_lets_them_through() -> Result<()> {
    let mut story = Story::new().await?;
    // A deny window that opens every minute for an hour: closed to syncs all the time.
    let deny = |manual_sync: bool| {
        serde_json::json!([{
            "kind": "deny", "schedule": "* * * * *", "duration": "1h",
            "applications": ["*"], "manualSync": manual_sync,
        }])
    };
    set_sync_windows(&story, deny(false)).await?;
    story.start_controller()?;
    let app = story.app_name("windowed");
    story.create_app(&app, "guestbook", &["--sync-policy", "automated"])?;
    story
        .wait_app(&app, "compared, OutOfSync", is::out_of_sync)
        .await?;

    // Automation waits for the window...
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let services = story.ctx.api::<Service>();
    assert!(services.get_opt("guestbook").await?.is_none());
    assert!(is::operation_phase(&story.app(&app).await?).is_none());
    // ...and a person asking is told why, as Argo CD's API server tells them.
    let refused = story.ferry_output(&["app", "sync", &app, "--timeout", "60"])?;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("cannot sync: blocked by sync window"),
        "{stderr}"
    );

    // A window with manualSync lets people through, not automation.
    set_sync_windows(&story, deny(true)).await?;
    story.ferry(&["app", "sync", &app, "--timeout", "120"])?;
    assert!(services.get_opt("guestbook").await?.is_some());
    story.repo.write(
        "guestbook/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: guestbook-config\ndata:\n  greeting: hola\n",
    )?;
    let second = story.repo.commit("Spanish greeting")?;
    story
        .wait_app(&app, "OutOfSync with the second commit", |a| {
            is::out_of_sync(a) && is::at_revision(&second)(a)
        })
        .await?;
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let configmaps = story.ctx.api::<ConfigMap>();
    assert_eq!(
        configmaps.get("guestbook-config").await?.data.unwrap()["greeting"],
        "hello",
        "automated sync held by the window"
    );

    // The window goes: automation catches up on its own.
    set_sync_windows(&story, serde_json::json!([])).await?;
    story
        .wait_app(&app, "synced to the second commit", |a| {
            is::synced(a) && is::at_revision(&second)(a)
        })
        .await?;
    assert_eq!(
        configmaps.get("guestbook-config").await?.data.unwrap()["greeting"],
        "hola"
    );
    Ok(())
}
