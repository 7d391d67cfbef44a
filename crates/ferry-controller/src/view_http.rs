//! The controller's view endpoints ([`crate::view`]) over HTTP, for the API server only: every
//! request must carry the token derived from the API server's signing key in `argocd-secret`
//! ([`ferry_types::secrets::controller_view_token`]). Without that key nothing is answered.
//!
//! - `GET /v1/applications/{name}/managed-resources`
//! - `GET /v1/applications/{name}/resource-tree`
//! - `GET /v1/applications/{name}/manifests?revision=`
//! - `GET /v1/applications/{name}/revisions/{revision}/{metadata,chartdetails,ocimetadata}`
//!   `?sourceIndex=&versionId=`
//! - `POST /v1/applications/{name}/server-side-diff` (live resources and target manifests)
//! - `POST /v1/applications/{name}/manifests-with-files` (a gzip'd tar of the source's files)
//!
//! Each takes `appNamespace` for an app outside the control namespace.
//!
//! A sharded replica answers only for the apps of its shard's clusters: 421 for the others.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ferry_types::secrets::{SERVER_SECRET_KEY, controller_view_token};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::context::Context;
use crate::view::{self, ViewError};

/// What the API server may send in one request (manifests and live states to diff, uploaded
/// files: ferry-server takes 100 MiB of those at most).
const BODY_LIMIT: usize = 128 * 1024 * 1024;

#[derive(Clone)]
struct ViewState {
    ctx: Arc<Context>,
    secrets: Api<Secret>,
}

/// Serves the views on `address` in the background. A taken port is logged, not fatal.
pub async fn spawn(ctx: Arc<Context>, client: kube::Client, address: SocketAddr) {
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::error!("cannot serve the API server's views on {address}: {err}");
            return;
        }
    };
    tracing::info!(address = %address, "serving the API server's views");
    let state = ViewState {
        secrets: Api::namespaced(client, &ctx.settings.namespace),
        ctx,
    };
    let app = Router::new()
        .route(
            "/v1/applications/{name}/managed-resources",
            get(managed_resources),
        )
        .route("/v1/applications/{name}/resource-tree", get(resource_tree))
        .route("/v1/applications/{name}/manifests", get(manifests))
        .route(
            "/v1/applications/{name}/revisions/{revision}/metadata",
            get(revision_metadata),
        )
        .route(
            "/v1/applications/{name}/revisions/{revision}/chartdetails",
            get(chart_details),
        )
        .route(
            "/v1/applications/{name}/revisions/{revision}/ocimetadata",
            get(oci_metadata),
        )
        .route(
            "/v1/applications/{name}/server-side-diff",
            post(server_side_diff).layer(DefaultBodyLimit::max(BODY_LIMIT)),
        )
        .route(
            "/v1/applications/{name}/manifests-with-files",
            post(manifests_with_files).layer(DefaultBodyLimit::max(BODY_LIMIT)),
        )
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!("serving the API server's views: {err}");
        }
    });
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"message": message.into()}))).into_response()
}

/// Lets through requests bearing the token of the current server key.
async fn authorize(State(state): State<ViewState>, request: Request, next: Next) -> Response {
    let key = match state.secrets.get_opt("argocd-secret").await {
        Ok(secret) => secret
            .and_then(|secret| secret.data)
            .and_then(|mut data| data.remove(SERVER_SECRET_KEY))
            .map(|key| key.0),
        Err(err) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("reading argocd-secret: {err}"),
            );
        }
    };
    let Some(key) = key.filter(|key| !key.is_empty()) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("argocd-secret has no {SERVER_SECRET_KEY} yet"),
        );
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    // In constant time: how much of a guess matched must not show in the time taken.
    let expected = controller_view_token(&key);
    let matches = presented.is_some_and(|presented| {
        presented.len() == expected.len()
            && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
    });
    if !matches {
        return error(StatusCode::UNAUTHORIZED, "invalid token");
    }
    next.run(request).await
}

fn answer(result: Result<Value, ViewError>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(err @ ViewError::NotFound(_)) => error(StatusCode::NOT_FOUND, err.to_string()),
        // The API server then asks the next replica.
        Err(err @ ViewError::OtherShard(_)) => {
            error(StatusCode::MISDIRECTED_REQUEST, err.to_string())
        }
        Err(err @ ViewError::Failed(_)) => error(StatusCode::UNPROCESSABLE_ENTITY, err.to_string()),
        Err(err @ ViewError::PermissionDenied(_)) => error(StatusCode::FORBIDDEN, err.to_string()),
    }
}

/// The key of the app the API server asks about: its name, prefixed by `appNamespace` when
/// that is given and not the control namespace.
fn app_key(ctx: &Context, name: &str, query: &HashMap<String, String>) -> String {
    let namespace = query
        .get("appNamespace")
        .filter(|ns| !ns.is_empty() && **ns != ctx.settings.namespace);
    ferry_types::tracking::instance_name(name, namespace.map(String::as_str))
}

async fn managed_resources(
    State(state): State<ViewState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let key = app_key(&state.ctx, &name, &query);
    answer(view::managed_resources(&state.ctx, &key).await)
}

async fn resource_tree(
    State(state): State<ViewState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let key = app_key(&state.ctx, &name, &query);
    answer(view::resource_tree(&state.ctx, &key).await)
}

async fn manifests(
    State(state): State<ViewState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let revision = query
        .get("revision")
        .map(String::as_str)
        .unwrap_or_default();
    let key = app_key(&state.ctx, &name, &query);
    answer(view::manifests(&state.ctx, &key, revision).await)
}

/// The app key, revision, `sourceIndex` and `versionId` of a request about a revision.
fn revision_of(
    ctx: &Context,
    (name, revision): (String, String),
    query: &HashMap<String, String>,
) -> (String, String, Option<usize>, Option<i64>) {
    let field = |name: &str| query.get(name).map(String::as_str);
    (
        app_key(ctx, &name, query),
        revision,
        field("sourceIndex").and_then(|v| v.parse().ok()),
        field("versionId").and_then(|v| v.parse().ok()),
    )
}

async fn revision_metadata(
    State(state): State<ViewState>,
    Path(path): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (key, revision, index, version) = revision_of(&state.ctx, path, &query);
    answer(view::revision_metadata(&state.ctx, &key, &revision, index, version).await)
}

async fn chart_details(
    State(state): State<ViewState>,
    Path(path): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (key, revision, index, version) = revision_of(&state.ctx, path, &query);
    answer(view::chart_details(&state.ctx, &key, &revision, index, version).await)
}

async fn oci_metadata(
    State(state): State<ViewState>,
    Path(path): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (key, revision, index, version) = revision_of(&state.ctx, path, &query);
    answer(view::oci_metadata(&state.ctx, &key, &revision, index, version).await)
}

async fn server_side_diff(
    State(state): State<ViewState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    Json(body): Json<view::ServerSideDiffQuery>,
) -> Response {
    let key = app_key(&state.ctx, &name, &query);
    answer(view::server_side_diff(&state.ctx, &key, &body).await)
}

async fn manifests_with_files(
    State(state): State<ViewState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    archive: axum::body::Bytes,
) -> Response {
    let key = app_key(&state.ctx, &name, &query);
    answer(view::manifests_with_files(&state.ctx, &key, archive.to_vec()).await)
}
