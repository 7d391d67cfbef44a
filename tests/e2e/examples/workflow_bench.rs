//! Argo Workflows' orchestration by `ferry-workflow-controller`: the binary, a process of its
//! own for one namespace, started as the e2e stories start it (`ferry_e2e::ci`).
//!
//! On kwok (the default): `--workflows` Workflows of `--steps` sequential steps (a container
//! template each), submitted 16 creates at a time into a fresh sandbox, whose simulated nodes run
//! no container: this program plays the kubelet's last part, ending each pod Succeeded (exit code
//! 0) as soon as its watch sees kwok make it Running (`ferry_testkit::kwok::end_pod`). After a
//! one-step warm-up workflow, prints the time from the first submit to all Succeeded (and when
//! the first, the median and the last workflow finished), workflows per minute and steps per
//! second, the controller's CPU and RSS (peak; steady after `--quiet` seconds), kube-apiserver's
//! CPU, and the requests it served by verb, resource and code, per step.
//!
//! `--real-node`: on the shared `real` sandbox (kubelet and containerd on this host) with the
//! debug executor image (`scripts/executor-image --profile debug --push`), `--runs` times: a
//! Workflow of `--steps` sequential steps each running busybox `true`, then as many bare pods
//! of busybox `true` one after the other, each created once the one before Succeeded (seen by a
//! watch). Prints the wall time per step of each and, from a watch of the pods, where it goes:
//! pod created → Succeeded, and Succeeded → the next pod created (for the workflow, the
//! controller's reaction).
//!
//! cargo build -p ferry-workflow --bin ferry-workflow-controller
//! cargo run -p ferry-e2e --example workflow_bench -- --workflows 100 --steps 10
//! cargo run -p ferry-e2e --example workflow_bench -- --real-node --steps 10   (root)

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use ferry_e2e::ci::{WorkflowController, executor_image, registry_pull_secret};
use ferry_sandbox::Sandbox;
use ferry_sandbox::registry::Registry;
use ferry_testkit::kube::TestContext;
use ferry_testkit::kwok::{self, Ending};
use ferry_testkit::process::{Requests, apiserver_pid, mib, pid_cpu_seconds, pid_status_bytes};
use ferry_testkit::real_node::{self, BUSYBOX_IMAGE};
use ferry_types::Workflow;
use ferry_types::workflow::{Phase, labels};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// Workflows submitted at once (kwok).
    #[arg(long, default_value_t = 100)]
    workflows: usize,
    /// Sequential steps of each workflow.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Seconds of quiet after the run, before the steady RSS is read (kwok).
    #[arg(long, default_value_t = 30)]
    quiet: u64,
    /// Measure the per-step overhead on the real node instead of kwok.
    #[arg(long)]
    real_node: bool,
    /// Times to run the workflow and the bare pods (real node).
    #[arg(long, default_value_t = 2)]
    runs: usize,
    /// The kwok sandbox, started fresh and stopped afterwards unless `--keep`.
    #[arg(long, default_value = "workflow-bench")]
    sandbox: String,
    #[arg(long)]
    keep: bool,
    /// Give up after this many seconds waiting for a phase.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.real_node {
        return on_real_node(&args).await;
    }
    let sandbox = Sandbox::named(&args.sandbox)?;
    sandbox.down()?;
    let result = async {
        let ctx = TestContext::in_sandbox(&sandbox).await?;
        on_kwok(&args, &sandbox, &ctx).await
    }
    .await;
    if !args.keep {
        sandbox.down()?;
    }
    result
}

