//! Repository credentials, shaped like Argo CD's `repository` secrets (one repository) and
//! `repo-creds` secrets (templates for every repository under a URL), each global or scoped to
//! one AppProject, plus the ssh known_hosts content (Argo CD's `argocd-ssh-known-hosts-cm`) and
//! the TLS certificates trusted per host (`argocd-tls-certs-cm`).

use std::fmt;

use crate::GitError;
use crate::github_app::GithubApp;
use crate::known_hosts::KnownHosts;
use crate::repo_url::{Location, normalize};
use crate::tls_certs::TlsCerts;

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
    /// A TLS client certificate presented to https servers (Argo CD's `tlsClientCertData` and
    /// `tlsClientCertKey`, PEM; used only when both are set).
    pub tls_client_cert: Option<ClientCert>,
    /// An http(s) proxy for https and http remotes (Argo CD's `proxy`).
    pub proxy: Option<String>,
    /// Hosts reached without the proxy (Argo CD's `noProxy`, comma-separated).
    pub no_proxy: Option<String>,
    /// A GitHub App installation whose access token is the https password (when there is no
    /// password or ssh key).
    pub github_app: Option<GithubApp>,
}

/// A TLS client certificate (chain, PEM) and its unencrypted private key (PEM).
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCert {
    pub cert_pem: String,
    pub key_pem: String,
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

    /// Whether it authenticates by itself (Argo CD's `HasCredentials`); a repository entry
    /// without credentials borrows the secrets of a matching template.
    pub fn has_credentials(&self) -> bool {
        self.username.is_some()
            || self.password.is_some()
            || self.ssh_private_key.is_some()
            || self.tls_client_cert.is_some()
            || self.github_app.is_some()
    }

    /// This entry's flags with the secrets of `template` (what a credential template lends a
    /// repository entry that has none of its own).
    fn with_secrets_of(self, template: &RepoCredential) -> RepoCredential {
        RepoCredential {
            username: template.username.clone(),
            password: template.password.clone(),
            ssh_private_key: template.ssh_private_key.clone(),
            tls_client_cert: template.tls_client_cert.clone(),
            github_app: template.github_app.clone(),
            // Argo CD lends the template's proxy to an entry that names none.
            proxy: self.proxy.or_else(|| template.proxy.clone()),
            no_proxy: self.no_proxy.or_else(|| template.no_proxy.clone()),
            ..self
        }
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
            .field("tls_client_cert", &redacted(self.tls_client_cert.is_some()))
            .field("proxy", &self.proxy.as_deref().map(crate::repo_url::scrub))
            .field("no_proxy", &self.no_proxy)
            .field("github_app", &self.github_app)
            .finish()
    }
}

/// One configured entry: a repository or a template, global or for one AppProject.
#[derive(Clone, Debug)]
struct Entry<K> {
    /// What it is matched by: the normalized URL of a repository, the parsed URL of a template
    /// (`None` when the template's URL does not parse: it then matches nothing).
    key: K,
    /// The AppProject it belongs to; `None` for every project.
    project: Option<String>,
    credential: RepoCredential,
}

impl<K> Entry<K> {
    /// Whether an app of `project` (none: no project, e.g. a bare CLI render) may use it.
    fn usable_by(&self, project: Option<&str>) -> bool {
        self.project.is_none() || self.project.as_deref() == project
    }
}

/// Every credential the repo service knows, looked up per repository URL and AppProject.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    repos: Vec<Entry<String>>,
    templates: Vec<Entry<Option<Location>>>,
    known_hosts: KnownHosts,
    tls_certs: TlsCerts,
}

impl Credentials {
    pub fn new() -> Self {
        Self::default()
    }

    /// Credentials for exactly this repository (URLs compare after Argo CD's normalization),
    /// for every project.
    pub fn with_repo(self, url: &str, credential: RepoCredential) -> Self {
        self.with_project_repo("", url, credential)
    }

