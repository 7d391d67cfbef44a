//! Logging in and out, the config file, accounts, passwords and API tokens.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use anyhow::Result;
use ferry_testkit::kube::TestContext;
use serde_json::Value;

use crate::support::{Ferry, admin_password, assert_no_secrets, start_server, texts};

#[tokio::test]
async fn login_accounts_and_api_tokens() -> Result<()> {
    let ctx = TestContext::new().await?;
    let server = start_server(&ctx, &[("accounts.admin", "apiKey, login")]).await?;
    let password = admin_password(&ctx).await?;
    let address = server.address();
    let admin = Ferry::new();

    // Without a context the resource commands stay in core mode (here: no kubeconfig).
    let err = admin.fails(&["app", "list"]).await;
    assert!(
        err.contains("kubeconfig") || err.contains("Kubernetes"),
        "{err}"
    );

    let wrong = admin
        .command(&["login", &address, "--plaintext", "--username", "admin"])
        .env("FERRY_PASSWORD", "not the password")
        .output()
        .await?;
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(stderr.contains("Invalid username or password"), "{stderr}");
    assert!(
        !admin.config_path().exists(),
        "a failed login writes nothing"
    );

    let out = admin.login(&server, "admin", &password).await;
    assert_eq!(
        out,
        format!("'admin:login' logged in successfully\nContext '{address}' updated\n")
    );
    let mode = std::fs::metadata(admin.config_path())?.permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the config holds a token");
    let config = admin.config();
    assert_eq!(config["current-context"], address.as_str());
    assert_eq!(config["servers"][0]["server"], address.as_str());
    assert_eq!(config["servers"][0]["plain-text"], true);
    let session = admin.token().expect("a token in the config");

    let contexts = admin.ok(&["context"]).await;
    assert!(
        contexts.contains(&format!("*        {address}")),
        "{contexts}"
    );

    let accounts = admin.ok(&["account", "list"]).await;
    let rows: Vec<Vec<&str>> = accounts
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["NAME", "ENABLED", "CAPABILITIES"]);
    assert_eq!(rows[1][..2], ["admin", "true"]);
    let capabilities = rows[1][2..].join(" ");
    assert!(
        capabilities.contains("apiKey") && capabilities.contains("login"),
        "{accounts}"
    );
    let info = admin.ok(&["account", "get-user-info"]).await;
    assert!(info.contains("Logged In:  true\n"), "{info}");
    assert!(info.contains("Username:   admin\n"), "{info}");
    let can = admin
        .ok(&[
            "account",
            "can-i",
            "sync",
            "applications",
            "default/guestbook",
        ])
        .await;
    assert_eq!(can, "yes\n");

    // An API token works on its own, from the flag or the environment.
    let token = admin
        .ok(&["account", "generate-token", "--expires-in", "1h"])
        .await
        .trim()
        .to_string();
    let stranger = Ferry::new();
    let user_info = [
        "account",
        "get-user-info",
        "--server",
        &address,
        "--plaintext",
        "--auth-token",
        &token,
    ];
    // The token's record reaches the server's settings through its watch, a moment later.
    let mut with_flag = String::new();
    for _ in 0..50 {
        with_flag = stranger.ok(&user_info).await;
        if with_flag.contains("Logged In:  true") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(with_flag.contains("Username:   admin\n"), "{with_flag}");
    let with_env = stranger
        .command(&[
            "account",
            "get",
            "--server",
            &address,
            "--plaintext",
            "-o",
            "json",
        ])
        .env("FERRY_AUTH_TOKEN", &token)
        .output()
        .await?;
    assert!(with_env.status.success());
    let account: Value = serde_json::from_slice(&with_env.stdout)?;
    let id = account["tokens"][0]["id"].as_str().unwrap().to_string();
    assert!(account["tokens"][0]["expiresAt"].as_i64().unwrap() > 0);
    let shown = admin.ok(&["account", "get"]).await;
    assert!(shown.contains("\nTokens:\nID   "), "{shown}");
    assert!(shown.contains(&format!("\n{id}  ")), "{shown}");
    assert_no_secrets(&shown, &[&token, &session, &password]);

    // A deleted token stops working.
    let out = admin.ok(&["account", "delete-token", &id]).await;
    assert_eq!(out, format!("token '{id}' of account 'admin' deleted\n"));
    let with_deleted = [
        "app",
        "list",
        "--server",
        &address,
        "--plaintext",
        "--auth-token",
        &token,
    ];
    // Revocation reaches the server through its settings watch, a moment later.
    let mut err = String::new();
    for _ in 0..50 {
        let out = stranger.run(&with_deleted).await;
        if !out.status.success() {
            err = texts(&out).1;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        err.contains("not logged in or the session expired") && err.contains("ferry login"),
        "{err}"
    );
    assert_no_secrets(&err, &[&token]);

    let log = server.stop().await?;
    assert_no_secrets(&log, &[&password, &token, &session]);
    Ok(())
}

#[tokio::test]
async fn a_password_change_ends_old_sessions_and_logout_forgets_the_token() -> Result<()> {
    let ctx = TestContext::new().await?;
    let server = start_server(&ctx, &[]).await?;
    let password = admin_password(&ctx).await?;
    let admin = Ferry::new();
    admin.login(&server, "admin", &password).await;
    let old = admin.token().unwrap();
    // Tokens issued in the second of a password change stay valid (times are in seconds).
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let new_password = "a new password 2 remember";
    let out = admin
        .ok(&[
            "account",
            "update-password",
            "--current-password",
            &password,
            "--new-password",
            new_password,
        ])
        .await;
    let address = server.address();
    assert_eq!(
        out,
        format!("Password updated\nContext '{address}' updated\n")
    );
    let fresh = admin.token().unwrap();
    assert_ne!(fresh, old);

    // The old session is revoked (once the server's settings watch has the change); the CLI's
    // own session is the new login.
    let stranger = Ferry::new();
    let with_old = [
        "account",
        "list",
        "--server",
        &address,
        "--plaintext",
        "--auth-token",
        &old,
    ];
    let mut revoked = false;
    for _ in 0..50 {
        let out = stranger.run(&with_old).await;
        if !out.status.success() {
            let (_, err) = texts(&out);
            assert!(
                err.contains("not logged in or the session expired"),
                "{err}"
            );
            revoked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(revoked, "the old session still works");
    admin.ok(&["app", "list"]).await;

    let out = admin.ok(&["logout"]).await;
    assert_eq!(out, format!("Logged out from '{address}'\n"));
    assert_eq!(admin.token(), None);
    assert_eq!(admin.config()["current-context"], address.as_str());
    let err = admin.fails(&["app", "list"]).await;
    assert!(err.contains("ferry login"), "{err}");

    // The new password logs in, the old one no more.
    admin.login(&server, "admin", new_password).await;
    let err = Ferry::new()
        .command(&["login", &address, "--plaintext", "--username", "admin"])
        .env("FERRY_PASSWORD", &password)
        .output()
        .await?;
    assert!(!err.status.success());

    let log = server.stop().await?;
    assert_no_secrets(&log, &[&password, new_password, &old, &fresh]);
    Ok(())
}
