//! One pass over a workflow, as upstream's operator: walk the templates from the entrypoint,
//! create the nodes that became ready, read pod nodes from their pods, and roll phases up.
//! The status is the memory: a pass (or a restarted controller) finds finished nodes finished
//! and never runs them again; pods have deterministic names, so creating one twice is harmless.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_types::workflow::{
    NodeStatus, Parameter, Phase, Template, TemplateRef, Workflow, WorkflowStatus,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::control::Shutdown;
use crate::expr::Scope;
use crate::names::node_id;
use crate::pod::{PodSettings, PodView};
use crate::templates::{Holder, Library, join};
use crate::validate::validate;

mod dag;
mod fan_out;
pub mod http;
mod pod_node;
mod progress;
pub mod resource;
mod resource_flags;
mod retry;
mod steps;
mod suspend;

use progress::progress;

/// What a pass decided.
#[derive(Debug, Default)]
pub struct Outcome {
    pub status: WorkflowStatus,
    pub create: Vec<Pod>,
    /// Names of pods to delete (their nodes were failed by the workflow's deadline).
    pub delete: Vec<String>,
    /// When to look again even if nothing changes (the deadline).
    pub requeue_after: Option<Duration>,
    /// Resource nodes' actions and checks, done by the controller.
    pub resources: Vec<resource::Request>,
    /// HTTP nodes' requests, sent by the controller.
    pub http: Vec<http::Request>,
}

/// Runs one pass over `workflow` (not yet completed) with its pods by name, at `now`.
pub fn operate(
    workflow: &Workflow,
    pods: &BTreeMap<String, PodView>,
    settings: &PodSettings,
    now: jiff::Timestamp,
) -> Outcome {
    let joined = joined(workflow);
    let workflow = joined
        .as_ref()
        .ok()
        .and_then(Option::as_ref)
        .unwrap_or(workflow);
    let status = workflow.status.clone().unwrap_or_default();
    let name = workflow.metadata.name.clone().unwrap_or_default();
    let no_templates = BTreeMap::new();
    let library = Library {
        local: &workflow.spec,
        stored: workflow
            .status
            .as_ref()
            .map_or(&no_templates, |s| &s.stored_templates),
    };
    let mut op = Op {
        library,
        workflow,
        name: name.clone(),
        nodes: status.nodes.clone(),
        pods,
        settings,
        now: Time(now),
        deadline_exceeded: false,
        shutdown: Shutdown::parse(workflow.spec.shutdown.as_deref())
            .ok()
            .flatten(),
        in_exit_handler: false,
        exit_status: None,
        outcome: Outcome::default(),
    };
    let started = status.started_at.clone().map_or(now, |t| t.0);
    let mut out = WorkflowStatus {
        started_at: Some(Time(started)),
        ..status
    };
    if let Some(seconds) = workflow.spec.active_deadline_seconds {
        let deadline = started + jiff::SignedDuration::from_secs(seconds);
        if now >= deadline {
            op.deadline_exceeded = true;
            op.fail_running_pods(pod_node::DEADLINE_MESSAGE, |exit| !exit);
            op.fail_suspend_nodes(pod_node::DEADLINE_MESSAGE, |exit| !exit);
        } else {
            op.requeue_at(deadline);
        }
    }
    if let Some(strategy) = op.shutdown {
        let message = format!("workflow shutdown with strategy: {}", strategy.as_str());
        op.fail_running_pods(&message, |exit| !strategy.should_execute(exit));
        let message = format!("Stopped with strategy '{}'", strategy.as_str());
        op.fail_suspend_nodes(&message, |exit| !strategy.should_execute(exit));
    }

    let valid = joined
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|_| validate(&workflow.spec, library));
    let phase_and_message = match valid {
        Err(message) => (Phase::Failed, Some(format!("invalid spec: {message}"))),
        // Upstream's suspended workflow: its pods are read, nothing new starts.
        Ok(_) if workflow.spec.suspend == Some(true) => {
            op.refresh_pods();
            (out.phase.unwrap_or(Phase::Running), out.message.clone())
        }
        Ok(entrypoint) => {
            let args = workflow.spec.arguments.clone().unwrap_or_default();
            let root = op.execute(Call {
                name: name.clone(),
                display: name.clone(),
                template: entrypoint,
                holder: Holder::Local,
                args: args.parameters,
                artifacts: args.artifacts,
                boundary: None,
                in_retry: false,
                extra: Scope::new(),
            });
            let root = op.nodes[&root].clone();
            op.finish(&root)
        }
    };
    let (phase, message) = phase_and_message;
    out.phase = Some(phase);
    out.message = message;
    if phase.is_completed() {
        out.finished_at = Some(op.now.clone());
        op.outcome.requeue_after = None;
    }
    out.progress = Some(progress(&mut op.nodes));
    out.nodes = op.nodes;
    op.outcome.status = out;
    op.outcome
}

