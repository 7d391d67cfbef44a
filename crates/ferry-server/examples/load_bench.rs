//! The API server under load, on loopback: `--apps` Applications (each with a realistic status
//! of 10 resources) on a fresh sandbox, served by a `ferry-server` running in this process.
//! Prints, for listing every app with `--clients` concurrent clients for `--seconds`, the
//! requests per second and the p50/p99 latency; and for `--streams` event-stream clients, the
//! time until each has the initial state of every app, then the delivery latency (p50/p99, from
//! the write to the API server to the client reading the event) and the events per second
//! delivered while `--changes` apps are changed.
//!
//! cargo run --release -p ferry-server --example load_bench -- --apps 1000 --streams 100

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use ferry_auth::auth::{LoginGuard, ensure_initial_admin};
use ferry_server::settings_watch::watch_settings;
use ferry_server::{AppState, serve};
use ferry_testkit::process::{mib, on_fresh_sandbox, status_bytes};
use ferry_types::Application;
use ferry_types::allowed_namespaces::AllowedNamespaces;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::sync::Mutex;

const NAMESPACE: &str = "argocd";

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1000)]
    apps: usize,
    /// Concurrent clients listing every app.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// How long the list phase runs.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Event-stream clients.
    #[arg(long, default_value_t = 100)]
    streams: usize,
    /// Apps changed while the streams listen.
    #[arg(long, default_value_t = 200)]
    changes: usize,
    /// Leave the sandbox running afterwards.
    #[arg(long)]
    keep: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    on_fresh_sandbox("load-bench", args.keep, |client| run(&args, client)).await
}

async fn run(args: &Args, client: kube::Client) -> Result<()> {
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await?;
    ferry_runtime::install_crds(&client, "load-bench").await?;
    create_apps(&client, args.apps).await?;

    ensure_initial_admin(client.clone(), NAMESPACE).await?;
    ferry_runtime::ensure_default_project(&client, NAMESPACE).await?;
    let (settings, _watching) = watch_settings(client.clone(), NAMESPACE).await?;
    let namespaces = AllowedNamespaces::control_only_of(NAMESPACE);
    let state = AppState::new(client.clone(), namespaces, settings, LoginGuard::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async {
        let _ = stopped.await;
    }));

    let http = reqwest::Client::new();
    let token = login(&http, &base, &client).await?;
    let rss_before = mib(status_bytes("VmRSS")?);

    list_phase(args, &http, &base, &token).await?;
    stream_phase(args, &http, &base, &token, &client).await?;

    println!(
        "process RSS: {rss_before} before the load, {} peak (server, clients and benchmark together)",
        mib(status_bytes("VmHWM")?)
    );
    let _ = stop.send(());
    server.await??;
    Ok(())
}

