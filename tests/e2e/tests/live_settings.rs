//! `argocd-cm` changed while the controller runs takes effect without a restart: system-wide
//! ignoreDifferences, custom health checks, resource exclusions (the cluster cache stops
//! watching what is excluded) and `kustomize.buildOptions`. A change that does not parse is
//! refused with an error in the log, and the settings before it stay.

use std::time::Duration;

use anyhow::Result;
use ferry_e2e::{Story, is};
use ferry_types::application::HealthStatusCode;
use ferry_types::tracking::TrackingMethod;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// Sets `entries` in the story's `argocd-cm` (created when missing).
async fn set_argocd_cm(story: &Story, entries: Value) -> Result<()> {
    let patch = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "argocd-cm"},
        "data": entries,
    });
    story
        .ctx
        .api::<ConfigMap>()
        .patch(
            "argocd-cm",
            &PatchParams::apply("live-settings-test").force(),
            &Patch::Apply(&patch),
        )
        .await?;
    Ok(())
}

fn health(app: &ferry_types::Application) -> Option<HealthStatusCode> {
    app.status.as_ref().map(|s| s.health.status)
}

#[tokio::test]
async fn ignore_differences_and_health_checks_change_while_the_controller_runs() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    let app = story.app_name("guestbook");
    story.create_app(&app, "guestbook", &["--sync-policy", "automated"])?;
    story
        .wait_app(&app, "Synced and Healthy", is::synced_and_healthy)
        .await?;

    // Drift the controller does not heal (no self-heal): OutOfSync.
    let scale = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "guestbook"}, "spec": {"replicas": 5}});
    story
        .ctx
        .api::<Deployment>()
        .patch(
            "guestbook",
            &PatchParams::apply("someone").force(),
            &Patch::Apply(&scale),
        )
        .await?;
    story.wait_app(&app, "OutOfSync", is::out_of_sync).await?;

    // A system-wide rule for the replica count, added now: Synced without a restart.
    set_argocd_cm(
        &story,
        json!({"resource.customizations.ignoreDifferences.apps_Deployment":
            "jsonPointers:\n- /spec/replicas\n"}),
    )
    .await?;
    story.wait_app(&app, "Synced again", is::synced).await?;

    // A custom health check for ConfigMaps, added now: the app's ConfigMap says Degraded.
    let script =
        "hs = {}\nhs.status = \"Degraded\"\nhs.message = \"told so by argocd-cm\"\nreturn hs\n";
    set_argocd_cm(
        &story,
        json!({"resource.customizations.health.ConfigMap": script}),
    )
    .await?;
    story
        .wait_app(&app, "Degraded by the new health check", |a| {
            health(a) == Some(HealthStatusCode::Degraded)
        })
        .await?;

    // A script that does not compile is refused: the one before stays in force.
    set_argocd_cm(
        &story,
        json!({"resource.customizations.health.ConfigMap": "this is not lua ((("}),
    )
    .await?;
    story
        .eventually("the refusal in the log", || async {
            Ok(story.controller_log_tail().contains("is not taken"))
        })
        .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        health(&story.app(&app).await?),
        Some(HealthStatusCode::Degraded)
    );
    Ok(())
}

#[tokio::test]
async fn an_excluded_kind_is_no_longer_watched_after_argocd_cm_changes() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    let app = story.app_name("guestbook");
    story.create_app(&app, "guestbook", &[])?;
    story.ferry(&["app", "sync", &app])?;
    story
        .wait_app(&app, "Synced and Healthy", is::synced_and_healthy)
        .await?;

    // A Secret tracked to the app but not in Git: it requires pruning, so OutOfSync.
    let mut extra = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "extra", "namespace": story.namespace()}});
    TrackingMethod::default().mark(&mut extra, &app, None)?;
    story
        .ctx
        .api::<Secret>()
        .create(&PostParams::default(), &serde_json::from_value(extra)?)
        .await?;
    story.wait_app(&app, "OutOfSync", is::out_of_sync).await?;

    // Secrets excluded: the cache no longer watches them, the extra is not seen.
    set_argocd_cm(
        &story,
        json!({"resource.exclusions": "- apiGroups: ['']\n  kinds: [Secret]\n"}),
    )
    .await?;
    story.wait_app(&app, "Synced", is::synced).await?;

    // An exclusion list that does not parse is refused and Secrets stay excluded.
    set_argocd_cm(&story, json!({"resource.exclusions": "{apiGroups: ["})).await?;
    story
        .eventually("the refusal in the log", || async {
            Ok(story.controller_log_tail().contains("is not taken"))
        })
        .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(is::synced(&story.app(&app).await?));
    // The Secret was never pruned.
    assert!(story.ctx.api::<Secret>().get_opt("extra").await?.is_some());
    Ok(())
}

/// A kustomization inflating a local Helm chart needs `--enable-helm`: without it the app
/// cannot render; with `kustomize.buildOptions: --enable-helm` set in argocd-cm while the
/// controller runs, it syncs.
#[tokio::test]
async fn kustomize_build_options_from_argocd_cm_enable_helm() -> Result<()> {
    let mut story = Story::new().await?;
    story.repo.write(
        "inflated/kustomization.yaml",
        "helmGlobals:\n  chartHome: charts\nhelmCharts:\n- name: greeter\n  releaseName: hello\n",
    )?;
    story.repo.write(
        "inflated/charts/greeter/Chart.yaml",
        "apiVersion: v2\nname: greeter\nversion: 0.1.0\n",
    )?;
    story
        .repo
        .write("inflated/charts/greeter/values.yaml", "greeting: hello\n")?;
    story.repo.write(
        "inflated/charts/greeter/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeter\n",
    )?;
    story.repo.commit("kustomize with a helm chart")?;
    story.start_controller()?;
    let app = story.app_name("inflated");
    story.create_app(&app, "inflated", &["--sync-policy", "automated"])?;
    let message = story.wait_condition(&app, "ComparisonError").await?;
    assert!(message.contains("enable-helm"), "{message}");

    set_argocd_cm(&story, json!({"kustomize.buildOptions": "--enable-helm"})).await?;
    story
        .wait_app(&app, "Synced and Healthy", is::synced_and_healthy)
        .await?;
    assert!(
        story
            .ctx
            .api::<ConfigMap>()
            .get_opt("hello-greeter")
            .await?
            .is_some()
    );
    Ok(())
}