struct Op<'a> {
    workflow: &'a Workflow,
    library: Library<'a>,
    name: String,
    nodes: BTreeMap<String, NodeStatus>,
    pods: &'a BTreeMap<String, PodView>,
    settings: &'a PodSettings,
    now: Time,
    deadline_exceeded: bool,
    shutdown: Option<Shutdown>,
    in_exit_handler: bool,
    /// `{{workflow.status}}`, for the exit handler and everything under it.
    exit_status: Option<Phase>,
    outcome: Outcome,
}

/// A template to run as a node.
struct Call<'c> {
    name: String,
    display: String,
    template: &'c str,
    /// Where `template` is looked up.
    holder: Holder,
    args: Vec<Parameter>,
    boundary: Option<String>,
    /// An attempt of a retry node: run the template itself, not another retry.
    in_retry: bool,
    /// Tags besides the template's inputs and `workflow.*` (`retries`).
    extra: Scope,
    /// Artifact arguments, their `from` already resolved to a location.
    artifacts: Vec<ferry_types::workflow::Artifact>,
}

impl Op<'_> {
    fn id(&self, node_name: &str) -> String {
        node_id(&self.name, node_name)
    }

    /// The node named `name`, created with `type_` and `phase` if absent.
    #[allow(clippy::too_many_arguments)]
    fn init_node(
        &mut self,
        name: &str,
        display: &str,
        type_: &str,
        template: Option<&str>,
        boundary: Option<&str>,
        phase: Phase,
        message: Option<String>,
    ) -> String {
        let id = self.id(name);
        let now = self.now.clone();
        self.nodes.entry(id.clone()).or_insert_with(|| NodeStatus {
            id: id.clone(),
            name: name.into(),
            display_name: display.into(),
            type_: type_.into(),
            template_name: template.map(Into::into),
            phase,
            boundary_id: boundary.map(Into::into),
            started_at: Some(now.clone()),
            finished_at: phase.is_completed().then_some(now),
            message,
            ..NodeStatus::default()
        });
        id
    }

    fn mark(&mut self, id: &str, phase: Phase, message: Option<String>) {
        let now = self.now.clone();
        if let Some(node) = self.nodes.get_mut(id) {
            node.phase = phase;
            if message.is_some() {
                node.message = message;
            }
            if phase.is_completed() && node.finished_at.is_none() {
                node.finished_at = Some(now);
            }
        }
    }

    fn add_child(&mut self, parent: &str, child: &str) {
        if let Some(node) = self.nodes.get_mut(parent)
            && !node.children.iter().any(|c| c == child)
        {
            node.children.push(child.into());
        }
    }

    fn phase(&self, id: &str) -> Phase {
        self.nodes.get(id).map_or(Phase::Pending, |n| n.phase)
    }

    /// Whether the node named `name` belongs to the exit handler.
    fn is_exit_node(&self, name: &str) -> bool {
        name.starts_with(&format!("{}.onExit", self.name))
    }

    /// Looks again at `at` at the latest.
    fn requeue_at(&mut self, at: jiff::Timestamp) {
        let wait =
            Duration::from_secs_f64(at.duration_since(self.now.0).as_secs_f64().max(0.0) + 0.1);
        let next = self.outcome.requeue_after.map_or(wait, |r| r.min(wait));
        self.outcome.requeue_after = Some(next);
    }

    /// After the entrypoint's node: the exit handler once it is done, then the workflow's phase.
    fn finish(&mut self, root: &NodeStatus) -> (Phase, Option<String>) {
        if !root.phase.is_completed() {
            return (Phase::Running, None);
        }
        let mut phase = match root.phase {
            Phase::Failed | Phase::Error => root.phase,
            _ => Phase::Succeeded,
        };
        let mut message = root.message.clone().filter(|_| phase != Phase::Succeeded);
        if let Some(strategy) = self.shutdown
            && phase != Phase::Succeeded
        {
            message = Some(format!("Stopped with strategy '{}'", strategy.as_str()));
        }
        let exit_runs = |op: &Self, exit_id: &str| {
            op.nodes.contains_key(exit_id) || op.shutdown.is_none_or(|s| s.should_execute(true))
        };
        let exit_id = self.id(&format!("{}.onExit", self.name));
        if let Some(exit) = self.workflow.spec.on_exit.as_deref()
            && exit_runs(self, &exit_id)
        {
            self.in_exit_handler = true;
            self.exit_status = Some(phase);
            let name = format!("{}.onExit", self.name);
            let id = self.execute(Call {
                name: name.clone(),
                display: name,
                template: exit,
                holder: Holder::Local,
                args: Vec::new(),
                artifacts: Vec::new(),
                boundary: None,
                in_retry: false,
                extra: Scope::new(),
            });
            let exit = self.nodes[&id].clone();
            if !exit.phase.is_completed() {
                return (Phase::Running, None);
            }
            if exit.phase.is_failed_or_error() && phase == Phase::Succeeded {
                phase = Phase::Failed;
                message = Some(format!(
                    "exit handler failed: {}",
                    exit.message.unwrap_or_default()
                ));
            }
        }
        (phase, message)
    }

    fn global_scope(&self) -> Scope {
        let meta = &self.workflow.metadata;
        let mut scope = Scope::new();
        scope.insert("workflow.name".into(), self.name.clone());
        scope.insert(
            "workflow.namespace".into(),
            meta.namespace.clone().unwrap_or_default(),
        );
        scope.insert("workflow.uid".into(), meta.uid.clone().unwrap_or_default());
        if let Some(phase) = self.exit_status {
            scope.insert("workflow.status".into(), phase.as_str().into());
        }
        let args = self
            .workflow
            .spec
            .arguments
            .iter()
            .flat_map(|a| &a.parameters);
        for parameter in args {
            let value = parameter
                .value
                .clone()
                .or_else(|| parameter.default.clone());
            scope.insert(
                format!("workflow.parameters.{}", parameter.name),
                value.unwrap_or_default(),
            );
        }
        scope
    }

    /// Runs `call`'s template as a node (creating it if needed) and returns the node's ID.
    fn execute(&mut self, call: Call) -> String {
        let id = self.id(&call.name);
        if self.phase(&id).is_completed() {
            return id;
        }
        let Some(template) = self.library.get(&call.holder, call.template) else {
            let message = format!(
                "template {:?} not found in {}",
                call.template,
                call.holder.describe()
            );
            return self.error_node(&call, "Skipped", message);
        };
        let kind = node_type(template);
        let mut scope = self.global_scope();
        scope.extend(call.extra.clone());
        let inputs = match resolve_inputs(template, &call.args, &scope) {
            Ok(inputs) => inputs,
            Err(message) => return self.error_node(&call, kind, message),
        };
        let input_artifacts = match crate::artifact::resolve_inputs(template, &call.artifacts) {
            Ok(artifacts) => artifacts,
            Err(message) => return self.error_node(&call, kind, message),
        };
        for artifact in &input_artifacts {
            if let Some(path) = &artifact.path {
                scope.insert(
                    format!("inputs.artifacts.{}.path", artifact.name),
                    path.clone(),
                );
            }
        }
        for parameter in &inputs {
            scope.insert(
                format!("inputs.parameters.{}", parameter.name),
                parameter.value.clone().unwrap_or_default(),
            );
        }
        if template.retry_strategy.is_some() && !call.in_retry {
            return self.execute_retry(call, template, inputs);
        }
        let boundary = call.boundary.as_deref();
        let id = self.init_node(
            &call.name,
            &call.display,
            kind,
            Some(&template.name),
            boundary,
            Phase::Pending,
            None,
        );
        let template_scope = call.holder.scope(&self.name);
        if let Some(node) = self.nodes.get_mut(&id) {
            node.template_scope.get_or_insert(template_scope);
            if let Holder::Namespaced(holder) | Holder::Cluster(holder) = &call.holder {
                node.template_ref.get_or_insert(TemplateRef {
                    name: holder.clone(),
                    template: template.name.clone(),
                    cluster_scope: matches!(call.holder, Holder::Cluster(_)).then_some(true),
                });
            }
        }
        if let Some(node) = self.nodes.get_mut(&id)
            && node.inputs.is_none()
            && !(inputs.is_empty() && input_artifacts.is_empty())
        {
            node.inputs = Some(ferry_types::workflow::Inputs {
                parameters: inputs,
                artifacts: input_artifacts,
                ..Default::default()
            });
        }
        match kind {
            "Pod" if template.resource.is_some() => {
                self.execute_resource(&id, &call, template, &scope)
            }
            "Pod" => self.execute_pod(&id, &call, template, &scope),
            "HTTP" => self.execute_http(&id, &call, template, &scope),
            "Steps" => self.execute_steps(&id, &call, template, scope),
            "DAG" => self.execute_dag(&id, &call, template, scope),
            "Suspend" => self.execute_suspend(&id, template),
            _ => self.mark(
                &id,
                Phase::Error,
                Some(format!(
                    "template {:?}: only container, script, resource, http, steps, dag and suspend templates run yet",
                    template.name
                )),
            ),
        }
        id
    }

    fn error_node(&mut self, call: &Call, kind: &str, message: String) -> String {
        let id = self.init_node(
            &call.name,
            &call.display,
            kind,
            Some(call.template),
            call.boundary.as_deref(),
            Phase::Error,
            Some(message.clone()),
        );
        self.mark(&id, Phase::Error, Some(message));
        id
    }

    fn error_call(&mut self, name: &str, display: &str, boundary: &str, message: String) -> String {
        let id = self.init_node(
            name,
            display,
            "Skipped",
            None,
            Some(boundary),
            Phase::Error,
            Some(message.clone()),
        );
        self.mark(&id, Phase::Error, Some(message));
        id
    }

    /// A group of nodes (step group, fan-out): Running until all are done, then Failed if one
    /// failed, else Succeeded. Returns whether the group is done.
    fn roll_up(&mut self, group: &str, children: &[String]) -> bool {
        if !children.iter().all(|c| self.phase(c).is_completed()) {
            self.mark(group, Phase::Running, None);
            return false;
        }
        match children.iter().find(|c| self.phase(c).is_failed_or_error()) {
            Some(failed) => {
                let message = format!("child '{failed}' failed");
                self.mark(group, Phase::Failed, Some(message));
            }
            None => self.mark(group, Phase::Succeeded, None),
        }
        true
    }
}

