//! `GET /api/v1/applications/{name}/syncwindows` (Argo CD's `GetApplicationSyncWindows`): the
//! windows of the app's project that apply to it, those active now, and whether a sync asked for
//! by hand may start now; and the check that refuses such a sync while a window blocks it.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use ferry_types::project::SyncWindow;
use ferry_types::{AppProject, Application};
use jiff::Timestamp;
use kube::Api;
use serde_json::{Value, json};

use super::applications::authorized_app;
use super::authn::Caller;
use super::error::{ApiError, Code};
use super::state::AppState;
use crate::rbac::resources::GET;

pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let app = authorized_app(&state, &caller, &name, GET).await?;
    let project = project(&state, &app).await?;
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

/// Argo CD's check before a sync asked for by hand: refused while one of the app's
/// windows blocks it, so the caller hears why instead of watching the operation fail.
pub async fn ensure_manual_sync_allowed(
    state: &AppState,
    app: &Application,
) -> Result<(), ApiError> {
    let project = project(state, app).await?;
    let windows = project.sync_windows(app).map_err(|err| {
        ApiError::new(
            Code::PermissionDenied,
            format!("cannot sync: invalid sync window: {err}"),
        )
    })?;
    if windows.can_sync(Timestamp::now(), true) {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::PermissionDenied,
            "cannot sync: blocked by sync window",
        ))
    }
}

/// The app's AppProject (always the control namespace's), which its windows come from.
async fn project(state: &AppState, app: &Application) -> Result<AppProject, ApiError> {
    let projects: Api<AppProject> = Api::namespaced(state.client(), state.namespace());
    projects
        .get_opt(app.project())
        .await
        .map_err(|err| ApiError::kube("reading the AppProject", &err))?
        .ok_or_else(|| ApiError::not_found(format!("project {} not found", app.project())))
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
