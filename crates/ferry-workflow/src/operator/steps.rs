//! `steps` templates: groups one after the other, the steps of a group in parallel.

use ferry_types::workflow::{
    Arguments, NodeStatus, Outputs, Parameter, Phase, Template, TemplateRef,
};

use super::{Call, Op, add_node_scope};
use crate::expr::{self, Scope};
use crate::templates::{Holder, target};

impl Op<'_> {
    pub(super) fn execute_steps(
        &mut self,
        id: &str,
        call: &Call,
        template: &Template,
        mut scope: Scope,
    ) {
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
                    &step.with_sequence,
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
                                &call.holder,
                                step.template.as_deref(),
                                step.template_ref.as_ref(),
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
    pub(super) fn complete_with_outputs(&mut self, id: &str, template: &Template, scope: &Scope) {
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

    /// Whether one more step or task may start under the `parallelism` of the steps or dag
    /// node `boundary`'s template: fewer of its steps or tasks are unfinished (a Retry node
    /// and its attempt count once).
    fn child_slot_free(&self, boundary: &str) -> bool {
        let Some(node) = self.nodes.get(boundary) else {
            return true;
        };
        let holder = Holder::from_scope(node.template_scope.as_deref());
        let limit = node
            .template_name
            .as_deref()
            .and_then(|t| self.library.get(&holder, t))
            .and_then(|t| t.parallelism);
        let Some(limit) = limit else {
            return true;
        };
        let attempt = |n: &NodeStatus| {
            let Some((retry, rest)) = n.name.rsplit_once('(') else {
                return false;
            };
            let digits = rest
                .strip_suffix(')')
                .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()));
            digits
                && self
                    .nodes
                    .get(&self.id(retry))
                    .is_some_and(|r| r.type_ == "Retry")
        };
        let running = self
            .nodes
            .values()
            .filter(|n| n.boundary_id.as_deref() == Some(boundary) && !n.phase.is_completed())
            .filter(|n| !matches!(n.type_.as_str(), "StepGroup" | "TaskGroup") && !attempt(n))
            .count();
        i64::try_from(running).unwrap_or(i64::MAX) < limit
    }

    /// A step or task: skipped when `when` is false, else its template with its arguments.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn execute_step(
        &mut self,
        name: &str,
        display: &str,
        holder: &Holder,
        template: Option<&str>,
        reference: Option<&TemplateRef>,
        when: Option<&str>,
        arguments: Option<&Arguments>,
        boundary: &str,
        scope: &Scope,
    ) -> String {
        let Some((holder, template)) = target(holder, template, reference) else {
            let message = "template is required".to_string();
            return self.error_call(name, display, boundary, message);
        };
        let template = template.as_str();
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
        if !self.nodes.contains_key(&id) && !self.child_slot_free(boundary) {
            // Not created: a later pass starts it once a sibling finished.
            return id;
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
        let mut artifacts = Vec::new();
        for artifact in arguments.iter().flat_map(|a| &a.artifacts) {
            match crate::artifact::resolve_argument(artifact, scope) {
                Ok(artifact) => artifacts.push(artifact),
                Err(message) => return self.error_call(name, display, boundary, message),
            }
        }
        self.execute(Call {
            name: name.into(),
            display: display.into(),
            template,
            holder,
            args,
            boundary: Some(boundary.into()),
            in_retry: false,
            extra: Scope::new(),
            artifacts,
        })
    }
}
