//! `/api/v1/applicationsets`: the ApplicationSets of the control namespace, with Argo CD's rules.
//! RBAC is on `applicationsets` with the object `<project>/<name>`, the project being the
//! template's (which may not be templated); a create or a generate needs `create` and an existing
//! project; a create of an existing set only succeeds unchanged or with `upsert` (and `update`, on
//! both projects when the set moves); `dryRun` and `generate` render the Applications with the
//! ApplicationSet controller's own code and create nothing. Every change is an audit Event on the
//! set, naming the caller.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, Query, RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use ferry_appset::generators::{GitSource, Sources};
use ferry_git::RepoCache;
use ferry_types::application::DEFAULT_PROJECT;
use ferry_types::{AppProject, Application, ApplicationSet};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Event as KubeEvent;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde::Deserialize;
use serde_json::{Value, json};

use super::authn::Caller;
use super::authz::{authorize, visible};
use super::error::{ApiError, Code};
use super::state::AppState;
use crate::rbac::resources::{APPLICATIONSETS, CREATE, DELETE, GET, UPDATE};

/// Rounds of read-change-write before giving up on a set that keeps changing.
const ATTEMPTS: usize = 5;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/applicationsets", get(list).post(create))
        .route("/api/v1/applicationsets/generate", post(generate))
        .route(
            "/api/v1/applicationsets/{name}",
            get(get_one).delete(delete),
        )
        .route(
            "/api/v1/applicationsets/{name}/resource-tree",
            get(resource_tree),
        )
        .route("/api/v1/applicationsets/{name}/events", get(events))
        .route("/api/v1/stream/applicationsets", get(stream))
}

fn appsets(state: &AppState) -> Api<ApplicationSet> {
    Api::namespaced(state.client(), state.namespace())
}

/// The project of the set's template (`default` when empty).
fn project(appset: &ApplicationSet) -> &str {
    match appset.spec.template.spec["project"].as_str() {
        None | Some("") => DEFAULT_PROJECT,
        Some(project) => project,
    }
}

/// The RBAC object of a set of the control namespace: `<project>/<name>`.
fn rbac_object(appset: &ApplicationSet) -> String {
    format!("{}/{}", project(appset), appset.name_any())
}

/// The set `name` if the caller may do `action` to it; a missing one is a 403 too, so callers
/// learn nothing of the sets they may not see.
async fn authorized(
    state: &AppState,
    caller: &Caller,
    name: &str,
    action: &str,
) -> Result<ApplicationSet, ApiError> {
    let appset = appsets(state)
        .get_opt(name)
        .await
        .map_err(|err| ApiError::kube("reading the ApplicationSet", &err))?;
    let Some(appset) = appset else {
        tracing::info!(subject = %caller.name(), applicationset = name, action, "no such applicationset: permission denied");
        return Err(ApiError::permission_denied());
    };
    authorize(
        &state.settings(),
        caller,
        APPLICATIONSETS,
        action,
        &rbac_object(&appset),
    )?;
    Ok(appset)
}

/// The last value of the query parameter `key` (empty when absent).
fn param(raw: &str, key: &str) -> String {
    url::form_urlencoded::parse(raw.as_bytes())
        .filter(|(k, _)| k == key)
        .last()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// `GET /api/v1/applicationsets?projects=…&selector=…`, sorted by name.
async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let raw = raw.unwrap_or_default();
    let projects = projects_of(&raw);
    let selector = param(&raw, "selector");
    let mut params = ListParams::default();
    if !selector.is_empty() {
        params = params.labels(&selector);
    }
    let listed = appsets(&state)
        .list(&params)
        .await
        .map_err(|err| ApiError::kube("listing ApplicationSets", &err))?;
    let settings = state.settings();
    let mut items = Vec::new();
    for appset in listed.items {
        let wanted = projects.is_empty() || projects.iter().any(|p| p == project(&appset));
        if wanted
            && visible(
                &settings,
                &caller,
                APPLICATIONSETS,
                GET,
                &rbac_object(&appset),
            )?
        {
            items.push(appset);
        }
    }
    items.sort_by_key(|appset| appset.name_any());
    Ok(Json(json!({"metadata": {}, "items": items})))
}

/// The repeated `projects` parameter.
fn projects_of(raw: &str) -> Vec<String> {
    url::form_urlencoded::parse(raw.as_bytes())
        .filter(|(key, value)| key == "projects" && !value.is_empty())
        .map(|(_, value)| value.into_owned())
        .collect()
}

