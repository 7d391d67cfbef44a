//! Git fixtures: bare repositories built with the real `git` CLI, served on loopback over
//! file://, `git daemon` (git://), smart HTTP (`git http-backend` behind a small axum server,
//! optionally with basic auth) and ssh (a private OpenSSH `sshd`, key auth only). The daemon,
//! smart HTTP and ssh servers can listen on every interface instead (`start_for_pods`), so that
//! pods on the sandbox's real node reach them by the host's address (`pod_url`), as they reach
//! MinIO and the sandbox registry.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use ferry_testkit::git::{GitRepo, HttpServer};
//! let repo = GitRepo::new()?;
//! repo.write("app/cm.yaml", "kind: ConfigMap\n")?;
//! let sha = repo.commit("first")?;
//! repo.tag("v1.2.0")?;
//! let http = HttpServer::start(&repo, Some(("user", "pass")))?;
//! println!("{} at {sha}", http.url());
//! # Ok(()) }
//! ```
//!
//! Every server stops when its handle is dropped.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tempfile::TempDir;

use crate::TestCa;
use crate::daemon::{start_on_free_port, start_on_port, stop};
use crate::http::{BasicAuth, LoopbackServer, SelfSigned};

/// Prefix of every fixture repository's directory under the system temp directory.
const FIXTURE_PREFIX: &str = "ferry-git-fixture-";

/// An AppProject `sourceRepos` entry permitting the `file://` URL of every [`GitRepo`]:
/// projects permit local repositories only through entries that start with `file://`
/// (never through `*`), so harnesses that run apps from fixture repositories list this.
pub fn fixture_source_repos() -> String {
    let dirs = std::env::temp_dir().join(format!("{FIXTURE_PREFIX}*"));
    format!("file://{}/**", dirs.display())
}

/// A bare repository (what servers serve) plus a working clone used to build its history.
/// Every mutating call is pushed to the bare repository at once, so servers see it immediately.
pub struct GitRepo {
    dir: TempDir,
}

impl GitRepo {
    /// An empty repository whose default branch is `main`.
    pub fn new() -> Result<Self> {
        let dir = tempfile::Builder::new().prefix(FIXTURE_PREFIX).tempdir()?;
        let repo = GitRepo { dir };
        git(
            repo.dir.path(),
            &["init", "-q", "--bare", "-b", "main", "repo.git"],
        )?;
        git(repo.dir.path(), &["init", "-q", "-b", "main", "work"])?;
        let bare = repo.bare_path().to_string_lossy().into_owned();
        repo.git(&["remote", "add", "origin", &bare])?;
        Ok(repo)
    }

    /// Path of the bare repository.
    pub fn bare_path(&self) -> PathBuf {
        self.dir.path().join("repo.git")
    }

    /// Path of the working clone (to inspect or to run other git commands in).
    pub fn work_path(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// `file://` URL of the bare repository.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.bare_path().display())
    }

