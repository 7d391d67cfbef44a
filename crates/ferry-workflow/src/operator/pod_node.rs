//! A container or script node: its pod created, read back, and failed on the deadline.

use ferry_types::workflow::{Outputs, Parameter, Phase, Template};

use super::{Call, Op};
use crate::artifact;
use crate::expr::Scope;
use crate::names::pod_name;
use crate::pod::{self, PodRequest, PodView};
use crate::templates::Holder;

pub(super) const DEADLINE_MESSAGE: &str = "Step exceeded its deadline";

impl Op<'_> {
    /// Fails the unfinished pod nodes `picked` (given whether the node is the exit handler's)
    /// with `message` and deletes their pods: on the workflow's deadline and on shutdown.
    pub(super) fn fail_running_pods(&mut self, message: &str, picked: impl Fn(bool) -> bool) {
        let running: Vec<(String, String, String)> = self
            .nodes
            .values()
            .filter(|n| n.type_ == "Pod" && !n.phase.is_completed())
            .filter(|n| picked(self.is_exit_node(&n.name)))
            .map(|n| {
                let template = n.template_name.clone().unwrap_or_default();
                (n.id.clone(), n.name.clone(), template)
            })
            .collect();
        for (id, name, template) in running {
            self.mark(&id, Phase::Failed, Some(message.into()));
            let pod = pod_name(&self.name, &name, &template);
            if self.pods.contains_key(&pod) {
                self.outcome.delete.push(pod);
            }
        }
    }

    /// Reads the unfinished pod nodes from their pods, and nothing else: a suspended
    /// workflow's pass (upstream's pod reconciliation without the walk).
    pub(super) fn refresh_pods(&mut self) {
        let running: Vec<(String, String, String, Holder)> = self
            .nodes
            .values()
            .filter(|n| n.type_ == "Pod" && !n.phase.is_completed())
            .map(|n| {
                let template = n.template_name.clone().unwrap_or_default();
                let holder = Holder::from_scope(n.template_scope.as_deref());
                (n.id.clone(), n.name.clone(), template, holder)
            })
            .collect();
        for (id, name, template_name, holder) in running {
            let pod = pod_name(&self.name, &name, &template_name);
            let Some(view) = self.pods.get(&pod).cloned() else {
                continue;
            };
            let template = self
                .library
                .get(&holder, &template_name)
                .cloned()
                .unwrap_or_default();
            self.read_pod(&id, &template, &view);
        }
    }

    pub(super) fn execute_pod(
        &mut self,
        id: &str,
        call: &Call,
        template: &Template,
        scope: &Scope,
    ) {
        if self.deadline_exceeded && !self.in_exit_handler {
            self.mark(id, Phase::Failed, Some(DEADLINE_MESSAGE.into()));
            return;
        }
        if let Some(strategy) = self.shutdown
            && !strategy.should_execute(self.in_exit_handler)
        {
            let message = format!("workflow shutdown with strategy: {}", strategy.as_str());
            self.mark(id, Phase::Failed, Some(message));
            return;
        }
        let pod = pod_name(&self.name, &call.name, &template.name);
        let Some(view) = self.pods.get(&pod) else {
            if self.phase(id) == Phase::Running {
                self.mark(id, Phase::Error, Some("pod deleted".into()));
                return;
            }
            if !self.pod_slot_free(id) {
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
            let inputs = self.nodes[id]
                .inputs
                .as_ref()
                .map(|i| i.artifacts.clone())
                .unwrap_or_default();
            let repository = artifact::repository(self.workflow);
            let built = pod::build(&request, self.settings).and_then(|mut pod| {
                artifact::attach(&mut pod, &inputs, template, repository, &scope).map(|()| pod)
            });
            match built {
                Ok(pod) => self.outcome.create.push(pod),
                Err(message) => self.mark(id, Phase::Error, Some(message)),
            }
            return;
        };
        let view = view.clone();
        self.read_pod(id, template, &view);
    }

    /// Whether one more pod may start under the workflow's `parallelism`: its pods not yet
    /// finished, and those this pass creates, are fewer. The node waits Pending otherwise.
    fn pod_slot_free(&self, id: &str) -> bool {
        let Some(limit) = self.workflow.spec.parallelism else {
            return true;
        };
        let running = self
            .nodes
            .values()
            .filter(|n| n.type_ == "Pod" && n.id != id)
            .filter(|n| {
                let template = n.template_name.as_deref().unwrap_or_default();
                let pod = pod_name(&self.name, &n.name, template);
                self.pods
                    .get(&pod)
                    .is_some_and(|p| !matches!(p.phase.as_str(), "Succeeded" | "Failed"))
            })
            .count();
        i64::try_from(running + self.outcome.create.len()).unwrap_or(i64::MAX) < limit
    }

    fn read_pod(&mut self, id: &str, template: &Template, view: &PodView) {
        if let Some(node) = self.nodes.get_mut(id) {
            node.host_node_name = view.host.clone().or(node.host_node_name.take());
        }
        match view.phase.as_str() {
            "Running" => self.mark(id, Phase::Running, None),
            "Succeeded" | "Failed" => self.complete_pod(id, template, view),
            _ => {}
        }
    }

    pub(super) fn complete_pod(&mut self, id: &str, template: &Template, view: &PodView) {
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
        let (artifacts, missing_artifact) = artifact::reported_outputs(template, &report.artifacts);
        outputs.artifacts = artifacts;
        let missing = missing.or(missing_artifact);
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
}
