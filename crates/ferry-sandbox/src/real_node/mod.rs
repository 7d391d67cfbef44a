//! A real node beside the simulated ones (`UpOptions::real_node`): containerd, a kubelet,
//! kube-proxy and CoreDNS on this host, joined to the sandbox's control plane, so pods really
//! run. The node is tainted: only pods that tolerate [`TAINT_KEY`] (and select [`NODE_LABEL`])
//! land on it. Its base images are built locally ([`BUSYBOX_IMAGE`]); nothing comes from an
//! outside registry. One sandbox at a time can have it (see `host`), and `down` undoes what it
//! changed on the host.

mod cni;
mod containerd;
mod dns;
mod host;
mod images;
mod kubelet;
mod proxy;

use std::fs;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Node;
use kube::Api;

use crate::Sandbox;
use containerd::Containerd;

/// The real node's taint (`NoSchedule`, value `true`) and label (value `true`).
pub const TAINT_KEY: &str = "ferry.dev/real-node";
pub const NODE_LABEL: &str = "ferry.dev/real-node";
/// The busybox image every start imports into the node (Debian's static busybox).
pub const BUSYBOX_IMAGE: &str = "ferry.local/busybox:sandbox";
/// The pod sandbox image containerd runs for every pod.
pub const PAUSE_IMAGE: &str = "ferry.local/pause:sandbox";
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// The real node's components, in start order.
pub const COMPONENTS: &[&str] = &["containerd", "kubelet", "kube-proxy", "coredns"];

/// Toolchain binaries the real node needs besides the control plane's.
pub const TOOLCHAIN: &[&str] = &["kubelet", "kube-proxy", "coredns", "crictl"];

/// Facts about this host the node is configured with.
#[derive(Clone, Debug)]
pub struct Host {
    /// The machine's hostname: the API server reaches the kubelet (logs, exec) by this name.
    pub node_name: String,
    /// The default route's source address: pods reach the API server and DNS on it.
    pub node_ip: Ipv4Addr,
    /// The loopback address the hostname resolves to, where the kubelet listens.
    pub kubelet_address: IpAddr,
}

impl Host {
    pub fn discover() -> Result<Self> {
        if !nix::unistd::geteuid().is_root() {
            bail!("a real node needs root (containerd, the kubelet and iptables)");
        }
        let node_name = nix::unistd::gethostname()?.to_string_lossy().to_lowercase();
        let kubelet_address = (node_name.as_str(), 0)
            .to_socket_addrs()
            .with_context(|| format!("resolving this host's name {node_name:?}"))?
            .map(|addr| addr.ip())
            .find(IpAddr::is_loopback)
            .with_context(|| {
                format!(
                    "this host's name {node_name:?} does not resolve to a loopback address: the \
                     API server reaches the kubelet, which listens on loopback only, by the \
                     node's hostname (add `127.0.1.1 {node_name}` to /etc/hosts)"
                )
            })?;
        let IpAddr::V4(node_ip) = crate::default_route_address()
            .context("this host has no default route: a real node needs an address pods reach")?
        else {
            bail!("the default route's address is not IPv4");
        };
        Ok(Self {
            node_name,
            node_ip,
            kubelet_address,
        })
    }
}

/// The name the real node registers under.
pub fn node_name() -> Result<String> {
    Ok(Host::discover()?.node_name)
}

/// Before the control plane starts: claims the host's real node, builds the base images if the
/// cache lacks them and starts containerd.
pub fn prepare(sandbox: &Sandbox) -> Result<()> {
    host::claim(sandbox.name(), sandbox.dir())?;
    let runtime = containerd(sandbox);
    fs::create_dir_all(&runtime.dir)?;
    let cni_conf = sandbox.dir().join("cni/net.d");
    let cni_ipam = sandbox.dir().join("cni/ipam");
    let _ = fs::remove_dir_all(&cni_ipam);
    cni::write(&cni_conf, &cni_ipam)?;
    // A kubelet directory from an earlier run would bring back its pods' state.
    let _ = fs::remove_dir_all(sandbox.dir().join("kubelet"));
    runtime.configure(&cni_conf)?;
    sandbox
        .component("containerd")
        .spawn(Path::new("containerd"), &runtime.args())?;
    Ok(())
}

/// The OCI archive of [`BUSYBOX_IMAGE`] (built when the cache lacks it), for images built on
/// top of it and base images pushed to a registry.
pub fn busybox_archive() -> Result<std::path::PathBuf> {
    let archives = images::ensure(&crate::toolchain::cache_dir().join("images"))?;
    archives
        .into_iter()
        .find(|a| a.ends_with(images::BUSYBOX_ARCHIVE))
        .context("no busybox archive")
}

/// Once the API server is ready: imports the base images and starts the kubelet, kube-proxy and
/// CoreDNS.
pub async fn join(sandbox: &Sandbox, bin: &Path, host: &Host, timeout: Duration) -> Result<()> {
    let archives = images::ensure(&crate::toolchain::cache_dir().join("images"))?;
    let runtime = containerd(sandbox);
    runtime.wait(timeout).await?;
    runtime.import(&archives)?;

    let kubeconfig = sandbox.kubeconfig();
    let dir = sandbox.dir();
    let kubelet_args =
        kubelet::configure(&dir.join("kubelet"), host, &runtime.endpoint(), &kubeconfig)?;
    sandbox
        .component("kubelet")
        .spawn(&bin.join("kubelet"), &kubelet_args)?;
    sandbox
        .component("kube-proxy")
        .spawn(&bin.join("kube-proxy"), &proxy::args(host, &kubeconfig))?;
    let dns_args = dns::configure(
        &dir.join("coredns"),
        host,
        &kubeconfig,
        &pick_dns_ready(sandbox)?,
    )?;
    sandbox
        .component("coredns")
        .spawn(&bin.join("coredns"), &dns_args)?;
    Ok(())
}