/// `GET /api/v1/applicationsets/{name}`.
async fn get_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<ApplicationSet>, ApiError> {
    authorized(&state, &caller, &name, GET).await.map(Json)
}

/// Argo CD's checks of a set to create or generate: an untemplated project, generators it knows
/// (one per entry), the control namespace.
fn validate(state: &AppState, appset: &mut ApplicationSet) -> Result<(), ApiError> {
    if appset.name_any().is_empty() {
        return Err(ApiError::invalid_argument(
            "the ApplicationSet has no metadata.name",
        ));
    }
    if project(appset).contains("{{") {
        return Err(ApiError::invalid_argument(
            "the API does not support ApplicationSets with a templated `project` field",
        ));
    }
    ferry_appset::generators::check_entries(&appset.spec.generators).map_err(|err| {
        ApiError::invalid_argument(format!("ApplicationSet {}: {err}", appset.name_any()))
    })?;
    match appset.metadata.namespace.as_deref() {
        None | Some("") => {}
        Some(namespace) if namespace == state.namespace() => {}
        Some(namespace) => {
            return Err(ApiError::new(
                Code::PermissionDenied,
                format!("namespace '{namespace}' is not permitted"),
            ));
        }
    }
    appset.metadata.namespace = Some(state.namespace().to_string());
    Ok(())
}

/// The caller may create the set, and its project exists.
async fn check_create(
    state: &AppState,
    caller: &Caller,
    appset: &ApplicationSet,
) -> Result<(), ApiError> {
    authorize(
        &state.settings(),
        caller,
        APPLICATIONSETS,
        CREATE,
        &rbac_object(appset),
    )?;
    let name = project(appset);
    let projects: Api<AppProject> = Api::namespaced(state.client(), state.namespace());
    match projects.get_opt(name).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ApiError::invalid_argument(format!(
            "ApplicationSet references project {name} which does not exist"
        ))),
        Err(err) => Err(ApiError::kube("reading the AppProject", &err)),
    }
}

/// The Applications the set would make, rendered with the ApplicationSet controller's code from
/// the repository and cluster Secrets as they are now, in a Git cache of this request's own.
async fn generated(
    state: &AppState,
    appset: &ApplicationSet,
) -> Result<Vec<Application>, ApiError> {
    let (credentials, cluster_secrets) =
        ferry_appset::controller::current_secrets(state.client(), state.namespace())
            .await
            .map_err(|err| ApiError::kube("listing repository and cluster Secrets", &err))?;
    let cache = tempfile::Builder::new()
        .prefix("ferry-server-appset-")
        .tempdir()
        .map_err(|err| ApiError::internal("making a Git cache", &err))?;
    let git = GitSource {
        cache: RepoCache::new(cache.path(), credentials),
        max_checkout_bytes: None,
    };
    let kube = ferry_appset::generators::Kube {
        client: state.client(),
        namespace: state.namespace().to_string(),
    };
    let sources = Sources {
        git: &git,
        cluster_secrets: &cluster_secrets,
        kube: Some(&kube),
        scm: &ferry_appset::generators::ScmSettings::default(),
    };
    let unable = |err: ferry_appset::generate::GenerateError| {
        ApiError::invalid_argument(format!(
            "unable to generate Applications of ApplicationSet {}: {err}",
            appset.name_any()
        ))
    };
    let apps = ferry_appset::generate::applications(appset, &sources)
        .await
        .map_err(unable)?;
    ferry_appset::generate::validate_names(appset, &apps).map_err(unable)?;
    Ok(apps)
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct CreateQuery {
    upsert: bool,
    dry_run: bool,
}

/// What an update may change, as Argo CD compares them.
fn same_definition(a: &ApplicationSet, b: &ApplicationSet) -> bool {
    a.spec == b.spec
        && a.metadata.labels == b.metadata.labels
        && a.metadata.annotations == b.metadata.annotations
        && a.metadata.finalizers == b.metadata.finalizers
}

/// `POST /api/v1/applicationsets?upsert=&dryRun=`: the body is the ApplicationSet.
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<CreateQuery>,
    Json(mut appset): Json<ApplicationSet>,
) -> Result<Json<ApplicationSet>, ApiError> {
    validate(&state, &mut appset)?;
    check_create(&state, &caller, &appset).await?;
    appset.metadata.resource_version = None;
    if query.dry_run {
        let apps = generated(&state, &appset).await?;
        appset.status.get_or_insert_default().resources =
            ferry_appset::controller::resource_statuses(&apps);
        return Ok(Json(appset));
    }
    appset.status = None;
    let name = appset.name_any();
    let api = appsets(&state);
    match api.create(&PostParams::default(), &appset).await {
        Ok(created) => {
            state
                .audit()
                .record(
                    &caller,
                    &created,
                    "ResourceCreated",
                    "created ApplicationSet",
                )
                .await;
            Ok(Json(created))
        }
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = api
                .get(&name)
                .await
                .map_err(|err| ApiError::kube("reading the ApplicationSet", &err))?;
            if same_definition(&existing, &appset) {
                return Ok(Json(existing));
            }
            if !query.upsert {
                return Err(ApiError::invalid_argument(
                    "existing ApplicationSet spec is different, use upsert flag to force update",
                ));
            }
            upsert(&state, &caller, existing, &appset).await.map(Json)
        }
        Err(err) => Err(ApiError::kube("creating the ApplicationSet", &err)),
    }
}

