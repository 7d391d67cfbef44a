//! The sync engine against a real control plane: waves and hooks in order, delete policies,
//! prune and PruneLast, the prune guard, dry runs, failures before any change, termination.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use ferry_health::HealthChecks;
use ferry_sync::{
    Engine, EngineSettings, OnApplied, PruneGuard, SyncOptionSet, SyncReport, SyncRequest,
};
use ferry_testkit::kube::TestContext;
use ferry_types::application::{HookType, OperationPhase, ResultCode, SyncPhase};
use ferry_types::tracking::TrackingMethod;
use futures::future::BoxFuture;
use http::{Method, Request};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tower::{Layer, Service};

async fn engine(ctx: &TestContext) -> Engine {
    let settings = EngineSettings {
        field_manager: "ferry-test".into(),
        poll_interval: Duration::from_millis(200),
    };
    Engine::new(ctx.client(), HealthChecks::new(), settings)
        .await
        .expect("engine")
}

fn request(ctx: &TestContext, app: &str, desired: Vec<Value>) -> SyncRequest {
    SyncRequest {
        app: app.into(),
        app_namespace: None,
        tracking: TrackingMethod::label(),
        namespace: ctx.namespace().into(),
        desired,
        live: Vec::new(),
        options: SyncOptionSet::default(),
        prune: false,
        dry_run: false,
        resources: None,
        out_of_sync: None,
        prune_guard: PruneGuard::default(),
        health_timeout: Some(Duration::from_secs(60)),
        waiting_since: None,
        previous: Vec::new(),
        run_id: String::new(),
        checkpoint: None,
        on_applied: None,
        managed_namespace: None,
        prune_confirmed: None,
    }
}

async fn run(engine: &Engine, request: SyncRequest) -> SyncReport {
    let (progress, _) = watch::channel(SyncReport::running());
    engine
        .sync(request, CancellationToken::new(), &progress)
        .await
}

fn config_map(name: &str, annotations: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "annotations": annotations}, "data": {"k": "v"}})
}

fn deployment(name: &str, wave: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "annotations": {"argocd.argoproj.io/sync-wave": wave}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
}

fn job_hook(name: &str, hook: &str, policy: &str) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "annotations": {
            "argocd.argoproj.io/hook": hook, "argocd.argoproj.io/hook-delete-policy": policy}},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}}})
}

/// Live objects tracked to `app` in the test namespace, as the controller would pass them.
async fn tracked_config_maps(ctx: &TestContext, app: &str) -> Vec<Value> {
    let api: Api<ConfigMap> = ctx.api();
    let list = api
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={app}")))
        .await
        .expect("list");
    list.items
        .into_iter()
        .map(|cm| {
            let mut value = serde_json::to_value(cm).unwrap();
            value["apiVersion"] = json!("v1");
            value["kind"] = json!("ConfigMap");
            value
        })
        .collect()
}

fn order(report: &SyncReport) -> Vec<String> {
    report
        .resources
        .iter()
        .map(|r| format!("{:?}:{}", r.sync_phase.unwrap(), r.name))
        .collect()
}

#[tokio::test]
async fn waves_and_hooks_run_in_order_with_delete_policies() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let engine = engine(&ctx).await;
    let desired = vec![
        deployment("backend", "1"),
        config_map("settings", json!({"argocd.argoproj.io/sync-wave": "-1"})),
        job_hook("migrate", "PreSync", "HookSucceeded"),
        deployment("frontend", "2"),
        job_hook("notify", "PostSync", "BeforeHookCreation"),
    ];
    let report = run(&engine, request(&ctx, "shop", desired.clone())).await;
    assert_eq!(
        report.phase,
        OperationPhase::Succeeded,
        "{}",
        report.message
    );
    assert_eq!(
        order(&report),
        [
            "PreSync:migrate",
            "Sync:settings",
            "Sync:backend",
            "Sync:frontend",
            "PostSync:notify"
        ]
    );
    let migrate = &report.resources[0];
    assert_eq!(migrate.hook_type, Some(HookType::PreSync));
    assert_eq!(migrate.hook_phase, Some(OperationPhase::Succeeded));

    // HookSucceeded removed the migration job; BeforeHookCreation keeps notify until next time.
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = ctx.api();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        jobs.get_opt("migrate")
            .await?
            .is_none_or(|j| j.metadata.deletion_timestamp.is_some())
    );
    let first_notify = jobs.get("notify").await?.metadata.uid;

    // The second sync recreates the PostSync hook (BeforeHookCreation) and leaves the rest as is.
    let report = run(&engine, request(&ctx, "shop", desired)).await;
    assert_eq!(
        report.phase,
        OperationPhase::Succeeded,
        "{}",
        report.message
    );
    let second_notify = jobs.get("notify").await?.metadata.uid;
    assert_ne!(first_notify, second_notify, "the hook was recreated");
    Ok(())
}

