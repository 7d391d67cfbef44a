//! ferry deploys a workload whose containers really run: on the sandbox with a real node, an app
//! from a Git server syncs a Deployment whose pod runs busybox on the real node, and the pod's log
//! says what Git said; a commit changes the message, and the rolled-out pod says the new one.

use anyhow::Result;
use ferry_e2e::pods::running_pod_says;
use ferry_e2e::{Story, is};
use ferry_testkit::git::GitDaemon;
use ferry_testkit::real_node;

#[tokio::test]
async fn an_app_runs_a_real_container_whose_log_says_what_git_said() -> Result<()> {
    let mut story = Story::on_real_node().await?;
    story.repo.write(
        "hello/deployment.yaml",
        real_node::hello_deployment("hello from git"),
    )?;
    let first = story.repo.commit("hello")?;
    let server = GitDaemon::start(&story.repo)?;
    story.start_controller()?;
    let app = story.app_name("hello");
    story.create_app_from(
        &server.url(),
        &app,
        "hello",
        &["--sync-policy", "automated"],
    )?;

    // Healthy means the Deployment's pod is really running and ready on the real node.
    story
        .wait_app(&app, "Synced and Healthy at the first commit", |a| {
            is::synced_and_healthy(a) && is::at_revision(&first)(a)
        })
        .await?;
    let node = real_node::node_name()?;
    story
        .eventually("the pod says hello", || async {
            Ok(running_pod_says(&story.ctx.api(), "hello", &node).await? == "hello from git")
        })
        .await?;

    // A commit changes the message: the Deployment rolls out a new pod that says it.
    story.repo.write(
        "hello/deployment.yaml",
        real_node::hello_deployment("bonjour from git"),
    )?;
    let second = story.repo.commit("bonjour")?;
    story
        .wait_app(&app, "Synced and Healthy at the second commit", |a| {
            is::synced_and_healthy(a) && is::at_revision(&second)(a)
        })
        .await?;
    story
        .eventually("the new pod says bonjour", || async {
            Ok(running_pod_says(&story.ctx.api(), "hello", &node).await? == "bonjour from git")
        })
        .await?;
    Ok(())
}
