//! The OpenAPI 3.1 description of the API, served at `/api/openapi.json` (and at Argo CD's
//! `/swagger.json`). Applications and AppProjects are described by the schemas of their CRDs;
//! a test checks that every route the router serves is described here and the other way round.

use std::sync::OnceLock;

use axum::Json;
use serde_json::{Map, Value, json};

/// One operation: method, path (axum's syntax, which OpenAPI shares), summary, tag, whether it
/// needs a token, and the schemas of its request and answer bodies.
struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    tag: &'static str,
    authenticated: bool,
    body: Option<&'static str>,
    answer: &'static str,
}

const fn op(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    answer: &'static str,
) -> Op {
    Op {
        method,
        path,
        summary,
        tag,
        authenticated: true,
        body,
        answer,
    }
}

const fn public(op: Op) -> Op {
    Op {
        authenticated: false,
        ..op
    }
}

const APPS: &str = "/api/v1/applications";

const OPERATIONS: &[Op] = &[
    public(op(
        "get",
        "/api/version",
        "version",
        "The server's version",
        None,
        "Object",
    )),
    public(op(
        "get",
        "/healthz",
        "meta",
        "Readiness: 200 once the applications are listed",
        None,
        "Object",
    )),
    public(op(
        "post",
        "/api/v1/session",
        "session",
        "Log in with a username and password; answers a session token",
        Some("Object"),
        "Object",
    )),
    public(op(
        "delete",
        "/api/v1/session",
        "session",
        "Log out",
        None,
        "Object",
    )),
    public(op(
        "get",
        "/api/v1/session/userinfo",
        "session",
        "Who the caller is",
        None,
        "Object",
    )),
    op(
        "get",
        "/api/v1/settings/plugins",
        "settings",
        "The config-management plugins sources may name",
        None,
        "Object",
    ),
    public(op(
        "get",
        "/api/v1/settings",
        "settings",
        "Public settings: URL, SSO configuration, resource overrides",
        None,
        "Object",
    )),
    public(op(
        "get",
        "/api/badge",
        "settings",
        "An SVG badge of an app's or projects' health and sync (argocd-cm statusbadge.enabled)",
        None,
        "Object",
    )),
    public(op(
        "get",
        "/auth/login",
        "session",
        "Start an SSO login (redirects to the provider)",
        None,
        "Object",
    )),
    public(op(
        "get",
        "/auth/callback",
        "session",
        "Finish an SSO login (the provider redirects here)",
        None,
        "Object",
    )),
    public(op(
        "get",
        "/auth/logout",
        "session",
        "End an SSO session",
        None,
        "Object",
    )),
    public(op(
        "post",
        "/api/webhook",
        "webhook",
        "A Git provider's push event (signed)",
        Some("Object"),
        "Object",
    )),
    op(
        "get",
        "/api/v1/account",
        "account",
        "List accounts",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/account/{name}",
        "account",
        "Get an account",
        None,
        "Object",
    ),
    op(
        "put",
        "/api/v1/account/password",
        "account",
        "Change a password",
        Some("Object"),
        "Object",
    ),
    op(
        "get",
        "/api/v1/account/can-i/{resource}/{action}/{object}",
        "account",
        "Whether the caller may do something",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/account/{name}/token",
        "account",
        "Create an API token",
        Some("Object"),
        "Object",
    ),
    op(
        "delete",
        "/api/v1/account/{name}/token/{id}",
        "account",
        "Delete an API token",
        None,
        "Object",
    ),
    op(
        "get",
        APPS,
        "applications",
        "List applications (filters: name, projects, selector, repo, sync, health)",
        None,
        "ApplicationList",
    ),
    op(
        "post",
        APPS,
        "applications",
        "Create an application (upsert, validate)",
        Some("Application"),
        "Application",
    ),
    op(
        "get",
        "/api/v1/applications/{name}",
        "applications",
        "Get an application (refresh=normal|hard)",
        None,
        "Application",
    ),
    op(
        "put",
        "/api/v1/applications/{name}",
        "applications",
        "Update an application",
        Some("Application"),
        "Application",
    ),
    op(
        "patch",
        "/api/v1/applications/{name}",
        "applications",
        "Patch an application (JSON or merge patch)",
        Some("Object"),
        "Application",
    ),
    op(
        "delete",
        "/api/v1/applications/{name}",
        "applications",
        "Delete an application (cascade, propagationPolicy)",
        None,
        "Object",
    ),
    op(
        "put",
        "/api/v1/applications/{name}/spec",
        "applications",
        "Update an application's spec",
        Some("Object"),
        "Object",
    ),
    op(
        "post",
        "/api/v1/applications/{name}/sync",
        "applications",
        "Sync an application",
        Some("Object"),
        "Application",
    ),
    op(
        "post",
        "/api/v1/applications/{name}/rollback",
        "applications",
        "Roll back to a deployment of the history",
        Some("Object"),
        "Application",
    ),
    op(
        "delete",
        "/api/v1/applications/{name}/operation",
        "applications",
        "Terminate the running operation",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/applications/{name}/managed-resources",
        "applications",
        "Managed resources with their target, live and predicted states",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/applications/{name}/syncwindows",
        "applications",
        "The sync windows that apply to the app, those active now, and whether it may sync",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/applications/{name}/resource-tree",
        "applications",
        "The tree of live resources",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/applications/{name}/manifests",
        "applications",
        "Rendered manifests (revision)",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/applications/{name}/links",
        "applications",
        "The app's deep links from argocd-cm's application.links whose condition holds",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/applications/{name}/resource/links",
        "applications",
        "A resource's deep links from argocd-cm's resource.links (namespace, resourceName, group, version, kind)",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/certificates",
        "certificates",
        "Trusted ssh known hosts and TLS certificates (hostNamePattern, certType, certSubType)",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/certificates",
        "certificates",
        "Add ssh known hosts or TLS certificates (upsert to replace a changed entry)",
        Some("Object"),
        "Object",
    ),
    op(
        "delete",
        "/api/v1/certificates",
        "certificates",
        "Remove the entries matching hostNamePattern, certType and certSubType",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/gpgkeys",
        "gpgkeys",
        "The GnuPG public keys of argocd-gpg-keys-cm (ID, fingerprint, type, owner, trust)",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/gpgkeys",
        "gpgkeys",
        "Add GnuPG public keys to argocd-gpg-keys-cm (those configured already are skipped)",
        Some("Object"),
        "Object",
    ),
    op(
        "delete",
        "/api/v1/gpgkeys",
        "gpgkeys",
        "Remove one GnuPG public key (keyID)",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/gpgkeys/{key_id}",
        "gpgkeys",
        "One GnuPG public key, with its ASCII-armored data",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/applications/{name}/revisions/{revision}/metadata",
        "applications",
        "Author, date, message and tags of a commit of one of the app's sources (sourceIndex, versionId)",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/applications/manifestsWithFiles",
        "applications",
        "The app's source rendered from uploaded files: JSON lines, a query (name, checksum, appNamespace) then base64 chunks of a gzip'd tar",
        Some("Object"),
        "Object",
    ),
    op(
        "get",
        "/api/v1/applications/{name}/server-side-diff",
        "applications",
        "Live states and target manifests compared through a server-side apply dry run (targetManifests; liveResources in a JSON body)",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/applications/{name}/revisions/{revision}/chartdetails",
        "applications",
        "Description, home and maintainers of a version of the chart of one of the app's sources (sourceIndex, versionId)",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/applications/{name}/revisions/{revision}/ocimetadata",
        "applications",
        "The OCI manifest annotations (created, authors, docs, source, version, description) of a tag or digest of one of the app's sources (sourceIndex, versionId)",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/applications/{name}/resource",
        "applications",
        "One live resource (Secret values masked)",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/applications/{name}/resource",
        "applications",
        "Patch one live resource",
        Some("Object"),
        "Object",
    ),
    op(
        "delete",
        "/api/v1/applications/{name}/resource",
        "applications",
        "Delete one live resource",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/applications/{name}/events",
        "applications",
        "Events of the application or of one of its resources",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/applications/{name}/pods/{pod}/logs",
        "applications",
        "A pod's log (server-sent events)",
        None,
        "Stream",
    ),
    op(
        "get",
        "/api/v1/applications/{name}/logs",
        "applications",
        "The logs of the app's pods, merged by time (server-sent events)",
        None,
        "Stream",
    ),
    op(
        "get",
        "/api/v1/applications/{name}/resource/actions",
        "applications",
        "The actions a resource offers (built-in and argocd-cm Lua actions)",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/applications/{name}/resource/actions",
        "applications",
        "Run an action on a resource",
        Some("Object"),
        "Object",
    ),
    op(
        "post",
        "/api/v1/applications/{name}/resource/actions/v2",
        "applications",
        "Run an action on a resource, with parameters",
        Some("Object"),
        "Object",
    ),
    op(
        "get",
        "/api/v1/stream/applications/{name}/resource-tree",
        "applications",
        "The tree of live resources, then each change (server-sent events)",
        None,
        "Stream",
    ),
    op(
        "get",
        "/api/v1/stream/applications",
        "applications",
        "Changes to applications (server-sent events)",
        None,
        "Stream",
    ),
    op(
        "get",
        "/api/v1/applicationsets",
        "applicationsets",
        "List ApplicationSets",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/applicationsets",
        "applicationsets",
        "Create an ApplicationSet (upsert, dryRun)",
        Some("ApplicationSet"),
        "ApplicationSet",
    ),
    op(
        "post",
        "/api/v1/applicationsets/generate",
        "applicationsets",
        "The Applications an ApplicationSet would generate",
        Some("Object"),
        "Object",
    ),
    op(
        "get",
        "/api/v1/applicationsets/{name}",
        "applicationsets",
        "Get an ApplicationSet",
        None,
        "ApplicationSet",
    ),
    op(
        "delete",
        "/api/v1/applicationsets/{name}",
        "applicationsets",
        "Delete an ApplicationSet",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/applicationsets/{name}/resource-tree",
        "applicationsets",
        "An ApplicationSet's generated Applications",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/applicationsets/{name}/events",
        "applicationsets",
        "An ApplicationSet's Events",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/stream/applicationsets",
        "applicationsets",
        "ApplicationSet changes (Server-Sent Events)",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/projects",
        "projects",
        "List projects",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/projects",
        "projects",
        "Create a project",
        Some("Object"),
        "AppProject",
    ),
    op(
        "get",
        "/api/v1/projects/{name}",
        "projects",
        "Get a project",
        None,
        "AppProject",
    ),
    op(
        "put",
        "/api/v1/projects/{name}",
        "projects",
        "Update a project",
        Some("Object"),
        "AppProject",
    ),
    op(
        "delete",
        "/api/v1/projects/{name}",
        "projects",
        "Delete a project",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/projects/{name}/events",
        "projects",
        "Events of the project: its audit trail",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/projects/{name}/detailed",
        "projects",
        "A project with its repositories and clusters",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/projects/{name}/links",
        "projects",
        "The deep links of a project (argocd-cm project.links)",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/projects/{name}/globalprojects",
        "projects",
        "The global projects of a project (argocd-cm globalProjects)",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/projects/{name}/syncwindows",
        "projects",
        "A project's sync windows",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/projects/{name}/roles/{role}/token",
        "projects",
        "Create a project role token",
        Some("Object"),
        "Object",
    ),
    op(
        "delete",
        "/api/v1/projects/{name}/roles/{role}/token/{iat}",
        "projects",
        "Delete a project role token",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/repositories",
        "repositories",
        "List repositories (credentials never answered)",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/repositories",
        "repositories",
        "Add a repository",
        Some("Object"),
        "Object",
    ),
    op(
        "get",
        "/api/v1/repositories/{url}",
        "repositories",
        "Get a repository",
        None,
        "Object",
    ),
    op(
        "put",
        "/api/v1/repositories/{url}",
        "repositories",
        "Update a repository",
        Some("Object"),
        "Object",
    ),
    op(
        "delete",
        "/api/v1/repositories/{url}",
        "repositories",
        "Remove a repository",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/repositories/{url}/validate",
        "repositories",
        "Test access to a repository with the credentials given (nothing is saved)",
        Some("Object"),
        "Object",
    ),
    op(
        "get",
        "/api/v1/repositories/{url}/refs",
        "repositories",
        "The branches and tags of a repository (appProject), listed with the saved credentials",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/repositories/{url}/oci-tags",
        "repositories",
        "The tags of an OCI repository (appProject), listed with the saved credentials",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/repositories/{url}/helmcharts",
        "repositories",
        "The charts of a Helm repository's index and their versions (appProject), fetched \
         with the saved credentials",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/repositories/{url}/apps",
        "repositories",
        "The directories of a repository at a revision holding a Helm chart or a kustomization \
         (appName, appProject: the caller may create or update that app)",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/repositories/{url}/appdetails",
        "repositories",
        "A Git source's type, Helm value files and parameters, or Kustomize images",
        Some("Object"),
        "Object",
    ),
    op(
        "get",
        "/api/v1/repocreds",
        "repositories",
        "List credential templates",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/repocreds",
        "repositories",
        "Add a credential template",
        Some("Object"),
        "Object",
    ),
    op(
        "get",
        "/api/v1/repocreds/{url}",
        "repositories",
        "Get a credential template",
        None,
        "Object",
    ),
    op(
        "put",
        "/api/v1/repocreds/{url}",
        "repositories",
        "Update a credential template",
        Some("Object"),
        "Object",
    ),
    op(
        "delete",
        "/api/v1/repocreds/{url}",
        "repositories",
        "Remove a credential template",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/write-repositories",
        "repositories",
        "List write repositories (credentials to push with; never answered)",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/write-repositories",
        "repositories",
        "Add a write repository (its credentials tested first)",
        Some("Object"),
        "Object",
    ),
    op(
        "get",
        "/api/v1/write-repositories/{url}",
        "repositories",
        "Get a write repository",
        None,
        "Object",
    ),
    op(
        "put",
        "/api/v1/write-repositories/{url}",
        "repositories",
        "Update a write repository",
        Some("Object"),
        "Object",
    ),
    op(
        "delete",
        "/api/v1/write-repositories/{url}",
        "repositories",
        "Remove a write repository",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/write-repositories/{url}/validate",
        "repositories",
        "Test access to a write repository with the credentials given (nothing is saved)",
        Some("Object"),
        "Object",
    ),
    op(
        "get",
        "/api/v1/write-repocreds",
        "repositories",
        "List write credential templates",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/write-repocreds",
        "repositories",
        "Add a write credential template",
        Some("Object"),
        "Object",
    ),
    op(
        "get",
        "/api/v1/write-repocreds/{url}",
        "repositories",
        "Get a write credential template",
        None,
        "Object",
    ),
    op(
        "put",
        "/api/v1/write-repocreds/{url}",
        "repositories",
        "Update a write credential template",
        Some("Object"),
        "Object",
    ),
    op(
        "delete",
        "/api/v1/write-repocreds/{url}",
        "repositories",
        "Remove a write credential template",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/clusters",
        "clusters",
        "List clusters (credentials never answered)",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/clusters",
        "clusters",
        "Add a cluster",
        Some("Object"),
        "Object",
    ),
    op(
        "get",
        "/api/v1/clusters/{id}",
        "clusters",
        "Get a cluster by server URL (or name with id.type=name)",
        None,
        "Object",
    ),
    op(
        "put",
        "/api/v1/clusters/{id}",
        "clusters",
        "Update a cluster",
        Some("Object"),
        "Object",
    ),
    op(
        "delete",
        "/api/v1/clusters/{id}",
        "clusters",
        "Remove a cluster",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/clusters/{id}/rotate-auth",
        "clusters",
        "Rotate the bearer token of the ServiceAccount `argocd cluster add` made",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/clusters/{id}/invalidate-cache",
        "clusters",
        "Have the controller drop and rebuild its cache of the cluster",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/workflows/{namespace}",
        "workflows",
        "List workflows (listOptions.labelSelector, fieldSelector, limit, continue)",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/workflows/{namespace}",
        "workflows",
        "Create a workflow ({workflow, serverDryRun}), checked first",
        Some("Object"),
        "Object",
    ),
    op(
        "post",
        "/api/v1/workflows/{namespace}/lint",
        "workflows",
        "Check a workflow ({workflow}) as a create would",
        Some("Object"),
        "Object",
    ),
    op(
        "post",
        "/api/v1/workflows/{namespace}/submit",
        "workflows",
        "Submit a workflow from a WorkflowTemplate, ClusterWorkflowTemplate or CronWorkflow ({resourceKind, resourceName, submitOptions})",
        Some("Object"),
        "Object",
    ),
    op(
        "get",
        "/api/v1/workflows/{namespace}/{name}",
        "workflows",
        "Get a workflow",
        None,
        "Object",
    ),
    op(
        "delete",
        "/api/v1/workflows/{namespace}/{name}",
        "workflows",
        "Delete a workflow",
        None,
        "Object",
    ),
    op(
        "put",
        "/api/v1/workflows/{namespace}/{name}/retry",
        "workflows",
        "Retry a failed workflow ({restartSuccessful, nodeFieldSelector, parameters})",
        Some("Object"),
        "Object",
    ),
    op(
        "put",
        "/api/v1/workflows/{namespace}/{name}/resubmit",
        "workflows",
        "Submit a new workflow from a workflow's spec ({parameters})",
        Some("Object"),
        "Object",
    ),
    op(
        "put",
        "/api/v1/workflows/{namespace}/{name}/suspend",
        "workflows",
        "Suspend a workflow",
        Some("Object"),
        "Object",
    ),
    op(
        "put",
        "/api/v1/workflows/{namespace}/{name}/resume",
        "workflows",
        "Resume a workflow, or the suspend nodes nodeFieldSelector picks",
        Some("Object"),
        "Object",
    ),
    op(
        "put",
        "/api/v1/workflows/{namespace}/{name}/stop",
        "workflows",
        "Stop a workflow (the exit handler still runs)",
        Some("Object"),
        "Object",
    ),
    op(
        "put",
        "/api/v1/workflows/{namespace}/{name}/terminate",
        "workflows",
        "Terminate a workflow",
        Some("Object"),
        "Object",
    ),
    op(
        "get",
        "/api/v1/workflows/{namespace}/{name}/log",
        "workflows",
        "The logs of a workflow's pods (server-sent events)",
        None,
        "Stream",
    ),
    op(
        "get",
        "/api/v1/workflows/{namespace}/{name}/{pod}/log",
        "workflows",
        "One pod's log, upstream's older route (server-sent events)",
        None,
        "Stream",
    ),
    op(
        "get",
        "/api/v1/workflow-events/{namespace}",
        "workflows",
        "Watch workflows (Server-Sent Events)",
        None,
        "Stream",
    ),
    op(
        "get",
        "/api/v1/workflow-templates/{namespace}",
        "workflows",
        "List WorkflowTemplates",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/workflow-templates/{namespace}",
        "workflows",
        "Create a WorkflowTemplate ({template}), checked first",
        Some("Object"),
        "Object",
    ),
    op(
        "post",
        "/api/v1/workflow-templates/{namespace}/lint",
        "workflows",
        "Check a WorkflowTemplate ({template})",
        Some("Object"),
        "Object",
    ),
    op(
        "get",
        "/api/v1/workflow-templates/{namespace}/{name}",
        "workflows",
        "Get a WorkflowTemplate",
        None,
        "Object",
    ),
    op(
        "put",
        "/api/v1/workflow-templates/{namespace}/{name}",
        "workflows",
        "Update a WorkflowTemplate ({template} with its resourceVersion)",
        Some("Object"),
        "Object",
    ),
    op(
        "delete",
        "/api/v1/workflow-templates/{namespace}/{name}",
        "workflows",
        "Delete a WorkflowTemplate",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/cluster-workflow-templates",
        "workflows",
        "List ClusterWorkflowTemplates",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/cluster-workflow-templates",
        "workflows",
        "Create a ClusterWorkflowTemplate ({template}), checked first",
        Some("Object"),
        "Object",
    ),
    op(
        "post",
        "/api/v1/cluster-workflow-templates/lint",
        "workflows",
        "Check a ClusterWorkflowTemplate ({template})",
        Some("Object"),
        "Object",
    ),
    op(
        "get",
        "/api/v1/cluster-workflow-templates/{name}",
        "workflows",
        "Get a ClusterWorkflowTemplate",
        None,
        "Object",
    ),
    op(
        "put",
        "/api/v1/cluster-workflow-templates/{name}",
        "workflows",
        "Update a ClusterWorkflowTemplate ({template} with its resourceVersion)",
        Some("Object"),
        "Object",
    ),
    op(
        "delete",
        "/api/v1/cluster-workflow-templates/{name}",
        "workflows",
        "Delete a ClusterWorkflowTemplate",
        None,
        "Object",
    ),
    op(
        "get",
        "/api/v1/cron-workflows/{namespace}",
        "workflows",
        "List CronWorkflows",
        None,
        "Object",
    ),
    op(
        "post",
        "/api/v1/cron-workflows/{namespace}",
        "workflows",
        "Create a CronWorkflow ({cronWorkflow}), checked first",
        Some("Object"),
        "Object",
    ),
    op(
        "post",
        "/api/v1/cron-workflows/{namespace}/lint",
        "workflows",
        "Check a CronWorkflow ({cronWorkflow})",
        Some("Object"),
        "Object",
    ),
    op(
        "get",
        "/api/v1/cron-workflows/{namespace}/{name}",
        "workflows",
        "Get a CronWorkflow",
        None,
        "Object",
    ),
    op(
        "put",
        "/api/v1/cron-workflows/{namespace}/{name}",
        "workflows",
        "Update a CronWorkflow ({cronWorkflow} with its resourceVersion)",
        Some("Object"),
        "Object",
    ),
    op(
        "delete",
        "/api/v1/cron-workflows/{namespace}/{name}",
        "workflows",
        "Delete a CronWorkflow",
        None,
        "Object",
    ),
    op(
        "put",
        "/api/v1/cron-workflows/{namespace}/{name}/suspend",
        "workflows",
        "Suspend a CronWorkflow",
        Some("Object"),
        "Object",
    ),
    op(
        "put",
        "/api/v1/cron-workflows/{namespace}/{name}/resume",
        "workflows",
        "Resume a CronWorkflow",
        Some("Object"),
        "Object",
    ),
    op(
        "post",
        "/api/v1/events/{namespace}/{discriminator}",
        "workflows",
        "Offer an event (the body is its payload) to the namespace's WorkflowEventBindings",
        Some("Object"),
        "Object",
    ),
    op(
        "get",
        "/api/v1/workflow-event-bindings/{namespace}",
        "workflows",
        "List WorkflowEventBindings",
        None,
        "Object",
    ),
    public(op(
        "get",
        "/api/openapi.json",
        "meta",
        "This document",
        None,
        "Object",
    )),
    public(op(
        "get",
        "/swagger.json",
        "meta",
        "This document, at Argo CD's path",
        None,
        "Object",
    )),
];

