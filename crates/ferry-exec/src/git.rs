//! Git input artifacts: the repository cloned at a revision into the artifact's directory, as
//! upstream's executor clones with go-git. libgit2 (git2, the workspace's Git library) is linked
//! into the static binary with its HTTPS (OpenSSL) and ssh (libssh2) transports, so the clone
//! needs no `git` or `ssh` program in the image.

use std::cell::Cell;
use std::path::Path;
use std::sync::OnceLock;

use git2::build::CheckoutBuilder;
use git2::{
    AutotagOption, CertificateCheckStatus, Cred, CredentialType, FetchOptions, Oid,
    RemoteCallbacks, Repository, SubmoduleUpdateOptions,
};
use serde::{Deserialize, Serialize};

/// The remote's name in the clone, as `git clone` names it.
const ORIGIN: &str = "origin";
/// How deep submodules of submodules are updated (go-git's default).
const SUBMODULE_DEPTH: usize = 10;

/// Upstream's `git` artifact, credentials named by the environment variables holding them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitSource {
    pub repo: String,
    /// A branch, tag or commit (anything `git rev-parse` takes); the remote's HEAD when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// A shallow clone of this many commits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<u32>,
    /// More refspecs fetched after the clone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fetch: Vec<String>,
    /// Fetch `branch` alone.
    #[serde(default)]
    pub single_branch: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default)]
    pub disable_submodules: bool,
    /// Accept any ssh host key.
    #[serde(default)]
    pub insecure_ignore_host_key: bool,
    /// Accept any TLS server certificate.
    #[serde(default)]
    pub insecure_skip_tls: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_private_key_env: Option<String>,
}

impl GitSource {
    /// The environment variables holding its credentials.
    pub fn secret_variables(&self) -> impl Iterator<Item = &String> {
        [
            &self.username_env,
            &self.password_env,
            &self.ssh_private_key_env,
        ]
        .into_iter()
        .flatten()
    }

    /// Clones the repository into `dest` (created, or empty) and checks out the revision;
    /// returns the commit checked out, `None` for an empty repository.
    pub fn clone_into(&self, dest: &Path) -> Result<Option<String>, String> {
        let shown = display_url(&self.repo);
        let failed = |err: git2::Error| format!("{shown}: {}", err.message());
        let branch = match (&self.branch, self.single_branch) {
            (Some(branch), true) => Some(branch.as_str()),
            (None, true) => return Err("single branch mode without a branch specified".into()),
            (_, false) => None,
        };
        let auth = Auth::from_env(self)?;
        if self.repo.starts_with("https://") && !self.insecure_skip_tls {
            let parent = dest.parent().unwrap_or(Path::new("."));
            trust_mozilla_roots_without_system_ones(parent)?;
        }
        let repo = Repository::init(dest).map_err(failed)?;
        let mut remote = repo.remote(ORIGIN, &self.repo).map_err(failed)?;
        let heads = match branch {
            Some(b) => format!("+refs/heads/{b}:refs/remotes/{ORIGIN}/{b}"),
            None => format!("+refs/heads/*:refs/remotes/{ORIGIN}/*"),
        };
        let mut options = auth.fetch_options(self);
        options.download_tags(if branch.is_some() {
            AutotagOption::Auto
        } else {
            AutotagOption::All
        });
        if let Some(depth) = self.depth.filter(|d| *d > 0) {
            options.depth(i32::try_from(depth).unwrap_or(i32::MAX));
        }
        remote
            .fetch(&[heads.as_str()], Some(&mut options), None)
            .map_err(failed)?;
        if !self.fetch.is_empty() {
            let refspecs: Vec<&str> = self.fetch.iter().map(String::as_str).collect();
            let mut options = auth.fetch_options(self);
            remote
                .fetch(&refspecs, Some(&mut options), None)
                .map_err(|err| {
                    format!("{shown}: fetch {}: {}", self.fetch.join(" "), err.message())
                })?;
        }
        let default_branch = remote.default_branch().ok();
        drop(remote);

        let target = match (&self.revision, branch) {
            (Some(revision), _) => Some(
                resolve(&repo, revision)
                    .map_err(|err| format!("{shown}: revision {revision}: {}", err.message()))?,
            ),
            (None, Some(branch)) => Some(Target::Branch(branch.to_string())),
            (None, None) => default_branch
                .as_ref()
                .and_then(|b| b.as_str().ok())
                .and_then(|b| b.strip_prefix("refs/heads/"))
                .map(|b| Target::Branch(b.to_string())),
        };
        let Some(target) = target else {
            return Ok(None); // An empty repository: nothing to check out.
        };
        let commit = checkout(&repo, &target).map_err(failed)?;
        if !self.disable_submodules {
            update_submodules(&repo, &auth, self, SUBMODULE_DEPTH)
                .map_err(|err| format!("{shown}: submodules: {}", err.message()))?;
        }
        Ok(Some(commit.to_string()))
    }
}

