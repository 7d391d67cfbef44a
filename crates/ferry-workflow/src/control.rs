//! What `argo suspend|resume|stop|terminate` do to a Workflow (upstream's workflow/util):
//! edits of the object, written back by [`update`] with its resourceVersion so that a
//! concurrent write of the controller is never lost.

use std::collections::BTreeMap;

use ferry_types::Workflow;
use ferry_types::workflow::{NodeStatus, Phase};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PostParams};

/// `spec.shutdown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// No new steps; running pods are deleted; exit handlers still run.
    Stop,
    /// Nothing more runs, exit handlers included.
    Terminate,
}

impl Shutdown {
    /// The strategy `spec.shutdown` names (`None` when empty).
    pub fn parse(text: Option<&str>) -> Result<Option<Self>, String> {
        match text {
            None | Some("") => Ok(None),
            Some("Stop") => Ok(Some(Shutdown::Stop)),
            Some("Terminate") => Ok(Some(Shutdown::Terminate)),
            Some(other) => Err(format!(
                "spec.shutdown: {other:?} is not a strategy (Stop or Terminate)"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Shutdown::Stop => "Stop",
            Shutdown::Terminate => "Terminate",
        }
    }

    /// Whether a node may still run: under `Stop`, only the exit handler's.
    pub fn should_execute(self, in_exit_handler: bool) -> bool {
        self == Shutdown::Stop && in_exit_handler
    }
}

/// A node waiting in a suspend template.
pub fn is_active_suspend(node: &NodeStatus) -> bool {
    node.type_ == "Suspend" && node.phase == Phase::Running
}

/// Whether the workflow waits: `spec.suspend`, or a suspend node still waiting.
pub fn is_suspended(workflow: &Workflow) -> bool {
    workflow.spec.suspend == Some(true)
        || workflow
            .status
            .iter()
            .flat_map(|s| s.nodes.values())
            .any(is_active_suspend)
}

fn is_completed(workflow: &Workflow) -> bool {
    workflow
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .is_some_and(|p| p.is_completed())
}

/// `argo suspend`: no new steps until resumed.
pub fn suspend(workflow: &mut Workflow) -> Result<(), String> {
    if is_completed(workflow) {
        return Err("cannot suspend completed workflows".into());
    }
    workflow.spec.suspend = Some(true);
    Ok(())
}

/// `argo resume`: clears `spec.suspend` and ends the suspend nodes `selector` matches (all
/// when `None`) as Succeeded, their outputs given their defaults.
pub fn resume(
    workflow: &mut Workflow,
    selector: Option<&NodeSelector>,
    now: jiff::Timestamp,
) -> Result<(), String> {
    if selector.is_none() {
        workflow.spec.suspend = None;
    }
    let nodes = workflow
        .status
        .iter_mut()
        .flat_map(|s| s.nodes.values_mut());
    for node in nodes {
        if !is_active_suspend(node) || selector.is_some_and(|s| !s.matches(node)) {
            continue;
        }
        for parameter in node.outputs.iter_mut().flat_map(|o| &mut o.parameters) {
            if parameter.value.is_none() {
                parameter.value = parameter
                    .value_from
                    .as_ref()
                    .and_then(|v| v.default.clone());
            }
        }
        node.phase = Phase::Succeeded;
        node.finished_at = Some(Time(now));
    }
    Ok(())
}

/// `argo stop` / `argo terminate`.
pub fn shutdown(workflow: &mut Workflow, strategy: Shutdown) -> Result<(), String> {
    if is_completed(workflow) {
        let name = workflow.metadata.name.clone().unwrap_or_default();
        let namespace = workflow.metadata.namespace.clone().unwrap_or_default();
        return Err(format!(
            "cannot shutdown a completed workflow: workflow: {name:?}, namespace: {namespace:?}"
        ));
    }
    workflow.spec.shutdown = Some(strategy.as_str().into());
    Ok(())
}

/// Upstream's `--node-field-selector`: `field=value` and `field!=value` terms joined by
/// commas, over a node's `displayName`, `templateName`, `phase`, `name`, `id` and
/// `inputs.parameters.NAME.value`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSelector(Vec<(String, bool, String)>);

impl NodeSelector {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!("invalid node field selector term {term:?}"));
            };
            terms.push((field.trim().to_string(), equal, value.trim().to_string()));
        }
        Ok(NodeSelector(terms))
    }

    pub fn matches(&self, node: &NodeStatus) -> bool {
        let mut fields: BTreeMap<String, String> = BTreeMap::from([
            ("displayName".into(), node.display_name.clone()),
            (
                "templateName".into(),
                node.template_name.clone().unwrap_or_default(),
            ),
            ("phase".into(), node.phase.as_str().into()),
            ("name".into(), node.name.clone()),
            ("id".into(), node.id.clone()),
        ]);
        for parameter in node.inputs.iter().flat_map(|i| &i.parameters) {
            fields.insert(
                format!("inputs.parameters.{}.value", parameter.name),
                parameter.value.clone().unwrap_or_default(),
            );
        }
        self.0.iter().all(|(field, equal, value)| {
            (fields.get(field).map(String::as_str).unwrap_or("") == value) == *equal
        })
    }
}