/// Applications with the status a controller would have written: 10 resources each.
async fn create_apps(client: &kube::Client, count: usize) -> Result<()> {
    let apps: Api<Application> = Api::namespaced(client.clone(), NAMESPACE);
    let started = Instant::now();
    let created = futures::stream::iter(0..count)
        .map(|i| {
            let apps = apps.clone();
            async move {
                let name = format!("app-{i:04}");
                let app: Application = serde_json::from_value(json!({
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "Application",
                    "metadata": {"name": name, "labels": {"team": format!("team-{}", i % 10)}},
                    "spec": {
                        "project": "default",
                        "source": {"repoURL": "https://git.example.com/apps", "path": name, "targetRevision": "main"},
                        "destination": {"server": "https://kubernetes.default.svc", "namespace": name},
                        "syncPolicy": {"automated": {"prune": true}},
                    },
                }))?;
                apps.create(&PostParams::default(), &app).await?;
                let resources: Vec<Value> = (0..10)
                    .map(|r| json!({"version": "v1", "kind": "ConfigMap", "namespace": name, "name": format!("config-{r}"), "status": "Synced", "health": {"status": "Healthy"}}))
                    .collect();
                let status = json!({"status": {
                    "resources": resources,
                    "sync": {"status": "Synced", "revision": "0123456789abcdef0123456789abcdef01234567"},
                    "health": {"status": "Healthy"},
                    "summary": {"images": ["registry.example.com/web:1.2.3"]},
                }});
                apps.patch(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .filter(|created| futures::future::ready(created.is_ok()))
        .count()
        .await;
    anyhow::ensure!(created == count, "created {created} of {count} apps");
    println!(
        "created {count} apps in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn login(http: &reqwest::Client, base: &str, client: &kube::Client) -> Result<String> {
    let password = ferry_testkit::server::admin_password(client, NAMESPACE).await?;
    let answer: Value = http
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await?
        .json()
        .await?;
    Ok(answer["token"].as_str().context("no token")?.to_string())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

async fn list_phase(args: &Args, http: &reqwest::Client, base: &str, token: &str) -> Result<()> {
    let url = format!("{base}/api/v1/applications");
    let first = http
        .get(&url)
        .bearer_auth(token)
        .send()
        .await?
        .bytes()
        .await?;
    let items = serde_json::from_slice::<Value>(&first)?["items"]
        .as_array()
        .map_or(0, Vec::len);
    anyhow::ensure!(items == args.apps, "listed {items} of {} apps", args.apps);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..args.clients)
        .map(|_| {
            let (http, url, token) = (http.clone(), url.clone(), token.to_string());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let response = http.get(&url).bearer_auth(&token).send().await?;
                    anyhow::ensure!(response.status().is_success(), "{}", response.status());
                    response.bytes().await?;
                    latencies.push(sent.elapsed());
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "list {} apps ({:.2} MiB per answer), {} clients for {:.0} s: {} requests, {:.1} req/s, p50 {:.1} ms, p99 {:.1} ms",
        args.apps,
        first.len() as f64 / (1024.0 * 1024.0),
        args.clients,
        elapsed.as_secs_f64(),
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
    );
    Ok(())
}

/// When each change was written, by the value of the annotation it set.
type Written = Arc<Mutex<HashMap<String, Instant>>>;

async fn stream_phase(
    args: &Args,
    http: &reqwest::Client,
    base: &str,
    token: &str,
    client: &kube::Client,
) -> Result<()> {
    let written: Written = Arc::default();
    let (initial_tx, mut initial_rx) = tokio::sync::mpsc::unbounded_channel::<Duration>();
    let (latency_tx, mut latency_rx) = tokio::sync::mpsc::unbounded_channel::<Duration>();
    let started = Instant::now();
    for _ in 0..args.streams {
        let response = http
            .get(format!("{base}/api/v1/stream/applications"))
            .bearer_auth(token)
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "{}", response.status());
        let (initial_tx, latency_tx, written) =
            (initial_tx.clone(), latency_tx.clone(), written.clone());
        let apps = args.apps;
        tokio::spawn(async move {
            let mut body = response.bytes_stream();
            let mut buffer = Vec::new();
            let mut added = 0;
            while let Some(Ok(chunk)) = body.next().await {
                buffer.extend_from_slice(&chunk);
                while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
                    let event: Vec<u8> = buffer.drain(..end + 2).collect();
                    let Some(data) = event.strip_prefix(b"data: ") else {
                        continue;
                    };
                    let Ok(event) = serde_json::from_slice::<Value>(data) else {
                        continue;
                    };
                    if event["result"]["type"] == "ADDED" {
                        added += 1;
                        if added == apps {
                            let _ = initial_tx.send(started.elapsed());
                        }
                        continue;
                    }
                    let app = &event["result"]["application"];
                    if let Some(mark) = app["metadata"]["annotations"]["bench/mark"].as_str()
                        && let Some(at) = written.lock().await.get(mark)
                    {
                        let _ = latency_tx.send(at.elapsed());
                    }
                }
            }
        });
    }
    drop((initial_tx, latency_tx));
    let mut initial = Vec::new();
    while initial.len() < args.streams {
        initial.push(
            tokio::time::timeout(Duration::from_secs(120), initial_rx.recv())
                .await
                .context("the streams did not get every app within 120 s")?
                .context("a stream ended")?,
        );
    }
    initial.sort();
    println!(
        "{} streams connected; each had all {} apps within {:.0} ms (p50 {:.0} ms)",
        args.streams,
        args.apps,
        ms(percentile(&initial, 1.0)),
        ms(percentile(&initial, 0.5)),
    );

    let apps: Api<Application> = Api::namespaced(client.clone(), NAMESPACE);
    let changing = Instant::now();
    for i in 0..args.changes {
        let name = format!("app-{:04}", i % args.apps);
        let mark = format!("change-{i}");
        written.lock().await.insert(mark.clone(), Instant::now());
        let patch = json!({"metadata": {"annotations": {"bench/mark": mark}}});
        apps.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    let expected = args.changes * args.streams;
    let mut latencies = Vec::with_capacity(expected);
    while latencies.len() < expected {
        match tokio::time::timeout(Duration::from_secs(30), latency_rx.recv()).await {
            Ok(Some(latency)) => latencies.push(latency),
            _ => break,
        }
    }
    let elapsed = changing.elapsed();
    latencies.sort();
    println!(
        "{} changes × {} streams: {} of {expected} events delivered in {:.1} s ({:.0} events/s), latency p50 {:.1} ms, p99 {:.1} ms",
        args.changes,
        args.streams,
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
    );
    Ok(())
}
