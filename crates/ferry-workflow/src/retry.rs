//! What `argo retry` and `argo resubmit` make of a finished Workflow (upstream's
//! `FormulateRetryWorkflow` and `FormulateResubmitWorkflow`): retry keeps the workflow and its
//! succeeded nodes, drops the failed pod nodes with what hangs below them and reopens the
//! steps, DAGs and groups above them, so the controller runs only those again; resubmit is a
//! new workflow from the old one's spec.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ferry_types::Workflow;
use ferry_types::workflow::{NodeStatus, Parameter, Phase, labels};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Api;
use kube::api::{DeleteParams, PostParams};

use crate::control::{NodeSelector, UpdateError};
use crate::names::pod_name;

/// On a resubmitted workflow: the name of the workflow it was resubmitted from.
pub const RESUBMITTED_FROM: &str = "workflows.argoproj.io/resubmitted-from-workflow";
/// Labels a resubmitted workflow does not inherit (upstream's list, ferry's subset).
const NOT_INHERITED: [&str; 4] = [
    "workflows.argoproj.io/creator",
    "workflows.argoproj.io/phase",
    labels::COMPLETED,
    "workflows.argoproj.io/workflow-archiving-status",
];

/// A retried workflow and the pods to delete before it is written back (they have the names
/// the new attempts' pods will get).
#[derive(Debug)]
pub struct Retry {
    pub workflow: Workflow,
    pub delete_pods: Vec<String>,
}

/// Nodes that group others; reopened when something below them runs again.
fn is_group(node: &NodeStatus) -> bool {
    matches!(
        node.type_.as_str(),
        "Steps" | "StepGroup" | "DAG" | "TaskGroup" | "Retry"
    )
}

/// `argo retry`: a Failed or Error workflow (a Succeeded one only with `restart_successful`
/// and a selector) with its failed pod nodes removed — unless a node below one succeeded, as
/// a DAG task depending on `.Failed` does — together with the nodes below them, the nodes
/// `selector` picks when `restart_successful`, and the exit handler's nodes. The groups above
/// them are Running again; the workflow is Running with no message, `spec.shutdown` cleared
/// and `parameters` (`NAME=VALUE`) overriding its arguments.
pub fn retry(
    workflow: &Workflow,
    restart_successful: bool,
    selector: Option<&NodeSelector>,
    parameters: &[String],
    now: jiff::Timestamp,
) -> Result<Retry, String> {
    let status = workflow.status.clone().unwrap_or_default();
    match status.phase {
        Some(Phase::Failed | Phase::Error) => {}
        Some(Phase::Succeeded) if restart_successful && selector.is_some() => {}
        Some(Phase::Succeeded) => {
            return Err("To retry a succeeded workflow, set the options restartSuccessful and nodeFieldSelector".into());
        }
        phase => {
            return Err(format!(
                "Cannot retry a workflow in phase {}",
                phase.map_or("", Phase::as_str)
            ));
        }
    }
    let name = workflow.metadata.name.clone().unwrap_or_default();
    let nodes = &status.nodes;
    let parents = parents(nodes);

    let mut start: BTreeSet<String> = BTreeSet::new();
    if restart_successful && let Some(selector) = selector {
        start.extend(
            nodes
                .values()
                .filter(|n| selector.matches(n))
                .map(|n| n.id.clone()),
        );
    }
    for node in nodes.values() {
        if node.type_ != "Pod" || !node.phase.is_failed_or_error() {
            continue;
        }
        // An attempt of a retry node: the retry node starts over, with fresh attempts.
        let retried = parents
            .get(&node.id)
            .into_iter()
            .flatten()
            .find(|p| nodes.get(*p).is_some_and(|n| n.type_ == "Retry"))
            .and_then(|p| nodes.get(p))
            .unwrap_or(node);
        if !descendant_succeeded(nodes, retried, &start) {
            start.insert(retried.id.clone());
        }
    }
    let exit_prefix = format!("{name}.onExit");
    start.extend(
        nodes
            .values()
            .filter(|n| n.name.starts_with(&exit_prefix))
            .map(|n| n.id.clone()),
    );

    // The starting nodes and everything below them go.
    let mut removed = BTreeSet::new();
    let mut queue: Vec<String> = start.into_iter().collect();
    while let Some(id) = queue.pop() {
        if removed.insert(id.clone())
            && let Some(node) = nodes.get(&id)
        {
            queue.extend(node.children.iter().cloned());
        }
    }
    // Groups above them run again.
    let mut reopen = BTreeSet::new();
    let mut queue: Vec<String> = removed.iter().cloned().collect();
    while let Some(id) = queue.pop() {
        for parent in parents.get(&id).into_iter().flatten() {
            if !removed.contains(parent) && reopen.insert(parent.clone()) {
                queue.push(parent.clone());
            }
        }
    }

    let mut retried = workflow.clone();
    let mut delete_pods = Vec::new();
    let mut kept = BTreeMap::new();
    for (id, node) in nodes {
        if removed.contains(id) {
            if node.type_ == "Pod" {
                let template = node
                    .template_ref
                    .as_ref()
                    .map(|r| r.template.clone())
                    .or_else(|| node.template_name.clone())
                    .unwrap_or_default();
                delete_pods.push(pod_name(&name, &node.name, &template));
            }
            continue;
        }
        let mut node = node.clone();
        node.children.retain(|c| !removed.contains(c));
        if reopen.contains(id) && is_group(&node) {
            if node.phase != Phase::Skipped {
                node.phase = Phase::Running;
            }
            node.message = None;
            node.finished_at = None;
        }
        kept.insert(id.clone(), node);
    }
    if let Some(labels) = retried.metadata.labels.as_mut() {
        labels.remove(labels::COMPLETED);
    }
    if retried.spec.active_deadline_seconds == Some(0) {
        retried.spec.active_deadline_seconds = None;
    }
    retried.spec.shutdown = None;
    override_parameters(&mut retried, parameters)?;
    let out = retried.status.get_or_insert_default();
    out.nodes = kept;
    out.phase = Some(Phase::Running);
    out.message = None;
    out.started_at = Some(Time(now));
    out.finished_at = None;
    Ok(Retry {
        workflow: retried,
        delete_pods,
    })
}

