//! A template with a `retryStrategy`: a Retry node whose children are the attempts.

use ferry_types::workflow::{Backoff, Parameter, Phase, Template};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use jiff::SignedDuration;

use super::{Call, Op};
use crate::duration;

/// What a backoff says about the next attempt.
enum Wait {
    Retry,
    /// Not yet; the retry node's message says how long.
    Until(String),
    /// Never: the message says why.
    GiveUp(String),
}

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
                artifacts: call.artifacts.clone(),
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
                    if let Some(strategy) = self.shutdown {
                        let message = format!("Stopped with strategy '{}'", strategy.as_str());
                        self.mark(&id, done.phase, Some(message));
                        return id;
                    }
                    if retried && attempts_left && !self.deadline_exceeded {
                        if let Some(backoff) = &strategy.backoff {
                            match self.backoff(&id, backoff, attempts) {
                                Ok(Wait::Retry) => {}
                                Ok(Wait::Until(message)) => {
                                    self.mark(&id, Phase::Running, Some(message));
                                    return id;
                                }
                                Ok(Wait::GiveUp(message)) | Err(message) => {
                                    self.mark(&id, done.phase, Some(message));
                                    return id;
                                }
                            }
                        }
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

    /// Whether the next attempt may start now, after `attempts` finished attempts of retry
    /// node `id` (upstream's backoff: the first retry waits `duration`, each next one
    /// `factor` times longer, up to `cap`; none starts past `maxDuration` from the first).
    fn backoff(&mut self, id: &str, backoff: &Backoff, attempts: usize) -> Result<Wait, String> {
        let parse = |field: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(duration::parse)
                .transpose()
                .map_err(|message| format!("retryStrategy.backoff.{field}: {message}"))
        };
        let prefix = format!("{}(", self.nodes[id].name);
        let children: Vec<String> = self.nodes[id]
            .children
            .iter()
            .filter(|c| {
                self.nodes
                    .get(*c)
                    .is_some_and(|n| n.name.starts_with(&prefix))
            })
            .cloned()
            .collect();
        let started = |child: Option<&String>| {
            child
                .and_then(|c| self.nodes.get(c))
                .and_then(|n| n.started_at.clone())
        };
        let first_started = started(children.first()).map(|t| t.0);
        let last_finished = children
            .last()
            .and_then(|c| self.nodes.get(c))
            .and_then(|n| n.finished_at.clone())
            .map_or(self.now.0, |t| t.0);
        let give_up_at = match (parse("maxDuration", &backoff.max_duration)?, first_started) {
            (Some(max), Some(first)) => Some(first + max),
            _ => None,
        };
        if give_up_at.is_some_and(|at| self.now.0 > at) {
            return Ok(Wait::GiveUp("Max duration limit exceeded".into()));
        }
        let base = parse("duration", &backoff.duration)?
            .ok_or("retryStrategy.backoff.duration: no base duration specified")?;
        let factor = match &backoff.factor {
            None => 0,
            Some(IntOrString::Int(n)) => i64::from(*n),
            Some(IntOrString::String(s)) => s
                .parse()
                .map_err(|_| format!("retryStrategy.backoff.factor: {s:?} is not a number"))?,
        };
        let mut wait = base;
        if factor > 0 {
            let power = u32::try_from(attempts.saturating_sub(1)).unwrap_or(u32::MAX);
            let times = factor.checked_pow(power).unwrap_or(i64::MAX);
            wait = base
                .checked_mul(i32::try_from(times).unwrap_or(i32::MAX))
                .unwrap_or(SignedDuration::MAX);
        }
        if let Some(cap) = parse("cap", &backoff.cap)? {
            wait = wait.min(cap);
        }
        let retry_at = last_finished + wait;
        if give_up_at.is_some_and(|at| retry_at > at) {
            return Ok(Wait::GiveUp(
                "Backoff would exceed max duration limit".into(),
            ));
        }
        if self.now.0 < retry_at {
            self.requeue_at(retry_at);
            return Ok(Wait::Until(format!("Backoff for {wait:#}")));
        }
        if let Some(node) = self.nodes.get_mut(id) {
            node.message = None;
        }
        Ok(Wait::Retry)
    }

    /// Counts the next attempt among the retry node's children before it exists, so the loop
    /// names it; `execute` then creates it.
    pub(super) fn init_placeholder(&mut self, retry: &str, next: &str) {
        if let Some(node) = self.nodes.get_mut(retry) {
            node.children.push(next.into());
        }
    }
}
