//! A TCP proxy on loopback in front of the API server that can be cut: open connections are
//! closed and new ones dropped on accept, as when the API server restarts. TLS passes through
//! untouched, so the client still talks to the real server.

use std::net::SocketAddr;

use anyhow::{Context, Result};
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
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let up = watch::Sender::new(true);
        let accept = tokio::spawn(accept_loop(listener, upstream, up.subscribe()));
        Ok(Self { addr, up, accept })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
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
