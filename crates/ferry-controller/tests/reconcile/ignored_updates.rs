//! argocd-cm's ignoreResourceUpdates: a change of only ignored fields of a tracked resource
//! refreshes no app, unless the resource's health changes with it.

use std::time::Duration;

use anyhow::Result;
use ferry_testkit::git::GitRepo;
use ferry_testkit::kube::TestContext;
use ferry_types::application::{HealthStatusCode, OperationPhase, SyncStatusCode};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{
    App, COLOR_HEALTH, CONFIG_MAP, Controller, SYNC_LIMIT, health, set_color, sync_status,
    synced_and_healthy,
};

/// A second app's ConfigMap, whose changes are not ignored.
const PROBE: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe}\ndata: {size: small}\n";

/// Long enough that no periodic comparison happens during the test: only live changes refresh.
const RESYNC: Duration = Duration::from_secs(600);

fn synced_once(app: &ferry_types::Application) -> bool {
    synced_and_healthy(app)
        && app
            .status
            .as_ref()
            .and_then(|s| s.operation_state.as_ref())
            .is_some_and(|o| o.phase == OperationPhase::Succeeded)
}

#[tokio::test]
async fn a_change_of_ignored_fields_refreshes_no_app_unless_health_changes() -> Result<()> {
    let ctx = TestContext::new().await?;
    // ConfigMaps' data.color is ignored for updates (not for comparisons), and red is not
    // healthy.
    let settings: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "argocd-cm"},
        "data": {
            "resource.customizations.ignoreResourceUpdates.ConfigMap": "jsonPointers: [/data/color]\n",
            "resource.customizations.health.ConfigMap": COLOR_HEALTH,
        }
    }))?;
    ctx.api::<ConfigMap>()
        .create(&PostParams::default(), &settings)
        .await?;
    let repo = GitRepo::new()?;
    repo.write("app/settings.yaml", CONFIG_MAP)?;
    repo.write("probe/probe.yaml", PROBE)?;
    repo.commit("two ConfigMaps")?;
    let controller = Controller::start_with_resync(&ctx, RESYNC).await?;
    // Automated without self-heal: live changes are reported, not undone.
    let automated = json!({"automated": {"prune": true}});
    let web = App::create(&ctx, &repo, automated.clone()).await?;
    let probe = App::create_named(&ctx, &repo, "probe", "probe", automated).await?;
    web.wait_for("synced once", SYNC_LIMIT, synced_once).await?;
    probe
        .wait_for("synced once", SYNC_LIMIT, synced_once)
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Only an ignored field: a comparison would find the app OutOfSync (blue is desired).
    set_color(&ctx, "green").await?;
    // Then a change that counts, of the other app: its refresh is requested after the one the
    // first change would have requested, as the cache reports changes in order.
    ctx.api::<ConfigMap>()
        .patch(
            "probe",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"size": "large"}})),
        )
        .await?;
    probe
        .wait_for("OutOfSync", SYNC_LIMIT, |app| {
            sync_status(app) == Some(SyncStatusCode::OutOfSync)
        })
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let unchanged = web.api.get(&web.name).await?;
    assert_eq!(
        sync_status(&unchanged),
        Some(SyncStatusCode::Synced),
        "the ignored change refreshed the app: {:?}",
        unchanged.status
    );

    // An ignored field whose change changes health refreshes the app, which then also sees
    // the color it had not compared.
    set_color(&ctx, "red").await?;
    let refreshed = web
        .wait_for("Progressing", SYNC_LIMIT, |app| {
            health(app) == Some(HealthStatusCode::Progressing)
        })
        .await?;
    assert_eq!(sync_status(&refreshed), Some(SyncStatusCode::OutOfSync));
    controller.stop().await
}
