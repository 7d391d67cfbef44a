//! The resources and actions Argo CD's API checks, and how a request's object names its project.

pub const APPLICATIONS: &str = "applications";
pub const APPLICATIONSETS: &str = "applicationsets";
pub const CLUSTERS: &str = "clusters";
pub const REPOSITORIES: &str = "repositories";
pub const WRITE_REPOSITORIES: &str = "write-repositories";
pub const PROJECTS: &str = "projects";
pub const ACCOUNTS: &str = "accounts";
pub const CERTIFICATES: &str = "certificates";
pub const GPGKEYS: &str = "gpgkeys";
pub const LOGS: &str = "logs";
pub const EXEC: &str = "exec";
pub const EXTENSIONS: &str = "extensions";
// ferry's own, for Argo Workflows' API (Argo CD has none): objects are `<namespace>/<name>`
// (a ClusterWorkflowTemplate's just `<name>`; an event's `<namespace>/<discriminator>`).
pub const WORKFLOWS: &str = "workflows";
pub const WORKFLOW_TEMPLATES: &str = "workflowtemplates";
pub const CLUSTER_WORKFLOW_TEMPLATES: &str = "clusterworkflowtemplates";
pub const CRON_WORKFLOWS: &str = "cronworkflows";
/// `get`: list WorkflowEventBindings; `create`: send an event to them.
pub const WORKFLOW_EVENTS: &str = "workflowevents";

/// Every resource a request may name.
pub const RESOURCES: &[&str] = &[
    APPLICATIONS,
    APPLICATIONSETS,
    CLUSTERS,
    REPOSITORIES,
    WRITE_REPOSITORIES,
    PROJECTS,
    ACCOUNTS,
    CERTIFICATES,
    GPGKEYS,
    LOGS,
    EXEC,
    EXTENSIONS,
    WORKFLOWS,
    WORKFLOW_TEMPLATES,
    CLUSTER_WORKFLOW_TEMPLATES,
    CRON_WORKFLOWS,
    WORKFLOW_EVENTS,
];

pub const GET: &str = "get";
pub const CREATE: &str = "create";
pub const UPDATE: &str = "update";
pub const DELETE: &str = "delete";
pub const SYNC: &str = "sync";
pub const OVERRIDE: &str = "override";
/// `action/<group>/<kind>/<action>`: a resource action such as `action/apps/Deployment/restart`.
pub const ACTION: &str = "action";
pub const INVOKE: &str = "invoke";

/// Resources whose objects are `<project>/<name>` (or `<project>/<namespace>/<name>`).
pub const PROJECT_SCOPED: &[&str] = &[
    APPLICATIONS,
    APPLICATIONSETS,
    CLUSTERS,
    REPOSITORIES,
    LOGS,
    EXEC,
];

/// The project a request is about, whose AppProject roles then take part in the decision: the
/// first segment of a project-scoped object, or the object itself for `projects`.
pub fn request_project<'a>(resource: &str, object: &'a str) -> Option<&'a str> {
    if resource == PROJECTS {
        return Some(object).filter(|name| !name.is_empty());
    }
    if !PROJECT_SCOPED.contains(&resource) {
        return None;
    }
    object
        .split_once('/')
        .map(|(project, _)| project)
        .filter(|project| !project.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_come_from_scoped_objects_and_project_names() {
        assert_eq!(
            request_project(APPLICATIONS, "team-a/guestbook"),
            Some("team-a")
        );
        assert_eq!(
            request_project(APPLICATIONS, "team-a/ns/guestbook"),
            Some("team-a")
        );
        assert_eq!(request_project(LOGS, "team-a/guestbook"), Some("team-a"));
        assert_eq!(
            request_project(REPOSITORIES, "team-a/https://git.example.com/x"),
            Some("team-a")
        );
        assert_eq!(request_project(PROJECTS, "team-a"), Some("team-a"));
        assert_eq!(request_project(APPLICATIONS, "guestbook"), None);
        assert_eq!(request_project(APPLICATIONS, "/guestbook"), None);
        assert_eq!(request_project(PROJECTS, ""), None);
        assert_eq!(request_project(CERTIFICATES, "team-a/x"), None);
        assert_eq!(request_project(ACCOUNTS, "alice"), None);
    }
}
