//! `/metrics` on its own listener: requests counted by route template and status, logins by
//! result, webhook deliveries by provider and result, and nothing of what callers sent (names,
//! paths, users, passwords, tokens) in the labels.

use anyhow::Result;
use ferry_testkit::kube::TestContext;
use serde_json::json;

use crate::harness::{Server, admin_password, create_app, install_crds};

#[tokio::test]
async fn requests_logins_and_webhooks_are_counted_by_template() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    create_app(&ctx, "guestbook", "default").await?;
    let server = Server::start(&ctx).await?;

    let password = admin_password(&ctx).await?;
    assert_eq!(server.login("mallory", "hunter2").await?.status, 401);
    let login = server.login("admin", &password).await?;
    assert_eq!(login.status, 200, "{:?}", login.body);
    let token = login.body["token"].as_str().unwrap().to_string();
    let app = server
        .get("/api/v1/applications/guestbook", Some(&token))
        .await?;
    assert_eq!(app.status, 200, "{:?}", app.body);
    // As Argo CD, a missing app is "permission denied": its absence is not told.
    let missing = server
        .get("/api/v1/applications/no-such-app-x1y2", Some(&token))
        .await?;
    assert_eq!(missing.status, 403, "{:?}", missing.body);
    let anonymous = server.get("/api/v1/applications", None).await?;
    assert_eq!(anonymous.status, 401);
    let nowhere = server.get("/not/a/route/for-eve", Some(&token)).await?;
    assert_eq!(nowhere.status, 404);
    // No webhook secret is configured: the delivery is refused.
    let delivery = server
        .post_raw(
            "/api/webhook",
            &[
                ("X-GitHub-Event", "push"),
                ("X-Hub-Signature-256", "sha256=00"),
            ],
            json!({"ref": "refs/heads/main"}).to_string().as_bytes(),
        )
        .await?;
    assert_eq!(delivery.status, 401, "{:?}", delivery.body);

    let text = server.metrics().await?;
    for line in [
        "# TYPE ferry_api_requests_total counter",
        r#"ferry_api_requests_total{method="POST",route="/api/v1/session",code="401"} 1"#,
        r#"ferry_api_requests_total{method="POST",route="/api/v1/session",code="200"} 1"#,
        r#"ferry_api_requests_total{method="GET",route="/api/v1/applications/{name}",code="200"} 1"#,
        r#"ferry_api_requests_total{method="GET",route="/api/v1/applications/{name}",code="403"} 1"#,
        r#"ferry_api_requests_total{method="GET",route="/api/v1/applications",code="401"} 1"#,
        r#"ferry_api_requests_total{method="GET",route="unmatched",code="404"} 1"#,
        r#"ferry_api_requests_total{method="POST",route="/api/webhook",code="401"} 1"#,
        "# TYPE ferry_api_request_duration_seconds histogram",
        r#"ferry_api_request_duration_seconds_count{method="GET",route="/api/v1/applications/{name}",code="200"} 1"#,
        r#"argocd_login_request_total{status="success"} 1"#,
        r#"argocd_login_request_total{status="failure"} 1"#,
        r#"ferry_webhook_requests_total{provider="GitHub",result="refused"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line}\n{text}");
    }
    for raw in [
        "guestbook",
        "no-such-app",
        "for-eve",
        "mallory",
        "admin",
        password.as_str(),
        token.as_str(),
        "hunter2",
    ] {
        assert!(!text.contains(raw), "{raw:?} in the metrics:\n{text}");
    }
    server.stop().await?;
    Ok(())
}
