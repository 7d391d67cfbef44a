//! `GET /api/v1/applications/{name}/logs`: the logs of an Application's pods, all of them or those
//! under the resources a query names (kind, group, name, namespace), merged in time order, as
//! Argo CD's `PodLogs` without a pod name serves `argocd app logs`. The pods are found in the
//! app's resource tree (the controller's view), so nothing outside the app is reachable.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::{Extension, Json};
use futures::stream::{self, BoxStream};
use futures::{AsyncBufReadExt, Stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use serde::Deserialize;
use serde_json::json;

use super::applications::{authorized_app, rbac_object};
use super::authn::Caller;
use super::authz::authorize;
use super::destinations::{LiveObject, client_for};
use super::error::ApiError;
use super::state::AppState;
use crate::rbac::resources::{GET, LOGS};

/// Argo CD's default for `server.maxPodLogsToRender` in argocd-cm.
const DEFAULT_MAX_PODS: usize = 10;

/// Argo CD's `ApplicationPodLogsQuery`, less the pod name of the other route.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct AppLogsQuery {
    namespace: String,
    kind: String,
    group: String,
    resource_name: String,
    container: Option<String>,
    tail_lines: i64,
    since_seconds: i64,
    until_time: String,
    filter: String,
    match_case: bool,
    follow: bool,
    previous: bool,
}

/// A node of the resource tree, as far as the selection of pods needs it.
#[derive(Deserialize, Clone, Default)]
#[serde(default, rename_all = "camelCase")]
struct Node {
    group: String,
    kind: String,
    namespace: String,
    name: String,
    uid: String,
    parent_refs: Vec<Node>,
}

impl Node {
    fn key(&self) -> (&str, &str, &str, &str) {
        (&self.group, &self.kind, &self.namespace, &self.name)
    }
}

/// One line of one pod's log.
pub(super) struct Line {
    pub(super) pod: String,
    pub(super) time: Timestamp,
    pub(super) content: String,
}

/// Which lines a `filter` keeps: a literal, `!literal` for the others, case-insensitive unless
/// `matchCase`.
struct LineFilter {
    literal: String,
    inverse: bool,
    match_case: bool,
}

impl LineFilter {
    fn new(filter: &str, match_case: bool) -> Option<Self> {
        if filter.is_empty() {
            return None;
        }
        let (literal, inverse) = match filter.strip_prefix('!') {
            Some(rest) => (rest, true),
            None => (filter, false),
        };
        let literal = if match_case {
            literal.to_string()
        } else {
            literal.to_lowercase()
        };
        Some(Self {
            literal,
            inverse,
            match_case,
        })
    }

    fn keeps(&self, line: &str) -> bool {
        let contains = if self.match_case {
            line.contains(&self.literal)
        } else {
            line.to_lowercase().contains(&self.literal)
        };
        contains != self.inverse
    }
}

/// The pods of `nodes` that match the query themselves or through any of their ancestors.
fn selected_pods<'a>(nodes: &'a [Node], query: &AppLogsQuery) -> Vec<&'a Node> {
    let by_key: HashMap<_, &Node> = nodes.iter().map(|node| (node.key(), node)).collect();
    let matches = |node: &Node| {
        (query.resource_name.is_empty() || node.name == query.resource_name)
            && (query.kind.is_empty() || node.kind == query.kind)
            && (query.group.is_empty() || node.group == query.group)
            && (query.namespace.is_empty() || node.namespace == query.namespace)
    };
    let mut memo: HashMap<&str, bool> = HashMap::new();
    fn selected<'a>(
        node: &'a Node,
        by_key: &HashMap<(&str, &str, &str, &str), &'a Node>,
        matches: &dyn Fn(&Node) -> bool,
        memo: &mut HashMap<&'a str, bool>,
        depth: usize,
    ) -> bool {
        if let Some(known) = memo.get(node.uid.as_str()) {
            return *known;
        }
        // A cycle of owner references cannot recurse for ever.
        let found = matches(node)
            || (depth < 16
                && node.parent_refs.iter().any(|parent| {
                    by_key
                        .get(&parent.key())
                        .is_some_and(|parent| selected(parent, by_key, matches, memo, depth + 1))
                }));
        if !node.uid.is_empty() {
            memo.insert(&node.uid, found);
        }
        found
    }
    nodes
        .iter()
        .filter(|node| node.kind == "Pod" && node.group.is_empty() && !node.uid.is_empty())
        .filter(|node| selected(node, &by_key, &matches, &mut memo, 0))
        .collect()
}

