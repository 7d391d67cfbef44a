//! `/api/v1/clusters`: destination clusters, kept in Argo CD's `cluster` Secrets, and the
//! in-cluster destination Argo CD knows without one. Credentials are write-only: no answer holds
//! a token, password or key.
//!
//! A cluster is named in paths by its server URL (percent-encoded), or by its name with
//! `?id.type=name`; it is RBAC-checked as `clusters` on `<project>/<server>`, or
//! `<project>/<name>` (as Argo CD 3 does, so policies may name either).

use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use ferry_types::secrets::{ClusterSecret, IN_CLUSTER_SERVER, SECRET_TYPE_CLUSTER};
use k8s_openapi::api::core::v1::Secret;
use kube::config::KubeConfigOptions;
use serde_json::{Value, json};

use super::argo_secrets::{self, entries, rbac_object};
use super::authn::Caller;
use super::authz::{authorize, visible};
use super::cluster_actions;
use super::error::ApiError;
use super::query::Query;
use super::state::{AppState, Snapshot};
use crate::rbac::resources::{CLUSTERS, CREATE, DELETE, GET, UPDATE};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/clusters", get(list).post(create))
        .route(
            "/api/v1/clusters/{id}",
            get(get_one).put(update).delete(delete),
        )
        .route(
            "/api/v1/clusters/{id}/rotate-auth",
            post(cluster_actions::rotate_auth),
        )
        .route(
            "/api/v1/clusters/{id}/invalidate-cache",
            post(cluster_actions::invalidate_cache),
        )
}

/// A cluster and its Secret; the implicit in-cluster destination has none.
pub(super) type Entry = (Option<Secret>, ClusterSecret);

/// Every cluster, in-cluster first unless a Secret configures it, then by server.
pub(super) async fn all(state: &AppState) -> Result<Vec<Entry>, ApiError> {
    let mut clusters: Vec<Entry> =
        entries(state, &[SECRET_TYPE_CLUSTER], ClusterSecret::from_secret)
            .await?
            .into_iter()
            .map(|(secret, cluster)| (Some(secret), cluster))
            .collect();
    clusters.sort_by(|(_, a), (_, b)| a.server.cmp(&b.server));
    if !clusters.iter().any(|(_, c)| c.server == IN_CLUSTER_SERVER) {
        clusters.insert(0, (None, ClusterSecret::in_cluster()));
    }
    Ok(clusters)
}

/// How a request names a cluster.
#[derive(Debug, PartialEq)]
pub(super) enum ClusterId {
    Server(String),
    Name(String),
}

impl ClusterId {
    /// From the path and Argo CD's `id.type` (`server` by default; `name_escaped` is `name`, as
    /// paths here are decoded already).
    pub(super) fn parse(value: String, query: &Query) -> Result<Self, ApiError> {
        match query.value("id.type").unwrap_or_default() {
            "" | "server" => Ok(Self::Server(value.trim_end_matches('/').to_string())),
            "name" | "name_escaped" => Ok(Self::Name(value)),
            other => Err(ApiError::invalid_argument(format!(
                "id.type is {other:?}, not server or name"
            ))),
        }
    }

    fn value(&self) -> &str {
        match self {
            Self::Server(value) | Self::Name(value) => value,
        }
    }

    fn matches(&self, cluster: &ClusterSecret) -> bool {
        match self {
            Self::Server(server) => &cluster.server == server,
            Self::Name(name) => &cluster.name == name,
        }
    }
}

fn what(cluster: &ClusterSecret) -> String {
    format!("cluster {}", cluster.server)
}

/// Writes `next` as its cluster Secret, over `existing` (its Secret and what it held), with
/// the audit event of a create or an update.
pub(super) async fn save(
    state: &AppState,
    caller: &Caller,
    existing: Option<(&Secret, ClusterSecret)>,
    next: &ClusterSecret,
    upsert: bool,
) -> Result<(), ApiError> {
    let secret = next.to_secret(state.namespace());
    argo_secrets::save(state, caller, secret, existing, next, upsert, &what(next)).await
}

