//! ferry and Argo CD side by side on the same workload: `--apps` Applications of 10 resources
//! each (a Deployment, a Service and 8 ConfigMaps from one directory of a Git repository served
//! over smart HTTP, each app in its own namespace, automated sync with prune), each system alone
//! on a fresh sandbox, driven from outside through the Kubernetes API:
//! - `bare`: no GitOps at all, the same objects server-side applied by a plain client (the
//!   sandbox's limit);
//! - `ferry`: the `ferry-controller` binary with its defaults;
//! - `argocd`: Argo CD's application controller and repo-server (built from the Go module proxy
//!   by `scripts/toolchain argocd-components`) with redis, with their defaults.
//!
//! For each, the time from creating the apps to all Synced (the bare client: all applied) and to
//! all Synced and Healthy, the CPU of the system's
//! processes (their waited children included: the repo-server runs git) and of kube-apiserver,
//! the API requests the sandbox served by verb (from its own `apiserver_request_total`), RSS at
//! peak and at rest, a quiet period, and a refresh of every app. Ends with a table.
//!
//! scripts/versus-argocd --apps 100      (builds what it needs, then runs this program)

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use ferry_testkit::git::{GitRepo, HttpServer};
use ferry_testkit::process::{Requests, apiserver_pid, mib, pid_cpu_seconds, pid_status_bytes};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client};
use serde_json::{Value, json};

const NAMESPACE: &str = "argocd";
const REFRESH: &str = "argocd.argoproj.io/refresh";