fn reference(schema: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{schema}")})
}

fn content(schema: &str) -> Value {
    if schema == "Stream" {
        return json!({"text/event-stream": {"schema": {"type": "string"}}});
    }
    json!({"application/json": {"schema": reference(schema)}})
}

/// A CRD's schema for its (only) version.
fn crd_schema(crd: &str) -> Value {
    let crd: Value = serde_yaml::from_str(crd).unwrap_or_default();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

fn build() -> Value {
    let mut paths = Map::new();
    for op in OPERATIONS {
        let parameters: Vec<Value> = op
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut operation = json!({
            "summary": op.summary,
            "tags": [op.tag],
            "operationId": format!("{}{}", op.method, op.path.replace(['/', '{', '}', '.', '-'], "_")),
            "parameters": parameters,
            "responses": {
                "200": {"description": "OK", "content": content(op.answer)},
                "default": {"description": "An error", "content": content("Error")},
            },
        });
        if let Some(body) = op.body {
            operation["requestBody"] = json!({"required": true, "content": content(body)});
        }
        if !op.authenticated {
            operation["security"] = json!([]);
        }
        let path = paths.entry(op.path).or_insert_with(|| json!({}));
        path[op.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ferry API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Argo CD's REST API and Argo Workflows' (paths and JSON shapes) as ferry serves them.",
        },
        "paths": paths,
        "security": [{"bearer": []}, {"cookie": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": super::TOKEN_COOKIE},
            },
            "schemas": {
                "Application": crd_schema(ferry_types::APPLICATION_CRD),
                "AppProject": crd_schema(ferry_types::APPPROJECT_CRD),
                "ApplicationSet": crd_schema(ferry_types::APPLICATIONSET_CRD),
                "ApplicationList": {
                    "type": "object",
                    "properties": {
                        "metadata": {"type": "object"},
                        "items": {"type": "array", "items": reference("Application")},
                    },
                },
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {"type": "string"},
                        "code": {"type": "integer", "description": "gRPC status code"},
                        "message": {"type": "string"},
                    },
                    "required": ["code", "message"],
                },
                "Object": {"type": "object"},
            },
        },
    })
}

