//! HTTP to a ferry (or Argo CD) API server: JSON requests with the Bearer token, Argo CD's
//! error bodies (`{"error", "code", "message"}`) turned into [`ApiError`]s, and Server-Sent
//! Events streams (`data: {"result": ...}` lines).

use std::fmt;

use anyhow::Context;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

/// A connection to one API server.
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    token: Option<HeaderValue>,
}

/// A request the server refused, with Argo CD's gRPC code when the body carried one.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Option<i64>,
    pub message: String,
}

/// gRPC codes the CLI tells apart.
const NOT_FOUND: i64 = 5;
const PERMISSION_DENIED: i64 = 7;

impl ApiError {
    pub fn is_not_found(&self) -> bool {
        self.status == StatusCode::NOT_FOUND || self.code == Some(NOT_FOUND)
    }

    pub fn is_permission_denied(&self) -> bool {
        self.status == StatusCode::FORBIDDEN || self.code == Some(PERMISSION_DENIED)
    }

    pub fn is_unauthenticated(&self) -> bool {
        self.status == StatusCode::UNAUTHORIZED
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_unauthenticated() {
            write!(
                f,
                "not logged in or the session expired ({}): run `ferry login <server>`",
                self.message
            )
        } else if self.message.is_empty() {
            write!(f, "the server answered {}", self.status)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for ApiError {}

/// Whether an error chain holds an [`ApiError`] for which `test` holds.
pub fn api_error_is(err: &anyhow::Error, test: impl Fn(&ApiError) -> bool) -> bool {
    err.chain()
        .any(|cause| cause.downcast_ref::<ApiError>().is_some_and(&test))
}

/// A path segment escaped as argocd escapes repository and cluster URLs in paths.
pub fn segment(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

impl ApiClient {
    /// `server` is `host[:port][/root]` as argocd takes it (a scheme, if given, decides
    /// plain-text by itself); `insecure` skips TLS verification.
    pub fn new(
        server: &str,
        plain_text: bool,
        insecure: bool,
        token: Option<&str>,
    ) -> anyhow::Result<Self> {
        let base = base_url(server, plain_text)?;
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(insecure)
            .user_agent(concat!("ferry-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("creating the HTTP client")?;
        let token = match token.filter(|t| !t.is_empty()) {
            Some(token) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| anyhow::anyhow!("the auth token holds invalid characters"))?;
                // Kept out of any debug output of the request.
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(Self { http, base, token })
    }

    /// The server's URL, for messages.
    pub fn url(&self) -> &Url {
        &self.base
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
    ) -> reqwest::RequestBuilder {
        let mut url = self.base.clone();
        // `path` is already escaped segment by segment: keep it as it is.
        url.set_path(&format!("{}{path}", self.base.path().trim_end_matches('/')));
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().filter(|(_, v)| !v.is_empty()));
        }
        let mut request = self.http.request(method, url);
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, token.clone());
        }
        request
    }

    /// Sends a request and reads the JSON answer (an error body becomes an [`ApiError`]).
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> anyhow::Result<T> {
        let mut request = self.request(method, path, query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = self.send(request).await?;
        let text = response
            .text()
            .await
            .context("reading the server's answer")?;
        let text = if text.trim().is_empty() { "{}" } else { &text };
        serde_json::from_str(text)
            .with_context(|| format!("{path}: the server's answer is not the expected JSON"))
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<T> {
        self.call(Method::GET, path, query, None::<&Value>).await
    }

    /// Opens a Server-Sent-Events stream.
    pub async fn stream(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Events> {
        let request = self
            .request(Method::GET, path, query)
            .header("Accept", "text/event-stream");
        Ok(Events {
            response: self.send(request).await?,
            buffer: Vec::new(),
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let message = body
            .get("message")
            .or_else(|| body.get("error"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| text.trim().chars().take(200).collect());
        Err(ApiError {
            status,
            code: body.get("code").and_then(Value::as_i64),
            message,
        }
        .into())
    }
}

/// The events of a Server-Sent-Events answer, one `result` object at a time.
pub struct Events {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Events {
    /// The next event's `result`; `None` once the server ends the stream.
    pub async fn next(&mut self) -> anyhow::Result<Option<Value>> {
        loop {
            while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                let Some(data) = line.trim_end().strip_prefix("data:") else {
                    continue;
                };
                let event: Value = serde_json::from_str(data.trim())
                    .context("the server sent an event that is not JSON")?;
                if let Some(error) = event.get("error").filter(|e| !e.is_null()) {
                    let message = error
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("the stream failed");
                    anyhow::bail!("{message}");
                }
                return Ok(Some(event.get("result").cloned().unwrap_or(event)));
            }
            match self
                .response
                .chunk()
                .await
                .context("reading the event stream")?
            {
                Some(chunk) => self.buffer.extend_from_slice(&chunk),
                None => return Ok(None),
            }
        }
    }
}

/// `https://host` from argocd's `host[:port][/root]`; an explicit scheme wins.
fn base_url(server: &str, plain_text: bool) -> anyhow::Result<Url> {
    let with_scheme = if server.contains("://") {
        server.to_string()
    } else if plain_text {
        format!("http://{server}")
    } else {
        format!("https://{server}")
    };
    let url =
        Url::parse(&with_scheme).with_context(|| format!("{server:?} is not a server address"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        anyhow::bail!("{server:?} is not a server address (expected host[:port])");
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_become_urls() {
        assert_eq!(
            base_url("cd.example.com", false).unwrap().as_str(),
            "https://cd.example.com/"
        );
        assert_eq!(
            base_url("localhost:8080", true).unwrap().as_str(),
            "http://localhost:8080/"
        );
        assert_eq!(
            base_url("http://127.0.0.1:9/argo", false).unwrap().as_str(),
            "http://127.0.0.1:9/argo"
        );
        assert!(base_url("ftp://x", false).is_err());
    }

    #[test]
    fn paths_escape_urls_like_argocd() {
        assert_eq!(
            segment("https://github.com/org/repo.git"),
            "https%3A%2F%2Fgithub.com%2Forg%2Frepo.git"
        );
        let client = ApiClient::new("h:1", true, false, Some("secret")).unwrap();
        let request = client
            .request(
                Method::GET,
                "/api/v1/repositories/a%2Fb",
                &[("upsert", "true".into()), ("empty", String::new())],
            )
            .build()
            .unwrap();
        assert_eq!(
            request.url().as_str(),
            "http://h:1/api/v1/repositories/a%2Fb?upsert=true"
        );
        assert!(!format!("{request:?}").contains("secret"));
    }

    #[test]
    fn errors_say_what_to_do() {
        let expired = ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: Some(16),
            message: "invalid session: the token has expired".into(),
        };
        assert_eq!(
            expired.to_string(),
            "not logged in or the session expired (invalid session: the token has expired): run `ferry login <server>`"
        );
        let denied = ApiError {
            status: StatusCode::FORBIDDEN,
            code: Some(7),
            message: "permission denied".into(),
        };
        assert!(denied.is_permission_denied());
        assert_eq!(denied.to_string(), "permission denied");
    }
}
