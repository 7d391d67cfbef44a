//! How the controller scales: `--apps` Applications of 10 resources each (a Deployment, a
//! Service and 8 ConfigMaps from one Git directory, each app in its own namespace), synced
//! automatically on a fresh sandbox by a controller running in this process. Prints the time
//! until every app is Synced and Healthy, the time to compare every app again from scratch
//! (server-side diff of apps × 10 objects), the CPU a quiet resync costs per app, the process's
//! peak and steady RSS, the size and time of a metrics scrape, and the CPU the sandbox's
//! kube-apiserver spent in each phase.
//!
//! cargo run --release -p ferry-controller --example scale_bench -- --apps 100

use ferry_runtime::metrics::Exposition;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;
use ferry_controller::{ControllerSettings, Metrics};
use ferry_testkit::process::{
    apiserver_pid, cpu_seconds, mib, on_fresh_sandbox, pid_cpu_seconds, status_bytes,
};
use ferry_types::Application;
use ferry_types::application::{HealthStatusCode, REFRESH_ANNOTATION, SyncStatusCode};
use futures::{StreamExt, TryStreamExt};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const NAMESPACE: &str = "argocd";

#[derive(Parser)]
struct Args {
    /// Applications to create.
    #[arg(long, default_value_t = 100)]
    apps: usize,
    /// Seconds between resyncs while measuring the quiet phase.
    #[arg(long, default_value_t = 30)]
    resync: u64,
    /// Give up after this many seconds waiting for a phase.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
    /// Leave the sandbox running afterwards.
    #[arg(long)]
    keep: bool,
    /// The controller's memory for server-side diff answers (0: a dry run per object and
    /// comparison).
    #[arg(long, default_value_t = ControllerSettings::default().server_side_diff_cache_size)]
    server_side_diff_cache_size: u64,
    /// The sandbox to run on (started fresh, stopped afterwards unless `--keep`).
    #[arg(long, default_value = "scale-bench")]
    sandbox: String,
}

// The allocator `ferry-controller` is built with, so the RSS is the shipped binary's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// CPU seconds the sandbox's kube-apiserver has used.
fn apiserver_cpu(sandbox: &str) -> Result<f64> {
    pid_cpu_seconds(apiserver_pid(&ferry_sandbox::Sandbox::named(sandbox)?)?)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    on_fresh_sandbox(&args.sandbox, args.keep, |client| run(&args, client)).await
}

