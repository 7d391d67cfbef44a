//! An Application's life beyond syncing, as Argo CD's annotations and hooks shape it: apps left
//! alone by the skip-reconcile annotation, deletion hooks that run before and after an app's
//! resources are deleted, and an app of apps syncing its children wave by wave.

use std::time::Duration;

use anyhow::Result;
use ferry_e2e::{Story, is, job_hook};
use ferry_types::application::{
    HealthStatusCode, REFRESH_ANNOTATION, SKIP_RECONCILE_ANNOTATION, condition,
};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use serde_json::json;

fn config_map(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{a: b}}\n")
}

async fn annotate(story: &Story, app: &str, annotations: serde_json::Value) -> Result<()> {
    story
        .apps()
        .patch(
            app,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": annotations}})),
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn the_skip_reconcile_annotation_leaves_an_app_untouched() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    let app = story.app_name("skipped");
    story.create_app(&app, "guestbook", &[])?;
    let first = story.repo.head()?;
    story
        .wait_app(&app, "OutOfSync at the first commit", |a| {
            is::out_of_sync(a) && is::at_revision(&first)(a)
        })
        .await?;

    // Skipped: a new commit and a refresh request go unanswered, the status stays as it was.
    annotate(&story, &app, json!({SKIP_RECONCILE_ANNOTATION: "true"})).await?;
    // A reconcile already under way may still finish.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = story.app(&app).await?.status;
    story
        .repo
        .write("guestbook/extra.yaml", config_map("extra"))?;
    let second = story.repo.commit("an extra ConfigMap")?;
    annotate(&story, &app, json!({REFRESH_ANNOTATION: "hard"})).await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let skipped = story.app(&app).await?;
    assert_eq!(skipped.status, before, "the status was not written");
    assert!(
        skipped.annotations().contains_key(REFRESH_ANNOTATION),
        "the refresh request is still pending"
    );

    // Any other value (Go's booleans) hands it back to the controller, which catches up.
    annotate(&story, &app, json!({SKIP_RECONCILE_ANNOTATION: "false"})).await?;
    story
        .wait_app(
            &app,
            "compared at the second commit",
            is::at_revision(&second),
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn delete_hooks_run_before_and_after_the_resources_go() -> Result<()> {
    let mut story = Story::new().await?;
    // The PreDelete hook fails at first: its pod can never be scheduled, and its deadline ends
    // it.
    let failing = job_hook("before", "PreDelete", "HookSucceeded").replace(
        "  backoffLimit: 0\n",
        "  backoffLimit: 0\n  activeDeadlineSeconds: 2\n",
    );
    let failing = failing.replace(
        "      restartPolicy: Never\n",
        "      restartPolicy: Never\n      nodeSelector: {no-such-node: x}\n",
    );
    story.repo.write("hooked/before.yaml", &failing)?;
    story.repo.write(
        "hooked/after.yaml",
        job_hook("after", "PostDelete", "HookFailed"),
    )?;
    story.repo.write(
        "hooked/after-gone.yaml",
        job_hook("after-gone", "PostDelete", "HookSucceeded"),
    )?;
    story.repo.write("hooked/kept.yaml", config_map("kept"))?;
    story.repo.commit("an app with deletion hooks")?;
    story.start_controller()?;
    let app = story.app_name("hooked");
    story.create_app(&app, "hooked", &["--sync-policy", "automated"])?;
    let synced = story
        .wait_app(&app, "Synced with the deletion hooks' finalizers", |a| {
            is::synced(a)
                && is::operation_finished(a)
                && a.metadata.finalizers.as_ref().is_some_and(|f| f.len() == 4)
        })
        .await?;
    assert_eq!(
        synced.metadata.finalizers.unwrap(),
        [
            "pre-delete-finalizer.argocd.argoproj.io",
            "pre-delete-finalizer.argocd.argoproj.io/cleanup",
            "post-delete-finalizer.argocd.argoproj.io",
            "post-delete-finalizer.argocd.argoproj.io/cleanup",
        ]
    );
    // Syncs do not run deletion hooks.
    let jobs = story.ctx.api::<Job>();
    for name in ["before", "after", "after-gone"] {
        assert!(jobs.get_opt(name).await?.is_none(), "{name} ran in a sync");
    }

    // Deleted: the PreDelete hook runs, fails, and holds the deletion with a DeletionError.
    story.ferry(&["app", "delete", &app, "--yes"])?;
    let message = story
        .wait_condition(&app, condition::DELETION_ERROR)
        .await?;
    assert!(
        message.contains("PreDelete hook(s) failed") && message.contains("before"),
        "{message}"
    );
    let configmaps = story.ctx.api::<ConfigMap>();
    assert!(configmaps.get_opt("kept").await?.is_some());
    assert!(jobs.get_opt("after").await?.is_none());

    // Fixed in Git: the next attempt runs the fixed hook, then the resources go, then the
    // PostDelete hooks run, and the app is gone.
    story.repo.write(
        "hooked/before.yaml",
        job_hook("before", "PreDelete", "HookSucceeded"),
    )?;
    story.repo.commit("a PreDelete hook that succeeds")?;
    story
        .eventually("the app is gone", || async {
            Ok(story.apps().get_opt(&app).await?.is_none())
        })
        .await?;
    assert!(configmaps.get_opt("kept").await?.is_none());
    // HookFailed keeps a PostDelete hook that succeeded; HookSucceeded removed the other.
    let after = jobs.get("after").await?;
    assert!(
        after
            .status
            .and_then(|s| s.succeeded)
            .is_some_and(|n| n > 0),
        "the PostDelete hook ran to completion"
    );
    assert!(jobs.get_opt("after-gone").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn a_resource_of_two_apps_is_a_warning_and_fails_a_sync_that_refuses_sharing() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    let first = story.app_name("first-owner");
    story.create_app(&first, "guestbook", &["--sync-policy", "automated"])?;
    story
        .wait_app(&first, "Synced and Healthy", is::synced_and_healthy)
        .await?;

    // A second app with the same manifests: each resource it wants belongs to the first.
    let second = story.app_name("second-owner");
    story.create_app(&second, "guestbook", &[])?;
    let message = story
        .wait_condition(&second, condition::SHARED_RESOURCE_WARNING)
        .await?;
    assert!(
        message.contains(&format!(
            "ConfigMap/guestbook-config is part of applications {}/{second} and {first}",
            story.namespace()
        )),
        "{message}"
    );
    assert!(
        !is::condition(condition::SHARED_RESOURCE_WARNING)(&story.app(&first).await?),
        "the owner has no warning"
    );

    // FailOnSharedResource: the sync fails and the first app keeps its resources.
    story.ferry(&[
        "app",
        "sync",
        &second,
        "--sync-option",
        "FailOnSharedResource=true",
        "--async",
    ])?;
    let failed = story
        .wait_app(&second, "the sync finished", is::operation_finished)
        .await?;
    let state = failed.status.unwrap().operation_state.unwrap();
    assert_ne!(
        state.phase,
        ferry_types::application::OperationPhase::Succeeded
    );
    assert!(
        state.message.contains("FailOnSharedResource"),
        "{}",
        state.message
    );
    let config = story.ctx.api::<ConfigMap>().get("guestbook-config").await?;
    assert!(
        config
            .annotations()
            .values()
            .chain(config.labels().values())
            .any(|v| v.starts_with(&first)),
        "still tracked by the first app: {:?}",
        config.metadata
    );
    Ok(())
}

#[tokio::test]
async fn a_created_namespace_keeps_the_managed_metadata() -> Result<()> {
    use k8s_openapi::api::core::v1::Namespace;

    let mut story = Story::new().await?;
    story
        .repo
        .write("settings/settings.yaml", config_map("settings"))?;
    story.repo.commit("one ConfigMap")?;
    story.start_controller()?;
    let app = story.app_name("managed-ns");
    let target = format!("{}-managed", story.namespace());
    let url = story.repo.file_url();
    story.ferry(&[
        "app",
        "create",
        &app,
        "--repo",
        &url,
        "--path",
        "settings",
        "--dest-server",
        "https://kubernetes.default.svc",
        "--dest-namespace",
        &target,
        "--sync-option",
        "CreateNamespace=true",
    ])?;
    let set_metadata = |metadata: serde_json::Value| {
        let apps = story.apps();
        let app = app.clone();
        async move {
            apps.patch(
                &app,
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"spec": {"syncPolicy": {"managedNamespaceMetadata": metadata}}}),
                ),
            )
            .await
        }
    };
    set_metadata(json!({
        "labels": {"team": "blue", "tier": "web"},
        "annotations": {"owner": "ops"},
    }))
    .await?;
    story.ferry(&["app", "sync", &app, "--timeout", "60"])?;
    let namespaces = kube::Api::<Namespace>::all(story.ctx.client());
    let created = namespaces.get(&target).await?;
    assert_eq!(
        created.labels().get("team").map(String::as_str),
        Some("blue")
    );
    assert_eq!(
        created.labels().get("tier").map(String::as_str),
        Some("web")
    );
    assert_eq!(
        created.annotations().get("owner").map(String::as_str),
        Some("ops")
    );

    // Someone else labels the namespace; the metadata changes: the app is OutOfSync, and the
    // next sync applies the change and leaves the other label alone.
    namespaces
        .patch(
            &target,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"other": "kept"}}})),
        )
        .await?;
    story
        .wait_app(&app, "Synced after the first sync", is::synced)
        .await?;
    set_metadata(
        json!({"labels": {"team": "green", "tier": null}, "annotations": {"owner": "ops"}}),
    )
    .await?;
    story
        .wait_app(
            &app,
            "OutOfSync with new namespace metadata",
            is::out_of_sync,
        )
        .await?;
    story.ferry(&["app", "sync", &app, "--timeout", "60"])?;
    let synced = namespaces.get(&target).await?;
    assert_eq!(
        synced.labels().get("team").map(String::as_str),
        Some("green")
    );
    assert!(
        !synced.labels().contains_key("tier"),
        "{:?}",
        synced.labels()
    );
    assert_eq!(
        synced.labels().get("other").map(String::as_str),
        Some("kept")
    );
    story.wait_app(&app, "Synced again", is::synced).await?;
    namespaces.delete(&target, &Default::default()).await?;
    Ok(())
}

