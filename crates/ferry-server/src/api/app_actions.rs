//! Resource actions on an Application's live resources (`argocd app actions list/run`): the
//! actions an object offers and running one, built in or from argocd-cm's Lua
//! ([`ferry_health::ResourceActions`]). Running needs Argo CD's RBAC action
//! `action/<group>/<kind>/<action>` on the app; what an action creates must be permitted by
//! the app's project; every run is an audit Event on the app.

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use ferry_health::{Impact, ResourceActions};
use ferry_types::{Application, split_api_version};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::discovery::{Scope, pinned_kind};
use serde::Deserialize;
use serde_json::{Value, json};

use super::app_resources::{ResourceQuery, Target, target};
use super::applications::authorized_app;
use super::authn::Caller;
use super::destinations::{LiveObject, client_for};
use super::error::ApiError;
use super::state::AppState;
use crate::rbac::resources::{ACTION, GET};

/// Argo CD's `ResourceActionRunRequestV2` (the body of `/resource/actions/v2`).
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct RunRequest {
    namespace: String,
    resource_name: String,
    version: String,
    group: String,
    kind: String,
    action: String,
    resource_action_parameters: Vec<Parameter>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Parameter {
    name: String,
    value: String,
}

fn configured(state: &AppState) -> Result<ResourceActions, ApiError> {
    ResourceActions::from_argocd_cm(state.settings().argocd_cm())
        .map_err(|err| ApiError::internal("reading the resource actions of argocd-cm", &err))
}

/// `GET /api/v1/applications/{name}/resource/actions?namespace=&resourceName=&version=&group=
/// &kind=`: `{"actions": [...]}`.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(query): Query<ResourceQuery>,
) -> Result<Json<Value>, ApiError> {
    let app = authorized_app(&state, &caller, &name, GET).await?;
    let (_, live) = acted_on(&state, &app, &query).await?;
    let actions = configured(&state)?
        .discover(&live)
        .map_err(|err| ApiError::internal("error getting available actions", &err))?;
    Ok(Json(json!({ "actions": actions })))
}

/// `POST /api/v1/applications/{name}/resource/actions?…`, the body the action's name (Argo CD's
/// deprecated `RunResourceAction`).
pub async fn run_v1(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(query): Query<ResourceQuery>,
    Json(action): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let action = action
        .as_str()
        .ok_or_else(|| ApiError::invalid_argument("the body must be the action's name"))?;
    let request = RunRequest {
        namespace: query.namespace,
        resource_name: query.resource_name,
        version: query.version,
        group: query.group,
        kind: query.kind,
        action: action.to_string(),
        resource_action_parameters: Vec::new(),
    };
    run(&state, &caller, &name, request).await
}

/// `POST /api/v1/applications/{name}/resource/actions/v2` with a `ResourceActionRunRequestV2`.
pub async fn run_v2(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Json(request): Json<RunRequest>,
) -> Result<Json<Value>, ApiError> {
    run(&state, &caller, &name, request).await
}

async fn run(
    state: &AppState,
    caller: &Caller,
    name: &str,
    request: RunRequest,
) -> Result<Json<Value>, ApiError> {
    let rbac_action = format!(
        "{ACTION}/{}/{}/{}",
        request.group, request.kind, request.action
    );
    let app = authorized_app(state, caller, name, &rbac_action).await?;
    let mut query = ResourceQuery::default();
    query.namespace = request.namespace.clone();
    query.resource_name = request.resource_name.clone();
    query.version = request.version.clone();
    query.group = request.group.clone();
    query.kind = request.kind.clone();
    let (target, live) = acted_on(state, &app, &query).await?;
    let params: Vec<(String, String)> = request
        .resource_action_parameters
        .into_iter()
        .map(|p| (p.name, p.value))
        .collect();
    let impacts = configured(state)?
        .run(&live, &request.action, &params)
        .map_err(|err| match err {
            ferry_health::ActionError::Failed(message) => ApiError::invalid_argument(format!(
                "error executing Lua resource action: {message}"
            )),
            other => {
                ApiError::invalid_argument(format!("error getting Lua resource action: {other}"))
            }
        })?;
    // Everything an action would create is checked (project, then a dry run) before anything
    // is written, so that a refusal leaves nothing half done.
    let mut creates = Vec::new();
    for impact in &impacts {
        if let Impact::Create(object) = impact {
            let (api, object) = creatable(state, &app, object).await?;
            api.create(
                &PostParams {
                    dry_run: true,
                    ..PostParams::default()
                },
                &object,
            )
            .await
            .map_err(|err| ApiError::kube("creating the resource", &err))?;
            creates.push((api, object));
        }
    }
    for impact in impacts {
        if let Impact::Patch(changed) = impact {
            patch(&target.api, &target.name, &live, &changed).await?;
        }
    }
    for (api, object) in creates {
        api.create(&PostParams::default(), &object)
            .await
            .map_err(|err| ApiError::kube("creating the resource", &err))?;
    }
    state
        .audit()
        .record(
            caller,
            &app,
            "ResourceActionRan",
            &format!(
                "ran action {} on resource {}/{}/{}",
                request.action, request.group, request.kind, request.resource_name
            ),
        )
        .await;
    Ok(Json(json!({})))
}

