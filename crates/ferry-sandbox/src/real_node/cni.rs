//! The pod network: a bridge on the host with host-local addresses and port mappings (the CNI
//! plugins of Debian's containernetworking-plugins), written where containerd reads it.

use std::fs;
use std::path::Path;

use anyhow::Result;
use serde_json::json;

/// The host bridge pods are attached to; `down` deletes it.
pub const BRIDGE: &str = "ferry0";
/// The node's pod addresses (kube-proxy's cluster CIDR covers them).
pub const POD_SUBNET: &str = "10.244.0.0/24";
pub const CLUSTER_CIDR: &str = "10.244.0.0/16";

/// Directory of the CNI plugin binaries.
pub const PLUGIN_DIR: &str = "/usr/lib/cni";

/// Writes the network configuration into `conf_dir`, with address leases kept in `ipam_dir`.
pub fn write(conf_dir: &Path, ipam_dir: &Path) -> Result<()> {
    fs::create_dir_all(conf_dir)?;
    fs::create_dir_all(ipam_dir)?;
    let config = json!({
        "cniVersion": "1.0.0",
        "name": "ferry-sandbox",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": true,
                // A pod reaching itself through a Service comes back over its own port.
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_dir,
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    });
    fs::write(
        conf_dir.join("10-ferry-sandbox.conflist"),
        serde_json::to_string_pretty(&config)?,
    )?;
    Ok(())
}
