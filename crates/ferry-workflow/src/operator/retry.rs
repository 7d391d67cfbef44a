//! A template with a `retryStrategy`: a Retry node whose children are the attempts.

use ferry_types::workflow::{Parameter, Phase, Template};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Call, Op};

impl Op<'_> {
    pub(super) fn execute_retry(
        &mut self,
        call: Call,
        template: &Template,
        inputs: Vec<Parameter>,
    ) -> String {
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
                holder: call.holder.clone(),
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
    pub(super) fn init_placeholder(&mut self, retry: &str, next: &str) {
        if let Some(node) = self.nodes.get_mut(retry) {
            node.children.push(next.into());
        }
    }
}