    /// Write a file (creating parent directories) in the working clone; staged at the next commit.
    pub fn write(&self, path: &str, contents: impl AsRef<[u8]>) -> Result<()> {
        let file = self.work_path().join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&file, contents).with_context(|| format!("writing {}", file.display()))
    }

    /// Create a symbolic link `path` -> `target` (stored verbatim) in the working clone.
    pub fn symlink(&self, path: &str, target: &str) -> Result<()> {
        let link = self.work_path().join(path);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::os::unix::fs::symlink(target, &link)
            .with_context(|| format!("creating symlink {}", link.display()))
    }

    /// Remove a file or directory from the working clone; the removal is staged at the next commit.
    pub fn remove(&self, path: &str) -> Result<()> {
        self.git(&["rm", "-r", "-q", "--", path]).map(drop)
    }

    /// Commit everything in the working clone on the current branch and push; returns the SHA.
    pub fn commit(&self, message: &str) -> Result<String> {
        self.git(&["add", "-A"])?;
        self.git(&["commit", "-q", "--allow-empty", "-m", message])?;
        self.push()?;
        self.head()
    }

    /// [`Self::commit`], signed with `key` (`git commit -S`).
    pub fn commit_signed(&self, message: &str, key: &crate::gpg::GpgKey) -> Result<String> {
        self.git(&["add", "-A"])?;
        let mut args = key.git_signing_options();
        args.extend(["commit", "-q", "--allow-empty", "-S", "-m", message].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.git(&args)?;
        self.push()?;
        self.head()
    }

    /// SHA of the working clone's current commit.
    pub fn head(&self) -> Result<String> {
        self.git(&["rev-parse", "HEAD"])
    }

    /// Lightweight tag at the current commit.
    pub fn tag(&self, name: &str) -> Result<()> {
        self.git(&["tag", name])?;
        self.push()
    }

    /// Annotated tag at the current commit.
    pub fn annotated_tag(&self, name: &str, message: &str) -> Result<()> {
        self.git(&["tag", "-a", name, "-m", message])?;
        self.push()
    }

    /// Create (or move) branch `name` to the current commit, staying on the current branch.
    pub fn branch(&self, name: &str) -> Result<()> {
        self.git(&["branch", "-f", name])?;
        self.push()
    }

    /// Continue work on branch `name`, creating it at the current commit if it does not exist.
    pub fn switch(&self, name: &str) -> Result<()> {
        let exists = self.git(&["rev-parse", "--verify", "-q", &format!("refs/heads/{name}")]);
        match exists {
            Ok(_) => self.git(&["switch", "-q", name])?,
            Err(_) => self.git(&["switch", "-q", "-c", name])?,
        };
        self.push()
    }

    /// Delete a branch or tag (`refs/heads/x` or `refs/tags/x`) in both repositories.
    pub fn delete_ref(&self, full_ref: &str) -> Result<()> {
        self.git(&["update-ref", "-d", full_ref])?;
        self.push()
    }

    /// Point the served repository's HEAD (the default branch) at `branch`.
    pub fn set_default_branch(&self, branch: &str) -> Result<()> {
        let head = format!("refs/heads/{branch}");
        git(&self.bare_path(), &["symbolic-ref", "HEAD", &head]).map(drop)
    }

    /// Add a submodule at `path` cloned from `url`; staged at the next commit.
    pub fn add_submodule(&self, path: &str, url: &str) -> Result<()> {
        // git refuses file:// submodules by default since 2.38.1; fixtures use them on purpose.
        let args = [
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            url,
            path,
        ];
        self.git(&args).map(drop)
    }

    /// Run git in the working clone and return its trimmed stdout.
    pub fn git(&self, args: &[&str]) -> Result<String> {
        git(&self.work_path(), args)
    }

    fn push(&self) -> Result<()> {
        let refspecs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];
        let mut args = vec!["push", "-q", "--prune", "origin"];
        args.extend(refspecs);
        self.git(&args).map(drop)
    }
}

/// Run git (isolated, see [`isolate_git`]) and return its trimmed stdout.
fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = git_command()
        .current_dir(dir)
        .args(args)
        .output()
        .context("running git (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "git {} in {} failed: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn git_command() -> Command {
    let mut cmd = Command::new("git");
    isolate_git(&mut cmd);
    cmd
}

/// No system/global git config (a developer's settings must not change fixtures), fixed identity.
fn isolate_git(cmd: &mut Command) -> &mut Command {
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "ferry-test")
        .env("GIT_AUTHOR_EMAIL", "ferry-test@example.invalid")
        .env("GIT_COMMITTER_NAME", "ferry-test")
        .env("GIT_COMMITTER_EMAIL", "ferry-test@example.invalid")
        .env("GIT_TERMINAL_PROMPT", "0")
}

/// `git daemon` serving one repository read-only on a loopback port.
pub struct GitDaemon {
    child: Child,
    port: u16,
    base: PathBuf,
    listen: Ipv4Addr,
    logs: TempDir,
}

impl GitDaemon {
    pub fn start(repo: &GitRepo) -> Result<Self> {
        Self::start_on(repo, Ipv4Addr::LOCALHOST)
    }

    /// Serves on every interface, for pods on the real node ([`Self::pod_url`]).
    pub fn start_for_pods(repo: &GitRepo) -> Result<Self> {
        Self::start_on(repo, Ipv4Addr::UNSPECIFIED)
    }

    fn start_on(repo: &GitRepo, listen: Ipv4Addr) -> Result<Self> {
        let logs = tempfile::Builder::new()
            .prefix("ferry-git-daemon-")
            .tempdir()?;
        let base = repo.dir.path().to_path_buf();
        let (child, port) = start_on_free_port(
            &logs.path().join("daemon.log"),
            |port| daemon_command(&base, listen, port),
            |_| true,
        )?;
        Ok(GitDaemon {
            child,
            port,
            base,
            listen,
            logs,
        })
    }

    pub fn url(&self) -> String {
        format!("git://127.0.0.1:{}/repo.git", self.port)
    }

