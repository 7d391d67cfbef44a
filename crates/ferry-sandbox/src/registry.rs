//! The sandbox's container registry, in the role users give Harbor: the CNCF distribution
//! registry (built by `scripts/toolchain`) serving HTTPS with a certificate from the sandbox CA
//! for 127.0.0.1, localhost and the machine's default-route address (the one pods on a real node
//! reach the host by), behind htpasswd basic auth, storing under the sandbox directory so that
//! images survive `down` and `up`.
//!
//! `up` writes what clients need into `<sandbox>/registry/`: `info.json` (addresses, paths),
//! `credentials.json` and `auth.json` (a docker-style auth config for skopeo, buildah, helm and
//! `.dockerconfigjson` pull secrets), both readable by the owner only; and for containerd,
//! `<sandbox>/containerd/certs.d/<host:port>/hosts.toml` with the CA beside it, for every
//! address served.

use std::fs::{self, File};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::pki::{self, write_private};
use crate::process::Component;
use crate::{Sandbox, toolchain};

const COMPONENT: &str = "registry";
/// The user clients authenticate as.
pub const USERNAME: &str = "ferry";
/// How long `up` waits for the registry to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// What clients need to reach the registry; `info.json` in the registry's directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryInfo {
    /// `host:port` to name images by: the default-route address (reachable from the host and
    /// from pods), else 127.0.0.1.
    pub address: String,
    /// Every `host:port` the certificate is valid for.
    pub addresses: Vec<String>,
    /// The sandbox CA that signed the registry's certificate.
    pub ca: PathBuf,
    pub username: String,
    /// `{"username", "password"}`, readable by the owner only.
    pub credentials: PathBuf,
    /// A docker-style auth config (`{"auths": {...}}`) for every address; owner only.
    pub auth_config: PathBuf,
    /// containerd's `config_path`: a `hosts.toml` per address, trusting the CA.
    pub containerd_certs_dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

impl RegistryInfo {
    /// The password, from the owner-only credentials file.
    pub fn password(&self) -> Result<String> {
        Ok(read_credentials(&self.credentials)?.password)
    }
}

/// The registry of one sandbox.
pub struct Registry<'a> {
    sandbox: &'a Sandbox,
}

impl<'a> Registry<'a> {
    pub fn of(sandbox: &'a Sandbox) -> Self {
        Self { sandbox }
    }

    fn dir(&self) -> PathBuf {
        self.sandbox.dir().join("registry")
    }

