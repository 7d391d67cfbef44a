//! Repository credentials, shaped like Argo CD's `repository` secrets (one repository) and
//! `repo-creds` secrets (templates for every repository under a URL prefix), plus the ssh
//! known_hosts content (Argo CD's `argocd-ssh-known-hosts-cm`).

use std::fmt;

use crate::GitError;
use crate::known_hosts::KnownHosts;
use crate::repo_url::normalize;

/// Username sent with a password-only (token) credential; GitHub, GitLab and Gitea accept any
/// non-empty username with a personal access token.
pub const TOKEN_USERNAME: &str = "x-access-token";

/// Secrets for one repository or URL prefix. `Debug` never shows them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RepoCredential {
    /// https username; for ssh, used when the URL names no user (default `git`).
    pub username: Option<String>,
    /// https password or access token.
    pub password: Option<String>,
    /// ssh private key, PEM or OpenSSH format, unencrypted.
    pub ssh_private_key: Option<String>,
    /// Skip TLS certificate verification (https) and host key verification (ssh).
    pub insecure: bool,
    /// Reach an OCI registry over plain HTTP (Argo CD's `insecureOCIForceHttp`).
    pub insecure_oci_force_http: bool,
}

impl RepoCredential {
    /// https basic auth.
    pub fn basic(username: &str, password: &str) -> Self {
        RepoCredential {
            username: Some(username.to_owned()),
            password: Some(password.to_owned()),
            ..Default::default()
        }
    }

    /// https access token (sent as the password of [`TOKEN_USERNAME`]).
    pub fn token(token: &str) -> Self {
        RepoCredential {
            password: Some(token.to_owned()),
            ..Default::default()
        }
    }

    /// ssh private key.
    pub fn ssh_key(private_key: &str) -> Self {
        RepoCredential {
            ssh_private_key: Some(private_key.to_owned()),
            ..Default::default()
        }
    }

    pub fn insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    fn has_secrets(&self) -> bool {
        self.password.is_some() || self.ssh_private_key.is_some()
    }
}

impl fmt::Debug for RepoCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |present: bool| if present { Some("<redacted>") } else { None };
        f.debug_struct("RepoCredential")
            .field("username", &self.username)
            .field("password", &redacted(self.password.is_some()))
            .field("ssh_private_key", &redacted(self.ssh_private_key.is_some()))
            .field("insecure", &self.insecure)
            .field("insecure_oci_force_http", &self.insecure_oci_force_http)
            .finish()
    }
}

/// Every credential the repo service knows, looked up per repository URL.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// (normalized URL, credential) of single repositories.
    repos: Vec<(String, RepoCredential)>,
    /// (normalized URL prefix, credential) templates.
    templates: Vec<(String, RepoCredential)>,
    known_hosts: KnownHosts,
}

impl Credentials {
    pub fn new() -> Self {
        Self::default()
    }

    /// Credentials for exactly this repository (URLs compare after Argo CD's normalization).
    pub fn with_repo(mut self, url: &str, credential: RepoCredential) -> Self {
        self.repos.push((normalize(url), credential));
        self
    }

    /// Credentials for every repository whose URL starts with `url_prefix`.
    pub fn with_template(mut self, url_prefix: &str, credential: RepoCredential) -> Self {
        self.templates.push((normalize(url_prefix), credential));
        self
    }

    /// Trusted ssh host keys, in OpenSSH known_hosts format (replaces earlier content).
    pub fn with_known_hosts(mut self, known_hosts: &str) -> Result<Self, GitError> {
        self.known_hosts = KnownHosts::parse(known_hosts).map_err(GitError::InvalidCredentials)?;
        Ok(self)
    }

    /// The credential for `url`: an exact repository entry with secrets wins; otherwise the
    /// template with the longest matching prefix lends its secrets (a repository entry without
    /// secrets still contributes its `insecure` flags), as Argo CD does.
    pub fn lookup(&self, url: &str) -> Option<RepoCredential> {
        let url = normalize(url);
        let exact = self.repos.iter().find(|(u, _)| *u == url).map(|(_, c)| c);
        if let Some(exact) = exact.filter(|c| c.has_secrets()) {
            return Some(exact.clone());
        }
        let template = self
            .templates
            .iter()
            .filter(|(prefix, _)| url.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, c)| c);
        match (exact, template) {
            (Some(exact), Some(template)) => Some(RepoCredential {
                insecure: exact.insecure || template.insecure,
                insecure_oci_force_http: exact.insecure_oci_force_http
                    || template.insecure_oci_force_http,
                ..template.clone()
            }),
            (exact, template) => exact.or(template).cloned(),
        }
    }

    pub(crate) fn known_hosts(&self) -> &KnownHosts {
        &self.known_hosts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_template_prefix_wins_and_exact_repo_beats_templates() {
        let creds = Credentials::new()
            .with_template(
                "https://git.example.com/",
                RepoCredential::basic("org", "1"),
            )
            .with_template(
                "https://git.example.com/team/",
                RepoCredential::basic("team", "2"),
            )
            .with_repo(
                "https://git.example.com/team/app.git",
                RepoCredential::basic("app", "3"),
            );
        let user = |url: &str| creds.lookup(url).and_then(|c| c.username);
        assert_eq!(
            user("https://git.example.com/other/x").as_deref(),
            Some("org")
        );
        assert_eq!(
            user("https://git.example.com/team/x").as_deref(),
            Some("team")
        );
        assert_eq!(
            user("https://git.example.com/team/app").as_deref(),
            Some("app")
        );
        assert_eq!(
            user("https://GIT.example.com/team/app.git").as_deref(),
            Some("app")
        );
        assert_eq!(user("https://elsewhere.com/x"), None);
    }

    #[test]
    fn repo_without_secrets_borrows_from_template() {
        let creds = Credentials::new()
            .with_template("git@github.com:org", RepoCredential::ssh_key("KEY"))
            .with_repo(
                "git@github.com:org/app.git",
                RepoCredential {
                    insecure_oci_force_http: true,
                    ..RepoCredential::default().insecure(true)
                },
            );
        let found = creds.lookup("git@github.com:org/app.git").unwrap();
        assert_eq!(found.ssh_private_key.as_deref(), Some("KEY"));
        assert!(found.insecure && found.insecure_oci_force_http);
        // Only the insecure flag of that repository, not of the template's other repos.
        assert!(
            !creds
                .lookup("git@github.com:org/other.git")
                .unwrap()
                .insecure
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let shown = format!("{:?}", RepoCredential::basic("alice", "s3cret"));
        assert!(
            shown.contains("alice") && !shown.contains("s3cret"),
            "{shown}"
        );
        let shown = format!("{:?}", RepoCredential::ssh_key("-----BEGIN KEY"));
        assert!(!shown.contains("BEGIN"), "{shown}");
    }

    #[test]
    fn bad_known_hosts_is_an_error() {
        let err = Credentials::new()
            .with_known_hosts("host not-a-key-type AAAA\n")
            .unwrap_err();
        assert!(matches!(err, GitError::InvalidCredentials(m) if m.contains("line 1")));
    }
}