#[derive(Parser)]
struct Args {
    /// Applications to create (10 objects each).
    #[arg(long, default_value_t = 100)]
    apps: usize,
    /// The systems to measure, one after the other, each on a fresh sandbox.
    #[arg(long, value_delimiter = ',', default_value = "bare,ferry,argocd")]
    systems: Vec<System>,
    /// Seconds of the quiet period (nothing changes; resyncs happen).
    #[arg(long, default_value_t = 180)]
    quiet: u64,
    /// Give up after this many seconds waiting for a phase.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
    /// The ferry-controller binary (default: beside this program's directory).
    #[arg(long)]
    ferry_controller: Option<PathBuf>,
    /// Argo CD's components (default: argocd-components in the toolchain).
    #[arg(long)]
    argocd_components: Option<PathBuf>,
    /// A directory with Argo CD's application-crd.yaml and appproject-crd.yaml.
    #[arg(long)]
    argocd_crds: Option<PathBuf>,
    /// The redis server Argo CD caches in.
    #[arg(long, default_value = "redis-server")]
    redis: PathBuf,
    /// Leave the last sandbox running afterwards.
    #[arg(long)]
    keep: bool,
    /// One more argument for ferry-controller (repeat for more), e.g.
    /// `--ferry-arg=--operation-processors=40`; the reported runs use its defaults.
    #[arg(long, allow_hyphen_values = true)]
    ferry_arg: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum System {
    Bare,
    Ferry,
    Argocd,
}

/// What one system measured.
#[derive(Default)]
struct Report {
    /// Until every object was applied: the bare client's last apply; a GitOps system's apps all
    /// Synced, whatever their health.
    applied: Duration,
    synced: Duration,
    system_cpu_sync: f64,
    apiserver_cpu_sync: f64,
    requests_sync: Requests,
    peak_rss: usize,
    steady_rss: usize,
    quiet_cpu: f64,
    apiserver_cpu_quiet: f64,
    requests_quiet: Requests,
    refreshed: Duration,
    apiserver_cpu_refresh: f64,
    requests_refresh: Requests,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let repo = GitRepo::new()?;
    write_app(&repo)?;
    repo.commit("ten objects")?;
    let server = HttpServer::start(&repo, None)?;
    let mut reports = Vec::new();
    for (i, system) in args.systems.iter().enumerate() {
        println!("== {system:?}, {} apps", args.apps);
        let sandbox = ferry_sandbox::Sandbox::named(&format!("versus-{system:?}").to_lowercase())?;
        sandbox.down()?;
        sandbox.up(&ferry_sandbox::UpOptions::default()).await?;
        let client = sandbox.client().await?;
        let report = measure(&args, *system, &client, &sandbox, &server.url()).await;
        if report.is_err() && args.keep {
            return report.map(drop);
        }
        if !(args.keep && i + 1 == args.systems.len()) {
            sandbox.down()?;
        }
        reports.push((*system, report?));
    }
    print_table(&args, &reports);
    Ok(())
}

async fn measure(
    args: &Args,
    system: System,
    client: &Client,
    sandbox: &ferry_sandbox::Sandbox,
    url: &str,
) -> Result<Report> {
    let apiserver = Apiserver::of(sandbox, client)?;
    if system == System::Bare {
        return apply_bare(args, client, &apiserver).await;
    }
    let work = tempfile::tempdir()?;
    let processes = match system {
        System::Ferry => start_ferry(args, client, &sandbox.kubeconfig(), work.path()).await?,
        _ => start_argocd(args, client, &sandbox.kubeconfig(), work.path()).await?,
    };
    let destination = register_cluster(client, &sandbox.kubeconfig()).await?;
    let outcome = measure_gitops(args, client, &apiserver, &processes, url, &destination).await;
    if outcome.is_err() {
        processes.print_logs();
    }
    outcome
}

async fn measure_gitops(
    args: &Args,
    client: &Client,
    apiserver: &Apiserver,
    processes: &Processes,
    url: &str,
    destination: &str,
) -> Result<Report> {
    let timeout = Duration::from_secs(args.timeout);
    let resource = ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        "argoproj.io",
        "v1alpha1",
        "Application",
    ));
    let apps: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, &resource);
    let store = watch(apps.clone(), resource.clone());
    // Settle after start: both systems list and watch the cluster first.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut report = Report::default();

    let before = apiserver.sample(processes).await?;
    let started = Instant::now();
    futures::stream::iter(0..args.apps)
        .map(|i| {
            let apps = apps.clone();
            let app = application(i, url, destination);
            async move {
                apps.create(&PostParams::default(), &serde_json::from_value(app)?)
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await?;
    let synced = async {
        wait_until(&store, args.apps, "Synced", timeout, started, |app| {
            status(app, "/sync/status") == Some("Synced")
        })
        .await?;
        println!(
            "all Synced               {:>8.1} s",
            started.elapsed().as_secs_f64()
        );
        anyhow::Ok(started.elapsed())
    };
    let healthy = wait_until(
        &store,
        args.apps,
        "Synced and Healthy",
        timeout,
        started,
        |app| {
            status(app, "/sync/status") == Some("Synced")
                && status(app, "/health/status") == Some("Healthy")
        },
    );
    let (synced, healthy) = tokio::join!(synced, healthy);
    report.applied = synced?;
    healthy?;
    report.synced = started.elapsed();
    let after = apiserver.sample(processes).await?;
    report.system_cpu_sync = after.system_cpu - before.system_cpu;
    report.apiserver_cpu_sync = after.apiserver_cpu - before.apiserver_cpu;
    report.requests_sync = after.requests.minus(&before.requests);
    println!(
        "all Synced and Healthy   {:>8.1} s",
        report.synced.as_secs_f64()
    );
    phase_line("sync", &before, &after, args.apps);

    let before = apiserver.sample(processes).await?;
    tokio::time::sleep(Duration::from_secs(args.quiet)).await;
    let after = apiserver.sample(processes).await?;
    report.quiet_cpu = after.system_cpu - before.system_cpu;
    report.apiserver_cpu_quiet = after.apiserver_cpu - before.apiserver_cpu;
    report.requests_quiet = after.requests.minus(&before.requests);
    report.steady_rss = processes.rss();
    phase_line("quiet", &before, &after, args.apps);

    let before = apiserver.sample(processes).await?;
    let started = Instant::now();
    let refresh = json!({"metadata": {"annotations": {REFRESH: "normal"}}});
    futures::stream::iter(0..args.apps)
        .map(|i| {
            let apps = apps.clone();
            let refresh = &refresh;
            async move {
                apps.patch(
                    &app_name(i),
                    &PatchParams::default(),
                    &Patch::Merge(refresh),
                )
                .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await?;
    wait_until(&store, args.apps, "refreshed", timeout, started, |app| {
        app.metadata
            .annotations
            .as_ref()
            .is_none_or(|a| !a.contains_key(REFRESH))
    })
    .await?;
    report.refreshed = started.elapsed();
    let after = apiserver.sample(processes).await?;
    report.apiserver_cpu_refresh = after.apiserver_cpu - before.apiserver_cpu;
    report.requests_refresh = after.requests.minus(&before.requests);
    println!(
        "all refreshed            {:>8.1} s",
        report.refreshed.as_secs_f64()
    );
    phase_line("refresh", &before, &after, args.apps);
    report.peak_rss = processes.peak_rss();
    Ok(report)
}

/// The limit: the same objects, server-side applied by a plain client, 16 at a time.
async fn apply_bare(args: &Args, client: &Client, apiserver: &Apiserver) -> Result<Report> {
    let idle = Processes::default();
    let before = apiserver.sample(&idle).await?;
    let started = Instant::now();
    let params = PatchParams::apply("bare").force();
    futures::stream::iter(0..args.apps)
        .map(|i| {
            let client = client.clone();
            let params = params.clone();
            async move {
                let namespace = target_namespace(i);
                Api::<Namespace>::all(client.clone())
                    .patch(
                        &namespace,
                        &params,
                        &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace",
                                             "metadata": {"name": namespace}})),
                    )
                    .await?;
                for object in objects() {
                    let object: DynamicObject = serde_json::from_value(object)?;
                    let types = object.types.clone().context("typed object")?;
                    let gvk = kube::api::GroupVersionKind::try_from(&types)?;
                    let resource = ApiResource::from_gvk(&gvk);
                    let name = object.metadata.name.clone().context("named object")?;
                    Api::<DynamicObject>::namespaced_with(client.clone(), &namespace, &resource)
                        .patch(&name, &params, &Patch::Apply(&object))
                        .await?;
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await?;
    let applied = started.elapsed();
    let after = apiserver.sample(&idle).await?;
    println!("all applied              {:>8.1} s", applied.as_secs_f64());
    phase_line("apply", &before, &after, args.apps);
    let deployments: Api<Deployment> = Api::all(client.clone());
    loop {
        let available = deployments
            .list(&Default::default())
            .await?
            .items
            .iter()
            .filter(|d| {
                d.status
                    .as_ref()
                    .and_then(|s| s.available_replicas)
                    .unwrap_or(0)
                    >= 1
            })
            .count();
        if available >= args.apps {
            break;
        }
        if started.elapsed() > Duration::from_secs(args.timeout) {
            bail!("{available}/{} Deployments available", args.apps);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Comparable with Synced + Healthy: the figures include the work the objects cause (the
    // Deployments' ReplicaSets and Pods), as the GitOps systems' do.
    let available = started.elapsed();
    let after = apiserver.sample(&idle).await?;
    println!(
        "all Deployments available {:>7.1} s",
        available.as_secs_f64()
    );
    phase_line("until available", &before, &after, args.apps);
    Ok(Report {
        applied,
        synced: available,
        apiserver_cpu_sync: after.apiserver_cpu - before.apiserver_cpu,
        requests_sync: after.requests.minus(&before.requests),
        ..Report::default()
    })
}

// ---- the systems' processes ----

/// The processes of one system, with their logs and a sampler of their summed RSS.
#[derive(Default)]
struct Processes {
    running: Vec<(&'static str, Child, PathBuf)>,
    highest: Arc<AtomicUsize>,
}

impl Processes {
    fn spawn(&mut self, name: &'static str, mut command: Command, work: &Path) -> Result<()> {
        let log_path = work.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", command.get_program()))?;
        self.running.push((name, child, log_path));
        Ok(())
    }

    /// Samples the summed RSS every 200 ms while the processes live.
    fn sample_rss(&self) {
        let pids: Vec<u32> = self.running.iter().map(|(_, c, _)| c.id()).collect();
        let highest = self.highest.clone();
        tokio::spawn(async move {
            loop {
                let rss: Vec<usize> = pids
                    .iter()
                    .filter_map(|pid| pid_status_bytes(*pid, "VmRSS").ok())
                    .collect();
                if rss.is_empty() {
                    return;
                }
                highest.fetch_max(rss.iter().sum(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }

    fn cpu(&self) -> f64 {
        self.running
            .iter()
            .map(|(_, child, _)| cpu_with_children(child.id()).unwrap_or(0.0))
            .sum()
    }

    fn rss(&self) -> usize {
        self.running
            .iter()
            .filter_map(|(_, child, _)| pid_status_bytes(child.id(), "VmRSS").ok())
            .sum()
    }

    fn peak_rss(&self) -> usize {
        self.highest.load(Ordering::Relaxed)
    }

    fn check_alive(&mut self) -> Result<()> {
        for (name, child, _) in &mut self.running {
            if let Some(status) = child.try_wait()? {
                bail!("{name} exited: {status}");
            }
        }
        Ok(())
    }

    fn print_logs(&self) {
        for (name, _, log) in &self.running {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            eprintln!("--- {name} (last lines, newest first)\n{}", tail.join("\n"));
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.running {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// CPU seconds of a process and of its children it has waited for (git runs of the repo-server).
fn cpu_with_children(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    Ok(fields.iter().sum::<f64>() / 100.0)
}

async fn start_ferry(
    args: &Args,
    client: &Client,
    kubeconfig: &Path,
    work: &Path,
) -> Result<Processes> {
    ferry_runtime::install_crds(client, "versus-argocd").await?;
    prepare_namespace(client).await?;
    let binary = match &args.ferry_controller {
        Some(binary) => binary.clone(),
        None => beside_this_program("ferry-controller")?,
    };
    let mut command = Command::new(binary);
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
        .args(&args.ferry_arg)
        .env("PATH", ferry_sandbox::toolchain::search_path());
    let mut processes = Processes::default();
    processes.spawn("ferry-controller", command, work)?;
    processes.sample_rss();
    tokio::time::sleep(Duration::from_secs(1)).await;
    processes.check_alive()?;
    Ok(processes)
}

async fn start_argocd(
    args: &Args,
    client: &Client,
    kubeconfig: &Path,
    work: &Path,
) -> Result<Processes> {
    let crds = args
        .argocd_crds
        .as_ref()
        .context("--argocd-crds is needed to measure Argo CD")?;
    install_argocd_crds(client, crds).await?;
    prepare_namespace(client).await?;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), NAMESPACE);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "argocd-secret", "labels": {"app.kubernetes.io/part-of": "argocd"}},
                "stringData": {"server.secretkey": "versus-argocd-benchmark-key"}
            }))?,
        )
        .await?;
    let components = match &args.argocd_components {
        Some(binary) => binary.clone(),
        None => ferry_sandbox::toolchain::bin_dir().join("argocd-components"),
    };
    let [redis_port, repo_port, repo_metrics, controller_metrics] = free_ports()?;
    let redis = format!("127.0.0.1:{redis_port}");
    let mut processes = Processes::default();
    let mut command = Command::new(&args.redis);
    command.args([
        "--port",
        &redis_port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]);
    processes.spawn("redis", command, work)?;

    let mut command = Command::new(&components);
    command
        .args(["repo-server", "--disable-tls", "--address", "127.0.0.1"])
        .args(["--port", &repo_port.to_string()])
        .args(["--metrics-address", "127.0.0.1"])
        .args(["--metrics-port", &repo_metrics.to_string()])
        .args(["--redis", &redis])
        .env("ARGOCD_GPG_ENABLED", "false")
        .env("TMPDIR", work)
        .env("HOME", work)
        .env("PATH", ferry_sandbox::toolchain::search_path());
    processes.spawn("argocd-repo-server", command, work)?;

    let mut command = Command::new(&components);
    command
        .args([
            "application-controller",
            "--namespace",
            NAMESPACE,
            "--kubeconfig",
        ])
        .arg(kubeconfig)
        .args(["--repo-server", &format!("127.0.0.1:{repo_port}")])
        .arg("--repo-server-plaintext")
        .args(["--metrics-port", &controller_metrics.to_string()])
        .args(["--redis", &redis])
        .env("HOME", work);
    processes.spawn("argocd-application-controller", command, work)?;
    processes.sample_rss();
    tokio::time::sleep(Duration::from_secs(2)).await;
    processes.check_alive()?;
    Ok(processes)
}

async fn install_argocd_crds(client: &Client, dir: &Path) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for file in ["application-crd.yaml", "appproject-crd.yaml"] {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        crds.create(&PostParams::default(), &crd).await?;
    }
    for name in ["applications.argoproj.io", "appprojects.argoproj.io"] {
        let established = kube::runtime::conditions::is_crd_established();
        kube::runtime::wait::await_condition(crds.clone(), name, established).await?;
    }
    Ok(())
}

/// The control namespace with argocd-cm and the default project, as both systems expect.
async fn prepare_namespace(client: &Client) -> Result<()> {
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?,
        )
        .await?;
    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), NAMESPACE)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "argocd-cm", "labels": {"app.kubernetes.io/part-of": "argocd"}}
            }))?,
        )
        .await?;
    let resource = ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        "argoproj.io",
        "v1alpha1",
        "AppProject",
    ));
    Api::<DynamicObject>::namespaced_with(client.clone(), NAMESPACE, &resource)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
                "metadata": {"name": "default", "namespace": NAMESPACE},
                "spec": {
                    "sourceRepos": ["*"],
                    "destinations": [{"server": "*", "namespace": "*"}],
                    "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]
                }
            }))?,
        )
        .await?;
    Ok(())
}

