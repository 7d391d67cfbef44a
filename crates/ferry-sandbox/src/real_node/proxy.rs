//! kube-proxy in iptables mode, so Service addresses (the `kubernetes` Service and cluster DNS
//! included) route to their endpoints from the host and from pods.

use std::path::Path;

use super::{Host, cni};

/// Fixed (one real node per host) loopback ports; `HEALTHZ` answers once the rules are written.
pub const HEALTHZ: &str = "127.0.0.1:10256";
const METRICS: &str = "127.0.0.1:10249";

pub fn args(host: &Host, kubeconfig: &Path) -> Vec<String> {
    vec![
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--hostname-override={}", host.node_name),
        "--proxy-mode=iptables".into(),
        format!("--cluster-cidr={}", cni::CLUSTER_CIDR),
        "--nodeport-addresses=primary".into(),
        // Leave the host's conntrack and route_localnet sysctls alone.
        "--conntrack-max-per-core=0".into(),
        "--conntrack-tcp-timeout-established=0".into(),
        "--conntrack-tcp-timeout-close-wait=0".into(),
        "--iptables-localhost-nodeports=false".into(),
        format!("--metrics-bind-address={METRICS}"),
        format!("--healthz-bind-address={HEALTHZ}"),
    ]
}
