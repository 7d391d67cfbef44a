//! The `ferry-server` binary against the sandbox: logins, lockouts, RBAC, password changes, API
//! tokens, Git webhooks, SSO with Dex, and that no secret leaks into responses or the log.

mod app_details;
mod applications;
mod applicationsets;
mod badge;
mod clusters;
mod grpc;
mod hardening;
mod harness;
mod metrics;
mod projects;
mod rbac_matrix;
mod repositories;
mod settings;
mod sso;
mod static_assets;
mod tls;
mod webhook;
mod workflow_events;
mod workflows;

use std::time::Duration;

use anyhow::Result;
use ferry_auth::auth::PasswordHash;
use ferry_testkit::kube::TestContext;
use harness::{Server, admin_password, create_app, install_crds, put_config_map};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

#[tokio::test]
async fn the_initial_admin_logs_in_and_lists_apps_and_guesses_are_locked_out() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    create_app(&ctx, "guestbook", "default").await?;
    let server = Server::start(&ctx).await?;

    let version = server.get("/api/version", None).await?;
    assert_eq!(version.status, 200);
    assert!(version.body["Version"].as_str().unwrap().starts_with('v'));

    let password = admin_password(&ctx).await?;
    let wrong = server.login("admin", "not the password").await?;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body["message"], "Invalid username or password");
    assert_eq!(wrong.body["code"], 16);

    let login = server.login("admin", &password).await?;
    assert_eq!(login.status, 200, "{:?}", login.body);
    let token = login.body["token"].as_str().unwrap().to_string();

    let apps = server.get("/api/v1/applications", Some(&token)).await?;
    assert_eq!(apps.status, 200, "{:?}", apps.body);
    let names: Vec<&str> = apps.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|app| app["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["guestbook"]);
    let other_project = server
        .get("/api/v1/applications?projects=team-a", Some(&token))
        .await?;
    assert_eq!(other_project.body["items"], json!([]));

    let anonymous = server.get("/api/v1/applications", None).await?;
    assert_eq!(anonymous.status, 401);
    let forged = server
        .get("/api/v1/applications", Some("eyJhbGciOiJIUzI1NiJ9.e30.x"))
        .await?;
    assert_eq!(forged.status, 401);

    let info = server.get("/api/v1/session/userinfo", Some(&token)).await?;
    assert_eq!(info.body["loggedIn"], true);
    assert_eq!(info.body["username"], "admin");
    let info = server.get("/api/v1/session/userinfo", None).await?;
    assert_eq!(info.body["loggedIn"], false);

    // A burst of guesses locks the username out, whether it exists or not.
    for _ in 0..5 {
        assert_eq!(server.login("mallory", "guess").await?.status, 401);
    }
    let locked = server.login("mallory", "guess").await?;
    assert_eq!(locked.status, 429);
    assert!(
        locked.body["message"]
            .as_str()
            .unwrap()
            .contains("try again in"),
        "{:?}",
        locked.body
    );

    let log = server.stop().await?;
    harness::assert_no_secrets(&log, &[&password, &token]);
    assert!(log.contains("login failed"), "{log}");
    Ok(())
}

