//! Argo Workflows' CronWorkflowService (`/api/v1/cron-workflows/{namespace}…`, RBAC
//! `cronworkflows` on `<namespace>/<name>`): list, get, create, update, delete, lint (bodies
//! hold the object in `cronWorkflow`), and suspend and resume (`update`), which set
//! `spec.suspend` as `ferry cron suspend|resume` do.

use axum::extract::{Path, State};
use axum::routing::put;
use axum::{Extension, Json, Router};
use ferry_types::CronWorkflow;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::authn::Caller;
use super::authz::authorize;
use super::error::ApiError;
use super::state::AppState;
use super::workflow_objects::{self, Kind};
use crate::rbac::resources::{CRON_WORKFLOWS, UPDATE};

pub fn routes() -> Router<AppState> {
    workflow_objects::routes("/api/v1/cron-workflows/{namespace}", crons)
        .route(
            "/api/v1/cron-workflows/{namespace}/{name}/suspend",
            put(suspend),
        )
        .route(
            "/api/v1/cron-workflows/{namespace}/{name}/resume",
            put(resume),
        )
}

fn crons(state: &AppState, namespace: Option<String>) -> Kind<CronWorkflow> {
    let namespace = namespace.unwrap_or_default();
    Kind {
        api: Api::namespaced(state.client(), &namespace),
        namespace: Some(namespace),
        resource: CRON_WORKFLOWS,
        field: "cronWorkflow",
    }
}

/// Sets `spec.suspend` of CronWorkflow `name`.
async fn set_suspend(
    state: &AppState,
    caller: &Caller,
    (namespace, name): (String, String),
    suspend: bool,
) -> Result<Json<CronWorkflow>, ApiError> {
    let object = format!("{namespace}/{name}");
    authorize(&state.settings(), caller, CRON_WORKFLOWS, UPDATE, &object)?;
    let patch = Patch::Merge(json!({"spec": {"suspend": suspend}}));
    let written = Api::<CronWorkflow>::namespaced(state.client(), &namespace)
        .patch(&name, &PatchParams::default(), &patch)
        .await
        .map_err(|err| ApiError::kube("writing the CronWorkflow", &err))?;
    let (reason, message) = if suspend {
        ("CronWorkflowSuspended", "suspended CronWorkflow")
    } else {
        ("CronWorkflowResumed", "resumed CronWorkflow")
    };
    state
        .audit()
        .record(caller, &written, reason, message)
        .await;
    Ok(Json(written))
}

async fn suspend(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(path): Path<(String, String)>,
) -> Result<Json<CronWorkflow>, ApiError> {
    set_suspend(&state, &caller, path, true).await
}

async fn resume(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(path): Path<(String, String)>,
) -> Result<Json<CronWorkflow>, ApiError> {
    set_suspend(&state, &caller, path, false).await
}
