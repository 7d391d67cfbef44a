//! Argo CD's built-in `default` AppProject, created at start.

use ferry_types::AppProject;
use kube::Api;
use kube::api::PostParams;

/// Creates the `default` project in `namespace` unless it exists, as Argo CD's server and
/// controller do at start; true if it was created.
pub async fn ensure_default_project(client: &kube::Client, namespace: &str) -> kube::Result<bool> {
    let projects: Api<AppProject> = Api::namespaced(client.clone(), namespace);
    let created = projects
        .create(
            &PostParams::default(),
            &AppProject::default_project(namespace),
        )
        .await;
    match created {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(false),
        Err(err) => Err(err),
    }
}
