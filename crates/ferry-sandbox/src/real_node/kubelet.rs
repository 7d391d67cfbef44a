//! The kubelet: registers the node (tainted, labelled) and runs its pods through containerd.

use std::fs;
use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::{Host, NODE_LABEL, TAINT_KEY};

/// The kubelet's fixed ports (one real node per host): the API server reaches logs and exec on
/// `PORT`, at the loopback address the node's hostname resolves to.
const PORT: u16 = 10250;
const HEALTHZ_PORT: u16 = 10248;

/// Writes the kubelet's configuration into `dir` and returns its command line.
pub fn configure(
    dir: &Path,
    host: &Host,
    runtime_endpoint: &str,
    kubeconfig: &Path,
) -> Result<Vec<String>> {
    fs::create_dir_all(dir)?;
    let root = dir.join("root");
    let config = json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "containerRuntimeEndpoint": runtime_endpoint,
        // cgroup v1 hosts are still common in VMs and CI; the sandbox runs its pods without systemd.
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": false,
        "failSwapOn": false,
        "address": host.kubelet_address.to_string(),
        "port": PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": HEALTHZ_PORT,
        // The sandbox API server has no kubelet client certificate. The kubelet listens on
        // loopback only, so letting its callers in anonymously reaches no further than root.
        "authentication": {"anonymous": {"enabled": true}, "webhook": {"enabled": false}},
        "authorization": {"mode": "AlwaysAllow"},
        "clusterDNS": [host.node_ip.to_string()],
        "clusterDomain": super::CLUSTER_DOMAIN,
        "podLogsDir": dir.join("pod-logs"),
        "volumePluginDir": root.join("volume-plugins"),
        "staticPodPath": "",
        // Only pods that tolerate the taint (and select the node) land here; the simulated nodes
        // keep every other workload, scale tests included.
        "registerWithTaints": [{"key": TAINT_KEY, "value": "true", "effect": "NoSchedule"}],
        "maxPods": 50,
        // A developer's disk is often fuller than the kubelet's defaults allow.
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        // The base images exist only locally: never collect them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "nodeStatusUpdateFrequency": "10s",
    });
    let config_file = dir.join("config.yaml");
    fs::write(&config_file, serde_yaml::to_string(&config)?)?;
    Ok(vec![
        format!("--config={}", config_file.display()),
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--root-dir={}", root.display()),
        format!("--cert-dir={}", root.join("pki").display()),
        format!("--hostname-override={}", host.node_name),
        format!("--node-ip={}", host.node_ip),
        format!("--node-labels={NODE_LABEL}=true"),
        "--v=1".into(),
    ])
}
