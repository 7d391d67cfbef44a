//! Preview environments from pull requests, told from a user's seat: a pull-request
//! ApplicationSet over a real Gitea repository makes one Application per open pull request
//! labelled `preview`, deploying the pull request's branch, which the application controller
//! syncs; closing the pull request removes its Application. When the token's Secret goes
//! missing, the ApplicationSet says so in an ErrorOccurred condition and every preview stays.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use ferry_e2e::appset::AppSetController;
use ferry_e2e::{Story, TIMEOUT, is};
use ferry_testkit::gitea::Gitea;
use ferry_types::ApplicationSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

/// A ConfigMap manifest saying which branch it was deployed from.
fn preview_manifest(branch: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: preview-{}\ndata:\n  branch: {branch}\n",
        branch.replace('/', "-")
    )
}

/// The Applications `appset` owns that are not being deleted, sorted.
async fn owned(story: &Story, appset: &str) -> Result<Vec<String>> {
    let mut names: Vec<_> = story
        .apps()
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter(|app| {
            app.metadata.deletion_timestamp.is_none()
                && app
                    .owner_references()
                    .iter()
                    .any(|o| o.kind == "ApplicationSet" && o.name == appset)
        })
        .map(|app| app.name_any())
        .collect();
    names.sort();
    Ok(names)
}

async fn wait_owned(
    story: &Story,
    controller: &AppSetController,
    expected: &[String],
) -> Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let names = owned(story, "previews").await?;
        if names == expected {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "previews owns {names:?}, not {expected:?}\n--- appset controller log:\n{}",
                controller.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn a_preview_app_per_open_pull_request_gone_when_it_closes() -> Result<()> {
    let mut story = Story::new().await?;
    let ns = story.namespace().to_string();

    // A Gitea repository with two labelled pull requests and one without the label.
    let gitea = Gitea::start()?;
    gitea.create_org("shop").await?;
    gitea.create_repo("shop", "web").await?;
    let preview = gitea.create_label("shop", "web", "preview").await?;
    for branch in ["feature/cart", "fix/prices", "draft"] {
        gitea.create_branch("shop", "web", branch, "main").await?;
        gitea
            .put_file(
                "shop",
                "web",
                branch,
                "deploy/configmap.yaml",
                &preview_manifest(branch),
            )
            .await?;
    }
    let cart = gitea
        .open_pull(
            "shop",
            "web",
            "feature/cart",
            "main",
            "Add a cart",
            &[preview],
        )
        .await?;
    let prices = gitea
        .open_pull(
            "shop",
            "web",
            "fix/prices",
            "main",
            "Fix prices",
            &[preview],
        )
        .await?;
    gitea
        .open_pull("shop", "web", "draft", "main", "Draft", &[])
        .await?;

    // Its API token in a Secret, and the ApplicationSet: one app per labelled pull request,
    // deploying the pull request's head into the story's namespace, synced automatically.
    let secrets: Api<Secret> = story.ctx.api();
    let token: Secret = serde_json::from_value(json!({
        "metadata": {"name": "gitea-token"},
        "stringData": {"token": gitea.token()},
    }))?;
    secrets.create(&PostParams::default(), &token).await?;
    story.start_controller()?;
    let controller = AppSetController::start_as(
        &story,
        story.ctx.kubeconfig(),
        &["--allowed-scm-providers", &gitea.url()],
    )?;
    let appset: ApplicationSet = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": "previews"},
        "spec": {
            "goTemplate": true,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [{"pullRequest": {
                "gitea": {
                    "owner": "shop",
                    "repo": "web",
                    "api": gitea.url(),
                    "tokenRef": {"secretName": "gitea-token", "key": "token"},
                    "labels": ["preview"],
                },
                "requeueAfterSeconds": 2,
            }}],
            "template": {
                "metadata": {"name": format!("web-pr-{{{{.number}}}}-{ns}")},
                "spec": {
                    "project": "default",
                    "source": {
                        "repoURL": gitea.clone_url("shop", "web"),
                        "targetRevision": "{{.branch}}",
                        "path": "deploy",
                    },
                    "destination": {"server": "https://kubernetes.default.svc", "namespace": ns},
                    "syncPolicy": {"automated": {"prune": true}},
                },
            },
        },
    }))?;
    let appsets: Api<ApplicationSet> = story.ctx.api();
    appsets.create(&PostParams::default(), &appset).await?;
    let app = |number: i64| format!("web-pr-{number}-{ns}");

    // One preview per labelled pull request, each synced from its own branch.
    wait_owned(&story, &controller, &[app(cart), app(prices)]).await?;
    story
        .wait_app(&app(cart), "Synced and Healthy", is::synced_and_healthy)
        .await?;
    story
        .wait_app(&app(prices), "Synced and Healthy", is::synced_and_healthy)
        .await?;
    let configmaps: Api<ConfigMap> = story.ctx.api();
    let deployed = configmaps.get("preview-feature-cart").await?;
    assert_eq!(deployed.data.unwrap()["branch"], "feature/cart");

    // The cart pull request closes: its preview goes, with what it deployed.
    gitea.close_pull("shop", "web", cart).await?;
    wait_owned(&story, &controller, &[app(prices)]).await?;
    story
        .eventually("the closed pull request's ConfigMap deleted", || async {
            Ok(configmaps.get_opt("preview-feature-cart").await?.is_none())
        })
        .await?;

    // The token's Secret goes missing: an ErrorOccurred condition names it, and the preview
    // stays.
    secrets
        .delete("gitea-token", &DeleteParams::default())
        .await?;
    let deadline = Instant::now() + TIMEOUT;
    let message = loop {
        let status = appsets.get("previews").await?.status.unwrap_or_default();
        if let Some(c) = status
            .conditions
            .iter()
            .find(|c| c.type_ == "ErrorOccurred" && c.status == "True")
        {
            break c.message.clone();
        }
        if Instant::now() > deadline {
            bail!(
                "no ErrorOccurred condition: {status:?}\n{}",
                controller.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(message.contains(&format!("{ns}/gitea-token")), "{message}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(owned(&story, "previews").await?, [app(prices)]);
    assert!(configmaps.get_opt("preview-fix-prices").await?.is_some());
    assert!(
        !controller.log().contains(gitea.token()),
        "the token must never be logged"
    );
    Ok(())
}
