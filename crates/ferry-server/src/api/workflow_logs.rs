//! `GET /api/v1/workflows/{namespace}/{name}/log` (and upstream's deprecated
//! `…/{name}/{podName}/log`): the logs of a workflow's pods as Argo Workflows' WorkflowLogs
//! streams them, Server-Sent Events of `{"result": {"content", "podName"}}`. Read once, the lines
//! of every started pod come ordered by time; followed, they come as written, pods that start
//! later are read as they leave Pending, and the stream ends once the workflow is done (or
//! deleted) and its pods' logs have ended. RBAC: `workflows, get` and `logs, get` on
//! `<namespace>/<name>`.

use std::collections::HashSet;
use std::convert::Infallible;

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use ferry_types::Workflow;
use ferry_types::workflow::labels;
use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams, LogParams};
use kube::runtime::{WatchStreamExt, watcher};
use regex::Regex;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::app_logs::{Line, pod_lines};
use super::authn::Caller;
use super::authz::authorize;
use super::error::ApiError;
use super::query::Query;
use super::state::AppState;
use crate::rbac::resources::{GET, LOGS, WORKFLOWS};

/// A `WorkflowLogRequest` as grpc-gateway reads it from the query.
struct LogRequest {
    pod: Option<String>,
    grep: Option<Regex>,
    selector: String,
    timestamps: bool,
    params: LogParams,
}

impl LogRequest {
    fn parse(query: &Query, pod: Option<String>) -> Result<Self, ApiError> {
        let number = |key: &str| -> Result<Option<i64>, ApiError> {
            match query.value(key).filter(|text| !text.is_empty()) {
                None => Ok(None),
                Some(text) => text.parse().map(Some).map_err(|_| {
                    ApiError::invalid_argument(format!("{key}: {text:?} is not a number"))
                }),
            }
        };
        let grep = match query.value("grep").unwrap_or_default() {
            "" => None,
            pattern => Some(Regex::new(pattern).map_err(|err| {
                ApiError::invalid_argument(format!("failed to compile {pattern:?}: {err}"))
            })?),
        };
        let pod = pod.or_else(|| query.value("podName").map(str::to_string));
        Ok(Self {
            pod: pod.filter(|pod| !pod.is_empty()),
            grep,
            selector: query.value("selector").unwrap_or_default().to_string(),
            timestamps: query.flag("logOptions.timestamps")?,
            params: LogParams {
                container: query
                    .value("logOptions.container")
                    .filter(|container| !container.is_empty())
                    .map(str::to_string),
                follow: query.flag("logOptions.follow")?,
                previous: query.flag("logOptions.previous")?,
                tail_lines: number("logOptions.tailLines")?,
                since_seconds: number("logOptions.sinceSeconds")?,
                limit_bytes: number("logOptions.limitBytes")?,
                // Lines are ordered (and `untilTime`-free upstream) by the kubelet's stamps.
                timestamps: true,
                ..LogParams::default()
            },
        })
    }

    /// The workflow's pods (upstream's label), narrowed by `selector` and the pod's name.
    fn pods(&self, workflow: &str) -> (String, Option<String>) {
        let mut labels = format!("{}={workflow}", labels::WORKFLOW);
        if !self.selector.is_empty() {
            labels = format!("{labels},{}", self.selector);
        }
        let fields = self.pod.as_ref().map(|pod| format!("metadata.name={pod}"));
        (labels, fields)
    }

    fn list_params(&self, workflow: &str) -> ListParams {
        let (labels, fields) = self.pods(workflow);
        let params = ListParams::default().labels(&labels);
        match fields {
            Some(fields) => params.fields(&fields),
            None => params,
        }
    }

    fn watch_config(&self, workflow: &str) -> watcher::Config {
        let (labels, fields) = self.pods(workflow);
        let config = watcher::Config::default().labels(&labels);
        match fields {
            Some(fields) => config.fields(&fields),
            None => config,
        }
    }
}

/// A pod whose containers have started: there is a log to read.
fn started(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Pending")
}

/// `GET /api/v1/workflows/{namespace}/{name}/log?podName=&logOptions.container=
/// &logOptions.follow=&logOptions.tailLines=&logOptions.sinceSeconds=&logOptions.timestamps=
/// &logOptions.previous=&grep=&selector=`.
pub async fn workflow_logs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    serve(state, caller, namespace, name, None, query).await
}

/// `GET /api/v1/workflows/{namespace}/{name}/{podName}/log`: upstream's older route, one pod.
pub async fn pod_logs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, name, pod)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    serve(state, caller, namespace, name, Some(pod), query).await
}