/// The executor's image holds no CA certificates, and libgit2's OpenSSL trusts only those of
/// the image: without any at OpenSSL's usual places, Mozilla's roots (those ureq trusts for S3)
/// are written once into `dir` and given to libgit2.
fn trust_mozilla_roots_without_system_ones(dir: &Path) -> Result<(), String> {
    static TRUSTED: OnceLock<Result<(), String>> = OnceLock::new();
    let probed = openssl_probe::probe();
    if probed.cert_file.is_some() || probed.cert_dir.is_some() {
        return Ok(());
    }
    TRUSTED
        .get_or_init(|| {
            let file = dir.join(".ferry-ca-certificates.pem");
            std::fs::write(&file, mozilla_roots_pem())
                .map_err(|e| format!("writing {}: {e}", file.display()))?;
            // SAFETY: the init container clones one artifact after another; nothing else of
            // this process uses libgit2 meanwhile.
            #[allow(unsafe_code)]
            unsafe { git2::opts::set_ssl_cert_file(&file) }
                .map_err(|e| format!("CA certificates: {}", e.message()))
        })
        .clone()
}

/// Mozilla's root certificates as a PEM bundle.
fn mozilla_roots_pem() -> String {
    use base64::Engine;
    let mut pem = String::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let encoded = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem
}

/// What to check out.
enum Target {
    /// A remote branch, checked out as a local branch of that name (as `git clone` does).
    Branch(String),
    /// A commit (a tag's or any other), checked out detached.
    Commit(Oid),
}

/// A remote branch of that name first, else whatever `git rev-parse` makes of it.
fn resolve(repo: &Repository, revision: &str) -> Result<Target, git2::Error> {
    let remote_branch = format!("refs/remotes/{ORIGIN}/{revision}");
    if repo.find_reference(&remote_branch).is_ok() {
        return Ok(Target::Branch(revision.to_string()));
    }
    let commit = repo.revparse_single(revision)?.peel_to_commit()?;
    Ok(Target::Commit(commit.id()))
}

fn checkout(repo: &Repository, target: &Target) -> Result<Oid, git2::Error> {
    let commit = match target {
        Target::Branch(name) => {
            let remote = format!("refs/remotes/{ORIGIN}/{name}");
            let commit = repo.find_reference(&remote)?.peel_to_commit()?;
            let mut local = repo.branch(name, &commit, true)?;
            local.set_upstream(Some(&format!("{ORIGIN}/{name}")))?;
            repo.set_head(&format!("refs/heads/{name}"))?;
            commit
        }
        Target::Commit(id) => {
            repo.set_head_detached(*id)?;
            repo.find_commit(*id)?
        }
    };
    repo.checkout_head(Some(CheckoutBuilder::new().force()))?;
    Ok(commit.id())
}

fn update_submodules(
    repo: &Repository,
    auth: &Auth,
    source: &GitSource,
    depth: usize,
) -> Result<(), git2::Error> {
    if depth == 0 {
        return Ok(());
    }
    for mut submodule in repo.submodules()? {
        let mut options = SubmoduleUpdateOptions::new();
        options.fetch(auth.fetch_options(source));
        submodule.update(true, Some(&mut options))?;
        update_submodules(&submodule.open()?, auth, source, depth - 1)?;
    }
    Ok(())
}