#[tokio::test]
async fn delete_confirm_holds_the_deletion_until_it_is_confirmed() -> Result<()> {
    let mut story = Story::new().await?;
    story.repo.write(
        "precious/precious.yaml",
        config_map("precious").replace(
            "metadata: {name: precious}",
            "metadata: {name: precious, annotations: {argocd.argoproj.io/sync-options: Delete=confirm}}",
        ),
    )?;
    story
        .repo
        .commit("a ConfigMap whose deletion needs a person")?;
    story.start_controller()?;
    let app = story.app_name("precious");
    story.create_app(&app, "precious", &["--sync-policy", "automated"])?;
    let synced = story
        .wait_app(&app, "Synced", |a| {
            is::synced(a) && is::operation_finished(a)
        })
        .await?;
    let resources = synced.status.unwrap().resources;
    assert!(
        resources.iter().all(|r| r.requires_deletion_confirmation),
        "{resources:?}"
    );

    story.ferry(&["app", "delete", &app, "--yes"])?;
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(story.apps().get_opt(&app).await?.is_some(), "the app waits");
    let configmaps = story.ctx.api::<ConfigMap>();
    assert!(configmaps.get_opt("precious").await?.is_some());

    let said = story.ferry(&["app", "confirm-deletion", &app])?;
    assert!(said.contains("updated"), "{said}");
    story
        .eventually("the app is gone", || async {
            Ok(story.apps().get_opt(&app).await?.is_none())
        })
        .await?;
    assert!(configmaps.get_opt("precious").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn prune_confirm_waits_in_the_sync_until_it_is_confirmed() -> Result<()> {
    let mut story = Story::new().await?;
    story.repo.write("pruned/kept.yaml", config_map("kept"))?;
    story.repo.write(
        "pruned/doomed.yaml",
        config_map("doomed").replace(
            "metadata: {name: doomed}",
            "metadata: {name: doomed, annotations: {argocd.argoproj.io/sync-options: Prune=confirm}}",
        ),
    )?;
    story.repo.commit("two ConfigMaps")?;
    story.start_controller()?;
    let app = story.app_name("pruned");
    story.create_app(&app, "pruned", &[])?;
    story.ferry(&["app", "sync", &app, "--timeout", "60"])?;

    story.repo.remove("pruned/doomed.yaml")?;
    story.repo.commit("one ConfigMap less")?;
    story.ferry(&["app", "sync", &app, "--prune", "--async"])?;
    let waiting = story
        .wait_app(&app, "the sync waiting for confirmation", |a| {
            a.status
                .as_ref()
                .and_then(|s| s.operation_state.as_ref())
                .is_some_and(|o| o.message.contains("waiting for pruning confirmation"))
        })
        .await?;
    let state = waiting.status.unwrap().operation_state.unwrap();
    assert_eq!(
        state.phase,
        ferry_types::application::OperationPhase::Running
    );
    assert!(
        state.message.contains("/ConfigMap/doomed"),
        "{}",
        state.message
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    let configmaps = story.ctx.api::<ConfigMap>();
    assert!(configmaps.get_opt("doomed").await?.is_some());

    story.ferry(&["app", "confirm-deletion", &app])?;
    let done = story
        .wait_app(&app, "the sync finished", is::operation_finished)
        .await?;
    let state = done.status.unwrap().operation_state.unwrap();
    assert_eq!(
        state.phase,
        ferry_types::application::OperationPhase::Succeeded,
        "{}",
        state.message
    );
    assert!(configmaps.get_opt("doomed").await?.is_none());
    assert!(configmaps.get_opt("kept").await?.is_some());
    Ok(())
}

/// A child Application as an app of apps holds it: automated, in its own sync wave.
fn child_app(story: &Story, name: &str, path: &str, wave: i32) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
  annotations: {{argocd.argoproj.io/sync-wave: \"{wave}\"}}
spec:
  project: default
  source: {{repoURL: \"{repo}\", path: {path}}}
  destination: {{server: https://kubernetes.default.svc, namespace: {namespace}}}
  syncPolicy: {{automated: {{prune: true}}}}
",
        repo = story.repo.file_url(),
        namespace = story.namespace(),
    )
}

#[tokio::test]
async fn an_app_of_apps_syncs_its_children_wave_by_wave_and_reports_their_health() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    let (first, second) = (story.app_name("child-a"), story.app_name("child-b"));
    story
        .repo
        .write("apps/a.yaml", child_app(&story, &first, "guestbook", 0))?;
    story
        .repo
        .write("apps/b.yaml", child_app(&story, &second, "extra", 1))?;
    story.repo.write("extra/cm.yaml", config_map("extra"))?;
    story.repo.commit("an app of apps")?;
    let parent = story.app_name("parent");
    story.create_app(&parent, "apps", &["--sync-policy", "automated"])?;

    // The second wave starts only once the first child is Healthy: a child's health is its
    // own reported health, as Argo CD's documented Application health check has it.
    let seen_healthy_first = tokio::time::timeout(ferry_e2e::TIMEOUT, async {
        loop {
            if story.apps().get_opt(&second).await?.is_some() {
                return anyhow::Ok(story.app(&first).await.is_ok_and(|a| is::healthy(&a)));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await??;
    assert!(
        seen_healthy_first,
        "child-b created before child-a was Healthy"
    );
    story
        .wait_app(&parent, "parent Synced and Healthy", is::synced_and_healthy)
        .await?;
    for child in [&first, &second] {
        story
            .wait_app(child, "child Synced and Healthy", is::synced_and_healthy)
            .await?;
    }

    // A child that is not Healthy makes the parent the same.
    story.repo.write(
        "extra/lb.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: waiting-lb}\n\
         spec: {type: LoadBalancer, ports: [{port: 80}]}\n",
    )?;
    story
        .repo
        .commit("a load balancer that never gets an address")?;
    story
        .wait_app(&second, "child-b Progressing", |a| {
            a.status
                .as_ref()
                .is_some_and(|s| s.health.status == HealthStatusCode::Progressing)
        })
        .await?;
    let parent_now = story
        .wait_app(&parent, "parent Progressing", |a| {
            a.status
                .as_ref()
                .is_some_and(|s| s.health.status == HealthStatusCode::Progressing)
        })
        .await?;
    assert!(
        is::synced(&parent_now),
        "the parent's own manifests did not change"
    );
    Ok(())
}
