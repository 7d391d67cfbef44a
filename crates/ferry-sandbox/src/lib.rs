//! A local Kubernetes control plane for tests and demos: etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler and kwok (simulated nodes, so Deployments get Pods that
//! become Ready) on loopback, built from source by `scripts/toolchain`; optionally a real node
//! (containerd, kubelet, kube-proxy, CoreDNS: see [`real_node`]) where containers really run.
//!
//! Each sandbox has a name and a directory under the cache (`~/.cache/ferry/sandboxes/<name>`)
//! holding its PKI, etcd data, logs, pid files and kubeconfig. Several sandboxes can run at once:
//! every listener gets a free loopback port.

mod control_plane;
mod faults;
mod nodes;
mod pki;
mod process;
pub mod real_node;
pub mod registry;
pub mod toolchain;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use kube::config::{KubeConfigOptions, Kubeconfig};

pub use control_plane::COMPONENTS;
pub use faults::Killed;
use process::Component;

/// How to bring a sandbox up.
#[derive(Clone, Debug)]
pub struct UpOptions {
    /// Simulated nodes to create.
    pub nodes: u32,
    /// How long to wait for the control plane to become ready.
    pub timeout: Duration,
    /// Add a real node where pods really run (see [`real_node`]).
    pub real_node: bool,
}

impl Default for UpOptions {
    fn default() -> Self {
        Self {
            nodes: 2,
            timeout: Duration::from_secs(120),
            real_node: false,
        }
    }
}

/// What `up` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Started {
    /// A healthy sandbox of that name was already running and is reused.
    Reused,
    /// The control plane was started.
    Fresh,
}

/// One running (or stopped) component, as `status` reports it.
#[derive(Clone, Debug)]
pub struct ComponentStatus {
    pub name: &'static str,
    pub pid: Option<u32>,
}

/// A named sandbox control plane.
#[derive(Clone, Debug)]
pub struct Sandbox {
    name: String,
    dir: PathBuf,
}

impl Sandbox {
    /// The sandbox called `name`, under the cache directory.
    pub fn named(name: &str) -> Result<Self> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!("sandbox name {name:?} must be non-empty and use only letters, digits, - and _");
        }
        Ok(Self {
            name: name.to_string(),
            dir: toolchain::cache_dir().join("sandboxes").join(name),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The admin kubeconfig; valid while the sandbox runs.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// Starts the sandbox, or reuses it when it already runs and answers. Safe to call from
    /// several processes at once: they serialize on a lock file and all but the first reuse.
    pub async fn up(&self, opts: &UpOptions) -> Result<Started> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let lock = File::create(self.dir.join("lock"))?;
        let lock = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock)).await??;

        // A running sandbox with a real node serves a request without one too.
        let has_what_is_asked = !opts.real_node || self.has_real_node();
        if has_what_is_asked && self.all_running() && self.ready().await {
            drop(lock);
            return Ok(Started::Reused);
        }
        self.stop_all()?;
        let bin = toolchain::ensure(opts.real_node)?;
        let mut attempt = 1;
        let started = loop {
            let started = control_plane::start(self, &bin, opts).await;
            if started.is_err() {
                // Leave nothing half-started behind; the logs stay for the error report.
                let _ = self.stop_all();
            }
            match started {
                // The free ports were picked by binding port 0 and letting go; another sandbox
                // or an outgoing connection can take one in that window. And on a machine busy
                // with tests a component can give up on one it depends on (kube-apiserver on a
                // slow etcd) and exit. Start again, on new ports.
                Err(err) if attempt < START_ATTEMPTS && (port_taken(&err) || exited(&err)) => {
                    attempt += 1
                }
                other => break other,
            }
        };
        drop(lock);
        started.map(|()| Started::Fresh)
    }

    /// Stops every component and the registry. The directory (logs, PKI, the registry's images)
    /// stays; the next `up` starts from empty cluster state.
    pub fn down(&self) -> Result<()> {
        self.stop_all()?;
        registry::Registry::of(self).down()
    }

    /// Which components run (the real node's too, if the sandbox has one).
    pub fn status(&self) -> Vec<ComponentStatus> {
        let real_node = if self.has_real_node() {
            real_node::COMPONENTS
        } else {
            &[]
        };
        COMPONENTS
            .iter()
            .chain(real_node)
            .map(|name| ComponentStatus {
                name,
                pid: self.component(name).running(),
            })
            .collect()
    }

    /// A client for the sandbox, as its admin.
    pub async fn client(&self) -> Result<kube::Client> {
        client_for(&self.kubeconfig()).await
    }

    /// The names of sandboxes that have a directory under the cache.
    pub fn list() -> Result<Vec<String>> {
        let root = toolchain::cache_dir().join("sandboxes");
        let mut names = Vec::new();
        if let Ok(entries) = fs::read_dir(&root) {
            for entry in entries {
                let entry = entry?;
                if entry.file_type()?.is_dir() {
                    names.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn component<'a>(&'a self, name: &'a str) -> Component<'a> {
        Component {
            name,
            dir: &self.dir,
        }
    }

    /// Whether the sandbox was started with a real node (and not stopped since).
    pub fn has_real_node(&self) -> bool {
        self.real_node_marker().exists()
    }

    fn real_node_marker(&self) -> PathBuf {
        self.dir.join("real-node")
    }

    fn all_running(&self) -> bool {
        self.status().iter().all(|c| c.pid.is_some())
    }

    async fn ready(&self) -> bool {
        match self.client().await {
            Ok(client) => readyz(&client).await,
            Err(_) => false,
        }
    }

    fn stop_all(&self) -> Result<()> {
        real_node::stop(self)?;
        let _ = fs::remove_file(self.real_node_marker());
        for name in COMPONENTS.iter().rev() {
            self.component(name).stop(Duration::from_secs(10))?;
        }
        Ok(())
    }
}

/// The address this machine uses for its default route, where pods of a real node reach the
/// host, if it has one: connecting a UDP socket sends nothing, it only picks the route and
/// thereby the source address.
pub fn default_route_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // TEST-NET-1 (RFC 5737): routed like any outside address, never answered.
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// A client for the cluster a kubeconfig file points at (its current context).
pub async fn client_for(kubeconfig: &Path) -> Result<kube::Client> {
    let kubeconfig = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading kubeconfig {}", kubeconfig.display()))?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

async fn readyz(client: &kube::Client) -> bool {
    let request = http::Request::get("/readyz")
        .body(Vec::new())
        .expect("static request");
    matches!(client.request_text(request).await, Ok(body) if body.trim() == "ok")
}

/// How many times `up` starts the components when one finds its port taken or exits early.
const START_ATTEMPTS: u32 = 3;

fn port_taken(err: &anyhow::Error) -> bool {
    format!("{err:#}").contains("address already in use")
}

/// Whether a component exited while the sandbox was starting (see `wait_component`).
fn exited(err: &anyhow::Error) -> bool {
    format!("{err:#}").contains(" exited (")
}
