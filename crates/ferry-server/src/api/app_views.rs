//! What the controller knows of an Application, passed on to callers who may `get` it: its
//! managed resources with their states (`app diff`), its resource tree and its rendered
//! manifests. As Argo CD's API server reads these from the controller's cache, ferry's asks the
//! controller ([`ControllerClient`]), with a token derived from the server key.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde_json::Value;

use super::applications::authorized_app;
use super::authn::Caller;
use super::error::{ApiError, Code};
use super::state::AppState;
use crate::rbac::resources::GET;

/// Where the controller serves its views.
#[derive(Clone)]
pub struct ControllerClient {
    base: url::Url,
    http: reqwest::Client,
}

impl ControllerClient {
    pub fn new(base: url::Url) -> Self {
        Self {
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn get(
        &self,
        state: &AppState,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Value, ApiError> {
        // Derived from argocd-secret, which the settings watch already follows.
        let token = state
            .settings()
            .controller_token()
            .map(str::to_string)
            .ok_or_else(|| ApiError::unavailable("argocd-secret has no server key"))?;
        let url = self
            .base
            .join(path)
            .map_err(|err| ApiError::internal("addressing the controller", &err))?;
        let unavailable = |err: reqwest::Error| {
            ApiError::unavailable(format!(
                "the application controller cannot be reached: {err}"
            ))
        };
        let response = self
            .http
            .get(url)
            .query(query)
            .bearer_auth(token)
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status();
        let body: Value = response.json().await.map_err(unavailable)?;
        if status.is_success() {
            return Ok(body);
        }
        let message = body["message"].as_str().unwrap_or("no message").to_string();
        Err(match status.as_u16() {
            404 => ApiError::not_found(message),
            422 => ApiError::new(Code::FailedPrecondition, message),
            _ => ApiError::unavailable(format!(
                "the application controller answered {status}: {message}"
            )),
        })
    }
}

async fn view(
    state: &AppState,
    caller: &Caller,
    name: &str,
    what: &str,
    query: &[(&str, &str)],
) -> Result<Json<Value>, ApiError> {
    authorized_app(state, caller, name, GET).await?;
    let controller = state
        .controller()
        .ok_or_else(|| ApiError::unavailable("no application controller is configured"))?;
    let path = format!("v1/applications/{}/{what}", urlencode(name));
    controller.get(state, &path, query).await.map(Json)
}

fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

/// `GET /api/v1/applications/{name}/managed-resources`.
pub async fn managed_resources(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    view(&state, &caller, &name, "managed-resources", &[]).await
}

/// `GET /api/v1/applications/{name}/resource-tree`.
pub async fn resource_tree(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    view(&state, &caller, &name, "resource-tree", &[]).await
}

/// `GET /api/v1/applications/{name}/manifests?revision=`.
pub async fn manifests(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let revision = query
        .get("revision")
        .map(String::as_str)
        .unwrap_or_default();
    view(
        &state,
        &caller,
        &name,
        "manifests",
        &[("revision", revision)],
    )
    .await
}
