//! With `--tls-cert` and `--tls-key` the server speaks HTTPS only: a client trusting the
//! certificate logs in over it, and plain HTTP gets no answer.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use ferry_testkit::kube::TestContext;
use ferry_testkit::server::ServerProcess;
use serde_json::{Value, json};

use crate::harness::{admin_password, install_crds};

#[tokio::test]
async fn with_a_certificate_the_api_is_https_only() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    let dir = tempfile::tempdir()?;
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, certified.cert.pem())?;
    std::fs::write(&key, certified.signing_key.serialize_pem())?;
    let server = ServerProcess::start_with(
        Path::new(env!("CARGO_BIN_EXE_ferry-server")),
        ctx.namespace(),
        ctx.kubeconfig(),
        &[
            "--tls-cert".into(),
            cert.display().to_string(),
            "--tls-key".into(),
            key.display().to_string(),
        ],
    )
    .await?;
    let port = server.port();

    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(
            certified.cert.pem().as_bytes(),
        )?)
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .timeout(Duration::from_secs(10))
        .build()?;
    let base = format!("https://localhost:{port}");
    let version = trusting.get(format!("{base}/api/version")).send().await?;
    assert_eq!(version.status(), 200);
    let login = trusting
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"username": "admin", "password": admin_password(&ctx).await?}))
        .send()
        .await?;
    // Over TLS the session cookie is never sent in the clear.
    let cookie = login
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        cookie.starts_with("argocd.token=") && cookie.contains("; Secure"),
        "{cookie}"
    );
    let login: Value = login.json().await?;
    let token = login["token"].as_str().unwrap();
    let apps = trusting
        .get(format!("{base}/api/v1/applications"))
        .bearer_auth(token)
        .send()
        .await?;
    assert_eq!(apps.status(), 200);

    // An unknown certificate is refused by a careful client, and plain HTTP is not served.
    let careful = reqwest::Client::builder()
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .timeout(Duration::from_secs(10))
        .build()?;
    assert!(
        careful
            .get(format!("{base}/api/version"))
            .send()
            .await
            .is_err()
    );
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?
        .get(format!("http://127.0.0.1:{port}/api/version"))
        .send()
        .await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "plain HTTP was answered"
    );
    let log = server.stop().await?;
    assert!(log.contains("serving HTTPS"), "{log}");
    Ok(())
}