/// The RBAC objects of a cluster: by server, and by name when it has one of its own.
fn objects(cluster: &ClusterSecret) -> Vec<String> {
    let mut objects = vec![rbac_object(&cluster.project, &cluster.server)];
    if !cluster.name.is_empty() && cluster.name != cluster.server {
        objects.push(rbac_object(&cluster.project, &cluster.name));
    }
    objects
}

fn may(
    settings: &Snapshot,
    caller: &Caller,
    action: &str,
    cluster: &ClusterSecret,
) -> Result<bool, ApiError> {
    for object in objects(cluster) {
        if visible(settings, caller, CLUSTERS, action, &object)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Refuses unless the caller may do `action` to the cluster by server or by name; the refusal
/// is logged for the last object tried.
fn authorize_cluster(
    settings: &Snapshot,
    caller: &Caller,
    action: &str,
    cluster: &ClusterSecret,
) -> Result<(), ApiError> {
    let mut objects = objects(cluster);
    let last = objects.pop().expect("a cluster has a server object");
    for object in objects {
        if visible(settings, caller, CLUSTERS, action, &object)? {
            return Ok(());
        }
    }
    authorize(settings, caller, CLUSTERS, action, &last)
}

/// The clusters `id` names that the caller may do `action` to. None is a 404 to callers who may
/// do `action` to such a cluster and a 403 to others, as Argo CD checks RBAC first.
pub(super) fn authorized<'e>(
    settings: &Snapshot,
    caller: &Caller,
    clusters: &'e [Entry],
    id: &ClusterId,
    action: &str,
) -> Result<Vec<&'e Entry>, ApiError> {
    let found: Vec<&Entry> = clusters.iter().filter(|(_, c)| id.matches(c)).collect();
    if found.is_empty() {
        authorize(settings, caller, CLUSTERS, action, id.value())?;
        return Err(ApiError::not_found(format!(
            "cluster {} not found",
            id.value()
        )));
    }
    for (_, cluster) in &found {
        authorize_cluster(settings, caller, action, cluster)?;
    }
    Ok(found)
}

/// How long a cluster's API server has to answer `/version` before it counts as Failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A cluster as the API shows it, with `connection` as its `connectionState` (and in `info`,
/// Argo CD's ClusterInfo, with the server version when known).
pub(super) fn view(cluster: &ClusterSecret, connection: Connection) -> Value {
    let mut view = cluster.api_view();
    view["connectionState"] = connection.state.clone();
    view["info"] = json!({ "connectionState": connection.state });
    if let Some(version) = connection.server_version {
        view["info"]["serverVersion"] = version.into();
    }
    view
}

pub(super) struct Connection {
    state: Value,
    server_version: Option<String>,
}

impl Connection {
    /// Not probed: the answer to a write, as the cluster was just saved.
    pub(super) fn unknown() -> Self {
        Self {
            state: json!({"status": "Unknown", "message": ""}),
            server_version: None,
        }
    }
}

/// Argo CD's connection state of a cluster, which upstream's controller keeps from its watches:
/// ferry's server asks the cluster's API server for its version now, with the saved
/// credentials (the in-cluster destination with the server's own), for `PROBE_TIMEOUT` at most.
async fn probe(state: &AppState, cluster: &ClusterSecret) -> Connection {
    let attempted_at = jiff::Timestamp::now().to_string();
    let answer = async {
        let client = client_for(state, cluster).await?;
        let version = tokio::time::timeout(PROBE_TIMEOUT, client.apiserver_version())
            .await
            .map_err(|_| format!("no answer in {} s", PROBE_TIMEOUT.as_secs()))?
            .map_err(|err| err.to_string())?;
        Ok::<_, String>(format!("{}.{}", version.major, version.minor))
    };
    let (status, message, server_version) = match answer.await {
        Ok(version) => ("Successful", String::new(), Some(version)),
        Err(message) => ("Failed", message, None),
    };
    Connection {
        state: json!({"status": status, "message": message, "attemptedAt": attempted_at}),
        server_version,
    }
}