#[tokio::test]
async fn prune_removes_extras_in_reverse_waves_and_prune_last_at_the_end() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let engine = engine(&ctx).await;
    let all = vec![
        config_map("keep", json!({})),
        config_map("old-early", json!({"argocd.argoproj.io/sync-wave": "-1"})),
        config_map("old-late", json!({"argocd.argoproj.io/sync-wave": "3"})),
        config_map(
            "old-last",
            json!({"argocd.argoproj.io/sync-options": "PruneLast=true"}),
        ),
        config_map(
            "protected",
            json!({"argocd.argoproj.io/sync-options": "Prune=false"}),
        ),
    ];
    let report = run(&engine, request(&ctx, "pruner", all)).await;
    assert_eq!(
        report.phase,
        OperationPhase::Succeeded,
        "{}",
        report.message
    );

    // Without prune, extras are reported and left alone.
    let mut only_keep = request(&ctx, "pruner", vec![config_map("keep", json!({}))]);
    only_keep.live = tracked_config_maps(&ctx, "pruner").await;
    let report = run(&engine, only_keep.clone()).await;
    assert_eq!(
        report.phase,
        OperationPhase::Succeeded,
        "{}",
        report.message
    );
    assert!(
        report
            .resources
            .iter()
            .filter(|r| r.name != "keep")
            .all(|r| r.status == Some(ResultCode::PruneSkipped))
    );
    assert_eq!(tracked_config_maps(&ctx, "pruner").await.len(), 5);

    only_keep.prune = true;
    let report = run(&engine, only_keep).await;
    assert_eq!(
        report.phase,
        OperationPhase::Succeeded,
        "{}",
        report.message
    );
    let pruned: Vec<&str> = report
        .resources
        .iter()
        .filter(|r| r.status == Some(ResultCode::Pruned))
        .map(|r| r.name.as_str())
        .collect();
    // Reverse wave order: the wave-3 object goes first, the wave -1 one after it, PruneLast last.
    assert_eq!(pruned, ["old-late", "old-early", "old-last"]);
    let protected = report
        .resources
        .iter()
        .find(|r| r.name == "protected")
        .unwrap();
    assert_eq!(protected.status, Some(ResultCode::PruneSkipped));
    let left: Vec<String> = tracked_config_maps(&ctx, "pruner")
        .await
        .iter()
        .map(|cm| cm["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, ["keep", "protected"]);
    Ok(())
}

#[tokio::test]
async fn prune_guard_refuses_an_empty_desired_state_and_changes_nothing() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let engine = engine(&ctx).await;
    let report = run(
        &engine,
        request(
            &ctx,
            "guarded",
            vec![config_map("a", json!({})), config_map("b", json!({}))],
        ),
    )
    .await;
    assert_eq!(
        report.phase,
        OperationPhase::Succeeded,
        "{}",
        report.message
    );

    let mut empty = request(&ctx, "guarded", Vec::new());
    empty.live = tracked_config_maps(&ctx, "guarded").await;
    empty.prune = true;
    let report = run(&engine, empty.clone()).await;
    assert_eq!(report.phase, OperationPhase::Failed);
    assert!(
        report.message.contains("desired state is empty"),
        "{}",
        report.message
    );
    assert_eq!(
        tracked_config_maps(&ctx, "guarded").await.len(),
        2,
        "nothing was deleted"
    );

    let mut shrink = request(&ctx, "guarded", vec![config_map("a", json!({}))]);
    shrink.live = empty.live.clone();
    shrink.prune = true;
    shrink.prune_guard = PruneGuard {
        allow_empty: false,
        max_fraction: Some(0.25),
    };
    let report = run(&engine, shrink).await;
    assert_eq!(report.phase, OperationPhase::Failed);
    assert!(report.message.contains("1 of 2"), "{}", report.message);
    assert_eq!(tracked_config_maps(&ctx, "guarded").await.len(), 2);

    empty.prune_guard.allow_empty = true;
    let report = run(&engine, empty).await;
    assert_eq!(
        report.phase,
        OperationPhase::Succeeded,
        "{}",
        report.message
    );
    assert!(tracked_config_maps(&ctx, "guarded").await.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_bad_manifest_fails_the_dry_run_before_anything_changes() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let engine = engine(&ctx).await;
    let mut bad = deployment("broken", "5");
    bad["spec"]["replicas"] = json!("three");
    let report = run(
        &engine,
        request(&ctx, "careful", vec![config_map("first", json!({})), bad]),
    )
    .await;
    assert_eq!(report.phase, OperationPhase::Failed);
    assert!(
        report.message.contains("dry run") && report.message.contains("broken"),
        "{}",
        report.message
    );
    let failed = report
        .resources
        .iter()
        .find(|r| r.name == "broken")
        .unwrap();
    assert_eq!(failed.status, Some(ResultCode::SyncFailed));
    let configmaps: Api<ConfigMap> = ctx.api();
    assert!(
        configmaps.get_opt("first").await?.is_none(),
        "nothing was applied"
    );

    let mut dry = request(&ctx, "careful", vec![config_map("first", json!({}))]);
    dry.dry_run = true;
    let report = run(&engine, dry).await;
    assert_eq!(
        report.phase,
        OperationPhase::Succeeded,
        "{}",
        report.message
    );
    assert!(
        configmaps.get_opt("first").await?.is_none(),
        "a dry run changes nothing"
    );
    Ok(())
}

/// Records when it is dropped.
struct Done(Arc<Mutex<Vec<String>>>, String);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.lock().unwrap().push(format!("done {}", self.1));
    }
}

