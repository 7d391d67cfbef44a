//! How the cluster cache scales: creates `--apps` × `--objects` ConfigMaps (tracked by label) in
//! a sandbox of its own, starts a cache over the whole cluster and prints the time to initial
//! sync, what is cached, its approximate size, the process RSS, and lookup and event latencies.
//!
//! cargo run --release -p ferry-cache --example cache_bench -- --apps 1000 --objects 10

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use ferry_cache::{CacheConfig, Change, ClusterCache, ResourceKey, TrackingMethod};
use ferry_sandbox::{Sandbox, UpOptions};
use ferry_testkit::process::{mib, status_bytes};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

const NAMESPACE: &str = "bench";

#[derive(Parser)]
struct Args {
    /// Applications to simulate.
    #[arg(long, default_value_t = 1000)]
    apps: usize,
    /// ConfigMaps per application.
    #[arg(long, default_value_t = 10)]
    objects: usize,
    /// Requests in flight while creating objects.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Leave the `bench` sandbox running afterwards.
    #[arg(long)]
    keep: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let sandbox = Sandbox::named("bench")?;
    let started = Instant::now();
    sandbox.up(&UpOptions::default()).await?;
    println!("sandbox up                 {:>10.2?}", started.elapsed());
    let result = run(&args, sandbox.client().await?).await;
    if !args.keep {
        sandbox.down()?;
    }
    result
}

async fn run(args: &Args, client: kube::Client) -> Result<()> {
    create_objects(args, &client).await?;

    let rss_before = status_bytes("VmRSS")?;
    let started = Instant::now();
    let config = CacheConfig {
        tracking: TrackingMethod::label(),
        ..CacheConfig::default()
    };
    let cache = ClusterCache::start(client.clone(), config).await?;
    let sync = started.elapsed();
    let rss_after = status_bytes("VmRSS")?;
    let rss_peak = status_bytes("VmHWM")?;
    let stats = cache.stats();
    let configmaps = stats
        .kinds
        .iter()
        .find(|(kind, _)| kind.group.is_empty() && kind.kind == "ConfigMap")
        .map(|(_, stats)| *stats)
        .unwrap_or_default();
    println!("initial sync               {sync:>10.2?}");
    println!("watches                    {:>10}", stats.watches);
    println!("objects cached             {:>10}", stats.objects);
    println!("  of which ConfigMaps      {:>10}", configmaps.objects);
    println!("approx cache bytes         {:>10}", mib(stats.approx_bytes));
    println!(
        "  per ConfigMap            {:>10} B",
        configmaps.approx_bytes / configmaps.objects.max(1)
    );
    println!("process RSS before start   {:>10}", mib(rss_before));
    println!("process RSS after sync     {:>10}", mib(rss_after));
    println!("process RSS peak           {:>10}", mib(rss_peak));

    let started = Instant::now();
    let mut found = 0;
    for app in 0..args.apps {
        found += cache.app_resources(&app_name(app)).len();
    }
    let lookups = started.elapsed();
    anyhow::ensure!(
        found == args.apps * args.objects,
        "app_resources found {found} objects, expected {}",
        args.apps * args.objects
    );
    println!(
        "app_resources, all apps    {lookups:>10.2?} ({:.2?} per app, {found} objects)",
        lookups / args.apps.max(1) as u32
    );
    let started = Instant::now();
    let nodes: usize = (0..args.apps)
        .map(|app| cache.tree(&app_name(app)).len())
        .sum();
    println!(
        "tree, all apps             {:>10.2?} ({nodes} nodes)",
        started.elapsed()
    );

    // Latency of a live change: patch one object and wait for its event.
    let mut events = cache.subscribe();
    let configmaps: Api<ConfigMap> = Api::namespaced(client, NAMESPACE);
    let name = object_name(0, 0);
    let key = ResourceKey::new("", "ConfigMap", NAMESPACE, &name);
    let started = Instant::now();
    let patch = json!({"data": {"changed": "yes"}});
    configmaps
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(event) = events.recv().await
                && event.key == key
                && event.change == Change::Applied
            {
                return;
            }
        }
    })
    .await
    .context("no event for the patched ConfigMap")?;
    println!("patch → event              {:>10.2?}", started.elapsed());
    Ok(())
}

async fn create_objects(args: &Args, client: &kube::Client) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
    match namespaces.create(&PostParams::default(), &namespace).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(err) => return Err(err.into()),
    }
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let tracking = TrackingMethod::label();
    let started = Instant::now();
    let total = args.apps * args.objects;
    let params = PatchParams::apply("cache-bench").force();
    futures::stream::iter((0..args.apps).flat_map(|app| (0..args.objects).map(move |i| (app, i))))
        .map(|(app, i)| {
            let mut object = json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": object_name(app, i), "namespace": NAMESPACE},
                "data": {
                    "index": i.to_string(),
                    "settings.yaml": format!("app: {app}\nreplicas: 3\nlog_level: info\nfeature_flags: [a, b, c]\n"),
                }
            });
            let configmaps = &configmaps;
            let params = &params;
            let marked = tracking.mark(&mut object, &app_name(app), None);
            async move {
                marked?;
                configmaps
                    .patch(&object_name(app, i), params, &Patch::Apply(&object))
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(args.concurrency)
        .try_collect::<()>()
        .await?;
    println!("{total} ConfigMaps applied  {:>10.2?}", started.elapsed());
    Ok(())
}

fn app_name(app: usize) -> String {
    format!("app-{app:05}")
}

fn object_name(app: usize, i: usize) -> String {
    format!("app-{app:05}-cm-{i:03}")
}