    fn component(&self) -> Component<'_> {
        Component {
            name: COMPONENT,
            dir: self.sandbox.dir(),
        }
    }

    /// Starts the registry, or returns how to reach it when it already runs. Safe to call from
    /// several processes at once. The control plane need not run.
    pub fn up(&self) -> Result<RegistryInfo> {
        let dir = self.dir();
        fs::create_dir_all(dir.join("data"))
            .with_context(|| format!("creating {}", dir.display()))?;
        let lock = File::create(dir.join("lock"))?;
        lock.lock()?;
        if self.component().running().is_some()
            && let Ok(info) = self.info()
        {
            return Ok(info);
        }
        self.component().stop(Duration::from_secs(10))?;

        let binary = toolchain::bin_dir().join("registry");
        if !binary.is_file() {
            bail!(
                "{} is missing: build it with scripts/toolchain",
                binary.display()
            );
        }
        let pki_dir = self.sandbox.dir().join("pki");
        if !pki::has_ca_key(&pki_dir) {
            if self.sandbox.status().iter().any(|c| c.pid.is_some()) {
                bail!(
                    "sandbox {} runs with a PKI that predates its CA key, so no registry \
                     certificate can be signed: restart it (ferry-sandbox -n {0} down, then up)",
                    self.sandbox.name()
                );
            }
            pki::ensure(&pki_dir)?;
        }

        let port = self.port()?;
        let mut ips: Vec<IpAddr> = vec![[127, 0, 0, 1].into()];
        ips.extend(crate::default_route_address());
        // Images are named by the last: the default-route address when there is one.
        let address = format!("{}:{port}", ips[ips.len() - 1]);
        let mut addresses: Vec<String> = ips.iter().map(|ip| format!("{ip}:{port}")).collect();
        addresses.insert(1, format!("localhost:{port}"));
        let (cert, key) =
            pki::serving_certificate(&pki_dir, "ferry-sandbox-registry", &["localhost"], &ips)?;
        fs::write(dir.join("tls.crt"), cert)?;
        write_private(&dir, "tls.key", &key)?;

        let credentials = self.credentials()?;
        // A low bcrypt cost: the registry checks the hash on every request, and a random
        // password of this length needs no key stretching.
        let hash = bcrypt::hash(&credentials.password, 5)?;
        write_private(
            &dir,
            "htpasswd",
            &format!("{}:{hash}\n", credentials.username),
        )?;
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", credentials.username, credentials.password));
        let auths: serde_json::Map<_, _> = addresses
            .iter()
            .map(|a| (a.clone(), json!({ "auth": basic })))
            .collect();
        write_private(
            &dir,
            "auth.json",
            &serde_json::to_string_pretty(&json!({ "auths": auths }))?,
        )?;

        let ca = pki_dir.join(pki::CA_CERT);
        let certs_dir = self.sandbox.dir().join("containerd").join("certs.d");
        for address in &addresses {
            write_hosts_toml(&certs_dir.join(address), address, &ca)?;
        }

        let config = dir.join("config.yml");
        let config_text = json!({
            "version": "0.1",
            "log": {"level": "info", "formatter": "text"},
            "storage": {
                "filesystem": {"rootdirectory": dir.join("data")},
                "delete": {"enabled": true},
            },
            "http": {
                // All interfaces: pods reach the registry by the host's address.
                "addr": format!("0.0.0.0:{port}"),
                "secret": Alphanumeric.sample_string(&mut rand::rng(), 32),
                "tls": {"certificate": dir.join("tls.crt"), "key": dir.join("tls.key")},
            },
            "auth": {"htpasswd": {"realm": "ferry-sandbox", "path": dir.join("htpasswd")}},
        });
        // JSON is YAML too; the config holds the upload secret.
        write_private(&dir, "config.yml", &config_text.to_string())?;

        let info = RegistryInfo {
            address,
            addresses,
            ca,
            username: credentials.username,
            credentials: dir.join("credentials.json"),
            auth_config: dir.join("auth.json"),
            containerd_certs_dir: certs_dir,
        };
        fs::write(dir.join("info.json"), serde_json::to_string_pretty(&info)?)?;

        // Through `env -i`: no REGISTRY_* variable of the caller may override the config, and
        // distribution's tracing stays off.
        let args = [
            "-i".to_string(),
            "OTEL_TRACES_EXPORTER=none".to_string(),
            binary.display().to_string(),
            "serve".to_string(),
            config.display().to_string(),
        ];
        self.component().spawn(Path::new("/usr/bin/env"), &args)?;
        self.wait_ready(port)?;
        Ok(info)
    }

    /// Stops the registry; its images, credentials and port stay for the next `up`.
    pub fn down(&self) -> Result<()> {
        self.component().stop(Duration::from_secs(10))
    }

    /// Whether the registry runs.
    pub fn running(&self) -> Option<u32> {
        self.component().running()
    }

    /// How to reach the running registry.
    pub fn info(&self) -> Result<RegistryInfo> {
        if self.running().is_none() {
            bail!(
                "the registry of sandbox {} is not running (ferry-sandbox -n {0} registry up)",
                self.sandbox.name()
            );
        }
        let path = self.dir().join("info.json");
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(serde_json::from_str(&text)?)
    }

    /// The registry's port: chosen once, so that image references and containerd's hosts
    /// stay valid across restarts.
    fn port(&self) -> Result<u16> {
        let path = self.dir().join("port");
        if let Ok(text) = fs::read_to_string(&path) {
            return text
                .trim()
                .parse()
                .with_context(|| format!("{} holds no port number", path.display()));
        }
        let port = TcpListener::bind("0.0.0.0:0")?.local_addr()?.port();
        fs::write(&path, port.to_string())?;
        Ok(port)
    }

    /// The credentials, generated on the first `up`.
    fn credentials(&self) -> Result<Credentials> {
        let path = self.dir().join("credentials.json");
        if path.exists() {
            return read_credentials(&path);
        }
        let credentials = Credentials {
            username: USERNAME.to_string(),
            password: Alphanumeric.sample_string(&mut rand::rng(), 32),
        };
        write_private(
            &self.dir(),
            "credentials.json",
            &serde_json::to_string_pretty(&credentials)?,
        )?;
        Ok(credentials)
    }

    fn wait_ready(&self, port: u16) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.component().running().is_none() {
                bail!("{}", self.component().exit_report());
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the registry does not accept connections on port {port} after {:?}",
                    START_TIMEOUT
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

fn read_credentials(path: &Path) -> Result<Credentials> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// containerd's host configuration for one registry address: HTTPS, trusting the sandbox CA.
fn write_hosts_toml(dir: &Path, address: &str, ca: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::copy(ca, dir.join("ca.crt"))?;
    let hosts = format!(
        r#"server = "https://{address}"

[host."https://{address}"]
  capabilities = ["pull", "resolve"]
  ca = "{}"
"#,
        dir.join("ca.crt").display()
    );
    fs::write(dir.join("hosts.toml"), hosts)?;
    Ok(())
}
