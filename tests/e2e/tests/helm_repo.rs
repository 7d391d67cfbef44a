//! A Helm chart from a private chart repository (an `index.yaml` and archives behind HTTP basic
//! auth, over HTTPS with a self-signed certificate), set up as Argo CD users do:
//! the certificate trusted for the repository's host in `argocd-tls-certs-cm`, `ferry repo add`
//! with `--type helm` and the repository's credentials, an app naming the chart with a version
//! constraint, and the controller syncing it; then a newer chart matching the constraint is
//! added to the index, and the app follows.

use anyhow::Result;
use ferry_e2e::{Story, follow_chart_versions, write_chart};
use ferry_testkit::chart_repo::{ChartRepo, ChartRepoOptions};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::PostParams;
use serde_json::json;

const USER: &str = "ci";
const PASSWORD: &str = "chart-repo-Pa55";

#[tokio::test]
async fn an_app_from_a_private_chart_repository_follows_its_version_constraint() -> Result<()> {
    let charts = ChartRepo::start(ChartRepoOptions {
        auth: Some((USER, PASSWORD)),
        tls: true,
        ..Default::default()
    })?;
    let chart = tempfile::tempdir()?;
    write_chart(chart.path(), "1.0.0", "hello")?;
    charts.add_chart(chart.path())?;

    let mut story = Story::new().await?;
    let trusted: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "argocd-tls-certs-cm"},
        "data": {"127.0.0.1": charts.certificate().expect("an https repository")},
    }))?;
    story
        .ctx
        .api::<ConfigMap>()
        .create(&PostParams::default(), &trusted)
        .await?;
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
