//! Argo CD's application endpoints as the `ferry app` verbs use them through a server, and
//! watching one app: the server's event stream, or polling where it has none.

use std::time::Duration;

use anyhow::Context;
use ferry_types::Application;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use super::client::{ApiClient, api_error_is, segment};
use crate::app::Watched;

/// How often an app is read again where the server streams no events.
const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Consecutive stream failures tolerated before watching gives up.
const STREAM_ERRORS: usize = 5;

fn app_path(name: &str, rest: &str) -> String {
    format!("/api/v1/applications/{}{rest}", segment(name))
}

/// One entry of `managed-resources`: the states are JSON documents in strings.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ManagedResource {
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub target_state: String,
    pub live_state: String,
    pub normalized_live_state: String,
    pub predicted_live_state: String,
    pub hook: bool,
}

/// A JSON state string of `managed-resources`; `None` for an absent object.
pub fn state(text: &str) -> anyhow::Result<Option<Value>> {
    if text.is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(text).context("a resource state is not JSON")?;
    Ok(Some(value).filter(|v| !v.is_null()))
}

pub async fn list(
    api: &ApiClient,
    projects: &[String],
    selector: Option<&str>,
) -> anyhow::Result<Vec<Application>> {
    let mut query: Vec<(&str, String)> = projects.iter().map(|p| ("projects", p.clone())).collect();
    if let Some(selector) = selector {
        query.push(("selector", selector.to_string()));
    }
    let list: Value = api
        .get("/api/v1/applications", &query)
        .await
        .context("listing apps")?;
    items(list)
}

/// The `items` of a list answer (absent when empty, as grpc-gateway leaves it).
pub fn items<T: DeserializeOwned>(mut list: Value) -> anyhow::Result<Vec<T>> {
    match list.get_mut("items").map(Value::take) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(items) => serde_json::from_value(items).context("the server's list is malformed"),
    }
}

pub async fn get(
    api: &ApiClient,
    name: &str,
    refresh: Option<&str>,
) -> anyhow::Result<Application> {
    let query = refresh.map(|r| ("refresh", r.to_string()));
    api.get(&app_path(name, ""), query.as_slice())
        .await
        .with_context(|| format!("reading app {name}"))
}

pub async fn create(api: &ApiClient, app: &Application, upsert: bool) -> anyhow::Result<()> {
    let name = app.metadata.name.as_deref().unwrap_or_default();
    api.call::<Value>(
        Method::POST,
        "/api/v1/applications",
        &[("upsert", upsert.to_string())],
        Some(app),
    )
    .await
    .with_context(|| format!("creating app {name}"))?;
    Ok(())
}

/// Replaces the app; its resourceVersion makes a concurrent change a conflict.
pub async fn update(api: &ApiClient, app: &Application) -> anyhow::Result<()> {
    let name = app.metadata.name.as_deref().unwrap_or_default();
    api.call::<Value>(Method::PUT, &app_path(name, ""), &[], Some(app))
        .await
        .with_context(|| format!("updating app {name}"))?;
    Ok(())
}

pub async fn delete(
    api: &ApiClient,
    name: &str,
    cascade: bool,
    propagation: &str,
) -> anyhow::Result<()> {
    let mut query = vec![("cascade", cascade.to_string())];
    if cascade {
        query.push(("propagationPolicy", propagation.to_string()));
    }
    api.call::<Value>(Method::DELETE, &app_path(name, ""), &query, None::<&Value>)
        .await
        .with_context(|| format!("deleting app {name}"))?;
    Ok(())
}

/// POSTs an operation request (`sync`, `rollback`) for the app.
pub async fn operate(api: &ApiClient, name: &str, verb: &str, body: &Value) -> anyhow::Result<()> {
    api.call::<Value>(
        Method::POST,
        &app_path(name, &format!("/{verb}")),
        &[],
        Some(body),
    )
    .await
    .with_context(|| format!("requesting a {verb} of app {name}"))?;
    Ok(())
}

pub async fn terminate(api: &ApiClient, name: &str) -> anyhow::Result<()> {
    api.call::<Value>(
        Method::DELETE,
        &app_path(name, "/operation"),
        &[],
        None::<&Value>,
    )
    .await
    .with_context(|| format!("terminating the operation of app {name}"))?;
    Ok(())
}

pub async fn managed_resources(
    api: &ApiClient,
    name: &str,
) -> anyhow::Result<Vec<ManagedResource>> {
    let list: Value = api
        .get(&app_path(name, "/managed-resources"), &[])
        .await
        .with_context(|| format!("reading the resources of app {name}"))?;
    items(list)
}

/// The app's manifests as the server renders them, at `revision` when given.
pub async fn manifests(
    api: &ApiClient,
    name: &str,
    revision: Option<&str>,
) -> anyhow::Result<Vec<Value>> {
    let query = revision.map(|r| ("revision", r.to_string()));
    let answer: Value = api
        .get(&app_path(name, "/manifests"), query.as_slice())
        .await
        .with_context(|| format!("rendering the manifests of app {name}"))?;
    let texts: Vec<String> = match &answer["manifests"] {
        Value::Null => Vec::new(),
        manifests => serde_json::from_value(manifests.clone())?,
    };
    texts
        .iter()
        .map(|text| serde_json::from_str(text).context("a manifest is not JSON"))
        .collect()
}

