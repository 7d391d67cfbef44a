//! What Argo CD checks of an Application against its AppProject before comparing or storing it.

use ferry_types::project::ProjectPolicy;
use ferry_types::{AppProject, Application};

/// Checks `app` against `project` on its resolved destination cluster (`cluster_server`,
/// `cluster_name`, and the project its Secret names, empty for none): every source repository
/// and the destination permitted, and with `permitOnlyProjectScopedClusters` only a cluster of
/// the project. The error is Argo CD's InvalidSpecError message; the policy is returned for
/// the per-resource checks of the comparison.
pub fn check_project(
    project: &AppProject,
    app: &Application,
    cluster_server: &str,
    cluster_name: &str,
    cluster_project: &str,
) -> Result<ProjectPolicy, String> {
    let policy = project.policy().map_err(|err| err.to_string())?;
    policy.check_app(app, cluster_server, cluster_name)?;
    project.check_cluster_scope(app, cluster_project)?;
    Ok(policy)
}

/// An app outside the control namespace may use its project only when the project lists the
/// app's namespace in `sourceNamespaces`; the error is Argo CD's `ErrProjectNotPermitted`.
pub fn check_app_namespace(
    policy: &ProjectPolicy,
    app: &Application,
    control_namespace: &str,
) -> Result<(), String> {
    let namespace = app.metadata.namespace.as_deref().unwrap_or_default();
    if policy.is_app_namespace_permitted(namespace, control_namespace) {
        return Ok(());
    }
    Err(format!(
        "application '{}' in namespace '{namespace}' is not permitted to use project '{}'",
        app.metadata.name.as_deref().unwrap_or_default(),
        app.project()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_destination_and_cluster_scope_are_checked() {
        let project: AppProject = serde_yaml::from_str(
            "metadata: {name: team}\nspec: {sourceRepos: ['https://git.example.com/*'], \
             destinations: [{server: '*', namespace: web}], permitOnlyProjectScopedClusters: true}",
        )
        .unwrap();
        let app = |repo: &str, namespace: &str| -> Application {
            serde_yaml::from_str(&format!(
                "metadata: {{name: web}}\nspec: {{project: team, source: {{repoURL: '{repo}', \
                 path: p}}, destination: {{server: 'https://c', namespace: {namespace}}}}}"
            ))
            .unwrap()
        };
        let ok = app("https://git.example.com/apps", "web");
        assert!(check_project(&project, &ok, "https://c", "c", "team").is_ok());
        let err = check_project(&project, &ok, "https://c", "c", "").unwrap_err();
        assert!(
            err.contains("do not match any of the allowed destinations"),
            "{err}"
        );
        let foreign = app("https://github.com/other/repo", "web");
        let err = check_project(&project, &foreign, "https://c", "c", "team").unwrap_err();
        assert_eq!(
            err,
            "application repo https://github.com/other/repo is not permitted in project 'team'"
        );
        let elsewhere = app("https://git.example.com/apps", "kube-system");
        assert!(check_project(&project, &elsewhere, "https://c", "c", "team").is_err());
    }

    #[test]
    fn an_app_outside_the_control_namespace_needs_the_projects_source_namespaces() {
        let project: AppProject =
            serde_yaml::from_str("metadata: {name: team}\nspec: {sourceNamespaces: ['team-*']}")
                .unwrap();
        let policy = project.policy().unwrap();
        let app = |namespace: &str| -> Application {
            serde_yaml::from_str(&format!(
                "metadata: {{name: web, namespace: {namespace}}}\nspec: {{project: team}}"
            ))
            .unwrap()
        };
        assert!(check_app_namespace(&policy, &app("argocd"), "argocd").is_ok());
        assert!(check_app_namespace(&policy, &app("team-a"), "argocd").is_ok());
        assert_eq!(
            check_app_namespace(&policy, &app("other"), "argocd").unwrap_err(),
            "application 'web' in namespace 'other' is not permitted to use project 'team'"
        );
    }
}
