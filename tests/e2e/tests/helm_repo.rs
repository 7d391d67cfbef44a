//! A Helm chart from a private chart repository (an `index.yaml` and archives behind HTTP basic
//! auth), set up as Argo CD users do: `ferry repo add` with `--type helm` and the repository's
//! credentials, an app naming the chart with a version constraint, and the controller syncing
//! it; then a newer chart matching the constraint is added to the index, and the app follows.

use anyhow::Result;
use ferry_e2e::{Story, follow_chart_versions, write_chart};
use ferry_testkit::chart_repo::{ChartRepo, ChartRepoOptions};

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
    follow_chart_versions(&mut story, &repo, chart.path(), || {
        charts.add_chart(chart.path())
    })
    .await
}
