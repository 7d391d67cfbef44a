//! An Application's live resources on their cluster: read (Secret values masked), patched and
//! deleted one at a time, their events and their pods' logs. Only the app's own resources are
//! reachable, the ones it manages (`status.resources`) and what they own (a Deployment's
//! ReplicaSets and Pods, …): the endpoints cannot be used to reach anything else on the cluster.

use std::convert::Infallible;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::{Extension, Json};
use ferry_types::{Application, split_api_version};
use futures::{AsyncBufReadExt, Stream, StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{Event as KubeEvent, Pod};
use kube::api::{
    Api, DeleteParams, DynamicObject, GroupVersionKind, ListParams, LogParams, Patch, PatchParams,
    PropagationPolicy,
};
use kube::discovery::{Scope, pinned_kind};
use serde::Deserialize;
use serde_json::{Value, json};

use super::applications::{authorized_app, rbac_object};
use super::authn::Caller;
use super::authz::authorize;
use super::destinations::{LiveObject, client_for};
use super::error::ApiError;
use super::state::AppState;
use crate::rbac::resources::{DELETE, GET, LOGS, UPDATE};

/// How many owner references are followed up from an object to one of the app's resources.
const MAX_OWNER_DEPTH: usize = 5;

/// Argo CD's `ApplicationResourceRequest` query.
#[derive(Deserialize, Default, Clone)]
#[serde(default, rename_all = "camelCase")]
pub struct ResourceQuery {
    pub namespace: String,
    pub resource_name: String,
    pub version: String,
    pub group: String,
    pub kind: String,
    patch_type: String,
    force: Option<bool>,
    orphan: Option<bool>,
}

/// A resource of `app` on its cluster, with a dynamic API for its kind.
pub struct Target {
    pub api: Api<DynamicObject>,
    pub name: String,
}

/// Whether `status.resources` lists (group, kind, namespace, name).
fn manages(app: &Application, group: &str, kind: &str, namespace: &str, name: &str) -> bool {
    app.status.as_ref().is_some_and(|status| {
        status.resources.iter().any(|resource| {
            resource.group == group
                && resource.kind == kind
                && resource.name == name
                && (resource.namespace.is_empty() || resource.namespace == namespace)
        })
    })
}

/// Follows `object`'s controller owners up to one of `app`'s managed resources.
async fn belongs_to(client: &kube::Client, app: &Application, object: &DynamicObject) -> bool {
    let namespace = object.metadata.namespace.clone().unwrap_or_default();
    let mut owners = object.metadata.owner_references.clone().unwrap_or_default();
    for _ in 0..MAX_OWNER_DEPTH {
        let Some(owner) = owners.into_iter().next() else {
            return false;
        };
        let (group, version) = split_api_version(&owner.api_version);
        if manages(app, group, &owner.kind, &namespace, &owner.name) {
            return true;
        }
        let gvk = GroupVersionKind::gvk(group, version, &owner.kind);
        let Ok((resource, capabilities)) = pinned_kind(client, &gvk).await else {
            return false;
        };
        let api: Api<DynamicObject> = match capabilities.scope {
            Scope::Namespaced => Api::namespaced_with(client.clone(), &namespace, &resource),
            Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        let Ok(Some(parent)) = api.get_opt(&owner.name).await else {
            return false;
        };
        owners = parent.metadata.owner_references.unwrap_or_default();
    }
    false
}

/// The resource `query` names, if it is one of `app`'s.
pub async fn target(
    state: &AppState,
    app: &Application,
    query: &ResourceQuery,
) -> Result<(kube::Client, Target), ApiError> {
    let not_found = || {
        ApiError::not_found(format!(
            "{} {}/{} is not a resource of application {}",
            query.kind,
            query.namespace,
            query.resource_name,
            app.metadata.name.as_deref().unwrap_or_default()
        ))
    };
    if query.kind.is_empty() || query.resource_name.is_empty() || query.version.is_empty() {
        return Err(ApiError::invalid_argument(
            "kind, version and resourceName are required",
        ));
    }
    let managed = manages(
        app,
        &query.group,
        &query.kind,
        &query.namespace,
        &query.resource_name,
    );
    // What the app manages must be of a kind its project permits; what those own (ReplicaSets,
    // Pods, ...) was made by controllers, so only its namespace is checked.
    let object = LiveObject {
        group: &query.group,
        kind: if managed { &query.kind } else { "" },
        namespace: &query.namespace,
        name: &query.resource_name,
    };
    let client = client_for(state, app, &object).await?;
    let gvk = GroupVersionKind::gvk(&query.group, &query.version, &query.kind);
    let (resource, capabilities) = pinned_kind(&client, &gvk).await.map_err(|_| not_found())?;
    let api: Api<DynamicObject> = match capabilities.scope {
        Scope::Namespaced => Api::namespaced_with(client.clone(), &query.namespace, &resource),
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    if !managed {
        let object = api
            .get_opt(&query.resource_name)
            .await
            .map_err(|err| ApiError::kube("reading the resource", &err))?
            .ok_or_else(not_found)?;
        if !belongs_to(&client, app, &object).await {
            return Err(not_found());
        }
    }
    Ok((
        client,
        Target {
            api,
            name: query.resource_name.clone(),
        },
    ))
}

/// Argo CD's answer for a resource: `{"manifest": "<JSON>"}`, Secret values masked.
fn manifest(object: DynamicObject) -> Result<Json<Value>, ApiError> {
    let mut value =
        serde_json::to_value(object).map_err(|err| ApiError::internal("reading", &err))?;
    if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
    }
    ferry_diff::mask_secrets(None, Some(&mut value));
    Ok(Json(json!({"manifest": value.to_string()})))
}

/// `GET /api/v1/applications/{name}/resource?namespace=&resourceName=&version=&group=&kind=`.
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(query): Query<ResourceQuery>,
) -> Result<Json<Value>, ApiError> {
    let app = authorized_app(&state, &caller, &name, GET).await?;
    let (_, target) = target(&state, &app, &query).await?;
    let object = target
        .api
        .get(&target.name)
        .await
        .map_err(|err| ApiError::kube("reading the resource", &err))?;
    manifest(object)
}

/// `POST /api/v1/applications/{name}/resource?…&patchType=json|merge`, the body the patch as
/// a JSON string (Argo CD's `patch` field): needs `update` on the app.
pub async fn patch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(query): Query<ResourceQuery>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let app = authorized_app(&state, &caller, &name, UPDATE).await?;
    // The body is the patch as a JSON string, or `{"patch": "...", "patchType": "..."}`.
    let (text, patch_type) = match &body {
        Value::String(text) => (text.clone(), query.patch_type.clone()),
        Value::Object(fields) => (
            fields
                .get("patch")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            fields
                .get("patchType")
                .and_then(Value::as_str)
                .map_or_else(|| query.patch_type.clone(), str::to_string),
        ),
        _ => return Err(ApiError::invalid_argument("the body must be the patch")),
    };
    let patch: Value = serde_json::from_str(&text)
        .map_err(|err| ApiError::invalid_argument(format!("invalid patch: {err}")))?;
    let patch = match patch_type.as_str() {
        "merge" | "application/merge-patch+json" => Patch::Merge(patch),
        "json" | "application/json-patch+json" | "" => Patch::Json(
            serde_json::from_value(patch)
                .map_err(|err| ApiError::invalid_argument(format!("invalid JSON patch: {err}")))?,
        ),
        other => {
            return Err(ApiError::invalid_argument(format!(
                "unknown patch type {other:?}: use json or merge"
            )));
        }
    };
    let (_, target) = target(&state, &app, &query).await?;
    let patched = target
        .api
        .patch(&target.name, &PatchParams::default(), &patch)
        .await
        .map_err(|err| ApiError::kube("patching the resource", &err))?;
    state
        .audit()
        .record(
            &caller,
            &app,
            "ResourceUpdated",
            &format!(
                "patched resource {}/{} '{}'",
                query.group, query.kind, query.resource_name
            ),
        )
        .await;
    manifest(patched)
}