async fn on_kwok(args: &Args, sandbox: &Sandbox, ctx: &TestContext) -> Result<()> {
    let client = ctx.client();
    ferry_runtime::install_workflow_crds(&client, "workflow-bench").await?;
    let controller = WorkflowController::for_namespace(ctx, "ferry.local/ferry-exec:kwok")?;
    let pid = controller.pid();
    let kubelet = tokio::spawn(end_running_pods(ctx.api()));
    let workflows: Api<Workflow> = ctx.api();
    let timeout = Duration::from_secs(args.timeout);

    let warm_up = chain("warm-up", 1, "busybox", &json!({}))?;
    workflows.create(&PostParams::default(), &warm_up).await?;
    all_succeeded(&workflows, &["warm-up".into()], timeout, Instant::now())
        .await
        .with_context(|| log_of(&controller))?;
    println!(
        "controller RSS after a warm-up workflow {:>10}",
        mib(pid_status_bytes(pid, "VmRSS")?)
    );

    let apiserver = apiserver_pid(sandbox)?;
    let cpu_before = pid_cpu_seconds(pid)?;
    let apiserver_before = pid_cpu_seconds(apiserver)?;
    let requests_before = requests(&client).await?;
    let names: Vec<String> = (0..args.workflows).map(|i| format!("wf-{i:04}")).collect();
    let started = Instant::now();
    futures::stream::iter(&names)
        .map(|name| {
            let workflows = workflows.clone();
            async move {
                let workflow = chain(name, args.steps, "busybox", &json!({}))?;
                workflows.create(&PostParams::default(), &workflow).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await?;
    let submitted = started.elapsed();
    let finished = all_succeeded(&workflows, &names, timeout, started)
        .await
        .with_context(|| log_of(&controller))?;
    let took = started.elapsed();
    let cpu = pid_cpu_seconds(pid)? - cpu_before;
    let apiserver_cpu = pid_cpu_seconds(apiserver)? - apiserver_before;
    let served = requests(&client).await?.minus(&requests_before);
    kubelet.abort();

    let steps = (args.workflows * args.steps) as f64;
    let secs = took.as_secs_f64();
    println!(
        "{} workflows × {} steps submitted      {:>8.2} s",
        args.workflows,
        args.steps,
        submitted.as_secs_f64()
    );
    println!("all Succeeded                          {secs:>8.2} s after the first submit");
    println!(
        "  finished: first {:.2} s, median {:.2} s, last {:.2} s",
        finished[0].as_secs_f64(),
        finished[finished.len() / 2].as_secs_f64(),
        finished[finished.len() - 1].as_secs_f64()
    );
    println!(
        "throughput                             {:>8.1} workflows/min, {:.1} steps/s",
        args.workflows as f64 * 60.0 / secs,
        steps / secs
    );
    println!(
        "controller CPU                         {cpu:>8.2} s ({:.1} ms per step)",
        cpu * 1000.0 / steps
    );
    println!("kube-apiserver CPU                     {apiserver_cpu:>8.2} s");
    println!(
        "controller RSS peak                    {:>10}",
        mib(pid_status_bytes(pid, "VmHWM")?)
    );
    println!(
        "API requests                           {} ({:.1} per step)",
        served.describe(),
        served.total() / steps
    );
    for (what, n) in served.detail() {
        println!("  {:>8.2} per step  {what}", n / steps);
    }

    let cpu_before = pid_cpu_seconds(pid)?;
    tokio::time::sleep(Duration::from_secs(args.quiet)).await;
    println!(
        "quiet {} s: controller CPU {:.2} s, RSS steady {}, peak {}",
        args.quiet,
        pid_cpu_seconds(pid)? - cpu_before,
        mib(pid_status_bytes(pid, "VmRSS")?),
        mib(pid_status_bytes(pid, "VmHWM")?)
    );
    Ok(())
}

/// A Workflow `name` of `steps` sequential steps, each a pod of `image` running `true`, with
/// `spec` (placement, pull secrets) merged into its spec.
fn chain(name: &str, steps: usize, image: &str, spec: &Value) -> Result<Workflow> {
    let groups: Vec<Value> = (0..steps)
        .map(|i| json!([{"name": format!("s{i}"), "template": "step"}]))
        .collect();
    let mut workflow = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "steps": groups},
                {"name": "step", "container": {"image": image, "command": ["true"]}},
            ],
        },
    });
    for (field, value) in spec.as_object().into_iter().flatten() {
        workflow["spec"][field] = value.clone();
    }
    Ok(serde_json::from_value(workflow)?)
}

