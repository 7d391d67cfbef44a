//! A Helm chart repository as ChartMuseum, Artifactory, Nexus or GitHub Pages serve one: a
//! static `index.yaml` and chart archives, made with the real `helm package` and `helm repo
//! index`, served over HTTP (or HTTPS with a self-signed certificate) on a free loopback port
//! by tower-http's `ServeDir` behind axum, optionally requiring HTTP basic auth.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use ferry_testkit::chart_repo::{ChartRepo, ChartRepoOptions};
//! let repo = ChartRepo::start(ChartRepoOptions {
//!     auth: Some(("alice", "s3cret")),
//!     ..Default::default()
//! })?;
//! repo.add_chart(std::path::Path::new("charts/web"))?;
//! println!("helm pull web --repo {}", repo.url());
//! # Ok(()) }
//! ```
//!
//! The server stops when its handle is dropped.

use std::ffi::OsStr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use tempfile::TempDir;
use tower_http::services::ServeDir;

use crate::TestCa;
use crate::helm::Helm;
use crate::http::{BasicAuth, LoopbackServer, SelfSigned, require_basic_auth};

/// Where the repository lives on the server: below a path, as on GitHub Pages or Artifactory.
const PATH: &str = "/charts";

/// How the repository is served.
#[derive(Clone, Copy, Default)]
pub struct ChartRepoOptions<'a> {
    /// Require HTTP basic auth with this user and password for every file.
    pub auth: Option<(&'a str, &'a str)>,
    /// HTTPS with a self-signed certificate for 127.0.0.1, instead of plain HTTP.
    pub tls: bool,
    /// Host the index's chart URLs name (`localhost`: the same server under another name),
    /// instead of URLs relative to the index. helm sends credentials to another host only
    /// with `--pass-credentials`.
    pub chart_host: Option<&'a str>,
    /// HTTPS with a certificate this CA signed, to clients presenting a certificate it signed
    /// only (instead of `tls`'s self-signed certificate).
    pub client_ca: Option<&'a TestCa>,
    /// Plain HTTP on every interface, named by the host's own address: a client that never
    /// sends loopback traffic through a proxy (Go's net/http, so helm) then uses one.
    pub beyond_loopback: bool,
}

/// A running chart repository.
pub struct ChartRepo {
    server: LoopbackServer,
    /// `address:port` clients use.
    authority: String,
    chart_host: Option<String>,
    /// The self-signed certificate (PEM) it serves HTTPS with, if it does.
    certificate: Option<String>,
    files: PathBuf,
    _dir: TempDir,
}

impl ChartRepo {
    pub fn start(options: ChartRepoOptions<'_>) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("ferry-chart-repo-")
            .tempdir()?;
        let files = dir.path().join("charts");
        std::fs::create_dir(&files)?;
        let tls = match options.client_ca {
            Some(ca) => {
                let server = ca.server()?;
                Some(SelfSigned {
                    cert: server.cert,
                    key: server.key,
                    client_ca: Some(ca.certificate().to_owned()),
                })
            }
            None => options.tls.then(SelfSigned::generate).transpose()?,
        };
        anyhow::ensure!(
            !(options.beyond_loopback && tls.is_some()),
            "a chart repository beyond loopback serves plain HTTP (its certificates name 127.0.0.1)"
        );
        let app = axum::Router::new()
            .nest_service(PATH, ServeDir::new(&files))
            .layer(axum::middleware::from_fn_with_state(
                BasicAuth::new(options.auth),
                require_basic_auth,
            ));
        let certificate = tls.as_ref().map(|tls| tls.cert.clone());
        let (server, authority) = if options.beyond_loopback {
            let server =
                LoopbackServer::start_on(std::net::Ipv4Addr::UNSPECIFIED.into(), app, None)?;
            let host = ferry_sandbox::default_route_address()
                .context("this host has no address but loopback")?;
            let authority = std::net::SocketAddr::new(host, server.addr().port()).to_string();
            (server, authority)
        } else {
            let server = LoopbackServer::start(app, tls)?;
            let authority = server.addr().to_string();
            (server, authority)
        };
        let repo = ChartRepo {
            server,
            authority,
            chart_host: options.chart_host.map(str::to_string),
            certificate,
            files,
            _dir: dir,
        };
        // A valid, empty repository until charts are added.
        repo.index(&Helm::new()?)?;
        Ok(repo)
    }

    /// `http(s)://127.0.0.1:<port>/charts`: the repository URL (`repoURL`, `helm repo add`).
    pub fn url(&self) -> String {
        format!("{}://{}{PATH}", self.scheme(), self.authority)
    }

