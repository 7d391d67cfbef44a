//! Charts from a Helm repository or an OCI registry, pulled with `helm pull` into a workspace
//! the way Argo CD's repo server fetches them. Before pulling from a registry whose repository
//! Secret has a username and password, helm logs in to it with the password on stdin, into the
//! workspace's private helm config; `insecureOCIForceHttp` makes helm speak plain HTTP and
//! `insecure` skips TLS verification. Helm resolves a version constraint (`1.*`, `>=1.0.0`)
//! against the registry's tags, as Argo CD does, or against the repository's index.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use ferry_git::RepoCredential;
use serde_json::Value;

use crate::error::ErrorKind;
use crate::tool::{Invocation, ToolRunner};
use crate::workspace::Workspace;

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
}

/// A pulled, unpacked chart.
pub(crate) struct Pulled {
    /// The chart directory, inside the workspace.
    pub dir: PathBuf,
    /// The chart's version: what a constraint resolved to.
    pub version: String,
}

impl Pull<'_> {
    pub(crate) async fn run(&self) -> Result<Pulled, ErrorKind> {
        if self.chart.contains("..") || self.chart.starts_with('/') {
            return Err(ErrorKind::unsafe_path(self.chart, "invalid chart name"));
        }
        let credential = &self.credential;
        let registry = registry_of(self.repo_url);
        let mut args: Vec<OsString> = vec!["pull".into()];
        match registry {
            None => {
                args.extend([self.chart.into(), "--repo".into(), self.repo_url.into()]);
                if self.pass_credentials {
                    args.push("--pass-credentials".into());
                }
            }
            Some((repository, host)) => {
                self.login(host)
                    .await
                    .map_err(|e| self.registry_error(host, e))?;
                args.push(format!("oci://{repository}/{}", self.chart).into());
                if credential.insecure_oci_force_http {
                    args.push("--plain-http".into());
                }
            }
        }
        if credential.insecure {
            args.push("--insecure-skip-tls-verify".into());
        }
        if !self.version.is_empty() {
            args.extend(["--version".into(), self.version.into()]);
        }
        args.extend([
            "--untar".into(),
            "--untardir".into(),
            self.ws.repo.clone().into_os_string(),
        ]);
        self.helm("helm pull", args, None)
            .await
            .map_err(|e| match registry {
                Some((_, host)) => self.registry_error(host, e),
                None => e,
            })?;
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

    /// `helm registry login`, when the credential has a username and a password (Argo CD logs
    /// in only then; anonymous pulls need no login).
    async fn login(&self, host: &str) -> Result<(), ErrorKind> {
        let credential = &self.credential;
        let (Some(username), Some(password)) = (&credential.username, &credential.password) else {
            return Ok(());
        };
        let mut args: Vec<OsString> = vec![
            "registry".into(),
            "login".into(),
            host.into(),
            "--username".into(),
            username.into(),
            "--password-stdin".into(),
        ];
        if credential.insecure_oci_force_http {
            args.push("--plain-http".into());
        }
        if credential.insecure {
            args.push("--insecure".into());
        }
        self.helm("helm registry login", args, Some(password.as_bytes()))
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
                    env: Vec::new(),
                },
                input,
            )
            .await
    }

    /// What a failed helm run against a registry means, in words a user can act on; helm's
    /// own message follows, with the password (which helm never sees on its command line)
    /// masked all the same.
    fn registry_error(&self, host: &str, error: ErrorKind) -> ErrorKind {
        let credential = &self.credential;
        let ErrorKind::ToolFailed { tool, stderr, .. } = &error else {
            return error;
        };
        let mut detail = stderr.clone();
        if let Some(password) = credential.password.as_deref().filter(|p| !p.is_empty()) {
            detail = detail.replace(password, "***");
        }
        let lower = detail.to_lowercase();
        let version = if self.version.is_empty() {
            String::new()
        } else {
            format!(" version {}", self.version)
        };
        // Words, not status codes: a bare "401" may be part of a port or a digest.
        let unauthorized = ["unauthorized", "credential not found"];
        let reason = if unauthorized.iter().any(|needle| lower.contains(needle)) {
            if credential.username.is_some() && credential.password.is_some() {
                "authentication failed: the registry refused the credentials of the repository \
                 Secret"
                    .to_string()
            } else {
                format!(
                    "authentication required: no repository Secret with a username and password \
                     matches {}",
                    self.repo_url
                )
            }
        } else if lower.contains("x509") {
            "its TLS certificate is not trusted (`insecure: \"true\"` in the repository Secret \
             skips verification)"
                .to_string()
        } else if lower.contains("could not locate a version") {
            format!(
                "no version of chart {} matches {}",
                self.chart, self.version
            )
        } else if lower.contains("not found") || lower.contains("name unknown") {
            format!("chart {}{version} not found", self.chart)
        } else {
            format!("cannot pull chart {}{version}", self.chart)
        };
        ErrorKind::Registry {
            registry: host.to_string(),
            reason: format!("{reason} ({tool}: {detail})"),
        }
    }
}

/// For a registry URL (`oci://` or no scheme), the repository without scheme and its registry
/// host; `None` for a Helm repository (`http(s)://`).
fn registry_of(repo_url: &str) -> Option<(&str, &str)> {
    if repo_url.starts_with("http://") || repo_url.starts_with("https://") {
        return None;
    }
    let repository = repo_url
        .strip_prefix("oci://")
        .unwrap_or(repo_url)
        .trim_end_matches('/');
    let host = repository.split('/').next().unwrap_or(repository);
    Some((repository, host))
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
