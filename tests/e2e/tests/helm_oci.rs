//! A Helm chart from a private OCI registry, set up as Argo CD users do: `ferry repo add` with
//! `--type helm --enable-oci` and the registry's credentials (a repository Secret whose URL has
//! no scheme), an app naming the chart with a version constraint, and the controller syncing it;
//! then a newer chart matching the constraint is pushed, and the app follows.

use anyhow::Result;
use ferry_e2e::{Story, follow_chart_versions, write_chart};
use ferry_testkit::registry::{Registry, RegistryOptions};

const USER: &str = "ci";
const PASSWORD: &str = "registry-Pa55";

#[tokio::test]
async fn an_app_from_a_private_registry_follows_its_version_constraint() -> Result<()> {
    let registry = Registry::start(RegistryOptions {
        auth: Some((USER, PASSWORD)),
        ..Default::default()
    })?;
    let chart = tempfile::tempdir()?;
    write_chart(chart.path(), "1.0.0", "hello")?;
    registry.push_chart(chart.path(), "charts")?;

    let mut story = Story::new().await?;
    let repo = format!("{}/charts", registry.host());
    story.ferry(&[
        "repo",
        "add",
        &repo,
        "--type",
        "helm",
        "--enable-oci",
        "--username",
        USER,
        "--password",
        PASSWORD,
    ])?;
    follow_chart_versions(&mut story, &repo, chart.path(), || {
        registry.push_chart(chart.path(), "charts")
    })
    .await
}
