//! Argo Workflows' WorkflowTemplateService (`/api/v1/workflow-templates/{namespace}…`, RBAC
//! `workflowtemplates` on `<namespace>/<name>`) and ClusterWorkflowTemplateService
//! (`/api/v1/cluster-workflow-templates…`, `clusterworkflowtemplates` on `<name>`): list, get,
//! create, update, delete, lint; bodies hold the object in `template`.

use axum::Router;
use ferry_types::{ClusterWorkflowTemplate, WorkflowTemplate};
use kube::Api;

use super::state::AppState;
use super::workflow_objects::{self, Kind};
use crate::rbac::resources::{CLUSTER_WORKFLOW_TEMPLATES, WORKFLOW_TEMPLATES};

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(workflow_objects::routes(
            "/api/v1/workflow-templates/{namespace}",
            templates,
        ))
        .merge(workflow_objects::routes(
            "/api/v1/cluster-workflow-templates",
            cluster_templates,
        ))
}

fn templates(state: &AppState, namespace: Option<String>) -> Kind<WorkflowTemplate> {
    let namespace = namespace.unwrap_or_default();
    Kind {
        api: Api::namespaced(state.client(), &namespace),
        namespace: Some(namespace),
        resource: WORKFLOW_TEMPLATES,
        field: "template",
    }
}

fn cluster_templates(state: &AppState, _: Option<String>) -> Kind<ClusterWorkflowTemplate> {
    Kind {
        api: Api::all(state.client()),
        namespace: None,
        resource: CLUSTER_WORKFLOW_TEMPLATES,
        field: "template",
    }
}
