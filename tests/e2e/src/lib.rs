//! End-to-end scenarios, one story per file in `tests/`: ferry's real binaries (`ferry-controller`
//! as a process, the `ferry` CLI) against the sandbox control plane and real Git repositories.
//!
//! The binaries are the ones `cargo build --workspace --bins` put next to the test executables
//! (`scripts/test` builds them first). Each story gets its own namespace, which is both the
//! control namespace of its own controller and the destination of its apps, and app names that
//! are unique across stories (every controller watches the whole sandbox).

pub mod appset;
pub mod argocd;
pub mod browser;
pub mod ci;
pub mod helm;
pub mod pods;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ferry_testkit::cli::CliHome;
use ferry_testkit::git::{GitRepo, fixture_source_repos};
use ferry_testkit::kube::TestContext;
use ferry_testkit::proxy::Proxy;
use ferry_testkit::server::{ServerProcess, workspace_binary as binary};
use ferry_types::{AppProject, Application};
use kube::Api;
use kube::api::{DynamicObject, PostParams};
use kube::discovery::ApiResource;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;

/// Long enough for a busy 2-core machine running several stories at once.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// The sample app every story starts from: a ConfigMap, a Deployment and a Service.
pub const GUESTBOOK: &[(&str, &str)] = &[
    (
        "guestbook/configmap.yaml",
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: guestbook-config
data:
  greeting: hello
",
    ),
    (
        "guestbook/deployment.yaml",
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: guestbook
spec:
  replicas: 2
  selector:
    matchLabels: {app: guestbook}
  template:
    metadata:
      labels: {app: guestbook}
    spec:
      containers:
      - name: web
        image: registry.example/guestbook:1.0
        ports: [{containerPort: 80}]
",
    ),
    (
        "guestbook/service.yaml",
        "apiVersion: v1
kind: Service
metadata:
  name: guestbook
spec:
  selector: {app: guestbook}
  ports: [{port: 80, targetPort: 80}]
",
    ),
];

/// The story of an app of chart `web` at `1.*` from the Helm repository `repo` (already
/// added with `ferry repo add`, chart 1.0.0 published): the controller syncs chart 1.0.0, then
/// `publish_next` publishes 1.1.0 (written to `chart_dir`) and automated sync follows it.
pub async fn follow_chart_versions(
    story: &mut Story,
    repo: &str,
    chart_dir: &Path,
    publish_next: impl FnOnce() -> Result<()>,
) -> Result<()> {
    story.start_controller()?;
    let app = story.app_name("web");
    story.ferry(&[
        "app",
        "create",
        &app,
        "--repo",
        repo,
        "--helm-chart",
        "web",
        "--revision",
        "1.*",
        "--dest-server",
        "https://kubernetes.default.svc",
        "--dest-namespace",
        story.namespace(),
        "--sync-policy",
        "automated",
    ])?;
    story
        .wait_app(&app, "Synced and Healthy at chart 1.0.0", |a| {
            is::synced_and_healthy(a) && is::at_revision("1.0.0")(a) && is::operation_finished(a)
        })
        .await?;
    let greeting = || async {
        let config = story
            .ctx
            .api::<k8s_openapi::api::core::v1::ConfigMap>()
            .get("web-config")
            .await?;
        anyhow::Ok(config.data.unwrap_or_default()["greeting"].clone())
    };
    anyhow::ensure!(greeting().await? == "hello", "chart 1.0.0 not deployed");

    write_chart(chart_dir, "1.1.0", "bonjour")?;
    publish_next()?;
    story
        .wait_app(&app, "synced to chart 1.1.0", |a| {
            is::synced(a) && is::at_revision("1.1.0")(a) && is::operation_finished(a)
        })
        .await?;
    anyhow::ensure!(greeting().await? == "bonjour", "chart 1.1.0 not deployed");
    Ok(())
}

/// Writes Helm chart `web` at `version` into `dir`: a ConfigMap `web-config` saying `greeting`.
pub fn write_chart(dir: &Path, version: &str, greeting: &str) -> Result<()> {
    std::fs::create_dir_all(dir.join("templates"))?;
    std::fs::write(
        dir.join("Chart.yaml"),
        format!("apiVersion: v2\nname: web\nversion: {version}\n"),
    )?;
    std::fs::write(
        dir.join("templates/configmap.yaml"),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  greeting: {greeting}\n"
        ),
    )?;
    Ok(())
}

