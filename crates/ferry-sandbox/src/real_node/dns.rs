//! Cluster DNS: CoreDNS on the host, answering on the node address that the kubelet gives pods as
//! their nameserver, from the API through its kubernetes plugin.

use std::fs;
use std::path::Path;

use anyhow::Result;

use super::{CLUSTER_DOMAIN, Host};

/// Writes the Corefile into `dir` and returns CoreDNS's command line; `ready` is the loopback
/// address of its readiness endpoint (answers once the kubernetes plugin has synced).
pub fn configure(dir: &Path, host: &Host, kubeconfig: &Path, ready: &str) -> Result<Vec<String>> {
    fs::create_dir_all(dir)?;
    let corefile = dir.join("Corefile");
    fs::write(
        &corefile,
        format!(
            ".:53 {{
    bind {node_ip}
    errors
    ready {ready}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    forward . /etc/resolv.conf
    cache 30
}}
",
            node_ip = host.node_ip,
            kubeconfig = kubeconfig.display(),
        ),
    )?;
    Ok(vec!["-conf".into(), corefile.display().to_string()])
}
