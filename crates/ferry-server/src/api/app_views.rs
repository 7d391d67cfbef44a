//! What the controller knows of an Application, passed on to callers who may `get` it: its
//! managed resources with their states (`app diff`), its resource tree and its rendered
//! manifests. As Argo CD's API server reads these from the controller's cache, ferry's asks the
//! controller ([`ControllerClient`]), with a token derived from the server key.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::{Extension, Json};
use serde_json::Value;

use super::app_namespace::locate;
use super::applications::authorized_app;
use super::authn::Caller;
use super::error::{ApiError, Code};
use super::state::AppState;
use crate::rbac::resources::GET;

/// Where the controller replicas serve their views: one URL, or one per shard of a sharded
/// controller, each of which answers only for its own apps (421 for the others).
#[derive(Clone)]
pub struct ControllerClient {
    bases: Vec<url::Url>,
    http: reqwest::Client,
}

impl ControllerClient {
    pub fn new(bases: Vec<url::Url>) -> Self {
        Self {
            bases,
            http: reqwest::Client::new(),
        }
    }

    /// Asks each replica in turn until one owns the app; with `body` (its bytes and content
    /// type) a POST, else a GET.
    async fn send(
        &self,
        state: &AppState,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&(Bytes, &'static str)>,
    ) -> Result<Value, ApiError> {
        // Derived from argocd-secret, which the settings watch already follows.
        let token = state
            .settings()
            .controller_token()
            .map(str::to_string)
            .ok_or_else(|| ApiError::unavailable("argocd-secret has no server key"))?;
        let mut unreachable = None;
        for base in &self.bases {
            match self.ask(base, &token, path, query, body).await {
                Answer::Other => {}
                Answer::Unreachable(err) => unreachable = Some(err),
                Answer::Done(result) => return result,
            }
        }
        Err(unreachable.unwrap_or_else(|| {
            ApiError::unavailable(format!(
                "none of the {} application controller replicas owns the application's cluster",
                self.bases.len()
            ))
        }))
    }

    async fn ask(
        &self,
        base: &url::Url,
        token: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&(Bytes, &'static str)>,
    ) -> Answer {
        let url = match base.join(path) {
            Ok(url) => url,
            Err(err) => {
                return Answer::Done(Err(ApiError::internal("addressing the controller", &err)));
            }
        };
        let unavailable = |err: reqwest::Error| {
            ApiError::unavailable(format!(
                "the application controller at {base} cannot be reached: {err}"
            ))
        };
        let request = match body {
            Some((bytes, content_type)) => self
                .http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, *content_type)
                .body(bytes.clone()),
            None => self.http.get(url),
        };
        let response = match request.query(query).bearer_auth(token).send().await {
            Ok(response) => response,
            Err(err) => return Answer::Unreachable(unavailable(err)),
        };
        let status = response.status();
        if status == reqwest::StatusCode::MISDIRECTED_REQUEST {
            return Answer::Other;
        }
        let body: Value = match response.json().await {
            Ok(body) => body,
            Err(err) => return Answer::Unreachable(unavailable(err)),
        };
        if status.is_success() {
            return Answer::Done(Ok(body));
        }
        let message = body["message"].as_str().unwrap_or("no message").to_string();
        Answer::Done(Err(match status.as_u16() {
            403 => ApiError::new(Code::PermissionDenied, message),
            404 => ApiError::not_found(message),
            422 => ApiError::new(Code::FailedPrecondition, message),
            _ => ApiError::unavailable(format!(
                "the application controller answered {status}: {message}"
            )),
        }))
    }
}

/// What one replica said.
enum Answer {
    /// The app belongs to another replica's shard.
    Other,
    Unreachable(ApiError),
    Done(Result<Value, ApiError>),
}

async fn view(
    state: &AppState,
    caller: &Caller,
    name: &str,
    what: &str,
    query: &[(&str, &str)],
) -> Result<Json<Value>, ApiError> {
    authorized_app(state, caller, name, GET).await?;
    ask(state, name, what, query).await
}

/// The resource tree of app `name`, for a caller already authorized to read it.
pub async fn tree(state: &AppState, name: &str) -> Result<Json<Value>, ApiError> {
    ask(state, name, "resource-tree", &[]).await
}

async fn ask(
    state: &AppState,
    name: &str,
    what: &str,
    query: &[(&str, &str)],
) -> Result<Json<Value>, ApiError> {
    send(state, name, what, query, None).await
}

/// Sends the controller a request about app `name` (a POST with `body`), for a caller already
/// authorized.
pub async fn send(
    state: &AppState,
    name: &str,
    what: &str,
    query: &[(&str, &str)],
    body: Option<(Bytes, &'static str)>,
) -> Result<Json<Value>, ApiError> {
    let controller = state
        .controller()
        .ok_or_else(|| ApiError::unavailable("no application controller is configured"))?;
    let (namespace, name) = locate(state, name)?;
    let path = format!("v1/applications/{}/{what}", urlencode(name));
    let mut query = query.to_vec();
    if namespace != state.namespace() {
        query.push(("appNamespace", namespace));
    }
    controller
        .send(state, &path, &query, body.as_ref())
        .await
        .map(Json)
}

fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

/// `GET /api/v1/applications/{name}/managed-resources`.
pub async fn managed_resources(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    view(&state, &caller, &name, "managed-resources", &[]).await
}

/// `GET /api/v1/applications/{name}/resource-tree`.
pub async fn resource_tree(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    view(&state, &caller, &name, "resource-tree", &[]).await
}

/// `GET /api/v1/applications/{name}/manifests?revision=`.
pub async fn manifests(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let revision = query
        .get("revision")
        .map(String::as_str)
        .unwrap_or_default();
    view(
        &state,
        &caller,
        &name,
        "manifests",
        &[("revision", revision)],
    )
    .await
}

/// `GET /api/v1/applications/{name}/revisions/{revision}/metadata?sourceIndex=&versionId=`:
/// Argo CD's `RevisionMetadata` of a commit of one of the app's sources, which the controller
/// reads from the repository with its credentials.
pub async fn revision_metadata(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, revision)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    revision_view(&state, &caller, &name, &revision, &query, "metadata").await
}

/// `GET /api/v1/applications/{name}/revisions/{revision}/chartdetails?sourceIndex=&versionId=`:
/// Argo CD's `ChartDetails` (description, home, maintainers) of a version of the chart of one
/// of the app's sources, which the controller reads from its chart repository or registry.
pub async fn chart_details(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, revision)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    revision_view(&state, &caller, &name, &revision, &query, "chartdetails").await
}

