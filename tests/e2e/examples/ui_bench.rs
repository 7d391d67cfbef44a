//! The web UI at scale, measured in headless chromium against the real ferry-server:
//! - `--apps N` Application objects (default 1,000; statuses set as the controller would, none
//!   running, so nothing changes under the measurement): the list's first render, the latency
//!   of text and status filters, and the page's JS heap;
//! - `--resources N` ConfigMaps (default 500) in one app, synced by the real controller: the
//!   app page's first render with its tree, opening the group of N, the list view, the heap.
//!
//! `0` skips a part.
//! `cargo build -p ferry-server -p ferry-controller -p ferry-cli && scripts/ui && cargo run -p ferry-e2e --example ui_bench -- --apps 1000 --resources 500`

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fantoccini::wd::TimeoutConfiguration;
use ferry_e2e::browser::Browser;
use ferry_e2e::{Story, is};
use ferry_testkit::server::ServerProcess;
use kube::api::{DynamicObject, PostParams};
use serde_json::{Value, json};

/// Waits in the page until `condition` (a JS expression) holds, rendering included: the time
/// it took in ms, from `start` (a `performance.now()` value; 0 for the page's navigation).
const WAIT_FOR: &str = "
const [condition, start, done] = arguments;
const check = () => {
  if (eval(condition)) done(performance.now() - start);
  else requestAnimationFrame(check);
};
check();";

/// Types `text` into the search field as a user would (React sees an input event), then waits
/// for `condition`: the time in ms.
const TYPE_AND_WAIT: &str = "
const [text, condition, done] = arguments;
const field = document.querySelector('input[name=search]');
const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
const start = performance.now();
setter.call(field, text);
field.dispatchEvent(new Event('input', { bubbles: true }));
const check = () => {
  if (eval(condition)) done(performance.now() - start);
  else requestAnimationFrame(check);
};
check();";

const TILES: &str = "document.querySelectorAll('.tiles > *').length";

fn app(namespace: &str, index: usize) -> Result<DynamicObject> {
    let (sync, health) = match index % 10 {
        0 => ("OutOfSync", "Progressing"),
        1 => ("OutOfSync", "Healthy"),
        2 => ("Synced", "Degraded"),
        _ => ("Synced", "Healthy"),
    };
    Ok(serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": format!("bench-{index:04}"),
            "namespace": namespace,
            "labels": {"team": format!("team-{}", index % 7)},
        },
        "spec": {
            "project": "default",
            "source": {"repoURL": format!("https://git.example/repo-{}.git", index % 13),
                       "path": "guestbook", "targetRevision": "HEAD"},
            "destination": {"server": "https://kubernetes.default.svc",
                            "namespace": format!("ns-{}", index % 20)},
        },
        "status": {"sync": {"status": sync}, "health": {"status": health}},
    }))?)
}

/// The `--name N` argument, or `default`.
fn count_arg(name: &str, default: usize) -> Result<usize> {
    Ok(std::env::args()
        .skip_while(|arg| arg != name)
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(default))
}

/// A browser logged in as admin to `story`'s server; the page's waits may take long, beyond
/// WebDriver's default of 30 s.
async fn logged_in(story: &Story, server: &ServerProcess) -> Result<Browser> {
    let password =
        ferry_testkit::server::admin_password(&story.ctx.client(), story.namespace()).await?;
    let browser = Browser::start(&format!("http://{}", server.address())).await?;
    browser.open("/login").await?;
    browser.fill("input[name=username]", "admin").await?;
    browser.fill("input[name=password]", &password).await?;
    browser.click("form button[type=submit]").await?;
    browser.at("/applications").await?;
    let timeouts = TimeoutConfiguration::new(Some(Duration::from_secs(120)), None, None);
    browser.client.update_timeouts(timeouts).await?;
    Ok(browser)
}

async fn heap_mib(browser: &Browser) -> Result<Option<f64>> {
    let heap = browser
        .run("return performance.memory ? performance.memory.usedJSHeapSize : null")
        .await?;
    Ok(heap.as_f64().map(|bytes| bytes / 1048576.0))
}

async fn wait_for(browser: &Browser, condition: &str, start: f64) -> Result<f64> {
    let args = vec![json!(condition), json!(start)];
    let ms = browser.client.execute_async(WAIT_FOR, args).await?;
    ms.as_f64().context("a time from the page")
}

async fn type_and_wait(browser: &Browser, text: &str, condition: &str) -> Result<f64> {
    let args = vec![json!(text), json!(condition)];
    let ms = browser.client.execute_async(TYPE_AND_WAIT, args).await?;
    ms.as_f64().context("a time from the page")
}

#[tokio::main]
async fn main() -> Result<()> {
    let apps = count_arg("--apps", 1000)?;
    let resources = count_arg("--resources", 500)?;
    if apps > 0 {
        list(apps).await?;
    }
    if resources > 0 {
        tree(resources).await?;
    }
    Ok(())
}

