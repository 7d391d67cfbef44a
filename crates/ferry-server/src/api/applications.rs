//! `/api/v1/applications`: the Applications of the control namespace and of
//! `--application-namespaces`, as far as RBAC lets the caller see them, read, refreshed and
//! changed. `{name}` is `<namespace>/<name>` for an app elsewhere ([`super::app_namespace`]).

use std::time::Duration;

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ferry_types::Application;
use ferry_types::application::REFRESH_ANNOTATION;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde::Deserialize;
use serde_json::json;

use super::app_filter::AppFilter;
use super::app_namespace::{locate, rbac_name};
use super::authn::Caller;
use super::authz::{authorize, visible};
use super::error::{ApiError, Code};
use super::state::AppState;
use crate::rbac::resources::{APPLICATIONS, GET};

/// Rounds of read-change-write before giving up on an Application that keeps changing.
const ATTEMPTS: usize = 5;

/// How long `?refresh=` waits for the controller to compare the app again.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a list waits for the first list of Applications before answering 503.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);

/// The RBAC object of an Application: `<project>/<name>` in the control namespace `control`,
/// `<project>/<namespace>/<name>` elsewhere.
pub fn rbac_object(app: &Application, control: &str) -> String {
    rbac_name(
        control,
        &app.spec.project,
        app.metadata.namespace.as_deref().unwrap_or_default(),
        app.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// `GET /api/v1/applications?name=…&projects=…&selector=…&repo=…&sync=…&health=…`, served
/// from the watched Applications.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let filter = AppFilter::parse(query.as_deref(), state.namespace())?;
    if !state.apps().wait_ready(LIST_TIMEOUT).await {
        return Err(ApiError::unavailable("the Applications are not listed yet"));
    }
    let settings = state.settings();
    // Written from the JSON kept per app: a list of many apps costs a copy, not serializing.
    let mut body = String::from(r#"{"metadata":{},"items":["#);
    let mut first = true;
    for watched in state.apps().snapshot().await {
        if filter.admits(&watched.app)
            && visible(
                &settings,
                &caller,
                APPLICATIONS,
                GET,
                &rbac_object(&watched.app, state.namespace()),
            )?
        {
            if !first {
                body.push(',');
            }
            first = false;
            body.push_str(&watched.json);
        }
    }
    body.push_str("]}");
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The Application `name` if the caller may do `action` to it. A missing one is a 403 too, as
/// in Argo CD, so callers learn nothing of the apps they may not see.
pub async fn authorized_app(
    state: &AppState,
    caller: &Caller,
    name: &str,
    action: &str,
) -> Result<Application, ApiError> {
    let (namespace, app_name) = locate(state, name)?;
    let apps: Api<Application> = Api::namespaced(state.client(), namespace);
    let app = apps
        .get_opt(app_name)
        .await
        .map_err(|err| ApiError::kube("reading the Application", &err))?;
    let Some(app) = app else {
        tracing::info!(subject = %caller.name(), application = name, action, "no such application: permission denied");
        return Err(ApiError::permission_denied());
    };
    authorize(
        &state.settings(),
        caller,
        APPLICATIONS,
        action,
        &rbac_object(&app, state.namespace()),
    )?;
    Ok(app)
}

/// `GET /api/v1/applications/{name}?refresh=normal|hard`: with `refresh`, asks the controller
/// to compare the app again (`hard`: re-render too) and answers once it has.
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(query): Query<GetQuery>,
) -> Result<Json<Application>, ApiError> {
    let app = authorized_app(&state, &caller, &name, GET).await?;
    match query.refresh.as_deref() {
        None | Some("") => Ok(Json(app)),
        Some(kind @ ("normal" | "hard")) => refresh(&state, &name, kind).await.map(Json),
        Some(other) => Err(ApiError::invalid_argument(format!(
            "unknown refresh type {other:?}: use normal or hard"
        ))),
    }
}

#[derive(Deserialize)]
pub struct GetQuery {
    refresh: Option<String>,
}

/// Sets the refresh annotation and waits (up to [`REFRESH_TIMEOUT`]) for the controller to
/// remove it, as Argo CD's API server does; then the app as it is.
async fn refresh(state: &AppState, name: &str, kind: &str) -> Result<Application, ApiError> {
    let (_, mut changes) = state.apps().subscribe().await;
    let (namespace, name) = locate(state, name)?;
    let apps: Api<Application> = Api::namespaced(state.client(), namespace);
    let patch = json!({"metadata": {"annotations": {REFRESH_ANNOTATION: kind}}});
    let mut app = apps
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|err| ApiError::kube("requesting a refresh", &err))?;
    let refreshed = |app: &Application| {
        app.metadata
            .annotations
            .as_ref()
            .is_none_or(|annotations| !annotations.contains_key(REFRESH_ANNOTATION))
    };
    let deadline = tokio::time::Instant::now() + REFRESH_TIMEOUT;
    while !refreshed(&app) {
        match tokio::time::timeout_at(deadline, changes.recv()).await {
            Ok(Ok(change))
                if change.app.metadata.name.as_deref() == Some(name)
                    && change.app.metadata.namespace.as_deref() == Some(namespace) =>
            {
                app = (*change.app).clone();
            }
            Ok(Ok(_)) => {}
            // Fell behind the changes: read the app itself.
            Ok(Err(_)) => {
                app = apps
                    .get(name)
                    .await
                    .map_err(|err| ApiError::kube("reading the Application", &err))?;
                changes = state.apps().subscribe().await.1;
            }
            Err(_) => break,
        }
    }
    Ok(app)
}

/// Reads the Application `name` (checking that the caller may do `action` to it), changes it
/// with `change`, and writes the difference as a merge patch guarded by the resourceVersion it
/// read, again from the top when someone else wrote in between.
pub async fn modify_app(
    state: &AppState,
    caller: &Caller,
    name: &str,
    action: &str,
    mut change: impl FnMut(&mut Application) -> Result<(), ApiError>,
) -> Result<Application, ApiError> {
    let (namespace, app_name) = locate(state, name)?;
    let apps: Api<Application> = Api::namespaced(state.client(), namespace);
    for _ in 0..ATTEMPTS {
        // Read again after a conflict: the project may have changed, so RBAC is checked again.
        let app = authorized_app(state, caller, name, action).await?;
        let mut next = app.clone();
        change(&mut next)?;
        let to_json = |app: &Application| {
            serde_json::to_value(app)
                .map_err(|err| ApiError::internal("writing the Application", &err))
        };
        let Some(mut patch) = ferry_types::merge_patch(&to_json(&app)?, &to_json(&next)?) else {
            return Ok(app);
        };
        patch["metadata"]["resourceVersion"] = app.metadata.resource_version.clone().into();
        match apps
            .patch(app_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(written) => return Ok(written),
            Err(kube::Error::Api(status)) if status.is_conflict() => continue,
            Err(err) => return Err(ApiError::kube("writing the Application", &err)),
        }
    }
    Err(ApiError::new(
        Code::Aborted,
        format!("application {name} kept changing; try again"),
    ))
}
