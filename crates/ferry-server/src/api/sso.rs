//! The browser's SSO flow on Argo CD's paths: `GET /auth/login` sends the browser to the
//! provider (authorization code with PKCE), `GET /auth/callback` takes it back, exchanges the code
//! and sets the `argocd.token` cookie to the provider's ID token (as Argo CD does with an external
//! provider), and `GET /auth/logout` clears it and sends the browser to the provider's
//! `logoutURL`.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::authn::{
    Caller, TOKEN_COOKIE, authenticate, cookie, group_scopes, request_token, sso_caller, sso_error,
};
use super::error::ApiError;
use super::session::{revoke, session_cookie};
use super::state::{AppState, Snapshot};
use crate::oidc::{
    LoginState, OidcConfig, PendingLogin, STATE_COOKIE, STATE_MAX_AGE_SECS, SsoSettings, SsoUser,
    checked_return_url,
};

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    return_url: String,
}

/// `GET /auth/login?return_url=...`: a new login, kept in the browser's `argocd.oauthstate`
/// cookie, and the way to the provider.
pub async fn login(
    State(state): State<AppState>,
    Query(query): Query<LoginQuery>,
) -> Result<Response, ApiError> {
    let settings = state.settings();
    let (sso, oidc, redirect_uri) = sso_settings(&settings)?;
    let return_url = checked_return_url(&query.return_url, sso.url.as_ref())
        .map_err(ApiError::invalid_argument)?;
    let key = state_key(&settings)?;
    let provider = state
        .oidc_providers()
        .get(&oidc.issuer, oidc.root_ca.as_deref())
        .map_err(|err| sso_error(&err))?;
    let (provider_url, pending) = provider
        .start_login(
            &oidc.client_id,
            &redirect_uri,
            &oidc.requested_scopes,
            &oidc.requested_id_token_claims,
        )
        .await
        .map_err(|err| sso_error(&err))?;
    let login = LoginState {
        state: pending.state,
        nonce: pending.nonce,
        pkce_verifier: pending.pkce_verifier,
        return_url,
        expires_at: now() + STATE_MAX_AGE_SECS,
    };
    let state_cookie = format!(
        "{STATE_COOKIE}={}; Path=/auth; Max-Age={STATE_MAX_AGE_SECS}; HttpOnly; SameSite=Lax{}",
        login.seal(&key),
        state.secure_cookie_attribute()
    );
    see_other(provider_url.as_str(), &[state_cookie])
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/callback?code=...&state=...`: finishes the login this browser started, sets the
/// session cookie and goes back to where the login started.
pub async fn callback(
    State(state): State<AppState>,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(error) = query.error {
        let description = query
            .error_description
            .map(|description| format!(": {description}"))
            .unwrap_or_default();
        return Err(ApiError::unauthenticated(format!(
            "the provider refused the login: {error}{description}"
        )));
    }
    let (Some(code), Some(returned_state)) = (query.code, query.state) else {
        return Err(ApiError::invalid_argument(
            "the callback needs a code and a state",
        ));
    };
    let settings = state.settings();
    let (sso, oidc, redirect_uri) = sso_settings(&settings)?;
    let key = state_key(&settings)?;
    let sealed = cookie(&headers, STATE_COOKIE).ok_or_else(|| {
        ApiError::invalid_argument(format!(
            "no login in progress in this browser (no {STATE_COOKIE} cookie)"
        ))
    })?;
    let login = LoginState::open(sealed, &key, now(), &returned_state).map_err(|err| {
        tracing::warn!(reason = %err, "SSO callback refused");
        ApiError::invalid_argument(format!("invalid login state: {err}"))
    })?;
    // `url` may have changed since the login started.
    let return_url = checked_return_url(&login.return_url, sso.url.as_ref())
        .map_err(ApiError::invalid_argument)?;
    let provider = state
        .oidc_providers()
        .get(&oidc.issuer, oidc.root_ca.as_deref())
        .map_err(|err| sso_error(&err))?;
    let pending = PendingLogin {
        state: login.state,
        nonce: login.nonce,
        pkce_verifier: login.pkce_verifier,
    };
    let tokens = provider
        .finish_login(
            &oidc.client_id,
            oidc.client_secret(),
            &redirect_uri,
            &code,
            &pending,
        )
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "SSO login failed");
            sso_error(&err)
        })?;
    let user = SsoUser::from_claims(&tokens.claims, &group_scopes(&settings));
    let Caller::Sso(user) = sso_caller(&settings, user)? else {
        unreachable!("an SSO user stays one")
    };
    tracing::info!(subject = %user.subject, groups = ?user.groups, "SSO login succeeded");
    let secure = state.secure_cookie_attribute();
    see_other(
        &return_url,
        &[
            session_cookie(&state, Some(&tokens.id_token)),
            format!("{STATE_COOKIE}=; Path=/auth; Max-Age=0; HttpOnly; SameSite=Lax{secure}"),
        ],
    )
}

/// `GET /auth/logout`: forgets the browser's session cookie; for an SSO session with a
/// `logoutURL`, goes on to the provider to end its session too, else back to the server.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let settings = state.settings();
    let sso = settings.sso().ok();
    let home = sso
        .and_then(|sso| sso.url.as_ref())
        .map_or_else(|| "/".to_string(), |url| url.to_string());
    let logout_url = sso
        .and_then(|sso| sso.oidc.as_deref())
        .and_then(|oidc| oidc.logout_url.as_deref());
    let caller = authenticate(&state, &headers).await.ok();
    let target = match (logout_url, cookie(&headers, TOKEN_COOKIE), &caller) {
        (Some(logout_url), Some(token), Some(Caller::Sso(_))) => {
            // Argo CD's placeholders: the ID token as `id_token_hint`, and where to come back.
            logout_url
                .replace("{{token}}", token)
                .replace("{{logoutRedirectURL}}", &home)
        }
        _ => home,
    };
    if let (Some(token), Some(caller)) = (request_token(&headers), &caller) {
        revoke(&state, token, caller).await?;
    }
    see_other(&target, &[session_cookie(&state, None)])
}

/// The SSO settings a login needs: configured, and with `url` to come back to.
fn sso_settings(settings: &Snapshot) -> Result<(&SsoSettings, &OidcConfig, String), ApiError> {
    let sso = settings.sso()?;
    let oidc = sso.oidc.as_deref().ok_or_else(|| {
        ApiError::failed_precondition("SSO is not configured (argocd-cm has no oidc.config)")
    })?;
    let redirect_uri = sso.redirect_uri().ok_or_else(|| {
        ApiError::unavailable(
            "SSO is unavailable: argocd-cm has no url, the server's external URL the provider \
             sends browsers back to",
        )
    })?;
    Ok((sso, oidc, redirect_uri))
}

/// The key login states are signed with: the server's own.
fn state_key(settings: &Snapshot) -> Result<Vec<u8>, ApiError> {
    let sessions = settings.sessions()?;
    let key = sessions.settings().server_key.as_ref().ok_or_else(|| {
        ApiError::unavailable("SSO is unavailable: argocd-secret has no server.secretkey")
    })?;
    Ok(key.as_bytes().to_vec())
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// A 303 to `location`, setting `cookies`.
fn see_other(location: &str, cookies: &[String]) -> Result<Response, ApiError> {
    let invalid = |err: header::InvalidHeaderValue| ApiError::internal("redirecting", &err);
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(location).map_err(invalid)?,
    );
    for cookie in cookies {
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_str(cookie).map_err(invalid)?,
        );
    }
    Ok(response)
}