    /// Credentials for exactly this repository, for apps of `project` only (Argo CD's
    /// `project` key of a repository Secret); an empty `project` means every project.
    pub fn with_project_repo(
        mut self,
        project: &str,
        url: &str,
        credential: RepoCredential,
    ) -> Self {
        self.repos.push(Entry {
            key: normalize(url),
            project: Some(project.to_owned()).filter(|p| !p.is_empty()),
            credential,
        });
        self
    }

    /// A credential template for every repository under `url_prefix`, for every project.
    pub fn with_template(self, url_prefix: &str, credential: RepoCredential) -> Self {
        self.with_project_template("", url_prefix, credential)
    }

    /// A credential template for every repository under `url_prefix`, for apps of `project`
    /// only; an empty `project` means every project. See [`Credentials::lookup`] for what
    /// "under" means.
    pub fn with_project_template(
        mut self,
        project: &str,
        url_prefix: &str,
        credential: RepoCredential,
    ) -> Self {
        self.templates.push(Entry {
            key: Location::parse(url_prefix),
            project: Some(project.to_owned()).filter(|p| !p.is_empty()),
            credential,
        });
        self
    }

    /// Trusted ssh host keys, in OpenSSH known_hosts format (replaces earlier content).
    pub fn with_known_hosts(mut self, known_hosts: &str) -> Result<Self, GitError> {
        self.known_hosts = KnownHosts::parse(known_hosts).map_err(GitError::InvalidCredentials)?;
        Ok(self)
    }

    /// TLS certificates trusted per host for https (replaces earlier ones).
    pub fn with_tls_certs(mut self, tls_certs: TlsCerts) -> Self {
        self.tls_certs = tls_certs;
        self
    }

    /// The PEM certificates trusted for the host of `url`, if any are configured. A URL
    /// without scheme is an OCI registry's, as Argo CD writes Helm OCI repositories.
    pub fn tls_ca(&self, url: &str) -> Option<&str> {
        let url = url.trim();
        let parsed = if url.contains("://") {
            url::Url::parse(url)
        } else {
            url::Url::parse(&format!("oci://{url}"))
        };
        let host = parsed.ok()?.host_str()?.to_owned();
        self.tls_certs.pem_for(&host)
    }

    /// The credential an app of `project` (`None`: no project, only global entries apply) uses
    /// for `url`.
    ///
    /// - **Project scope.** Entries scoped to another project are never used. Among the entries
    ///   that apply, one scoped to `project` wins over a global one, for repositories and
    ///   templates alike (as Argo CD's `GetRepository(url, project)` prefers the project's
    ///   repository Secret and falls back to a global one).
    /// - **Repository before template.** The repository entry for the URL (Argo CD's URL
    ///   normalization) is used as it is when it has credentials (username, password or ssh
    ///   key). Without, the matching template lends its *secrets* only; the flags (`insecure`,
    ///   `insecureOCIForceHttp`) stay the repository entry's. Flags are never OR-ed across
    ///   Secrets. Without a repository entry the template is used as it is.
    /// - **Templates match on the parsed URL**, not on its text: same scheme (scp-like and
    ///   `ssh://` are both ssh), host and port, the template's user if it names one, and its
    ///   path as whole leading segments. So `https://git.example.com` never covers
    ///   `https://git.example.com@evil.tld/x`, `https://git.example.com.evil.tld/x` or
    ///   `https://git.example.com:8443/x`, and `https://git.example.com/org` covers
    ///   `https://git.example.com/org/x` but not `https://git.example.com/org-evil/x`. Argo CD
    ///   compares normalized strings by prefix; ferry is deliberately stricter, so a template
    ///   whose URL is a mere string prefix of another host's or path's URL does not apply. The
    ///   most specific matching template (most path segments) wins.
    pub fn lookup(&self, url: &str, project: Option<&str>) -> Option<RepoCredential> {
        let project = project.filter(|p| !p.is_empty());
        let normalized = normalize(url);
        let exact = best(
            self.repos
                .iter()
                .filter(|e| e.key == normalized && e.usable_by(project))
                .map(|e| (e.project.is_some(), e)),
        );
        if let Some(exact) = exact.filter(|e| e.credential.has_credentials()) {
            return Some(exact.credential.clone());
        }
        let location = Location::parse(url);
        let template = location.and_then(|location| {
            best(self.templates.iter().filter_map(|e| {
                let key = e.key.as_ref()?;
                (key.covers(&location) && e.usable_by(project))
                    .then(|| ((e.project.is_some(), key.specificity()), e))
            }))
        });
        match (exact, template) {
            (Some(exact), Some(template)) => Some(
                exact
                    .credential
                    .clone()
                    .with_secrets_of(&template.credential),
            ),
            (Some(exact), None) => Some(exact.credential.clone()),
            (None, template) => template.map(|e| e.credential.clone()),
        }
    }