/// The sandbox as a cluster Secret with the benchmark's own credentials, the destination of every
/// app: Argo CD's in-cluster destination works only inside a pod.
async fn register_cluster(client: &Client, kubeconfig: &Path) -> Result<String> {
    use base64::Engine;
    let config = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let cluster = config.clusters[0].cluster.as_ref().context("a cluster")?;
    let user = config.auth_infos[0].auth_info.as_ref().context("a user")?;
    let server = cluster.server.clone().context("a server")?;
    let file = |path: &Option<String>| -> Result<String> {
        let path = path.as_deref().context("a certificate file")?;
        Ok(base64::engine::general_purpose::STANDARD.encode(std::fs::read(path)?))
    };
    let tls = json!({
        "caData": file(&cluster.certificate_authority)?,
        "certData": file(&user.client_certificate)?,
        "keyData": file(&user.client_key)?,
    });
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), NAMESPACE)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "sandbox",
                             "labels": {"argocd.argoproj.io/secret-type": "cluster"}},
                "stringData": {"name": "sandbox", "server": server,
                               "config": json!({"tlsClientConfig": tls}).to_string()}
            }))?,
        )
        .await?;
    Ok(server)
}

fn free_ports<const N: usize>() -> Result<[u16; N]> {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()?;
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<_>>()?;
    Ok(ports.try_into().expect("N ports"))
}

