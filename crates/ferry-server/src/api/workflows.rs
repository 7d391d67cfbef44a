//! Argo Workflows' WorkflowService on its paths (`/api/v1/workflows/{namespace}…`,
//! `/api/v1/workflow-events/{namespace}`) and in its JSON shapes, over the cluster's Workflows
//! with what `ferry wf` does to them (ferry-workflow's `submit`, `retry`, `control`). RBAC:
//! `workflows` on `<namespace>/<name>` (`<namespace>/<generateName>` for a workflow not named
//! yet): `get` to list, read, watch and lint, `create` to create, submit and resubmit, `update`
//! for retry, suspend, resume, stop and terminate, `delete`.

use std::convert::Infallible;

use axum::extract::{Path, RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use ferry_types::{ClusterWorkflowTemplate, CronWorkflow, Workflow, WorkflowTemplate};
use ferry_workflow::control::{self, NodeSelector, Shutdown, UpdateError};
use ferry_workflow::{retry, submit};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, Resource};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::authn::Caller;
use super::authz::{authorize, visible};
use super::error::{ApiError, Code};
use super::query::Query;
use super::state::AppState;
use super::workflow_logs;
use crate::rbac::resources::{CREATE, DELETE, GET, UPDATE, WORKFLOWS};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/workflows/{namespace}", get(list).post(create))
        .route("/api/v1/workflows/{namespace}/lint", post(lint))
        .route("/api/v1/workflows/{namespace}/submit", post(submit_from))
        .route(
            "/api/v1/workflows/{namespace}/{name}",
            get(get_one).delete(delete),
        )
        .route("/api/v1/workflows/{namespace}/{name}/retry", put(retry))
        .route(
            "/api/v1/workflows/{namespace}/{name}/resubmit",
            put(resubmit),
        )
        .route("/api/v1/workflows/{namespace}/{name}/suspend", put(suspend))
        .route("/api/v1/workflows/{namespace}/{name}/resume", put(resume))
        .route("/api/v1/workflows/{namespace}/{name}/stop", put(stop))
        .route(
            "/api/v1/workflows/{namespace}/{name}/terminate",
            put(terminate),
        )
        .route(
            "/api/v1/workflows/{namespace}/{name}/log",
            get(workflow_logs::workflow_logs),
        )
        .route(
            "/api/v1/workflows/{namespace}/{name}/{pod}/log",
            get(workflow_logs::pod_logs),
        )
        .route("/api/v1/workflow-events/{namespace}", get(watch))
}

fn workflows(state: &AppState, namespace: &str) -> Api<Workflow> {
    Api::namespaced(state.client(), namespace)
}

/// The RBAC object of a workflow (or of any namespaced object of Argo Workflows).
pub fn rbac_object<K: Resource>(namespace: &str, object: &K) -> String {
    let meta = object.meta();
    let name = meta
        .name
        .as_deref()
        .filter(|name| !name.is_empty())
        .or(meta.generate_name.as_deref())
        .unwrap_or_default();
    format!("{namespace}/{name}")
}

/// The object in a request body's `field`, in `namespace`; errors name the field.
pub fn object_of<K>(body: &Value, field: &str, namespace: Option<&str>) -> Result<K, ApiError>
where
    K: Resource + DeserializeOwned,
{
    let object = body
        .get(field)
        .filter(|object| !object.is_null())
        .ok_or_else(|| {
            ApiError::invalid_argument(format!("missing payload '{field}' in request"))
        })?;
    let mut object: K = serde_path_to_error::deserialize(object)
        .map_err(|err| ApiError::invalid_argument(format!("{field}: {err}")))?;
    if let Some(namespace) = namespace {
        object.meta_mut().namespace = Some(namespace.to_string());
    }
    Ok(object)
}

