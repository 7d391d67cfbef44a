//! `/api/v1/projects/{name}/roles/{role}/token`: project role tokens, JWTs with the subject
//! `proj:<project>:<role>`. A token is accepted while its record (issue time, expiry, id) is in
//! the AppProject: issuing one records it, deleting the record revokes it. Both need `projects,
//! update` on the project.

use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::routing::{delete, post};
use axum::{Extension, Json, Router};
use ferry_types::AppProject;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{projects, update_failed};
use crate::api::authn::Caller;
use crate::api::authz::authorize;
use crate::api::error::ApiError;
use crate::api::query::Query;
use crate::api::state::AppState;
use crate::auth::{AuthError, Jwt, record_project_token, remove_project_token};
use crate::rbac::resources::{PROJECTS, UPDATE};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/projects/{name}/roles/{role}/token", post(create))
        .route(
            "/api/v1/projects/{name}/roles/{role}/token/{iat}",
            delete(remove),
        )
}

/// Argo CD's `ProjectTokenCreateRequest`, the part ferry acts on.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct TokenRequest {
    /// Seconds until the token expires; never when 0.
    expires_in: u64,
    /// The token's id; a fresh one when empty.
    id: String,
}

fn no_such_role(project: &str, role: &str) -> ApiError {
    ApiError::not_found(format!("project '{project}' does not have role '{role}'"))
}

/// `POST /api/v1/projects/{name}/roles/{role}/token` with `{expiresIn, id}`: `{token}`, the only
/// time the token itself is shown.
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((project, role)): Path<(String, String)>,
    body: Option<Json<TokenRequest>>,
) -> Result<Json<Value>, ApiError> {
    let request = body.map(|Json(body)| body).unwrap_or_default();
    let settings = state.settings();
    authorize(&settings, &caller, PROJECTS, UPDATE, &project)?;
    let sessions = settings.sessions()?;
    let id = Some(request.id.as_str()).filter(|id| !id.is_empty());
    let lifetime = Some(Duration::from_secs(request.expires_in));
    let mut issued: Option<Jwt> = None;
    let (written, _) =
        ferry_runtime::update(&projects(&state), &project, |current: &mut AppProject| {
            let spec_role = current
                .spec
                .roles
                .iter()
                .find(|r| r.name == role)
                .ok_or_else(|| no_such_role(&project, &role))?;
            if let Some(id) = id
                && spec_role.jwt_tokens.iter().any(|token| token.id == id)
            {
                return Err(ApiError::invalid_argument(format!(
                    "token id '{id}' has been used"
                )));
            }
            let (jwt, record) = sessions
                .issue_project_token(current, &role, lifetime, id)
                .map_err(|err| match err {
                    AuthError::UnknownRole { .. } => no_such_role(&project, &role),
                    AuthError::LifetimeOutOfRange { .. } => {
                        ApiError::invalid_argument(err.to_string())
                    }
                    other => ApiError::internal("issuing a project token", &other),
                })?;
            record_project_token(current, &role, record)
                .map_err(|_| no_such_role(&project, &role))?;
            issued = Some(jwt);
            Ok(())
        })
        .await
        .map_err(|err| update_failed(&project, err))?;
    let token = issued.expect("the project is only written after a token was issued");
    state
        .audit()
        .record(
            &caller,
            &written,
            "ResourceCreated",
            &format!("created a token of role {role}"),
        )
        .await;
    Ok(Json(json!({ "token": token.as_str() })))
}

/// `DELETE /api/v1/projects/{name}/roles/{role}/token/{iat}?id=`: revokes the role's token with
/// that id or, without one (tokens from before Argo CD gave them ids), issued at `iat`.
async fn remove(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((project, role, iat)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let iat: i64 = iat
        .parse()
        .map_err(|_| ApiError::invalid_argument("iat must be a number of seconds"))?;
    let query = Query::parse(query.as_deref());
    let id = query.value("id").filter(|id| !id.is_empty());
    authorize(&state.settings(), &caller, PROJECTS, UPDATE, &project)?;
    let (written, _) =
        ferry_runtime::update(&projects(&state), &project, |current: &mut AppProject| {
            match remove_project_token(current, &role, iat, id) {
                Ok(true) => Ok(()),
                Ok(false) => Err(ApiError::not_found(format!(
                    "role '{role}' of project '{project}' has no such token"
                ))),
                Err(_) => Err(no_such_role(&project, &role)),
            }
        })
        .await
        .map_err(|err| update_failed(&project, err))?;
    state
        .audit()
        .record(
            &caller,
            &written,
            "ResourceDeleted",
            &format!("deleted a token of role {role}"),
        )
        .await;
    Ok(Json(json!({})))
}