/// [`retry`] of workflow `name` in the cluster, as upstream's server and CLI do it: the
/// failed pods deleted (and awaited, a minute at most) first, then the retried workflow
/// written back at the resourceVersion read, again from the start on a conflict.
pub async fn retry_in_cluster(
    workflows: &Api<Workflow>,
    pods: &Api<Pod>,
    name: &str,
    restart_successful: bool,
    selector: Option<&NodeSelector>,
    parameters: &[String],
) -> Result<Workflow, UpdateError> {
    loop {
        let workflow = workflows.get(name).await?;
        let retried = retry(
            &workflow,
            restart_successful,
            selector,
            parameters,
            jiff::Timestamp::now(),
        )
        .map_err(UpdateError::Refused)?;
        // The new attempts' pods get the old ones' names: those must be gone first, or the
        // controller would read the old outcome again.
        for pod in &retried.delete_pods {
            match pods.delete(pod, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.is_not_found() => {}
                Err(err) => return Err(err.into()),
            }
        }
        for pod in &retried.delete_pods {
            let mut waited = 0;
            while pods.get_opt(pod).await?.is_some() {
                if waited >= 120 {
                    return Err(UpdateError::Refused(format!(
                        "pod {pod} is still there after 60s; retry again once it is gone"
                    )));
                }
                waited += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        match workflows
            .replace(name, &PostParams::default(), &retried.workflow)
            .await
        {
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            other => return Ok(other?),
        }
    }
}

/// `argo resubmit` (not memoized): a new workflow, generated from the old one's
/// `generateName` or `<name>-`, with its spec (shutdown cleared), its labels and annotations
/// but no status, labelled with the workflow it came from; `parameters` override arguments.
pub fn resubmit(workflow: &Workflow, parameters: &[String]) -> Result<Workflow, String> {
    let old = &workflow.metadata;
    let name = old.name.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = old
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !NOT_INHERITED.contains(&k.as_str()))
        .collect();
    labels.insert(RESUBMITTED_FROM.into(), name.clone());
    let mut new = Workflow {
        metadata: ObjectMeta {
            generate_name: Some(old.generate_name.clone().unwrap_or(format!("{name}-"))),
            namespace: old.namespace.clone(),
            labels: Some(labels),
            annotations: old.annotations.clone(),
            owner_references: old.owner_references.clone(),
            ..ObjectMeta::default()
        },
        spec: workflow.spec.clone(),
        status: None,
        unknown: workflow.unknown.clone(),
    };
    if new.spec.active_deadline_seconds == Some(0) {
        new.spec.active_deadline_seconds = None;
    }
    new.spec.shutdown = None;
    override_parameters(&mut new, parameters)?;
    Ok(new)
}

/// Upstream's `-p NAME=VALUE`: the given parameters first, then the workflow's others.
pub fn override_parameters(workflow: &mut Workflow, parameters: &[String]) -> Result<(), String> {
    if parameters.is_empty() {
        return Ok(());
    }
    let mut given = Vec::new();
    for text in parameters {
        let Some((name, value)) = text.split_once('=') else {
            return Err(format!(
                "expected parameter of the form: NAME=VALUE. Received: {text}"
            ));
        };
        given.push(Parameter {
            name: name.into(),
            value: Some(value.into()),
            ..Parameter::default()
        });
    }
    let arguments = workflow.spec.arguments.get_or_insert_default();
    for parameter in arguments.parameters.drain(..) {
        if !given.iter().any(|g| g.name == parameter.name) {
            given.push(parameter);
        }
    }
    arguments.parameters = given;
    Ok(())
}

/// The nodes listing each node among their children.
fn parents(nodes: &BTreeMap<String, NodeStatus>) -> BTreeMap<String, Vec<String>> {
    let mut parents: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for node in nodes.values() {
        for child in &node.children {
            parents
                .entry(child.clone())
                .or_default()
                .push(node.id.clone());
        }
    }
    parents
}

/// Whether a node below `node` succeeded (and is not itself being reset).
fn descendant_succeeded(
    nodes: &BTreeMap<String, NodeStatus>,
    node: &NodeStatus,
    reset: &BTreeSet<String>,
) -> bool {
    let mut seen = BTreeSet::new();
    let mut queue: Vec<&String> = node.children.iter().collect();
    while let Some(id) = queue.pop() {
        if !seen.insert(id) {
            continue;
        }
        let Some(child) = nodes.get(id) else { continue };
        if child.phase == Phase::Succeeded && !reset.contains(id) {
            return true;
        }
        queue.extend(child.children.iter());
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, type_: &str, phase: Phase, children: &[&str]) -> NodeStatus {
        NodeStatus {
            id: id.into(),
            name: id.into(),
            display_name: id.into(),
            type_: type_.into(),
            template_name: Some("t".into()),
            phase,
            children: children.iter().map(|c| c.to_string()).collect(),
            message: phase.is_failed_or_error().then(|| "boom".into()),
            finished_at: Some(Time(jiff::Timestamp::UNIX_EPOCH)),
            ..NodeStatus::default()
        }
    }

    /// `wf`: steps [[ok]], [[bad, fine]], then a DAG-like `.Failed` handler under `caught`.
    fn failed_workflow() -> Workflow {
        let mut wf = Workflow::default();
        wf.metadata.name = Some("wf".into());
        wf.metadata.labels = Some([(labels::COMPLETED.to_string(), "true".into())].into());
        wf.spec.shutdown = Some("Stop".into());
        let status = wf.status.get_or_insert_default();
        status.phase = Some(Phase::Failed);
        status.message = Some("child failed".into());
        for n in [
            node("wf", "Steps", Phase::Failed, &["wf[0]"]),
            node("wf[0]", "StepGroup", Phase::Succeeded, &["wf[0].ok"]),
            node("wf[0].ok", "Pod", Phase::Succeeded, &["wf[1]"]),
            node(
                "wf[1]",
                "StepGroup",
                Phase::Failed,
                &["wf[1].bad", "wf[1].flaky", "wf[1].caught"],
            ),
            node("wf[1].bad", "Pod", Phase::Failed, &[]),
            node("wf[1].flaky", "Retry", Phase::Failed, &["wf[1].flaky(0)"]),
            node("wf[1].flaky(0)", "Pod", Phase::Error, &[]),
            node("wf[1].caught", "Pod", Phase::Failed, &["handler"]),
            node("handler", "Pod", Phase::Succeeded, &[]),
            node("wf.onExit", "Pod", Phase::Succeeded, &[]),
        ] {
            status.nodes.insert(n.id.clone(), n);
        }
        wf
    }

    #[test]
    fn retry_drops_failed_pods_and_reopens_their_groups() {
        let wf = failed_workflow();
        let out = retry(
            &wf,
            false,
            None,
            &["x=2".into()],
            jiff::Timestamp::UNIX_EPOCH,
        )
        .unwrap();
        let status = out.workflow.status.as_ref().unwrap();
        let ids: Vec<&str> = status.nodes.keys().map(String::as_str).collect();
        assert_eq!(
            ids,
            [
                "handler",
                "wf",
                "wf[0]",
                "wf[0].ok",
                "wf[1]",
                "wf[1].caught"
            ],
            "failed pods, the retry node with its attempts and the exit handler go; a failure whose handler succeeded stays"
        );
        assert_eq!(status.phase, Some(Phase::Running));
        assert_eq!(status.message, None);
        assert_eq!(status.nodes["wf"].phase, Phase::Running);
        assert_eq!(status.nodes["wf[1]"].phase, Phase::Running);
        assert_eq!(status.nodes["wf[1]"].finished_at, None);
        assert_eq!(status.nodes["wf[1]"].children, ["wf[1].caught"]);
        assert_eq!(
            status.nodes["wf[0]"].phase,
            Phase::Running,
            "reopened, rolled up again by the controller"
        );
        assert_eq!(status.nodes["wf[0].ok"].phase, Phase::Succeeded);
        let mut pods = out.delete_pods.clone();
        pods.sort();
        assert_eq!(pods.len(), 3, "{pods:?}");
        assert!(pods.contains(&pod_name("wf", "wf[1].bad", "t")));
        assert!(pods.contains(&pod_name("wf", "wf.onExit", "t")));
        assert_eq!(out.workflow.spec.shutdown, None);
        assert!(
            !out.workflow
                .metadata
                .labels
                .unwrap()
                .contains_key(labels::COMPLETED)
        );
        assert_eq!(out.workflow.spec.arguments.unwrap().parameters[0].name, "x");
    }

    #[test]
    fn succeeded_workflows_retry_only_what_a_selector_picks() {
        let mut wf = failed_workflow();
        wf.status.as_mut().unwrap().phase = Some(Phase::Succeeded);
        let err = retry(&wf, false, None, &[], jiff::Timestamp::UNIX_EPOCH).unwrap_err();
        assert!(err.starts_with("To retry a succeeded workflow"), "{err}");
        let selector = NodeSelector::parse("displayName=wf[0].ok").unwrap();
        let out = retry(&wf, true, Some(&selector), &[], jiff::Timestamp::UNIX_EPOCH).unwrap();
        let nodes = &out.workflow.status.unwrap().nodes;
        assert!(!nodes.contains_key("wf[0].ok"));
        assert!(!nodes.contains_key("wf[1]"), "below the restarted node");
        wf.status.as_mut().unwrap().phase = Some(Phase::Running);
        let err = retry(&wf, false, None, &[], jiff::Timestamp::UNIX_EPOCH).unwrap_err();
        assert_eq!(err, "Cannot retry a workflow in phase Running");
    }

    #[test]
    fn resubmit_is_a_new_workflow_from_the_spec() {
        let mut wf = failed_workflow();
        wf.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("team".into(), "a".into());
        wf.spec.arguments = Some(ferry_types::workflow::Arguments {
            parameters: vec![
                Parameter {
                    name: "x".into(),
                    value: Some("1".into()),
                    ..Parameter::default()
                },
                Parameter {
                    name: "y".into(),
                    value: Some("1".into()),
                    ..Parameter::default()
                },
            ],
            ..Default::default()
        });
        let new = resubmit(&wf, &["y=2".into()]).unwrap();
        assert_eq!(new.metadata.generate_name.as_deref(), Some("wf-"));
        assert_eq!(new.metadata.name, None);
        assert!(new.status.is_none());
        assert_eq!(new.spec.shutdown, None);
        let labels = new.metadata.labels.unwrap();
        assert_eq!(labels[RESUBMITTED_FROM], "wf");
        assert_eq!(labels["team"], "a");
        assert!(!labels.contains_key(labels::COMPLETED));
        let values: Vec<(String, Option<String>)> = new
            .spec
            .arguments
            .unwrap()
            .parameters
            .into_iter()
            .map(|p| (p.name, p.value))
            .collect();
        assert_eq!(
            values,
            [
                ("y".into(), Some("2".into())),
                ("x".into(), Some("1".into()))
            ]
        );
        assert!(
            resubmit(&wf, &["novalue".into()])
                .unwrap_err()
                .contains("NAME=VALUE")
        );
    }
}
