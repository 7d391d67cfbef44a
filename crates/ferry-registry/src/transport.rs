//! HTTP to one registry: TLS settings, the rate limit, 429 retries, and the auth the registry
//! asks for (anonymous, Basic, or Bearer tokens from its token service), learnt from its 401s.
//!
//! Written on reqwest rather than oci-client: oci-client lists tags with `n`/`last` only and
//! never sees the `Link` header, drops the response headers from its errors (no Retry-After),
//! and builds its reqwest client inside, so neither the rate limit nor the request count could
//! cover every request (token requests included).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::Mutex;
use url::Url;

use crate::credentials::Credentials;
use crate::error::{Error, ErrorKind, Result};

/// How often a 429 is waited out before giving up.
const RATE_LIMIT_RETRIES: u32 = 3;
/// The longest Retry-After honoured by waiting; a longer one is returned in the error.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// Token lifetime when the token service does not say (the distribution token spec's default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// TLS and rate settings of a transport.
pub(crate) struct TransportOptions<'a> {
    pub insecure: bool,
    /// PEM bundles trusted besides the system roots.
    pub ca_pems: Vec<&'a [u8]>,
    pub requests_per_second: Option<NonZeroU32>,
}

/// How the registry wants requests authenticated.
#[derive(Clone, Debug)]
enum Challenge {
    Basic,
    /// The challenge's own `scope` is not kept: it names the repository of the request that
    /// was refused, while every request asks for its own.
    Bearer {
        realm: Url,
        service: Option<String>,
    },
}

struct Token {
    value: String,
    expires: Instant,
}

type TokenSlot = Arc<Mutex<Option<Token>>>;

pub(crate) struct Transport {
    /// `"<name> (<api_url>)"`, what errors name.
    pub label: String,
    pub base: Url,
    http: reqwest::Client,
    limiter: Option<DefaultDirectRateLimiter>,
    challenge: std::sync::RwLock<Option<Challenge>>,
    /// Bearer tokens by (credentials' hash, scope), each behind a lock of its own: concurrent
    /// lookups of one scope fetch its token once, while other scopes' fetches and cached tokens
    /// wait for nothing.
    tokens: Mutex<HashMap<(String, String), TokenSlot>>,
    requests: AtomicU64,
}

