//! A Helm chart from a private chart repository (an `index.yaml` and archives behind HTTP basic
//! auth), set up as Argo CD users do: `ferry repo add` with `--type helm` and the repository's
//! credentials, an app naming the chart with a version constraint, and the controller syncing
//! it; then a newer chart matching the constraint is added to the index, and the app follows.

use anyhow::Result;
use ferry_e2e::{Story, is, write_chart};
use ferry_testkit::chart_repo::{ChartRepo, ChartRepoOptions};
use k8s_openapi::api::core::v1::ConfigMap;

const USER: &str = "ci";
const PASSWORD: &str = "chart-repo-Pa55";

#[tokio::test]
async fn an_app_from_a_private_chart_repository_follows_its_version_constraint() -> Result<()> {
    let charts = ChartRepo::start(ChartRepoOptions {
        auth: Some((USER, PASSWORD)),
        ..Default::default()
    })?;
    let chart = tempfile::tempdir()?;
    write_chart(chart.path(), "1.0.0", "hello")?;
    charts.add_chart(chart.path())?;

    let mut story = Story::new().await?;
    let repo = charts.url();
    story.ferry(&[
        "repo",
        "add",
        &repo,
        "--type",
        "helm",
        "--name",
        "charts",
        "--username",
        USER,
        "--password",
        PASSWORD,
    ])?;
    story.start_controller()?;
    let app = story.app_name("web");
    story.ferry(&[
        "app",
        "create",
        &app,
        "--repo",
        &repo,
        "--helm-chart",
        "web",
        "--revision",
        "1.*",
        "--dest-server",
        "https://kubernetes.default.svc",
        "--dest-namespace",
        story.namespace(),
        "--sync-policy",
        "automated",
    ])?;
    story
        .wait_app(&app, "Synced and Healthy at chart 1.0.0", |a| {
            is::synced_and_healthy(a) && is::at_revision("1.0.0")(a) && is::operation_finished(a)
        })
        .await?;
    let configmaps = story.ctx.api::<ConfigMap>();
    assert_eq!(
        configmaps.get("web-config").await?.data.unwrap()["greeting"],
        "hello"
    );

    // A newer version within `1.*` in the index: automated sync moves the app to it.
    write_chart(chart.path(), "1.1.0", "bonjour")?;
    charts.add_chart(chart.path())?;
    story
        .wait_app(&app, "synced to chart 1.1.0", |a| {
            is::synced(a) && is::at_revision("1.1.0")(a) && is::operation_finished(a)
        })
        .await?;
    assert_eq!(
        configmaps.get("web-config").await?.data.unwrap()["greeting"],
        "bonjour"
    );
    Ok(())
}