/// Where CoreDNS answers readiness: a free loopback port picked at start, kept in the sandbox
/// directory for `wait_ready`.
fn pick_dns_ready(sandbox: &Sandbox) -> Result<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let address = format!("127.0.0.1:{port}");
    fs::create_dir_all(sandbox.dir().join("coredns"))?;
    fs::write(dns_ready_file(sandbox), &address)?;
    Ok(address)
}

fn dns_ready_file(sandbox: &Sandbox) -> std::path::PathBuf {
    sandbox.dir().join("coredns/ready-address")
}

/// Waits until the node is Ready, kube-proxy has written its rules and CoreDNS has synced.
pub async fn wait_ready(
    sandbox: &Sandbox,
    client: &kube::Client,
    host: &Host,
    timeout: Duration,
) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let proxy_healthz = format!("http://{}/healthz", proxy::HEALTHZ);
    let dns_ready = format!(
        "http://{}/ready",
        fs::read_to_string(dns_ready_file(sandbox))?
    );
    let deadline = Instant::now() + timeout;
    loop {
        for name in COMPONENTS {
            let component = sandbox.component(name);
            if component.running().is_none() {
                bail!("sandbox {}: {}", sandbox.name(), component.exit_report());
            }
        }
        let node_ready = nodes
            .get_opt(&host.node_name)
            .await
            .ok()
            .flatten()
            .is_some_and(|node| {
                node.status
                    .and_then(|s| s.conditions)
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            });
        let answers = |url: String| {
            let http = http.clone();
            async move {
                http.get(url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        };
        let waiting_for = if !node_ready {
            format!("node {} to be Ready", host.node_name)
        } else if !answers(proxy_healthz.clone()).await {
            "kube-proxy's rules".to_string()
        } else if !answers(dns_ready.clone()).await {
            "CoreDNS to sync".to_string()
        } else {
            return Ok(());
        };
        if Instant::now() > deadline {
            bail!(
                "sandbox {}: the real node was not ready after {timeout:?} (waiting for {waiting_for}); logs in {}",
                sandbox.name(),
                sandbox.dir().join("logs").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Stops the node and undoes its host changes: the kubelet and the proxies first (so nothing
/// restarts pods), then every pod with its network, containerd, leftover mounts under the
/// sandbox directory, and finally sysctls, iptables chains and the bridge. A sandbox without a
/// real node has nothing to do here.
pub fn stop(sandbox: &Sandbox) -> Result<()> {
    for name in ["coredns", "kube-proxy", "kubelet"] {
        sandbox.component(name).stop(Duration::from_secs(10))?;
    }
    let runtime = containerd(sandbox);
    if sandbox.component("containerd").running().is_some() {
        let crictl = crate::toolchain::bin_dir().join("crictl");
        if let Err(err) = runtime.remove_pods(&crictl) {
            tracing::warn!("removing the real node's pods: {err:#}");
        }
    }
    sandbox
        .component("containerd")
        .stop(Duration::from_secs(10))?;
    kill_shims(&runtime.dir);
    unmount_under(sandbox.dir())?;
    host::release(sandbox.dir())
}

/// Kills the runc shims of the node's containerd still running (a pod whose removal failed):
/// with containerd gone nothing would ever stop them. Their containers go with the cgroups.
fn kill_shims(containerd_dir: &Path) {
    let needle = containerd_dir.as_os_str().as_encoded_bytes();
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let is_shim = cmdline.windows(15).any(|w| w == b"containerd-shim");
        if is_shim && cmdline.windows(needle.len()).any(|w| w == needle) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Unmounts what the kubelet and containerd left mounted under `dir` (volumes, rootfs, the
/// kubelet's own bind mount), deepest first.
fn unmount_under(dir: &Path) -> Result<()> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
    let mut points: Vec<String> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mount_point)
        .filter(|point| Path::new(point).starts_with(dir))
        .collect();
    points.sort_by(|a, b| b.len().cmp(&a.len()).then(b.cmp(a)));
    points.dedup();
    for point in points {
        // Detached: a mount that is still busy goes as soon as nobody uses it.
        nix::mount::umount2(point.as_str(), nix::mount::MntFlags::MNT_DETACH)
            .with_context(|| format!("unmounting {point}"))?;
    }
    Ok(())
}

/// `/proc/self/mountinfo` writes space, tab, newline and backslash as octal escapes.
fn unescape_mount_point(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

fn containerd(sandbox: &Sandbox) -> Containerd {
    Containerd {
        dir: sandbox.dir().join("containerd"),
    }
}

/// Runs a command to completion; its stdout, or an error with its stderr.
fn run(command: &mut Command) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("running {:?}", command.get_program()))?;
    if !output.status.success() {
        bail!(
            "{:?} failed ({}): {}",
            command,
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape_mount_point("/a\\040b\\134c"), "/a b\\c");
    }
}