impl Transport {
    pub fn new(label: String, base: Url, options: TransportOptions<'_>) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .danger_accept_invalid_certs(options.insecure);
        for pem in options.ca_pems {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    Error::new(ErrorKind::Config, "CA bundle holds no PEM certificate")
                        .at(label.clone())
                })?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build().map_err(|e| {
            Error::new(ErrorKind::Config, format!("HTTP client: {}", chain(&e))).at(label.clone())
        })?;
        Ok(Transport {
            label,
            base,
            http,
            limiter: options
                .requests_per_second
                .map(|rate| RateLimiter::direct(Quota::per_second(rate))),
            challenge: Default::default(),
            tokens: Default::default(),
            requests: AtomicU64::new(0),
        })
    }

    /// HTTP requests sent so far (token requests and retries included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn error(&self, kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::new(kind, message).at(self.label.clone())
    }

    /// Sends `method url` with the auth the registry asked for so far; on a 401 it learns the
    /// challenge (or refreshes a stale token) and tries once more. `scope` is the token scope
    /// for this request (`repository:<name>:pull`). Statuses other than 401/429 are the
    /// caller's to judge.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        accept: &str,
        creds: Option<&Credentials>,
        scope: &str,
    ) -> Result<Response> {
        let mut retried = false;
        loop {
            let challenge = self.challenge.read().expect("challenge lock").clone();
            let authorization = match &challenge {
                None => None,
                Some(Challenge::Basic) => creds.map(basic),
                Some(Challenge::Bearer { realm, service }) => {
                    Some(self.token(realm, service.as_deref(), scope, creds).await?)
                }
            };
            let response = self
                .round_trip(&url, || {
                    let request = self
                        .http
                        .request(method.clone(), url.clone())
                        .header(reqwest::header::ACCEPT, accept);
                    match &authorization {
                        Some(value) => request.header(AUTHORIZATION, value),
                        None => request,
                    }
                })
                .await?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            let refused_scope = insufficient_scope(response.headers());
            let learnt = parse_challenge(response.headers());
            let first_time = authorization.is_none();
            // Once more after learning the challenge, or with a fresh token.
            if !retried
                && let Some(learnt) = learnt
                && (first_time || matches!(learnt, Challenge::Bearer { .. }))
            {
                if !first_time {
                    // A token that was fine until now expired early or lacks the scope.
                    self.tokens.lock().await.retain(|(_, s), _| s != scope);
                }
                *self.challenge.write().expect("challenge lock") = Some(learnt);
                retried = true;
                continue;
            }
            if let (Some(refused), Some(Challenge::Bearer { .. })) = (refused_scope, &challenge) {
                // Registries say so for private repositories and for missing ones alike.
                let who = creds
                    .map(|c| format!("user {}", c.username))
                    .unwrap_or_else(|| "anonymous access".into());
                return Err(self.error(
                    ErrorKind::Denied,
                    format!(
                        "{who} not granted {refused} (insufficient_scope: the repository is \
                         private or does not exist)"
                    ),
                ));
            }
            return Err(match creds {
                Some(c) if authorization.is_some() => self.error(
                    ErrorKind::Unauthorized,
                    format!(
                        "credentials of user {} rejected (401 Unauthorized)",
                        c.username
                    ),
                ),
                _ => self.error(
                    ErrorKind::Unauthorized,
                    "authentication required (401 Unauthorized) and no credentials configured",
                ),
            });
        }
    }

    /// A Bearer `Authorization` value for `scope`, from the cache or the token service.
    async fn token(
        &self,
        realm: &Url,
        service: Option<&str>,
        scope: &str,
        creds: Option<&Credentials>,
    ) -> Result<String> {
        // Keyed by a hash of the whole credentials: other credentials of the same user (a
        // wrong password, a rotated one) must not get this token.
        let key = (
            creds
                .map(|c| {
                    use sha2::Digest as _;
                    format!(
                        "{:x}",
                        sha2::Sha256::digest(format!("{}:{}", c.username, c.password))
                    )
                })
                .unwrap_or_default(),
            scope.to_string(),
        );
        let slot = {
            let mut tokens = self.tokens.lock().await;
            // Expired tokens no one is fetching go, so the map stays as large as the
            // repositories in use.
            let now = Instant::now();
            tokens.retain(|_, slot| {
                Arc::strong_count(slot) > 1
                    || slot.try_lock().map_or(true, |token| {
                        token.as_ref().is_some_and(|t| t.expires > now)
                    })
            });
            tokens.entry(key).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some(token) = slot.as_ref().filter(|t| t.expires > Instant::now()) {
            return Ok(format!("Bearer {}", token.value));
        }
        let mut url = realm.clone();
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            query.append_pair("scope", scope);
        }
        let started = Instant::now();
        let response = self
            .round_trip(&url, || {
                let request = self.http.get(url.clone());
                match creds {
                    Some(c) => request.header(AUTHORIZATION, basic(c)),
                    None => request,
                }
            })
            .await?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let who = creds
                .map(|c| format!("the credentials of user {}", c.username))
                .unwrap_or_else(|| "anonymous access".into());
            return Err(self.error(
                ErrorKind::Unauthorized,
                format!(
                    "token service {} refused {who} ({status})",
                    strip_query(&url)
                ),
            ));
        }
        if !status.is_success() {
            return Err(self.error(
                ErrorKind::Protocol,
                format!("token service {} answered {status}", strip_query(&url)),
            ));
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let body: TokenResponse = response.json().await.map_err(|e| {
            self.error(
                ErrorKind::Protocol,
                format!("token service {}: {}", strip_query(&url), chain(&e)),
            )
        })?;
        let value = body.token.or(body.access_token).ok_or_else(|| {
            self.error(
                ErrorKind::Protocol,
                format!("token service {} gave no token", strip_query(&url)),
            )
        })?;
        let lifetime = body
            .expires_in
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TOKEN_LIFETIME);
        // Renewed a little early so that a token never expires on its way to the registry.
        let expires = started + lifetime.mul_f32(0.9);
        let header = format!("Bearer {value}");
        *slot = Some(Token { value, expires });
        Ok(header)
    }

    /// One request through the rate limit, waiting out 429s as the registry asks. Requests are
    /// GET and HEAD only, so one that failed on a pooled connection the server had closed (it
    /// restarted, or went away) is sent once more on a new one, which tells the real cause.
    async fn round_trip(&self, url: &Url, build: impl Fn() -> RequestBuilder) -> Result<Response> {
        let mut attempt = 0;
        let mut resent = false;
        loop {
            if let Some(limiter) = &self.limiter {
                limiter.until_ready().await;
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let response = match build().send().await {
                Ok(response) => response,
                Err(e) if !resent && !e.is_timeout() && !e.is_connect() => {
                    resent = true;
                    tracing::debug!(registry = %self.label, error = %chain(&e), "resending");
                    continue;
                }
                Err(e) => {
                    return Err(self.error(
                        ErrorKind::Unreachable,
                        format!("request to {}: {}", strip_query(url), cause(&e)),
                    ));
                }
            };
            if response.status() != StatusCode::TOO_MANY_REQUESTS {
                return Ok(response);
            }
            let retry_after = retry_after(response.headers());
            attempt += 1;
            let wait = retry_after.unwrap_or(Duration::from_secs(1));
            if attempt > RATE_LIMIT_RETRIES || wait > MAX_RETRY_AFTER {
                return Err(self
                    .error(
                        ErrorKind::RateLimited,
                        format!(
                            "too many requests (429) for {} after {} tries{}",
                            strip_query(url),
                            attempt,
                            retry_after
                                .map(|d| format!(", Retry-After {}s", d.as_secs()))
                                .unwrap_or_default()
                        ),
                    )
                    .with_retry_after(retry_after));
            }
            tracing::debug!(registry = %self.label, wait_s = wait.as_secs_f32(), "429, waiting as asked");
            tokio::time::sleep(wait).await;
        }
    }

    /// The error for an unexpected status, with the registry's own error codes if it gave any.
    pub async fn status_error(&self, response: Response, what: &str) -> Error {
        let status = response.status();
        let kind = match status {
            StatusCode::NOT_FOUND => ErrorKind::NotFound,
            StatusCode::FORBIDDEN => ErrorKind::Denied,
            StatusCode::UNAUTHORIZED => ErrorKind::Unauthorized,
            _ => ErrorKind::Protocol,
        };
        let body = response.bytes().await.unwrap_or_default();
        let details = serde_json::from_slice::<oci_spec::distribution::ErrorResponse>(&body)
            .map(|r| {
                r.errors()
                    .iter()
                    .map(|e| {
                        let message = e.message().as_deref().unwrap_or_default();
                        format!("{:?} {message}", e.code()).trim().to_string()
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .ok()
            .filter(|d| !d.is_empty())
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        self.error(kind, format!("{what}: {status}{details}"))
    }
}

fn basic(creds: &Credentials) -> String {
    use base64::Engine;
    let pair = format!("{}:{}", creds.username, creds.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// The first Basic or Bearer challenge of a 401.
fn parse_challenge(headers: &HeaderMap) -> Option<Challenge> {
    for value in headers.get_all(WWW_AUTHENTICATE) {
        let Ok(text) = value.to_str() else { continue };
        let Ok(challenges) = http_auth::parse_challenges(text) else {
            continue;
        };
        for challenge in challenges {
            let param = |name: &str| {
                challenge
                    .params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.to_unescaped())
            };
            if challenge.scheme.eq_ignore_ascii_case("basic") {
                return Some(Challenge::Basic);
            }
            if challenge.scheme.eq_ignore_ascii_case("bearer") {
                let realm = param("realm").and_then(|r| Url::parse(&r).ok())?;
                return Some(Challenge::Bearer {
                    realm,
                    service: param("service"),
                });
            }
        }
    }
    None
}

/// The scope a Bearer 401 says the token lacked (`error="insufficient_scope"`).
fn insufficient_scope(headers: &HeaderMap) -> Option<String> {
    let text = headers.get(WWW_AUTHENTICATE)?.to_str().ok()?;
    let challenges = http_auth::parse_challenges(text).ok()?;
    let bearer = challenges
        .iter()
        .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))?;
    let param = |name: &str| {
        bearer
            .params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_unescaped())
    };
    (param("error")? == "insufficient_scope").then(|| param("scope").unwrap_or_default())
}

/// Retry-After: seconds, or an HTTP date (RFC 2822's form) to wait until.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse() {
        return Some(Duration::from_secs(seconds));
    }
    let until = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = jiff::Timestamp::now().duration_until(until);
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// Why a request failed, down to the root cause (reqwest's own message is only "error sending
/// request").
fn cause(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("timed out ({})", chain(error));
    }
    chain(error)
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    text
}