/// Every object the sync applies is told with the server's answer, the live object as the
/// apply left it (what a comparison can take as the prediction of applying it again); dry runs
/// are not told.
#[tokio::test]
async fn applied_objects_are_told_with_the_servers_answer() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let engine = engine(&ctx).await;
    let told = Arc::new(Mutex::new(Vec::new()));
    let events = Arc::new(Mutex::new(Vec::new()));
    let on_applied = {
        let (told, answered, started) = (told.clone(), events.clone(), events.clone());
        OnApplied::new(move |sent: &Value, answer: &Value| {
            told.lock().unwrap().push((sent.clone(), answer.clone()));
            answered
                .lock()
                .unwrap()
                .push(format!("answer {}", sent["metadata"]["name"]));
        })
        .with_start(move |sent: &Value| {
            let name = sent["metadata"]["name"].to_string();
            started.lock().unwrap().push(format!("start {name}"));
            Box::new(Done(started.clone(), name))
        })
    };
    let desired = vec![config_map("one", json!({})), config_map("two", json!({}))];
    let mut dry = request(&ctx, "told", desired.clone());
    dry.dry_run = true;
    dry.on_applied = Some(on_applied.clone());
    let report = run(&engine, dry).await;
    assert_eq!(
        report.phase,
        OperationPhase::Succeeded,
        "{}",
        report.message
    );
    assert!(told.lock().unwrap().is_empty(), "dry runs are not told");

    let mut real = request(&ctx, "told", desired);
    real.on_applied = Some(on_applied);
    let report = run(&engine, real).await;
    assert_eq!(
        report.phase,
        OperationPhase::Succeeded,
        "{}",
        report.message
    );
    let told = told.lock().unwrap().clone();
    // Told as each answer comes: the two are applied at once.
    let mut names: Vec<&str> = told
        .iter()
        .map(|(sent, _)| sent["metadata"]["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["one", "two"]);
    // Each apply is told as it starts, and what that returned is dropped after its answer.
    let events = events.lock().unwrap().clone();
    for name in ["\"one\"", "\"two\""] {
        let at = |event: &str| {
            let event = format!("{event} {name}");
            let at = events.iter().position(|e| *e == event);
            at.unwrap_or_else(|| panic!("no {event} in {events:?}"))
        };
        assert!(
            at("start") < at("answer") && at("answer") < at("done"),
            "{events:?}"
        );
    }
    let configmaps: Api<ConfigMap> = ctx.api();
    for (sent, answer) in &told {
        // As sent: with the tracking mark the comparison also puts on the desired object.
        assert_eq!(
            sent["metadata"]["labels"]["app.kubernetes.io/instance"],
            "told"
        );
        let live = configmaps
            .get(sent["metadata"]["name"].as_str().unwrap())
            .await?;
        assert_eq!(
            answer["metadata"]["resourceVersion"],
            json!(live.metadata.resource_version)
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_failed_sync_runs_sync_fail_hooks_and_termination_stops_a_waiting_sync()
-> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let engine = engine(&ctx).await;

    // A PreSync hook that really fails: its pod can never be scheduled (no node matches), so the
    // Job controller fails the Job when activeDeadlineSeconds runs out.
    let mut failing = job_hook("doomed", "PreSync", "HookFailed");
    failing["spec"]["activeDeadlineSeconds"] = json!(1);
    failing["spec"]["template"]["spec"]["nodeSelector"] = json!({"no-such-node": "x"});
    let on_fail = config_map(
        "sync-failed",
        json!({"argocd.argoproj.io/hook": "SyncFail"}),
    );
    let report = run(
        &engine,
        request(
            &ctx,
            "failing",
            vec![failing, on_fail, config_map("main", json!({}))],
        ),
    )
    .await;
    assert_eq!(report.phase, OperationPhase::Failed, "{}", report.message);
    assert!(report.message.contains("doomed"), "{}", report.message);
    let configmaps: Api<ConfigMap> = ctx.api();
    assert!(
        configmaps.get_opt("main").await?.is_none(),
        "the Sync phase never ran"
    );
    assert!(
        configmaps.get_opt("sync-failed").await?.is_some(),
        "the SyncFail hook ran"
    );
    let fail_hook = report
        .resources
        .iter()
        .find(|r| r.name == "sync-failed")
        .unwrap();
    assert_eq!(fail_hook.sync_phase, Some(SyncPhase::SyncFail));

    // A Deployment that can never become healthy keeps its wave waiting until terminated (the
    // wave after it never starts).
    let mut stuck = deployment("stuck", "0");
    stuck["spec"]["template"]["spec"]["nodeSelector"] = json!({"no-such-node": "x"});
    let mut waiting = request(&ctx, "stuck", vec![stuck, deployment("after-stuck", "1")]);
    waiting.health_timeout = None;
    let cancel = CancellationToken::new();
    let (progress, mut updates) = watch::channel(SyncReport::running());
    let sync = engine.sync(waiting, cancel.clone(), &progress);
    let terminate = async {
        // Terminate once the Deployment has been applied.
        updates
            .wait_for(|r| r.resources.iter().any(|r| r.name == "stuck"))
            .await
            .unwrap();
        cancel.cancel();
    };
    let (report, ()) = tokio::join!(sync, terminate);
    assert_eq!(report.phase, OperationPhase::Failed);
    assert_eq!(report.message, "Operation terminated");
    Ok(())
}

#[tokio::test]
async fn replace_create_namespace_and_selective_sync() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let engine = engine(&ctx).await;
    let target = format!("{}-extra", ctx.namespace());

    let mut req = request(
        &ctx,
        "options",
        vec![
            config_map(
                "replaced",
                json!({"argocd.argoproj.io/sync-options": "Replace=true"}),
            ),
            config_map("skipped", json!({})),
        ],
    );
    req.namespace = target.clone();
    req.options.create_namespace = true;
    req.resources = Some(vec![ferry_types::ResourceKey::new(
        "",
        "ConfigMap",
        &target,
        "replaced",
    )]);
    let report = run(&engine, req).await;
    assert_eq!(
        report.phase,
        OperationPhase::Succeeded,
        "{}",
        report.message
    );
    let configmaps: Api<ConfigMap> = Api::namespaced(ctx.client(), &target);
    let replaced = configmaps.get("replaced").await?;
    assert!(
        configmaps.get_opt("skipped").await?.is_none(),
        "selective sync left it out"
    );
    let managers: Vec<_> = replaced
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.operation)
        .collect();
    assert_eq!(
        managers,
        [Some("Update".to_string())],
        "Replace=true creates/updates instead of applying"
    );

    // Someone else's edit is overwritten by the next server-side apply of the same field.
    let shared: Api<ConfigMap> = Api::namespaced(ctx.client(), &target);
    shared
        .patch(
            "replaced",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "edited"}})),
        )
        .await?;
    let mut again = request(
        &ctx,
        "options",
        vec![config_map(
            "replaced",
            json!({"argocd.argoproj.io/sync-options": "Replace=true"}),
        )],
    );
    again.namespace = target.clone();
    let report = run(&engine, again).await;
    assert_eq!(
        report.phase,
        OperationPhase::Succeeded,
        "{}",
        report.message
    );
    assert_eq!(shared.get("replaced").await?.data.unwrap()["k"], "v");

    Api::<k8s_openapi::api::core::v1::Namespace>::all(ctx.client())
        .delete(&target, &Default::default())
        .await?;
    Ok(())
}

