//! `ferry login --sso`, as `argocd login --sso` does it: the authorization-code flow with PKCE
//! straight with the server's OIDC provider, as the CLI client (`cliClientID`, else `clientID`),
//! the browser coming back to a listener on `http://localhost:<port>/auth/callback`. The ID
//! token is the session: the server accepts tokens for its CLI client.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use ferry_auth::oidc::{DEFAULT_SCOPES, IdTokenClaim, PendingLogin, Provider};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

/// How long the browser has to come back.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(300);
/// The most of a request line and headers read from the browser.
const MAX_REQUEST_BYTES: usize = 16 * 1024;
const CALLBACK_PATH: &str = "/auth/callback";

/// What an SSO login yields. Not `Debug`: both are secrets.
pub struct SsoTokens {
    pub id_token: String,
    pub refresh_token: Option<String>,
}

/// Logs in with the OIDC provider `settings_oidc` describes (the `oidcConfig` of the server's
/// `/api/v1/settings`; fetched from `server` when null) in a browser returning to `port`.
pub async fn sso_login(
    server: &Url,
    settings_oidc: &Value,
    port: u16,
) -> anyhow::Result<SsoTokens> {
    login(server, settings_oidc, port, open_browser).await
}

async fn login(
    server: &Url,
    settings_oidc: &Value,
    port: u16,
    open: impl FnOnce(&Url),
) -> anyhow::Result<SsoTokens> {
    let oidc = match settings_oidc {
        Value::Null => fetch_oidc_settings(server).await?,
        given => given.clone(),
    };
    let text = |key: &str| {
        oidc.get(key)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let issuer = text("issuer").context("the server's OIDC settings name no issuer")?;
    let client_id = text("cliClientID")
        .or_else(|| text("clientID"))
        .context("the server's OIDC settings name no client ID")?;
    let claims: BTreeMap<String, IdTokenClaim> = match oidc.get("idTokenClaims") {
        Some(claims) if !claims.is_null() => serde_json::from_value(claims.clone())
            .context("reading the OIDC settings' idTokenClaims")?,
        _ => BTreeMap::new(),
    };
    let provider = Provider::new(issuer, None)?;
    let mut scopes: Vec<String> = match oidc.get("scopes").and_then(Value::as_array) {
        Some(scopes) if !scopes.is_empty() => scopes
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => DEFAULT_SCOPES
            .iter()
            .map(|scope| scope.to_string())
            .collect(),
    };
    // A refresh token where the provider offers one (a provider that lists no scopes is assumed
    // to follow the spec), as argocd asks.
    let offline = "offline_access".to_string();
    let supported = provider.scopes_supported().await?;
    if !scopes.contains(&offline) && supported.is_none_or(|supported| supported.contains(&offline))
    {
        scopes.push(offline);
    }

    // Listen before the browser is sent anywhere, so a taken port fails first.
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("listening on 127.0.0.1:{port} for the browser's return"))?;
    let redirect_uri = format!("http://localhost:{port}{CALLBACK_PATH}");
    let (url, pending) = provider
        .start_login(client_id, &redirect_uri, &scopes, &claims)
        .await?;
    eprintln!("Opening a browser for authentication; if none opens, visit:\n{url}");
    open(&url);
    let code = tokio::time::timeout(LOGIN_TIMEOUT, wait_for_code(&listener, &pending))
        .await
        .context("the browser did not come back within 5 minutes")??;
    let tokens = provider
        .finish_login(client_id, None, &redirect_uri, &code.value, &pending)
        .await;
    let outcome = match &tokens {
        Ok(_) => Ok("Authentication successful! You may now close this window."),
        Err(_) => Err("Authentication failed; see the terminal."),
    };
    respond(code.browser, outcome).await;
    let tokens = tokens?;
    Ok(SsoTokens {
        id_token: tokens.id_token,
        refresh_token: tokens.refresh_token,
    })
}

async fn fetch_oidc_settings(server: &Url) -> anyhow::Result<Value> {
    let url = server.join("/api/v1/settings")?;
    let settings: Value = reqwest::get(url.clone())
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("reading {url}"))?
        .json()
        .await
        .with_context(|| format!("reading {url}"))?;
    match settings.get("oidcConfig") {
        Some(oidc) if !oidc.is_null() => Ok(oidc.clone()),
        _ => bail!("{server} has no OIDC provider configured"),
    }
}

/// The code of the browser's return, with the connection to answer it on.
struct Code {
    value: String,
    browser: TcpStream,
}

