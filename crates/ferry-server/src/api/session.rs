//! `/api/v1/session`: password logins, logouts and who the caller is.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{AppendHeaders, IntoResponse};
use serde::Deserialize;
use serde_json::{Value, json};

use super::authn::{Caller, TOKEN_COOKIE, authenticate};
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
    Json(request): Json<LoginRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let sessions = state.settings().sessions()?.clone();
    let guard = state.login_guard().clone();
    let username = request.username.clone();
    // bcrypt takes tens of milliseconds: keep it off the async threads.
    let outcome = tokio::task::spawn_blocking(move || {
        sessions.login(&guard, &request.username, &request.password)
    })
    .await
    .map_err(|err| ApiError::internal("logging in", &err))?;
    state.metrics().login(outcome.is_ok());
    match outcome {
        Ok(jwt) => {
            tracing::info!(username, "login succeeded");
            let cookie = format!(
                "{TOKEN_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax",
                jwt.as_str()
            );
            let cookie = HeaderValue::from_str(&cookie)
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

/// `DELETE /api/v1/session`: forgets the browser's session cookie. The token itself stays valid
/// until it expires or the password changes: ferry keeps no list of revoked sessions yet.
pub async fn logout() -> impl IntoResponse {
    (
        AppendHeaders([(
            header::SET_COOKIE,
            HeaderValue::from_static("argocd.token=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
        )]),
        Json(json!({})),
    )
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