fn beside_this_program(name: &str) -> Result<PathBuf> {
    Ok(std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .context("locating the target directory")?
        .join(name))
}

// ---- the workload ----

fn app_name(i: usize) -> String {
    format!("app-{i:04}")
}

fn target_namespace(i: usize) -> String {
    format!("bench-{i:04}")
}

fn application(i: usize, url: &str, destination: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": app_name(i), "namespace": NAMESPACE},
        "spec": {
            "project": "default",
            "source": {"repoURL": url, "path": "app", "targetRevision": "HEAD"},
            "destination": {"server": destination, "namespace": target_namespace(i)},
            "syncPolicy": {"automated": {"prune": true, "selfHeal": true},
                           "syncOptions": ["CreateNamespace=true"]}
        }
    })
}

/// The ten objects of every app.
fn objects() -> Vec<Value> {
    let mut objects = vec![
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
    ];
    objects.extend((0..8).map(|i| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("config-{i}")},
               "data": {"index": i.to_string(), "settings.yaml": "replicas: 3\nlog_level: info\n"}})
    }));
    objects
}

fn write_app(repo: &GitRepo) -> Result<()> {
    for object in objects() {
        let name = format!(
            "app/{}-{}.yaml",
            object["kind"].as_str().unwrap_or("object").to_lowercase(),
            object["metadata"]["name"].as_str().unwrap_or("object")
        );
        repo.write(&name, serde_yaml::to_string(&object)?)?;
    }
    Ok(())
}

