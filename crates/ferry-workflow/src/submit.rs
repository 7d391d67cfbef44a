//! What `argo submit` does before creating a Workflow: the workflow a WorkflowTemplate,
//! ClusterWorkflowTemplate or CronWorkflow gives (`--from`, upstream's conversions), the
//! submit options applied, and the spec checked with the templates it references read from the
//! cluster, so an invalid workflow is refused instead of created.

use std::collections::BTreeMap;

use ferry_types::workflow::WorkflowTemplateRef;
use ferry_types::{CronWorkflow, Workflow};
use kube::Client;

use crate::controller::store_references;
use crate::retry::override_parameters;
use crate::templates::{Library, join};
use crate::validate::validate;

/// On a workflow submitted from a WorkflowTemplate: its name.
pub const WORKFLOW_TEMPLATE: &str = "workflows.argoproj.io/workflow-template";
/// On a workflow submitted from a ClusterWorkflowTemplate: its name.
pub const CLUSTER_WORKFLOW_TEMPLATE: &str = "workflows.argoproj.io/cluster-workflow-template";

/// `argo submit` options that change the workflow.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub name: Option<String>,
    pub generate_name: Option<String>,
    pub entrypoint: Option<String>,
    pub service_account: Option<String>,
    /// `NAME=VALUE`, the first of a name winning.
    pub parameters: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// A workflow running the (Cluster)WorkflowTemplate `name` through `workflowTemplateRef`.
pub fn from_template(name: &str, cluster_scope: bool) -> Workflow {
    let mut workflow = Workflow::default();
    workflow.metadata.generate_name = Some(format!("{name}-"));
    let label = if cluster_scope {
        CLUSTER_WORKFLOW_TEMPLATE
    } else {
        WORKFLOW_TEMPLATE
    };
    workflow.metadata.labels = Some([(label.to_string(), name.to_string())].into());
    workflow.spec.workflow_template_ref = Some(WorkflowTemplateRef {
        name: name.into(),
        cluster_scope: cluster_scope.then_some(true),
    });
    workflow
}

/// A workflow from a CronWorkflow's `workflowSpec`, as a scheduled run's but generated from
/// `<cron>-` (a manual run has no scheduled time to be named after).
pub fn from_cron(cron: &CronWorkflow) -> Workflow {
    let mut workflow = crate::cron::workflow(cron, jiff::Timestamp::now());
    workflow.metadata.name = None;
    workflow.metadata.generate_name = Some(format!(
        "{}-",
        cron.metadata.name.clone().unwrap_or_default()
    ));
    workflow
}

/// Applies `options` as upstream's `ApplySubmitOpts`.
pub fn apply(workflow: &mut Workflow, options: &Options) -> Result<(), String> {
    if let Some(entrypoint) = &options.entrypoint {
        workflow.spec.entrypoint = Some(entrypoint.clone());
    }
    if let Some(account) = &options.service_account {
        workflow.spec.service_account_name = Some(account.clone());
    }
    if !options.labels.is_empty() {
        let labels = workflow.metadata.labels.get_or_insert_default();
        labels.extend(options.labels.clone());
    }
    let mut seen = Vec::new();
    let parameters: Vec<String> = options
        .parameters
        .iter()
        .filter(|p| {
            let name = p.split_once('=').map_or(p.as_str(), |(n, _)| n).to_string();
            let first = !seen.contains(&name);
            seen.push(name);
            first
        })
        .cloned()
        .collect();
    override_parameters(workflow, &parameters)?;
    if let Some(generate) = &options.generate_name {
        workflow.metadata.generate_name = Some(generate.clone());
        workflow.metadata.name = None;
    }
    if let Some(name) = &options.name {
        workflow.metadata.name = Some(name.clone());
    }
    Ok(())
}

/// Why `workflow` (its namespace set) would fail as an invalid spec, checked as the
/// controller checks it, with the templates it references read from the cluster.
pub async fn check(client: &Client, workflow: &Workflow) -> anyhow::Result<Result<(), String>> {
    let mut resolved = workflow.clone();
    store_references(client, &mut resolved).await?;
    let status = resolved.status.clone().unwrap_or_default();
    let spec = match (
        &resolved.spec.workflow_template_ref,
        &status.stored_workflow_template_spec,
    ) {
        (None, _) => resolved.spec.clone(),
        (Some(reference), None) => {
            let kind = match reference.cluster_scope {
                Some(true) => "ClusterWorkflowTemplate",
                _ => "WorkflowTemplate",
            };
            return Ok(Err(format!(
                "spec.workflowTemplateRef: {kind} {:?} not found",
                reference.name
            )));
        }
        (Some(_), Some(stored)) => match join(&resolved.spec, stored) {
            Ok(spec) => spec,
            Err(message) => return Ok(Err(message)),
        },
    };
    let library = Library {
        local: &spec,
        stored: &status.stored_templates,
    };
    Ok(validate(&spec, library).map(|_| ()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_override_the_file() {
        let mut workflow: Workflow = serde_yaml::from_str(
            "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: fixed}
spec:
  entrypoint: main
  arguments: {parameters: [{name: who, value: world}, {name: n, value: '1'}]}
",
        )
        .unwrap();
        let options = Options {
            generate_name: Some("run-".into()),
            entrypoint: Some("other".into()),
            service_account: Some("builder".into()),
            parameters: vec!["who=ferry".into(), "who=ignored".into()],
            labels: [("team".to_string(), "a".to_string())].into(),
            ..Options::default()
        };
        apply(&mut workflow, &options).unwrap();
        assert_eq!(workflow.metadata.name, None);
        assert_eq!(workflow.metadata.generate_name.as_deref(), Some("run-"));
        assert_eq!(workflow.spec.entrypoint.as_deref(), Some("other"));
        assert_eq!(
            workflow.spec.service_account_name.as_deref(),
            Some("builder")
        );
        let parameters = workflow.spec.arguments.unwrap().parameters;
        let values: Vec<(&str, Option<&str>)> = parameters
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_deref()))
            .collect();
        assert_eq!(values, [("who", Some("ferry")), ("n", Some("1"))]);
        assert_eq!(workflow.metadata.labels.unwrap()["team"], "a");
    }

    #[test]
    fn templates_are_referenced_and_labelled() {
        let workflow = from_template("build", true);
        assert_eq!(workflow.metadata.generate_name.as_deref(), Some("build-"));
        assert_eq!(
            workflow.metadata.labels.unwrap()[CLUSTER_WORKFLOW_TEMPLATE],
            "build"
        );
        let reference = workflow.spec.workflow_template_ref.unwrap();
        assert_eq!(
            (reference.name.as_str(), reference.cluster_scope),
            ("build", Some(true))
        );
    }
}