/// A kubelet log line (`--timestamps`): its time and what the container wrote, split at `\r`
/// as Argo CD does.
fn parse(pod: &str, line: &str) -> Vec<Line> {
    let (time, content) = line.split_once(' ').unwrap_or((line, ""));
    let Ok(time) = time.parse::<Timestamp>() else {
        return Vec::new();
    };
    content
        .trim_end()
        .split('\r')
        .map(|content| Line {
            pod: pod.to_string(),
            time,
            content: content.to_string(),
        })
        .collect()
}

/// A `LogEntry` as the stream's data; every field is set, as the proto requires them all.
fn entry(pod: &str, content: &str, time: Timestamp, last: bool) -> Event {
    let data = json!({"result": {
        "content": content,
        "podName": pod,
        "timeStamp": time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "timeStampStr": time.to_string(),
        "last": last,
    }});
    Event::default().data(data.to_string())
}

/// One pod's lines; an error reading its log is one line saying so, as in Argo CD (a pod
/// that is not running yet should say why rather than fail the others).
pub(super) async fn pod_lines(
    pods: Api<Pod>,
    pod: String,
    params: LogParams,
) -> BoxStream<'static, Line> {
    match pods.log_stream(&pod, &params).await {
        Ok(reader) => reader
            .lines()
            .take_while(|line| std::future::ready(line.is_ok()))
            .flat_map(move |line| stream::iter(parse(&pod, &line.unwrap_or_default())))
            .boxed(),
        Err(err) => stream::iter([Line {
            pod,
            time: Timestamp::now(),
            content: err.to_string(),
        }])
        .boxed(),
    }
}