/// One story's world: a namespace, a Git repository, and (when started) a controller.
pub struct Story {
    pub ctx: TestContext,
    pub repo: GitRepo,
    controller: Option<Child>,
    /// Where the running controller serves `/metrics`.
    metrics_port: u16,
    /// Where the running controller serves the API server's views.
    view_port: u16,
    work: TempDir,
    /// The home the story's `ferry` commands run in, never the machine user's.
    cli_home: CliHome,
    /// Extra flags of the controllers this story starts (see [`Story::set_controller_flags`]).
    controller_flags: Vec<String>,
}

/// A Job hook of `hook` phase(s) with `policy` as its delete policy, as YAML.
pub fn job_hook(name: &str, hook: &str, policy: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  annotations:
    argocd.argoproj.io/hook: {hook}
    argocd.argoproj.io/hook-delete-policy: {policy}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: c, image: busybox, command: [\"true\"]}}]
"
    )
}

impl Story {
    /// A fresh namespace and a repository holding the guestbook app, and the `default`
    /// AppProject as ferry creates it but also listing the fixture repositories: projects
    /// permit `file://` repositories only through `file://` entries, never through `*`.
    pub async fn new() -> Result<Self> {
        Self::in_context(TestContext::new().await?).await
    }

    /// [`Story::new`] in the sandbox with a real node, for stories whose containers must really
    /// run (see `ferry_testkit::real_node`).
    pub async fn on_real_node() -> Result<Self> {
        Self::in_context(TestContext::on_real_node().await?).await
    }

    /// The running controller's process id.
    pub fn controller_pid(&self) -> Option<u32> {
        self.controller.as_ref().map(Child::id)
    }

    /// [`Story::new`] in `ctx`'s cluster: a sandbox of the story's own
    /// (`TestContext::in_sandbox`), for faults that would disturb other tests.
    pub async fn in_context(ctx: TestContext) -> Result<Self> {
        ferry_runtime::install_crds(&ctx.client(), "ferry-e2e").await?;
        let mut project = AppProject::default_project(ctx.namespace());
        project.spec.source_repos.push(fixture_source_repos());
        ctx.api::<AppProject>()
            .create(&PostParams::default(), &project)
            .await
            .context("creating the default AppProject")?;
        let repo = GitRepo::new()?;
        for (path, content) in GUESTBOOK {
            repo.write(path, content)?;
        }
        repo.commit("guestbook")?;
        let work = tempfile::Builder::new().prefix("ferry-e2e-").tempdir()?;
        Ok(Self {
            ctx,
            repo,
            controller: None,
            metrics_port: 0,
            view_port: 0,
            work,
            cli_home: CliHome::new()?,
            controller_flags: Vec::new(),
        })
    }

    /// Extra flags for the controllers started from now on (render limits, ...).
    pub fn set_controller_flags(&mut self, flags: &[&str]) {
        self.controller_flags = flags.iter().map(|f| f.to_string()).collect();
    }

    pub fn namespace(&self) -> &str {
        self.ctx.namespace()
    }

    /// An app name unique to this story.
    pub fn app_name(&self, base: &str) -> String {
        format!("{base}-{}", self.namespace())
    }

    /// Starts `ferry-controller` for this story's namespace, comparing every 3 seconds, with its
    /// metrics on a free port.
    pub fn start_controller(&mut self) -> Result<()> {
        self.start_controller_resyncing(3)
    }

    /// [`Self::start_controller`], comparing unchanged apps every `seconds` only.
    pub fn start_controller_resyncing(&mut self, seconds: u64) -> Result<()> {
        let kubeconfig = self.ctx.kubeconfig().to_path_buf();
        self.start_controller_with(seconds, &kubeconfig)
    }

    /// [`Self::start_controller`], reaching the API server through `proxy`: cutting it is an
    /// API server outage for the controller alone.
    pub fn start_controller_through(&mut self, proxy: &Proxy) -> Result<()> {
        let kubeconfig = self.work.path().join("kubeconfig-through-proxy");
        proxy.kubeconfig(self.ctx.kubeconfig(), &kubeconfig)?;
        self.start_controller_with(3, &kubeconfig)
    }