// ---- observing ----

fn watch(apps: Api<DynamicObject>, resource: ApiResource) -> reflector::Store<DynamicObject> {
    let writer = reflector::store::Writer::new(resource);
    let reader = writer.as_reader();
    let stream = watcher(apps, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    tokio::spawn(stream.for_each(|_| async {}));
    reader
}

fn status<'a>(app: &'a DynamicObject, pointer: &str) -> Option<&'a str> {
    app.data
        .pointer(&format!("/status{pointer}"))
        .and_then(Value::as_str)
}

/// Checks the watched apps every 200 ms until all `expected` satisfy `done`.
async fn wait_until(
    store: &reflector::Store<DynamicObject>,
    expected: usize,
    what: &str,
    timeout: Duration,
    started: Instant,
    done: impl Fn(&DynamicObject) -> bool,
) -> Result<()> {
    let mut reported = Instant::now();
    loop {
        let apps = store.state();
        let ready = apps.iter().filter(|a| done(a)).count();
        if apps.len() == expected && ready == expected {
            return Ok(());
        }
        if reported.elapsed() > Duration::from_secs(10) {
            println!(
                "  {ready}/{expected} {what} after {:.0?}",
                started.elapsed()
            );
            reported = Instant::now();
        }
        if started.elapsed() > timeout {
            bail!("only {ready}/{expected} apps {what} after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The sandbox's kube-apiserver: its process (for CPU) and its metrics (for requests).
struct Apiserver {
    pid: u32,
    client: Client,
}

struct Sample {
    apiserver_cpu: f64,
    system_cpu: f64,
    requests: Requests,
}

impl Apiserver {
    fn of(sandbox: &ferry_sandbox::Sandbox, client: &Client) -> Result<Self> {
        Ok(Self {
            pid: apiserver_pid(sandbox)?,
            client: client.clone(),
        })
    }

    async fn sample(&self, processes: &Processes) -> Result<Sample> {
        let request = http::Request::get("/metrics").body(Vec::new())?;
        let text = self.client.request_text(request).await?;
        Ok(Sample {
            apiserver_cpu: pid_cpu_seconds(self.pid)?,
            system_cpu: processes.cpu(),
            requests: Requests::parse(&text),
        })
    }
}

fn phase_line(phase: &str, before: &Sample, after: &Sample, apps: usize) {
    let requests = after.requests.minus(&before.requests);
    println!(
        "  {phase}: system CPU {:.1} s, kube-apiserver CPU {:.1} s, {:.1} requests per object; {}",
        after.system_cpu - before.system_cpu,
        after.apiserver_cpu - before.apiserver_cpu,
        requests.total() / (apps * 10) as f64,
        requests.describe()
    );
    // Per app, by verb, resource and response code, most first.
    for (what, n) in requests.detail() {
        println!("    {:>8.2} per app  {what}", n / apps as f64);
    }
}

fn print_table(args: &Args, reports: &[(System, Report)]) {
    let objects = (args.apps * 10) as f64;
    let minutes = args.quiet as f64 / 60.0;
    let per_app_minute = move |amount: f64| amount / args.apps as f64 / minutes;
    type Cell<'a> = Box<dyn Fn(&Report) -> String + 'a>;
    // (row, whether the bare client has a figure for it, the figure)
    let rows: Vec<(&str, bool, Cell)> = vec![
        (
            "apply → all Synced + Healthy (bare: Deployments available)",
            true,
            Box::new(|r| format!("{:.1} s", r.synced.as_secs_f64())),
        ),
        (
            "apply → all Synced, any health (bare: all objects applied)",
            true,
            Box::new(|r| format!("{:.1} s", r.applied.as_secs_f64())),
        ),
        (
            "system CPU during that",
            false,
            Box::new(|r| format!("{:.1} s", r.system_cpu_sync)),
        ),
        (
            "kube-apiserver CPU during that",
            true,
            Box::new(|r| format!("{:.1} s", r.apiserver_cpu_sync)),
        ),
        (
            "API requests per synced object",
            true,
            Box::new(move |r| format!("{:.1}", r.requests_sync.total() / objects)),
        ),
        ("peak RSS, whole run", false, Box::new(|r| mib(r.peak_rss))),
        ("steady RSS", false, Box::new(|r| mib(r.steady_rss))),
        (
            "quiet CPU per app per minute",
            false,
            Box::new(move |r| format!("{:.2} ms", per_app_minute(r.quiet_cpu * 1000.0))),
        ),
        (
            "kube-apiserver CPU per app per minute, quiet",
            false,
            Box::new(move |r| format!("{:.2} ms", per_app_minute(r.apiserver_cpu_quiet * 1000.0))),
        ),
        (
            "API requests per app per minute, quiet",
            false,
            Box::new(move |r| format!("{:.2}", per_app_minute(r.requests_quiet.total()))),
        ),
        (
            "refresh all → all compared",
            false,
            Box::new(|r| format!("{:.1} s", r.refreshed.as_secs_f64())),
        ),
        (
            "kube-apiserver CPU for the refresh",
            false,
            Box::new(|r| format!("{:.1} s", r.apiserver_cpu_refresh)),
        ),
        (
            "API requests per app for the refresh",
            false,
            Box::new(move |r| format!("{:.1}", r.requests_refresh.total() * 10.0 / objects)),
        ),
    ];
    let names: Vec<String> = reports.iter().map(|(s, _)| format!("{s:?}")).collect();
    println!();
    println!(
        "| {} apps × 10 objects | {} |",
        args.apps,
        names.join(" | ")
    );
    println!("|---|{}", "---|".repeat(reports.len()));
    for (label, bare, value) in rows {
        let cells: Vec<String> = reports
            .iter()
            .map(|(system, r)| {
                if *system == System::Bare && !bare {
                    String::new()
                } else {
                    value(r)
                }
            })
            .collect();
        println!("| {label} | {} |", cells.join(" | "));
    }
}
