//! `/api/v1/projects`: the AppProjects of the control namespace, as far as RBAC (`projects`,
//! on the project's name) lets the caller see and change them, their active sync windows,
//! ([`tokens`]) project role tokens, ([`links`]) deep links and ([`global`]) global projects.

mod global;
mod links;
mod tokens;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use ferry_runtime::UpdateError;
use ferry_types::application::DEFAULT_PROJECT;
use ferry_types::secrets::{
    ClusterSecret, RepoSecret, SECRET_TYPE_CLUSTER, SECRET_TYPE_REPOSITORY,
};
use ferry_types::{AppProject, Application};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};

use super::argo_secrets::entries;
use super::authn::Caller;
use super::authz::{authorize, visible};
use super::error::{ApiError, Code};
use super::state::{AppState, Snapshot};
use crate::rbac::Policy;
use crate::rbac::resources::{CLUSTERS, CREATE, DELETE, GET, PROJECTS, REPOSITORIES, UPDATE};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/projects", get(list).post(create))
        .route(
            "/api/v1/projects/{name}",
            get(get_one).put(update).delete(delete),
        )
        .route("/api/v1/projects/{name}/detailed", get(detailed))
        .route("/api/v1/projects/{name}/syncwindows", get(sync_windows))
        .route("/api/v1/projects/{name}/events", get(events))
        .route("/api/v1/projects/{name}/links", get(links::list))
        .route("/api/v1/projects/{name}/globalprojects", get(global::get))
        .merge(tokens::routes())
}

fn projects(state: &AppState) -> Api<AppProject> {
    Api::namespaced(state.client(), state.namespace())
}

async fn fetch(state: &AppState, name: &str) -> Result<AppProject, ApiError> {
    projects(state)
        .get_opt(name)
        .await
        .map_err(|err| ApiError::kube("reading the AppProject", &err))?
        .ok_or_else(|| ApiError::not_found(format!("project {name} not found")))
}

/// What a failed [`ferry_runtime::update`] of project `name` answers.
fn update_failed(name: &str, err: UpdateError<ApiError>) -> ApiError {
    match err {
        UpdateError::NotFound => ApiError::not_found(format!("project {name} not found")),
        UpdateError::Change(err) => err,
        UpdateError::Kube(err) => ApiError::kube("writing the AppProject", &err),
        UpdateError::KeptChanging { .. } => ApiError::new(
            Code::Aborted,
            format!("project {name} kept changing; try again"),
        ),
    }
}

/// The AppProject in a request body's `project`; errors name the field.
fn project_of(body: &Value) -> Result<AppProject, ApiError> {
    let project = body
        .get("project")
        .filter(|project| !project.is_null())
        .ok_or_else(|| ApiError::invalid_argument("missing payload 'project' in request"))?;
    serde_path_to_error::deserialize(project)
        .map_err(|err| ApiError::invalid_argument(format!("project: {err}")))
}

/// Argo CD's checks on a project being saved: its patterns compile, its sync windows can be
/// evaluated and its roles' policies keep to the project (under `policy`'s match mode).
fn validate(policy: &Policy, project: &AppProject) -> Result<(), ApiError> {
    let invalid = |err: &dyn std::fmt::Display| ApiError::invalid_argument(err.to_string());
    project.policy().map_err(|err| invalid(&err))?;
    project.all_sync_windows().map_err(|err| invalid(&err))?;
    let policy = policy.with_projects(std::slice::from_ref(project));
    match policy.rejected_project_policies().first() {
        Some(rejected) => Err(invalid(rejected)),
        None => Ok(()),
    }
}

/// `GET /api/v1/projects`: the projects the caller may see.
async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    let listed = projects(&state)
        .list(&ListParams::default())
        .await
        .map_err(|err| ApiError::kube("listing AppProjects", &err))?;
    let settings = state.settings();
    let mut items = Vec::new();
    for project in listed.items {
        let name = project.metadata.name.as_deref().unwrap_or_default();
        if visible(&settings, &caller, PROJECTS, GET, name)? {
            items.push(project);
        }
    }
    Ok(Json(json!({
        "metadata": { "resourceVersion": listed.metadata.resource_version },
        "items": items,
    })))
}