/// A PreSync Job hook as an earlier run of `run_id` would have left it: created and labelled,
/// never recorded.
async fn leftover_hook(ctx: &TestContext, name: &str, generate: bool, run_id: &str) -> String {
    let mut job = job_hook(name, "PreSync", "BeforeHookCreation");
    job["metadata"]["labels"] = json!({
        ferry_sync::HOOK_RUN_LABEL: ferry_sync::hook_run_value(run_id, SyncPhase::PreSync)
    });
    if generate {
        job["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("name")
            .unwrap();
        job["metadata"]["generateName"] = json!(format!("{name}-"));
    }
    let job: k8s_openapi::api::batch::v1::Job = serde_json::from_value(job).unwrap();
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = ctx.api();
    let created = jobs
        .create(&kube::api::PostParams::default(), &job)
        .await
        .expect("leftover hook");
    created.metadata.name.unwrap()
}

#[tokio::test]
async fn a_resumed_run_adopts_the_hooks_it_created_instead_of_running_them_twice()
-> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let engine = engine(&ctx).await;
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = ctx.api();
    // The earlier run created both hooks and died before recording either.
    leftover_hook(&ctx, "migrate", false, "run-1").await;
    let generated = leftover_hook(&ctx, "seed", true, "run-1").await;
    let migrate_uid = jobs.get("migrate").await?.metadata.uid;
    let mut seed = job_hook("seed", "PreSync", "BeforeHookCreation");
    seed["metadata"].as_object_mut().unwrap().remove("name");
    seed["metadata"]["generateName"] = json!("seed-");
    let desired = vec![
        job_hook("migrate", "PreSync", "BeforeHookCreation"),
        seed,
        config_map("settings", json!({})),
    ];

    let mut resumed = request(&ctx, "shop", desired.clone());
    resumed.run_id = "run-1".into();
    let report = run(&engine, resumed).await;
    assert_eq!(
        report.phase,
        OperationPhase::Succeeded,
        "{}",
        report.message
    );
    assert_eq!(jobs.get("migrate").await?.metadata.uid, migrate_uid);
    let seeds: Vec<String> = jobs
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|job| job.metadata.name)
        .filter(|name| name.starts_with("seed-"))
        .collect();
    assert_eq!(
        seeds,
        std::slice::from_ref(&generated),
        "the generated hook ran once"
    );
    let adopted = report
        .resources
        .iter()
        .find(|r| r.name == generated)
        .expect("the adopted hook is reported under its name");
    assert_eq!(adopted.hook_phase, Some(OperationPhase::Succeeded));

    // Another run (a retry, a new sync) runs its hooks anew.
    let mut next = request(&ctx, "shop", desired);
    next.run_id = "run-2".into();
    let report = run(&engine, next).await;
    assert_eq!(
        report.phase,
        OperationPhase::Succeeded,
        "{}",
        report.message
    );
    assert_ne!(jobs.get("migrate").await?.metadata.uid, migrate_uid);
    Ok(())
}