/// `listOptions.labelSelector`, `.fieldSelector`, `.limit` and `.continue`, as grpc-gateway
/// names them in the query.
pub fn list_params(query: &Query) -> Result<ListParams, ApiError> {
    let mut params = ListParams::default();
    if let Some(labels) = query.value("listOptions.labelSelector") {
        params = params.labels(labels);
    }
    if let Some(fields) = query.value("listOptions.fieldSelector") {
        params = params.fields(fields);
    }
    if let Some(limit) = query.value("listOptions.limit").filter(|l| !l.is_empty()) {
        let limit = limit.parse().map_err(|_| {
            ApiError::invalid_argument(format!("listOptions.limit: {limit:?} is not a number"))
        })?;
        params = params.limit(limit);
    }
    if let Some(token) = query
        .value("listOptions.continue")
        .filter(|t| !t.is_empty())
    {
        params = params.continue_token(token);
    }
    Ok(params)
}

/// A refusal of an edit is the caller's mistake (a completed workflow cannot be suspended).
fn update_failed(err: UpdateError) -> ApiError {
    match err {
        UpdateError::Refused(message) => ApiError::new(Code::FailedPrecondition, message),
        UpdateError::Kube(err) => ApiError::kube("writing the Workflow", &err),
    }
}

/// A `nodeFieldSelector` of a request body, parsed.
fn selector(body: &Value) -> Result<Option<NodeSelector>, ApiError> {
    body.get("nodeFieldSelector")
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
        .map(NodeSelector::parse)
        .transpose()
        .map_err(|err| ApiError::invalid_argument(format!("nodeFieldSelector: {err}")))
}

/// A request body's `parameters` (`NAME=VALUE` strings).
fn parameters(body: &Value) -> Result<Vec<String>, ApiError> {
    match body.get("parameters") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(value) => serde_json::from_value(value.clone()).map_err(|_| {
            ApiError::invalid_argument("parameters: a list of NAME=VALUE strings is expected")
        }),
    }
}

/// Refuses `workflow` as the controller would fail it, with the message naming the field.
async fn check(state: &AppState, workflow: &Workflow) -> Result<(), ApiError> {
    submit::check(&state.client(), workflow)
        .await
        .map_err(|err| match err.downcast_ref::<kube::Error>() {
            Some(err) => ApiError::kube("reading the referenced templates", err),
            None => ApiError::internal("checking the workflow", err.as_ref()),
        })?
        .map_err(ApiError::invalid_argument)
}

/// Creates a checked `workflow`; with `dry_run` the API server only tries.
async fn create_checked(
    state: &AppState,
    caller: &Caller,
    namespace: &str,
    workflow: Workflow,
    dry_run: bool,
) -> Result<Workflow, ApiError> {
    check(state, &workflow).await?;
    let params = PostParams {
        dry_run,
        ..PostParams::default()
    };
    let created = workflows(state, namespace)
        .create(&params, &workflow)
        .await
        .map_err(|err| ApiError::kube("creating the Workflow", &err))?;
    if !dry_run {
        state
            .audit()
            .record(caller, &created, "WorkflowCreated", "created workflow")
            .await;
    }
    Ok(created)
}

/// `GET /api/v1/workflows/{namespace}`: a WorkflowList of those the caller may see.
async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(namespace): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = list_params(&Query::parse(query.as_deref()))?;
    let listed = workflows(&state, &namespace)
        .list(&params)
        .await
        .map_err(|err| ApiError::kube("listing Workflows", &err))?;
    let settings = state.settings();
    let mut items = Vec::new();
    for workflow in listed.items {
        if visible(
            &settings,
            &caller,
            WORKFLOWS,
            GET,
            &rbac_object(&namespace, &workflow),
        )? {
            items.push(workflow);
        }
    }
    Ok(Json(json!({"metadata": listed.metadata, "items": items})))
}

/// `GET /api/v1/workflows/{namespace}/{name}`.
async fn get_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<Workflow>, ApiError> {
    let object = format!("{namespace}/{name}");
    authorize(&state.settings(), &caller, WORKFLOWS, GET, &object)?;
    workflows(&state, &namespace)
        .get(&name)
        .await
        .map(Json)
        .map_err(|err| ApiError::kube("reading the Workflow", &err))
}