async fn list(apps: usize) -> Result<()> {
    let story = Story::new().await?;
    let created = Instant::now();
    for index in 0..apps {
        story
            .apps()
            .create(&PostParams::default(), &app(story.namespace(), index)?)
            .await?;
    }
    println!(
        "created {apps} Applications in {:.1} s",
        created.elapsed().as_secs_f64()
    );
    let server = story.start_server_with_ui().await?;
    let browser = logged_in(&story, &server).await?;

    let all = format!("{TILES} === {apps}");
    let mut first = Vec::new();
    for _ in 0..3 {
        browser.open("/applications").await?;
        first.push(wait_for(&browser, &all, 0.0).await?);
    }
    println!(
        "first render of {apps} tiles (from navigation, 3 loads): {}",
        ms_list(&first)
    );

    // One app by its full name, then a prefix matching a tenth, then back to all.
    let mut narrow = Vec::new();
    let mut widen = Vec::new();
    for round in 0..5 {
        let name = format!("bench-{:04}", (round * 97) % apps);
        narrow.push(type_and_wait(&browser, &name, &format!("{TILES} === 1")).await?);
        widen.push(type_and_wait(&browser, "", &all).await?);
    }
    let tenth = apps.div_ceil(10);
    let prefix = format!("bench-0{}", if apps > 100 { "0" } else { "" });
    let prefixed = type_and_wait(&browser, &prefix, &format!("{TILES} <= {tenth}")).await?;
    type_and_wait(&browser, "", &all).await?;
    println!("text filter to 1 app (5 times): {}", ms_list(&narrow));
    println!(
        "text filter cleared, back to {apps} (5 times): {}",
        ms_list(&widen)
    );
    println!("text filter {prefix:?} (a tenth or less): {prefixed:.0} ms");

    // A status facet: OutOfSync (a fifth of the apps), by a click.
    let start: Value = browser.run("return performance.now()").await?;
    browser
        .run(
            "[...document.querySelectorAll('[data-testid=filter-sync] label')]\
             .find(l => l.textContent.includes('OutOfSync')).querySelector('input').click()",
        )
        .await?;
    let facet = wait_for(
        &browser,
        &format!("{TILES} === {}", (0..apps).filter(|i| i % 10 < 2).count()),
        start.as_f64().unwrap_or_default(),
    )
    .await?;
    println!("sync filter OutOfSync by a click: {facet:.0} ms");
    if let Some(mib) = heap_mib(&browser).await? {
        println!("JS heap used: {mib:.1} MiB");
    }
    browser.close().await?;
    server.stop().await?;
    Ok(())
}

/// `count` ConfigMaps in one file of the story's repository.
fn config_maps(count: usize) -> String {
    (0..count)
        .map(|i| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: many-{i:04}\ndata:\n  index: \"{i}\"\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

async fn tree(resources: usize) -> Result<()> {
    let mut story = Story::new().await?;
    story
        .repo
        .write("many/config-maps.yaml", config_maps(resources))?;
    story.repo.commit("many")?;
    story.start_controller()?;
    let name = story.app_name("many");
    let synced = Instant::now();
    story.create_app(&name, "many", &["--sync-policy", "automated"])?;
    story
        .wait_app(&name, "synced and healthy", |app| {
            is::synced_and_healthy(app)
                && app.status.as_ref().map_or(0, |s| s.resources.len()) == resources
        })
        .await?;
    println!(
        "an app of {resources} ConfigMaps created and synced in {:.1} s",
        synced.elapsed().as_secs_f64()
    );
    let server = story.start_server_with_ui().await?;
    let browser = logged_in(&story, &server).await?;
    let page = format!("/applications/{name}");

    // The tree shows them as one group node with their counts.
    let group = format!(
        "document.querySelector('[data-testid=group-node][data-kind=ConfigMap][data-count=\"{resources}\"]')"
    );
    let mut first = Vec::new();
    for _ in 0..3 {
        browser.open(&page).await?;
        first.push(wait_for(&browser, &format!("{group} !== null"), 0.0).await?);
    }
    println!(
        "first render of the app page with its tree, {resources} ConfigMaps grouped (from navigation, 3 loads): {}",
        ms_list(&first)
    );

    // Opening the group: every ConfigMap's node.
    let nodes = "document.querySelectorAll('[data-testid=resource-tree] button.node[data-kind=ConfigMap]:not(.group-node)').length";
    let mut opened = Vec::new();
    for _ in 0..3 {
        browser.open(&page).await?;
        wait_for(&browser, &format!("{group} !== null"), 0.0).await?;
        let start: Value = browser
            .run(&format!("{group}.click(); return performance.now()"))
            .await?;
        opened.push(
            wait_for(
                &browser,
                &format!("{nodes} === {resources}"),
                start.as_f64().unwrap_or_default(),
            )
            .await?,
        );
    }
    println!(
        "opening the group of {resources} (3 times): {}",
        ms_list(&opened)
    );

    // The list view, a row for each.
    let rows = "document.querySelectorAll('[data-testid=resource-list] tbody tr').length";
    let mut listed = Vec::new();
    for _ in 0..3 {
        browser.open(&format!("{page}?view=list")).await?;
        listed.push(wait_for(&browser, &format!("{rows} === {resources}"), 0.0).await?);
    }
    println!(
        "first render of the list view, {resources} rows (from navigation, 3 loads): {}",
        ms_list(&listed)
    );
    if let Some(mib) = heap_mib(&browser).await? {
        println!("JS heap used: {mib:.1} MiB");
    }
    browser.close().await?;
    server.stop().await?;
    Ok(())
}

fn ms_list(values: &[f64]) -> String {
    let shown: Vec<String> = values.iter().map(|ms| format!("{ms:.0}")).collect();
    format!("{} ms", shown.join(", "))
}
