//! Operations on an Application: sync, rollback and terminating the running operation. They
//! are requested the way Argo CD's API server requests them, by writing the Application's
//! `operation` (or the running operation's phase); the controller carries them out.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use ferry_types::Application;
use ferry_types::application::{
    Operation, OperationInitiator, OperationPhase, SyncOperation, SyncOperationResource,
    SyncStrategy,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::app_sync_windows::ensure_manual_sync_allowed;
use super::applications::{authorized_app, modify_app};
use super::authn::Caller;
use super::error::ApiError;
use super::state::AppState;
use crate::rbac::resources::{GET, SYNC};

/// Argo CD's `ApplicationSyncRequest`, the part ferry acts on.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SyncRequest {
    #[serde(default)]
    revision: String,
    #[serde(default)]
    prune: bool,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    strategy: Option<SyncStrategy>,
    #[serde(default)]
    resources: Vec<SyncOperationResource>,
    #[serde(default)]
    sync_options: Option<SyncOptions>,
    #[serde(default)]
    retry_strategy: Option<ferry_types::application::RetryStrategy>,
}

#[derive(Deserialize, Default)]
pub struct SyncOptions {
    #[serde(default)]
    items: Vec<String>,
}

fn initiator(caller: &Caller) -> OperationInitiator {
    OperationInitiator {
        username: caller.name(),
        ..OperationInitiator::default()
    }
}

fn precondition(err: ferry_types::application::RequestError) -> ApiError {
    ApiError::failed_precondition(err.to_string())
}

/// `POST /api/v1/applications/{name}/sync`. An empty revision is the target revision.
pub async fn sync(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Option<Json<SyncRequest>>,
) -> Result<Json<Application>, ApiError> {
    let request = body.map(|Json(body)| body).unwrap_or_default();
    let app = authorized_app(&state, &caller, &name, GET).await?;
    ensure_manual_sync_allowed(&state, &app).await?;
    let operation = Operation {
        sync: Some(SyncOperation {
            revision: request.revision.clone(),
            prune: request.prune,
            dry_run: request.dry_run,
            sync_strategy: request.strategy,
            resources: request.resources,
            sync_options: request.sync_options.map(|o| o.items).unwrap_or_default(),
            ..SyncOperation::default()
        }),
        initiated_by: initiator(&caller),
        retry: request.retry_strategy,
        ..Operation::default()
    };
    let written = modify_app(&state, &caller, &name, SYNC, |app| {
        app.request_operation(&operation).map_err(precondition)
    })
    .await?;
    let revision = match request.revision.as_str() {
        "" => "HEAD",
        revision => revision,
    };
    let dry_run = if request.dry_run { " (dry run)" } else { "" };
    state
        .audit()
        .record(
            &caller,
            &written,
            "OperationStarted",
            &format!("initiated sync to {revision}{dry_run}"),
        )
        .await;
    Ok(Json(written))
}

/// Argo CD's `ApplicationRollbackRequest`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackRequest {
    id: i64,
    #[serde(default)]
    prune: bool,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /api/v1/applications/{name}/rollback`: syncs to deployment `id` of the history, with
/// the source it was deployed from.
pub async fn rollback(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Json(request): Json<RollbackRequest>,
) -> Result<Json<Application>, ApiError> {
    let written = modify_app(&state, &caller, &name, SYNC, |app| {
        let operation = app
            .rollback_operation(
                request.id,
                request.prune,
                request.dry_run,
                initiator(&caller),
            )
            .map_err(precondition)?;
        app.request_operation(&operation).map_err(precondition)
    })
    .await?;
    state
        .audit()
        .record(
            &caller,
            &written,
            "OperationStarted",
            &format!("initiated rollback to {}", request.id),
        )
        .await;
    Ok(Json(written))
}

/// `DELETE /api/v1/applications/{name}/operation`: the running operation's phase becomes
/// `Terminating`, which the controller acts on.
pub async fn terminate(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let written = modify_app(&state, &caller, &name, SYNC, |app| {
        let running = app
            .status
            .as_mut()
            .and_then(|status| status.operation_state.as_mut())
            .filter(|operation| operation.phase == OperationPhase::Running);
        match running {
            Some(operation) => {
                operation.phase = OperationPhase::Terminating;
                Ok(())
            }
            None => Err(ApiError::failed_precondition(
                "Unable to terminate operation. No operation is in progress",
            )),
        }
    })
    .await?;
    state
        .audit()
        .record(
            &caller,
            &written,
            "OperationTerminated",
            "terminated running operation",
        )
        .await;
    Ok(Json(json!({})))
}