    /// `git://<host's default-route address>:<port>/repo.git`, for a daemon started with
    /// [`Self::start_for_pods`].
    pub fn pod_url(&self) -> Result<String> {
        Ok(format!("git://{}:{}/repo.git", pod_host()?, self.port))
    }

    /// Kills the server: a Git outage until [`Self::resume`].
    pub fn stop(&mut self) {
        stop(&mut self.child);
    }

    /// Serves again, on the same port (the same URL).
    pub fn resume(&mut self) -> Result<()> {
        stop(&mut self.child);
        self.child = start_on_port(
            &self.logs.path().join("daemon.log"),
            |port| daemon_command(&self.base, self.listen, port),
            self.port,
            |_| true,
        )?;
        Ok(())
    }
}

/// `git-daemon` serving the repositories under `base` on `port`. `git daemon` would run
/// git-daemon as a child that outlives a kill: it is started directly.
fn daemon_command(base: &Path, listen: Ipv4Addr, port: u16) -> Result<Command> {
    let daemon = PathBuf::from(git(base, &["--exec-path"])?).join("git-daemon");
    let mut cmd = Command::new(daemon);
    isolate_git(&mut cmd)
        .arg("--reuseaddr")
        .arg("--export-all")
        .arg("--informative-errors")
        .arg(format!("--listen={listen}"))
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(base);
    Ok(cmd)
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Smart HTTP: git's own `git http-backend` CGI behind a small axum server on loopback,
/// optionally requiring HTTP basic auth.
pub struct HttpServer {
    server: LoopbackServer,
    requests: Arc<AtomicUsize>,
    /// The self-signed certificate (PEM) it serves HTTPS with, if it does.
    certificate: Option<String>,
}

#[derive(Clone)]
struct Backend {
    project_root: PathBuf,
    auth: BasicAuth,
    requests: Arc<AtomicUsize>,
}

impl HttpServer {
    /// Serve `repo`; with `auth = Some((user, password))` every request needs those credentials.
    pub fn start(repo: &GitRepo, auth: Option<(&str, &str)>) -> Result<Self> {
        Self::serve(repo, auth, None)
    }

    /// Serve `repo` over HTTP on every interface, for pods on the real node
    /// ([`Self::pod_url`]).
    pub fn start_for_pods(repo: &GitRepo, auth: Option<(&str, &str)>) -> Result<Self> {
        Self::serve_for_pods(repo, auth, None)
    }

    /// [`Self::start_for_pods`] over HTTPS with a self-signed certificate for 127.0.0.1, which
    /// pods reach only without verifying it.
    pub fn start_tls_for_pods(repo: &GitRepo, auth: Option<(&str, &str)>) -> Result<Self> {
        Self::serve_for_pods(repo, auth, Some(SelfSigned::generate()?))
    }

    fn serve_for_pods(
        repo: &GitRepo,
        auth: Option<(&str, &str)>,
        tls: Option<SelfSigned>,
    ) -> Result<Self> {
        let (app, requests) = Self::app(repo, auth);
        let certificate = tls.as_ref().map(|tls| tls.cert.clone());
        Ok(HttpServer {
            server: LoopbackServer::start_on(Ipv4Addr::UNSPECIFIED.into(), app, tls)?,
            requests,
            certificate,
        })
    }

    /// Serve `repo` over HTTPS with a self-signed certificate for 127.0.0.1, which clients
    /// trust only when told to (see [`HttpServer::certificate`]).
    pub fn start_tls(repo: &GitRepo, auth: Option<(&str, &str)>) -> Result<Self> {
        Self::serve(repo, auth, Some(SelfSigned::generate()?))
    }

    /// Serve `repo` over HTTPS with a certificate `ca` signed, to clients presenting a
    /// certificate `ca` signed (see [`TestCa::client`]) only.
    pub fn start_mtls(repo: &GitRepo, auth: Option<(&str, &str)>, ca: &TestCa) -> Result<Self> {
        let server = ca.server()?;
        let tls = SelfSigned {
            cert: server.cert,
            key: server.key,
            client_ca: Some(ca.certificate().to_owned()),
        };
        Self::serve(repo, auth, Some(tls))
    }

    fn serve(repo: &GitRepo, auth: Option<(&str, &str)>, tls: Option<SelfSigned>) -> Result<Self> {
        let (app, requests) = Self::app(repo, auth);
        let certificate = tls.as_ref().map(|tls| tls.cert.clone());
        Ok(HttpServer {
            server: LoopbackServer::start(app, tls)?,
            requests,
            certificate,
        })
    }

    fn app(repo: &GitRepo, auth: Option<(&str, &str)>) -> (axum::Router, Arc<AtomicUsize>) {
        let requests = Arc::new(AtomicUsize::new(0));
        let backend = Backend {
            project_root: repo.dir.path().to_path_buf(),
            auth: BasicAuth::new(auth),
            requests: requests.clone(),
        };
        let app = axum::Router::new().fallback(serve_cgi).with_state(backend);
        (app, requests)
    }

    pub fn url(&self) -> String {
        let scheme = if self.certificate.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}/repo.git", self.server.addr())
    }

    /// `http(s)://<host's default-route address>:<port>/repo.git`, for a server started with
    /// [`Self::start_for_pods`] or [`Self::start_tls_for_pods`].
    pub fn pod_url(&self) -> Result<String> {
        let scheme = if self.certificate.is_some() {
            "https"
        } else {
            "http"
        };
        Ok(format!(
            "{scheme}://{}:{}/repo.git",
            pod_host()?,
            self.server.addr().port()
        ))
    }

    /// The certificate (PEM) an HTTPS server presents.
    pub fn certificate(&self) -> Option<&str> {
        self.certificate.as_deref()
    }

    /// Requests served so far (rejected ones too): tells whether a client used the network.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn serve_cgi(State(backend): State<Backend>, request: Request) -> Response {
    backend.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(refusal) = backend.auth.refusal(request.headers()) {
        return refusal;
    }
    match run_http_backend(&backend, request).await {
        Ok(response) => response,
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")).into_response(),
    }
}