/// The object `query` names, with an API to change it by: one of the app's resources, or (as
/// `argocd app actions` asks for it too) the Application itself.
async fn acted_on(
    state: &AppState,
    app: &Application,
    query: &ResourceQuery,
) -> Result<(Target, Value), ApiError> {
    let target = if query.group == "argoproj.io"
        && query.kind == "Application"
        && Some(query.resource_name.as_str()) == app.metadata.name.as_deref()
    {
        let resource = ApiResource::erase::<Application>(&());
        Target {
            api: Api::namespaced_with(state.client(), state.namespace(), &resource),
            name: query.resource_name.clone(),
        }
    } else {
        target(state, app, query).await?.1
    };
    let object = target
        .api
        .get(&target.name)
        .await
        .map_err(|err| ApiError::kube("reading the resource", &err))?;
    let live = serde_json::to_value(object)
        .map_err(|err| ApiError::internal("reading the resource", &err))?;
    Ok((target, live))
}

/// Applies the difference an action made as a merge patch; a changed `status` goes through the
/// status subresource where the kind has one, as Argo CD does.
async fn patch(
    api: &Api<DynamicObject>,
    name: &str,
    live: &Value,
    changed: &Value,
) -> Result<(), ApiError> {
    let mut merge_patch = merge_patch(live, changed);
    if let Some(status) = merge_patch.as_object_mut().and_then(|p| p.remove("status")) {
        let status_patch = json!({ "status": status });
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status_patch))
            .await
        {
            Ok(_) => {}
            // No status subresource: the status goes with the rest.
            Err(kube::Error::Api(response)) if response.code == 404 => {
                merge_patch["status"] = status_patch["status"].clone();
            }
            Err(err) => return Err(ApiError::kube("patching the resource's status", &err)),
        }
    }
    if merge_patch.as_object().is_some_and(|p| !p.is_empty()) {
        api.patch(name, &PatchParams::default(), &Patch::Merge(&merge_patch))
            .await
            .map_err(|err| ApiError::kube("patching the resource", &err))?;
    }
    Ok(())
}

/// The JSON merge patch (RFC 7386) that turns `from` into `to`.
fn merge_patch(from: &Value, to: &Value) -> Value {
    match (from, to) {
        (Value::Object(from), Value::Object(to)) => {
            let mut patch = serde_json::Map::new();
            for (key, old) in from {
                match to.get(key) {
                    None => {
                        patch.insert(key.clone(), Value::Null);
                    }
                    Some(new) if new != old => {
                        let inner = if old.is_object() && new.is_object() {
                            merge_patch(old, new)
                        } else {
                            new.clone()
                        };
                        patch.insert(key.clone(), inner);
                    }
                    Some(_) => {}
                }
            }
            for (key, new) in to {
                if !from.contains_key(key) {
                    patch.insert(key.clone(), new.clone());
                }
            }
            Value::Object(patch)
        }
        (_, to) => to.clone(),
    }
}

/// The API to create `object` with, once the app's project permits its kind and namespace.
async fn creatable(
    state: &AppState,
    app: &Application,
    object: &Value,
) -> Result<(Api<DynamicObject>, DynamicObject), ApiError> {
    let object: DynamicObject = serde_json::from_value(object.clone())
        .map_err(|err| ApiError::invalid_argument(format!("the action made no object: {err}")))?;
    let types = object
        .types
        .clone()
        .ok_or_else(|| ApiError::invalid_argument("the action made an object without a kind"))?;
    let (group, version) = split_api_version(&types.api_version);
    let namespace = object.metadata.namespace.clone().unwrap_or_default();
    let name = object.metadata.name.clone().unwrap_or_default();
    let live = LiveObject {
        group,
        kind: &types.kind,
        namespace: &namespace,
        name: &name,
    };
    let client = client_for(state, app, &live).await.map_err(|_| {
        ApiError::invalid_argument(format!(
            "application is not permitted to manage {group}/{}/{name} in {namespace}",
            types.kind
        ))
    })?;
    let gvk = GroupVersionKind::gvk(group, version, &types.kind);
    let (resource, capabilities) = pinned_kind(&client, &gvk)
        .await
        .map_err(|err| ApiError::kube("finding the resource's kind", &err))?;
    let api = match capabilities.scope {
        Scope::Namespaced => Api::namespaced_with(client, &namespace, &resource),
        Scope::Cluster => Api::all_with(client, &resource),
    };
    Ok((api, object))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::merge_patch;

    #[test]
    fn merge_patches_set_changed_and_remove_dropped_fields() {
        let live = json!({"spec": {"paused": true, "replicas": 1, "template": {"a": 1}}, "x": [1]});
        let changed = json!({"spec": {"replicas": 2, "template": {"a": 1}}, "x": [1, 2]});
        assert_eq!(
            merge_patch(&live, &changed),
            json!({"spec": {"paused": null, "replicas": 2}, "x": [1, 2]})
        );
        assert_eq!(merge_patch(&live, &live), json!({}));
    }
}
