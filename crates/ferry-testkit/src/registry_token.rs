//! A token service for the distribution registry's `auth: token:` mode: the registry answers
//! 401 with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, clients get a JWT here with
//! HTTP basic credentials, and the registry checks its signature against `rootcertbundle`
//! (ES256, the signing certificate in the JWT's `x5c` header).
//!
//! It stands in for cesanta/docker_auth, which the Go module proxy does not serve: one user,
//! every requested action granted to it (but on repositories it was told to deny), anonymous
//! requests refused. It can be told to answer
//! the next requests with 429 and a Retry-After, as busy token services do.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde_json::json;

use crate::http::{BasicAuth, LoopbackServer};

/// The registry's `service` and the tokens' audience.
pub const SERVICE: &str = "ferry-test-registry";
/// The tokens' issuer.
pub const ISSUER: &str = "ferry-testkit-token-service";
/// How long a token is valid.
const TOKEN_SECONDS: u64 = 300;

struct Shared {
    auth: BasicAuth,
    key: jsonwebtoken::EncodingKey,
    cert_der_b64: String,
    issued: AtomicU64,
    throttled: AtomicU32,
    retry_after_secs: AtomicU64,
    denied: Mutex<BTreeSet<String>>,
}

/// A running token service; it stops when dropped.
pub struct TokenService {
    server: LoopbackServer,
    shared: Arc<Shared>,
    cert_pem: String,
}

impl TokenService {
    /// Issues tokens to `user` with `password` only.
    pub fn start(user: &str, password: &str) -> Result<Self> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ferry test token signer");
        let cert = params.self_signed(&key)?;
        let shared = Arc::new(Shared {
            auth: BasicAuth::new(Some((user, password))),
            key: jsonwebtoken::EncodingKey::from_ec_der(&key.serialize_der()),
            cert_der_b64: base64::engine::general_purpose::STANDARD.encode(cert.der()),
            issued: AtomicU64::new(0),
            throttled: AtomicU32::new(0),
            retry_after_secs: AtomicU64::new(1),
            denied: Default::default(),
        });
        let app = axum::Router::new()
            .route("/token", get(token))
            .with_state(shared.clone());
        Ok(TokenService {
            server: LoopbackServer::start(app, None)?,
            shared,
            cert_pem: cert.pem(),
        })
    }

    /// The registry's `realm`.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.server.addr())
    }

    /// The certificate the registry trusts (`rootcertbundle`), PEM.
    pub fn root_cert_bundle(&self) -> &str {
        &self.cert_pem
    }

    /// Tokens issued so far.
    pub fn issued(&self) -> u64 {
        self.shared.issued.load(Ordering::SeqCst)
    }

    /// Grants nothing on `repository` from now on, as for a private repository of another team.
    pub fn deny(&self, repository: &str) {
        self.shared
            .denied
            .lock()
            .expect("denied lock")
            .insert(repository.to_string());
    }

    /// Answers the next `count` token requests with 429 and `Retry-After: <seconds>`.
    pub fn throttle_next(&self, count: u32, retry_after_secs: u64) {
        self.shared
            .retry_after_secs
            .store(retry_after_secs, Ordering::SeqCst);
        self.shared.throttled.store(count, Ordering::SeqCst);
    }
}

async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let throttled = shared
        .throttled
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if throttled {
        let mut response = (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response();
        let seconds = shared.retry_after_secs.load(Ordering::SeqCst).to_string();
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&seconds).expect("digits"),
        );
        return response;
    }
    if let Some(refusal) = shared.auth.refusal(&headers) {
        return refusal;
    }
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    // `scope=repository:<name>:<actions>`, possibly several; every action is granted.
    let mut access: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (_, scope) in pairs.iter().filter(|(k, _)| k == "scope") {
        let mut parts = scope.splitn(3, ':');
        let (Some(kind), Some(name), Some(actions)) = (parts.next(), parts.next(), parts.next())
        else {
            return (StatusCode::BAD_REQUEST, format!("invalid scope {scope}")).into_response();
        };
        let granted = access
            .entry((kind.to_string(), name.to_string()))
            .or_default();
        if !shared.denied.lock().expect("denied lock").contains(name) {
            granted.extend(actions.split(',').map(str::to_string));
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let issued = shared.issued.fetch_add(1, Ordering::SeqCst);
    let claims = json!({
        "iss": ISSUER,
        "sub": "ferry",
        "aud": SERVICE,
        "exp": now + TOKEN_SECONDS,
        "nbf": now - 1,
        "iat": now,
        "jti": format!("token-{issued}"),
        "access": access.into_iter().map(|((kind, name), actions)| {
            json!({"type": kind, "name": name, "actions": actions})
        }).collect::<Vec<_>>(),
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.x5c = Some(vec![shared.cert_der_b64.clone()]);
    match jsonwebtoken::encode(&header, &claims, &shared.key) {
        Ok(token) => axum::Json(json!({
            "token": token,
            "access_token": token,
            "expires_in": TOKEN_SECONDS,
        }))
        .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