/// Run one CGI request through `git http-backend` (RFC 3875 environment, body on stdin).
async fn run_http_backend(backend: &Backend, request: Request) -> Result<Response> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await?;
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", &backend.project_root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", parts.uri.path())
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_LENGTH", body.len().to_string());
    if backend.auth.is_required() {
        cmd.env("REMOTE_USER", "ferry-test");
    }
    for (name, value) in &parts.headers {
        let Ok(value) = value.to_str() else { continue };
        if name == header::CONTENT_TYPE {
            cmd.env("CONTENT_TYPE", value);
        } else if ![
            header::AUTHORIZATION,
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
        ]
        .contains(name)
        {
            let var = format!("HTTP_{}", name.as_str().to_uppercase().replace('-', "_"));
            cmd.env(var, value);
        }
    }
    if let Some(protocol) = parts
        .headers
        .get("git-protocol")
        .and_then(|v| v.to_str().ok())
    {
        cmd.env("GIT_PROTOCOL", protocol);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning git http-backend")?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    // Feed stdin concurrently with reading stdout, so large requests/responses cannot deadlock.
    let feeder = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.write_all(&body).await;
    });
    let output = child.wait_with_output().await?;
    let _ = feeder.await;
    if !output.status.success() && output.stdout.is_empty() {
        bail!(
            "git http-backend failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse_cgi_response(&output.stdout)
}

fn parse_cgi_response(raw: &[u8]) -> Result<Response> {
    let (head, body) = split_cgi_head(raw).context("CGI response without header terminator")?;
    let mut status = StatusCode::OK;
    let mut headers = HeaderMap::new();
    for line in std::str::from_utf8(head)?.lines() {
        let (name, value) = line.split_once(':').context("malformed CGI header")?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or_default();
            status = StatusCode::from_bytes(code.as_bytes())?;
        } else {
            headers.append(
                header::HeaderName::from_bytes(name.trim().as_bytes())?,
                HeaderValue::from_str(value)?,
            );
        }
    }
    let mut response = Response::new(Body::from(Bytes::copy_from_slice(body)));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// Split a CGI response at the blank line ending its header (LF or CRLF line ends).
fn split_cgi_head(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    (0..raw.len()).find_map(|i| {
        let rest = &raw[i..];
        if rest.starts_with(b"\n\n") {
            Some((&raw[..i], &raw[i + 2..]))
        } else if rest.starts_with(b"\r\n\r\n") {
            Some((&raw[..i], &raw[i + 4..]))
        } else {
            None
        }
    })
}

/// An ssh key pair generated by `ssh-keygen` (ed25519, no passphrase).
pub struct SshKey {
    /// OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`).
    pub private: String,
    /// Public key line, e.g. `ssh-ed25519 AAAA... comment`.
    pub public: String,
}

impl SshKey {
    pub fn generate() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("ferry-ssh-key-")
            .tempdir()?;
        generate_key(dir.path(), "key")
    }
}

