//! Charts from a Helm repository or an OCI registry, pulled with `helm pull` into a workspace
//! the way Argo CD's repo server fetches them. When the repository Secret has a username and a
//! password, helm reads the password on stdin into the workspace's private helm config (deleted
//! with the workspace): `helm registry login` before pulling from a registry, `helm repo add`
//! before pulling from a Helm repository (with the source's `passCredentials`, helm also sends
//! them to the other hosts the repository's index points to). `insecureOCIForceHttp` makes helm
//! speak plain HTTP to a registry and `insecure` skips TLS verification; certificates
//! `argocd-tls-certs-cm` trusts for the host reach helm as `--ca-file`, the Secret's client
//! certificate as `--cert-file`/`--key-file`, its proxy as helm's environment. Helm resolves a version
//! constraint (`1.*`, `>=1.0.0`) against the registry's tags, as Argo CD does, or against the
//! repository's index.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use ferry_git::RepoCredential;
use serde_json::Value;

use crate::error::ErrorKind;
use crate::tool::{Invocation, ToolRunner};
use crate::workspace::Workspace;

/// What a render's private helm config calls the Helm repository it pulls from.
const REPO_NAME: &str = "ferry";

/// One chart to pull.
pub(crate) struct Pull<'a> {
    pub runner: &'a ToolRunner,
    pub helm: &'a Path,
    pub ws: &'a Workspace,
    /// `http(s)://` for a Helm repository; `oci://` or no scheme (as Argo CD writes OCI
    /// repositories) for a registry.
    pub repo_url: &'a str,
    pub chart: &'a str,
    /// Exact version or constraint; the latest version when empty.
    pub version: &'a str,
    pub pass_credentials: bool,
    /// The repository Secrets' credential for `repo_url` (the default when none matches).
    pub credential: RepoCredential,
    /// PEM certificates trusted for the host of `repo_url` besides the system's CAs.
    pub ca_pem: Option<String>,
}

/// A pulled, unpacked chart.
pub(crate) struct Pulled {
    /// The chart directory, inside the workspace.
    pub dir: PathBuf,
    /// The chart's version: what a constraint resolved to.
    pub version: String,
}

/// Where a chart comes from.
enum Server<'a> {
    /// An OCI registry: the repository without scheme, and the registry's host.
    Registry { repository: &'a str, host: &'a str },
    /// A Helm chart repository (`http(s)://`).
    Repository,
}

impl Server<'_> {
    fn noun(&self) -> &'static str {
        match self {
            Server::Registry { .. } => "registry",
            Server::Repository => "Helm repository",
        }
    }

    /// How errors name it (a repository's URL is already in the source's name).
    fn describe(&self) -> String {
        match self {
            Server::Registry { host, .. } => format!("registry {host}"),
            Server::Repository => self.noun().to_string(),
        }
    }
}

