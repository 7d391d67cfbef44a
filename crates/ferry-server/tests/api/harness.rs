//! The `ferry-server` process on a free loopback port, a minimal HTTP client for it, and the
//! cluster objects the stories start from.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ferry_testkit::kube::TestContext;
use ferry_types::Application;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::PostParams;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The CRDs, installed unless present (other tests share the cluster) and established.
pub async fn install_crds(client: kube::Client) -> Result<()> {
    ferry_types::install_crds(&client, "ferry-tests").await?;
    Ok(())
}

pub async fn create_app(ctx: &TestContext, name: &str, project: &str) -> Result<()> {
    create_git_app(ctx, name, project, "https://git.example.com/apps", "main").await
}

/// An Application of the `name` directory of `repo_url` at `target_revision`.
pub async fn create_git_app(
    ctx: &TestContext,
    name: &str,
    project: &str,
    repo_url: &str,
    target_revision: &str,
) -> Result<()> {
    let app: Application = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name},
        "spec": {
            "project": project,
            "source": {"repoURL": repo_url, "path": name, "targetRevision": target_revision},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": name},
        },
    }))?;
    ctx.api::<Application>()
        .create(&PostParams::default(), &app)
        .await?;
    Ok(())
}

pub async fn put_config_map(ctx: &TestContext, name: &str, data: &[(&str, &str)]) -> Result<()> {
    let config_map: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": name},
        "data": data.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect::<serde_json::Map<_, _>>(),
    }))?;
    ctx.api::<ConfigMap>()
        .create(&PostParams::default(), &config_map)
        .await?;
    Ok(())
}

/// The generated password in `argocd-initial-admin-secret`.
pub async fn admin_password(ctx: &TestContext) -> Result<String> {
    let secret = ctx
        .api::<Secret>()
        .get("argocd-initial-admin-secret")
        .await?;
    let data = secret.data.context("no data")?;
    Ok(String::from_utf8(data["password"].0.clone())?)
}

/// Fails naming the first secret that shows up in `log`.
pub fn assert_no_secrets(log: &str, secrets: &[&str]) {
    for (i, secret) in secrets.iter().enumerate() {
        assert!(
            !log.contains(secret),
            "secret #{i} appears in the log:\n{log}"
        );
    }
}

pub struct Response {
    pub status: u16,
    pub body: Value,
}

/// A running `ferry-server`; killed if the test ends without [`Server::stop`].
pub struct Server {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server with the test's namespace as control namespace and waits until it
    /// answers.
    pub async fn start(ctx: &TestContext) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferry-server"))
            .arg("--namespace")
            .arg(ctx.namespace())
            .arg("--kubeconfig")
            .arg(ctx.kubeconfig())
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("FERRY_LOG", "info,ferry_server=debug,kube=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().context("no stderr")?;
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let server = Self { child, port, log };
        for _ in 0..300 {
            if server.get("/api/version", None).await.is_ok() {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!(
            "ferry-server did not answer within 60 s:\n{}",
            server.log.lock().unwrap()
        )
    }

    /// Stops the server with SIGTERM, checks it exits cleanly and returns its log.
    pub async fn stop(mut self) -> Result<String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        assert!(status.success());
        for _ in 0..100 {
            if let Some(exit) = self.child.try_wait()? {
                // Let the reader thread take the last lines.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let log = self.log.lock().unwrap().clone();
                assert!(exit.success(), "ferry-server exited with {exit}:\n{log}");
                return Ok(log);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("ferry-server did not stop within 10 s of SIGTERM")
    }

    pub async fn login(&self, username: &str, password: &str) -> Result<Response> {
        self.post(
            "/api/v1/session",
            None,
            json!({"username": username, "password": password}),
        )
        .await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Result<Response> {
        self.request("GET", path, &bearer(token), b"").await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Result<Response> {
        self.request("POST", path, &bearer(token), body.to_string().as_bytes())
            .await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Result<Response> {
        self.request("PUT", path, &bearer(token), body.to_string().as_bytes())
            .await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Result<Response> {
        self.request("DELETE", path, &bearer(token), b"").await
    }

    /// A POST of exactly `body` with `headers`, as webhook deliveries are signed.
    pub async fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response> {
        let headers = headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect::<Vec<_>>();
        self.request("POST", path, &headers, body).await
    }

    /// Waits (up to 10 s) until `path` answers `status` to `token`: settings changes reach the
    /// server through a watch, a moment after they are written.
    pub async fn wait_for_status(&self, path: &str, token: &str, status: u16) -> Result<()> {
        let mut last = 0;
        for _ in 0..50 {
            last = self.get(path, Some(token)).await?.status;
            if last == status {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("{path} still answers {last}, not {status}")
    }

    /// One HTTP/1.1 request on its own connection, read until the server closes it.
    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Response> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        let text = String::from_utf8(raw)?;
        let (head, body) = text.split_once("\r\n\r\n").context("no end of headers")?;
        let status = head
            .split(' ')
            .nth(1)
            .context("no status")?
            .parse()
            .context("status")?;
        let body = if body.is_empty() {
            Value::Null
        } else if head
            .to_ascii_lowercase()
            .contains("content-type: text/plain")
        {
            // axum's own rejections (an oversize body) are plain text.
            Value::String(body.to_string())
        } else {
            serde_json::from_str(body).with_context(|| format!("{method} {path}: {body}"))?
        };
        Ok(Response { status, body })
    }
}

fn bearer(token: Option<&str>) -> Vec<(String, String)> {
    token
        .map(|token| ("Authorization".to_string(), format!("Bearer {token}")))
        .into_iter()
        .collect()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
