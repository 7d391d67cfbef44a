//! `progress` of nodes and of the workflow, counted over pods and HTTP nodes as upstream.

use std::collections::{BTreeMap, BTreeSet};

use ferry_types::workflow::{NodeStatus, Phase};

/// Sets each node's progress (pods and HTTP nodes `0/1` until they succeed, others the sum of
/// their descendants') and returns the workflow's (the sum over pods and HTTP nodes).
pub(super) fn progress(nodes: &mut BTreeMap<String, NodeStatus>) -> String {
    let pod_progress = |node: &NodeStatus| -> (u32, u32) {
        match node.phase {
            Phase::Succeeded | Phase::Skipped | Phase::Omitted => (1, 1),
            _ => (0, 1),
        }
    };
    pub(super) fn sum(
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
        let own = if counted(node) { pod(node) } else { (0, 0) };
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
        .filter(|n| counted(n))
        .map(pod_progress)
        .fold((0, 0), |(d, t), (nd, nt)| (d + nd, t + nt));
    format!("{done}/{total}")
}

/// Whether a node counts itself (upstream's executable nodes) rather than summing its children.
fn counted(node: &NodeStatus) -> bool {
    matches!(node.type_.as_str(), "Pod" | "HTTP")
}