/// The kubelet's last part for kwok: each workflow pod a watch sees kwok make Running is ended
/// Succeeded with exit code 0 (no executor report: the steps declare no outputs), the status
/// writes sent concurrently.
async fn end_running_pods(pods: Api<Pod>) -> Result<()> {
    let mut ended = HashSet::new();
    let config = watcher::Config::default().labels(labels::WORKFLOW);
    let mut seen = std::pin::pin!(watcher(pods.clone(), config).applied_objects());
    while let Some(pod) = seen.try_next().await? {
        if kwok::running(&pod) && ended.insert(pod.name_any()) {
            let pods = pods.clone();
            tokio::spawn(async move {
                let ending = Ending {
                    exit_code: 0,
                    message: String::new(),
                };
                if let Err(err) = kwok::end_pod(&pods, &pod, ending).await {
                    eprintln!("ending pod {}: {err}", pod.name_any());
                }
            });
        }
    }
    Ok(())
}

/// Waits (watching) until every workflow of `names` Succeeded, printing progress every 10 s;
/// returns when each finished after `started`, sorted. A workflow that fails is an error.
async fn all_succeeded(
    workflows: &Api<Workflow>,
    names: &[String],
    timeout: Duration,
    started: Instant,
) -> Result<Vec<Duration>> {
    let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
    let mut finished: HashMap<String, Duration> = HashMap::new();
    let mut seen =
        std::pin::pin!(watcher(workflows.clone(), watcher::Config::default()).applied_objects());
    let mut reported = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    while finished.len() < wanted.len() {
        let next = tokio::time::timeout_at(deadline, seen.try_next()).await;
        let Ok(next) = next else {
            bail!(
                "{} of {} workflows Succeeded after {timeout:?}",
                finished.len(),
                wanted.len()
            );
        };
        let workflow = next?.context("the watch of workflows ended")?;
        let name = workflow.name_any();
        let phase = workflow.status.as_ref().and_then(|s| s.phase);
        if !wanted.contains(name.as_str()) || finished.contains_key(&name) {
            continue;
        }
        match phase {
            Some(Phase::Succeeded) => {
                finished.insert(name, started.elapsed());
            }
            Some(phase) if phase.is_completed() => {
                bail!("workflow {name} ended {phase:?}: {:#?}", workflow.status)
            }
            _ => {}
        }
        if reported.elapsed() > Duration::from_secs(10) {
            println!(
                "  {}/{} Succeeded after {:.0?}",
                finished.len(),
                wanted.len(),
                started.elapsed()
            );
            reported = Instant::now();
        }
    }
    let mut times: Vec<Duration> = finished.into_values().collect();
    times.sort();
    Ok(times)
}

/// The context of a workflow that did not succeed.
fn log_of(controller: &WorkflowController) -> String {
    format!("the controller's log:\n{}", controller.log())
}

/// The requests the sandbox's kube-apiserver served so far.
async fn requests(client: &kube::Client) -> Result<Requests> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    Ok(Requests::parse(&client.request_text(request).await?))
}