/// `GET /api/v1/applications/{name}/revisions/{revision}/ocimetadata?sourceIndex=&versionId=`:
/// Argo CD's `OCIMetadata` (the manifest's `org.opencontainers.image.*` annotations) of a tag
/// or digest of one of the app's OCI sources, which the controller reads from the registry.
pub async fn oci_metadata(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, revision)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    revision_view(&state, &caller, &name, &revision, &query, "ocimetadata").await
}

/// The controller's view `what` of a revision of one of the app's sources.
async fn revision_view(
    state: &AppState,
    caller: &Caller,
    name: &str,
    revision: &str,
    query: &HashMap<String, String>,
    what: &str,
) -> Result<Json<Value>, ApiError> {
    let what = format!("revisions/{}/{what}", urlencode(revision));
    let pick: Vec<(&str, &str)> = ["sourceIndex", "versionId"]
        .into_iter()
        .filter_map(|field| Some((field, query.get(field)?.as_str())))
        .collect();
    view(state, caller, name, &what, &pick).await
}

/// What a server-side diff request may carry.
pub const SERVER_SIDE_DIFF_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// `GET /api/v1/applications/{name}/server-side-diff?targetManifests=` (Argo CD's
/// `ServerSideDiff`): the caller's live states and target manifests, index by index, compared
/// by the controller through a server-side apply dry run on the app's cluster, for callers who
/// may `get` the app. A query cannot carry the `liveResources`, so they come as a JSON body
/// (`{"liveResources": [...], "targetManifests": [...]}`), as the gRPC gateway sends them.
pub async fn server_side_diff(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    authorized_app(&state, &caller, &name, GET).await?;
    #[derive(serde::Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    struct Lists {
        live_resources: Vec<Value>,
        target_manifests: Vec<String>,
    }
    let mut lists: Lists = if body.trim_ascii().is_empty() {
        Lists::default()
    } else {
        serde_json::from_slice(&body).map_err(|err| {
            ApiError::invalid_argument(format!("the server-side diff request: {err}"))
        })?
    };
    lists.target_manifests.extend(
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .filter(|(key, _)| key == "targetManifests")
            .map(|(_, value)| value.into_owned()),
    );
    let body = serde_json::to_vec(&serde_json::json!({
        "liveResources": lists.live_resources,
        "targetManifests": lists.target_manifests,
    }))
    .map_err(|err| ApiError::internal("writing the server-side diff request", &err))?;
    send(
        &state,
        &name,
        "server-side-diff",
        &[],
        Some((Bytes::from(body), "application/json")),
    )
    .await
}