/// `POST /api/v1/projects` with `{project, upsert}`: creates a project; one that exists with
/// another spec is only given this one with `upsert` (and `update` permission).
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<Value>,
) -> Result<Json<AppProject>, ApiError> {
    let project = project_of(&body)?;
    let upsert = match body.get("upsert") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(upsert)) => *upsert,
        Some(_) => return Err(ApiError::invalid_argument("upsert must be true or false")),
    };
    let name = project
        .metadata
        .name
        .clone()
        .filter(|name| !name.is_empty())
        .ok_or_else(|| ApiError::invalid_argument("the project has no name"))?;
    let settings = state.settings();
    authorize(&settings, &caller, PROJECTS, CREATE, &name)?;
    validate(settings.policy()?, &project)?;
    // The API server sets the rest of the metadata; token records only come from issuing tokens.
    let new = AppProject {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(state.namespace().to_string()),
            labels: project.metadata.labels.clone(),
            annotations: project.metadata.annotations.clone(),
            finalizers: project.metadata.finalizers.clone(),
            ..ObjectMeta::default()
        },
        status: None,
        ..project
    };
    let api = projects(&state);
    match api.create(&PostParams::default(), &new).await {
        Ok(created) => {
            state
                .audit()
                .record(&caller, &created, "ResourceCreated", "created project")
                .await;
            Ok(Json(created))
        }
        Err(kube::Error::Api(status)) if status.is_already_exists() => {
            if !upsert {
                let existing = fetch(&state, &name).await?;
                return if existing.spec == new.spec {
                    Ok(Json(existing))
                } else {
                    Err(ApiError::already_exists(
                        "existing project spec is different; use upsert flag to force update",
                    ))
                };
            }
            authorize(&settings, &caller, PROJECTS, UPDATE, &name)?;
            let (written, changed) =
                ferry_runtime::update(&api, &name, |current: &mut AppProject| {
                    current.spec = new.spec.clone();
                    Ok(())
                })
                .await
                .map_err(|err| update_failed(&name, err))?;
            if changed {
                state
                    .audit()
                    .record(&caller, &written, "ResourceUpdated", "updated project")
                    .await;
            }
            Ok(Json(written))
        }
        Err(err) => Err(ApiError::kube("creating the AppProject", &err)),
    }
}

/// `GET /api/v1/projects/{name}`.
async fn get_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<AppProject>, ApiError> {
    authorize(&state.settings(), &caller, PROJECTS, GET, &name)?;
    fetch(&state, &name).await.map(Json)
}

/// `GET /api/v1/projects/{name}/events`: the Events of the project (its audit trail).
async fn events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state.settings(), &caller, PROJECTS, GET, &name)?;
    let project = fetch(&state, &name).await?;
    let fields = format!(
        "involvedObject.name={name},involvedObject.uid={},involvedObject.namespace={}",
        project.metadata.uid.as_deref().unwrap_or_default(),
        state.namespace()
    );
    let events: Api<Event> = Api::namespaced(state.client(), state.namespace());
    let listed = events
        .list(&ListParams::default().fields(&fields))
        .await
        .map_err(|err| ApiError::kube("listing events", &err))?;
    Ok(Json(json!({"metadata": {}, "items": listed.items})))
}

/// The clusters a project's destinations name (their servers, else their names).
fn destination_clusters(project: &AppProject) -> Vec<&str> {
    project
        .spec
        .destinations
        .iter()
        .map(|dest| {
            if dest.server.is_empty() {
                dest.name.as_str()
            } else {
                dest.server.as_str()
            }
        })
        .filter(|cluster| !cluster.is_empty())
        .collect()
}