pub async fn resource_tree(api: &ApiClient, name: &str) -> anyhow::Result<Value> {
    api.get(&app_path(name, "/resource-tree"), &[])
        .await
        .with_context(|| format!("reading the resource tree of app {name}"))
}

/// Which pod's log `logs` reads, and how.
pub struct LogRequest<'a> {
    pub pod: &'a str,
    pub namespace: &'a str,
    pub container: Option<&'a str>,
    pub tail_lines: Option<u64>,
    pub follow: bool,
}

/// Prints a pod's log lines as the server streams them.
pub async fn logs(api: &ApiClient, name: &str, request: &LogRequest<'_>) -> anyhow::Result<()> {
    let mut query = vec![
        ("namespace", request.namespace.to_string()),
        ("follow", request.follow.to_string()),
    ];
    if let Some(container) = request.container {
        query.push(("container", container.to_string()));
    }
    if let Some(tail) = request.tail_lines {
        query.push(("tailLines", tail.to_string()));
    }
    let path = app_path(name, &format!("/pods/{}/logs", segment(request.pod)));
    let mut events = api
        .stream(&path, &query)
        .await
        .with_context(|| format!("reading the log of pod {}", request.pod))?;
    while let Some(entry) = events.next().await? {
        if entry["last"] == true {
            break;
        }
        if let Some(content) = entry["content"].as_str() {
            println!("{content}");
        }
    }
    Ok(())
}

/// Watches one app until `check` returns a value (given `None` once the app is gone), or until
/// `timeout`. Argo CD answers 403 for an app that does not exist, so names are not disclosed:
/// once the app is known to have existed (`existed`, or seen in this watch), that answer means
/// it is gone.
pub async fn watch<T>(
    api: &ApiClient,
    name: &str,
    timeout: Option<Duration>,
    existed: bool,
    mut check: impl FnMut(Option<&Application>) -> anyhow::Result<Option<T>>,
) -> anyhow::Result<Watched<T>> {
    let mut last = None;
    let outcome = {
        let watching = watch_until(api, name, existed, &mut check, &mut last);
        match timeout {
            Some(limit) => tokio::time::timeout_at(Instant::now() + limit, watching)
                .await
                .ok(),
            None => Some(watching.await),
        }
    };
    match outcome {
        Some(done) => done.map(Watched::Done),
        None => Ok(Watched::TimedOut(last.map(Box::new))),
    }
}

async fn watch_until<T>(
    api: &ApiClient,
    name: &str,
    mut seen: bool,
    check: &mut impl FnMut(Option<&Application>) -> anyhow::Result<Option<T>>,
    last: &mut Option<Application>,
) -> anyhow::Result<T> {
    let query = [("name", name.to_string())];
    let mut failures = 0;
    loop {
        // A stream only tells of apps that exist: one deleted before it opened is never
        // mentioned, so each (re)connection starts from a read.
        let current = read(api, name, &mut seen).await?;
        if let Some(done) = check(current.as_ref())? {
            return Ok(done);
        }
        *last = current;
        let mut events = match api.stream("/api/v1/stream/applications", &query).await {
            Ok(events) => events,
            Err(err) if api_error_is(&err, no_such_endpoint) => {
                return poll(api, name, seen, check, last).await;
            }
            Err(err) => return Err(err).with_context(|| format!("watching app {name}")),
        };
        loop {
            match events.next().await {
                Ok(Some(event)) => {
                    failures = 0;
                    let app: Application = serde_json::from_value(event["application"].clone())
                        .context("the server streamed a malformed app")?;
                    let current = (event["type"] != "DELETED").then_some(app);
                    if let Some(done) = check(current.as_ref())? {
                        return Ok(done);
                    }
                    *last = current;
                }
                // The server ended the stream (it restarts, or a proxy cut it): watch again.
                Ok(None) => break,
                Err(err) => {
                    failures += 1;
                    if failures >= STREAM_ERRORS {
                        return Err(err).with_context(|| format!("watching app {name}"));
                    }
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A server without the stream endpoint answers 404 (or 405/501 behind some proxies).
fn no_such_endpoint(err: &super::client::ApiError) -> bool {
    matches!(
        err.status,
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
    )
}

/// The app as it is now; `None` once it is gone (see [`watch`] for the 403).
async fn read(api: &ApiClient, name: &str, seen: &mut bool) -> anyhow::Result<Option<Application>> {
    match get(api, name, None).await {
        Ok(app) => {
            *seen = true;
            Ok(Some(app))
        }
        Err(err)
            if api_error_is(&err, |e| {
                e.is_not_found() || (*seen && e.is_permission_denied())
            }) =>
        {
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

async fn poll<T>(
    api: &ApiClient,
    name: &str,
    mut seen: bool,
    check: &mut impl FnMut(Option<&Application>) -> anyhow::Result<Option<T>>,
    last: &mut Option<Application>,
) -> anyhow::Result<T> {
    loop {
        let current = read(api, name, &mut seen).await?;
        if let Some(done) = check(current.as_ref())? {
            return Ok(done);
        }
        *last = current;
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