fn generate_key(dir: &Path, name: &str) -> Result<SshKey> {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "ferry-test", "-f"])
        .arg(&path)
        .output()
        .context("running ssh-keygen (install openssh-client)")?;
    if !out.status.success() {
        bail!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(SshKey {
        private: std::fs::read_to_string(&path)?,
        public: std::fs::read_to_string(path.with_extension("pub"))?
            .trim()
            .to_owned(),
    })
}

const SSHD: &str = "/usr/sbin/sshd";

/// A private OpenSSH `sshd` on a loopback port, running as the current user with its own config,
/// a generated host key and one authorized client key (public key auth only).
pub struct SshServer {
    child: Child,
    port: u16,
    user: String,
    repo_path: PathBuf,
    host_key: SshKey,
    client_key: SshKey,
    _dir: TempDir,
}

impl SshServer {
    pub fn start(repo: &GitRepo) -> Result<Self> {
        Self::start_on(repo, Ipv4Addr::LOCALHOST)
    }

    /// Serves on every interface, for pods on the real node ([`Self::pod_url`]).
    pub fn start_for_pods(repo: &GitRepo) -> Result<Self> {
        Self::start_on(repo, Ipv4Addr::UNSPECIFIED)
    }

    fn start_on(repo: &GitRepo, listen: Ipv4Addr) -> Result<Self> {
        if !Path::new(SSHD).exists() {
            bail!(
                "{SSHD} is missing: install the openssh-server package \
                 (apt-get install -y openssh-server)"
            );
        }
        let dir = tempfile::Builder::new().prefix("ferry-sshd-").tempdir()?;
        let host_key = generate_key(dir.path(), "host_key")?;
        let client_key = generate_key(dir.path(), "client_key")?;
        std::fs::write(
            dir.path().join("authorized_keys"),
            format!("{}\n", client_key.public),
        )?;
        let user = current_user()?;
        if user == "root" {
            // sshd started by root insists on its privilege separation directory.
            std::fs::create_dir_all("/run/sshd").context("creating /run/sshd for sshd")?;
        }
        let config = dir.path().join("sshd_config");
        let dir_path = dir.path().to_path_buf();
        let command = |port: u16| {
            std::fs::write(&config, sshd_config(&dir_path, listen, port, &user))?;
            let mut cmd = Command::new(SSHD);
            cmd.arg("-D").arg("-e").arg("-f").arg(&config);
            Ok(cmd)
        };
        let ready = |stream: &mut TcpStream| {
            let mut banner = [0u8; 8];
            stream.read_exact(&mut banner).is_ok() && banner.starts_with(b"SSH-")
        };
        let (child, port) = start_on_free_port(&dir.path().join("sshd.log"), command, ready)?;
        Ok(SshServer {
            child,
            port,
            user,
            repo_path: repo.bare_path(),
            host_key,
            client_key,
            _dir: dir,
        })
    }

    /// `ssh://<current user>@127.0.0.1:<port>/<absolute path of the bare repository>`.
    pub fn url(&self) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            self.repo_path.display()
        )
    }

    /// `ssh://<current user>@<host's default-route address>:<port>/<path>`, for a server
    /// started with [`Self::start_for_pods`].
    pub fn pod_url(&self) -> Result<String> {
        Ok(format!(
            "ssh://{}@{}:{}{}",
            self.user,
            pod_host()?,
            self.port,
            self.repo_path.display()
        ))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The authorized client key (OpenSSH private key format).
    pub fn client_private_key(&self) -> &str {
        &self.client_key.private
    }

    /// The server's public host key line (`ssh-ed25519 AAAA... comment`).
    pub fn host_public_key(&self) -> &str {
        &self.host_key.public
    }

    /// known_hosts line for this server: `[127.0.0.1]:<port> ssh-ed25519 AAAA...`.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_key.public)
    }
}

/// The host's address pods on the real node reach it by.
fn pod_host() -> Result<IpAddr> {
    ferry_sandbox::default_route_address()
        .context("this host has no default-route address for pods to reach a Git server by")
}

impl Drop for SshServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn sshd_config(dir: &Path, listen: Ipv4Addr, port: u16, user: &str) -> String {
    let dir = dir.display();
    format!(
        "Port {port}
ListenAddress {listen}
HostKey {dir}/host_key
PidFile {dir}/sshd.pid
AuthorizedKeysFile {dir}/authorized_keys
AllowUsers {user}
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PermitUserEnvironment no
AllowTcpForwarding no
X11Forwarding no
MaxStartups 200
MaxSessions 50
LogLevel VERBOSE
"
    )
}