/// Argo CD's checks on what a project update opens up: a new destination needs `clusters,
/// update` on its cluster, a new source repository `repositories, update` on its URL, and a
/// change to the resource kinds allowed `clusters, update` on every destination.
fn authorize_changes(
    settings: &Snapshot,
    caller: &Caller,
    old: &AppProject,
    new: &AppProject,
) -> Result<(), ApiError> {
    let old_clusters = destination_clusters(old);
    for cluster in destination_clusters(new) {
        if !old_clusters.contains(&cluster) {
            authorize(settings, caller, CLUSTERS, UPDATE, cluster)?;
        }
    }
    for repo in &new.spec.source_repos {
        if !old.spec.source_repos.contains(repo) {
            authorize(settings, caller, REPOSITORIES, UPDATE, repo)?;
        }
    }
    let (a, b) = (&old.spec, &new.spec);
    let kinds_changed = a.cluster_resource_whitelist != b.cluster_resource_whitelist
        || a.cluster_resource_blacklist != b.cluster_resource_blacklist
        || a.namespace_resource_whitelist != b.namespace_resource_whitelist
        || a.namespace_resource_blacklist != b.namespace_resource_blacklist;
    if kinds_changed {
        for cluster in destination_clusters(new) {
            authorize(settings, caller, CLUSTERS, UPDATE, cluster)?;
        }
    }
    Ok(())
}

/// `PUT /api/v1/projects/{name}` with `{project}`: gives the project this spec (and labels and
/// annotations, when given). With a `metadata.resourceVersion`, only if the project has not
/// changed since. Token records stay as they are.
async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<AppProject>, ApiError> {
    let mut given = project_of(&body)?;
    match given.metadata.name.as_deref() {
        None | Some("") => given.metadata.name = Some(name.clone()),
        Some(other) if other == name => {}
        Some(_) => {
            return Err(ApiError::invalid_argument(
                "the name of the project in the body is not the one of the path",
            ));
        }
    }
    let settings = state.settings();
    authorize(&settings, &caller, PROJECTS, UPDATE, &name)?;
    validate(settings.policy()?, &given)?;
    authorize_changes(&settings, &caller, &fetch(&state, &name).await?, &given)?;
    let expected_version = given.metadata.resource_version.clone();
    let (written, changed) =
        ferry_runtime::update(&projects(&state), &name, |current: &mut AppProject| {
            if expected_version.is_some() && current.metadata.resource_version != expected_version {
                return Err(ApiError::new(
                    Code::Aborted,
                    format!("project {name} has changed since it was read; read it again"),
                ));
            }
            current.spec = given.spec.clone();
            if let Some(labels) = &given.metadata.labels {
                current.metadata.labels = Some(labels.clone());
            }
            if let Some(annotations) = &given.metadata.annotations {
                current.metadata.annotations = Some(annotations.clone());
            }
            Ok(())
        })
        .await
        .map_err(|err| update_failed(&name, err))?;
    if changed {
        state
            .audit()
            .record(&caller, &written, "ResourceUpdated", "updated project")
            .await;
    }
    Ok(Json(written))
}

/// `DELETE /api/v1/projects/{name}`: refused for `default` and while Applications use the
/// project, as in Argo CD.
async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if name == DEFAULT_PROJECT {
        return Err(ApiError::invalid_argument(format!(
            "name '{name}' is reserved and cannot be deleted"
        )));
    }
    authorize(&state.settings(), &caller, PROJECTS, DELETE, &name)?;
    let project = fetch(&state, &name).await?;
    let apps: Api<Application> = Api::namespaced(state.client(), state.namespace());
    let using = apps
        .list(&ListParams::default())
        .await
        .map_err(|err| ApiError::kube("listing Applications", &err))?
        .items
        .iter()
        .filter(|app| app.spec.project == name)
        .count();
    if using > 0 {
        return Err(ApiError::failed_precondition(format!(
            "project is referenced by {using} applications"
        )));
    }
    match projects(&state)
        .delete(&name, &DeleteParams::default())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.is_not_found() => {
            return Err(ApiError::not_found(format!("project {name} not found")));
        }
        Err(err) => return Err(ApiError::kube("deleting the AppProject", &err)),
    }
    state
        .audit()
        .record(&caller, &project, "ResourceDeleted", "deleted project")
        .await;
    Ok(Json(json!({})))
}

