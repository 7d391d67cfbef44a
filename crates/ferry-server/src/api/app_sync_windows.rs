//! `GET /api/v1/applications/{name}/syncwindows` (Argo CD's `GetApplicationSyncWindows`): the
//! windows of the app's project that apply to it, those active now, and whether a sync asked for
//! by hand may start now.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use ferry_types::AppProject;
use ferry_types::project::SyncWindow;
use jiff::Timestamp;
use kube::Api;
use serde_json::{Value, json};

use super::applications::authorized_app;
use super::authn::Caller;
use super::error::ApiError;
use super::state::AppState;
use crate::rbac::resources::GET;

pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let app = authorized_app(&state, &caller, &name, GET).await?;
    let projects: Api<AppProject> = Api::namespaced(state.client(), state.namespace());
    let project = projects
        .get_opt(app.project())
        .await
        .map_err(|err| ApiError::kube("reading the AppProject", &err))?
        .ok_or_else(|| ApiError::not_found(format!("project {} not found", app.project())))?;
    let windows = project
        .sync_windows(&app)
        .map_err(|err| ApiError::failed_precondition(format!("invalid sync windows: {err}")))?;
    let now = Timestamp::now();
    Ok(Json(json!({
        "activeWindows": windows.active(now).into_iter().map(shown).collect::<Vec<_>>(),
        "assignedWindows": windows.all().map(shown).collect::<Vec<_>>(),
        "canSync": windows.can_sync(now, true),
    })))
}

/// A window as Argo CD's `ApplicationSyncWindow` shows it.
fn shown(window: &SyncWindow) -> Value {
    json!({
        "kind": window.kind,
        "schedule": window.schedule,
        "duration": window.duration,
        "manualSync": window.manual_sync,
    })
}
