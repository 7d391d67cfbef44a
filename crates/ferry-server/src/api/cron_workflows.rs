//! Argo Workflows' CronWorkflowService (`/api/v1/cron-workflows/{namespace}…`, RBAC
//! `cronworkflows` on `<namespace>/<name>`): list, get, create, update, delete, lint (bodies
//! hold the object in `cronWorkflow`), and suspend and resume (`update`), which set
//! `spec.suspend` as `ferry cron suspend|resume` do.

use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use ferry_types::CronWorkflow;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::authn::Caller;
use super::authz::authorize;
use super::error::ApiError;
use super::state::AppState;
use super::workflow_objects::Kind;
use crate::rbac::resources::{CRON_WORKFLOWS, UPDATE};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/cron-workflows/{namespace}", get(list).post(create))
        .route("/api/v1/cron-workflows/{namespace}/lint", post(lint))
        .route(
            "/api/v1/cron-workflows/{namespace}/{name}",
            get(get_one).put(update).delete(delete),
        )
        .route(
            "/api/v1/cron-workflows/{namespace}/{name}/suspend",
            put(suspend),
        )
        .route(
            "/api/v1/cron-workflows/{namespace}/{name}/resume",
            put(resume),
        )
}

fn crons(state: &AppState, namespace: String) -> Kind<CronWorkflow> {
    Kind {
        api: Api::namespaced(state.client(), &namespace),
        namespace: Some(namespace),
        resource: CRON_WORKFLOWS,
        field: "cronWorkflow",
    }
}

async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(namespace): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    crons(&state, namespace)
        .list(&state, &caller, query.as_deref())
        .await
}

async fn get_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<CronWorkflow>, ApiError> {
    crons(&state, namespace).get(&state, &caller, &name).await
}

async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(namespace): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<CronWorkflow>, ApiError> {
    crons(&state, namespace)
        .create(&state, &caller, &body)
        .await
}

async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, name)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Result<Json<CronWorkflow>, ApiError> {
    crons(&state, namespace)
        .update(&state, &caller, &name, &body)
        .await
}

async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    crons(&state, namespace)
        .delete(&state, &caller, &name)
        .await
}

async fn lint(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(namespace): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<CronWorkflow>, ApiError> {
    crons(&state, namespace).lint(&state, &caller, &body).await
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