/// `GET /api/v1/projects/{name}/detailed`: the project with the repositories and clusters that
/// belong to it (without credentials), and its global projects.
async fn detailed(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state.settings(), &caller, PROJECTS, GET, &name)?;
    let project = fetch(&state, &name).await?;
    let global_projects = global::of(&state, &project).await?;
    let repositories: Vec<Value> =
        entries(&state, &[SECRET_TYPE_REPOSITORY], RepoSecret::from_secret)
            .await?
            .iter()
            .filter(|(_, repo)| repo.project == name)
            .map(|(_, repo)| repo.api_view())
            .collect();
    let clusters: Vec<Value> = entries(&state, &[SECRET_TYPE_CLUSTER], ClusterSecret::from_secret)
        .await?
        .iter()
        .filter(|(_, cluster)| cluster.project == name)
        .map(|(_, cluster)| cluster.api_view())
        .collect();
    Ok(Json(json!({
        "project": project,
        "globalProjects": global_projects,
        "repositories": repositories,
        "clusters": clusters,
    })))
}

/// `GET /api/v1/projects/{name}/syncwindows`: the project's windows active now, whichever
/// Applications they apply to.
async fn sync_windows(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state.settings(), &caller, PROJECTS, GET, &name)?;
    let project = fetch(&state, &name).await?;
    let windows = project
        .all_sync_windows()
        .map_err(|err| ApiError::failed_precondition(err.to_string()))?;
    Ok(Json(json!({ "windows": windows.active(Timestamp::now()) })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(spec: &str) -> AppProject {
        serde_yaml::from_str(&format!("metadata: {{name: team-a}}\nspec: {spec}")).unwrap()
    }

    #[test]
    fn bodies_name_what_is_wrong_in_the_project() {
        let err = project_of(&json!({})).unwrap_err();
        assert_eq!(err.message, "missing payload 'project' in request");
        let err = project_of(
            &json!({"project": {"metadata": {"name": "x"}, "spec": {"sourceRepos": "*"}}}),
        )
        .unwrap_err();
        assert!(
            err.message.starts_with("project: spec.sourceRepos"),
            "{}",
            err.message
        );
        let ok = project_of(&json!({"project": {"metadata": {"name": "x"}, "spec": {}}})).unwrap();
        assert_eq!(ok.metadata.name.as_deref(), Some("x"));
    }

    #[test]
    fn projects_are_saved_only_if_argo_cd_would_accept_them() {
        let policy = Policy::from_config_map_data(&Default::default()).unwrap();
        let check = |spec: &str| validate(&policy, &project(spec)).map_err(|err| err.message);
        check("{sourceRepos: ['*'], roles: [{name: ci, policies: ['p, proj:team-a:ci, applications, sync, team-a/*, allow']}]}")
            .unwrap();
        let err = check("{roles: [{name: ci, policies: ['p, proj:team-a:ci, applications, sync, team-b/*, allow']}]}")
            .unwrap_err();
        assert!(err.contains("AppProject team-a role \"ci\""), "{err}");
        let err =
            check("{syncWindows: [{kind: deny, schedule: '@daily', duration: 1h}]}").unwrap_err();
        assert!(err.contains("sync window 0"), "{err}");
        let err = check("{sourceRepos: ['[']}").unwrap_err();
        assert!(err.contains("spec.sourceRepos[0]"), "{err}");
    }

    #[test]
    fn destinations_name_their_server_or_else_their_cluster() {
        let p = project(
            "{destinations: [{server: 'https://a', namespace: x}, {name: prod, namespace: y}, {namespace: z}]}",
        );
        assert_eq!(destination_clusters(&p), ["https://a", "prod"]);
    }
}
