//! Simulated nodes: Node objects that kwok adopts (by annotation) and keeps Ready, so the
//! scheduler has somewhere to put Pods and kwok can take them to Running.

use anyhow::Result;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

pub const KWOK_ANNOTATION: &str = "kwok.x-k8s.io/node";

pub async fn create(client: &kube::Client, count: u32) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    for i in 0..count {
        let name = format!("kwok-node-{i}");
        // Simulated pods cost nothing, so a node holds thousands (a kubelet's 110 would cap scale
        // benchmarks at a few hundred workloads).
        let capacity =
            json!({"cpu": "256", "memory": "1Ti", "pods": "5000", "ephemeral-storage": "1Ti"});
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "type": "kwok",
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "node-role.kubernetes.io/agent": "",
                },
            },
            "status": {"capacity": capacity, "allocatable": capacity},
        }))?;
        match nodes.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// How many simulated nodes report the Ready condition.
pub async fn ready_count(client: &kube::Client) -> Result<usize> {
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes.list(&Default::default()).await?;
    Ok(list
        .items
        .iter()
        .filter(|node| {
            node.metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(KWOK_ANNOTATION))
        })
        .filter(|node| {
            node.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count())
}