/// Writes `appset`'s spec, finalizers and (merged) labels and annotations over `existing`; the
/// caller needs `update` on the set, and when it moves, `create` in the new project and `update`
/// in the old one.
async fn upsert(
    state: &AppState,
    caller: &Caller,
    mut existing: ApplicationSet,
    appset: &ApplicationSet,
) -> Result<ApplicationSet, ApiError> {
    let settings = state.settings();
    authorize(
        &settings,
        caller,
        APPLICATIONSETS,
        UPDATE,
        &rbac_object(appset),
    )?;
    let api = appsets(state);
    let name = appset.name_any();
    for _ in 0..ATTEMPTS {
        if project(&existing) != project(appset) {
            authorize(
                &settings,
                caller,
                APPLICATIONSETS,
                CREATE,
                &rbac_object(appset),
            )?;
            authorize(
                &settings,
                caller,
                APPLICATIONSETS,
                UPDATE,
                &rbac_object(&existing),
            )?;
        }
        existing.spec = appset.spec.clone();
        for (into, from) in [
            (&mut existing.metadata.labels, &appset.metadata.labels),
            (
                &mut existing.metadata.annotations,
                &appset.metadata.annotations,
            ),
        ] {
            if let Some(from) = from {
                into.get_or_insert_default().extend(from.clone());
            }
        }
        existing.metadata.finalizers = appset.metadata.finalizers.clone();
        match api.replace(&name, &PostParams::default(), &existing).await {
            Ok(written) => {
                state
                    .audit()
                    .record(
                        caller,
                        &written,
                        "ResourceUpdated",
                        "updated ApplicationSets spec",
                    )
                    .await;
                return Ok(written);
            }
            Err(kube::Error::Api(status)) if status.is_conflict() => {
                existing = api
                    .get(&name)
                    .await
                    .map_err(|err| ApiError::kube("reading the ApplicationSet", &err))?;
            }
            Err(err) => return Err(ApiError::kube("writing the ApplicationSet", &err)),
        }
    }
    Err(ApiError::new(
        Code::Aborted,
        format!("ApplicationSet {name} kept changing; try again"),
    ))
}

/// `DELETE /api/v1/applicationsets/{name}`: the generated Applications go with it as its policy
/// allows (the ApplicationSet controller releases them first when it forbids deletes).
async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let appset = authorized(&state, &caller, &name, DELETE).await?;
    appsets(&state)
        .delete(&name, &DeleteParams::foreground())
        .await
        .map_err(|err| ApiError::kube("deleting the ApplicationSet", &err))?;
    state
        .audit()
        .record(
            &caller,
            &appset,
            "ResourceDeleted",
            "deleted ApplicationSets",
        )
        .await;
    Ok(Json(json!({})))
}

/// `POST /api/v1/applicationsets/generate` with `{"applicationSet": …}`: the Applications it
/// would make, `{"applications": […]}`.
async fn generate(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let appset = body
        .get("applicationSet")
        .filter(|appset| !appset.is_null())
        .ok_or_else(|| ApiError::invalid_argument("missing payload 'applicationSet' in request"))?;
    let mut appset: ApplicationSet = serde_path_to_error::deserialize(appset)
        .map_err(|err| ApiError::invalid_argument(format!("applicationSet: {err}")))?;
    validate(&state, &mut appset)?;
    check_create(&state, &caller, &appset).await?;
    let apps = generated(&state, &appset).await?;
    Ok(Json(json!({"applications": apps})))
}