#[tokio::test]
async fn a_running_hook_that_vanished_fails_the_resumed_run_at_once() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let engine = engine(&ctx).await;
    // The earlier run recorded the hook as running; then someone deleted it.
    let mut resumed = request(
        &ctx,
        "shop",
        vec![job_hook("migrate", "PreSync", "HookSucceeded")],
    );
    resumed.previous = vec![ferry_types::application::ResourceResult {
        group: "batch".into(),
        version: "v1".into(),
        kind: "Job".into(),
        namespace: ctx.namespace().into(),
        name: "migrate".into(),
        status: Some(ResultCode::Synced),
        hook_type: Some(HookType::PreSync),
        hook_phase: Some(OperationPhase::Running),
        sync_phase: Some(SyncPhase::PreSync),
        ..Default::default()
    }];
    resumed.run_id = "run-1".into();
    let started = std::time::Instant::now();
    let report = run(&engine, resumed).await;
    assert_eq!(report.phase, OperationPhase::Failed, "{}", report.message);
    assert!(
        report.message.contains("was deleted before it completed"),
        "{}",
        report.message
    );
    assert!(started.elapsed() < Duration::from_secs(20), "it waited");
    Ok(())
}

#[tokio::test]
async fn a_resumed_wait_times_out_counting_from_the_earlier_runs_wait() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let engine = engine(&ctx).await;
    // A hook that never completes (its pod can never be scheduled), after a hook that is done at
    // once: the earlier run was waiting for the first since almost the whole health timeout.
    let mut stuck = job_hook("migrate", "PreSync", "HookSucceeded");
    stuck["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] = json!("1");
    stuck["spec"]["template"]["spec"]["nodeSelector"] = json!({"no-such-node": "x"});
    let done_at_once = config_map(
        "marker",
        json!({"argocd.argoproj.io/hook": "PreSync", "argocd.argoproj.io/sync-wave": "0"}),
    );
    let mut resumed = request(&ctx, "shop", vec![done_at_once, stuck]);
    resumed.run_id = "run-1".into();
    resumed.health_timeout = Some(Duration::from_secs(120));
    let since = std::time::SystemTime::now() - Duration::from_secs(115);
    resumed.waiting_since = Some(since);
    let started = std::time::Instant::now();
    let (progress, updates) = watch::channel(SyncReport::running());
    let report = engine
        .sync(resumed, CancellationToken::new(), &progress)
        .await;
    assert_eq!(report.phase, OperationPhase::Failed, "{}", report.message);
    assert!(
        report
            .message
            .contains("timed out waiting for healthy state of batch/Job")
            && report
                .message
                .contains("counted from before the controller restarted"),
        "{}",
        report.message
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the wait started over: {:?}",
        started.elapsed()
    );
    // What a further resume would count from was published with the progress.
    assert!(updates.borrow().waiting_since.is_some_and(|s| s > since));
    Ok(())
}

#[tokio::test]
async fn a_finished_hook_is_deleted_only_once_its_result_is_saved() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let engine = engine(&ctx).await;
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = ctx.api();
    let desired = vec![job_hook("migrate", "PreSync", "HookSucceeded")];

    // The owner of the state checks, at each save, that the hook is still there.
    let (checkpoint, mut saves) = ferry_sync::Checkpoint::new();
    let owner_jobs = jobs.clone();
    let owner = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some((report, answer)) = saves.recv().await {
            let present = owner_jobs.get_opt("migrate").await.unwrap().is_some();
            let phase = report.resources.first().and_then(|r| r.hook_phase);
            seen.push((phase, present));
            answer.send(true).unwrap();
        }
        seen
    });
    let mut saved = request(&ctx, "shop", desired.clone());
    saved.run_id = "run-1".into();
    saved.checkpoint = Some(checkpoint);
    let report = run(&engine, saved).await;
    assert_eq!(
        report.phase,
        OperationPhase::Succeeded,
        "{}",
        report.message
    );
    assert_eq!(
        owner.await?,
        [(Some(OperationPhase::Succeeded), true)],
        "saved as succeeded while the hook still existed"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        jobs.get_opt("migrate")
            .await?
            .is_none_or(|j| j.metadata.deletion_timestamp.is_some())
    );

    // A save that fails keeps the hook: deleting it could strand a resumed run.
    let (checkpoint, mut saves) = ferry_sync::Checkpoint::new();
    tokio::spawn(async move {
        while let Some((_, answer)) = saves.recv().await {
            let _ = answer.send(false);
        }
    });
    let mut unsaved = request(&ctx, "shop", desired);
    unsaved.run_id = "run-2".into();
    unsaved.checkpoint = Some(checkpoint);
    let report = run(&engine, unsaved).await;
    assert_eq!(
        report.phase,
        OperationPhase::Succeeded,
        "{}",
        report.message
    );
    assert!(
        report.resources[0].message.contains("kept"),
        "{:?}",
        report.resources
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let kept = jobs.get("migrate").await?;
    assert!(kept.metadata.deletion_timestamp.is_none());
    Ok(())
}

