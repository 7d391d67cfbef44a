//! [Dex](https://dexidp.io), the OpenID provider Argo CD bundles, as a real provider for SSO tests:
//! built by `scripts/toolchain`, run on a free loopback port with in-memory storage and the
//! `mockCallback` connector, which logs every login in as one fixed user (below) without a form,
//! and approves without asking.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use ferry_testkit::dex::{Dex, DexClient};
//! let callback = "http://127.0.0.1:8080/auth/callback";
//! let dex = Dex::start(&[DexClient::confidential("ferry", "s3cret", &[callback])])?;
//! println!("issuer {}", dex.issuer());
//! # Ok(()) }
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use tempfile::TempDir;

/// The user every login of the mock connector is: its id (`federated_claims.user_id`, the
/// subject Argo CD's RBAC sees), email and groups.
pub const MOCK_USER_ID: &str = "0-385-28089-0";
pub const MOCK_EMAIL: &str = "kilgore@kilgore.trout";
pub const MOCK_GROUPS: &[&str] = &["authors"];

const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// An OAuth2 client Dex knows.
#[derive(Debug, Clone)]
pub struct DexClient {
    pub id: String,
    /// None for a public client (a CLI, with PKCE).
    pub secret: Option<String>,
    pub redirect_uris: Vec<String>,
}

impl DexClient {
    pub fn confidential(id: &str, secret: &str, redirect_uris: &[&str]) -> Self {
        Self {
            id: id.to_string(),
            secret: Some(secret.to_string()),
            redirect_uris: redirect_uris.iter().map(|uri| uri.to_string()).collect(),
        }
    }

    pub fn public(id: &str, redirect_uris: &[&str]) -> Self {
        Self {
            id: id.to_string(),
            secret: None,
            redirect_uris: redirect_uris.iter().map(|uri| uri.to_string()).collect(),
        }
    }
}

/// A running Dex; stopped when dropped.
pub struct Dex {
    child: Child,
    port: u16,
    dir: TempDir,
    log: Arc<Mutex<String>>,
}

impl Dex {
    /// Starts Dex for `clients` on a free loopback port and waits until it serves its discovery
    /// document.
    pub fn start(clients: &[DexClient]) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = tempfile::Builder::new().prefix("ferry-dex-").tempdir()?;
        let clients: Vec<_> = clients
            .iter()
            .map(|client| {
                let mut entry = json!({
                    "id": client.id,
                    "name": client.id,
                    "redirectURIs": client.redirect_uris,
                });
                match &client.secret {
                    Some(secret) => entry["secret"] = json!(secret),
                    None => entry["public"] = json!(true),
                }
                entry
            })
            .collect();
        // JSON is YAML too.
        let config = json!({
            "issuer": format!("http://127.0.0.1:{port}/dex"),
            "storage": {"type": "memory"},
            "web": {"http": format!("127.0.0.1:{port}")},
            "logger": {"level": "info"},
            "oauth2": {"skipApprovalScreen": true},
            "staticClients": clients,
            "connectors": [{"type": "mockCallback", "id": "mock", "name": "Mock"}],
        });
        std::fs::write(dir.path().join("config.yaml"), config.to_string())?;
        Self::run(port, dir)
    }

    /// Stops Dex and starts it again on the same port, so with the same issuer but new signing
    /// keys (its storage is in memory): what a provider's key rotation looks like to a client.
    pub fn restart(mut self) -> Result<Self> {
        self.stop();
        let port = self.port;
        let dir = tempfile::Builder::new().prefix("ferry-dex-").tempdir()?;
        std::fs::copy(
            self.dir.path().join("config.yaml"),
            dir.path().join("config.yaml"),
        )?;
        Self::run(port, dir)
    }

    fn run(port: u16, dir: TempDir) -> Result<Self> {
        let binary = binary()?;
        let mut child = Command::new(&binary)
            .arg("serve")
            .arg(dir.path().join("config.yaml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().context("no stderr")?;
        let sink = log.clone();
        thread::spawn(move || {
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
        let dex = Self {
            child,
            port,
            dir,
            log,
        };
        let started = Instant::now();
        while started.elapsed() < STARTUP_TIMEOUT {
            if dex.serves_discovery() {
                return Ok(dex);
            }
            thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "dex did not serve its discovery document within {STARTUP_TIMEOUT:?}:\n{}",
            dex.log()
        )
    }

    /// `http://127.0.0.1:<port>/dex`.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}/dex", self.port)
    }

    /// What Dex logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn serves_discovery(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let request = "GET /dex/.well-known/openid-configuration HTTP/1.1\r\n\
                       Host: 127.0.0.1\r\nConnection: close\r\n\r\n";
        let mut response = String::new();
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_to_string(&mut response).is_ok()
            && response.starts_with("HTTP/1.1 200")
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Dex {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The toolchain's `dex`, built by `scripts/toolchain` first if missing.
fn binary() -> Result<PathBuf> {
    let binary = ferry_sandbox::toolchain::bin_dir().join("dex");
    if binary.is_file() {
        return Ok(binary);
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/toolchain");
    let status = Command::new(&script)
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() || !binary.is_file() {
        bail!("{} did not build {}", script.display(), binary.display());
    }
    Ok(binary)
}
