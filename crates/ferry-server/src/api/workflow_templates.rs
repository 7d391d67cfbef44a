//! Argo Workflows' WorkflowTemplateService (`/api/v1/workflow-templates/{namespace}…`, RBAC
//! `workflowtemplates` on `<namespace>/<name>`) and ClusterWorkflowTemplateService
//! (`/api/v1/cluster-workflow-templates…`, `clusterworkflowtemplates` on `<name>`): list, get,
//! create, update, delete, lint; bodies hold the object in `template`.

use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use ferry_types::{ClusterWorkflowTemplate, WorkflowTemplate};
use kube::Api;
use serde_json::Value;

use super::authn::Caller;
use super::error::ApiError;
use super::state::AppState;
use super::workflow_objects::Kind;
use crate::rbac::resources::{CLUSTER_WORKFLOW_TEMPLATES, WORKFLOW_TEMPLATES};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/workflow-templates/{namespace}",
            get(list).post(create),
        )
        .route("/api/v1/workflow-templates/{namespace}/lint", post(lint))
        .route(
            "/api/v1/workflow-templates/{namespace}/{name}",
            get(get_one).put(update).delete(delete),
        )
        .route(
            "/api/v1/cluster-workflow-templates",
            get(cluster_list).post(cluster_create),
        )
        .route(
            "/api/v1/cluster-workflow-templates/lint",
            post(cluster_lint),
        )
        .route(
            "/api/v1/cluster-workflow-templates/{name}",
            get(cluster_get).put(cluster_update).delete(cluster_delete),
        )
}

fn templates(state: &AppState, namespace: String) -> Kind<WorkflowTemplate> {
    Kind {
        api: Api::namespaced(state.client(), &namespace),
        namespace: Some(namespace),
        resource: WORKFLOW_TEMPLATES,
        field: "template",
    }
}

fn cluster_templates(state: &AppState) -> Kind<ClusterWorkflowTemplate> {
    Kind {
        api: Api::all(state.client()),
        namespace: None,
        resource: CLUSTER_WORKFLOW_TEMPLATES,
        field: "template",
    }
}

async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(namespace): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    templates(&state, namespace)
        .list(&state, &caller, query.as_deref())
        .await
}

async fn get_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<WorkflowTemplate>, ApiError> {
    templates(&state, namespace)
        .get(&state, &caller, &name)
        .await
}

async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(namespace): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<WorkflowTemplate>, ApiError> {
    templates(&state, namespace)
        .create(&state, &caller, &body)
        .await
}

async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, name)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Result<Json<WorkflowTemplate>, ApiError> {
    templates(&state, namespace)
        .update(&state, &caller, &name, &body)
        .await
}

async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    templates(&state, namespace)
        .delete(&state, &caller, &name)
        .await
}

async fn lint(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(namespace): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<WorkflowTemplate>, ApiError> {
    templates(&state, namespace)
        .lint(&state, &caller, &body)
        .await
}

async fn cluster_list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    cluster_templates(&state)
        .list(&state, &caller, query.as_deref())
        .await
}

async fn cluster_get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<ClusterWorkflowTemplate>, ApiError> {
    cluster_templates(&state).get(&state, &caller, &name).await
}

async fn cluster_create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<Value>,
) -> Result<Json<ClusterWorkflowTemplate>, ApiError> {
    cluster_templates(&state)
        .create(&state, &caller, &body)
        .await
}

async fn cluster_update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<ClusterWorkflowTemplate>, ApiError> {
    cluster_templates(&state)
        .update(&state, &caller, &name, &body)
        .await
}

async fn cluster_delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    cluster_templates(&state)
        .delete(&state, &caller, &name)
        .await
}

async fn cluster_lint(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<Value>,
) -> Result<Json<ClusterWorkflowTemplate>, ApiError> {
    cluster_templates(&state).lint(&state, &caller, &body).await
}