fn succeeded(report: &SyncReport) {
    assert_eq!(
        report.phase,
        OperationPhase::Succeeded,
        "{}",
        report.message
    );
}

#[tokio::test]
async fn apply_out_of_sync_only_leaves_in_sync_objects_untouched() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let engine = engine(&ctx).await;
    let configmaps: Api<ConfigMap> = ctx.api();
    succeeded(
        &run(
            &engine,
            request(
                &ctx,
                "selective",
                vec![
                    config_map("same", json!({})),
                    config_map("drifted", json!({})),
                ],
            ),
        )
        .await,
    );
    let same_version = configmaps.get("same").await?.metadata.resource_version;

    // Both desired objects changed, but the comparison found only `drifted` out of sync: the
    // in-sync one is not sent at all, so its live copy keeps its version and old data.
    let mut changed = vec![
        config_map("same", json!({})),
        config_map("drifted", json!({})),
    ];
    for object in &mut changed {
        object["data"]["k"] = json!("new");
    }
    let mut only_drifted = request(&ctx, "selective", changed.clone());
    only_drifted.options.apply_out_of_sync_only = true;
    only_drifted.out_of_sync = Some(
        [ferry_types::ResourceKey::new(
            "",
            "ConfigMap",
            ctx.namespace(),
            "drifted",
        )]
        .into(),
    );
    let report = run(&engine, only_drifted.clone()).await;
    succeeded(&report);
    let names: Vec<&str> = report.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["drifted"]);
    let same = configmaps.get("same").await?;
    assert_eq!(same.metadata.resource_version, same_version);
    assert_eq!(same.data.unwrap()["k"], "v");
    assert_eq!(configmaps.get("drifted").await?.data.unwrap()["k"], "new");

    // Without the option every object is applied.
    only_drifted.options.apply_out_of_sync_only = false;
    succeeded(&run(&engine, only_drifted).await);
    assert_eq!(configmaps.get("same").await?.data.unwrap()["k"], "new");
    Ok(())
}

#[tokio::test]
async fn server_side_apply_false_applies_client_side_with_last_applied() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let engine = engine(&ctx).await;
    let configmaps: Api<ConfigMap> = ctx.api();
    let client_side = |data: Value| {
        let mut object = config_map(
            "classic",
            json!({"argocd.argoproj.io/sync-options": "ServerSideApply=false"}),
        );
        object["data"] = data;
        object
    };
    succeeded(
        &run(
            &engine,
            request(&ctx, "csa", vec![client_side(json!({"a": "1", "b": "2"}))]),
        )
        .await,
    );
    let live = configmaps.get("classic").await?;
    let last_applied: Value = serde_json::from_str(
        &live.metadata.annotations.as_ref().unwrap()["kubectl.kubernetes.io/last-applied-configuration"],
    )?;
    assert_eq!(last_applied["data"], json!({"a": "1", "b": "2"}));
    let operations: Vec<_> = live
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.operation)
        .collect();
    assert!(
        !operations.contains(&Some("Apply".to_string())),
        "no server-side apply: {operations:?}"
    );

    // Three-way merge: a key dropped from Git is removed, a key someone else added stays.
    configmaps
        .patch(
            "classic",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"theirs": "x"}})),
        )
        .await?;
    succeeded(
        &run(
            &engine,
            request(&ctx, "csa", vec![client_side(json!({"a": "1"}))]),
        )
        .await,
    );
    let data = configmaps.get("classic").await?.data.unwrap();
    assert_eq!(
        data.into_iter().collect::<Vec<_>>(),
        [
            ("a".to_string(), "1".to_string()),
            ("theirs".into(), "x".into())
        ]
    );
    Ok(())
}