async fn run(args: &Args, client: kube::Client) -> Result<()> {
    let work = tempfile::tempdir()?;
    let repo = make_repo(work.path())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let settings = ControllerSettings {
        namespace: NAMESPACE.into(),
        resync: Duration::from_secs(args.resync),
        git_root: work.path().join("git"),
        server_side_diff_cache_size: args.server_side_diff_cache_size,
        ..ControllerSettings::default()
    };
    let metrics = Arc::new(Metrics::default());
    let controller = tokio::spawn(ferry_controller::run(
        client.clone(),
        settings,
        metrics.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    let resource = ApiResource::erase::<Application>(&());
    let apps: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, &resource);
    wait_for_crd(&apps).await?;
    permit_local_repo(&client, &repo).await?;

    let apiserver_before = apiserver_cpu(&args.sandbox)?;
    let started = Instant::now();
    futures::stream::iter(0..args.apps)
        .map(|i| {
            let apps = apps.clone();
            let url = format!("file://{}", repo.display());
            async move {
                let app: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                    "metadata": {"name": format!("app-{i:04}"), "namespace": NAMESPACE},
                    "spec": {
                        "project": "default",
                        "source": {"repoURL": url, "path": "app", "targetRevision": "HEAD"},
                        "destination": {"server": "https://kubernetes.default.svc",
                                        "namespace": format!("bench-{i:04}")},
                        "syncPolicy": {"automated": {"prune": true, "selfHeal": true},
                                       "syncOptions": ["CreateNamespace=true"]}
                    }
                }))?;
                apps.create(&PostParams::default(), &app).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await?;
    println!(
        "{} apps created            {:>10.2?}",
        args.apps,
        started.elapsed()
    );
    let timeout = Duration::from_secs(args.timeout);
    wait_until(&apps, "Synced and Healthy", timeout, started, |a| {
        let status = a.status.as_ref();
        status.is_some_and(|s| {
            s.sync.status == SyncStatusCode::Synced && s.health.status == HealthStatusCode::Healthy
        })
    })
    .await?;
    println!("all Synced and Healthy     {:>10.2?}", started.elapsed());
    println!(
        "kube-apiserver CPU         {:>10.1} s until then",
        apiserver_cpu(&args.sandbox)? - apiserver_before
    );
    println!(
        "controller RSS peak        {:>10}",
        mib(status_bytes("VmHWM")?)
    );

    // Every app compared from scratch: a refresh bypasses the comparison cache.
    let apiserver_before = apiserver_cpu(&args.sandbox)?;
    let started = Instant::now();
    let params = PatchParams::default();
    futures::stream::iter(0..args.apps)
        .map(|i| {
            let apps = apps.clone();
            let params = params.clone();
            async move {
                let patch = json!({"metadata": {"annotations": {REFRESH_ANNOTATION: "normal"}}});
                apps.patch(&format!("app-{i:04}"), &params, &Patch::Merge(&patch))
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await?;
    wait_until(&apps, "refreshed", timeout, started, |a| {
        a.refresh_requested().is_none()
    })
    .await?;
    let full = started.elapsed();
    println!(
        "full comparison, all apps  {full:>10.2?} ({:.1?} per app of 10 objects)",
        full / args.apps.max(1) as u32
    );
    println!(
        "kube-apiserver CPU         {:>10.1} s for it",
        apiserver_cpu(&args.sandbox)? - apiserver_before
    );

    // A quiet period: nothing changes, apps resync from the comparison cache.
    let cpu_before = cpu_seconds()?;
    let apiserver_before = apiserver_cpu(&args.sandbox)?;
    let quiet = Duration::from_secs(args.resync * 2);
    tokio::time::sleep(quiet).await;
    let cpu = cpu_seconds()? - cpu_before;
    let apiserver = apiserver_cpu(&args.sandbox)? - apiserver_before;
    let resyncs = (quiet.as_secs_f64() / args.resync as f64) * args.apps as f64;
    println!(
        "quiet resync CPU           {:>10.3} s over {quiet:?} ({:.2} ms per app resync)",
        cpu,
        cpu * 1000.0 / resyncs
    );
    println!(
        "kube-apiserver CPU quiet   {:>10.3} s ({:.2} ms per app and minute)",
        apiserver,
        apiserver * 1000.0 / args.apps as f64 / (quiet.as_secs_f64() / 60.0)
    );
    println!(
        "controller RSS steady      {:>10}",
        mib(status_bytes("VmRSS")?)
    );
    println!(
        "controller RSS peak        {:>10}",
        mib(status_bytes("VmHWM")?)
    );
    let started = Instant::now();
    let scrape = metrics.render()?;
    println!(
        "metrics scrape             {:>10.2?} ({} KiB, {} lines)",
        started.elapsed(),
        scrape.len() / 1024,
        scrape.lines().count()
    );
    let _ = stop.send(());
    controller.await??;
    Ok(())
}

/// The default project, with the local repository listed: `*` does not cover `file://` sources.
async fn permit_local_repo(client: &kube::Client, repo: &Path) -> Result<()> {
    let project = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
        "metadata": {"name": "default", "namespace": NAMESPACE},
        "spec": {
            "sourceRepos": ["*", format!("file://{}", repo.display())],
            "destinations": [{"server": "*", "namespace": "*"}],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
        },
    });
    Api::<ferry_types::AppProject>::namespaced(client.clone(), NAMESPACE)
        .patch(
            "default",
            &PatchParams::apply("scale-bench").force(),
            &Patch::Apply(&project),
        )
        .await?;
    Ok(())
}

fn make_repo(dir: &Path) -> Result<std::path::PathBuf> {
    let repo = dir.join("repo");
    let app = repo.join("app");
    std::fs::create_dir_all(&app)?;
    std::fs::write(
        app.join("deployment.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: nginx:1.27}]}\n",
    )?;
    std::fs::write(
        app.join("service.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: web}, ports: [{port: 80}]}\n",
    )?;
    for i in 0..8 {
        std::fs::write(
            app.join(format!("config-{i}.yaml")),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: config-{i}}}\ndata: {{index: \"{i}\", settings.yaml: \"replicas: 3\\nlog_level: info\\n\"}}\n"
            ),
        )?;
    }
    for args in [
        vec!["init", "-q", "-b", "main"],
        vec!["add", "-A"],
        vec![
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@localhost",
            "commit",
            "-qm",
            "app",
        ],
    ] {
        let status = Command::new("git")
            .args(&args)
            .current_dir(&repo)
            .status()?;
        if !status.success() {
            bail!("git {} failed", args.join(" "));
        }
    }
    Ok(repo)
}

async fn wait_for_crd(apps: &Api<DynamicObject>) -> Result<()> {
    for _ in 0..600 {
        if apps.list(&ListParams::default().limit(1)).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the controller did not install the Application CRD")
}

/// Polls every second until every app satisfies `done`, printing progress every 10 seconds.
async fn wait_until(
    apps: &Api<DynamicObject>,
    what: &str,
    timeout: Duration,
    started: Instant,
    done: impl Fn(&Application) -> bool,
) -> Result<()> {
    let mut last_report = Instant::now();
    loop {
        let list = apps.list(&ListParams::default()).await?;
        let total = list.items.len();
        let ready = list
            .items
            .into_iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .filter_map(|v| serde_json::from_value::<Application>(v).ok())
            .filter(|a| done(a))
            .count();
        if ready == total {
            return Ok(());
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            println!("  {ready}/{total} {what} after {:.0?}", started.elapsed());
            last_report = Instant::now();
        }
        if started.elapsed() > timeout {
            bail!("only {ready}/{total} apps {what} after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