/// The workflow with the spec its `workflowTemplateRef` names joined under its own (the
/// controller stores that spec in the status first); `Ok(None)` without a reference.
fn joined(workflow: &Workflow) -> Result<Option<Workflow>, String> {
    let Some(reference) = &workflow.spec.workflow_template_ref else {
        return Ok(None);
    };
    let stored = workflow
        .status
        .as_ref()
        .and_then(|s| s.stored_workflow_template_spec.as_ref());
    let Some(stored) = stored else {
        let kind = match reference.cluster_scope {
            Some(true) => "ClusterWorkflowTemplate",
            _ => "WorkflowTemplate",
        };
        return Err(format!(
            "spec.workflowTemplateRef: {kind} {:?} not found",
            reference.name
        ));
    };
    let mut joined = workflow.clone();
    joined.spec = join(&workflow.spec, stored)?;
    Ok(Some(joined))
}

/// The node type a template runs as.
fn node_type(template: &Template) -> &'static str {
    if template.container.is_some() || template.script.is_some() || template.resource.is_some() {
        "Pod"
    } else if template.steps.is_some() {
        "Steps"
    } else if template.dag.is_some() {
        "DAG"
    } else if template.suspend.is_some() {
        "Suspend"
    } else if template.http.is_some() {
        "HTTP"
    } else {
        "Pod"
    }
}

