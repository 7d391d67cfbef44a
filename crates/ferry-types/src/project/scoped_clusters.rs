//! `permitOnlyProjectScopedClusters: true`: an Application of the project may deploy only to
//! clusters that belong to the project, i.e. whose cluster Secret says `project: <project>`.
//! The in-cluster default without a Secret belongs to no project, so it is not permitted then.
//! Argo CD checks this after the destination patterns matched and answers with the same
//! InvalidSpecError, so the message here is that one.

use super::AppProject;
use crate::Application;

impl AppProject {
    /// Whether a cluster that belongs to `cluster_project` (its Secret's `project`, empty for
    /// none) may be deployed to: always, unless the project permits only its own clusters.
    pub fn permits_cluster(&self, cluster_project: &str) -> bool {
        let name = self.metadata.name.as_deref().unwrap_or_default();
        !self.spec.permit_only_project_scoped_clusters
            || (!cluster_project.is_empty() && cluster_project == name)
    }

    /// [`Self::permits_cluster`] for `app`'s resolved destination cluster, failing with Argo
    /// CD's message for a destination its project does not permit. Call it after
    /// [`super::ProjectPolicy::check_app`], which checks the destination patterns.
    pub fn check_cluster_scope(
        &self,
        app: &Application,
        cluster_project: &str,
    ) -> Result<(), String> {
        if self.permits_cluster(cluster_project) {
            return Ok(());
        }
        let dest = &app.spec.destination;
        Err(format!(
            "application destination server '{}' and namespace '{}' do not match any of the \
             allowed destinations in project '{}'",
            if dest.server.is_empty() {
                &dest.name
            } else {
                &dest.server
            },
            dest.namespace,
            app.project()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(yaml_spec: &str) -> AppProject {
        serde_yaml::from_str(&format!("metadata: {{name: team}}\nspec: {yaml_spec}")).unwrap()
    }

    fn app() -> Application {
        serde_yaml::from_str(
            "metadata: {name: web}\nspec: {project: team, source: {repoURL: 'https://x/r'}, \
             destination: {server: 'https://kubernetes.default.svc', namespace: web}}",
        )
        .unwrap()
    }

    #[test]
    fn only_the_projects_own_clusters_when_asked() {
        let scoped = project("{permitOnlyProjectScopedClusters: true}");
        assert!(scoped.permits_cluster("team"));
        assert!(!scoped.permits_cluster(""), "in-cluster without a Secret");
        assert!(!scoped.permits_cluster("other"));
        assert_eq!(
            scoped.check_cluster_scope(&app(), "").unwrap_err(),
            "application destination server 'https://kubernetes.default.svc' and namespace 'web' \
             do not match any of the allowed destinations in project 'team'"
        );
        scoped.check_cluster_scope(&app(), "team").unwrap();
    }

    #[test]
    fn every_cluster_without_the_flag() {
        let open = project("{}");
        assert!(open.permits_cluster(""));
        assert!(open.permits_cluster("other"));
        open.check_cluster_scope(&app(), "").unwrap();
    }
}
