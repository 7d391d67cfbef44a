//! The clusters Applications deploy to, as the API server needs them: to check a new or changed
//! Application against its project, and to read, change and delete its live resources, their
//! events and their pods' logs on the cluster they live in.

use ferry_types::secrets::{ClusterSecret, IN_CLUSTER_SERVER, SECRET_TYPE_CLUSTER, store};
use ferry_types::{AppProject, Application};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::config::KubeConfigOptions;

use super::error::ApiError;
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
    let project: AppProject = state
        .settings()
        .project(app.project())
        .cloned()
        .ok_or_else(|| {
            ApiError::invalid_argument(format!(
                "application {name} references project {} which does not exist",
                app.project()
            ))
        })?;
    let policy = project
        .policy()
        .map_err(|err| ApiError::invalid_argument(err.to_string()))?;
    let cluster = cluster_of(state, app).await?;
    policy
        .check_app(app, &cluster.server, &cluster.name)
        .map_err(|err| ApiError::invalid_argument(format!("application {name}: {err}")))
}

/// A client for the cluster `app` deploys to.
pub async fn client_for(state: &AppState, app: &Application) -> Result<kube::Client, ApiError> {
    let cluster = cluster_of(state, app).await?;
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