/// A client of `cluster` with its saved credentials (the in-cluster destination: the server's
/// own).
pub(super) async fn client_for(
    state: &AppState,
    cluster: &ClusterSecret,
) -> Result<kube::Client, String> {
    if cluster.server == IN_CLUSTER_SERVER {
        return Ok(state.client());
    }
    let kubeconfig = cluster.to_kubeconfig()?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|err| err.to_string())?;
    kube::Client::try_from(config).map_err(|err| err.to_string())
}

/// `GET /api/v1/clusters?server=&name=`: what the caller may see.
async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = Query::parse(query.as_deref());
    let filters = [
        query
            .value("server")
            .map(|s| ClusterId::Server(s.trim_end_matches('/').into())),
        query.value("name").map(|name| ClusterId::Name(name.into())),
    ];
    let settings = state.settings();
    let mut items = Vec::new();
    for (_, cluster) in all(&state).await? {
        let wanted = filters
            .iter()
            .flatten()
            .filter(|id| !id.value().is_empty())
            .all(|id| id.matches(&cluster));
        if wanted && may(&settings, &caller, GET, &cluster)? {
            items.push(cluster);
        }
    }
    let connections = futures::future::join_all(items.iter().map(|c| probe(&state, c))).await;
    let items: Vec<Value> = items
        .iter()
        .zip(connections)
        .map(|(cluster, connection)| view(cluster, connection))
        .collect();
    Ok(Json(json!({ "metadata": {}, "items": items })))
}

/// `POST /api/v1/clusters?upsert=`: registers a cluster, or replaces one with other settings
/// given `upsert`. Its connection is not tested first (Argo CD's is).
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let upsert = Query::parse(query.as_deref()).flag("upsert")?;
    let cluster = ClusterSecret::from_api(&body).map_err(ApiError::invalid_argument)?;
    let settings = state.settings();
    authorize(
        &settings,
        &caller,
        CLUSTERS,
        CREATE,
        &rbac_object(&cluster.project, &cluster.server),
    )?;
    let clusters = all(&state).await?;
    let existing = clusters.iter().find_map(|(secret, current)| {
        Some((secret.as_ref()?, current)).filter(|_| current.server == cluster.server)
    });
    if let Some((_, current)) = existing.filter(|(_, current)| upsert && *current != &cluster) {
        authorize_cluster(&settings, &caller, UPDATE, current)?;
    }
    let existing = existing.map(|(secret, current)| (secret, current.clone()));
    save(&state, &caller, existing, &cluster, upsert).await?;
    Ok(Json(view(&cluster, Connection::unknown())))
}

/// `GET /api/v1/clusters/{server}` (`{name}?id.type=name`).
async fn get_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let id = ClusterId::parse(id, &Query::parse(query.as_deref()))?;
    let clusters = all(&state).await?;
    let found = authorized(&state.settings(), &caller, &clusters, &id, GET)?;
    let cluster = &found[0].1;
    Ok(Json(view(cluster, probe(&state, cluster).await)))
}

/// The fields `updatedFields` may name, as Argo CD's.
const UPDATABLE: [&str; 7] = [
    "name",
    "namespaces",
    "config",
    "clusterResources",
    "labels",
    "annotations",
    "project",
];