/// Argo CD applies client-side by default, as `kubectl apply --validate=true` (strict): a field
/// the schema does not know fails the sync, unless the resource says `Validate=false`, which
/// lets the server drop it.
#[tokio::test]
async fn validate_false_lets_unknown_fields_through() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let engine = engine(&ctx).await;
    let configmaps: Api<ConfigMap> = ctx.api();
    let sloppy = |options: &str, value: &str| {
        let mut object = config_map(
            "sloppy",
            json!({"argocd.argoproj.io/sync-options": options}),
        );
        object["data"] = json!({"k": value});
        object
    };
    succeeded(
        &run(
            &engine,
            request(&ctx, "validate", vec![sloppy("ServerSideApply=false", "1")]),
        )
        .await,
    );

    let mut unknown = sloppy("ServerSideApply=false", "2");
    unknown["unknownField"] = json!("x");
    let report = run(&engine, request(&ctx, "validate", vec![unknown.clone()])).await;
    assert_eq!(report.phase, OperationPhase::Failed, "{}", report.message);
    assert!(
        report.message.contains("unknownField"),
        "{}",
        report.message
    );
    assert_eq!(configmaps.get("sloppy").await?.data.unwrap()["k"], "1");

    unknown["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] =
        json!("ServerSideApply=false,Validate=false");
    succeeded(&run(&engine, request(&ctx, "validate", vec![unknown])).await);
    assert_eq!(configmaps.get("sloppy").await?.data.unwrap()["k"], "2");
    Ok(())
}

/// A suspended Job (no pods): its pod template is immutable once created.
fn suspended_job(name: &str, options: &str, command: &str) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name,
            "annotations": {"argocd.argoproj.io/sync-options": options}},
        "spec": {"suspend": true, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox", "command": [command]}]}}}})
}

#[tokio::test]
async fn force_recreates_an_object_whose_immutable_fields_changed() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let engine = engine(&ctx).await;
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = ctx.api();
    let command = |job: &k8s_openapi::api::batch::v1::Job| {
        job.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .command
            .clone()
            .unwrap()
    };
    for options in ["ServerSideApply=true", "Replace=true"] {
        let name = if options.starts_with("Replace") {
            "replaced"
        } else {
            "applied"
        };
        succeeded(
            &run(
                &engine,
                request(&ctx, "force", vec![suspended_job(name, options, "true")]),
            )
            .await,
        );
        let first = jobs.get(name).await?.metadata.uid;

        // Without Force the server refuses the change of the template.
        let report = run(
            &engine,
            request(&ctx, "force", vec![suspended_job(name, options, "false")]),
        )
        .await;
        assert_eq!(report.phase, OperationPhase::Failed, "{}", report.message);
        assert!(report.message.contains("immutable"), "{}", report.message);

        let forced = format!("{options},Force=true");
        succeeded(
            &run(
                &engine,
                request(&ctx, "force", vec![suspended_job(name, &forced, "false")]),
            )
            .await,
        );
        let job = jobs.get(name).await?;
        assert_ne!(
            job.metadata.uid, first,
            "{options}: deleted and created again"
        );
        assert_eq!(command(&job), ["false"]);
    }
    Ok(())
}