async fn on_real_node(args: &Args) -> Result<()> {
    let ctx = TestContext::on_real_node().await?;
    let registry = Registry::of(&Sandbox::named(real_node::SANDBOX)?).up()?;
    let building = Instant::now();
    let image = tokio::task::spawn_blocking(executor_image).await??;
    println!(
        "executor image {image} built and pushed in {:.0} s",
        building.elapsed().as_secs_f64()
    );
    ctx.api::<Secret>()
        .create(&PostParams::default(), &registry_pull_secret(&registry)?)
        .await?;
    ferry_runtime::install_workflow_crds(&ctx.client(), "workflow-bench").await?;
    let controller = WorkflowController::for_namespace(&ctx, &image)?;
    let pods: Api<Pod> = ctx.api();
    let workflows: Api<Workflow> = ctx.api();
    let times = PodTimes::default();
    let watching = tokio::spawn(times.clone().record(pods.clone()));
    let mut spec = real_node::placement();
    spec["imagePullSecrets"] = json!([{"name": "sandbox-registry"}]);
    let timeout = Duration::from_secs(args.timeout);

    // The images on the node and the controller's watches up before anything is timed.
    run_chain(&workflows, &pods, &times, "warm-up", 1, &spec, timeout)
        .await
        .with_context(|| log_of(&controller))?;
    run_bare(&pods, &times, "warm-up", 1, timeout).await?;

    let mut per_step = Vec::new();
    let mut per_pod = Vec::new();
    for run in 0..args.runs {
        let name = format!("chain-{run}");
        let chain = run_chain(&workflows, &pods, &times, &name, args.steps, &spec, timeout)
            .await
            .with_context(|| log_of(&controller))?;
        let bare = run_bare(&pods, &times, &format!("bare-{run}"), args.steps, timeout).await?;
        let steps = args.steps as f64;
        println!(
            "run {}: workflow of {} steps {:.2} s ({:.2} s per step): pod created → Succeeded {:.2} s, \
             Succeeded → next pod created {:.2} s; submit → first pod {:.2} s, last pod Succeeded → \
             workflow Succeeded {:.2} s",
            run + 1,
            args.steps,
            chain.wall,
            chain.wall / steps,
            chain.lifetime,
            chain.gap,
            chain.lead,
            chain.tail
        );
        println!(
            "run {}: {} bare pods one after the other {:.2} s ({:.2} s per pod): created → \
             Succeeded {:.2} s, Succeeded → next created {:.2} s",
            run + 1,
            args.steps,
            bare.wall,
            bare.wall / steps,
            bare.lifetime,
            bare.gap
        );
        per_step.push(chain.wall / steps);
        per_pod.push(bare.wall / steps);
    }
    let overhead: Vec<String> = (per_step.iter().zip(&per_pod))
        .map(|(step, pod)| format!("{:.2} s", step - pod))
        .collect();
    println!(
        "per-step overhead of the workflow over a bare pod: {}",
        overhead.join(", ")
    );
    watching.abort();
    Ok(())
}

/// When a watch first saw each pod (by name), and first saw it finished.
type Seen = HashMap<String, (Instant, Option<Instant>)>;

/// When a watch first saw each pod, and first saw it finished (Succeeded or Failed).
#[derive(Clone, Default)]
struct PodTimes(Arc<Mutex<Seen>>);

impl PodTimes {
    async fn record(self, pods: Api<Pod>) -> Result<()> {
        let mut seen = std::pin::pin!(watcher(pods, watcher::Config::default()).applied_objects());
        while let Some(pod) = seen.try_next().await? {
            let now = Instant::now();
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            let finished = matches!(phase, Some("Succeeded" | "Failed"));
            let mut times = self.0.lock().unwrap();
            let entry = times.entry(pod.name_any()).or_insert((now, None));
            if finished && entry.1.is_none() {
                entry.1 = Some(now);
            }
        }
        Ok(())
    }

