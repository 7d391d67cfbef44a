//! What goes once done: pods by `podGC` (each as it finishes, or all when the workflow
//! does), and the finished workflow by `ttlStrategy`. Decided from the status the controller
//! has already written, so a pod is only ever deleted after its outcome was recorded.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_types::Workflow;
use ferry_types::workflow::Phase;
use jiff::{SignedDuration, Timestamp};

use crate::duration;
use crate::names::pod_name;
use crate::pod::PodView;

/// What to delete now, and when to look again.
#[derive(Debug, Default, PartialEq)]
pub struct Collect {
    pub pods: Vec<String>,
    pub workflow: bool,
    pub requeue_after: Option<Duration>,
}

impl Collect {
    /// `item` is due at `at`: collected now, or looked at again then.
    fn due(&mut self, at: Timestamp, now: Timestamp) -> bool {
        if at <= now {
            return true;
        }
        let wait = Duration::from_secs_f64(now.duration_until(at).as_secs_f64() + 0.1);
        self.requeue_after = Some(self.requeue_after.map_or(wait, |r| r.min(wait)));
        false
    }
}

/// The pods (by name, among `pods`) and whether the workflow itself are to go at `now`.
pub fn collect(
    workflow: &Workflow,
    pods: &BTreeMap<String, PodView>,
    now: Timestamp,
) -> Result<Collect, String> {
    let mut out = Collect::default();
    let Some(status) = &workflow.status else {
        return Ok(out);
    };
    let name = workflow.metadata.name.clone().unwrap_or_default();
    let spec = &workflow.spec;
    let phase = status.phase.filter(|p| p.is_completed());
    let finished = status.finished_at.as_ref().map(|t| t.0);
    if let Some(gc) = &spec.pod_gc {
        let delay = match gc.delete_delay_duration.as_deref() {
            Some(text) => duration::parse(text)
                .map_err(|message| format!("podGC.deleteDelayDuration: {message}"))?,
            None => SignedDuration::ZERO,
        };
        let strategy = gc.strategy.as_deref().unwrap_or("");
        let whole = match strategy {
            "OnWorkflowCompletion" => phase.is_some(),
            "OnWorkflowSuccess" => phase == Some(Phase::Succeeded),
            "OnPodCompletion" | "OnPodSuccess" | "" => false,
            other => return Err(format!("podGC.strategy: unknown strategy {other:?}")),
        };
        for node in status.nodes.values().filter(|n| n.type_ == "Pod") {
            let template = node.template_name.as_deref().unwrap_or_default();
            let pod = pod_name(&name, &node.name, template);
            if !pods.contains_key(&pod) {
                continue;
            }
            let since = match strategy {
                _ if whole => finished,
                "OnPodCompletion" if node.phase.is_completed() => {
                    node.finished_at.clone().map(|t| t.0)
                }
                "OnPodSuccess" if node.phase == Phase::Succeeded => {
                    node.finished_at.clone().map(|t| t.0)
                }
                _ => None,
            };
            if let Some(since) = since
                && out.due(since + delay, now)
            {
                out.pods.push(pod);
            }
        }
    }
    if let (Some(ttl), Some(phase), Some(finished)) = (&spec.ttl_strategy, phase, finished) {
        let specific = match phase {
            Phase::Succeeded => ttl.seconds_after_success,
            Phase::Failed | Phase::Error => ttl.seconds_after_failure,
            _ => None,
        };
        if let Some(seconds) = specific.or(ttl.seconds_after_completion) {
            out.workflow = out.due(finished + SignedDuration::from_secs(seconds), now);
        }
    }
    Ok(out)
}