/// `POST /api/v1/workflows/{namespace}` with `{workflow, serverDryRun}`: the workflow is
/// checked first, as `ferry wf submit` checks it, and refused with the field named.
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(namespace): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Workflow>, ApiError> {
    let workflow: Workflow = object_of(&body, "workflow", Some(&namespace))?;
    let object = rbac_object(&namespace, &workflow);
    authorize(&state.settings(), &caller, WORKFLOWS, CREATE, &object)?;
    let dry_run = body.get("serverDryRun") == Some(&Value::Bool(true));
    create_checked(&state, &caller, &namespace, workflow, dry_run)
        .await
        .map(Json)
}

/// `POST /api/v1/workflows/{namespace}/lint` with `{workflow}`: the workflow back when it
/// would run, an InvalidArgument naming the field when not.
async fn lint(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(namespace): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Workflow>, ApiError> {
    let workflow: Workflow = object_of(&body, "workflow", Some(&namespace))?;
    let object = rbac_object(&namespace, &workflow);
    authorize(&state.settings(), &caller, WORKFLOWS, GET, &object)?;
    check(&state, &workflow).await?;
    Ok(Json(workflow))
}

/// Upstream's SubmitOpts, the fields ferry applies.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct SubmitOpts {
    name: Option<String>,
    generate_name: Option<String>,
    entry_point: Option<String>,
    parameters: Vec<String>,
    service_account: Option<String>,
    /// `a=b,c=d`.
    labels: Option<String>,
    dry_run: bool,
    server_dry_run: bool,
}

/// `POST /api/v1/workflows/{namespace}/submit` with `{resourceKind, resourceName,
/// submitOptions}`: a workflow from a WorkflowTemplate, ClusterWorkflowTemplate or
/// CronWorkflow, as `ferry wf submit --from` makes it.
async fn submit_from(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(namespace): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Workflow>, ApiError> {
    let text = |field: &str| body.get(field).and_then(Value::as_str).unwrap_or_default();
    let (kind, name) = (text("resourceKind"), text("resourceName"));
    if name.is_empty() {
        return Err(ApiError::invalid_argument("resourceName is required"));
    }
    let options: SubmitOpts = match body.get("submitOptions") {
        None | Some(Value::Null) => SubmitOpts::default(),
        Some(value) => serde_path_to_error::deserialize(value)
            .map_err(|err| ApiError::invalid_argument(format!("submitOptions: {err}")))?,
    };
    let kind = kind.to_ascii_lowercase();
    let read = |what: &str, err: kube::Error| ApiError::kube(&format!("reading the {what}"), &err);
    let mut workflow = match kind.as_str() {
        "workflowtemplate" | "workflowtemplates" => {
            Api::<WorkflowTemplate>::namespaced(state.client(), &namespace)
                .get(name)
                .await
                .map_err(|err| read("WorkflowTemplate", err))?;
            submit::from_template(name, false)
        }
        "clusterworkflowtemplate" | "clusterworkflowtemplates" => {
            Api::<ClusterWorkflowTemplate>::all(state.client())
                .get(name)
                .await
                .map_err(|err| read("ClusterWorkflowTemplate", err))?;
            submit::from_template(name, true)
        }
        "cronworkflow" | "cronworkflows" => {
            let cron = Api::<CronWorkflow>::namespaced(state.client(), &namespace)
                .get(name)
                .await
                .map_err(|err| read("CronWorkflow", err))?;
            submit::from_cron(&cron)
        }
        _ => {
            return Err(ApiError::invalid_argument(format!(
                "resourceKind: {kind:?} is not WorkflowTemplate, ClusterWorkflowTemplate or CronWorkflow"
            )));
        }
    };
    workflow.metadata.namespace = Some(namespace.clone());
    let mut labels = std::collections::BTreeMap::new();
    for pair in options.labels.iter().flat_map(|l| l.split(',')) {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            ApiError::invalid_argument(format!("submitOptions.labels: {pair:?} is not key=value"))
        })?;
        labels.insert(key.trim().to_string(), value.trim().to_string());
    }
    let applied = submit::Options {
        name: options.name,
        generate_name: options.generate_name,
        entrypoint: options.entry_point,
        service_account: options.service_account,
        parameters: options.parameters,
        labels,
    };
    submit::apply(&mut workflow, &applied).map_err(ApiError::invalid_argument)?;
    let object = rbac_object(&namespace, &workflow);
    authorize(&state.settings(), &caller, WORKFLOWS, CREATE, &object)?;
    if options.dry_run {
        check(&state, &workflow).await?;
        return Ok(Json(workflow));
    }
    create_checked(
        &state,
        &caller,
        &namespace,
        workflow,
        options.server_dry_run,
    )
    .await
    .map(Json)
}