/// `GET /api/openapi.json`.
pub async fn document() -> Json<Value> {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    Json(DOCUMENT.get_or_init(build).clone())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every `.route("…")` of the API's source files, and the routes of each
    /// `workflow_objects::routes("…", …)` and of each repositories' `kind_routes(…, "…")`.
    fn routed_paths() -> BTreeSet<String> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let mut files = vec![std::path::PathBuf::from(format!("{dir}/api.rs"))];
        let mut dirs = vec![std::path::PathBuf::from(format!("{dir}/api"))];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        let route = regex::Regex::new(r#"\.route\(\s*"([^"]+)""#).unwrap();
        let kind_routes = regex::Regex::new(r#"workflow_objects::routes\(\s*"([^"]+)""#).unwrap();
        let repo_routes = regex::Regex::new(r#"kind_routes\([^)"]*"([^"]+)"\)"#).unwrap();
        let mut paths = BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            // Tests route their own toy paths.
            let text = text.split("#[cfg(test)]").next().unwrap();
            for found in route.captures_iter(text) {
                paths.insert(found[1].replace("{*", "{"));
            }
            // A kind of workflow_objects::routes: its collection, lint and item routes.
            for found in kind_routes.captures_iter(text) {
                let collection = &found[1];
                paths.insert(collection.to_string());
                paths.insert(format!("{collection}/lint"));
                paths.insert(format!("{collection}/{{name}}"));
            }
            // A kind of repositories' entries: its collection and item routes.
            for found in repo_routes.captures_iter(text) {
                paths.insert(found[1].to_string());
                paths.insert(format!("{}/{{url}}", &found[1]));
            }
        }
        paths
    }

    #[test]
    fn every_route_is_described_and_every_description_routed() {
        let document = build();
        let described: BTreeSet<String> = document["paths"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let routed = routed_paths();
        let undocumented: Vec<_> = routed.difference(&described).collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from the document: {undocumented:?}"
        );
        let unrouted: Vec<_> = described.difference(&routed).collect();
        assert!(
            unrouted.is_empty(),
            "described but not routed: {unrouted:?}"
        );
    }

    #[test]
    fn the_document_is_openapi_with_the_crd_schemas() {
        let document = build();
        assert_eq!(document["openapi"], "3.1.0");
        let application = &document["components"]["schemas"]["Application"];
        assert!(
            application["properties"]["spec"].is_object(),
            "{application}"
        );
        let sync = &document["paths"]["/api/v1/applications/{name}/sync"]["post"];
        assert_eq!(sync["parameters"][0]["name"], "name");
        assert_eq!(
            document["paths"]["/api/version"]["get"]["security"],
            json!([])
        );
    }
}