    pub(crate) fn known_hosts(&self) -> &KnownHosts {
        &self.known_hosts
    }

    pub(crate) fn tls_certs(&self) -> &TlsCerts {
        &self.tls_certs
    }
}

/// The candidate with the highest rank; the first one among equals, so the order Secrets were
/// listed in decides only between exact duplicates.
fn best<'a, R: Ord, T>(candidates: impl Iterator<Item = (R, &'a T)>) -> Option<&'a T> {
    let mut best: Option<(R, &T)> = None;
    for (rank, candidate) in candidates {
        if best.as_ref().is_none_or(|(top, _)| rank > *top) {
            best = Some((rank, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
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
        let user = |url: &str| creds.lookup(url, None).and_then(|c| c.username);
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
        let found = creds.lookup("git@github.com:org/app.git", None).unwrap();
        assert_eq!(found.ssh_private_key.as_deref(), Some("KEY"));
        assert!(found.insecure && found.insecure_oci_force_http);
        // Only the insecure flag of that repository, not of the template's other repos.
        assert!(
            !creds
                .lookup("git@github.com:org/other.git", None)
                .unwrap()
                .insecure
        );
    }

    /// Issue 10, item 5: project-scoped repository Secrets and templates.
    #[test]
    fn project_scoped_entries_apply_to_their_project_only_and_win_over_global_ones() {
        let url = "https://git.example.com/org/app.git";
        let creds = Credentials::new()
            .with_repo(url, RepoCredential::basic("global", "g"))
            .with_project_repo("team-a", url, RepoCredential::basic("team-a", "a"))
            .with_project_repo(
                "team-b",
                "https://git.example.com/org/only-b.git",
                RepoCredential::basic("team-b", "b"),
            )
            .with_project_template(
                "team-b",
                "https://git.example.com/org",
                RepoCredential::basic("team-b-template", "bt"),
            )
            .with_template("https://git.example.com", RepoCredential::basic("all", "t"));
        let user =
            |url: &str, project: Option<&str>| creds.lookup(url, project).and_then(|c| c.username);
        // The project's entry wins over the global one, whatever the order of the Secrets.
        assert_eq!(user(url, Some("team-a")).as_deref(), Some("team-a"));
        // Other projects, and no project, get the global one.
        assert_eq!(user(url, Some("team-c")).as_deref(), Some("global"));
        assert_eq!(user(url, None).as_deref(), Some("global"));
        assert_eq!(user(url, Some("")).as_deref(), Some("global"));
        // Another project's repository entry is never used: team-a falls back to the global
        // template, team-b gets its own entry.
        let only_b = "https://git.example.com/org/only-b.git";
        assert_eq!(user(only_b, Some("team-a")).as_deref(), Some("all"));
        assert_eq!(user(only_b, None).as_deref(), Some("all"));
        assert_eq!(user(only_b, Some("team-b")).as_deref(), Some("team-b"));
        // Templates too: team-b's template applies to team-b only.
        let other = "https://git.example.com/org/other.git";
        assert_eq!(
            user(other, Some("team-b")).as_deref(),
            Some("team-b-template")
        );
        assert_eq!(user(other, Some("team-a")).as_deref(), Some("all"));
        // Only project-scoped entries: nothing for anyone else.
        let scoped_only = Credentials::new()
            .with_project_repo("team-a", url, RepoCredential::basic("team-a", "a"))
            .with_project_template(
                "team-a",
                "https://git.example.com",
                RepoCredential::token("t"),
            );
        assert_eq!(scoped_only.lookup(url, Some("team-b")), None);
        assert_eq!(scoped_only.lookup(url, None), None);
        assert!(scoped_only.lookup(url, Some("team-a")).is_some());
    }

    #[test]
    fn a_project_template_wins_over_a_more_specific_global_one() {
        let creds = Credentials::new()
            .with_template(
                "https://git.example.com/org/team",
                RepoCredential::basic("global", "g"),
            )
            .with_project_template(
                "team",
                "https://git.example.com",
                RepoCredential::basic("team", "t"),
            );
        let user = |project| {
            creds
                .lookup("https://git.example.com/org/team/app", project)
                .and_then(|c| c.username)
        };
        assert_eq!(user(Some("team")).as_deref(), Some("team"));
        assert_eq!(user(Some("other")).as_deref(), Some("global"));
    }

    /// Issue 10, item 5: flags are never OR-ed across Secrets.
    #[test]
    fn flags_come_from_the_repository_entry_and_secrets_from_the_template() {
        let url = "https://git.example.com/org/app.git";
        let insecure_template = RepoCredential {
            insecure_oci_force_http: true,
            ..RepoCredential::basic("bot", "tok").insecure(true)
        };
        // A repository entry without credentials: the template lends its secrets, not its flags.
        let creds = Credentials::new()
            .with_template("https://git.example.com/org", insecure_template.clone())
            .with_repo(url, RepoCredential::default());
        let found = creds.lookup(url, None).unwrap();
        assert_eq!(found.username.as_deref(), Some("bot"));
        assert_eq!(found.password.as_deref(), Some("tok"));
        assert!(
            !found.insecure && !found.insecure_oci_force_http,
            "{found:?}"
        );
        // A repository entry with credentials is used as it is.
        let creds = Credentials::new()
            .with_template("https://git.example.com/org", insecure_template.clone())
            .with_repo(url, RepoCredential::basic("app", "pw"));
        let found = creds.lookup(url, None).unwrap();
        assert_eq!(found, RepoCredential::basic("app", "pw"));
        // A username counts as a credential (Argo CD's HasCredentials): nothing is borrowed.
        let username_only = RepoCredential {
            username: Some("app".into()),
            ..RepoCredential::default()
        };
        let creds = Credentials::new()
            .with_template("https://git.example.com/org", insecure_template.clone())
            .with_repo(url, username_only.clone());
        assert_eq!(creds.lookup(url, None).unwrap(), username_only);
        // Without a repository entry the template is used as it is, flags included.
        let creds = Credentials::new()
            .with_template("https://git.example.com/org", insecure_template.clone());
        assert_eq!(creds.lookup(url, None).unwrap(), insecure_template);
    }

    /// Issue 10, item 9: templates match on the parsed URL, never on a string prefix.
    #[test]
    fn templates_match_scheme_host_port_and_whole_path_segments() {
        let creds = Credentials::new()
            .with_template(
                "https://git.example.com",
                RepoCredential::basic("host", "1"),
            )
            .with_template(
                "https://git.example.com/org",
                RepoCredential::basic("org", "2"),
            );
        let user = |url: &str| creds.lookup(url, None).and_then(|c| c.username);
        for url in [
            "https://git.example.com@evil.tld/x",
            "https://git.example.com:pw@evil.tld/x",
            "https://git.example.com.evil.tld/x",
            "https://git.example.com:8443/x",
            "http://git.example.com/x",
            "ssh://git@git.example.com/x",
            "git@git.example.com:org/x",
            "git.example.com/org/x",
            "https://evil.tld/https://git.example.com/org/x",
        ] {
            assert_eq!(user(url), None, "{url}");
        }
        assert_eq!(user("https://git.example.com/x").as_deref(), Some("host"));
        assert_eq!(
            user("https://git.example.com:443/x").as_deref(),
            Some("host")
        );
        assert_eq!(user("https://GIT.example.com/x").as_deref(), Some("host"));
        assert_eq!(
            user("https://git.example.com/org/x").as_deref(),
            Some("org")
        );
        assert_eq!(user("https://git.example.com/org").as_deref(), Some("org"));
        assert_eq!(
            user("https://git.example.com/org.git").as_deref(),
            Some("org")
        );
        assert_eq!(
            user("https://git.example.com/ORG/x").as_deref(),
            Some("org")
        );
        // Segment boundaries: org-evil is another path.
        assert_eq!(
            user("https://git.example.com/org-evil/x").as_deref(),
            Some("host")
        );
        assert_eq!(
            user("https://git.example.com/organization").as_deref(),
            Some("host")
        );
        // Dot segments do not climb out of the template's path.
        assert_eq!(
            user("https://git.example.com/org/../evil/x").as_deref(),
            Some("host")
        );
        assert_eq!(
            user("https://git.example.com/org/%2e%2e/evil/x").as_deref(),
            Some("host")
        );
        // A trailing slash in the template changes nothing.
        let slash = Credentials::new().with_template(
            "https://git.example.com/org/",
            RepoCredential::basic("org", "2"),
        );
        assert!(
            slash
                .lookup("https://git.example.com/org/x", None)
                .is_some()
        );
        assert!(
            slash
                .lookup("https://git.example.com/org-evil/x", None)
                .is_none()
        );
        // A template whose URL does not parse matches nothing.
        let broken = Credentials::new().with_template("https://", RepoCredential::token("t"));
        assert!(broken.lookup("https://git.example.com/x", None).is_none());
    }

    #[test]
    fn ssh_templates_match_scp_like_and_ssh_urls() {
        let creds = Credentials::new()
            .with_template("git@github.com:org", RepoCredential::ssh_key("ORG"))
            .with_template(
                "ssh://git@gitlab.example.com:2222/team/",
                RepoCredential::ssh_key("TEAM"),
            );
        let key = |url: &str| creds.lookup(url, None).and_then(|c| c.ssh_private_key);
        assert_eq!(key("git@github.com:org/repo.git").as_deref(), Some("ORG"));
        assert_eq!(
            key("ssh://git@github.com/org/repo.git").as_deref(),
            Some("ORG")
        );
        assert_eq!(
            key("ssh://git@github.com:22/org/repo").as_deref(),
            Some("ORG")
        );
        assert_eq!(key("git@github.com:org-evil/repo.git"), None);
        assert_eq!(key("git@github.com:other/repo.git"), None);
        assert_eq!(key("ssh://git@github.com:2222/org/repo.git"), None);
        assert_eq!(
            key("alice@github.com:org/repo.git"),
            None,
            "the template names user git"
        );
        assert_eq!(key("git@github.com.evil.tld:org/repo.git"), None);
        assert_eq!(
            key("ssh://git@gitlab.example.com:2222/team/app.git").as_deref(),
            Some("TEAM")
        );
        assert_eq!(
            key("git@gitlab.example.com:team/app.git"),
            None,
            "port 22, not 2222"
        );
    }

    #[test]
    fn oci_templates_match_registries_with_and_without_scheme() {
        let creds = Credentials::new()
            .with_template(
                "registry.example.com:5000",
                RepoCredential::basic("reg", "1"),
            )
            .with_template(
                "oci://charts.example.com/team",
                RepoCredential::basic("team", "2"),
            );
        let user = |url: &str| creds.lookup(url, None).and_then(|c| c.username);
        assert_eq!(
            user("registry.example.com:5000/charts").as_deref(),
            Some("reg")
        );
        assert_eq!(
            user("oci://registry.example.com:5000/charts").as_deref(),
            Some("reg")
        );
        assert_eq!(user("registry.example.com/charts"), None, "another port");
        assert_eq!(user("registry.example.com:5000.evil.tld/charts"), None);
        assert_eq!(user("charts.example.com/team/web").as_deref(), Some("team"));
        assert_eq!(user("charts.example.com/team-evil/web"), None);
        assert_eq!(user("https://charts.example.com/team/web"), None);
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