impl Pull<'_> {
    pub(crate) async fn run(&self) -> Result<Pulled, ErrorKind> {
        if self.chart.contains("..") || self.chart.starts_with('/') {
            return Err(ErrorKind::unsafe_path(self.chart, "invalid chart name"));
        }
        let server = server_of(self.repo_url);
        let tls = self.tls_args()?;
        self.pull(&server, &tls)
            .await
            .map_err(|e| self.explain(&server, e))?;
        let name = self.chart.rsplit('/').next().unwrap_or(self.chart);
        let dir = self.ws.repo.join(name);
        let version = chart_version(&dir).ok_or_else(|| {
            ErrorKind::Invalid(format!(
                "helm pull of {} did not produce a chart directory",
                self.chart
            ))
        })?;
        Ok(Pulled { dir, version })
    }

    /// `helm pull` into the workspace, after handing helm the credentials if there are any.
    async fn pull(&self, server: &Server<'_>, tls: &[OsString]) -> Result<(), ErrorKind> {
        let credential = &self.credential;
        let mut args: Vec<OsString> = vec!["pull".into()];
        match (server, self.basic_auth()) {
            (Server::Registry { repository, host }, auth) => {
                if let Some((username, password)) = auth {
                    self.registry_login(host, username, password, tls).await?;
                }
                args.push(format!("oci://{repository}/{}", self.chart).into());
                if credential.insecure_oci_force_http {
                    args.push("--plain-http".into());
                }
            }
            (Server::Repository, Some((username, password))) => {
                self.repo_add(username, password, tls).await?;
                args.push(format!("{REPO_NAME}/{}", self.chart).into());
            }
            (Server::Repository, None) => {
                args.extend([self.chart.into(), "--repo".into(), self.repo_url.into()]);
                if self.pass_credentials {
                    args.push("--pass-credentials".into());
                }
            }
        }
        if credential.insecure {
            args.push("--insecure-skip-tls-verify".into());
        }
        args.extend_from_slice(tls);
        if !self.version.is_empty() {
            args.extend(["--version".into(), self.version.into()]);
        }
        args.extend([
            "--untar".into(),
            "--untardir".into(),
            self.ws.repo.clone().into_os_string(),
        ]);
        self.helm("helm pull", args, None).await.map(drop)
    }

    /// helm's TLS flags: the trusted certificates (`--ca-file`) and the repository Secret's
    /// client certificate (`--cert-file`, `--key-file`), in files of the private workspace.
    fn tls_args(&self) -> Result<Vec<OsString>, ErrorKind> {
        let mut args = Vec::new();
        let mut file = |flag: &str, name: &str, pem: &str| {
            let path = self.ws.scratch(name);
            std::fs::write(&path, pem).map_err(|e| ErrorKind::io(name, e))?;
            args.extend([flag.into(), path.into_os_string()]);
            Ok::<_, ErrorKind>(())
        };
        if let Some(pem) = &self.ca_pem {
            file("--ca-file", "ca.crt", pem)?;
        }
        if let Some(client) = &self.credential.tls_client_cert {
            file("--cert-file", "client.crt", &client.cert_pem)?;
            file("--key-file", "client.key", &client.key_pem)?;
        }
        Ok(args)
    }

    /// The repository Secret's proxy, as the environment helm (Go's net/http) reads it; the
    /// tools' environment carries none of ferry's own.
    fn proxy_env(&self) -> Vec<(String, String)> {
        let credential = &self.credential;
        let Some(proxy) = credential.proxy.as_deref().filter(|p| !p.trim().is_empty()) else {
            return Vec::new();
        };
        let mut env = vec![
            ("HTTPS_PROXY".to_string(), proxy.to_string()),
            ("HTTP_PROXY".to_string(), proxy.to_string()),
        ];
        if let Some(no_proxy) = credential.no_proxy.as_deref() {
            env.push(("NO_PROXY".to_string(), no_proxy.to_string()));
        }
        env
    }

    /// The username and password to authenticate with. Only both make a credential: Argo CD
    /// logs in to a registry only then, and helm sends basic auth only then.
    fn basic_auth(&self) -> Option<(&str, &str)> {
        let credential = &self.credential;
        let username = credential.username.as_deref().filter(|u| !u.is_empty())?;
        let password = credential.password.as_deref().filter(|p| !p.is_empty())?;
        Some((username, password))
    }

    /// `helm registry login`.
    async fn registry_login(
        &self,
        host: &str,
        username: &str,
        password: &str,
        tls: &[OsString],
    ) -> Result<(), ErrorKind> {
        let mut args: Vec<OsString> = vec!["registry".into(), "login".into(), host.into()];
        if self.credential.insecure_oci_force_http {
            args.push("--plain-http".into());
        }
        if self.credential.insecure {
            args.push("--insecure".into());
        }
        args.extend_from_slice(tls);
        self.authenticate("helm registry login", args, username, password)
            .await
    }

    /// `helm repo add` of the repository under [`REPO_NAME`]: helm downloads the index with
    /// the credentials and keeps them for the pull.
    async fn repo_add(
        &self,
        username: &str,
        password: &str,
        tls: &[OsString],
    ) -> Result<(), ErrorKind> {
        let mut args: Vec<OsString> = vec![
            "repo".into(),
            "add".into(),
            REPO_NAME.into(),
            self.repo_url.into(),
        ];
        if self.credential.insecure {
            args.push("--insecure-skip-tls-verify".into());
        }
        args.extend_from_slice(tls);
        if self.pass_credentials {
            args.push("--pass-credentials".into());
        }
        self.authenticate("helm repo add", args, username, password)
            .await
    }

    /// Runs a helm command that takes credentials: the password goes on stdin, never into the
    /// arguments (which process listings and logs show).
    async fn authenticate(
        &self,
        tool: &str,
        mut args: Vec<OsString>,
        username: &str,
        password: &str,
    ) -> Result<(), ErrorKind> {
        args.extend([
            "--username".into(),
            username.into(),
            "--password-stdin".into(),
        ]);
        self.helm(tool, args, Some(password.as_bytes()))
            .await
            .map(drop)
    }

    async fn helm(
        &self,
        tool: &str,
        args: Vec<OsString>,
        input: Option<&[u8]>,
    ) -> Result<String, ErrorKind> {
        self.runner
            .run_with_input(
                Invocation {
                    tool: tool.into(),
                    program: self.helm,
                    args,
                    cwd: &self.ws.repo,
                    home: &self.ws.home,
                    env: self.proxy_env(),
                },
                input,
            )
            .await
    }

    /// What a failed helm run means, in words a user can act on; helm's own message follows,
    /// with the password (which helm never sees on its command line) masked all the same.
    fn explain(&self, server: &Server<'_>, error: ErrorKind) -> ErrorKind {
        let ErrorKind::ToolFailed { tool, stderr, .. } = &error else {
            return error;
        };
        let mut detail = stderr.clone();
        if let Some(password) = self
            .credential
            .password
            .as_deref()
            .filter(|p| !p.is_empty())
        {
            detail = detail.replace(password, "***");
        }
        let reason = self.reason(server, tool, &detail.to_lowercase());
        ErrorKind::ChartPull {
            server: server.describe(),
            reason: format!("{reason} ({tool}: {detail})"),
        }
    }

    /// The cause of a failed helm run, from helm's lower-cased stderr. Words, not status codes:
    /// a bare "401" may be part of a port or a digest.
    fn reason(&self, server: &Server<'_>, tool: &str, stderr: &str) -> String {
        let says = |needles: &[&str]| needles.iter().any(|needle| stderr.contains(needle));
        let chart = self.chart;
        let version = if self.version.is_empty() {
            String::new()
        } else {
            format!(" version {}", self.version)
        };
        if says(&["unauthorized", "forbidden", "credential not found"]) {
            return match self.basic_auth() {
                None => format!(
                    "authentication required: no repository Secret with a username and password \
                     matches {}",
                    self.repo_url
                ),
                // `helm repo add` got the index with these credentials: the archive is elsewhere.
                Some(_)
                    if matches!(server, Server::Repository)
                        && tool == "helm pull"
                        && !self.pass_credentials =>
                {
                    format!(
                        "authentication failed fetching chart {chart}{version}: its archive is \
                         on another host than the repository, and helm sends the credentials \
                         there only with `passCredentials: true`"
                    )
                }
                Some(_) => format!(
                    "authentication failed: the {} refused the credentials of the repository \
                     Secret",
                    server.noun()
                ),
            };
        }
        if says(&["x509"]) {
            return "its TLS certificate is not trusted (trust its CA for the host in \
                    argocd-tls-certs-cm, or skip verification with `insecure: \"true\"` in the \
                    repository Secret)"
                .to_string();
        }
        let missing = [
            "not found",
            "name unknown",
            "could not locate a version",
            "no chart version found",
        ];
        if !says(&missing) {
            return format!("cannot pull chart {chart}{version}");
        }
        if self.version.is_empty() || is_exact_version(self.version) {
            format!("chart {chart}{version} not found")
        } else {
            format!("no version of chart {chart} matches {}", self.version)
        }
    }
}

/// Whether `version` names one chart version rather than a constraint.
pub(crate) fn is_exact_version(version: &str) -> bool {
    semver::Version::parse(version.trim_start_matches('v')).is_ok()
}

/// A Helm repository for `http(s)://`; otherwise (`oci://` or no scheme) a registry.
fn server_of(repo_url: &str) -> Server<'_> {
    if repo_url.starts_with("http://") || repo_url.starts_with("https://") {
        return Server::Repository;
    }
    let repository = repo_url
        .strip_prefix("oci://")
        .unwrap_or(repo_url)
        .trim_end_matches('/');
    let host = repository.split('/').next().unwrap_or(repository);
    Server::Registry { repository, host }
}

/// The `version` of the chart in `dir`, if it holds a chart.
fn chart_version(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("Chart.yaml")).ok()?;
    let chart: Value = serde_yaml::from_str(&text).ok()?;
    match &chart["version"] {
        Value::String(version) => Some(version.clone()),
        // An unquoted `version: 1.0` reads as a number.
        Value::Number(version) => Some(version.to_string()),
        _ => None,
    }
}
