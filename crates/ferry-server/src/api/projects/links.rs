//! `GET /api/v1/projects/{name}/links`: argocd-cm's `project.links` deep links of a project,
//! evaluated over `project` (without its status, which holds its tokens) as Argo CD does.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::fetch;
use crate::api::app_links::{configured, evaluate};
use crate::api::authn::Caller;
use crate::api::authz::visible;
use crate::api::error::{ApiError, Code};
use crate::api::state::AppState;
use crate::rbac::resources::{GET, PROJECTS};

const PROJECT_LINKS: &str = "project.links";

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    // Argo CD's own words and code (a plain error) for a refusal here.
    if !visible(&state.settings(), &caller, PROJECTS, GET, &name)? {
        return Err(ApiError::new(
            Code::Unknown,
            format!("unauthorized access to project {name}"),
        ));
    }
    let mut project = serde_json::to_value(fetch(&state, &name).await?)
        .map_err(|err| ApiError::internal("reading the AppProject", &err))?;
    if let Some(fields) = project.as_object_mut() {
        fields.remove("status");
    }
    let links = configured(&state, PROJECT_LINKS)?;
    let scope = json!({ "project": project });
    Ok(Json(json!({"items": evaluate(&links, &scope, &name)})))
}
