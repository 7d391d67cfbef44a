//! The clusters Applications deploy to, as the API server needs them: to check a new or changed
//! Application against its project, and to read, change and delete its live resources, their
//! events and their pods' logs on the cluster they live in.

use ferry_appstate::check_project;
use ferry_runtime::secret_store as store;
use ferry_types::application::ApplicationDestination;
use ferry_types::project::ProjectPolicy;
use ferry_types::secrets::{ClusterSecret, IN_CLUSTER_SERVER, SECRET_TYPE_CLUSTER};
use ferry_types::{AppProject, Application};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::config::KubeConfigOptions;

use super::error::{ApiError, Code};
use super::state::AppState;

/// The registered cluster `app`'s destination names.
pub async fn cluster_of(state: &AppState, app: &Application) -> Result<ClusterSecret, ApiError> {
    let secrets: Api<Secret> = Api::namespaced(state.client(), state.namespace());
    let listed = store::list_typed(&secrets, &[SECRET_TYPE_CLUSTER])
        .await
        .map_err(|err| ApiError::kube("listing the clusters", &err))?;
    let clusters: Vec<ClusterSecret> = listed
        .iter()
        .filter_map(|secret| ClusterSecret::from_secret(secret).ok())
        .collect();
    ClusterSecret::resolve(&clusters, &app.spec.destination).map_err(|err| {
        ApiError::invalid_argument(format!(
            "application {}: {err}",
            app.metadata.name.as_deref().unwrap_or_default()
        ))
    })
}

/// What Argo CD's API server checks before it writes an Application: its project exists and
/// permits its sources and its (registered) destination.
pub async fn validate(state: &AppState, app: &Application) -> Result<(), ApiError> {
    let name = app.metadata.name.as_deref().unwrap_or_default();
    if app.sources().is_empty() {
        return Err(ApiError::invalid_argument(format!(
            "application {name}: spec.source or spec.sources is required"
        )));
    }
    permitted_destination(state, app, ApiError::invalid_argument)
        .await
        .map(drop)
}

/// The cluster of `app`'s destination, once its project is known to exist and to permit the
/// app's sources and destination (with `permitOnlyProjectScopedClusters`, only a cluster whose
/// Secret names the project); `refused` makes the error of a failed check.
async fn permitted_destination(
    state: &AppState,
    app: &Application,
    refused: fn(String) -> ApiError,
) -> Result<(ClusterSecret, ProjectPolicy), ApiError> {
    let name = app.metadata.name.as_deref().unwrap_or_default();
    let project: AppProject = state
        .settings()
        .project(app.project())
        .cloned()
        .ok_or_else(|| {
            refused(format!(
                "application {name} references project {} which does not exist",
                app.project()
            ))
        })?;
    let policy = project.policy().map_err(|err| refused(err.to_string()))?;
    ferry_appstate::check_app_namespace(&policy, app, state.namespace()).map_err(refused)?;
    let cluster = cluster_of(state, app).await?;
    // The controller's and the CLI's check, so the three agree on what a project permits.
    let policy = check_project(
        &project,
        app,
        &cluster.server,
        &cluster.name,
        &cluster.project,
    )
    .map_err(|err| refused(format!("application {name}: {err}")))?;
    Ok((cluster, policy))
}

/// A refusal that says why: the caller may already read the app, so the reason leaks nothing.
fn denied(message: String) -> ApiError {
    ApiError::new(Code::PermissionDenied, message)
}

/// A live object of an Application, as the resource, events and logs endpoints name it.
pub struct LiveObject<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// A client for the cluster `app` deploys to, for reaching `object` there: only while the app's
/// project exists and permits the app's destination, and the object's kind and namespace (what
/// a sync could have put there). An app written before its project was narrowed, or whose
/// status lists what the project no longer allows, reaches nothing.
pub async fn client_for(
    state: &AppState,
    app: &Application,
    object: &LiveObject<'_>,
) -> Result<kube::Client, ApiError> {
    let (cluster, policy) = permitted_destination(state, app, denied).await?;
    let destination = ApplicationDestination {
        server: cluster.server.clone(),
        name: cluster.name.clone(),
        ..Default::default()
    };
    let permitted = if object.kind.is_empty() {
        object.namespace.is_empty()
            || policy.is_destination_permitted(&ApplicationDestination {
                namespace: object.namespace.to_string(),
                ..destination
            })
    } else {
        policy.is_resource_permitted(
            object.group,
            object.kind,
            object.name,
            object.namespace,
            &destination,
        )
    };
    if !permitted {
        return Err(denied(format!(
            "application {}: project {} does not permit {} {}/{} on {}",
            app.metadata.name.as_deref().unwrap_or_default(),
            app.project(),
            if object.kind.is_empty() {
                "objects"
            } else {
                object.kind
            },
            object.namespace,
            object.name,
            cluster.server
        )));
    }
    if cluster.server == IN_CLUSTER_SERVER {
        return Ok(state.client());
    }
    let unreachable =
        |err: String| ApiError::unavailable(format!("cluster {}: {err}", cluster.server));
    let kubeconfig = cluster.to_kubeconfig().map_err(unreachable)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|err| unreachable(err.to_string()))?;
    kube::Client::try_from(config).map_err(|err| unreachable(err.to_string()))
}