/// `DELETE /api/v1/workflows/{namespace}/{name}`.
async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let object = format!("{namespace}/{name}");
    authorize(&state.settings(), &caller, WORKFLOWS, DELETE, &object)?;
    let api = workflows(&state, &namespace);
    let workflow = api
        .get(&name)
        .await
        .map_err(|err| ApiError::kube("reading the Workflow", &err))?;
    api.delete(&name, &DeleteParams::default())
        .await
        .map_err(|err| ApiError::kube("deleting the Workflow", &err))?;
    state
        .audit()
        .record(&caller, &workflow, "WorkflowDeleted", "deleted workflow")
        .await;
    Ok(Json(json!({})))
}

/// `PUT /api/v1/workflows/{namespace}/{name}/retry` with `{restartSuccessful,
/// nodeFieldSelector, parameters}`.
async fn retry(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, name)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Result<Json<Workflow>, ApiError> {
    let object = format!("{namespace}/{name}");
    authorize(&state.settings(), &caller, WORKFLOWS, UPDATE, &object)?;
    let selector = selector(&body)?;
    let restart_successful = body.get("restartSuccessful") == Some(&Value::Bool(true));
    let pods: Api<Pod> = Api::namespaced(state.client(), &namespace);
    let retried = retry::retry_in_cluster(
        &workflows(&state, &namespace),
        &pods,
        &name,
        restart_successful,
        selector.as_ref(),
        &parameters(&body)?,
    )
    .await
    .map_err(update_failed)?;
    state
        .audit()
        .record(&caller, &retried, "WorkflowRetried", "retried workflow")
        .await;
    Ok(Json(retried))
}

/// `PUT /api/v1/workflows/{namespace}/{name}/resubmit` with `{parameters}`: a new workflow
/// from this one's spec (`memoized` is refused: ferry does not memoize).
async fn resubmit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, name)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Result<Json<Workflow>, ApiError> {
    let object = format!("{namespace}/{name}");
    authorize(&state.settings(), &caller, WORKFLOWS, CREATE, &object)?;
    if body.get("memoized") == Some(&Value::Bool(true)) {
        return Err(ApiError::invalid_argument(
            "memoized: memoized resubmission is not supported",
        ));
    }
    let old = workflows(&state, &namespace)
        .get(&name)
        .await
        .map_err(|err| ApiError::kube("reading the Workflow", &err))?;
    let new = retry::resubmit(&old, &parameters(&body)?).map_err(ApiError::invalid_argument)?;
    create_checked(&state, &caller, &namespace, new, false)
        .await
        .map(Json)
}