    fn scheme(&self) -> &'static str {
        if self.certificate.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The certificate (PEM) an HTTPS repository presents.
    pub fn certificate(&self) -> Option<&str> {
        self.certificate.as_deref()
    }

    /// Packages the chart in `chart_dir` into the repository and indexes it again.
    pub fn add_chart(&self, chart_dir: &std::path::Path) -> Result<()> {
        let helm = Helm::new()?;
        let package = helm.package(chart_dir)?;
        let name = package.file_name().context("archive without a name")?;
        std::fs::copy(&package, self.files.join(name))?;
        self.index(&helm)
    }

    /// `helm repo index` over every archive served.
    fn index(&self, helm: &Helm) -> Result<()> {
        let mut args = vec![
            OsStr::new("repo").to_owned(),
            "index".into(),
            self.files.clone().into_os_string(),
        ];
        if let Some(host) = &self.chart_host {
            let port = self.server.addr().port();
            args.extend([
                "--url".into(),
                format!("{}://{host}:{port}{PATH}", self.scheme()).into(),
            ]);
        }
        let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        helm.run(&args, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(version: &str) -> Result<TempDir> {
        let dir = tempfile::tempdir()?;
        std::fs::write(
            dir.path().join("Chart.yaml"),
            format!("apiVersion: v2\nname: web\nversion: {version}\n"),
        )?;
        Ok(dir)
    }

    /// `helm repo add` (reads the index) and `helm pull` (reads an archive), as users run them.
    fn add_and_pull(repo: &ChartRepo, credentials: Option<(&str, &str)>) -> Result<String> {
        add_and_pull_with(repo, credentials, &[])
    }

    fn add_and_pull_with(
        repo: &ChartRepo,
        credentials: Option<(&str, &str)>,
        flags: &[&str],
    ) -> Result<String> {
        let helm = Helm::new()?;
        let url = repo.url();
        let mut add = vec!["repo", "add", "r", url.as_str()];
        add.extend(flags);
        if let Some((user, _)) = credentials {
            add.extend(["--username", user, "--password-stdin"]);
        }
        let add: Vec<&OsStr> = add.iter().map(OsStr::new).collect();
        helm.run(&add, credentials.map(|(_, password)| password))?;
        let into = tempfile::tempdir()?;
        let pull = ["pull", "r/web", "--version", "1.*"];
        let mut pull: Vec<&OsStr> = pull.iter().chain(flags).map(OsStr::new).collect();
        pull.extend([OsStr::new("--destination"), into.path().as_os_str()]);
        helm.run(&pull, None)?;
        let pulled = std::fs::read_dir(into.path())?
            .next()
            .context("nothing pulled")??;
        Ok(pulled.file_name().to_string_lossy().into_owned())
    }

    #[test]
    fn serves_a_chart_repository_helm_can_use() -> Result<()> {
        let repo = ChartRepo::start(ChartRepoOptions::default())?;
        for version in ["1.0.0", "1.2.0", "2.0.0"] {
            repo.add_chart(chart(version)?.path())?;
        }
        assert_eq!(add_and_pull(&repo, None)?, "web-1.2.0.tgz");
        Ok(())
    }

    #[test]
    fn basic_auth_refuses_missing_and_wrong_credentials() -> Result<()> {
        let repo = ChartRepo::start(ChartRepoOptions {
            auth: Some(("alice", "s3cret")),
            ..Default::default()
        })?;
        repo.add_chart(chart("1.0.0")?.path())?;
        assert_eq!(
            add_and_pull(&repo, Some(("alice", "s3cret")))?,
            "web-1.0.0.tgz"
        );
        for refused in [None, Some(("alice", "wrong"))] {
            let err = add_and_pull(&repo, refused).unwrap_err().to_string();
            assert!(err.contains("401 Unauthorized"), "{err}");
        }
        Ok(())
    }

    #[test]
    fn tls_uses_a_certificate_helm_trusts_only_when_told() -> Result<()> {
        let repo = ChartRepo::start(ChartRepoOptions {
            tls: true,
            ..Default::default()
        })?;
        assert!(repo.url().starts_with("https://127.0.0.1:"));
        repo.add_chart(chart("1.0.0")?.path())?;
        let err = add_and_pull(&repo, None).unwrap_err().to_string();
        assert!(err.contains("x509"), "{err}");
        let insecure = ["--insecure-skip-tls-verify"];
        assert_eq!(add_and_pull_with(&repo, None, &insecure)?, "web-1.0.0.tgz");
        Ok(())
    }
}
