//! A TCP proxy on loopback in front of the API server that can be cut: open connections are
//! closed and new ones dropped on accept, as when the API server restarts. TLS passes through
//! untouched, so the client still talks to the real server (whose certificate names 127.0.0.1,
//! whatever the port). On another address, it makes a loopback server (a Git server) reachable
//! from the real node's pods.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use anyhow::{Context, Result};
use kube::config::Kubeconfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Proxy {
    addr: SocketAddr,
    up: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Result<Self> {
        Self::start_on(Ipv4Addr::LOCALHOST.into(), upstream).await
    }

    /// A proxy listening on `ip` (a free port): pods reach the host at its default-route
    /// address (`ferry_sandbox::default_route_address`), never at its loopback.
    pub async fn start_on(ip: IpAddr, upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind((ip, 0)).await?;
        let addr = listener.local_addr()?;
        let up = watch::Sender::new(true);
        let accept = tokio::spawn(accept_loop(listener, upstream, up.subscribe()));
        Ok(Self { addr, up, accept })
    }

    /// A proxy in front of the API server `kubeconfig`'s first cluster names.
    pub async fn in_front_of(kubeconfig: &Path) -> Result<Self> {
        let config = Kubeconfig::read_from(kubeconfig)?;
        let server = config
            .clusters
            .first()
            .and_then(|named| named.cluster.as_ref())
            .and_then(|cluster| cluster.server.as_deref())
            .context("a kubeconfig without a server")?;
        let url = url::Url::parse(server)?;
        let host = url.host_str().context("a server without a host")?;
        let port = url
            .port_or_known_default()
            .context("a server without a port")?;
        Self::start(format!("{host}:{port}").parse()?).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A copy of `kubeconfig` at `to` whose clusters are reached through this proxy, for a
    /// process (a controller) that should see the outage while the test itself does not.
    pub fn kubeconfig(&self, kubeconfig: &Path, to: &Path) -> Result<()> {
        let mut config = Kubeconfig::read_from(kubeconfig)?;
        for cluster in config
            .clusters
            .iter_mut()
            .filter_map(|named| named.cluster.as_mut())
        {
            cluster.server = Some(format!("https://{}", self.addr));
        }
        // JSON is YAML too.
        std::fs::write(to, serde_json::to_vec(&config)?)?;
        Ok(())
    }

    /// Closes every open connection and refuses new ones until `restore`.
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.up.send_replace(false);
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, up: watch::Receiver<bool>) {
    while let Ok((client, _)) = listener.accept().await {
        if !*up.borrow() {
            drop(client);
            continue;
        }
        let mut up = up.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = relay(client, upstream) => {}
                _ = up.wait_for(|up| !*up) => {}
            }
        });
    }
}

async fn relay(mut client: TcpStream, upstream: SocketAddr) -> Result<()> {
    let mut server = TcpStream::connect(upstream)
        .await
        .with_context(|| format!("connecting to {upstream}"))?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}
