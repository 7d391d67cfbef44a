//! An OCI registry for Helm charts: the CNCF distribution registry (built by `scripts/toolchain`,
//! the binary of the sandbox's own registry) on a free loopback port, storing into a temporary
//! directory, optionally behind htpasswd basic auth and serving HTTPS with a self-signed
//! certificate. Charts are pushed with the real `helm` (`helm package`, `helm push`) under a
//! throwaway helm home, so no registry login reaches the user's own helm configuration.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use ferry_testkit::registry::{Registry, RegistryOptions};
//! let registry = Registry::start(RegistryOptions {
//!     auth: Some(("alice", "s3cret")),
//!     ..Default::default()
//! })?;
//! registry.push_chart(std::path::Path::new("charts/web"), "charts")?;
//! println!("oci://{}/charts/web", registry.host());
//! # Ok(()) }
//! ```
//!
//! The registry stops when its handle is dropped.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command};

use anyhow::{Result, bail};
use serde_json::json;
use tempfile::TempDir;

use crate::daemon::{start_on_free_port, stop};
use crate::helm::Helm;
use crate::http::SelfSigned;

/// How the registry is served.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegistryOptions<'a> {
    /// Require HTTP basic auth with this user and password.
    pub auth: Option<(&'a str, &'a str)>,
    /// HTTPS with a self-signed certificate for 127.0.0.1, instead of plain HTTP.
    pub tls: bool,
}

/// A running registry.
pub struct Registry {
    child: Child,
    port: u16,
    tls: bool,
    auth: Option<(String, String)>,
    _dir: TempDir,
}

impl Registry {
    pub fn start(options: RegistryOptions<'_>) -> Result<Self> {
        let binary = ferry_sandbox::toolchain::bin_dir().join("registry");
        if !binary.is_file() {
            bail!(
                "{} is missing: build it with scripts/toolchain",
                binary.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("ferry-registry-")
            .tempdir()?;
        let mut config = json!({
            "version": "0.1",
            "log": {"level": "info"},
            "storage": {"filesystem": {"rootdirectory": dir.path().join("data")}},
            "http": {},
        });
        if let Some((user, password)) = options.auth {
            // The lowest cost bcrypt allows: every pull checks it again.
            let hash = bcrypt::hash(password, 4)?;
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n"))?;
            config["auth"] = json!({"htpasswd": {"realm": "ferry-test", "path": htpasswd}});
        }
        if options.tls {
            let tls = SelfSigned::generate()?;
            let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
            std::fs::write(&cert, tls.cert)?;
            std::fs::write(&key, tls.key)?;
            config["http"]["tls"] = json!({"certificate": cert, "key": key});
        }
        let config_file = dir.path().join("config.yml");
        let command = |port: u16| {
            let mut config = config.clone();
            config["http"]["addr"] = json!(format!("127.0.0.1:{port}"));
            // JSON is YAML too.
            std::fs::write(&config_file, config.to_string())?;
            let mut cmd = Command::new(&binary);
            // No REGISTRY_* variables of the caller may change the configuration, and
            // distribution's tracing stays off.
            cmd.env_clear()
                .env("OTEL_TRACES_EXPORTER", "none")
                .arg("serve")
                .arg(&config_file);
            Ok(cmd)
        };
        let (child, port) =
            start_on_free_port(&dir.path().join("registry.log"), command, |_| true)?;
        Ok(Registry {
            child,
            port,
            tls: options.tls,
            auth: options
                .auth
                .map(|(user, password)| (user.to_string(), password.to_string())),
            _dir: dir,
        })
    }

    /// `127.0.0.1:<port>`: the registry part of an OCI reference, and how Argo CD writes an OCI
    /// Helm repository's URL.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Packages the chart in `chart_dir` and pushes it to `oci://<host>/<repository>/<name>`,
    /// tagged with its version, logging in first when the registry requires it.
    pub fn push_chart(&self, chart_dir: &Path, repository: &str) -> Result<()> {
        let helm = Helm::new()?;
        let package = helm.package(chart_dir)?;
        let host = self.host();
        if let Some((user, password)) = &self.auth {
            let transport = if self.tls {
                "--insecure"
            } else {
                "--plain-http"
            };
            let login_args = [
                "registry",
                "login",
                &host,
                "--username",
                user,
                "--password-stdin",
                transport,
            ];
            helm.run(&login_args.map(OsStr::new), Some(password))?;
        }
        let target = format!("oci://{host}/{repository}");
        let transport = if self.tls {
            "--insecure-skip-tls-verify"
        } else {
            "--plain-http"
        };
        let push_args = [
            OsStr::new("push"),
            package.as_os_str(),
            OsStr::new(&target),
            OsStr::new(transport),
        ];
        helm.run(&push_args, None)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
