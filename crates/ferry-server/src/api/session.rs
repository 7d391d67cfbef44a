//! `/api/v1/session`: password logins, logouts and who the caller is.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{AppendHeaders, IntoResponse};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::authn::{Caller, TOKEN_COOKIE, authenticate, request_token, token_expiry};
use super::error::ApiError;
use super::state::AppState;
use crate::auth::ISSUER;

#[derive(Deserialize)]
pub struct LoginRequest {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// `POST /api/v1/session`: a session token for a username and password, in the body and, for
/// browsers, in the `argocd.token` cookie.
pub async fn login(
    State(state): State<AppState>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    Json(request): Json<LoginRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let sessions = state.settings().sessions()?.clone();
    let guard = state.login_guard().clone();
    let clients = state.client_guard().clone();
    let address = client.map(|Extension(ConnectInfo(address))| address.ip().to_string());
    let username = request.username.clone();
    // bcrypt takes tens of milliseconds: keep it off the async threads, a few at a time.
    let outcome = state
        .bcrypt(move || {
            let client = address.as_deref().map(|address| (&*clients, address));
            sessions.login_from(&guard, client, &request.username, &request.password)
        })
        .await?;
    state.metrics().login(outcome.is_ok());
    match outcome {
        Ok(jwt) => {
            tracing::info!(username, "login succeeded");
            let cookie = HeaderValue::from_str(&session_cookie(&state, Some(jwt.as_str())))
                .map_err(|err| ApiError::internal("setting the session cookie", &err))?;
            Ok((
                AppendHeaders([(header::SET_COOKIE, cookie)]),
                Json(json!({ "token": jwt.as_str() })),
            ))
        }
        Err(err) => {
            tracing::warn!(username, reason = %err, "login failed");
            Err(ApiError::login_failed(&err))
        }
    }
}

/// `DELETE /api/v1/session`: revokes the caller's token, on every replica and until it
/// expires, and forgets the browser's session cookie.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    revoke_request_token(&state, &headers).await?;
    let cookie = HeaderValue::from_str(&session_cookie(&state, None))
        .map_err(|err| ApiError::internal("clearing the session cookie", &err))?;
    Ok((
        AppendHeaders([(header::SET_COOKIE, cookie)]),
        Json(json!({})),
    ))
}

/// The `Set-Cookie` value keeping `token` as the browser's session, or clearing it (`None`):
/// `HttpOnly`, `SameSite=Lax`, and `Secure` when the server is reached over TLS.
pub fn session_cookie(state: &AppState, token: Option<&str>) -> String {
    let secure = state.secure_cookie_attribute();
    match token {
        Some(token) => format!("{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax{secure}"),
        None => format!("{TOKEN_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}"),
    }
}

/// Revokes the token the request carries if it is a valid one (anything else proves nothing and
/// is left alone).
pub async fn revoke_request_token(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match (request_token(headers), authenticate(state, headers).await) {
        (Some(token), Ok(caller)) => revoke(state, token, &caller).await,
        _ => Ok(()),
    }
}

/// Revokes `token`, which authenticated `caller`, on every replica until it expires.
pub async fn revoke(state: &AppState, token: &str, caller: &Caller) -> Result<(), ApiError> {
    state
        .revocations()
        .revoke(
            state.client(),
            state.namespace(),
            token,
            token_expiry(token),
            jiff::Timestamp::now().as_second(),
        )
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "logout failed");
            ApiError::unavailable(format!("the session could not be revoked: {err}"))
        })?;
    tracing::info!(caller = caller.name(), "logged out");
    Ok(())
}

/// `GET /api/v1/session/userinfo`: whether the caller's token is valid and whose it is; for an
/// SSO user, also the provider and the RBAC groups its token gives.
pub async fn user_info(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    match authenticate(&state, &headers).await {
        Ok(Caller::Sso(user)) => Json(json!({
            "loggedIn": true,
            "username": user.subject,
            "iss": user.issuer,
            "groups": user.groups,
        })),
        Ok(caller) => Json(json!({
            "loggedIn": true,
            "username": caller.name(),
            "iss": ISSUER,
            "groups": [],
        })),
        Err(_) => Json(json!({ "loggedIn": false })),
    }
}
