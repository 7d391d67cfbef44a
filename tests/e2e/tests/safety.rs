//! Bad input loses nothing: a manifest that does not parse, a repository that cannot be
//! reached, or a render over one of the controller's limits puts a ComparisonError on the app
//! and leaves every resource in place, even with automated prune on.

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

#[tokio::test]
async fn a_render_over_a_limit_deletes_nothing_and_names_the_flag_that_raises_it() -> Result<()> {
    let mut story = Story::new().await?;
    story.set_controller_flags(&["--max-manifest-size", "16Ki", "--tool-timeout", "3"]);
    story.start_controller()?;
    let app = story.app_name("bounded");
    story.create_app(
        &app,
        "guestbook",
        &["--sync-policy", "automated", "--auto-prune", "--self-heal"],
    )?;
    story
        .wait_app(&app, "Synced and Healthy", is::synced_and_healthy)
        .await?;

    // A ConfigMap of 20 KiB takes the app over 16 KiB of manifests.
    story.repo.write(
        "guestbook/big.yaml",
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  x: {}\n",
            "y".repeat(20 << 10)
        ),
    )?;
    story.repo.commit("a big ConfigMap")?;
    let message = story
        .wait_condition(&app, condition::COMPARISON_ERROR)
        .await?;
    assert!(
        message.contains("over the limit of 16 KiB (--max-manifest-size)"),
        "the error names the limit and its flag: {message}"
    );
    assert!(message.contains(&app), "the error names the app: {message}");
    tokio::time::sleep(Duration::from_secs(6)).await;
    everything_still_there(&story).await?;
    assert!(story.ctx.api::<ConfigMap>().get_opt("big").await?.is_none());

    // The flag raises it: the same commit syncs under a controller allowed 1 MiB.
    story.kill_controller()?;
    story.set_controller_flags(&["--max-manifest-size", "1Mi", "--tool-timeout", "3"]);
    story.start_controller()?;
    story
        .wait_app(&app, "Synced with the big ConfigMap", |a| {
            !is::condition(condition::COMPARISON_ERROR)(a) && is::synced(a)
        })
        .await?;
    let deadline = std::time::Instant::now() + ferry_e2e::TIMEOUT;
    while story.ctx.api::<ConfigMap>().get_opt("big").await?.is_none() {
        anyhow::ensure!(std::time::Instant::now() < deadline, "big was not synced");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // A Jsonnet file that never ends is killed at the tool timeout; nothing is pruned.
    story.repo.write(
        "guestbook/loop.jsonnet",
        "{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'loop' }, data: { n: std.toString(\n\
           std.foldl(function(a, x) a + std.foldl(function(b, y) b + y, std.range(1, 2e9), 0), std.range(1, 2e9), 0)) } }",
    )?;
    story.repo.commit("an endless Jsonnet program")?;
    let app_state = story
        .wait_app(
            &app,
            "a ComparisonError for the endless Jsonnet",
            is::condition_saying(condition::COMPARISON_ERROR, "(--tool-timeout)"),
        )
        .await?;
    let message = &app_state
        .status
        .as_ref()
        .and_then(|s| s.condition(condition::COMPARISON_ERROR))
        .expect("waited for it")
        .message;
    assert!(
        message.contains(
            "jsonnet guestbook/loop.jsonnet did not finish within 3s and was killed (--tool-timeout)"
        ),
        "{message}"
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    everything_still_there(&story).await?;
    assert!(story.ctx.api::<ConfigMap>().get_opt("big").await?.is_some());
    Ok(())
}