async fn serve(
    state: AppState,
    caller: Caller,
    namespace: String,
    name: String,
    pod: Option<String>,
    query: Option<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let object = format!("{namespace}/{name}");
    authorize(&state.settings(), &caller, WORKFLOWS, GET, &object)?;
    authorize(&state.settings(), &caller, LOGS, GET, &object)?;
    let request = LogRequest::parse(&Query::parse(query.as_deref()), pod)?;
    let workflows: Api<Workflow> = Api::namespaced(state.client(), &namespace);
    workflows
        .get(&name)
        .await
        .map_err(|err| ApiError::kube("reading the Workflow", &err))?;
    let pods: Api<Pod> = Api::namespaced(state.client(), &namespace);
    let lines = if request.params.follow {
        followed(pods, workflows, &name, &request)
    } else {
        read_once(pods, &name, &request).await?
    };
    let LogRequest {
        grep, timestamps, ..
    } = request;
    let events = lines
        .filter_map(move |line| {
            let content = match timestamps {
                true => format!("{} {}", line.time, line.content),
                false => line.content,
            };
            let kept = grep.as_ref().is_none_or(|grep| grep.is_match(&content));
            let data = json!({"result": {"content": content, "podName": line.pod}});
            std::future::ready(kept.then(|| Ok(Event::default().data(data.to_string()))))
        })
        .take_until(state.stopping().clone().cancelled_owned());
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// The started pods' lines as they are now, in time order (pods by start time first).
async fn read_once(
    pods: Api<Pod>,
    workflow: &str,
    request: &LogRequest,
) -> Result<BoxStream<'static, Line>, ApiError> {
    let mut listed = pods
        .list(&request.list_params(workflow))
        .await
        .map_err(|err| ApiError::kube("listing the workflow's pods", &err))?
        .items;
    listed.retain(started);
    listed.sort_by_key(|pod| pod.status.as_ref().and_then(|s| s.start_time.clone()));
    let mut lines = Vec::new();
    for pod in listed {
        let read = pod_lines(pods.clone(), pod.name_any(), request.params.clone()).await;
        lines.extend(read.collect::<Vec<_>>().await);
    }
    lines.sort_by_key(|line| line.time);
    Ok(stream::iter(lines).boxed())
}

/// Lines as the pods write them, until the workflow is done and the logs end.
fn followed(
    pods: Api<Pod>,
    workflows: Api<Workflow>,
    workflow: &str,
    request: &LogRequest,
) -> BoxStream<'static, Line> {
    let (sender, receiver) = mpsc::channel(256);
    tokio::spawn(follow(
        Follow {
            pods,
            workflows,
            workflow: workflow.to_string(),
            list: request.list_params(workflow),
            watch: request.watch_config(workflow),
            params: request.params.clone(),
        },
        sender,
    ));
    stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|line| (line, receiver))
    })
    .boxed()
}

struct Follow {
    pods: Api<Pod>,
    workflows: Api<Workflow>,
    workflow: String,
    list: ListParams,
    watch: watcher::Config,
    params: LogParams,
}

impl Follow {
    /// Reads `pod`'s log into `sender` unless it is read already or has not started.
    fn read(
        &self,
        pod: &Pod,
        read: &mut HashSet<String>,
        readers: &mut JoinSet<()>,
        sender: &mpsc::Sender<Line>,
    ) {
        if !started(pod) || !read.insert(pod.uid().unwrap_or_default()) {
            return;
        }
        let (pods, name, params) = (self.pods.clone(), pod.name_any(), self.params.clone());
        let sender = sender.clone();
        readers.spawn(async move {
            let mut lines = pod_lines(pods, name, params).await;
            while let Some(line) = lines.next().await {
                if sender.send(line).await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn follow(how: Follow, sender: mpsc::Sender<Line>) {
    let mut pod_changes = watcher(how.pods.clone(), how.watch.clone())
        .default_backoff()
        .applied_objects()
        .boxed();
    let by_name = watcher::Config::default().fields(&format!("metadata.name={}", how.workflow));
    let mut workflow_changes = watcher(how.workflows.clone(), by_name)
        .default_backoff()
        .boxed();
    let mut read = HashSet::new();
    let mut readers = JoinSet::new();
    let mut running = true;
    while running {
        tokio::select! {
            () = sender.closed() => return,
            pod = pod_changes.next() => {
                if let Some(Ok(pod)) = pod {
                    how.read(&pod, &mut read, &mut readers, &sender);
                }
            }
            change = workflow_changes.next() => {
                running = match change {
                    Some(Ok(watcher::Event::Apply(wf) | watcher::Event::InitApply(wf))) => {
                        !wf.status.and_then(|s| s.phase).is_some_and(|p| p.is_completed())
                    }
                    Some(Ok(watcher::Event::Delete(_))) | None => false,
                    _ => true,
                };
            }
        }
    }
    // Done: the pods whose start the watch had not told yet are read too.
    if let Ok(listed) = how.pods.list(&how.list).await {
        for pod in &listed.items {
            how.read(pod, &mut read, &mut readers, &sender);
        }
    }
    while readers.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_upstreams_query_names() {
        let query = Query::parse(Some(
            "podName=wf-1&logOptions.container=main&logOptions.follow=true\
             &logOptions.tailLines=5&grep=err.r&selector=a%3Db",
        ));
        let request = LogRequest::parse(&query, None).unwrap();
        assert_eq!(request.params.container.as_deref(), Some("main"));
        assert!(request.params.follow && request.params.timestamps);
        assert_eq!(request.params.tail_lines, Some(5));
        assert!(request.grep.as_ref().unwrap().is_match("an error"));
        assert_eq!(
            request.pods("wf"),
            (
                "workflows.argoproj.io/workflow=wf,a=b".to_string(),
                Some("metadata.name=wf-1".to_string())
            )
        );
        let bad = LogRequest::parse(&Query::parse(Some("grep=(")), None).err();
        assert!(bad.unwrap().message.contains("failed to compile \"(\""));
    }
}