/// `PUT /api/v1/clusters/{server}?updatedFields=`: replaces the cluster's settings, or only the
/// fields named (so a client can change, say, the namespaces without sending the credentials,
/// which it never gets to see).
async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    Json(mut body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let query = Query::parse(query.as_deref());
    let id = ClusterId::parse(id, &query)?;
    let clusters = all(&state).await?;
    let settings = state.settings();
    let found = authorized(&settings, &caller, &clusters, &id, UPDATE)?;
    let (secret, current) = found[0];
    let fields = body
        .as_object_mut()
        .ok_or_else(|| ApiError::invalid_argument("expected a JSON object"))?;
    match fields.get("server").and_then(Value::as_str) {
        None => {
            fields.insert("server".into(), current.server.clone().into());
        }
        Some(server) if server.trim().trim_end_matches('/') == current.server => {}
        Some(_) => {
            return Err(ApiError::invalid_argument(
                "a cluster's server cannot change; register the new one instead",
            ));
        }
    }
    let given = ClusterSecret::from_api(&body).map_err(ApiError::invalid_argument)?;
    let updated_fields = query.values("updatedFields");
    let next = if updated_fields.is_empty() {
        given
    } else {
        let mut next = current.clone();
        for field in updated_fields {
            match field {
                "name" => next.name = given.name.clone(),
                "namespaces" => next.namespaces = given.namespaces.clone(),
                "config" => next.config = given.config.clone(),
                "clusterResources" => next.cluster_resources = given.cluster_resources,
                "labels" => next.labels = given.labels.clone(),
                "annotations" => next.annotations = given.annotations.clone(),
                "project" => next.project = given.project.clone(),
                other => {
                    return Err(ApiError::invalid_argument(format!(
                        "updatedFields: {other:?} is none of {}",
                        UPDATABLE.join(", ")
                    )));
                }
            }
        }
        next
    };
    if next.project != current.project {
        authorize_cluster(&settings, &caller, UPDATE, &next)?;
    }
    let existing = secret.as_ref().map(|secret| (secret, current.clone()));
    save(&state, &caller, existing, &next, true).await?;
    Ok(Json(view(&next, Connection::unknown())))
}

/// `DELETE /api/v1/clusters/{server}` (`{name}?id.type=name`: every cluster of that name).
async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let id = ClusterId::parse(id, &Query::parse(query.as_deref()))?;
    let clusters = all(&state).await?;
    let found = authorized(&state.settings(), &caller, &clusters, &id, DELETE)?;
    if found.iter().any(|(secret, _)| secret.is_none()) {
        return Err(ApiError::failed_precondition(
            "the in-cluster destination is implicit: there is no Secret to delete",
        ));
    }
    for (secret, cluster) in found {
        if let Some(secret) = secret {
            argo_secrets::delete(&state, &caller, secret, &what(cluster)).await?;
        }
    }
    Ok(Json(json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusters_are_named_by_server_or_by_name() {
        let by_default = ClusterId::parse("https://prod:6443/".into(), &Query::parse(None));
        assert_eq!(
            by_default.unwrap(),
            ClusterId::Server("https://prod:6443".into())
        );
        let by_name = ClusterId::parse("prod".into(), &Query::parse(Some("id.type=name")));
        assert_eq!(by_name.unwrap(), ClusterId::Name("prod".into()));
        assert!(ClusterId::parse("x".into(), &Query::parse(Some("id.type=uid"))).is_err());
    }

    #[test]
    fn rbac_objects_are_by_server_and_own_name_within_the_project() {
        let prod = ClusterSecret {
            name: "prod".into(),
            server: "https://prod:6443".into(),
            project: "team-a".into(),
            ..Default::default()
        };
        assert_eq!(objects(&prod), ["team-a/https://prod:6443", "team-a/prod"]);
        let unnamed = ClusterSecret {
            name: "https://x".into(),
            server: "https://x".into(),
            ..Default::default()
        };
        assert_eq!(objects(&unnamed), ["https://x"]);
        assert_eq!(
            objects(&ClusterSecret::in_cluster()),
            ["https://kubernetes.default.svc", "in-cluster"]
        );
    }

    #[test]
    fn views_report_the_connection_given_and_no_credentials() {
        let cluster = ClusterSecret::from_api(&json!({
            "server": "https://prod:6443",
            "config": {"bearerToken": "tok-123", "tlsClientConfig": {"keyData": "S0VZ"}},
        }))
        .unwrap();
        let shown = view(&cluster, Connection::unknown());
        assert_eq!(shown["info"]["connectionState"]["status"], "Unknown");
        let text = shown.to_string();
        assert!(
            !text.contains("tok-123") && !text.contains("S0VZ"),
            "{text}"
        );
    }
}