#[tokio::test]
async fn prune_propagation_policy_orphan_keeps_the_dependents() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let engine = engine(&ctx).await;
    let replica_sets: Api<k8s_openapi::api::apps::v1::ReplicaSet> = ctx.api();
    let owned_by = |deployment: &'static str| {
        let replica_sets = replica_sets.clone();
        async move {
            for _ in 0..100 {
                let list = replica_sets
                    .list(&ListParams::default().labels(&format!("app={deployment}")))
                    .await
                    .unwrap();
                if let Some(rs) = list.items.into_iter().next() {
                    return rs.metadata.name.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            panic!("no ReplicaSet for {deployment}");
        }
    };
    let orphaning = {
        let mut d = deployment("orphaning", "0");
        d["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] =
            json!("PrunePropagationPolicy=orphan");
        d
    };
    let mut req = request(
        &ctx,
        "propagation",
        vec![orphaning, deployment("cascading", "0")],
    );
    req.health_timeout = Some(Duration::from_secs(5));
    // Healthy or not (kwok), the Deployments exist once the sync has applied them.
    run(&engine, req).await;
    let orphan_rs = owned_by("orphaning").await;
    let cascade_rs = owned_by("cascading").await;

    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = ctx.api();
    let live = deployments
        .list(&ListParams::default().labels("app.kubernetes.io/instance=propagation"))
        .await?
        .items
        .into_iter()
        .map(|d| {
            let mut value = serde_json::to_value(d).unwrap();
            value["apiVersion"] = json!("apps/v1");
            value["kind"] = json!("Deployment");
            value
        })
        .collect();
    let mut prune = request(&ctx, "propagation", vec![config_map("left", json!({}))]);
    prune.live = live;
    prune.prune = true;
    succeeded(&run(&engine, prune).await);

    // The default (foreground) deletes the ReplicaSet with its Deployment; orphan leaves it,
    // without the owner reference.
    for _ in 0..150 {
        if replica_sets.get_opt(&cascade_rs).await?.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(replica_sets.get_opt(&cascade_rs).await?.is_none());
    let orphan = replica_sets.get(&orphan_rs).await?;
    assert!(orphan.metadata.deletion_timestamp.is_none());
    assert!(
        orphan
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty(),
        "orphaned"
    );
    Ok(())
}

/// A custom resource whose CRD something else installs during the sync (an operator, say):
/// the dry run cannot check it, and `SkipDryRunOnMissingResource=true` says not to try; it is
/// applied in its wave, once its kind is served.
#[tokio::test]
async fn skip_dry_run_on_missing_resource_applies_a_kind_installed_during_the_sync()
-> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let engine = engine(&ctx).await;
    let group = format!("{}.ferry.dev", ctx.namespace());
    let gadget = |options: &str| {
        json!({"apiVersion": format!("{group}/v1"), "kind": "Gadget",
            "metadata": {"name": "g", "namespace": ctx.namespace(), "annotations": {
                "argocd.argoproj.io/sync-wave": "1",
                "argocd.argoproj.io/sync-options": options}}})
    };
    // Wave 0 waits (its pods cannot be scheduled) until the test lets it become healthy.
    let mut gate = deployment("gate", "0");
    gate["spec"]["template"]["spec"]["nodeSelector"] = json!({"no-such-node": "x"});

    let report = run(
        &engine,
        request(&ctx, "operator", vec![gate.clone(), gadget("Prune=true")]),
    )
    .await;
    assert_eq!(report.phase, OperationPhase::Failed, "{}", report.message);
    assert!(
        report.message.contains("dry run") && report.message.contains("Gadget"),
        "{}",
        report.message
    );
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = ctx.api();
    assert!(deployments.get_opt("gate").await?.is_none());

    let skipping = request(
        &ctx,
        "operator",
        vec![gate, gadget("SkipDryRunOnMissingResource=true")],
    );
    let (progress, mut updates) = watch::channel(SyncReport::running());
    let sync = engine.sync(skipping, CancellationToken::new(), &progress);
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(ctx.client());
    let crd_name = format!("gadgets.{group}");
    let install = async {
        updates
            .wait_for(|r| r.resources.iter().any(|r| r.name == "gate"))
            .await
            .unwrap();
        let crd = serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": crd_name},
            "spec": {"group": group, "scope": "Namespaced",
                "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object",
                        "x-kubernetes-preserve-unknown-fields": true}}}]}}))
        .unwrap();
        crds.create(&Default::default(), &crd).await.unwrap();
        for _ in 0..100 {
            let established = crds.get(&crd_name).await.unwrap().status.is_some_and(|s| {
                s.conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            if established {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        deployments
            .patch(
                "gate",
                &PatchParams::default(),
                &Patch::Json::<()>(
                    serde_json::from_value(json!([
                        {"op": "remove", "path": "/spec/template/spec/nodeSelector"}
                    ]))
                    .unwrap(),
                ),
            )
            .await
            .unwrap();
    };
    let (report, ()) = tokio::join!(sync, install);
    let gadgets: Api<kube::api::DynamicObject> = Api::namespaced_with(
        ctx.client(),
        ctx.namespace(),
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk(&group, "v1", "Gadget"),
            "gadgets",
        ),
    );
    let applied = gadgets.get_opt("g").await;
    crds.delete(&crd_name, &Default::default()).await?;
    succeeded(&report);
    assert!(applied?.is_some());
    Ok(())
}

/// Counts the PATCH requests (applies and their dry runs) in flight at once.
#[derive(Clone, Default)]
struct InFlight {
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl<S> Layer<S> for InFlight {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            counter: self.clone(),
        }
    }
}

#[derive(Clone)]
struct Counted<S> {
    inner: S,
    counter: InFlight,
}

impl<S, B> Service<Request<B>> for Counted<S>
where
    S: Service<Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let counted = request.method() == Method::PATCH;
        let counter = self.counter.clone();
        if counted {
            let now = counter.now.fetch_add(1, Ordering::SeqCst) + 1;
            counter.peak.fetch_max(now, Ordering::SeqCst);
        }
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            if counted {
                counter.now.fetch_sub(1, Ordering::SeqCst);
            }
            response
        })
    }
}

/// The objects of one kind in a wave are applied at once, at most 20 in flight (Argo CD's
/// parallelism limit), and their results are reported in the sync's order.
#[tokio::test]
async fn the_objects_of_one_kind_in_a_wave_are_applied_at_once() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let counter = InFlight::default();
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(ctx.kubeconfig())?,
        &KubeConfigOptions::default(),
    )
    .await?;
    let client = kube::client::ClientBuilder::try_from(config)?
        .with_layer(&counter)
        .build();
    let settings = EngineSettings {
        field_manager: "ferry-test".into(),
        poll_interval: Duration::from_millis(200),
    };
    let engine = Engine::new(client, HealthChecks::new(), settings).await?;
    let names: Vec<String> = (0..30).map(|i| format!("parallel-{i:02}")).collect();
    let desired = names.iter().map(|n| config_map(n, json!({}))).collect();

    let report = run(&engine, request(&ctx, "parallel", desired)).await;

    succeeded(&report);
    let peak = counter.peak.load(Ordering::SeqCst);
    assert!((2..=20).contains(&peak), "{peak} applies in flight at most");
    let expected: Vec<String> = names.iter().map(|n| format!("Sync:{n}")).collect();
    assert_eq!(order(&report), expected);
    assert_eq!(tracked_config_maps(&ctx, "parallel").await.len(), 30);
    Ok(())
}