    fn start_controller_with(&mut self, seconds: u64, kubeconfig: &Path) -> Result<()> {
        self.metrics_port = free_port()?;
        self.view_port = free_port()?;
        let child = self
            .controller_command(seconds, kubeconfig, &self.controller_log(), "cache")?
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{}", self.metrics_port))
            .arg("--view-listen")
            .arg(format!("127.0.0.1:{}", self.view_port))
            .spawn()
            .context("starting ferry-controller")?;
        self.controller = Some(child);
        Ok(())
    }

    /// `ferry-controller` for this story's namespace, logging to `log`, with the story's flags
    /// and its caches in the work directory's `cache`.
    fn controller_command(
        &self,
        seconds: u64,
        kubeconfig: &Path,
        log: &Path,
        cache: &str,
    ) -> Result<Command> {
        let log = File::options().create(true).append(true).open(log)?;
        let mut command = Command::new(binary("ferry-controller")?);
        command
            .args(["--namespace", self.namespace()])
            .args(["--resync", &seconds.to_string()])
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(self.work.path().join(cache))
            .args(&self.controller_flags)
            .env("PATH", ferry_sandbox::toolchain::search_path())
            .env(
                "FERRY_LOG",
                "info,ferry_controller=debug,kube=warn,kube_client::client=off",
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        Ok(command)
    }

    /// Starts one more `ferry-controller` replica named `name` beside the story's own (which
    /// need not run), with extra `flags` and environment (`env`), logging to its own file.
    pub fn start_replica(
        &self,
        name: &str,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Replica> {
        self.start_replica_with(name, flags, env, self.ctx.kubeconfig())
    }

    /// [`Self::start_replica`], reaching the API server through `proxy`.
    pub fn start_replica_through(
        &self,
        name: &str,
        flags: &[&str],
        proxy: &Proxy,
    ) -> Result<Replica> {
        let kubeconfig = self.work.path().join(format!("kubeconfig-{name}"));
        proxy.kubeconfig(self.ctx.kubeconfig(), &kubeconfig)?;
        self.start_replica_with(name, flags, &[], &kubeconfig)
    }

    fn start_replica_with(
        &self,
        name: &str,
        flags: &[&str],
        env: &[(&str, &str)],
        kubeconfig: &Path,
    ) -> Result<Replica> {
        let log = self.work.path().join(format!("controller-{name}.log"));
        let (metrics_port, view_port) = (free_port()?, free_port()?);
        let child = self
            .controller_command(3, kubeconfig, &log, &format!("cache-{name}"))?
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .arg("--view-listen")
            .arg(format!("127.0.0.1:{view_port}"))
            .args(flags)
            .envs(env.iter().copied())
            .spawn()
            .with_context(|| format!("starting ferry-controller {name}"))?;
        Ok(Replica {
            name: name.to_string(),
            child: Some(child),
            log,
            metrics_port,
            view_port,
        })
    }

    /// Starts `ferry-server` for this story's namespace, asking the running controller for
    /// what only it knows.
    pub async fn start_server(&self) -> Result<ServerProcess> {
        self.start_server_as(self.ctx.kubeconfig()).await
    }

    /// A session token of the admin on `server`, whose password it generated.
    pub async fn admin_token(&self, server: &ServerProcess) -> Result<String> {
        let password =
            ferry_testkit::server::admin_password(&self.ctx.client(), self.namespace()).await?;
        let login: serde_json::Value = reqwest::Client::new()
            .post(format!("http://{}/api/v1/session", server.address()))
            .json(&serde_json::json!({"username": "admin", "password": password}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(login["token"]
            .as_str()
            .context("no session token")?
            .to_string())
    }

    /// [`Self::start_server`] serving the web UI built into it (`ui/dist` as `scripts/ui` built
    /// it; a debug build reads it from the source tree when it serves).
    pub async fn start_server_with_ui(&self) -> Result<ServerProcess> {
        let dist = helm::repo_root().join("ui/dist");
        anyhow::ensure!(
            dist.join("index.html").is_file(),
            "{} is not built: run scripts/ui",
            dist.display()
        );
        self.start_server().await
    }

    /// [`Self::start_server`] with the credentials of `kubeconfig` (a ServiceAccount's token).
    pub async fn start_server_as(&self, kubeconfig: &Path) -> Result<ServerProcess> {
        self.start_server_with(kubeconfig, &[self.view_port]).await
    }

    /// `ferry-server` asking `replicas` (the shards of a sharded controller) for views.
    pub async fn start_server_for(&self, replicas: &[&Replica]) -> Result<ServerProcess> {
        let ports: Vec<u16> = replicas.iter().map(|replica| replica.view_port).collect();
        self.start_server_with(self.ctx.kubeconfig(), &ports).await
    }

    async fn start_server_with(
        &self,
        kubeconfig: &Path,
        view_ports: &[u16],
    ) -> Result<ServerProcess> {
        let urls: Vec<String> = view_ports
            .iter()
            .map(|port| format!("http://127.0.0.1:{port}"))
            .collect();
        ServerProcess::start_with(
            &binary("ferry-server")?,
            self.namespace(),
            kubeconfig,
            &["--controller-url".into(), urls.join(",")],
        )
        .await
    }

    /// Kills the controller with SIGKILL: no chance to finish or clean up anything.
    pub fn kill_controller(&mut self) -> Result<()> {
        if let Some(mut child) = self.controller.take() {
            kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL)?;
            child.wait()?;
        }
        Ok(())
    }

    /// Where the controllers this story starts log.
    pub fn controller_log(&self) -> PathBuf {
        self.work.path().join("controller.log")
    }

    /// The controller's log so far (for failure messages).
    pub fn controller_log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.controller_log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The controller's `/metrics` page.
    pub async fn metrics(&self) -> Result<String> {
        ferry_testkit::server::scrape_metrics(self.metrics_port).await
    }

    /// Runs the `ferry` CLI against this story's namespace; fails unless it exits 0.
    pub fn ferry(&self, args: &[&str]) -> Result<String> {
        self.ferry_with_env(args, &[])
    }

    /// [`Self::ferry`] with more environment variables: secrets (`FERRY_PASSWORD`) go there, out
    /// of the arguments a failure prints.
    pub fn ferry_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Result<String> {
        let output = self
            .ferry_command(args)?
            .envs(env.iter().copied())
            .output()
            .context("running ferry")?;
        if !output.status.success() {
            bail!(
                "ferry {} failed ({}):\n{}\n{}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs the `ferry` CLI and returns whatever it did.
    pub fn ferry_output(&self, args: &[&str]) -> Result<Output> {
        self.ferry_command(args)?.output().context("running ferry")
    }

    /// Starts the `ferry` CLI against this story's namespace without waiting for it; its output
    /// is captured (`wait_with_output`).
    pub fn ferry_spawn(&self, args: &[&str]) -> Result<std::process::Child> {
        self.ferry_command(args)?
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting ferry")
    }

    fn ferry_command(&self, args: &[&str]) -> Result<Command> {
        let mut command = self.cli_home.command(binary("ferry")?);
        command
            .args(["--namespace", self.namespace()])
            .arg("--kubeconfig")
            .arg(self.ctx.kubeconfig())
            .args(args)
            .env("USER", "e2e")
            .stdin(Stdio::null());
        Ok(command)
    }

    /// `ferry app create` for a directory app of this story's repo, deploying into the
    /// story's namespace, with extra flags.
    pub fn create_app(&self, name: &str, path: &str, extra: &[&str]) -> Result<()> {
        self.create_app_from(&self.repo.file_url(), name, path, extra)
    }

    /// `ferry app create` for `path` of the repository at `repo_url`, deploying into the
    /// story's namespace, with extra flags.
    pub fn create_app_from(
        &self,
        repo_url: &str,
        name: &str,
        path: &str,
        extra: &[&str],
    ) -> Result<()> {
        let mut args = vec![
            "app",
            "create",
            name,
            "--repo",
            repo_url,
            "--path",
            path,
            "--dest-server",
            "https://kubernetes.default.svc",
            "--dest-namespace",
            self.namespace(),
        ];
        args.extend_from_slice(extra);
        self.ferry(&args).map(|_| ())
    }

    pub fn apps(&self) -> Api<DynamicObject> {
        let resource = ApiResource::erase::<Application>(&());
        Api::namespaced_with(self.ctx.client(), self.namespace(), &resource)
    }

    pub async fn app(&self, name: &str) -> Result<Application> {
        let object = self.apps().get(name).await?;
        Ok(serde_json::from_value(serde_json::to_value(object)?)?)
    }

    /// Waits until the Application has a condition of type `kind`; its message.
    pub async fn wait_condition(&self, name: &str, kind: &str) -> Result<String> {
        let app = self
            .wait_app(name, &format!("a {kind} condition"), is::condition(kind))
            .await?;
        let status = app.status.context("no status")?;
        Ok(status
            .condition(kind)
            .context("no condition")?
            .message
            .clone())
    }

    /// Polls the Application until `check` holds, failing with `what`, the app's status and the
    /// controller's log after `TIMEOUT`.
    pub async fn wait_app(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&Application) -> bool,
    ) -> Result<Application> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let app = self.app(name).await;
            if let Ok(app) = &app
                && check(app)
            {
                return Ok(app.clone());
            }
            if Instant::now() > deadline {
                let status = app
                    .ok()
                    .and_then(|a| serde_json::to_string_pretty(&a.status).ok())
                    .unwrap_or_default();
                bail!(
                    "timed out waiting for {name}: {what}\nstatus: {status}\ncontroller log:\n{}",
                    self.controller_log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls until `check` holds, failing with `what` after `TIMEOUT`.
    pub async fn eventually<F, Fut>(&self, what: &str, mut check: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if check().await.unwrap_or(false) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "timed out waiting for {what}\ncontroller log:\n{}",
                    self.controller_log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A free port on the loopback interface.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A controller replica a story started with [`Story::start_replica`]; SIGKILLed when dropped.
pub struct Replica {
    pub name: String,
    child: Option<Child>,
    log: PathBuf,
    metrics_port: u16,
    view_port: u16,
}

impl Replica {
    /// Kills the replica with SIGKILL.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL)?;
            child.wait()?;
        }
        Ok(())
    }

    /// Waits up to `limit` for the replica to exit by itself; whether it did.
    pub async fn wait_exit(&mut self, limit: Duration) -> Result<bool> {
        let deadline = Instant::now() + limit;
        let Some(child) = self.child.as_mut() else {
            return Ok(true);
        };
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                self.child = None;
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(false)
    }

    /// Its `/metrics` page.
    pub async fn metrics(&self) -> Result<String> {
        ferry_testkit::server::scrape_metrics(self.metrics_port).await
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log lines that contain every one of `words`.
    pub fn log_lines_with(&self, words: &[&str]) -> Vec<String> {
        self.log()
            .lines()
            .filter(|line| words.iter().all(|w| line.contains(w)))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

impl Drop for Story {
    fn drop(&mut self) {
        let _ = self.kill_controller();
    }
}

/// Status predicates, so stories read as sentences.
pub mod is {
    use ferry_types::Application;
    use ferry_types::application::{HealthStatusCode, OperationPhase, SyncStatusCode};

    pub fn synced(app: &Application) -> bool {
        app.status
            .as_ref()
            .is_some_and(|s| s.sync.status == SyncStatusCode::Synced)
    }

    pub fn out_of_sync(app: &Application) -> bool {
        app.status
            .as_ref()
            .is_some_and(|s| s.sync.status == SyncStatusCode::OutOfSync)
    }

    pub fn healthy(app: &Application) -> bool {
        app.status
            .as_ref()
            .is_some_and(|s| s.health.status == HealthStatusCode::Healthy)
    }

    pub fn synced_and_healthy(app: &Application) -> bool {
        synced(app) && healthy(app)
    }

    pub fn at_revision(revision: &str) -> impl Fn(&Application) -> bool + '_ {
        move |app| {
            app.status
                .as_ref()
                .is_some_and(|s| s.sync.revision == revision)
        }
    }

    pub fn operation_finished(app: &Application) -> bool {
        app.operation.is_none()
            && app
                .status
                .as_ref()
                .and_then(|s| s.operation_state.as_ref())
                .is_some_and(|o| o.phase.is_completed())
    }

    pub fn operation_phase(app: &Application) -> Option<OperationPhase> {
        app.status
            .as_ref()
            .and_then(|s| s.operation_state.as_ref())
            .map(|o| o.phase)
    }

    pub fn condition(kind: &str) -> impl Fn(&Application) -> bool + '_ {
        move |app| {
            app.status
                .as_ref()
                .is_some_and(|s| s.condition(kind).is_some())
        }
    }

    /// A condition of `kind` whose message contains `text`.
    pub fn condition_saying<'a>(
        kind: &'a str,
        text: &'a str,
    ) -> impl Fn(&Application) -> bool + 'a {
        move |app| {
            app.status
                .as_ref()
                .and_then(|s| s.condition(kind))
                .is_some_and(|c| c.message.contains(text))
        }
    }
}
