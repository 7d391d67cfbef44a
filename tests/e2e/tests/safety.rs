//! Bad input loses nothing: a manifest that does not parse, or a repository that cannot be
//! reached, puts a ComparisonError on the app and leaves every resource in place, even with
//! automated prune on.

use std::time::Duration;

use anyhow::Result;
use ferry_e2e::{Story, is};
use ferry_types::application::condition;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};

async fn everything_still_there(story: &Story) -> Result<()> {
    assert!(
        story
            .ctx
            .api::<ConfigMap>()
            .get_opt("guestbook-config")
            .await?
            .is_some()
    );
    assert!(
        story
            .ctx
            .api::<Deployment>()
            .get_opt("guestbook")
            .await?
            .is_some()
    );
    assert!(
        story
            .ctx
            .api::<Service>()
            .get_opt("guestbook")
            .await?
            .is_some()
    );
    Ok(())
}

#[tokio::test]
async fn a_broken_manifest_or_a_lost_repository_deletes_nothing() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    let app = story.app_name("fragile");
    story.create_app(
        &app,
        "guestbook",
        &["--sync-policy", "automated", "--auto-prune", "--self-heal"],
    )?;
    story
        .wait_app(&app, "Synced and Healthy", is::synced_and_healthy)
        .await?;

    // A YAML syntax error in one file.
    story.repo.write(
        "guestbook/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: [oops\n",
    )?;
    story.repo.commit("broken yaml")?;
    let message = story
        .wait_condition(&app, condition::COMPARISON_ERROR)
        .await?;
    assert!(
        message.contains("service.yaml"),
        "the error names the file: {message}"
    );
    assert!(message.contains(&app), "the error names the app: {message}");
    tokio::time::sleep(Duration::from_secs(8)).await;
    everything_still_there(&story).await?;
    // The last known resources stay listed.
    assert_eq!(story.app(&app).await?.status.unwrap().resources.len(), 3);

    // Fixed again: the condition goes away.
    story.repo.write(
        "guestbook/service.yaml",
        ferry_e2e::GUESTBOOK
            .iter()
            .find(|(p, _)| p.ends_with("service.yaml"))
            .unwrap()
            .1,
    )?;
    story.repo.commit("fixed")?;
    story
        .wait_app(&app, "no ComparisonError and Synced", |a| {
            !is::condition(condition::COMPARISON_ERROR)(a) && is::synced(a)
        })
        .await?;

    // The repository disappears.
    std::fs::rename(
        story.repo.bare_path(),
        story.repo.bare_path().with_extension("moved"),
    )?;
    story
        .wait_app(
            &app,
            "a ComparisonError for the lost repository",
            is::condition(condition::COMPARISON_ERROR),
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(8)).await;
    everything_still_there(&story).await?;
    std::fs::rename(
        story.repo.bare_path().with_extension("moved"),
        story.repo.bare_path(),
    )?;
    Ok(())
}

#[tokio::test]
async fn an_empty_render_does_not_prune_without_allow_empty() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    let app = story.app_name("emptied");
    story.create_app(
        &app,
        "guestbook",
        &["--sync-policy", "automated", "--auto-prune"],
    )?;
    story
        .wait_app(&app, "Synced and Healthy", is::synced_and_healthy)
        .await?;

    for (path, _) in ferry_e2e::GUESTBOOK {
        story.repo.remove(path)?;
    }
    story
        .repo
        .write("guestbook/README.md", "nothing here any more\n")?;
    let empty = story.repo.commit("everything removed")?;
    let refused = story
        .wait_app(&app, "a failed automated sync at the empty commit", |a| {
            is::at_revision(&empty)(a)
                && is::operation_phase(a).is_some_and(|p| {
                    p.is_completed() && p != ferry_types::application::OperationPhase::Succeeded
                })
        })
        .await?;
    let message = refused.status.unwrap().operation_state.unwrap().message;
    assert!(message.contains("desired state is empty"), "{message}");
    // Automation does not try again at that revision, and says why.
    let reason = story.wait_condition(&app, condition::SYNC_ERROR).await?;
    assert!(
        reason.contains(&empty) && reason.contains("desired state is empty"),
        "{reason}"
    );
    everything_still_there(&story).await?;
    Ok(())
}
