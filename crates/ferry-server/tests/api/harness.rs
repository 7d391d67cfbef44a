//! The `ferry-server` process on a free loopback port, a minimal HTTP client for it, and the
//! cluster objects the stories start from.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ferry_testkit::kube::TestContext;
use ferry_testkit::server::ServerProcess;
use ferry_types::Application;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::PostParams;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The CRDs, installed unless present (other tests share the cluster) and established.
pub async fn install_crds(client: kube::Client) -> Result<()> {
    ferry_runtime::install_crds(&client, "ferry-tests").await?;
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

/// Creates the AppProject `name` with `spec`.
pub async fn create_project(ctx: &TestContext, name: &str, spec: Value) -> Result<()> {
    let project: ferry_types::AppProject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": name},
        "spec": spec,
    }))?;
    ctx.api::<ferry_types::AppProject>()
        .create(&PostParams::default(), &project)
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
    ferry_testkit::server::admin_password(&ctx.client(), ctx.namespace()).await
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
    process: ServerProcess,
    port: u16,
    metrics_port: u16,
}

impl Server {
    /// Starts the server with the test's namespace as control namespace and waits until it
    /// answers.
    pub async fn start(ctx: &TestContext) -> Result<Self> {
        Self::start_with(ctx, &[]).await
    }

    /// [`Self::start`] with more command-line arguments.
    pub async fn start_with(ctx: &TestContext, args: &[String]) -> Result<Self> {
        let binary = Path::new(env!("CARGO_BIN_EXE_ferry-server"));
        let process = if args.is_empty() {
            ServerProcess::start(binary, ctx.namespace(), ctx.kubeconfig()).await?
        } else {
            ServerProcess::start_with(binary, ctx.namespace(), ctx.kubeconfig(), args).await?
        };
        let server = Self {
            port: process.port(),
            metrics_port: process.metrics_port(),
            process,
        };
        for _ in 0..300 {
            if server.get("/api/version", None).await.is_ok() {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!(
            "ferry-server did not answer within 60 s:\n{}",
            server.process.log()
        )
    }

    /// The `/metrics` page of the metrics listener.
    pub async fn metrics(&self) -> Result<String> {
        ferry_testkit::server::scrape_metrics(self.metrics_port).await
    }

    /// `http://127.0.0.1:<port>`, where the server is reached.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server with SIGTERM, checks it exits cleanly and returns its log.
    pub async fn stop(self) -> Result<String> {
        self.process.stop().await
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

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Result<Response> {
        self.request("PATCH", path, &bearer(token), body.to_string().as_bytes())
            .await
    }

    /// Opens a Server-Sent Events stream; HTTP/1.0, so the body comes unchunked until the
    /// server closes it.
    pub async fn open_stream(&self, path: &str, token: &str) -> Result<EventStream> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await?;
        let head = format!(
            "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\
             Authorization: Bearer {token}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await?;
        let mut events = EventStream {
            reader: tokio::io::BufReader::new(stream),
        };
        let status = events.line().await?;
        anyhow::ensure!(status.contains(" 200 "), "{path}: {status}");
        while !events.line().await?.is_empty() {}
        Ok(events)
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
        let mut headers = headers.to_vec();
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            headers.push(("Content-Type".into(), "application/json".into()));
        }
        self.request_as_is(method, path, &headers, body).await
    }

    /// A request with exactly these headers (no content type unless given), as a browser's
    /// form post or a bare `curl -X POST` sends it.
    pub async fn request_as_is(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Response> {
        let (status, _, body) = self.raw(method, path, headers, body).await?;
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body).with_context(|| format!("{method} {path}: {body}"))?
        };
        Ok(Response { status, body })
    }

    /// A request with exactly these headers; the answer's status, head and body as text.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<(u16, String, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Length: {}\r\n",
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
        Ok((status, head.to_string(), body.to_string()))
    }
}

/// The events of an open stream, read as they come.
pub struct EventStream {
    reader: tokio::io::BufReader<TcpStream>,
}

impl EventStream {
    async fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).await? == 0 {
            bail!("the stream ended");
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }

    /// The next event's data, as JSON, within 20 s; keep-alive comments are skipped.
    pub async fn next(&mut self) -> Result<Value> {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let line = self.line().await?;
                if let Some(data) = line.strip_prefix("data: ") {
                    return Ok(serde_json::from_str(data)?);
                }
            }
        })
        .await
        .context("no event within 20 s")?
    }
}

fn bearer(token: Option<&str>) -> Vec<(String, String)> {
    token
        .map(|token| ("Authorization".to_string(), format!("Bearer {token}")))
        .into_iter()
        .collect()
}

/// Local accounts `(name, password)` that may log in, and `argocd-rbac-cm`'s `policy.csv`.
pub async fn local_accounts(
    ctx: &TestContext,
    accounts: &[(&str, &str)],
    policy_csv: &str,
) -> Result<()> {
    let logins: Vec<(String, &str)> = accounts
        .iter()
        .map(|(name, _)| (format!("accounts.{name}"), "login"))
        .collect();
    let logins: Vec<(&str, &str)> = logins.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    put_config_map(ctx, "argocd-cm", &logins).await?;
    put_config_map(ctx, "argocd-rbac-cm", &[("policy.csv", policy_csv)]).await?;
    let mut passwords = serde_json::Map::new();
    for (name, password) in accounts {
        let hash = ferry_auth::auth::PasswordHash::new(password)?;
        passwords.insert(format!("accounts.{name}.password"), hash.as_str().into());
    }
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "argocd-secret"},
        "stringData": passwords,
    }))?;
    ctx.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    Ok(())
}

/// What the Events about the object `name` of the test's namespace say.
pub async fn event_messages(ctx: &TestContext, name: &str) -> Result<Vec<String>> {
    let events = ctx
        .api::<k8s_openapi::api::core::v1::Event>()
        .list(&kube::api::ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await?;
    Ok(events.items.into_iter().filter_map(|e| e.message).collect())
}

/// `text` percent-encoded as one path segment (a repository URL, a cluster's server).
pub fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

impl Server {
    /// A session token for a local account.
    pub async fn token(&self, username: &str, password: &str) -> Result<String> {
        let login = self.login(username, password).await?;
        anyhow::ensure!(login.status == 200, "login {username}: {:?}", login.body);
        Ok(login.body["token"]
            .as_str()
            .context("no token")?
            .to_string())
    }
}
