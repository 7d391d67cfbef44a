//! One pass over a workflow, as upstream's operator: walk the templates from the entrypoint,
//! create the nodes that became ready, read pod nodes from their pods, and roll phases up.
//! The status is the memory: a pass (or a restarted controller) finds finished nodes finished
//! and never runs them again; pods have deterministic names, so creating one twice is harmless.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ferry_types::workflow::{
    Arguments, NodeStatus, Outputs, Parameter, Phase, Template, Workflow, WorkflowStatus,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use crate::expr::{self, Scope, TaskResult};
use crate::names::{node_id, pod_name};
use crate::pod::{self, PodRequest, PodSettings, PodView};

const DEADLINE_MESSAGE: &str = "Step exceeded its deadline";

/// What a pass decided.
#[derive(Debug, Default)]
pub struct Outcome {
    pub status: WorkflowStatus,
    pub create: Vec<Pod>,
    /// Names of pods to delete (their nodes were failed by the workflow's deadline).
    pub delete: Vec<String>,
    /// When to look again even if nothing changes (the deadline).
    pub requeue_after: Option<Duration>,
}

/// Runs one pass over `workflow` (not yet completed) with its pods by name, at `now`.
pub fn operate(
    workflow: &Workflow,
    pods: &BTreeMap<String, PodView>,
    settings: &PodSettings,
    now: jiff::Timestamp,
) -> Outcome {
    let status = workflow.status.clone().unwrap_or_default();
    let name = workflow.metadata.name.clone().unwrap_or_default();
    let mut op = Op {
        workflow,
        name: name.clone(),
        nodes: status.nodes.clone(),
        pods,
        settings,
        now: Time(now),
        deadline_exceeded: false,
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
            op.fail_running_pods();
        } else {
            op.outcome.requeue_after = Some(Duration::from_secs_f64(
                deadline.duration_since(now).as_secs_f64().max(0.0) + 0.1,
            ));
        }
    }

    let phase_and_message = match validate(workflow) {
        Err(message) => (Phase::Failed, Some(format!("invalid spec: {message}"))),
        Ok(entrypoint) => {
            let args = workflow.spec.arguments.clone().unwrap_or_default();
            let root = op.execute(Call {
                name: name.clone(),
                display: name.clone(),
                template: entrypoint,
                args: args.parameters,
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

/// The entrypoint, or why the spec cannot run: every template a step or task names exists.
fn validate(workflow: &Workflow) -> Result<&str, String> {
    let spec = &workflow.spec;
    let known = |name: &str| workflow.template(name).is_some();
    let entrypoint = spec
        .entrypoint
        .as_deref()
        .ok_or("spec.entrypoint is required")?;
    if !known(entrypoint) {
        return Err(format!(
            "spec.entrypoint: template {entrypoint:?} not found"
        ));
    }
    if let Some(exit) = spec.on_exit.as_deref().filter(|e| !known(e)) {
        return Err(format!("spec.onExit: template {exit:?} not found"));
    }
    for template in &spec.templates {
        let steps = template
            .steps
            .iter()
            .flatten()
            .flatten()
            .map(|s| (&s.name, &s.template));
        let tasks = template
            .dag
            .iter()
            .flat_map(|d| &d.tasks)
            .map(|t| (&t.name, &t.template));
        for (step, target) in steps.chain(tasks) {
            match target.as_deref() {
                Some(target) if known(target) => {}
                Some(target) => {
                    return Err(format!(
                        "templates.{}.{step}: template {target:?} not found",
                        template.name
                    ));
                }
                None => {
                    return Err(format!(
                        "templates.{}.{step}: template is required",
                        template.name
                    ));
                }
            }
        }
        if let Some(dag) = &template.dag {
            topological_order(&dag.tasks)
                .map_err(|message| format!("templates.{}: {message}", template.name))?;
        }
    }
    Ok(entrypoint)
}

struct Op<'a> {
    workflow: &'a Workflow,
    name: String,
    nodes: BTreeMap<String, NodeStatus>,
    pods: &'a BTreeMap<String, PodView>,
    settings: &'a PodSettings,
    now: Time,
    deadline_exceeded: bool,
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
    args: Vec<Parameter>,
    boundary: Option<String>,
    /// An attempt of a retry node: run the template itself, not another retry.
    in_retry: bool,
    /// Tags besides the template's inputs and `workflow.*` (`retries`).
    extra: Scope,
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
        if let Some(exit) = self.workflow.spec.on_exit.as_deref() {
            self.in_exit_handler = true;
            self.exit_status = Some(phase);
            let name = format!("{}.onExit", self.name);
            let id = self.execute(Call {
                name: name.clone(),
                display: name,
                template: exit,
                args: Vec::new(),
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

    /// On the workflow's deadline: running pods' nodes fail, their pods go (not the exit
    /// handler's, which runs after).
    fn fail_running_pods(&mut self) {
        let exit_prefix = format!("{}.onExit", self.name);
        let running: Vec<(String, String, String)> = self
            .nodes
            .values()
            .filter(|n| n.type_ == "Pod" && !n.phase.is_completed())
            .filter(|n| !n.name.starts_with(&exit_prefix))
            .map(|n| {
                let template = n.template_name.clone().unwrap_or_default();
                (n.id.clone(), n.name.clone(), template)
            })
            .collect();
        for (id, name, template) in running {
            self.mark(&id, Phase::Failed, Some(DEADLINE_MESSAGE.into()));
            let pod = pod_name(&self.name, &name, &template);
            if self.pods.contains_key(&pod) {
                self.outcome.delete.push(pod);
            }
        }
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
        let workflow = self.workflow;
        let template = workflow
            .template(call.template)
            .expect("validated: every named template exists");
        let kind = node_type(template);
        let inputs = match resolve_inputs(template, &call.args) {
            Ok(inputs) => inputs,
            Err(message) => return self.error_node(&call, kind, message),
        };
        let mut scope = self.global_scope();
        scope.extend(call.extra.clone());
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
        if let Some(node) = self.nodes.get_mut(&id)
            && node.inputs.is_none()
            && !inputs.is_empty()
        {
            node.inputs = Some(ferry_types::workflow::Inputs {
                parameters: inputs,
                ..Default::default()
            });
        }
        match kind {
            "Pod" => self.execute_pod(&id, &call, template, &scope),
            "Steps" => self.execute_steps(&id, &call, template, scope),
            "DAG" => self.execute_dag(&id, &call, template, scope),
            _ => self.mark(
                &id,
                Phase::Error,
                Some(format!(
                    "template {:?}: only container, script, steps and dag templates run yet",
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

    fn execute_retry(&mut self, call: Call, template: &Template, inputs: Vec<Parameter>) -> String {
        let id = self.init_node(
            &call.name,
            &call.display,
            "Retry",
            Some(&template.name),
            call.boundary.as_deref(),
            Phase::Running,
            None,
        );
        let strategy = template.retry_strategy.clone().unwrap_or_default();
        let limit = match strategy.limit {
            None => None,
            Some(IntOrString::Int(n)) => Some(n.max(0) as usize),
            Some(IntOrString::String(s)) => match s.parse::<usize>() {
                Ok(n) => Some(n),
                Err(_) => {
                    let message = format!("retryStrategy.limit {s:?} is not a number");
                    self.mark(&id, Phase::Error, Some(message));
                    return id;
                }
            },
        };
        let policy = strategy.retry_policy.as_deref().unwrap_or("OnFailure");
        let args: Vec<Parameter> = inputs;
        loop {
            // Attempts only: a DAG also hangs the tasks that depend on this one here.
            let prefix = format!("{}(", call.name);
            let attempts = self.nodes[&id]
                .children
                .iter()
                .filter(|c| {
                    self.nodes
                        .get(*c)
                        .is_none_or(|n| n.name.starts_with(&prefix))
                })
                .count();
            let attempt = attempts.saturating_sub(1);
            let child = self.execute(Call {
                name: format!("{}({attempt})", call.name),
                display: format!("{}({attempt})", call.display),
                template: call.template,
                args: args.clone(),
                boundary: call.boundary.clone(),
                in_retry: true,
                extra: [("retries".to_string(), attempt.to_string())].into(),
            });
            self.add_child(&id, &child);
            let done = self.nodes[&child].clone();
            match done.phase {
                Phase::Pending | Phase::Running => {
                    self.mark(&id, Phase::Running, None);
                    return id;
                }
                Phase::Failed | Phase::Error => {
                    let retried = match policy {
                        "Always" => true,
                        "OnError" | "OnTransientError" => done.phase == Phase::Error,
                        _ => done.phase == Phase::Failed,
                    };
                    let attempts_left = limit.is_none_or(|l| attempt < l);
                    if retried && attempts_left && !self.deadline_exceeded {
                        // The next attempt's node is created by the next turn of the loop.
                        let next = self.id(&format!("{}({})", call.name, attempt + 1));
                        self.init_placeholder(&id, &next);
                        continue;
                    }
                    let message = if retried {
                        "No more retries left".to_string()
                    } else {
                        done.message.clone().unwrap_or_default()
                    };
                    self.mark(&id, done.phase, Some(message));
                    return id;
                }
                phase => {
                    if let Some(node) = self.nodes.get_mut(&id) {
                        node.outputs = done.outputs.clone();
                    }
                    self.mark(&id, phase, None);
                    return id;
                }
            }
        }
    }

    /// Counts the next attempt among the retry node's children before it exists, so the loop
    /// names it; `execute` then creates it.
    fn init_placeholder(&mut self, retry: &str, next: &str) {
        if let Some(node) = self.nodes.get_mut(retry) {
            node.children.push(next.into());
        }
    }

    fn execute_pod(&mut self, id: &str, call: &Call, template: &Template, scope: &Scope) {
        if self.deadline_exceeded && !self.in_exit_handler {
            self.mark(id, Phase::Failed, Some(DEADLINE_MESSAGE.into()));
            return;
        }
        let pod = pod_name(&self.name, &call.name, &template.name);
        let Some(view) = self.pods.get(&pod) else {
            if self.phase(id) == Phase::Running {
                self.mark(id, Phase::Error, Some("pod deleted".into()));
                return;
            }
            let mut scope = scope.clone();
            scope.insert("pod.name".into(), pod.clone());
            scope.insert("node.name".into(), call.name.clone());
            let request = PodRequest {
                workflow: self.workflow,
                node_name: &call.name,
                node_id: id,
                pod_name: &pod,
                template,
                scope: &scope,
            };
            match pod::build(&request, self.settings) {
                Ok(pod) => self.outcome.create.push(pod),
                Err(message) => self.mark(id, Phase::Error, Some(message)),
            }
            return;
        };
        let view = view.clone();
        if let Some(node) = self.nodes.get_mut(id) {
            node.host_node_name = view.host.clone().or(node.host_node_name.take());
        }
        match view.phase.as_str() {
            "Running" => self.mark(id, Phase::Running, None),
            "Succeeded" | "Failed" => self.complete_pod(id, template, &view),
            _ => {}
        }
    }

    fn complete_pod(&mut self, id: &str, template: &Template, view: &PodView) {
        let report = view.report.clone().unwrap_or_default();
        let mut outputs = Outputs {
            result: report.result.clone(),
            exit_code: view.exit_code.map(|c| c.to_string()),
            ..Outputs::default()
        };
        let mut missing = None;
        for declared in template.outputs.iter().flat_map(|o| &o.parameters) {
            let value = report
                .parameters
                .get(&declared.name)
                .cloned()
                .or_else(|| declared.value_from.as_ref().and_then(|v| v.default.clone()));
            if value.is_none() && missing.is_none() {
                missing = Some(format!(
                    "output parameter {} was not reported",
                    declared.name
                ));
            }
            outputs.parameters.push(Parameter {
                value,
                ..declared.clone()
            });
        }
        let (phase, message) = if let Some(error) = report.error.clone() {
            (Phase::Error, Some(error))
        } else if view.phase == "Failed" {
            let message = match (view.exit_code, &view.pod_message, &view.raw_message) {
                (_, _, Some(raw)) if !raw.is_empty() => raw.clone(),
                (Some(code), _, _) => format!("Error (exit code {code})"),
                (None, Some(reason), _) => reason.clone(),
                (None, None, _) => "pod failed".into(),
            };
            (Phase::Failed, Some(message))
        } else if let Some(missing) = missing {
            (Phase::Error, Some(missing))
        } else {
            (Phase::Succeeded, None)
        };
        if let Some(node) = self.nodes.get_mut(id) {
            node.outputs = Some(outputs);
        }
        self.mark(id, phase, message);
    }

    fn execute_steps(&mut self, id: &str, call: &Call, template: &Template, mut scope: Scope) {
        self.mark(id, Phase::Running, None);
        let groups = template.steps.clone().unwrap_or_default();
        let mut previous: Option<String> = None;
        for (index, group) in groups.iter().enumerate() {
            let group_name = format!("{}[{index}]", call.name);
            let group_id = self.init_node(
                &group_name,
                &format!("[{index}]"),
                "StepGroup",
                Some(&template.name),
                Some(id),
                Phase::Running,
                None,
            );
            match &previous {
                None => self.add_child(id, &group_id),
                Some(previous) => {
                    for child in self.nodes[previous].children.clone() {
                        self.add_child(&child, &group_id);
                    }
                }
            }
            let mut children = Vec::new();
            for step in group {
                for (name, display, extra) in self.expand(
                    &format!("{group_name}.{}", step.name),
                    &step.name,
                    &step.with_items,
                    &step.with_param,
                    &scope,
                ) {
                    let child = match extra {
                        Err(message) => self.error_call(&name, &display, id, message),
                        Ok(extra) => {
                            let mut scope = scope.clone();
                            scope.extend(extra);
                            self.execute_step(
                                &name,
                                &display,
                                step.template.as_deref().unwrap_or_default(),
                                step.when.as_deref(),
                                step.arguments.as_ref(),
                                id,
                                &scope,
                            )
                        }
                    };
                    self.add_child(&group_id, &child);
                    children.push(child);
                }
            }
            if !self.roll_up(&group_id, &children) {
                return;
            }
            if self.phase(&group_id).is_failed_or_error() {
                let failed = children
                    .iter()
                    .find(|c| self.phase(c).is_failed_or_error())
                    .cloned()
                    .unwrap_or_default();
                self.mark(id, Phase::Failed, Some(format!("child '{failed}' failed")));
                return;
            }
            for step in group {
                let step_id = self.id(&format!("{group_name}.{}", step.name));
                if let Some(node) = self.nodes.get(&step_id) {
                    add_node_scope(&mut scope, &format!("steps.{}", step.name), node);
                }
            }
            previous = Some(group_id);
        }
        self.complete_with_outputs(id, template, &scope);
    }

    /// A scheduling node's outputs (`valueFrom.parameter` over its children's) and success.
    fn complete_with_outputs(&mut self, id: &str, template: &Template, scope: &Scope) {
        let mut outputs = Outputs::default();
        for declared in template.outputs.iter().flat_map(|o| &o.parameters) {
            let from = declared.value_from.as_ref();
            let value = match from.and_then(|v| v.parameter.as_deref()) {
                Some(reference) => expr::substitute(reference, scope)
                    .ok()
                    .or_else(|| from.and_then(|v| v.default.clone())),
                None => declared.value.clone(),
            };
            let Some(value) = value else {
                let message = format!("output parameter {}: could not resolve", declared.name);
                self.mark(id, Phase::Error, Some(message));
                return;
            };
            outputs.parameters.push(Parameter {
                value: Some(value),
                ..declared.clone()
            });
        }
        if let Some(node) = self.nodes.get_mut(id)
            && !outputs.parameters.is_empty()
        {
            node.outputs = Some(outputs);
        }
        self.mark(id, Phase::Succeeded, None);
    }

    /// A step or task: skipped when `when` is false, else its template with its arguments.
    #[allow(clippy::too_many_arguments)]
    fn execute_step(
        &mut self,
        name: &str,
        display: &str,
        template: &str,
        when: Option<&str>,
        arguments: Option<&Arguments>,
        boundary: &str,
        scope: &Scope,
    ) -> String {
        let id = self.id(name);
        if self.nodes.contains_key(&id) {
            // Created in an earlier pass: its condition and arguments were settled then.
            if self.nodes[&id].type_ == "Skipped" || self.phase(&id).is_completed() {
                return id;
            }
        } else if let Some(when) = when {
            let decided = expr::substitute(when, scope).and_then(|w| expr::evaluate_when(&w));
            match decided {
                Err(message) => return self.error_call(name, display, boundary, message),
                Ok(false) => {
                    let message = format!("when '{when}' evaluated false");
                    return self.init_node(
                        name,
                        display,
                        "Skipped",
                        Some(template),
                        Some(boundary),
                        Phase::Skipped,
                        Some(message),
                    );
                }
                Ok(true) => {}
            }
        }
        let mut args = Vec::new();
        for parameter in arguments.iter().flat_map(|a| &a.parameters) {
            let value = match &parameter.value {
                Some(value) => match expr::substitute(value, scope) {
                    Ok(value) => Some(value),
                    Err(message) => {
                        let message = format!("arguments.parameters.{}: {message}", parameter.name);
                        return self.error_call(name, display, boundary, message);
                    }
                },
                None => None,
            };
            args.push(Parameter {
                value,
                ..parameter.clone()
            });
        }
        self.execute(Call {
            name: name.into(),
            display: display.into(),
            template,
            args,
            boundary: Some(boundary.into()),
            in_retry: false,
            extra: Scope::new(),
        })
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

    /// The nodes a step or task fans out to: `(name, display name, item tags)`; itself alone
    /// without `withItems`/`withParam`.
    #[allow(clippy::type_complexity)]
    fn expand(
        &self,
        name: &str,
        display: &str,
        items: &Option<Vec<Value>>,
        param: &Option<String>,
        scope: &Scope,
    ) -> Vec<(String, String, Result<Scope, String>)> {
        let items = match (items, param) {
            (Some(items), _) => items.clone(),
            (None, Some(param)) => {
                let parsed = expr::substitute(param, scope).and_then(|text| {
                    serde_json::from_str::<Vec<Value>>(&text).map_err(|err| {
                        format!("withParam value could not be parsed as a JSON list: {text}: {err}")
                    })
                });
                match parsed {
                    Ok(items) => items,
                    Err(message) => return vec![(name.into(), display.into(), Err(message))],
                }
            }
            (None, None) => return vec![(name.into(), display.into(), Ok(Scope::new()))],
        };
        items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let shown = item_display(item);
                let mut tags = Scope::new();
                tags.insert("item".into(), item_text(item));
                if let Value::Object(fields) = item {
                    for (key, value) in fields {
                        tags.insert(format!("item.{key}"), item_text(value));
                    }
                }
                (
                    format!("{name}({index}:{shown})"),
                    format!("{display}({index}:{shown})"),
                    Ok(tags),
                )
            })
            .collect()
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

    fn execute_dag(&mut self, id: &str, call: &Call, template: &Template, scope: Scope) {
        self.mark(id, Phase::Running, None);
        let dag = template.dag.clone().unwrap_or_default();
        let order = topological_order(&dag.tasks).expect("validated: no cycle");
        let task_id = |op: &Self, task: &str| op.id(&format!("{}.{task}", call.name));
        for index in order {
            let task = &dag.tasks[index];
            let name = format!("{}.{}", call.name, task.name);
            let tid = self.id(&name);
            if self.phase(&tid).is_completed() {
                continue;
            }
            let deps = dependencies(task);
            let dep_ids: Vec<String> = deps.iter().map(|d| task_id(self, d)).collect();
            if !dep_ids.iter().all(|d| self.phase(d).is_completed()) {
                continue;
            }
            let mut ready = match &task.depends {
                Some(depends) => expr::evaluate_depends(depends, |dep| {
                    Some(self.task_result(&task_id(self, dep)))
                }),
                None => Ok(dep_ids
                    .iter()
                    .all(|d| matches!(self.phase(d), Phase::Succeeded | Phase::Skipped))),
            };
            if let Err(message) = &ready {
                self.error_call(&name, &task.name, id, message.clone());
                ready = Ok(false);
            }
            let mut task_scope = scope.clone();
            for dep in &dag.tasks {
                if let Some(node) = self.nodes.get(&task_id(self, &dep.name)) {
                    add_node_scope(&mut task_scope, &format!("tasks.{}", dep.name), node);
                }
            }
            let child = if ready == Ok(false) {
                if !self.nodes.contains_key(&tid) {
                    self.init_node(
                        &name,
                        &task.name,
                        "Skipped",
                        task.template.as_deref(),
                        Some(id),
                        Phase::Omitted,
                        Some("omitted: depends condition not met".into()),
                    );
                }
                tid.clone()
            } else {
                let fanned = task.with_items.is_some() || task.with_param.is_some();
                let expanded = self.expand(
                    &name,
                    &task.name,
                    &task.with_items,
                    &task.with_param,
                    &task_scope,
                );
                let mut children = Vec::new();
                if fanned {
                    self.init_node(
                        &name,
                        &task.name,
                        "TaskGroup",
                        task.template.as_deref(),
                        Some(id),
                        Phase::Running,
                        None,
                    );
                }
                for (child_name, display, extra) in expanded {
                    let child = match extra {
                        Err(message) => self.error_call(&child_name, &display, id, message),
                        Ok(extra) => {
                            let mut item_scope = task_scope.clone();
                            item_scope.extend(extra);
                            self.execute_step(
                                &child_name,
                                &display,
                                task.template.as_deref().unwrap_or_default(),
                                task.when.as_deref(),
                                task.arguments.as_ref(),
                                id,
                                &item_scope,
                            )
                        }
                    };
                    children.push(child);
                }
                if fanned {
                    for child in &children {
                        self.add_child(&tid, child);
                    }
                    self.roll_up(&tid, &children);
                }
                tid.clone()
            };
            if dep_ids.is_empty() {
                self.add_child(id, &child);
            }
            for dep in &dep_ids {
                self.add_child(dep, &child);
            }
        }
        let all_done = dag
            .tasks
            .iter()
            .all(|t| self.phase(&task_id(self, &t.name)).is_completed());
        if !all_done {
            return;
        }
        let targets: Vec<String> = match &dag.target {
            Some(target) => target.split_whitespace().map(Into::into).collect(),
            None => {
                let depended: BTreeSet<String> = dag.tasks.iter().flat_map(dependencies).collect();
                dag.tasks
                    .iter()
                    .map(|t| t.name.clone())
                    .filter(|t| !depended.contains(t))
                    .collect()
            }
        };
        let tasks: BTreeMap<&str, Vec<String>> = dag
            .tasks
            .iter()
            .map(|t| (t.name.as_str(), dependencies(t)))
            .collect();
        for target in &targets {
            let phase = self.branch_phase(&call.name, target, &tasks);
            if phase.is_failed_or_error() {
                let failed = task_id(self, target);
                self.mark(id, Phase::Failed, Some(format!("child '{failed}' failed")));
                return;
            }
        }
        let mut scope = scope;
        for task in &dag.tasks {
            if let Some(node) = self.nodes.get(&task_id(self, &task.name)) {
                add_node_scope(&mut scope, &format!("tasks.{}", task.name), node);
            }
        }
        self.complete_with_outputs(id, template, &scope);
    }

    /// A task's phase for its DAG's: its own, or for an omitted task, the worst of the
    /// branches it hangs from (upstream: a failure's omitted descendants fail the DAG).
    fn branch_phase(&self, dag: &str, task: &str, tasks: &BTreeMap<&str, Vec<String>>) -> Phase {
        let phase = self.phase(&self.id(&format!("{dag}.{task}")));
        if phase != Phase::Omitted {
            return phase;
        }
        let parents = tasks.get(task).cloned().unwrap_or_default();
        parents
            .iter()
            .map(|p| self.branch_phase(dag, p, tasks))
            .find(|p| p.is_failed_or_error())
            .unwrap_or(Phase::Succeeded)
    }

    fn task_result(&self, id: &str) -> TaskResult {
        let phase = self.phase(id);
        let children: Vec<Phase> = self
            .nodes
            .get(id)
            .filter(|n| n.type_ == "TaskGroup")
            .map(|n| n.children.iter().map(|c| self.phase(c)).collect())
            .unwrap_or_default();
        TaskResult {
            succeeded: phase == Phase::Succeeded,
            failed: phase == Phase::Failed,
            errored: phase == Phase::Error,
            skipped: phase == Phase::Skipped,
            omitted: phase == Phase::Omitted,
            any_succeeded: children.contains(&Phase::Succeeded),
            all_failed: !children.is_empty() && children.iter().all(|p| *p == Phase::Failed),
        }
    }
}

/// The node type a template runs as.
fn node_type(template: &Template) -> &'static str {
    if template.container.is_some() || template.script.is_some() {
        "Pod"
    } else if template.steps.is_some() {
        "Steps"
    } else if template.dag.is_some() {
        "DAG"
    } else {
        "Pod"
    }
}

/// The template's input parameters with their values: the argument's, else the input's own
/// `value` or `default`.
fn resolve_inputs(template: &Template, args: &[Parameter]) -> Result<Vec<Parameter>, String> {
    let declared = template.inputs.iter().flat_map(|i| &i.parameters);
    declared
        .map(|input| {
            let given = args.iter().find(|a| a.name == input.name);
            let value = given
                .and_then(|a| a.value.clone())
                .or_else(|| input.value.clone())
                .or_else(|| input.default.clone())
                .ok_or_else(|| format!("inputs.parameters.{} was not supplied", input.name))?;
            Ok(Parameter {
                name: input.name.clone(),
                value: Some(value),
                ..Parameter::default()
            })
        })
        .collect()
}

/// The tasks a task waits for: those its `depends` names, else its `dependencies`.
fn dependencies(task: &ferry_types::workflow::DagTask) -> Vec<String> {
    match &task.depends {
        Some(depends) => expr::depends_names(depends),
        None => task.dependencies.clone(),
    }
}

/// Task indexes with every task after those it depends on; an unknown dependency or a cycle
/// is an error naming it.
fn topological_order(tasks: &[ferry_types::workflow::DagTask]) -> Result<Vec<usize>, String> {
    let index: BTreeMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    let mut deps = Vec::new();
    for task in tasks {
        let mut mine = Vec::new();
        for dep in dependencies(task) {
            let Some(&i) = index.get(dep.as_str()) else {
                return Err(format!(
                    "task {:?} depends on unknown task {dep:?}",
                    task.name
                ));
            };
            mine.push(i);
        }
        deps.push(mine);
    }
    // 0 unvisited, 1 on the current path, 2 done.
    let mut state = vec![0u8; tasks.len()];
    let mut order = Vec::new();
    fn visit(
        i: usize,
        deps: &[Vec<usize>],
        state: &mut [u8],
        order: &mut Vec<usize>,
        tasks: &[ferry_types::workflow::DagTask],
    ) -> Result<(), String> {
        match state[i] {
            2 => return Ok(()),
            1 => return Err(format!("dependency cycle through task {:?}", tasks[i].name)),
            _ => {}
        }
        state[i] = 1;
        for &d in &deps[i] {
            visit(d, deps, state, order, tasks)?;
        }
        state[i] = 2;
        order.push(i);
        Ok(())
    }
    for i in 0..tasks.len() {
        visit(i, &deps, &mut state, &mut order, tasks)?;
    }
    Ok(order)
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
    for parameter in &outputs.parameters {
        if let Some(value) = &parameter.value {
            scope.insert(
                format!("{prefix}.outputs.parameters.{}", parameter.name),
                value.clone(),
            );
        }
    }
}

/// `{{item}}`: strings as they are, anything else as JSON.
fn item_text(item: &Value) -> String {
    match item {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An item in a node's name: maps as `key:value,...` (sorted), as upstream.
fn item_display(item: &Value) -> String {
    match item {
        Value::Object(fields) => fields
            .iter()
            .map(|(k, v)| format!("{k}:{}", item_text(v)))
            .collect::<Vec<_>>()
            .join(","),
        other => item_text(other),
    }
}

/// Sets each node's progress (pods `0/1` until they succeed, others the sum of their
/// descendants') and returns the workflow's (the sum over pods).
fn progress(nodes: &mut BTreeMap<String, NodeStatus>) -> String {
    let pod_progress = |node: &NodeStatus| -> (u32, u32) {
        match node.phase {
            Phase::Succeeded | Phase::Skipped | Phase::Omitted => (1, 1),
            _ => (0, 1),
        }
    };
    fn sum(
        id: &str,
        nodes: &BTreeMap<String, NodeStatus>,
        seen: &mut BTreeSet<String>,
        pod: &dyn Fn(&NodeStatus) -> (u32, u32),
    ) -> (u32, u32) {
        if !seen.insert(id.to_string()) {
            return (0, 0);
        }
        let Some(node) = nodes.get(id) else {
            return (0, 0);
        };
        let own = if node.type_ == "Pod" {
            pod(node)
        } else {
            (0, 0)
        };
        node.children.iter().fold(own, |(d, t), child| {
            let (cd, ct) = sum(child, nodes, seen, pod);
            (d + cd, t + ct)
        })
    }
    let ids: Vec<String> = nodes.keys().cloned().collect();
    for id in &ids {
        let (done, total) = sum(id, nodes, &mut BTreeSet::new(), &pod_progress);
        if total > 0
            && let Some(node) = nodes.get_mut(id)
        {
            node.progress = Some(format!("{done}/{total}"));
        }
    }
    let (done, total) = nodes
        .values()
        .filter(|n| n.type_ == "Pod")
        .map(pod_progress)
        .fold((0, 0), |(d, t), (nd, nt)| (d + nd, t + nt));
    format!("{done}/{total}")
}