/// `DELETE /api/v1/applications/{name}/resource?…&force=&orphan=`: needs `delete` on the app.
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(query): Query<ResourceQuery>,
) -> Result<Json<Value>, ApiError> {
    let app = authorized_app(&state, &caller, &name, DELETE).await?;
    let (_, target) = target(&state, &app, &query).await?;
    // Argo CD's choices: orphan wins; force is a background deletion without grace period.
    let mut params = DeleteParams::default();
    if query.orphan == Some(true) {
        params.propagation_policy = Some(PropagationPolicy::Orphan);
    } else if query.force == Some(true) {
        params.propagation_policy = Some(PropagationPolicy::Background);
        params.grace_period_seconds = Some(0);
    } else {
        params.propagation_policy = Some(PropagationPolicy::Foreground);
    }
    target
        .api
        .delete(&target.name, &params)
        .await
        .map_err(|err| ApiError::kube("deleting the resource", &err))?;
    state
        .audit()
        .record(
            &caller,
            &app,
            "ResourceDeleted",
            &format!(
                "deleted resource {}/{} '{}'",
                query.group, query.kind, query.resource_name
            ),
        )
        .await;
    Ok(Json(json!({})))
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct EventsQuery {
    resource_namespace: String,
    resource_name: String,
    resource_uid: String,
}

/// `GET /api/v1/applications/{name}/events?resourceNamespace=&resourceName=&resourceUID=`: the
/// app's own events (its audit trail and the controller's), or those of one of its resources.
pub async fn events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(query): Query<EventsQuery>,
) -> Result<Json<Value>, ApiError> {
    let app = authorized_app(&state, &caller, &name, GET).await?;
    let (api, fields) = if query.resource_name.is_empty() {
        let uid = app.metadata.uid.clone().unwrap_or_default();
        (
            Api::<KubeEvent>::namespaced(state.client(), state.namespace()),
            format!("involvedObject.name={name},involvedObject.uid={uid}"),
        )
    } else {
        let object = LiveObject {
            group: "",
            kind: "",
            namespace: &query.resource_namespace,
            name: &query.resource_name,
        };
        let client = client_for(&state, &app, &object).await?;
        let mut fields = format!("involvedObject.name={}", query.resource_name);
        if !query.resource_uid.is_empty() {
            fields.push_str(&format!(",involvedObject.uid={}", query.resource_uid));
        }
        let in_app = app.status.as_ref().is_some_and(|status| {
            status.resources.iter().any(|resource| {
                resource.name == query.resource_name
                    && resource.namespace == query.resource_namespace
            })
        }) || app.spec.destination.namespace == query.resource_namespace;
        if !in_app {
            return Err(ApiError::not_found(format!(
                "{}/{} is not a resource of application {name}",
                query.resource_namespace, query.resource_name
            )));
        }
        (
            Api::<KubeEvent>::namespaced(client, &query.resource_namespace),
            fields,
        )
    };
    let listed = api
        .list(&ListParams::default().fields(&fields))
        .await
        .map_err(|err| ApiError::kube("listing events", &err))?;
    Ok(Json(json!({"metadata": {}, "items": listed.items})))
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct LogsQuery {
    namespace: String,
    container: Option<String>,
    tail_lines: Option<i64>,
    since_seconds: Option<i64>,
    follow: bool,
    previous: bool,
}

/// `GET /api/v1/applications/{name}/pods/{pod}/logs?namespace=&container=&tailLines=&follow=`:
/// the log of one of the app's pods as Server-Sent Events, one line per event:
/// `{"result":{"content":"…","podName":"…","timeStamp":"…"}}`, then `{"result":{"last":true}}`.
/// Needs `logs, get` on the app as well as `applications, get`.
pub async fn logs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, pod)): Path<(String, String)>,
    Query(query): Query<LogsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let app = authorized_app(&state, &caller, &name, GET).await?;
    authorize(
        &state.settings(),
        &caller,
        LOGS,
        GET,
        &rbac_object(&app, state.namespace()),
    )?;
    let resource = ResourceQuery {
        namespace: query.namespace.clone(),
        resource_name: pod.clone(),
        version: "v1".into(),
        kind: "Pod".into(),
        ..ResourceQuery::default()
    };
    let (client, _) = target(&state, &app, &resource).await?;
    let pods: Api<Pod> = Api::namespaced(client, &query.namespace);
    let params = LogParams {
        container: query.container.clone(),
        follow: query.follow,
        tail_lines: query.tail_lines,
        since_seconds: query.since_seconds,
        previous: query.previous,
        timestamps: true,
        ..LogParams::default()
    };
    let lines = pods
        .log_stream(&pod, &params)
        .await
        .map_err(|err| ApiError::kube("reading the pod's log", &err))?
        .lines();
    let pod_name = pod.clone();
    let events = lines
        .take_until(state.stopping().clone().cancelled_owned())
        .map_err(|err| err.to_string())
        .map(move |line| {
            let data = match line {
                Ok(line) => {
                    let (time, content) = line.split_once(' ').unwrap_or(("", &line));
                    json!({"result": {"content": content, "timeStamp": time, "podName": pod_name}})
                }
                Err(err) => json!({"error": {"message": err}}),
            };
            Ok(Event::default().data(data.to_string()))
        })
        .chain(stream::once(async {
            Ok(Event::default().data(json!({"result": {"last": true}}).to_string()))
        }));
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
