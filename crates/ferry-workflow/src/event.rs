//! Argo Workflows' WorkflowEventBindings: an event (any JSON payload, with its `x-` headers and
//! a discriminator) submits the WorkflowTemplate of each binding of its namespace whose
//! `spec.event.selector` holds, with the arguments its `valueFrom.event` expressions give.
//! Expressions are expr-lang's, as upstream's, over `payload`, `metadata`, `discriminator` and
//! `namespace`. A binding that cannot be evaluated or submitted is reported by its own outcome;
//! the others still run.

use std::collections::BTreeMap;

use ferry_types::workflow::{Parameter, labels};
use ferry_types::{Workflow, WorkflowEventBinding};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::{expr_json, submit};

/// One event, as upstream's event environment holds it.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub namespace: String,
    pub discriminator: String,
    /// Header names lowercased, only those starting with `x-` (never `authorization`), each
    /// with its values.
    pub metadata: BTreeMap<String, Vec<String>>,
    pub payload: Value,
}

impl Event {
    /// `metadata` from request headers: lowercased, `x-` ones only, as upstream keeps them.
    pub fn headers<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut metadata: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in pairs {
            let name = name.to_ascii_lowercase();
            if name.starts_with("x-") {
                let value = String::from_utf8_lossy(value).into_owned();
                metadata.entry(name).or_default().push(value);
            }
        }
        Self {
            metadata,
            ..Self::default()
        }
    }

    fn context(&self) -> expr_json::Context {
        expr_json::context(&json!({
            "namespace": self.namespace,
            "discriminator": self.discriminator,
            "metadata": self.metadata,
            "payload": self.payload,
        }))
    }
}

/// What one binding did with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Its selector did not hold (or it has nothing to submit).
    Unmatched { binding: String },
    /// It submitted the workflow named.
    Submitted { binding: String, workflow: String },
    /// It could not be evaluated or submitted: why, naming the expression or field.
    Failed { binding: String, message: String },
}

/// The workflow `binding` submits for `event`, or `None` when its selector does not hold.
pub fn workflow(binding: &WorkflowEventBinding, event: &Event) -> Result<Option<Workflow>, String> {
    let context = event.context();
    let selector = &binding.spec.event.selector;
    let matched = match expr_json::evaluate(selector, &context)
        .map_err(|err| format!("spec.event.selector: failed to evaluate {selector:?}: {err}"))?
    {
        expr_json::Value::Bool(matched) => matched,
        other => {
            return Err(format!(
                "spec.event.selector: {selector:?} evaluated to {other}, not a boolean"
            ));
        }
    };
    let Some(submit) = binding.spec.submit.as_ref().filter(|_| matched) else {
        return Ok(None);
    };
    let reference = &submit.workflow_template_ref;
    let mut workflow =
        submit::from_template(&reference.name, reference.cluster_scope == Some(true));
    let name = binding.metadata.name.clone().unwrap_or_default();
    workflow
        .metadata
        .labels
        .get_or_insert_default()
        .insert(labels::WORKFLOW_EVENT_BINDING.into(), name);
    let mut parameters = Vec::new();
    for (index, parameter) in submit
        .arguments
        .iter()
        .flat_map(|a| &a.parameters)
        .enumerate()
    {
        let field = format!("spec.submit.arguments.parameters[{index}]");
        let Some(expression) = parameter.value_from.as_ref().and_then(|v| v.event.as_ref()) else {
            return Err(format!(
                "{field}: parameter {:?} has no valueFrom.event",
                parameter.name
            ));
        };
        let value = expr_json::evaluate(expression, &context).map_err(|err| {
            format!("{field}.valueFrom.event: failed to evaluate {expression:?}: {err}")
        })?;
        parameters.push(Parameter {
            name: parameter.name.clone(),
            value: Some(parameter_value(&value)),
            ..Parameter::default()
        });
    }
    if !parameters.is_empty() {
        workflow.spec.arguments.get_or_insert_default().parameters = parameters;
    }
    Ok(Some(workflow))
}