/// The template's input parameters with their values: the argument's, else the input's own
/// `value` or `default` with its tags substituted from the workflow's and the call's scope
/// (upstream substitutes those before the inputs: `{{=jsonpath(workflow.parameters.x, '$.a')}}`).
fn resolve_inputs(
    template: &Template,
    args: &[Parameter],
    scope: &Scope,
) -> Result<Vec<Parameter>, String> {
    let declared = template.inputs.iter().flat_map(|i| &i.parameters);
    declared
        .map(|input| {
            let given = args.iter().find(|a| a.name == input.name);
            let own = || {
                let own = input.value.as_ref().or(input.default.as_ref())?;
                Some(
                    crate::expr::substitute(own, scope)
                        .map_err(|err| format!("inputs.parameters.{}: {err}", input.name)),
                )
            };
            let value = match given.and_then(|a| a.value.clone()) {
                Some(value) => value,
                None => own().ok_or_else(|| {
                    format!("inputs.parameters.{} was not supplied", input.name)
                })??,
            };
            Ok(Parameter {
                name: input.name.clone(),
                value: Some(value),
                ..Parameter::default()
            })
        })
        .collect()
}

/// `steps.NAME.*` / `tasks.NAME.*` tags of a finished node.
fn add_node_scope(scope: &mut Scope, prefix: &str, node: &NodeStatus) {
    scope.insert(format!("{prefix}.id"), node.id.clone());
    scope.insert(format!("{prefix}.status"), node.phase.as_str().into());
    let Some(outputs) = &node.outputs else {
        return;
    };
    if let Some(result) = &outputs.result {
        scope.insert(format!("{prefix}.outputs.result"), result.clone());
    }
    if let Some(code) = &outputs.exit_code {
        scope.insert(format!("{prefix}.exitCode"), code.clone());
    }
    for artifact in &outputs.artifacts {
        if let Ok(json) = serde_json::to_string(artifact) {
            scope.insert(
                format!("{prefix}.outputs.artifacts.{}", artifact.name),
                json,
            );
        }
    }
    for parameter in &outputs.parameters {
        if let Some(value) = &parameter.value {
            scope.insert(
                format!("{prefix}.outputs.parameters.{}", parameter.name),
                value.clone(),
            );
        }
    }
}
