//! A Git push reaches the cluster without waiting for a resync: the provider's signed webhook
//! makes the API server refresh exactly the apps of that repository and branch, and automated
//! sync deploys the new commit. The controller here resyncs only every 10 minutes, so nothing
//! else could have.

use std::time::{Duration, Instant};

use anyhow::Result;
use ferry_e2e::{Story, is};
use hmac::{Hmac, Mac};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use sha2::Sha256;

const SECRET: &str = "the e2e webhook secret";

#[tokio::test]
async fn a_signed_push_is_deployed_at_once_and_a_forged_one_changes_nothing() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller_resyncing(600)?;
    let app = story.app_name("guestbook");
    story.create_app(
        &app,
        "guestbook",
        &["--sync-policy", "automated", "--revision", "HEAD"],
    )?;
    let first = story.repo.head()?;
    // Healthy too: a comparison that a rollout's status change causes looks up the branch
    // again, and would find the commit below without any webhook.
    story
        .wait_app(&app, "Synced and Healthy at the first commit", |a| {
            is::synced_and_healthy(a) && is::at_revision(&first)(a)
        })
        .await?;
    let server = story.start_server().await?;
    let settings = json!({"stringData": {"webhook.github.secret": SECRET}});
    story
        .ctx
        .api::<Secret>()
        .patch(
            "argocd-secret",
            &PatchParams::default(),
            &Patch::Merge(&settings),
        )
        .await?;

    let deployment =
        std::fs::read_to_string(story.repo.work_path().join("guestbook/deployment.yaml"))?;
    story.repo.write(
        "guestbook/deployment.yaml",
        deployment.replace("replicas: 2", "replicas: 4"),
    )?;
    let second = story.repo.commit("four replicas")?;
    let url = story.repo.file_url();
    let payload = json!({
        "ref": "refs/heads/main",
        "before": first,
        "after": second,
        "repository": {"html_url": url, "clone_url": url, "default_branch": "main"},
        "commits": [{"id": second, "modified": ["guestbook/deployment.yaml"]}],
    })
    .to_string();
    let deliver = |signature: String| {
        let payload = payload.clone();
        let address = server.address();
        async move {
            reqwest::Client::new()
                .post(format!("http://{address}/api/webhook"))
                .header("X-GitHub-Event", "push")
                .header("X-GitHub-Delivery", "e2e")
                .header("X-Hub-Signature-256", signature)
                .header("Content-Type", "application/json")
                .body(payload)
                .send()
                .await
        }
    };

    // A forgery is refused and nothing moves.
    let forged = deliver(signature("not the secret", payload.as_bytes())).await?;
    assert_eq!(forged.status(), 401, "{:?}", forged.text().await?);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let app_now = story.app(&app).await?;
    assert!(
        is::at_revision(&first)(&app_now),
        "moved without a valid webhook"
    );

    // The settings watch has the secret by now; the signed push is deployed at once.
    let pushed = Instant::now();
    let accepted = deliver(signature(SECRET, payload.as_bytes())).await?;
    assert_eq!(accepted.status(), 200, "{:?}", accepted.text().await?);
    story
        .wait_app(&app, "synced to the pushed commit", |a| {
            is::synced(a) && is::at_revision(&second)(a)
        })
        .await?;
    let deployed = pushed.elapsed();
    let replicas = story
        .ctx
        .api::<Deployment>()
        .get("guestbook")
        .await?
        .spec
        .and_then(|spec| spec.replicas);
    assert_eq!(replicas, Some(4));
    eprintln!("push to synced: {deployed:?}");
    assert!(deployed < Duration::from_secs(30), "took {deployed:?}");
    server.stop().await?;
    Ok(())
}

/// GitHub's `X-Hub-Signature-256`.
fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
