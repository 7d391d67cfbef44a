//! A sandbox with a real node, for the stories that need containers to really run: the shared
//! `real` sandbox (started on first use with `--real-node`, reused after that), apart from the
//! `test` sandbox of every other test, whose simulated nodes stay as fast as ever. Pods land on the
//! real node only with [`placement`]; [`BUSYBOX_IMAGE`] is there without any registry.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ferry_sandbox::real_node::{NODE_LABEL, TAINT_KEY};
use ferry_sandbox::{Sandbox, UpOptions};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

pub use ferry_sandbox::real_node::BUSYBOX_IMAGE;

/// The shared sandbox that has the host's real node.
pub const SANDBOX: &str = "real";

static KUBECONFIG: OnceCell<PathBuf> = OnceCell::const_new();

/// The kubeconfig of the sandbox with the real node, starting it if needed.
pub async fn kubeconfig() -> Result<&'static Path> {
    let path = KUBECONFIG
        .get_or_try_init(|| async {
            let sandbox = Sandbox::named(SANDBOX)?;
            let opts = UpOptions {
                real_node: true,
                ..Default::default()
            };
            sandbox
                .up(&opts)
                .await
                .context("starting the sandbox with a real node")?;
            anyhow::Ok(sandbox.kubeconfig())
        })
        .await?;
    Ok(path)
}

/// The real node's name.
pub fn node_name() -> Result<String> {
    ferry_sandbox::real_node::node_name()
}

/// The pod spec fields that put a pod on the real node (select it, tolerate its taint), to merge
/// into a pod template's `spec`.
pub fn placement() -> Value {
    json!({
        "nodeSelector": {NODE_LABEL: "true"},
        "tolerations": [{"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
    })
}

/// [`placement`] as YAML lines for a pod spec indented by `indent` spaces, for manifests in Git.
pub fn placement_yaml(indent: usize) -> String {
    let pad = " ".repeat(indent);
    format!(
        "{pad}nodeSelector: {{{NODE_LABEL}: \"true\"}}\n\
         {pad}tolerations: [{{key: {TAINT_KEY}, operator: Exists, effect: NoSchedule}}]\n"
    )
}

/// A Deployment `hello` of one busybox pod on the real node that prints `message` and stays up,
/// for stories that sync it from Git and read its log.
pub fn hello_deployment(message: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  replicas: 1
  selector:
    matchLabels: {{app: hello}}
  template:
    metadata:
      labels: {{app: hello}}
    spec:
{placement}      terminationGracePeriodSeconds: 1
      containers:
      - name: hello
        image: {BUSYBOX_IMAGE}
        command: [sh, -c, 'echo \"{message}\"; exec sleep 3600']
",
        placement = placement_yaml(6),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_yaml_says_what_placement_says() {
        let yaml = format!("spec:\n{}", placement_yaml(2));
        let parsed: Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(parsed["spec"], placement());
    }
}
