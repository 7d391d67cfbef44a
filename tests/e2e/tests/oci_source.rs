//! Manifests from an OCI artifact (Argo CD 3.1): the artifact is pushed to a private registry as
//! `oras push` makes it, the registry is added with `ferry repo add --type oci` and its
//! credentials, and an app follows the artifact's tag. The app's revision is the artifact's
//! digest, so when the tag moves to a new artifact the controller deploys it.

use anyhow::Result;
use ferry_e2e::{Story, is};
use ferry_testkit::registry::{Registry, RegistryOptions};
use k8s_openapi::api::core::v1::ConfigMap;

const USER: &str = "ci";
const PASSWORD: &str = "registry-Pa55";

fn config_map(greeting: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  greeting: {greeting}\n"
    )
}

#[tokio::test]
async fn an_app_follows_the_tag_of_an_oci_artifact_of_manifests() -> Result<()> {
    let registry = Registry::start(RegistryOptions {
        auth: Some((USER, PASSWORD)),
        ..Default::default()
    })?;
    let pusher = registry.pusher();
    let first = pusher
        .push_manifests(
            "manifests/web",
            "stable",
            &[("web/cm.yaml", &config_map("hello"))],
        )
        .await?;

    let mut story = Story::new().await?;
    let repo = format!("oci://{}/manifests/web", registry.host());
    story.ferry_with_env(
        &[
            "repo",
            "add",
            &repo,
            "--type",
            "oci",
            "--username",
            USER,
            "--password",
            PASSWORD,
            "--insecure-oci-force-http",
        ],
        &[],
    )?;
    story.start_controller()?;
    let app = story.app_name("web");
    story.create_app_from(
        &repo,
        &app,
        "web",
        &["--revision", "stable", "--sync-policy", "automated"],
    )?;
    story
        .wait_app(&app, "Synced and Healthy at the first artifact", |a| {
            is::synced_and_healthy(a) && is::at_revision(&first)(a) && is::operation_finished(a)
        })
        .await?;
    let greeting = || async {
        let config = story.ctx.api::<ConfigMap>().get("web-config").await?;
        anyhow::Ok(config.data.unwrap_or_default()["greeting"].clone())
    };
    anyhow::ensure!(
        greeting().await? == "hello",
        "the first artifact not deployed"
    );

    // The tag moves: the next refresh resolves it to the new digest, and automation syncs it.
    let second = pusher
        .push_manifests(
            "manifests/web",
            "stable",
            &[("web/cm.yaml", &config_map("bonjour"))],
        )
        .await?;
    anyhow::ensure!(second != first, "the second push made the same artifact");
    story.ferry(&["app", "get", &app, "--refresh"])?;
    story
        .wait_app(&app, "synced to the second artifact", |a| {
            is::synced(a) && is::at_revision(&second)(a) && is::operation_finished(a)
        })
        .await?;
    anyhow::ensure!(
        greeting().await? == "bonjour",
        "the second artifact not deployed"
    );
    Ok(())
}