/// Why [`update`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The edit refused the workflow as it is (e.g. a completed one cannot be suspended).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// Reads workflow `name`, applies `edit` and writes it back, again on a conflict.
pub async fn update(
    api: &Api<Workflow>,
    name: &str,
    edit: impl Fn(&mut Workflow) -> Result<(), String>,
) -> Result<Workflow, UpdateError> {
    loop {
        let mut workflow = api.get(name).await?;
        edit(&mut workflow).map_err(UpdateError::Refused)?;
        match api.replace(name, &PostParams::default(), &workflow).await {
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            other => return Ok(other?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(type_: &str, phase: Phase, display: &str) -> NodeStatus {
        NodeStatus {
            id: format!("id-{display}"),
            name: format!("wf.{display}"),
            display_name: display.into(),
            type_: type_.into(),
            phase,
            ..NodeStatus::default()
        }
    }

    #[test]
    fn resume_ends_the_waiting_suspend_nodes_the_selector_picks() {
        let mut wf = Workflow::default();
        wf.spec.suspend = Some(true);
        let status = wf.status.get_or_insert_default();
        for n in [
            node("Suspend", Phase::Running, "approve"),
            node("Suspend", Phase::Running, "other"),
            node("Pod", Phase::Running, "build"),
        ] {
            status.nodes.insert(n.id.clone(), n);
        }
        assert!(is_suspended(&wf));
        let selector = NodeSelector::parse("displayName=approve").unwrap();
        resume(&mut wf, Some(&selector), jiff::Timestamp::UNIX_EPOCH).unwrap();
        let nodes = &wf.status.as_ref().unwrap().nodes;
        assert_eq!(nodes["id-approve"].phase, Phase::Succeeded);
        assert_eq!(nodes["id-other"].phase, Phase::Running);
        assert_eq!(wf.spec.suspend, Some(true), "a selector resumes nodes only");
        resume(&mut wf, None, jiff::Timestamp::UNIX_EPOCH).unwrap();
        let nodes = &wf.status.as_ref().unwrap().nodes;
        assert_eq!(nodes["id-other"].phase, Phase::Succeeded);
        assert_eq!(nodes["id-build"].phase, Phase::Running);
        assert_eq!(wf.spec.suspend, None);
        assert!(!is_suspended(&wf));
    }

    #[test]
    fn selectors_compare_fields() {
        let n = node("Suspend", Phase::Running, "approve");
        let pick = |s: &str| NodeSelector::parse(s).unwrap().matches(&n);
        assert!(pick("displayName=approve,phase=Running"));
        assert!(!pick("displayName!=approve"));
        assert!(pick("templateName!=x"));
        assert!(NodeSelector::parse("nonsense").is_err());
    }

    #[test]
    fn completed_workflows_are_not_shut_down() {
        let mut wf = Workflow::default();
        shutdown(&mut wf, Shutdown::Stop).unwrap();
        assert_eq!(wf.spec.shutdown.as_deref(), Some("Stop"));
        wf.status.get_or_insert_default().phase = Some(Phase::Succeeded);
        assert!(shutdown(&mut wf, Shutdown::Terminate).is_err());
        assert!(suspend(&mut wf).is_err());
        assert_eq!(
            Shutdown::parse(Some("Halt")).unwrap_err().split(':').next(),
            Some("spec.shutdown")
        );
    }
}