/// One of the edits of `control` on workflow `name`, audited as `reason`.
async fn edit(
    state: &AppState,
    caller: &Caller,
    (namespace, name): (String, String),
    reason: &str,
    change: impl Fn(&mut Workflow) -> Result<(), String>,
) -> Result<Json<Workflow>, ApiError> {
    let object = format!("{namespace}/{name}");
    authorize(&state.settings(), caller, WORKFLOWS, UPDATE, &object)?;
    let written = control::update(&workflows(state, &namespace), &name, change)
        .await
        .map_err(update_failed)?;
    let message = format!(
        "{} workflow",
        reason.trim_start_matches("Workflow").to_lowercase()
    );
    state
        .audit()
        .record(caller, &written, reason, &message)
        .await;
    Ok(Json(written))
}

/// `PUT …/suspend`.
async fn suspend(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(path): Path<(String, String)>,
) -> Result<Json<Workflow>, ApiError> {
    edit(&state, &caller, path, "WorkflowSuspended", control::suspend).await
}

/// `PUT …/resume` with `{nodeFieldSelector}`: all waiting, or only the suspend nodes picked.
async fn resume(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(path): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Result<Json<Workflow>, ApiError> {
    let selector = selector(&body)?;
    edit(&state, &caller, path, "WorkflowResumed", |workflow| {
        control::resume(workflow, selector.as_ref(), jiff::Timestamp::now())
    })
    .await
}

/// `PUT …/stop`: no new steps, the exit handler still runs (a `nodeFieldSelector` is refused:
/// ferry stops whole workflows only).
async fn stop(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(path): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Result<Json<Workflow>, ApiError> {
    if selector(&body)?.is_some() {
        return Err(ApiError::invalid_argument(
            "nodeFieldSelector: stopping single nodes is not supported",
        ));
    }
    edit(&state, &caller, path, "WorkflowStopped", |workflow| {
        control::shutdown(workflow, Shutdown::Stop)
    })
    .await
}

/// `PUT …/terminate`: nothing more runs.
async fn terminate(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(path): Path<(String, String)>,
) -> Result<Json<Workflow>, ApiError> {
    edit(&state, &caller, path, "WorkflowTerminated", |workflow| {
        control::shutdown(workflow, Shutdown::Terminate)
    })
    .await
}

/// `GET /api/v1/workflow-events/{namespace}`: Server-Sent Events, each
/// `{"result":{"type":"ADDED|MODIFIED|DELETED","object":{…}}}`, of the workflows the caller
/// may `get` (`listOptions.labelSelector`, `.fieldSelector` narrow them), starting with every
/// one as ADDED; the stream ends when the Kubernetes watch does, and the client reconnects.
async fn watch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(namespace): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let query = Query::parse(query.as_deref());
    let mut params = WatchParams::default();
    if let Some(labels) = query.value("listOptions.labelSelector") {
        params = params.labels(labels);
    }
    if let Some(fields) = query.value("listOptions.fieldSelector") {
        params = params.fields(fields);
    }
    let changes = workflows(&state, &namespace)
        .watch(&params, "0")
        .await
        .map_err(|err| ApiError::kube("watching Workflows", &err))?;
    let stopping = state.stopping().clone().cancelled_owned();
    let events = changes
        .take_until(stopping)
        .take_while(|change| {
            std::future::ready(!matches!(change, Ok(WatchEvent::Error(_)) | Err(_)))
        })
        .filter_map(move |change| {
            let event = match change {
                Ok(WatchEvent::Added(workflow)) => Some(("ADDED", workflow)),
                Ok(WatchEvent::Modified(workflow)) => Some(("MODIFIED", workflow)),
                Ok(WatchEvent::Deleted(workflow)) => Some(("DELETED", workflow)),
                _ => None,
            };
            let shown = event.filter(|(_, workflow)| {
                visible(
                    &state.settings(),
                    &caller,
                    WORKFLOWS,
                    GET,
                    &rbac_object(&namespace, workflow),
                )
                .unwrap_or(false)
            });
            let sent = shown.map(|(kind, workflow)| {
                let data = json!({"result": {"type": kind, "object": workflow}});
                Ok(Event::default().data(data.to_string()))
            });
            std::future::ready(sent)
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