/// `GET /api/v1/applications/{name}/logs?kind=&group=&resourceName=&namespace=&container=
/// &tailLines=&sinceSeconds=&untilTime=&filter=&matchCase=&follow=&previous=`: Server-Sent
/// Events of `LogEntry`s, the last one with `last: true`. Needs `logs, get` on the app as well
/// as `applications, get`.
pub async fn app_logs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(query): Query<AppLogsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let app = authorized_app(&state, &caller, &name, GET).await?;
    authorize(
        &state.settings(),
        &caller,
        LOGS,
        GET,
        &rbac_object(&app, state.namespace()),
    )?;
    let until = match query.until_time.as_str() {
        "" => None,
        text => Some(text.parse::<Timestamp>().map_err(|err| {
            ApiError::invalid_argument(format!("invalid untilTime parameter value: {err}"))
        })?),
    };
    let Json(tree) = super::app_views::tree(&state, &name).await?;
    let nodes: Vec<Node> = serde_json::from_value(tree.get("nodes").cloned().unwrap_or_default())
        .map_err(|err| ApiError::internal("reading the resource tree", &err))?;
    let pods = selected_pods(&nodes, &query);
    let max_pods = state
        .settings()
        .argocd_cm()
        .get("server.maxPodLogsToRender")
        .and_then(|value| value.parse().ok())
        .unwrap_or(DEFAULT_MAX_PODS);
    if pods.len() > max_pods {
        return Err(ApiError::invalid_argument(
            "max pods to view logs are reached. Please provide more granular query",
        ));
    }
    let params = LogParams {
        container: query.container.clone().filter(|c| !c.is_empty()),
        follow: query.follow,
        tail_lines: (query.tail_lines > 0).then_some(query.tail_lines),
        since_seconds: (query.since_seconds > 0).then_some(query.since_seconds),
        previous: query.previous,
        timestamps: true,
        ..LogParams::default()
    };
    let mut streams = Vec::new();
    for pod in pods {
        let object = LiveObject {
            group: "",
            kind: "",
            namespace: &pod.namespace,
            name: &pod.name,
        };
        let client = client_for(&state, &app, &object).await?;
        let api: Api<Pod> = Api::namespaced(client, &pod.namespace);
        streams.push(pod_lines(api, pod.name.clone(), params.clone()).await);
    }
    // Followed logs interleave as lines arrive; finished ones are ordered by time.
    let lines: BoxStream<'static, Line> = if query.follow {
        stream::select_all(streams).boxed()
    } else {
        let mut all: Vec<Line> = stream::iter(streams).flatten().collect().await;
        all.sort_by_key(|line| line.time);
        stream::iter(all).boxed()
    };
    let filter = LineFilter::new(&query.filter, query.match_case);
    let events = lines
        .filter(move |line| {
            std::future::ready(filter.as_ref().is_none_or(|f| f.keeps(&line.content)))
        })
        .take_while(move |line| std::future::ready(until.is_none_or(|until| line.time <= until)))
        .map(|line| Ok(entry(&line.pod, &line.content, line.time, false)))
        .take_until(state.stopping().clone().cancelled_owned())
        .chain(stream::once(async {
            Ok(entry("", "", Timestamp::now(), true))
        }));
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn nodes() -> Vec<Node> {
        serde_json::from_value(json!([
            {"group": "apps", "kind": "Deployment", "namespace": "ns", "name": "web", "uid": "d"},
            {"group": "apps", "kind": "ReplicaSet", "namespace": "ns", "name": "web-1", "uid": "r",
             "parentRefs": [{"group": "apps", "kind": "Deployment", "namespace": "ns", "name": "web"}]},
            {"kind": "Pod", "namespace": "ns", "name": "web-1-a", "uid": "p1",
             "parentRefs": [{"group": "apps", "kind": "ReplicaSet", "namespace": "ns", "name": "web-1"}]},
            {"group": "apps", "kind": "StatefulSet", "namespace": "ns", "name": "db", "uid": "s"},
            {"kind": "Pod", "namespace": "ns", "name": "db-0", "uid": "p2",
             "parentRefs": [{"group": "apps", "kind": "StatefulSet", "namespace": "ns", "name": "db"}]},
        ]))
        .unwrap()
    }

    fn names(query: AppLogsQuery) -> Vec<String> {
        let nodes = nodes();
        selected_pods(&nodes, &query)
            .into_iter()
            .map(|node| node.name.clone())
            .collect()
    }

    #[test]
    fn pods_are_selected_by_themselves_or_their_owners() {
        assert_eq!(names(AppLogsQuery::default()), ["web-1-a", "db-0"]);
        let deployment = AppLogsQuery {
            kind: "Deployment".into(),
            ..AppLogsQuery::default()
        };
        assert_eq!(names(deployment), ["web-1-a"]);
        let by_name = AppLogsQuery {
            resource_name: "db".into(),
            group: "apps".into(),
            ..AppLogsQuery::default()
        };
        assert_eq!(names(by_name), ["db-0"]);
        let elsewhere = AppLogsQuery {
            namespace: "other".into(),
            ..AppLogsQuery::default()
        };
        assert!(names(elsewhere).is_empty());
    }

    #[test]
    fn filters_match_case_insensitively_unless_asked_and_invert_with_a_bang() {
        let filter = LineFilter::new("error", false).unwrap();
        assert!(filter.keeps("an ERROR here"));
        assert!(!filter.keeps("all fine"));
        let exact = LineFilter::new("Error", true).unwrap();
        assert!(!exact.keeps("an ERROR here"));
        let inverse = LineFilter::new("!error", false).unwrap();
        assert!(inverse.keeps("all fine"));
        assert!(LineFilter::new("", false).is_none());
    }

    #[test]
    fn kubelet_lines_split_into_time_and_content() {
        let lines = parse("p", "2026-12-06T22:00:00.123456789Z hello world\r\n");
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].content, "hello world");
        assert_eq!(
            lines[0].time,
            "2026-12-06T22:00:00.123456789Z"
                .parse::<Timestamp>()
                .unwrap()
        );
        assert!(parse("p", "no timestamp").is_empty());
    }
}
