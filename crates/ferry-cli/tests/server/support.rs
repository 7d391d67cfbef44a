//! A `ferry-server` for the test's namespace and the `ferry` CLI run against it, each CLI user
//! with a config file of their own and no kubeconfig, so nothing reaches Kubernetes but the
//! server.

use std::path::PathBuf;
use std::process::Output;

use anyhow::Result;
use ferry_testkit::cli::CliHome;
use ferry_testkit::git::fixture_source_repos;
use ferry_testkit::kube::TestContext;
pub use ferry_testkit::process::texts;
use ferry_testkit::process::{failed, succeeded};
use ferry_testkit::server::{ServerProcess, workspace_binary};
use ferry_types::AppProject;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::PostParams;
use serde_json::{Value, json};

/// The server with Argo CD's CRDs installed, `argocd-cm` holding `settings`, and the `default`
/// project as the server creates it but also listing the fixture repositories (projects permit
/// `file://` repositories only through `file://` entries, never through `*`).
pub async fn start_server(ctx: &TestContext, settings: &[(&str, &str)]) -> Result<ServerProcess> {
    ferry_runtime::install_crds(&ctx.client(), "ferry-tests").await?;
    let mut project = AppProject::default_project(ctx.namespace());
    project.spec.source_repos.push(fixture_source_repos());
    ctx.api::<AppProject>()
        .create(&PostParams::default(), &project)
        .await?;
    let data: serde_json::Map<String, Value> = settings
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    let config_map: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "argocd-cm"}, "data": data}))?;
    ctx.api::<ConfigMap>()
        .create(&PostParams::default(), &config_map)
        .await?;
    let binary = workspace_binary("ferry-server")?;
    ServerProcess::start(&binary, ctx.namespace(), ctx.kubeconfig()).await
}

/// The generated password in `argocd-initial-admin-secret`.
pub async fn admin_password(ctx: &TestContext) -> Result<String> {
    ferry_testkit::server::admin_password(&ctx.client(), ctx.namespace()).await
}

/// One CLI user: a home and config file of their own.
pub struct Ferry {
    home: CliHome,
}

impl Ferry {
    pub fn new() -> Self {
        Self {
            home: CliHome::new().unwrap(),
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.home.config()
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command =
            tokio::process::Command::from(self.home.command(env!("CARGO_BIN_EXE_ferry")));
        command
            .args(args)
            // Core mode would need this kubeconfig: a server-mode command never reads it.
            .env("KUBECONFIG", self.home.path().join("no-kubeconfig"))
            .kill_on_drop(true);
        command
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().await.unwrap()
    }

    /// Runs a command that must succeed; its stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        succeeded(&format!("ferry {args:?}"), &self.run(args).await)
    }

    /// Runs a command that must fail; its stderr.
    pub async fn fails(&self, args: &[&str]) -> String {
        failed(&format!("ferry {args:?}"), &self.run(args).await)
    }

    /// `ferry login` to the server as `username`, the password passed in the environment.
    /// A password set a moment ago reaches the server through its settings watch, so a refused
    /// login is tried again, fewer times than the server's lockout allows.
    pub async fn login(&self, server: &ServerProcess, username: &str, password: &str) -> String {
        let mut attempt = 0;
        loop {
            let out = self
                .command(&[
                    "login",
                    &server.address(),
                    "--plaintext",
                    "--username",
                    username,
                ])
                .env("FERRY_PASSWORD", password)
                .output()
                .await
                .unwrap();
            let (stdout, stderr) = texts(&out);
            if out.status.success() {
                return stdout;
            }
            attempt += 1;
            assert!(attempt < 4, "login failed:\n{stderr}\n{stdout}");
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }

    /// The config file as YAML.
    pub fn config(&self) -> Value {
        let text = std::fs::read_to_string(self.config_path()).unwrap();
        serde_yaml::from_str(&text).unwrap()
    }

    /// The token of the current context's user.
    pub fn token(&self) -> Option<String> {
        let config = self.config();
        let current = config["current-context"].as_str()?;
        let context = config["contexts"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == current)?;
        config["users"]
            .as_array()?
            .iter()
            .find(|u| u["name"] == context["user"])?["auth-token"]
            .as_str()
            .map(str::to_string)
    }
}

/// Fails naming the first secret that shows up in `text`.
pub fn assert_no_secrets(text: &str, secrets: &[&str]) {
    for (i, secret) in secrets.iter().enumerate() {
        assert!(!text.contains(secret), "secret #{i} shows:\n{text}");
    }
}