fn current_user() -> Result<String> {
    let out = Command::new("id")
        .arg("-un")
        .output()
        .context("running id -un")?;
    if !out.status.success() {
        bail!("id -un failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls_remote(url: &str, env: &[(&str, &str)]) -> Result<String> {
        let out = git_command()
            .args(["ls-remote", url])
            .envs(env.iter().copied())
            .output()?;
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    fn fixture() -> Result<(GitRepo, String)> {
        let repo = GitRepo::new()?;
        repo.write("a.txt", "a")?;
        let sha = repo.commit("first")?;
        repo.annotated_tag("v1.0.0", "release")?;
        repo.branch("dev")?;
        Ok((repo, sha))
    }

    #[test]
    fn file_url_lists_branches_and_tags() -> Result<()> {
        let (repo, sha) = fixture()?;
        let refs = ls_remote(&repo.file_url(), &[])?;
        assert!(refs.contains(&format!("{sha}\trefs/heads/main")), "{refs}");
        assert!(refs.contains(&format!("{sha}\trefs/heads/dev")), "{refs}");
        assert!(
            refs.contains(&format!("{sha}\trefs/tags/v1.0.0^{{}}")),
            "{refs}"
        );
        Ok(())
    }

    #[test]
    fn daemon_serves_the_repo_and_stops_on_drop() -> Result<()> {
        let (repo, sha) = fixture()?;
        let daemon = GitDaemon::start(&repo)?;
        let url = daemon.url();
        assert!(ls_remote(&url, &[])?.contains(&sha));
        drop(daemon);
        assert!(ls_remote(&url, &[]).is_err());
        Ok(())
    }

    #[test]
    fn http_backend_serves_with_and_without_auth() -> Result<()> {
        let (repo, sha) = fixture()?;
        let open = HttpServer::start(&repo, None)?;
        assert!(ls_remote(&open.url(), &[])?.contains(&sha));
        assert!(open.requests() > 0);

        let locked = HttpServer::start(&repo, Some(("alice", "s3cret")))?;
        let url = locked.url();
        let with_creds = url.replace("http://", "http://alice:s3cret@");
        assert!(ls_remote(&with_creds, &[])?.contains(&sha));
        let wrong = url.replace("http://", "http://alice:wrong@");
        let err = ls_remote(&wrong, &[]).unwrap_err().to_string();
        assert!(err.contains("Authentication failed"), "{err}");

        // A full clone exercises the POST (upload-pack) path with a request body.
        let target = tempfile::tempdir()?;
        git(target.path(), &["clone", "-q", &with_creds, "clone"])?;
        assert_eq!(
            std::fs::read_to_string(target.path().join("clone/a.txt"))?,
            "a"
        );
        Ok(())
    }

    #[test]
    fn sshd_accepts_the_client_key_only() -> Result<()> {
        let (repo, sha) = fixture()?;
        let ssh = SshServer::start(&repo)?;
        let dir = tempfile::tempdir()?;
        let key = dir.path().join("id");
        let known_hosts = dir.path().join("known_hosts");
        std::fs::write(&known_hosts, format!("{}\n", ssh.known_hosts_line()))?;
        let ssh_command = |key: &Path| {
            format!(
                "ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes \
                 -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes",
                key.display(),
                known_hosts.display()
            )
        };
        write_private_key(&key, ssh.client_private_key())?;
        let good = ssh_command(&key);
        assert!(ls_remote(&ssh.url(), &[("GIT_SSH_COMMAND", &good)])?.contains(&sha));

        let other = dir.path().join("other");
        write_private_key(&other, &SshKey::generate()?.private)?;
        let bad = ssh_command(&other);
        let err = ls_remote(&ssh.url(), &[("GIT_SSH_COMMAND", &bad)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("Permission denied"), "{err}");
        Ok(())
    }

    fn write_private_key(path: &Path, key: &str) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(key.as_bytes())?;
        Ok(())
    }

    #[test]
    fn cgi_head_parsing() -> Result<()> {
        let response =
            parse_cgi_response(b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope")?;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain");
        let response = parse_cgi_response(b"Content-Type: a/b\n\nbody")?;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(parse_cgi_response(b"no terminator").is_err());
        Ok(())
    }
}
