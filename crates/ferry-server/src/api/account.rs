//! `/api/v1/account`: local accounts, their passwords and API tokens, and `can-i`.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::account_store::update_account;
use super::authn::Caller;
use super::authz::{authorize, visible};
use super::error::ApiError;
use super::state::{AppState, Snapshot};
use crate::auth::{Account, AuthError, SessionManager};
use crate::rbac::resources::{ACCOUNTS, GET, RESOURCES, UPDATE};

/// An account as Argo CD's API shows it: never its password hash, nor its tokens, only their
/// records.
fn account_json(name: &str, account: &Account) -> Value {
    let tokens: Vec<Value> = account
        .tokens
        .iter()
        .map(|token| {
            let mut record = json!({ "id": token.id, "issuedAt": token.iat });
            if token.exp != 0 {
                record["expiresAt"] = token.exp.into();
            }
            record
        })
        .collect();
    json!({
        "name": name,
        "enabled": account.enabled,
        "capabilities": account.capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "tokens": tokens,
    })
}

/// Argo CD's rule for account requests: a local account may always act on itself; anything
/// else needs `accounts, <action>, <name>`.
fn authorize_account(
    settings: &Snapshot,
    caller: &Caller,
    action: &str,
    name: &str,
) -> Result<(), ApiError> {
    if caller.account() == Some(name) {
        return Ok(());
    }
    authorize(settings, caller, ACCOUNTS, action, name)
}

/// `GET /api/v1/account`: the accounts the caller may see.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    let settings = state.settings();
    let mut items = Vec::new();
    for (name, account) in settings.sessions()?.settings().accounts.iter() {
        if visible(&settings, &caller, ACCOUNTS, GET, name)? {
            items.push(account_json(name, account));
        }
    }
    Ok(Json(json!({ "items": items })))
}

/// `GET /api/v1/account/{name}`.
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let settings = state.settings();
    authorize_account(&settings, &caller, GET, &name)?;
    let sessions = settings.sessions()?;
    let account = sessions
        .settings()
        .accounts
        .get(&name)
        .ok_or_else(|| ApiError::not_found(format!("account {name} does not exist")))?;
    Ok(Json(account_json(&name, account)))
}

/// `GET /api/v1/account/can-i/{resource}/{action}/{object}`: `{"value": "yes"|"no"}`.
pub async fn can_i(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((resource, action, object)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    if !RESOURCES.contains(&resource.as_str()) {
        return Err(ApiError::invalid_argument(format!(
            "unknown resource {resource:?} (the resources are {})",
            RESOURCES.join(", ")
        )));
    }
    let settings = state.settings();
    let allowed = visible(&settings, &caller, &resource, &action, &object)?;
    Ok(Json(json!({ "value": if allowed { "yes" } else { "no" } })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordRequest {
    #[serde(default)]
    current_password: String,
    new_password: String,
    /// The account whose password changes; the caller's own by default.
    #[serde(default)]
    name: String,
}

/// `PUT /api/v1/account/password`: as in Argo CD, the caller proves who they are with their own
/// current password, whichever account's password they change. Every token issued for that
/// account before now stops working.
pub async fn update_password(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(request): Json<PasswordRequest>,
) -> Result<Json<Value>, ApiError> {
    let Some(caller_account) = caller.account().map(str::to_string) else {
        return Err(ApiError::permission_denied());
    };
    let target = if request.name.is_empty() {
        caller_account.clone()
    } else {
        request.name.clone()
    };
    authorize_account(&state.settings(), &caller, UPDATE, &target)?;
    let account_name = target.clone();
    update_account(&state, &account_name, move |settings, account| {
        let own_hash = if target == caller_account {
            account.password_hash.as_ref()
        } else {
            settings
                .accounts
                .get(&caller_account)
                .and_then(|own| own.password_hash.as_ref())
        };
        if !own_hash.is_some_and(|hash| hash.verify(&request.current_password)) {
            return Err(ApiError::invalid_argument(
                "current password does not match",
            ));
        }
        account
            .set_password(
                &request.new_password,
                &settings.password_policy,
                Timestamp::now(),
            )
            .map_err(|err| match err {
                AuthError::PasswordRefused { .. } => ApiError::invalid_argument(err.to_string()),
                other => ApiError::internal("setting the password", &other),
            })
    })
    .await?;
    tracing::info!(account = %account_name, by = %caller.name(), "password changed");
    Ok(Json(json!({})))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    /// Seconds until the token expires; never when absent or 0.
    #[serde(default)]
    expires_in: u64,
}

/// `POST /api/v1/account/{name}/token`: a new API token, listed in the account's tokens from
/// now on; the only time the token itself is shown.
pub async fn create_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Option<Json<TokenRequest>>,
) -> Result<Json<Value>, ApiError> {
    authorize_account(&state.settings(), &caller, UPDATE, &name)?;
    let expires_in = body.map(|Json(body)| body.expires_in).unwrap_or_default();
    let account_name = name.clone();
    let (jwt, id) = update_account(&state, &name, move |settings, account| {
        let sessions = SessionManager::new(settings.clone())
            .map_err(|err| ApiError::unavailable(err.to_string()))?;
        let (jwt, record) = sessions
            .generate_token(&account_name, Some(Duration::from_secs(expires_in)))
            .map_err(|err| match err {
                AuthError::AccountDisabled { .. } | AuthError::MissingCapability { .. } => {
                    ApiError::failed_precondition(err.to_string())
                }
                other => ApiError::internal("issuing a token", &other),
            })?;
        let id = record.id.clone();
        account.tokens.push(record);
        Ok((jwt, id))
    })
    .await?;
    tracing::info!(account = %name, token_id = %id, by = %caller.name(), "API token created");
    Ok(Json(json!({ "token": jwt.as_str() })))
}

/// `DELETE /api/v1/account/{name}/token/{id}`: revokes an API token.
pub async fn delete_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    authorize_account(&state.settings(), &caller, UPDATE, &name)?;
    let token_id = id.clone();
    update_account(&state, &name, move |_, account| {
        let before = account.tokens.len();
        account.tokens.retain(|token| token.id != token_id);
        if account.tokens.len() == before {
            return Err(ApiError::not_found(format!(
                "token with id {token_id:?} not found"
            )));
        }
        Ok(())
    })
    .await?;
    tracing::info!(account = %name, token_id = %id, by = %caller.name(), "API token deleted");
    Ok(Json(json!({})))
}
