//! How fast a sandbox with a real node starts and runs pods: prints the start time cold (no base
//! images in the cache, a fresh containerd) and warm (stopped and started again), then how long
//! busybox pods take from create to Running on the real node, one pod alone and ten at once.
//!
//! cargo run -p ferry-sandbox --example real_node_bench -- --runs 3
//!
//! Needs root and the host's real node free (`ferry-sandbox --name real down` first).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;
use ferry_sandbox::real_node::{BUSYBOX_IMAGE, NODE_LABEL, TAINT_KEY};
use ferry_sandbox::{Sandbox, UpOptions, toolchain};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::json;

const SANDBOX: &str = "bench-real";
const NAMESPACE: &str = "bench";

#[derive(Parser)]
struct Args {
    /// Times to measure each figure.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Leave the sandbox running afterwards.
    #[arg(long)]
    keep: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let sandbox = Sandbox::named(SANDBOX)?;
    let opts = UpOptions {
        real_node: true,
        ..Default::default()
    };

    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..args.runs {
        sandbox.down()?;
        // Cold: the base images are built again and containerd starts with an empty store.
        let _ = std::fs::remove_dir_all(toolchain::cache_dir().join("images"));
        let _ = std::fs::remove_dir_all(sandbox.dir());
        cold.push(timed_up(&sandbox, &opts).await?);
        sandbox.down()?;
        warm.push(timed_up(&sandbox, &opts).await?);
    }
    println!("sandbox start with a real node, cold: {}", seconds(&cold));
    println!("sandbox start with a real node, warm: {}", seconds(&warm));

    let client = sandbox.client().await?;
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await?;
    let pods: Api<Pod> = Api::namespaced(client, NAMESPACE);
    for count in [1, 10] {
        let mut times = Vec::new();
        for run in 0..args.runs {
            times.push(pods_running(&pods, count, run).await?);
        }
        println!(
            "{count} pod(s) created -> all Running on the real node: {}",
            seconds(&times)
        );
    }

    if !args.keep {
        sandbox.down()?;
    }
    Ok(())
}

async fn timed_up(sandbox: &Sandbox, opts: &UpOptions) -> Result<Duration> {
    let started = Instant::now();
    sandbox.up(opts).await?;
    Ok(started.elapsed())
}

/// Creates `count` busybox pods at once and waits until all run; then deletes them.
async fn pods_running(pods: &Api<Pod>, count: usize, run: usize) -> Result<Duration> {
    let label = format!("run-{count}-{run}");
    let started = Instant::now();
    for i in 0..count {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("{label}-{i}"), "labels": {"bench": label}},
            "spec": {
                "terminationGracePeriodSeconds": 0,
                "nodeSelector": {NODE_LABEL: "true"},
                "tolerations": [{"key": TAINT_KEY, "operator": "Exists"}],
                "containers": [{"name": "main", "image": BUSYBOX_IMAGE, "command": ["sleep", "3600"]}],
            },
        }))?;
        pods.create(&PostParams::default(), &pod).await?;
    }
    let selector = ListParams::default().labels(&format!("bench={label}"));
    loop {
        let list = pods.list(&selector).await?;
        let running = list
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        if running == count {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("{running} of {count} pods running after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    pods.delete_collection(&DeleteParams::default(), &selector)
        .await?;
    while !pods.list(&selector).await?.items.is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(took)
}

fn seconds(times: &[Duration]) -> String {
    let mut sorted = times.to_vec();
    sorted.sort();
    let each: Vec<String> = times
        .iter()
        .map(|t| format!("{:.2} s", t.as_secs_f64()))
        .collect();
    format!(
        "median {:.2} s ({})",
        sorted[sorted.len() / 2].as_secs_f64(),
        each.join(", ")
    )
}
