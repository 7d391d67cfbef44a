//! Memory after a large app: one Application of `--docs` ConfigMaps (from one file in a local Git
//! repository), synced by the release `ferry-controller` running as its own process on a fresh
//! sandbox. Prints the controller's RSS (VmRSS, and the peak VmHWM) when idle, once the app is
//! Synced and Healthy, `--settle` seconds later, and `--settle` seconds after the app and its
//! namespace are deleted; and the size of the Application object with what its status left out.
//!
//! cargo build --release -p ferry-controller --bin ferry-controller --example memory_bench
//! target/release/examples/memory_bench --docs 5000 [--controller-env K=V]... [-- controller flags]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use ferry_testkit::git::{GitRepo, fixture_source_repos};
use ferry_testkit::process::{mib, pid_status_bytes};
use ferry_types::application::{HealthStatusCode, SyncStatusCode};
use ferry_types::{AppProject, Application};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ApiResource, DeleteParams, DynamicObject, PostParams};
use kube::{Api, Client};
use serde_json::json;

const NAMESPACE: &str = "argocd";
const TARGET: &str = "big";

#[derive(Parser)]
struct Args {
    /// ConfigMaps in the app.
    #[arg(long, default_value_t = 5000)]
    docs: usize,
    /// Characters added to each ConfigMap's name (long names make a large status).
    #[arg(long, default_value_t = 0)]
    name_padding: usize,
    /// Seconds to wait before the "after" samples.
    #[arg(long, default_value_t = 60)]
    settle: u64,
    /// The controller binary (default: target/release/ferry-controller beside this program).
    #[arg(long)]
    controller: Option<PathBuf>,
    /// Environment of the controller process only (MALLOC_ARENA_MAX=2, LD_PRELOAD=...).
    #[arg(long, value_name = "KEY=VALUE")]
    controller_env: Vec<String>,
    /// Leave the sandbox running afterwards.
    #[arg(long)]
    keep: bool,
    /// Extra controller flags.
    #[arg(last = true)]
    controller_args: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let sandbox = ferry_sandbox::Sandbox::named("memory-bench")?;
    sandbox.down()?;
    sandbox.up(&ferry_sandbox::UpOptions::default()).await?;
    let result = run(&args, sandbox.client().await?, &sandbox.kubeconfig()).await;
    if !args.keep {
        sandbox.down()?;
    }
    result
}

async fn run(args: &Args, client: Client, kubeconfig: &Path) -> Result<()> {
    ferry_runtime::install_crds(&client, "memory-bench").await?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?,
        )
        .await?;
    let mut project = AppProject::default_project(NAMESPACE);
    project.spec.source_repos.push(fixture_source_repos());
    Api::<AppProject>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &project)
        .await?;
    let repo = GitRepo::new()?;
    repo.write("big/all.yaml", manifests(args.docs, args.name_padding))?;
    repo.commit("a large app")?;

    let work = tempfile::tempdir()?;
    let mut controller = start_controller(args, kubeconfig, work.path())?;
    let rss = Sampler::start(controller.id());
    let outcome = measure(args, &client, &repo, &rss).await;
    let _ = controller.kill();
    let _ = controller.wait();
    if outcome.is_err() {
        let log = std::fs::read_to_string(work.path().join("controller.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        eprintln!(
            "controller log (last lines, newest first):\n{}",
            tail.join("\n")
        );
    }
    outcome
}