/// `GET /api/v1/applicationsets/{name}/resource-tree`: the generated Applications of
/// `status.resources`, each a child of the set.
async fn resource_tree(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let appset = authorized(&state, &caller, &name, GET).await?;
    let namespace = appset.namespace().unwrap_or_default();
    let parent = json!({
        "group": ferry_types::GROUP,
        "version": ferry_types::VERSION,
        "kind": "ApplicationSet",
        "namespace": namespace,
        "name": name,
        "uid": appset.metadata.uid.clone().unwrap_or_default(),
    });
    let mut resources: Vec<_> = appset.status.iter().flat_map(|s| &s.resources).collect();
    resources.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
    let nodes: Vec<Value> = resources
        .into_iter()
        .map(|resource| {
            let mut node = json!({
                "group": resource.group,
                "version": resource.version,
                "kind": resource.kind,
                "namespace": namespace,
                "name": resource.name,
                "parentRefs": [parent],
            });
            if let Some(health) = &resource.health {
                node["health"] = json!(health);
            }
            node
        })
        .collect();
    Ok(Json(json!({"nodes": nodes})))
}

/// `GET /api/v1/applicationsets/{name}/events`: the Events of the set (the controller's and the
/// audit trail).
async fn events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let appset = authorized(&state, &caller, &name, GET).await?;
    let uid = appset.metadata.uid.clone().unwrap_or_default();
    let fields = format!("involvedObject.name={name},involvedObject.uid={uid}");
    let api: Api<KubeEvent> = Api::namespaced(state.client(), state.namespace());
    let listed = api
        .list(&ListParams::default().fields(&fields))
        .await
        .map_err(|err| ApiError::kube("listing the ApplicationSet's Events", &err))?;
    Ok(Json(json!({"metadata": {}, "items": listed.items})))
}

/// `GET /api/v1/stream/applicationsets?name=&projects=&selector=`: Server-Sent Events
/// `{"result":{"type":"ADDED|MODIFIED|DELETED","applicationSet":{…}}}` of the sets the caller may
/// `get`, starting with every one as ADDED (unless the client passes a `resourceVersion`). Sets
/// are few and rarely change: each stream watches them itself.
async fn stream(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let raw = raw.unwrap_or_default();
    let projects = Arc::new(projects_of(&raw));
    let (name, selector) = (param(&raw, "name"), param(&raw, "selector"));
    let mut config = watcher::Config::default();
    if !selector.is_empty() {
        config = config.labels(&selector);
    }
    if !name.is_empty() {
        config = config.fields(&format!("metadata.name={name}"));
    }
    let resumed = !param(&raw, "resourceVersion").is_empty();
    let mut seen = std::collections::HashSet::new();
    let mut initial = !resumed;
    let changes = watcher::watcher(appsets(&state), config).filter_map(move |event| {
        let change = match event {
            Ok(watcher::Event::InitApply(appset)) => {
                seen.insert(appset.name_any());
                initial.then_some(("ADDED", appset))
            }
            Ok(watcher::Event::InitDone) => {
                initial = true;
                None
            }
            Ok(watcher::Event::Apply(appset)) => {
                let kind = if seen.insert(appset.name_any()) {
                    "ADDED"
                } else {
                    "MODIFIED"
                };
                Some((kind, appset))
            }
            Ok(watcher::Event::Delete(appset)) => {
                seen.remove(&appset.name_any());
                Some(("DELETED", appset))
            }
            Ok(watcher::Event::Init) => None,
            Err(err) => {
                tracing::warn!("watching ApplicationSets for a stream: {err}");
                None
            }
        };
        std::future::ready(change)
    });
    let stopping = state.stopping().clone().cancelled_owned();
    let events = changes
        .take_until(stopping)
        .filter_map(move |(kind, appset)| {
            let shown = (projects.is_empty() || projects.iter().any(|p| p == project(&appset)))
                && visible(
                    &state.settings(),
                    &caller,
                    APPLICATIONSETS,
                    GET,
                    &rbac_object(&appset),
                )
                .unwrap_or(false);
            let event = shown.then(|| {
                let data = json!({"result": {"type": kind, "applicationSet": appset}});
                Ok(Event::default().data(data.to_string()))
            });
            std::future::ready(event)
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