#[tokio::test]
async fn a_readonly_user_can_get_but_not_sync() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    create_app(&ctx, "guestbook", "default").await?;
    put_config_map(&ctx, "argocd-cm", &[("accounts.alice", "login")]).await?;
    put_config_map(
        &ctx,
        "argocd-rbac-cm",
        &[("policy.csv", "g, alice, role:readonly")],
    )
    .await?;
    let alice_password = "alice's password";
    let hash = PasswordHash::new(alice_password)?;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "argocd-secret"},
        "stringData": {"accounts.alice.password": hash.as_str()},
    }))?;
    Api::<Secret>::namespaced(ctx.client(), ctx.namespace())
        .create(&PostParams::default(), &secret)
        .await?;
    let server = Server::start(&ctx).await?;

    let login = server.login("alice", alice_password).await?;
    assert_eq!(login.status, 200, "{:?}", login.body);
    let alice = login.body["token"].as_str().unwrap().to_string();

    let app = server
        .get("/api/v1/applications/guestbook", Some(&alice))
        .await?;
    assert_eq!(app.status, 200, "{:?}", app.body);
    assert_eq!(app.body["spec"]["project"], "default");
    let sync = server
        .post(
            "/api/v1/applications/guestbook/sync",
            Some(&alice),
            json!({}),
        )
        .await?;
    assert_eq!(sync.status, 403);
    assert_eq!(sync.body["message"], "permission denied");
    for (path, expected) in [
        ("applications/get/default/guestbook", "yes"),
        ("applications/sync/default/guestbook", "no"),
        ("accounts/update/admin", "no"),
    ] {
        let answer = server
            .get(&format!("/api/v1/account/can-i/{path}"), Some(&alice))
            .await?;
        assert_eq!(answer.status, 200, "{path}: {:?}", answer.body);
        assert_eq!(answer.body, json!({ "value": expected }), "{path}");
    }
    let unknown = server
        .get("/api/v1/account/can-i/rockets/launch/x", Some(&alice))
        .await?;
    assert_eq!(unknown.status, 400);

    // A missing app is a 403 too, for everyone.
    let missing = server
        .get("/api/v1/applications/nothing-here", Some(&alice))
        .await?;
    assert_eq!(missing.status, 403);

    // The admin may sync: the operation is written as `ferry app sync --async` writes it.
    let admin = server
        .login("admin", &admin_password(&ctx).await?)
        .await?
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        server
            .get("/api/v1/applications/nothing-here", Some(&admin))
            .await?
            .status,
        403
    );
    let sync = server
        .post(
            "/api/v1/applications/guestbook/sync",
            Some(&admin),
            json!({"prune": true, "syncOptions": {"items": ["CreateNamespace=true"]}}),
        )
        .await?;
    assert_eq!(sync.status, 200, "{:?}", sync.body);
    assert_eq!(
        sync.body["operation"],
        json!({
            "sync": {"prune": true, "syncOptions": ["CreateNamespace=true"]},
            "initiatedBy": {"username": "admin"},
        })
    );
    let again = server
        .post(
            "/api/v1/applications/guestbook/sync",
            Some(&admin),
            json!({}),
        )
        .await?;
    assert_eq!(again.status, 400);
    assert!(
        again.body["message"]
            .as_str()
            .unwrap()
            .contains("already in progress")
    );

    // The account list shows alice to the admin, and no hash.
    let accounts = server.get("/api/v1/account", Some(&admin)).await?;
    let text = accounts.body.to_string();
    assert!(text.contains("\"alice\""), "{text}");
    assert!(!text.contains(hash.as_str()), "{text}");

    let log = server.stop().await?;
    assert!(log.contains("permission denied"), "{log}");
    assert!(log.contains("subject=alice"), "{log}");
    harness::assert_no_secrets(&log, &[alice_password, &alice, &admin, hash.as_str()]);
    Ok(())
}

#[tokio::test]
async fn api_tokens_and_password_changes_revoke_what_came_before() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    put_config_map(&ctx, "argocd-cm", &[("accounts.ci", "apiKey")]).await?;
    let server = Server::start(&ctx).await?;
    let password = admin_password(&ctx).await?;
    let admin = server.login("admin", &password).await?.body["token"]
        .as_str()
        .unwrap()
        .to_string();

    // An API token works once its record is saved, and stops when the record is deleted.
    let created = server
        .post(
            "/api/v1/account/ci/token",
            Some(&admin),
            json!({"expiresIn": 3600}),
        )
        .await?;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let ci = created.body["token"].as_str().unwrap().to_string();
    server
        .wait_for_status("/api/v1/applications", &ci, 200)
        .await?;
    let account = server.get("/api/v1/account/ci", Some(&admin)).await?;
    assert_eq!(account.status, 200);
    let tokens = account.body["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0]["expiresAt"].as_i64().unwrap() > 0);
    assert!(!account.body.to_string().contains(&ci));
    let id = tokens[0]["id"].as_str().unwrap().to_string();
    // ci has no role: it sees its own account, not the admin's.
    assert_eq!(
        server.get("/api/v1/account/ci", Some(&ci)).await?.status,
        200
    );
    assert_eq!(
        server.get("/api/v1/account/admin", Some(&ci)).await?.status,
        403
    );
    let deleted = server
        .delete(&format!("/api/v1/account/ci/token/{id}"), Some(&admin))
        .await?;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    server
        .wait_for_status("/api/v1/applications", &ci, 401)
        .await?;
    let gone = server
        .delete(&format!("/api/v1/account/ci/token/{id}"), Some(&admin))
        .await?;
    assert_eq!(gone.status, 404);

    // A password change needs the current password and ends the sessions issued before it.
    let new_password = "a brand new password";
    let refused = server
        .put(
            "/api/v1/account/password",
            Some(&admin),
            json!({"currentPassword": "wrong", "newPassword": new_password}),
        )
        .await?;
    assert_eq!(refused.status, 400);
    let too_short = server
        .put(
            "/api/v1/account/password",
            Some(&admin),
            json!({"currentPassword": password, "newPassword": "short"}),
        )
        .await?;
    assert_eq!(too_short.status, 400);
    // Tokens issued in the second of the change stay valid: let that second pass.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let changed = server
        .put(
            "/api/v1/account/password",
            Some(&admin),
            json!({"currentPassword": password, "newPassword": new_password}),
        )
        .await?;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    server
        .wait_for_status("/api/v1/applications", &admin, 401)
        .await?;
    assert_eq!(server.login("admin", &password).await?.status, 401);
    let fresh = server.login("admin", new_password).await?;
    assert_eq!(fresh.status, 200, "{:?}", fresh.body);
    let fresh_token = fresh.body["token"].as_str().unwrap().to_string();

    let log = server.stop().await?;
    harness::assert_no_secrets(&log, &[&password, new_password, &admin, &ci, &fresh_token]);
    Ok(())
}
