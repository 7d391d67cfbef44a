//! `ignoreDifferences` by field manager, as teams use it for autoscalers: what another manager
//! owns on a live object (here the replica count) is not a difference, so self-heal leaves it
//! alone; the same change by anyone else is drift and is undone. System-wide rules in
//! `argocd-cm` hold for the controller and `ferry app diff` alike.

use std::time::Duration;

use anyhow::Result;
use ferry_e2e::{Story, is};
use ferry_types::Application;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

async fn scale_as(story: &Story, manager: &str, replicas: i32) -> Result<()> {
    let patch = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "guestbook"},
        "spec": {"replicas": replicas},
    });
    story
        .ctx
        .api::<Deployment>()
        .patch(
            "guestbook",
            &PatchParams::apply(manager).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    Ok(())
}

async fn replicas(story: &Story) -> Result<Option<i32>> {
    Ok(story
        .ctx
        .api::<Deployment>()
        .get("guestbook")
        .await?
        .spec
        .and_then(|spec| spec.replicas))
}

/// A story whose guestbook app syncs automatically with `flags`, ignores what the
/// `autoscaler` field manager owns on its Deployment, and is Synced and Healthy.
async fn autoscaled_app(flags: &[&str]) -> Result<(Story, String)> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    let app = story.app_name("guestbook");
    let mut args = vec!["--sync-policy", "automated"];
    args.extend_from_slice(flags);
    story.create_app(&app, "guestbook", &args)?;
    let rule = json!({"spec": {"ignoreDifferences": [
        {"group": "apps", "kind": "Deployment", "managedFieldsManagers": ["autoscaler"]},
    ]}});
    story
        .ctx
        .api::<Application>()
        .patch(&app, &PatchParams::default(), &Patch::Merge(&rule))
        .await?;
    story
        .wait_app(&app, "Synced and Healthy", is::synced_and_healthy)
        .await?;
    Ok((story, app))
}

#[tokio::test]
async fn fields_of_an_ignored_manager_are_left_alone_and_others_are_healed() -> Result<()> {
    let (story, app) = autoscaled_app(&["--self-heal"]).await?;

    // The autoscaler scales out: still Synced, and several resyncs later still 5 replicas.
    scale_as(&story, "autoscaler", 5).await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(replicas(&story).await?, Some(5));
    let now = story.app(&app).await?;
    assert!(is::synced(&now), "{:?}", now.status.map(|s| s.sync));

    // Someone else does the same: that is drift, and self-heal puts Git's 2 back.
    scale_as(&story, "someone", 7).await?;
    story
        .eventually("self-heal back to 2 replicas", || async {
            Ok(replicas(&story).await? == Some(2))
        })
        .await?;
    Ok(())
}

/// With `RespectIgnoreDifferences=true`, a sync of a new commit does not apply what is ignored
/// either: the autoscaler's replica count survives the sync; without it, the sync resets it.
#[tokio::test]
async fn a_sync_respecting_ignored_differences_keeps_the_autoscalers_replicas() -> Result<()> {
    let (story, app) = autoscaled_app(&["--sync-option", "RespectIgnoreDifferences=true"]).await?;
    scale_as(&story, "autoscaler", 5).await?;

    // A commit elsewhere in the app: the sync applies the Deployment without its replicas.
    story.repo.write(
        "guestbook/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: guestbook-config\ndata:\n  greeting: bonjour\n",
    )?;
    let second = story.repo.commit("French greeting")?;
    story
        .wait_app(&app, "synced to the second commit", |a| {
            is::synced(a) && is::at_revision(&second)(a) && is::operation_finished(a)
        })
        .await?;
    assert_eq!(replicas(&story).await?, Some(5));
    Ok(())
}

/// A system-wide rule in `argocd-cm` (the replica count of every Deployment) holds for the
/// controller and for `ferry app diff` alike, which compare through the same code: a scale by
/// anyone leaves the app Synced, self-heal leaves it alone, and the diff is empty.
#[tokio::test]
async fn a_system_wide_ignore_rule_holds_for_the_controller_and_for_ferry_app_diff() -> Result<()> {
    let mut story = Story::new().await?;
    let argocd_cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "argocd-cm"},
        "data": {"resource.customizations.ignoreDifferences.apps_Deployment":
            "jsonPointers:\n- /spec/replicas\n"},
    }))?;
    // The controller reads argocd-cm as it starts.
    story
        .ctx
        .api::<ConfigMap>()
        .create(&PostParams::default(), &argocd_cm)
        .await?;
    story.start_controller()?;
    let app = story.app_name("guestbook");
    story.create_app(
        &app,
        "guestbook",
        &["--sync-policy", "automated", "--self-heal"],
    )?;
    story
        .wait_app(&app, "Synced and Healthy", is::synced_and_healthy)
        .await?;

    scale_as(&story, "someone", 5).await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(replicas(&story).await?, Some(5));
    let now = story.app(&app).await?;
    assert!(is::synced(&now), "{:?}", now.status.map(|s| s.sync));
    let diff = story.ferry_output(&["app", "diff", &app])?;
    assert_eq!(
        diff.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&diff.stdout),
        String::from_utf8_lossy(&diff.stderr)
    );
    Ok(())
}
