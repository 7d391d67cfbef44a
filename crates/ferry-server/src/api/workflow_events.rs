//! Argo Workflows' EventService: `POST /api/v1/events/{namespace}/{discriminator}` offers any
//! JSON payload to the namespace's WorkflowEventBindings (RBAC `workflowevents`, `create`, on
//! `<namespace>/<discriminator>`), and `GET /api/v1/workflow-event-bindings/{namespace}` lists
//! them (`workflowevents`, `get`, on `<namespace>/<name>`). The verified pushes of
//! `/api/webhook` go through [`event`] and [`reported`] too.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use ferry_types::WorkflowEventBinding;
use ferry_workflow::event::{self, Event, Outcome};
use kube::Api;
use kube::api::ListParams;
use serde_json::{Value, json};

use super::authn::Caller;
use super::authz::{authorize, visible};
use super::error::ApiError;
use super::state::AppState;
use crate::rbac::resources::{CREATE, GET, WORKFLOW_EVENTS};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events/{namespace}/{discriminator}", post(receive))
        .route(
            "/api/v1/workflow-event-bindings/{namespace}",
            get(list_bindings),
        )
}

/// The event a request makes: its `x-` headers as metadata, as upstream keeps them.
pub fn event(headers: &HeaderMap, namespace: &str, discriminator: &str, payload: Value) -> Event {
    let mut event = Event::headers(
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes())),
    );
    event.namespace = namespace.to_string();
    event.discriminator = discriminator.to_string();
    event.payload = payload;
    event
}

/// What the bindings did: `{binding, workflow}` or `{binding, error}` each, unmatched ones left
/// out.
pub fn reported(outcomes: Vec<Outcome>) -> Value {
    let reported = outcomes.into_iter().filter_map(|outcome| match outcome {
        Outcome::Unmatched { .. } => None,
        Outcome::Submitted { binding, workflow } => {
            Some(json!({"binding": binding, "workflow": workflow}))
        }
        Outcome::Failed { binding, message } => Some(json!({"binding": binding, "error": message})),
    });
    Value::Array(reported.collect())
}

/// `POST /api/v1/events/{namespace}/{discriminator}` with the payload as body. Upstream
/// answers `{}`; ferry's answer also says what each binding did (`workflows`).
async fn receive(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, discriminator)): Path<(String, String)>,
    headers: HeaderMap,
    Json(payload): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let object = format!("{namespace}/{discriminator}");
    authorize(&state.settings(), &caller, WORKFLOW_EVENTS, CREATE, &object)?;
    let event = event(&headers, &namespace, &discriminator, payload);
    let outcomes = event::dispatch(&state.client(), &event)
        .await
        .map_err(|err| match err.downcast_ref::<kube::Error>() {
            Some(err) => ApiError::kube("listing the WorkflowEventBindings", err),
            None => ApiError::internal("offering the event", err.as_ref()),
        })?;
    tracing::info!(user = %caller.name(), namespace, discriminator, "workflow event received");
    Ok(Json(json!({"workflows": reported(outcomes)})))
}

/// `GET /api/v1/workflow-event-bindings/{namespace}`: the bindings the caller may see.
async fn list_bindings(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(namespace): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let listed = Api::<WorkflowEventBinding>::namespaced(state.client(), &namespace)
        .list(&ListParams::default())
        .await
        .map_err(|err| ApiError::kube("listing the WorkflowEventBindings", &err))?;
    let settings = state.settings();
    let mut items = Vec::new();
    for binding in listed.items {
        let object = format!(
            "{namespace}/{}",
            binding.metadata.name.as_deref().unwrap_or_default()
        );
        if visible(&settings, &caller, WORKFLOW_EVENTS, GET, &object)? {
            items.push(binding);
        }
    }
    Ok(Json(json!({
        "metadata": {"resourceVersion": listed.metadata.resource_version},
        "items": items,
    })))
}
