//! [Gitea](https://gitea.com) as a real SCM provider for the ApplicationSet generators' tests:
//! built by `scripts/toolchain`, run on a free loopback port with SQLite in a temporary
//! directory, an admin user made by `gitea admin user create` and an API token for it. Orgs,
//! repositories with files and branches, labels and pull requests are made through its REST API.
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! use ferry_testkit::gitea::Gitea;
//! let gitea = Gitea::start()?;
//! gitea.create_org("acme").await?;
//! gitea.create_repo("acme", "app").await?;
//! gitea.put_file("acme", "app", "main", "deploy/kustomization.yaml", "resources: []\n").await?;
//! gitea.create_branch("acme", "app", "feature", "main").await?;
//! let pr = gitea.open_pull("acme", "app", "feature", "main", "Add a feature", &[]).await?;
//! gitea.close_pull("acme", "app", pr).await?;
//! # Ok(()) }
//! ```
//!
//! Gitea stops when its handle is dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};
use base64::Engine;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::daemon::{start_on_free_port, stop};

/// The admin user the helper makes.
pub const ADMIN: &str = "ferry-admin";
const ADMIN_PASSWORD: &str = "ferry-admin-pw-1";

/// A running Gitea.
pub struct Gitea {
    child: Child,
    port: u16,
    token: String,
    dir: TempDir,
    http: reqwest::Client,
}

impl Gitea {
    /// Starts Gitea and waits until its API answers; makes the admin user and its token.
    pub fn start() -> Result<Self> {
        let binary = binary()?;
        let dir = tempfile::Builder::new().prefix("ferry-gitea-").tempdir()?;
        let log = dir.path().join("gitea.log");
        std::fs::write(&log, "")?;
        let root = dir.path().to_path_buf();
        let config = root.join("app.ini");
        // The database and the admin user once; the port is only known per attempt.
        std::fs::write(&config, app_ini(&root, 0))?;
        run(&binary, &root, &["migrate"])?;
        run(
            &binary,
            &root,
            &[
                "admin",
                "user",
                "create",
                "--username",
                ADMIN,
                "--password",
                ADMIN_PASSWORD,
                "--email",
                "admin@ferry.test",
                "--admin",
                "--must-change-password=false",
            ],
        )?;
        let (child, port) = start_on_free_port(
            &log,
            |port| {
                std::fs::write(&config, app_ini(&root, port))?;
                let mut command = Command::new(&binary);
                command.args(gitea_args(&root)).arg("web");
                Ok(command)
            },
            answers_version,
        )?;
        let token = run(
            &binary,
            dir.path(),
            &[
                "admin",
                "user",
                "generate-access-token",
                "--username",
                ADMIN,
                "--token-name",
                "ferry-tests",
                "--scopes",
                "all",
                "--raw",
            ],
        )?
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
        if token.is_empty() {
            bail!("gitea made no access token");
        }
        Ok(Self {
            child,
            port,
            token,
            dir,
            http: reqwest::Client::new(),
        })
    }