fn strip_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(WWW_AUTHENTICATE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn reads_distribution_bearer_challenges() {
        let challenge = parse_challenge(&headers(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:team/app:pull""#,
        ));
        let Some(Challenge::Bearer { realm, service }) = challenge else {
            panic!("a bearer challenge: {challenge:?}")
        };
        assert_eq!(realm.as_str(), "https://auth.example/token");
        assert_eq!(service.as_deref(), Some("registry.example"));
        assert!(matches!(
            parse_challenge(&headers(r#"Basic realm="Registry Realm""#)),
            Some(Challenge::Basic)
        ));
        assert!(parse_challenge(&headers("Negotiate")).is_none());
        assert_eq!(
            insufficient_scope(&headers(
                r#"Bearer realm="https://a/t",service="r",scope="repository:x:pull",error="insufficient_scope""#
            ))
            .as_deref(),
            Some("repository:x:pull")
        );
        assert_eq!(
            insufficient_scope(&headers(r#"Bearer realm="https://a/t""#)),
            None
        );
    }

    #[test]
    fn retry_after_in_seconds() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO), "a date past");
        let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(120);
        let date = jiff::fmt::rfc2822::to_string(&soon.to_zoned(jiff::tz::TimeZone::UTC)).unwrap();
        h.insert(RETRY_AFTER, HeaderValue::from_str(&date).unwrap());
        let wait = retry_after(&h).unwrap();
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }
}
