//! What the real node's pods say.

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, LogParams};

/// The first log line of the one running pod labelled `app=<app>`, which must be on `node`.
pub async fn running_pod_says(pods: &Api<Pod>, app: &str, node: &str) -> Result<String> {
    let running: Vec<Pod> = pods
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await?
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .collect();
    let [pod] = running.as_slice() else {
        bail!("{} running {app} pods", running.len());
    };
    let name = pod
        .metadata
        .name
        .as_deref()
        .context("a pod without a name")?;
    let on = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    assert_eq!(on, Some(node), "{name} is not on the real node");
    let log = pods.logs(name, &LogParams::default()).await?;
    Ok(log.lines().next().unwrap_or_default().to_string())
}