    /// The pods of `names`, in the order they were created: when each was seen, and finished
    /// (waiting up to 5 s for this watch to see what another saw).
    async fn of(&self, names: &[String]) -> Result<Vec<(Instant, Instant)>> {
        for _ in 0..250 {
            let found: Option<Vec<(Instant, Instant)>> = {
                let times = self.0.lock().unwrap();
                (names.iter())
                    .map(|name| match times.get(name) {
                        Some((created, Some(finished))) => Some((*created, *finished)),
                        _ => None,
                    })
                    .collect()
            };
            if let Some(mut found) = found {
                found.sort();
                return Ok(found);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("the pods {names:?} were not all seen finished")
    }
}

/// Where the time of pods run one after the other went, in seconds.
struct Sequence {
    /// From the start to the end (the workflow seen Succeeded, the last pod seen Succeeded).
    wall: f64,
    /// Mean of created → Succeeded.
    lifetime: f64,
    /// Mean of one pod Succeeded → the next created.
    gap: f64,
    /// Start → the first pod created.
    lead: f64,
    /// The last pod Succeeded → the end.
    tail: f64,
}

impl Sequence {
    fn of(started: Instant, ended: Instant, pods: &[(Instant, Instant)]) -> Self {
        let mean = |spans: Vec<Duration>| {
            spans.iter().map(Duration::as_secs_f64).sum::<f64>() / spans.len().max(1) as f64
        };
        Self {
            wall: (ended - started).as_secs_f64(),
            lifetime: mean(pods.iter().map(|(c, f)| *f - *c).collect()),
            gap: mean(pods.windows(2).map(|w| w[1].0 - w[0].1).collect()),
            lead: (pods[0].0 - started).as_secs_f64(),
            tail: (ended - pods[pods.len() - 1].1).as_secs_f64(),
        }
    }
}

/// Runs the workflow `name` of `steps` steps (busybox `true`) to Succeeded.
async fn run_chain(
    workflows: &Api<Workflow>,
    pods: &Api<Pod>,
    times: &PodTimes,
    name: &str,
    steps: usize,
    spec: &Value,
    timeout: Duration,
) -> Result<Sequence> {
    let workflow = chain(name, steps, BUSYBOX_IMAGE, spec)?;
    let started = Instant::now();
    workflows.create(&PostParams::default(), &workflow).await?;
    all_succeeded(workflows, &[name.to_string()], timeout, started).await?;
    let ended = Instant::now();
    let selector = format!("{}={name}", labels::WORKFLOW);
    let names: Vec<String> = (pods.list(&kube::api::ListParams::default().labels(&selector)))
        .await?
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    if names.len() != steps {
        bail!("workflow {name} ran {} pods, not {steps}", names.len());
    }
    Ok(Sequence::of(started, ended, &times.of(&names).await?))
}

/// Runs `count` bare pods of busybox `true` on the real node one after the other, each created
/// once a watch saw the one before Succeeded.
async fn run_bare(
    pods: &Api<Pod>,
    times: &PodTimes,
    prefix: &str,
    count: usize,
    timeout: Duration,
) -> Result<Sequence> {
    let placement = real_node::placement();
    let started = Instant::now();
    let mut names = Vec::new();
    for i in 0..count {
        let name = format!("{prefix}-{i}");
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "restartPolicy": "Never",
                "nodeSelector": placement["nodeSelector"],
                "tolerations": placement["tolerations"],
                "containers": [{"name": "main", "image": BUSYBOX_IMAGE, "command": ["true"]}],
            },
        }))?;
        pods.create(&PostParams::default(), &pod).await?;
        let done =
            kube::runtime::wait::await_condition(pods.clone(), &name, |pod: Option<&Pod>| {
                let phase = pod.and_then(|p| p.status.as_ref()?.phase.as_deref());
                matches!(phase, Some("Succeeded" | "Failed"))
            });
        let pod = tokio::time::timeout(timeout, done)
            .await
            .with_context(|| format!("pod {name} did not finish in {timeout:?}"))??;
        let phase = pod.and_then(|p| p.status?.phase);
        if phase.as_deref() != Some("Succeeded") {
            bail!("pod {name} ended {phase:?}");
        }
        names.push(name);
    }
    let ended = Instant::now();
    Ok(Sequence::of(started, ended, &times.of(&names).await?))
}
