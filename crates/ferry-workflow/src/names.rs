//! Upstream's deterministic names: a node's ID from its name, a pod's name from its node, so
//! that every reconcile (and a restarted controller) finds the same nodes and pods again.

/// Most characters of a pod name's prefix (upstream: 253 minus room for the hash).
const MAX_POD_PREFIX: usize = 253 - 10 - 1;

/// FNV-1a, 32 bits: the hash upstream names nodes and pods with.
fn fnv32a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |hash: u32, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// The ID of the node named `node_name` in workflow `workflow`: the workflow's name for its
/// root node, else `<workflow>-<fnv32a(name)>`.
pub fn node_id(workflow: &str, node_name: &str) -> String {
    if node_name == workflow {
        return workflow.to_string();
    }
    format!("{workflow}-{}", fnv32a(node_name))
}

/// The name of the pod of node `node_name` (upstream's pod name version v2):
/// `<workflow>-<template>-<fnv32a(node name)>`.
pub fn pod_name(workflow: &str, node_name: &str, template: &str) -> String {
    if node_name == workflow {
        return workflow.to_string();
    }
    let mut prefix = if template.is_empty() {
        workflow.to_string()
    } else {
        format!("{workflow}-{template}")
    };
    if prefix.len() > MAX_POD_PREFIX {
        let mut end = MAX_POD_PREFIX;
        while !prefix.is_char_boundary(end) {
            end -= 1;
        }
        prefix.truncate(end);
    }
    format!("{prefix}-{}", fnv32a(node_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv32a_matches_the_reference_vectors() {
        assert_eq!(fnv32a(""), 0x811c_9dc5);
        assert_eq!(fnv32a("a"), 0xe40c_292c);
        assert_eq!(fnv32a("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn the_root_is_named_after_the_workflow_and_the_rest_hashed() {
        assert_eq!(node_id("wf", "wf"), "wf");
        assert_eq!(
            node_id("wf", "wf[0].a"),
            format!("wf-{}", fnv32a("wf[0].a"))
        );
        assert_eq!(
            pod_name("wf", "wf[0].a", "print"),
            format!("wf-print-{}", fnv32a("wf[0].a"))
        );
        assert_eq!(pod_name("wf", "wf", "print"), "wf");
    }
}