    /// `http://127.0.0.1:<port>`, the `api` of the generators.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The admin's API token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// What Gitea logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gitea.log")).unwrap_or_default()
    }

    /// The clone URL of a repository over HTTP.
    pub fn clone_url(&self, owner: &str, repo: &str) -> String {
        format!("{}/{owner}/{repo}.git", self.url())
    }

    pub async fn create_org(&self, name: &str) -> Result<()> {
        self.call("POST", "orgs", json!({"username": name})).await?;
        Ok(())
    }

    /// A repository of `owner` (an org) with a first commit on `main`.
    pub async fn create_repo(&self, owner: &str, name: &str) -> Result<()> {
        let body = json!({"name": name, "auto_init": true, "default_branch": "main"});
        self.call("POST", &format!("orgs/{owner}/repos"), body)
            .await?;
        Ok(())
    }

    /// Creates or replaces a file on `branch` in one commit; the commit's SHA.
    pub async fn put_file(
        &self,
        owner: &str,
        repo: &str,
        branch: &str,
        path: &str,
        content: &str,
    ) -> Result<String> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(content);
        let url = format!("repos/{owner}/{repo}/contents/{path}");
        let existing = self
            .call("GET", &format!("{url}?ref={branch}"), Value::Null)
            .await
            .ok();
        let mut body =
            json!({"content": encoded, "branch": branch, "message": format!("write {path}")});
        let method = match existing.as_ref().and_then(|e| e["sha"].as_str()) {
            Some(sha) => {
                body["sha"] = json!(sha);
                "PUT"
            }
            None => "POST",
        };
        let answer = self.call(method, &url, body).await?;
        Ok(answer["commit"]["sha"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    pub async fn create_branch(
        &self,
        owner: &str,
        repo: &str,
        name: &str,
        from: &str,
    ) -> Result<()> {
        let body = json!({"new_branch_name": name, "old_branch_name": from});
        self.call("POST", &format!("repos/{owner}/{repo}/branches"), body)
            .await?;
        Ok(())
    }

    /// A repository label; its id.
    pub async fn create_label(&self, owner: &str, repo: &str, name: &str) -> Result<i64> {
        let body = json!({"name": name, "color": "#00aabb"});
        let answer = self
            .call("POST", &format!("repos/{owner}/{repo}/labels"), body)
            .await?;
        answer["id"]
            .as_i64()
            .context("gitea answered a label without id")
    }

    /// Opens a pull request of `head` into `base` with the labels of these ids; its number.
    pub async fn open_pull(
        &self,
        owner: &str,
        repo: &str,
        head: &str,
        base: &str,
        title: &str,
        labels: &[i64],
    ) -> Result<i64> {
        let body = json!({"head": head, "base": base, "title": title, "labels": labels});
        let answer = self
            .call("POST", &format!("repos/{owner}/{repo}/pulls"), body)
            .await?;
        answer["number"]
            .as_i64()
            .context("gitea answered a pull request without number")
    }

    pub async fn close_pull(&self, owner: &str, repo: &str, number: i64) -> Result<()> {
        let body = json!({"state": "closed"});
        self.call(
            "PATCH",
            &format!("repos/{owner}/{repo}/pulls/{number}"),
            body,
        )
        .await?;
        Ok(())
    }

    /// A call of `/api/v1/<path>` as the admin; the JSON answer.
    pub async fn call(&self, method: &str, path: &str, body: Value) -> Result<Value> {
        let url = format!("{}/api/v1/{path}", self.url());
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header("authorization", format!("token {}", self.token));
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{method} {url}: {status}: {text}");
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).with_context(|| format!("{method} {url}: {text}"))?
        })
    }
}

impl Drop for Gitea {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn gitea_args(root: &Path) -> Vec<String> {
    vec![
        "--config".into(),
        root.join("app.ini").display().to_string(),
        "--work-path".into(),
        root.display().to_string(),
    ]
}

/// Runs a `gitea` admin command against the instance's configuration; its output.
fn run(binary: &Path, root: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new(binary)
        .args(gitea_args(root))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running gitea {}", args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "gitea {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// SQLite and repositories under `root`, HTTP on loopback only, no SSH, mailer, cron, indexer
/// or sign-up. Running as root (as CI does) must be allowed explicitly. Webhooks may target
/// loopback, where the tests' receivers listen.
fn app_ini(root: &Path, port: u16) -> String {
    let root = root.display();
    let share = share_dir();
    let share = share.display();
    format!(
        "I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true
APP_NAME = ferry tests
RUN_MODE = prod
WORK_PATH = {root}

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = {port}
ROOT_URL = http://127.0.0.1:{port}/
STATIC_ROOT_PATH = {share}
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false

[database]
DB_TYPE = sqlite3
PATH = {root}/data/gitea.db

[repository]
ROOT = {root}/repositories

[security]
INSTALL_LOCK = true
ALLOWED_HOST_LIST = loopback

[service]
DISABLE_REGISTRATION = true

[oauth2]
ENABLED = false

[cron]
ENABLED = false

[indexer]
REPO_INDEXER_ENABLED = false

[log]
MODE = console
LEVEL = warn
"
    )
}

fn answers_version(stream: &mut TcpStream) -> bool {
    let request = "GET /api/v1/version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let mut response = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut response).is_ok()
        && response.starts_with("HTTP/1.1 200")
}

/// Gitea's locales and templates, which `scripts/toolchain` copies beside its binaries.
fn share_dir() -> PathBuf {
    ferry_sandbox::toolchain::bin_dir()
        .parent()
        .expect("the toolchain's bin directory has a parent")
        .join("share")
        .join("gitea")
}

/// The toolchain's `gitea`, built by `scripts/toolchain` first if missing.
fn binary() -> Result<PathBuf> {
    let binary = ferry_sandbox::toolchain::bin_dir().join("gitea");
    if binary.is_file() && share_dir().is_dir() {
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
