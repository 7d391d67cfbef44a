//! The status badge: anyone may fetch it, and it tells nothing until argocd-cm turns it on.

use std::time::Duration;

use anyhow::Result;
use ferry_testkit::kube::TestContext;
use ferry_types::Application;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::harness::{Server, create_app, install_crds, put_config_map};

#[tokio::test]
async fn a_badge_shows_status_only_once_enabled_and_without_login() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    create_app(&ctx, "guestbook", "default").await?;
    let status = json!({"status": {
        "health": {"status": "Healthy"},
        "sync": {"status": "Synced", "revision": "0123456789abcdef"},
        "operationState": {"phase": "Succeeded", "message": "", "startedAt": "2026-12-06T00:00:00Z",
            "operation": {"sync": {}}, "syncResult": {"revision": "0123456789abcdef"}},
    }});
    ctx.api::<Application>()
        .patch("guestbook", &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    put_config_map(&ctx, "argocd-cm", &[]).await?;
    let server = Server::start(&ctx).await?;
    let badge = |query: &str| {
        let path = format!("/api/badge?{query}");
        let server = &server;
        async move { server.raw("GET", &path, &[], b"").await }
    };

    let (status, head, svg) = badge("name=guestbook").await?;
    assert_eq!(status, 200, "{svg}");
    assert!(
        head.to_lowercase().contains("content-type: image/svg+xml"),
        "{head}"
    );
    assert!(
        head.to_lowercase()
            .contains("cache-control: private, no-store"),
        "{head}"
    );
    assert!(
        svg.contains(">Unknown</text>") && !svg.contains("Healthy"),
        "disabled: {svg}"
    );

    let enable = json!({"data": {"statusbadge.enabled": "true"}});
    ctx.api::<ConfigMap>()
        .patch("argocd-cm", &PatchParams::default(), &Patch::Merge(&enable))
        .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let svg = loop {
        let (_, _, svg) = badge("name=guestbook&revision=true").await?;
        if svg.contains("Healthy") || tokio::time::Instant::now() > deadline {
            break svg;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        svg.contains(">Healthy</text>") && svg.contains(">Synced</text>"),
        "{svg}"
    );
    assert!(svg.contains(">(0123456)</text>"), "{svg}");

    let (_, _, svg) = badge("name=nothing-here").await?;
    assert!(svg.contains(">Not Found</text>"), "{svg}");
    let (_, _, svg) = badge(&format!("name=guestbook&namespace=not-{}", ctx.namespace())).await?;
    assert!(
        svg.contains(">Not Found</text>"),
        "another namespace: {svg}"
    );
    let (_, _, svg) = badge("project=default&showAppName=true").await?;
    assert!(
        svg.contains(">Healthy</text>") && svg.contains(">Synced</text>"),
        "{svg}"
    );
    let (_, _, svg) = badge("project=team-a").await?;
    assert!(
        svg.contains(">Unknown</text>"),
        "a project without apps: {svg}"
    );
    for bad in ["name=Not_An_App", "namespace=..", "project=a/b"] {
        assert_eq!(badge(bad).await?.0, 400, "{bad}");
    }
    server.stop().await?;
    Ok(())
}
