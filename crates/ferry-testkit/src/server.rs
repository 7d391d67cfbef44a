//! A real `ferry-server` process for a test's control namespace: on a free loopback port, its
//! log captured, stopped with SIGTERM (and killed if a test ends without stopping it).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};

pub struct ServerProcess {
    child: Child,
    port: u16,
    metrics_port: u16,
    log: Arc<Mutex<String>>,
}

/// Starts tried when the free ports picked were taken by another process meanwhile.
const START_ATTEMPTS: usize = 3;

impl ServerProcess {
    /// Starts `binary` serving `namespace` of the cluster in `kubeconfig` and waits until it
    /// answers (it listens only once its settings are loaded). A port picked free can be taken
    /// by another test's server before this one binds it: then it starts again on others.
    pub async fn start(binary: &Path, namespace: &str, kubeconfig: &Path) -> Result<Self> {
        let mut attempt = 1;
        loop {
            match Self::start_once(binary, namespace, kubeconfig).await {
                Err(err) if attempt < START_ATTEMPTS && format!("{err:#}").contains("in use") => {
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    async fn start_once(binary: &Path, namespace: &str, kubeconfig: &Path) -> Result<Self> {
        Self::start_with(binary, namespace, kubeconfig, &[]).await
    }

    /// [`Self::start`] with more command-line arguments.
    pub async fn start_with(
        binary: &Path,
        namespace: &str,
        kubeconfig: &Path,
        args: &[String],
    ) -> Result<Self> {
        let free_port = || -> Result<u16> {
            Ok(std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port())
        };
        let (port, metrics_port) = (free_port()?, free_port()?);
        let mut child = Command::new(binary)
            .arg("--namespace")
            .arg(namespace)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            // Servers of tests running at once must not compete for the default port.
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .args(args)
            .env("FERRY_LOG", "info,ferry_server=debug,kube=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().context("no stderr")?;
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut server = Self {
            child,
            port,
            metrics_port,
            log,
        };
        for _ in 0..300 {
            if let Some(exit) = server.child.try_wait()? {
                bail!("ferry-server exited with {exit}:\n{}", server.log());
            }
            // Its `serving [HTTPS] address=…` line, not a connection (another process may hold
            // the port), says this process has bound it.
            let bound = format!("address=127.0.0.1:{port} ");
            let listening = server
                .log()
                .lines()
                .any(|line| line.contains("serving") && line.contains(&bound));
            if listening {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("ferry-server did not listen within 60 s:\n{}", server.log())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where `/metrics` is served.
    pub fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    /// `127.0.0.1:<port>`, the address clients are given.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Stops the server with SIGTERM, checks it exits cleanly and returns its log.
    pub async fn stop(mut self) -> Result<String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        assert!(status.success());
        for _ in 0..100 {
            if let Some(exit) = self.child.try_wait()? {
                // Let the reader thread take the last lines.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let log = self.log();
                assert!(exit.success(), "ferry-server exited with {exit}:\n{log}");
                return Ok(log);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("ferry-server did not stop within 10 s of SIGTERM")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Prometheus page a ferry process serves at `/metrics` on `127.0.0.1:port`.
pub async fn scrape_metrics(port: u16) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("no end of headers")?;
    anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "GET /metrics: {head}");
    Ok(body.to_string())
}

/// The admin password `ferry-server` generated into `argocd-initial-admin-secret` of
/// `namespace`.
pub async fn admin_password(client: &kube::Client, namespace: &str) -> Result<String> {
    let secret =
        kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), namespace)
            .get("argocd-initial-admin-secret")
            .await?;
    let data = secret
        .data
        .context("argocd-initial-admin-secret has no data")?;
    let password = data
        .get("password")
        .context("argocd-initial-admin-secret has no password")?;
    Ok(String::from_utf8(password.0.clone())?)
}

/// A binary of this workspace next to the running test executable, for tests of another
/// package than the binary's (build it first: `cargo build -p <package> --bin <name>`).
pub fn workspace_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("locating the target directory")?;
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} is missing: build it first (cargo build --bin {name})",
            path.display()
        );
    }
    Ok(path)
}