async fn measure(args: &Args, client: &Client, repo: &GitRepo, rss: &Sampler) -> Result<()> {
    tokio::time::sleep(Duration::from_secs(10)).await;
    rss.print("idle (10 s after start)");

    let resource = ApiResource::erase::<Application>(&());
    let apps: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, &resource);
    let app: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "big", "namespace": NAMESPACE},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo.file_url(), "path": "big", "targetRevision": "HEAD"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": TARGET},
            "syncPolicy": {"automated": {"prune": true}, "syncOptions": ["CreateNamespace=true"]}
        }
    }))?;
    let started = Instant::now();
    apps.create(&PostParams::default(), &app).await?;
    let synced = wait_for(&apps, started, |app| {
        app.status.as_ref().is_some_and(|s| {
            s.sync.status == SyncStatusCode::Synced
                && s.health.status == HealthStatusCode::Healthy
                && s.operation_state
                    .as_ref()
                    .is_some_and(|o| o.phase.is_completed())
        })
    })
    .await?;
    println!(
        "{} ConfigMaps Synced and Healthy after {:.1} s",
        args.docs,
        started.elapsed().as_secs_f64()
    );
    rss.print("synced");
    describe_size(&apps).await?;
    drop(synced);

    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    rss.print(&format!("{} s after the sync", args.settle));

    apps.delete("big", &DeleteParams::default()).await?;
    Api::<Namespace>::all(client.clone())
        .delete(TARGET, &DeleteParams::default())
        .await?;
    let deleting = Instant::now();
    while Api::<Namespace>::all(client.clone())
        .get_opt(TARGET)
        .await?
        .is_some()
    {
        if deleting.elapsed() > Duration::from_secs(600) {
            bail!("namespace {TARGET} still there after 10 minutes");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!(
        "app and namespace deleted after {:.1} s",
        deleting.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    rss.print(&format!("{} s after the deletion", args.settle));
    Ok(())
}

/// The Application object's size and what its status left out to stay small.
async fn describe_size(apps: &Api<DynamicObject>) -> Result<()> {
    let object = apps.get("big").await?;
    let bytes = serde_json::to_vec(&object)?.len();
    let app: Application = serde_json::from_value(serde_json::to_value(&object)?)?;
    let status = app.status.unwrap_or_default();
    let listed = status.resources.len();
    let result = status
        .operation_state
        .as_ref()
        .and_then(|o| o.sync_result.as_ref())
        .map_or(0, |r| r.resources.len());
    println!(
        "Application object: {:.2} MiB of JSON; status.resources lists {listed}, \
         syncResult.resources {result}",
        bytes as f64 / (1024.0 * 1024.0)
    );
    for condition in &status.conditions {
        println!(
            "  condition {}: {}",
            condition.condition_type, condition.message
        );
    }
    if let Some(operation) = &status.operation_state {
        println!("  operation: {}", operation.message);
    }
    Ok(())
}

fn manifests(docs: usize, padding: usize) -> String {
    let pad = "x".repeat(padding);
    (0..docs)
        .map(|i| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:05}{pad}\n  labels: \
                 {{team: bench}}\ndata:\n  index: \"{i}\"\n  settings: |\n    replicas: 3\n    \
                 region: eu-west-{}\n",
                i % 3
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

fn start_controller(args: &Args, kubeconfig: &Path, work: &Path) -> Result<Child> {
    let binary = match &args.controller {
        Some(binary) => binary.clone(),
        None => std::env::current_exe()?
            .parent()
            .and_then(Path::parent)
            .context("locating target/release")?
            .join("ferry-controller"),
    };
    let log = std::fs::File::create(work.join("controller.log"))?;
    let mut command = Command::new(&binary);
    command
        .args(["--namespace", NAMESPACE, "--kubeconfig"])
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(work.join("cache"))
        .args([
            "--metrics-listen",
            "127.0.0.1:0",
            "--view-listen",
            "127.0.0.1:0",
        ])
        .args(&args.controller_args)
        .env("PATH", ferry_sandbox::toolchain::search_path())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    for pair in &args.controller_env {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("--controller-env {pair}: expected KEY=VALUE"))?;
        command.env(key, value);
    }
    command
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))
}

/// Polls the app every second until `done`, printing progress every 30 s.
async fn wait_for(
    apps: &Api<DynamicObject>,
    started: Instant,
    done: impl Fn(&Application) -> bool,
) -> Result<Application> {
    let mut reported = Instant::now();
    loop {
        if let Some(object) = apps.get_opt("big").await? {
            let app: Application = serde_json::from_value(serde_json::to_value(&object)?)?;
            if done(&app) {
                return Ok(app);
            }
            if reported.elapsed() > Duration::from_secs(30) {
                let status = app.status.unwrap_or_default();
                println!(
                    "  after {:.0} s: {:?} {:?}, operation {:?}",
                    started.elapsed().as_secs_f64(),
                    status.sync.status,
                    status.health.status,
                    status.operation_state.map(|o| o.phase)
                );
                reported = Instant::now();
            }
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("the app was not Synced and Healthy after 30 minutes");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The controller's memory, read from /proc every 200 ms; the peak is the kernel's VmHWM.
struct Sampler {
    pid: u32,
    highest: Arc<AtomicUsize>,
}

impl Sampler {
    fn start(pid: u32) -> Self {
        let highest = Arc::new(AtomicUsize::new(0));
        let seen = highest.clone();
        tokio::spawn(async move {
            while let Ok(rss) = pid_status_bytes(pid, "VmRSS") {
                seen.fetch_max(rss, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Self { pid, highest }
    }

    fn print(&self, moment: &str) {
        let now = pid_status_bytes(self.pid, "VmRSS").unwrap_or(0);
        let peak = pid_status_bytes(self.pid, "VmHWM").unwrap_or(0);
        println!(
            "controller RSS {moment:<28} {:>10}   peak (VmHWM) {:>10}",
            mib(now),
            mib(peak.max(self.highest.load(Ordering::Relaxed)))
        );
    }
}