/// Offers `event` to every WorkflowEventBinding of its namespace; each submitted workflow is
/// checked as `ferry wf submit` checks one (the template's references read from the cluster)
/// before it is created. Only listing the bindings fails the whole.
pub async fn dispatch(client: &Client, event: &Event) -> anyhow::Result<Vec<Outcome>> {
    let bindings: Api<WorkflowEventBinding> = Api::namespaced(client.clone(), &event.namespace);
    let listed = bindings.list(&ListParams::default()).await?;
    let mut outcomes = Vec::new();
    for binding in &listed.items {
        let name = binding.metadata.name.clone().unwrap_or_default();
        let outcome = match submit_one(client, binding, event).await {
            Ok(None) => Outcome::Unmatched { binding: name },
            Ok(Some(workflow)) => {
                tracing::info!(namespace = %event.namespace, binding = %name, %workflow, "event submitted a workflow");
                Outcome::Submitted {
                    binding: name,
                    workflow,
                }
            }
            Err(message) => {
                tracing::warn!(namespace = %event.namespace, binding = %name, %message, "WorkflowEventBinding failed");
                Outcome::Failed {
                    binding: name,
                    message,
                }
            }
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

async fn submit_one(
    client: &Client,
    binding: &WorkflowEventBinding,
    event: &Event,
) -> Result<Option<String>, String> {
    let Some(mut workflow) = workflow(binding, event)? else {
        return Ok(None);
    };
    workflow.metadata.namespace = Some(event.namespace.clone());
    submit::check(client, &workflow)
        .await
        .map_err(|err| format!("checking the workflow: {err:#}"))??;
    let workflows: Api<Workflow> = Api::namespaced(client.clone(), &event.namespace);
    let created = workflows
        .create(&PostParams::default(), &workflow)
        .await
        .map_err(|err| format!("failed to create workflow: {err}"))?;
    Ok(created.metadata.name)
}

/// A string as it is, anything else as JSON (upstream marshals the result).
fn parameter_value(value: &expr_json::Value) -> String {
    match expr_json::to_json(value) {
        Value::String(text) => text,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn binding(selector: &str, parameters: Value) -> WorkflowEventBinding {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "WorkflowEventBinding",
            "metadata": {"name": "on-push"},
            "spec": {
                "event": {"selector": selector},
                "submit": {
                    "workflowTemplateRef": {"name": "build"},
                    "arguments": {"parameters": parameters},
                },
            },
        }))
        .unwrap()
    }

    fn push() -> Event {
        let mut event = Event::headers([
            ("X-GitHub-Event", b"push".as_slice()),
            ("Authorization", b"Bearer secret".as_slice()),
        ]);
        event.namespace = "ci".into();
        event.payload = json!({
            "ref": "refs/heads/main",
            "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
            "repository": {"full_name": "octo/app", "clone_url": "https://git.example/octo/app.git"},
            "commits": [{"id": "a"}, {"id": "b"}],
        });
        event
    }

    #[test]
    fn a_matching_push_submits_the_template_with_parameters_from_the_payload() {
        let binding = binding(
            r#"payload.ref == "refs/heads/main" && metadata["x-github-event"] == ["push"] && payload.repository.full_name startsWith "octo/" && discriminator == """#,
            json!([
                {"name": "revision", "valueFrom": {"event": "payload.after"}},
                {"name": "repo", "valueFrom": {"event": "payload.repository.clone_url"}},
                {"name": "commits", "valueFrom": {"event": "len(payload.commits)"}},
            ]),
        );
        let workflow = workflow(&binding, &push()).unwrap().unwrap();
        assert_eq!(workflow.metadata.generate_name.as_deref(), Some("build-"));
        let labels = workflow.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[labels::WORKFLOW_EVENT_BINDING], "on-push");
        assert_eq!(labels[submit::WORKFLOW_TEMPLATE], "build");
        let values: Vec<(&str, &str)> = workflow
            .spec
            .arguments
            .as_ref()
            .unwrap()
            .parameters
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_deref().unwrap()))
            .collect();
        assert_eq!(
            values,
            [
                ("revision", "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"),
                ("repo", "https://git.example/octo/app.git"),
                ("commits", "2"),
            ]
        );
    }

    #[test]
    fn only_x_headers_are_metadata() {
        let event = push();
        assert_eq!(
            event.metadata.keys().collect::<Vec<_>>(),
            ["x-github-event"]
        );
    }

    #[test]
    fn other_refs_submit_nothing() {
        let binding = binding(r#"payload.ref == "refs/heads/release""#, json!([]));
        assert_eq!(workflow(&binding, &push()).unwrap(), None);
    }

    #[test]
    fn bad_expressions_are_errors_naming_the_field() {
        let err = workflow(&binding("payload.ref ==", json!([])), &push()).unwrap_err();
        assert!(
            err.starts_with("spec.event.selector: failed to evaluate"),
            "{err}"
        );
        let err = workflow(&binding("payload.ref", json!([])), &push()).unwrap_err();
        assert!(err.contains("not a boolean"), "{err}");
        let parameters = json!([{"name": "x", "valueFrom": {"event": "payload.after +"}}]);
        let err = workflow(&binding("true", parameters), &push()).unwrap_err();
        assert!(
            err.starts_with(
                "spec.submit.arguments.parameters[0].valueFrom.event: failed to evaluate"
            ),
            "{err}"
        );
        let err = workflow(
            &binding("true", json!([{"name": "x", "value": "1"}])),
            &push(),
        )
        .unwrap_err();
        assert!(err.contains("has no valueFrom.event"), "{err}");
    }
}