/// The credentials, read from the environment once.
struct Auth {
    username: Option<String>,
    password: Option<String>,
    ssh_private_key: Option<String>,
}

impl Auth {
    fn from_env(source: &GitSource) -> Result<Self, String> {
        let read = |var: &Option<String>| -> Result<Option<String>, String> {
            var.as_ref()
                .map(|var| {
                    std::env::var(var).map_err(|_| format!("the credential in {var} is not set"))
                })
                .transpose()
        };
        Ok(Auth {
            username: read(&source.username_env)?,
            password: read(&source.password_env)?,
            ssh_private_key: read(&source.ssh_private_key_env)?,
        })
    }

    /// Callbacks answering credentials once (libgit2 asks again after a refusal, forever)
    /// and checking certificates unless told not to.
    fn fetch_options(&self, source: &GitSource) -> FetchOptions<'_> {
        let mut callbacks = RemoteCallbacks::new();
        let asked = Cell::new(0u8);
        callbacks.credentials(move |_url, user_from_url, allowed| {
            asked.set(asked.get() + 1);
            // ssh asks for the user name first, then for the key: two questions, one answer.
            if asked.get() > 2 {
                return Err(git2::Error::from_str("authentication failed"));
            }
            let user = user_from_url.unwrap_or("git");
            if allowed.contains(CredentialType::USERNAME) {
                return Cred::username(user);
            }
            if let Some(key) = self
                .ssh_private_key
                .as_deref()
                .filter(|_| allowed.contains(CredentialType::SSH_KEY))
            {
                return Cred::ssh_key_from_memory(user, None, key, None);
            }
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
                && (self.username.is_some() || self.password.is_some())
            {
                return Cred::userpass_plaintext(
                    self.username.as_deref().unwrap_or_default(),
                    self.password.as_deref().unwrap_or_default(),
                );
            }
            Err(git2::Error::from_str(
                "the server asks for credentials the artifact does not give",
            ))
        });
        let (ignore_host_key, skip_tls) =
            (source.insecure_ignore_host_key, source.insecure_skip_tls);
        callbacks.certificate_check(move |certificate, _host| {
            let insecure = if certificate.as_hostkey().is_some() {
                ignore_host_key
            } else {
                certificate.as_x509().is_some() && skip_tls
            };
            Ok(if insecure {
                CertificateCheckStatus::CertificateOk
            } else {
                CertificateCheckStatus::CertificatePassthrough
            })
        });
        let mut options = FetchOptions::new();
        options.remote_callbacks(callbacks);
        options
    }
}

/// The URL without a password, for messages.
fn display_url(repo: &str) -> String {
    match url::Url::parse(repo) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => repo.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_hide_a_password_in_the_url() {
        assert_eq!(
            display_url("https://bot:s3cret@git.example.com/a.git"),
            "https://bot:***@git.example.com/a.git"
        );
        assert_eq!(
            display_url("git@github.com:org/a.git"),
            "git@github.com:org/a.git"
        );
    }

    #[test]
    fn mozillas_roots_make_a_pem_bundle() {
        let pem = mozilla_roots_pem();
        let count = pem.matches("-----BEGIN CERTIFICATE-----").count();
        assert_eq!(count, webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        assert!(count > 100, "{count}");
        let first = pem.split("-----END CERTIFICATE-----").next().unwrap();
        let body: String = first.lines().skip(1).collect();
        let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body).unwrap();
        assert_eq!(der, webpki_root_certs::TLS_SERVER_ROOT_CERTS[0].as_ref());
    }

    #[test]
    fn single_branch_needs_a_branch() {
        let source = GitSource {
            repo: "file:///nowhere".into(),
            single_branch: true,
            ..GitSource::default()
        };
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            source.clone_into(dir.path()).unwrap_err(),
            "single branch mode without a branch specified"
        );
    }
}
