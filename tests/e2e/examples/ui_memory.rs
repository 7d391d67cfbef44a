//! The web UI's memory under live updates, measured in headless chromium: the applications
//! list open on `--apps N` Applications (default 100) while `--rate R` of them a second
//! (default 10) change status, each change reaching the page through the real ferry-server's
//! event stream, for `--minutes M` (default 5; 60 for the hour of issue 13). Every `--every S`
//! seconds (default 60) it prints the JS heap after a garbage collection (DevTools'
//! `HeapProfiler.collectGarbage`, `Runtime.getHeapUsage`), the DOM nodes and event listeners
//! (`Performance.getMetrics`), and how many updates were made; a heap that stays flat holds
//! nothing per update.
//!
//! `cargo build -p ferry-server && scripts/ui && cargo run -p ferry-e2e --example ui_memory -- --minutes 60`

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ferry_e2e::Story;
use ferry_e2e::browser::Browser;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The status an app has after its `round`th update: every update changes what the tile shows.
fn status(round: usize) -> Value {
    let (sync, health) = match round % 3 {
        0 => ("Synced", "Healthy"),
        1 => ("OutOfSync", "Progressing"),
        _ => ("Synced", "Degraded"),
    };
    json!({"sync": {"status": sync}, "health": {"status": health}})
}

fn app(namespace: &str, index: usize) -> Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": format!("live-{index:04}"), "namespace": namespace},
        "spec": {
            "project": "default",
            "source": {"repoURL": "https://git.example/live.git", "path": "guestbook",
                       "targetRevision": "HEAD"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "live"},
        },
        "status": status(0),
    }))?)
}

fn arg(name: &str, default: u64) -> Result<u64> {
    Ok(std::env::args()
        .skip_while(|arg| arg != name)
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(default))
}

/// Heap used after a full collection (MiB), DOM nodes, JS event listeners.
async fn sample(browser: &Browser) -> Result<(f64, u64, u64)> {
    browser
        .cdp("HeapProfiler.collectGarbage", json!({}))
        .await?;
    let heap = browser.cdp("Runtime.getHeapUsage", json!({})).await?;
    let used = heap["usedSize"].as_f64().context("usedSize")? / 1048576.0;
    let metrics = browser.cdp("Performance.getMetrics", json!({})).await?;
    let metric = |name: &str| {
        metrics["metrics"]
            .as_array()
            .and_then(|all| all.iter().find(|m| m["name"] == name))
            .and_then(|m| m["value"].as_f64())
            .unwrap_or_default() as u64
    };
    Ok((used, metric("Nodes"), metric("JSEventListeners")))
}

#[tokio::main]
async fn main() -> Result<()> {
    let apps = arg("--apps", 100)? as usize;
    let minutes = arg("--minutes", 5)?;
    let rate = arg("--rate", 10)?;
    let every = Duration::from_secs(arg("--every", 60)?);
    let story = Story::new().await?;
    for index in 0..apps {
        story
            .apps()
            .create(&PostParams::default(), &app(story.namespace(), index)?)
            .await?;
    }
    let server = story.start_server_with_ui().await?;
    let password =
        ferry_testkit::server::admin_password(&story.ctx.client(), story.namespace()).await?;
    let browser = Browser::start(&format!("http://{}", server.address())).await?;
    browser.open("/login").await?;
    browser.fill("input[name=username]", "admin").await?;
    browser.fill("input[name=password]", &password).await?;
    browser.click("form button[type=submit]").await?;
    browser.at("/applications").await?;
    browser
        .find(&format!("[data-testid=app-live-{:04}]", apps - 1))
        .await?;
    browser.cdp("Performance.enable", json!({})).await?;

    // The updates: app after app, `rate` a second, each a new status.
    let updates = Arc::new(AtomicUsize::new(0));
    let updater = {
        let api = story.apps();
        let updates = updates.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            loop {
                tick.tick().await;
                let n = updates.load(Ordering::Relaxed);
                let patch = json!({"status": status(n / apps + 1)});
                let name = format!("live-{:04}", n % apps);
                if let Err(err) = api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    eprintln!("updating {name}: {err}");
                } else {
                    updates.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    println!("{apps} apps, {rate} status updates a second, {minutes} min; the list page open");
    println!("minute\tupdates\theap MiB (after GC)\tDOM nodes\tlisteners");
    let (heap, nodes, listeners) = sample(&browser).await?;
    println!("0.0\t0\t{heap:.2}\t{nodes}\t{listeners}");
    let start = Instant::now();
    let end = Duration::from_secs(minutes * 60);
    while start.elapsed() < end {
        tokio::time::sleep(every.min(end.saturating_sub(start.elapsed()))).await;
        let (heap, nodes, listeners) = sample(&browser).await?;
        println!(
            "{:.1}\t{}\t{heap:.2}\t{nodes}\t{listeners}",
            start.elapsed().as_secs_f64() / 60.0,
            updates.load(Ordering::Relaxed)
        );
    }
    updater.abort();

    // The page is still live: the last app updated shows its last status.
    let last = updates.load(Ordering::Relaxed).saturating_sub(1);
    let expected = status(last / apps + 1);
    let sync = expected["sync"]["status"].as_str().unwrap_or_default();
    browser
        .find(&format!(
            "[data-testid=app-live-{:04}] [data-sync={sync}]",
            last % apps
        ))
        .await?;
    println!(
        "the page shows the last update of live-{:04} ({sync})",
        last % apps
    );
    browser.close().await?;
    server.stop().await?;
    Ok(())
}
