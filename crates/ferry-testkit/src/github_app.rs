//! The one GitHub API call a GitHub App credential makes, served on loopback: `POST
//! /app/installations/{id}/access_tokens`, answered only when the Bearer JWT is signed by the
//! app's private key (checked with its public key), names the app as issuer and has not
//! expired. Gitea, the forge the other tests use, has no GitHub Apps, so this small server
//! stands in for github.com's token exchange; the token it hands out is then a real Git
//! server's password (see `git::HttpServer`).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::http::LoopbackServer;

pub struct GithubAppApi {
    server: LoopbackServer,
    private_key: String,
    exchanges: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct App {
    app_id: i64,
    installation_id: i64,
    public_key: Arc<jsonwebtoken::DecodingKey>,
    token: Arc<str>,
    lifetime: Duration,
    exchanges: Arc<AtomicUsize>,
}

impl GithubAppApi {
    /// An API for app `app_id` installed as `installation_id`, with a fresh RSA key (made by
    /// openssl), handing out `token` valid for `lifetime`.
    pub fn start(
        app_id: i64,
        installation_id: i64,
        token: &str,
        lifetime: Duration,
    ) -> Result<Self> {
        let private_key = openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
            None,
        )?;
        let public_key = openssl(&["pkey", "-pubout"], Some(&private_key))?;
        let exchanges = Arc::new(AtomicUsize::new(0));
        let app = App {
            app_id,
            installation_id,
            public_key: Arc::new(jsonwebtoken::DecodingKey::from_rsa_pem(
                public_key.as_bytes(),
            )?),
            token: Arc::from(token),
            lifetime,
            exchanges: exchanges.clone(),
        };
        let router = axum::Router::new()
            .route(
                "/api/v3/app/installations/{installation}/access_tokens",
                axum::routing::post(access_token),
            )
            .with_state(app);
        Ok(GithubAppApi {
            server: LoopbackServer::start(router, None)?,
            private_key,
            exchanges,
        })
    }

    /// The base URL, as a Secret's `githubAppEnterpriseBaseUrl`.
    pub fn url(&self) -> String {
        format!("http://{}/api/v3", self.server.addr())
    }

    /// The app's private key (PEM), as a Secret's `githubAppPrivateKey`.
    pub fn private_key(&self) -> &str {
        &self.private_key
    }

    /// Tokens handed out so far.
    pub fn exchanges(&self) -> usize {
        self.exchanges.load(Ordering::SeqCst)
    }
}

fn openssl(args: &[&str], stdin: Option<&str>) -> Result<String> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running openssl")?;
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin.unwrap_or_default().as_bytes())?;
    drop(input);
    let output = child.wait_with_output()?;
    anyhow::ensure!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

async fn access_token(
    State(app): State<App>,
    Path(installation): Path<String>,
    headers: HeaderMap,
) -> Response {
    let jwt = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(jwt) = jwt else {
        return (StatusCode::UNAUTHORIZED, "a JWT is required").into_response();
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    validation.set_issuer(&[app.app_id.to_string()]);
    if let Err(e) = jsonwebtoken::decode::<serde_json::Value>(jwt, &app.public_key, &validation) {
        return (StatusCode::UNAUTHORIZED, format!("bad JWT: {e}")).into_response();
    }
    if installation != app.installation_id.to_string() {
        return (StatusCode::NOT_FOUND, "no such installation").into_response();
    }
    app.exchanges.fetch_add(1, Ordering::SeqCst);
    let lifetime = jiff::SignedDuration::try_from(app.lifetime).unwrap_or_default();
    let expires_at = jiff::Timestamp::now() + lifetime;
    (
        StatusCode::CREATED,
        axum::Json(serde_json::json!({
            "token": &*app.token,
            "expires_at": expires_at.to_string(),
        })),
    )
        .into_response()
}