/// Serves the loopback listener until the browser comes back with this login's state; other
/// requests (a favicon) get a 404.
async fn wait_for_code(listener: &TcpListener, pending: &PendingLogin) -> anyhow::Result<Code> {
    loop {
        let (mut browser, _) = listener.accept().await?;
        let Some(target) = request_target(&mut browser).await else {
            continue;
        };
        let Ok(url) = Url::parse("http://localhost").and_then(|base| base.join(&target)) else {
            continue;
        };
        if url.path() != CALLBACK_PATH {
            respond_status(browser, "404 Not Found", "Not found").await;
            continue;
        }
        let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        if let Some(error) = query.get("error") {
            let description = query.get("error_description").cloned().unwrap_or_default();
            respond(browser, Err("Authentication failed; see the terminal.")).await;
            bail!("the provider refused the login: {error} {description}");
        }
        if query.get("state") != Some(&pending.state) {
            respond(
                browser,
                Err("Unknown login; start again from the terminal."),
            )
            .await;
            bail!("the browser came back from another login (state mismatch)");
        }
        let Some(code) = query.get("code") else {
            respond(browser, Err("No code came back.")).await;
            bail!("the provider sent the browser back without a code");
        };
        return Ok(Code {
            value: code.clone(),
            browser,
        });
    }
}

/// The target of a request's first line (`GET <target> HTTP/1.1`), once its headers are in.
async fn request_target(stream: &mut TcpStream) -> Option<String> {
    let mut request = Vec::new();
    let mut buf = [0u8; 2048];
    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || request.len() + n > MAX_REQUEST_BYTES {
            return None;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let line = request.split(|&b| b == b'\r').next()?;
    let mut parts = std::str::from_utf8(line).ok()?.split(' ');
    (parts.next()? == "GET").then_some(())?;
    parts.next().map(str::to_string)
}

async fn respond(browser: TcpStream, outcome: Result<&str, &str>) {
    match outcome {
        Ok(message) => respond_status(browser, "200 OK", message).await,
        Err(message) => respond_status(browser, "400 Bad Request", message).await,
    }
}

async fn respond_status(mut browser: TcpStream, status: &str, message: &str) {
    let body = format!(
        "<!doctype html><html><head><title>ferry</title></head><body><p>{message}</p></body></html>"
    );
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // The browser may be gone already; the login's outcome does not depend on it.
    let _ = browser.write_all(response.as_bytes()).await;
    let _ = browser.shutdown().await;
}

/// Opens `url` in the desktop's browser, if there is one; the URL is printed either way.
fn open_browser(url: &Url) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let opened = std::process::Command::new(opener)
        .arg(url.as_str())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if opened.is_err() {
        tracing::debug!(opener, "no browser to open");
    }
}

#[cfg(test)]
mod tests {
    use ferry_testkit::dex::{Dex, DexClient, MOCK_GROUPS};
    use serde_json::json;

    use super::*;

    /// The browser's part, played by an HTTP client that follows every redirect: to Dex, through
    /// its mock connector, and back to the CLI's listener.
    #[tokio::test]
    async fn a_browser_login_yields_verified_tokens_for_the_cli_client() -> anyhow::Result<()> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let redirect = format!("http://localhost:{port}/auth/callback");
        let dex = Dex::start(&[DexClient::public("ferry-cli", &[&redirect])])?;
        let settings = json!({
            "name": "Dex", "issuer": dex.issuer(), "clientID": "ferry", "cliClientID": "ferry-cli",
            "scopes": ["openid", "profile", "email", "groups"],
        });
        let (sender, receiver) = tokio::sync::oneshot::channel::<Url>();
        let browser = tokio::spawn(async move {
            let url = receiver.await?;
            let page = reqwest::get(url).await?;
            anyhow::Ok((page.status(), page.text().await?))
        });
        let server = Url::parse("http://127.0.0.1:9")?;
        let tokens = login(&server, &settings, port, |url| {
            let _ = sender.send(url.clone());
        })
        .await?;
        let (status, page) = browser.await??;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Authentication successful"), "{page}");
        assert!(
            tokens.refresh_token.is_some(),
            "offline_access was asked for"
        );

        let claims = Provider::new(&dex.issuer(), None)?
            .verify(&tokens.id_token, &["ferry-cli"], None)
            .await?;
        assert_eq!(claims["aud"], json!(["ferry-cli"]));
        assert_eq!(claims["groups"], json!(MOCK_GROUPS));
        Ok(())
    }

    #[tokio::test]
    async fn a_browser_from_another_login_is_refused() -> anyhow::Result<()> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let redirect = format!("http://localhost:{port}/auth/callback");
        let dex = Dex::start(&[DexClient::public("ferry-cli", &[&redirect])])?;
        let settings = json!({"issuer": dex.issuer(), "clientID": "ferry-cli"});
        let forged = format!("{redirect}?code=stolen&state=not-this-login");
        let (sender, receiver) = tokio::sync::oneshot::channel::<()>();
        let browser = tokio::spawn(async move {
            // The listener is up once the browser is sent to the provider.
            receiver.await?;
            let page = reqwest::get(forged).await?;
            anyhow::Ok(page.status())
        });
        let server = Url::parse("http://127.0.0.1:9")?;
        let err = login(&server, &settings, port, |_| {
            let _ = sender.send(());
        })
        .await
        .err()
        .context("a login with a foreign state succeeded")?;
        assert!(err.to_string().contains("state mismatch"), "{err}");
        assert_eq!(browser.await??, 400);
        Ok(())
    }
}
