//! Suspend templates: a node that waits, Running, until `argo resume` marks it Succeeded
//! (see [`crate::control::resume`]) or its `duration` has passed.

use ferry_types::workflow::{Phase, Template};

use super::Op;
use super::pod_node::DEADLINE_MESSAGE;
use crate::control::is_active_suspend;
use crate::duration;

impl Op<'_> {
    pub(super) fn execute_suspend(&mut self, id: &str, template: &Template) {
        if self.deadline_exceeded && !self.in_exit_handler {
            self.mark(id, Phase::Failed, Some(DEADLINE_MESSAGE.into()));
            return;
        }
        if let Some(strategy) = self.shutdown
            && !strategy.should_execute(self.in_exit_handler)
        {
            let message = format!("Stopped with strategy '{}'", strategy.as_str());
            self.mark(id, Phase::Failed, Some(message));
            return;
        }
        self.mark(id, Phase::Running, None);
        let wait = template
            .suspend
            .as_ref()
            .and_then(|s| s.duration.as_deref());
        let Some(wait) = wait else {
            return;
        };
        let wait = match duration::parse(wait) {
            Ok(wait) => wait,
            Err(message) => {
                self.mark(
                    id,
                    Phase::Error,
                    Some(format!("suspend.duration: {message}")),
                );
                return;
            }
        };
        let started = self.nodes[id]
            .started_at
            .clone()
            .map_or(self.now.0, |t| t.0);
        let until = started + wait;
        if self.now.0 < until {
            self.requeue_at(until);
            return;
        }
        // Resumed by the clock, as by `argo resume`: outputs take their defaults.
        if let Some(node) = self.nodes.get_mut(id) {
            let declared = template.outputs.iter().flat_map(|o| &o.parameters);
            let parameters: Vec<_> = declared
                .map(|p| ferry_types::workflow::Parameter {
                    value: p
                        .value
                        .clone()
                        .or_else(|| p.value_from.as_ref().and_then(|v| v.default.clone())),
                    ..p.clone()
                })
                .collect();
            if !parameters.is_empty() {
                node.outputs = Some(ferry_types::workflow::Outputs {
                    parameters,
                    ..Default::default()
                });
            }
        }
        self.mark(id, Phase::Succeeded, None);
    }

    /// Fails the waiting suspend nodes `picked` (given whether the node is the exit
    /// handler's) with `message`: on the workflow's deadline and on shutdown.
    pub(super) fn fail_suspend_nodes(&mut self, message: &str, picked: impl Fn(bool) -> bool) {
        let waiting: Vec<String> = self
            .nodes
            .values()
            .filter(|n| is_active_suspend(n) && picked(self.is_exit_node(&n.name)))
            .map(|n| n.id.clone())
            .collect();
        for id in waiting {
            self.mark(&id, Phase::Failed, Some(message.into()));
        }
    }
}
