//! Prometheus metrics of the controller, served at `/metrics` in the Prometheus text format.
//! Names and labels are Argo CD's where Argo CD has the same metric, so its dashboards and
//! alerts keep working; the rest start with `ferry_`. docs/metrics.md lists them all.
//!
//! Counters and histograms are updated where things happen; per-app and per-cluster gauges are
//! read at scrape time from the controller's Application store and the cluster caches, so a
//! deleted app or cluster disappears from the next scrape without any bookkeeping.

mod kube_requests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ferry_git::{GitRequest, RequestObserver};
use ferry_render::Rendered;
use ferry_runtime::metrics::Exposition;
use ferry_types::Application;
use ferry_types::application::{DEFAULT_PROJECT, OperationPhase};
use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use kube_requests::KubeClients;

use crate::clusters::Clusters;
use crate::stored_app::StoredApp;

/// Argo CD's buckets, with smaller ones added: a reconcile that reuses its comparison takes
/// milliseconds.
const RECONCILE_BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0];
/// Argo CD's buckets for Git requests.
const GIT_BUCKETS: [f64; 8] = [0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0, 20.0];
/// From a cached render (milliseconds) to a slow Helm chart (a minute).
const RENDER_BUCKETS: [f64; 11] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncLabels {
    namespace: String,
    name: String,
    project: String,
    dest_server: String,
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    namespace: String,
    dest_server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GitLabels {
    repo: String,
    request_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RepoLabels {
    repo: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RenderLabels {
    source_type: String,
}

/// The controller's metrics; one per process, shared by everything that records.
pub struct Metrics {
    registry: Registry,
    syncs: Family<SyncLabels, Counter>,
    reconciles: HistogramFamily<ReconcileLabels>,
    git_requests: Family<GitLabels, Counter>,
    git_durations: HistogramFamily<GitLabels>,
    git_fetch_failures: Family<RepoLabels, Counter>,
    renders: HistogramFamily<RenderLabels>,
    kube_requests: Family<kube_requests::Labels, Counter>,
    sources: Arc<Sources>,
}

/// Whether an app is reported.
pub type AppFilter = Arc<dyn Fn(&StoredApp) -> bool + Send + Sync>;

/// How many apps each kind of per-app state is kept for.
pub type AppStateSource = Arc<dyn Fn() -> Vec<(&'static str, usize)> + Send + Sync>;

/// What the scrape-time gauges read, known once the controller runs.
#[derive(Default)]
struct Sources {
    /// The `argocd_app_sync_total` series of each app (namespace, name), so a deleted app's go
    /// with it.
    sync_series: Mutex<HashMap<(String, String), HashSet<SyncLabels>>>,
    app_state: OnceLock<AppStateSource>,
    apps: OnceLock<Store<StoredApp>>,
    clusters: OnceLock<Arc<Clusters>>,
    /// Which apps this controller reports: its shard's, as Argo CD's controllers do.
    reported: OnceLock<AppFilter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let syncs = Family::default();
        registry.register(
            "argocd_app_sync",
            "Number of application syncs, by the phase they ended in",
            syncs.clone(),
        );
        let reconciles: HistogramFamily<ReconcileLabels> =
            Family::new_with_constructor(|| Histogram::new(RECONCILE_BUCKETS));
        registry.register(
            "argocd_app_reconcile",
            "Application reconciliation performance in seconds",
            reconciles.clone(),
        );
        let git_requests = Family::default();
        registry.register(
            "argocd_git_request",
            "Number of Git requests (ls-remote, fetch)",
            git_requests.clone(),
        );
        let git_durations: HistogramFamily<GitLabels> =
            Family::new_with_constructor(|| Histogram::new(GIT_BUCKETS));
        registry.register(
            "argocd_git_request_duration_seconds",
            "Git request duration in seconds",
            git_durations.clone(),
        );
        let git_fetch_failures = Family::default();
        registry.register(
            "argocd_git_fetch_fail",
            "Number of failed Git fetches",
            git_fetch_failures.clone(),
        );
        let renders: HistogramFamily<RenderLabels> =
            Family::new_with_constructor(|| Histogram::new(RENDER_BUCKETS));
        registry.register(
            "ferry_render_duration_seconds",
            "Duration of rendering an application's sources in seconds, Git resolution and \
             render cache hits included",
            renders.clone(),
        );
        let kube_requests = Family::default();
        registry.register(
            "argocd_app_k8s_request",
            "Number of Kubernetes API requests",
            kube_requests.clone(),
        );
        let sources = Arc::new(Sources::default());
        registry.register_collector(Box::new(AppCollector(sources.clone())));
        registry.register_collector(Box::new(ClusterCollector(sources.clone())));
        registry.register_collector(Box::new(AppStateCollector(sources.clone())));
        Self {
            registry,
            syncs,
            reconciles,
            git_requests,
            git_durations,
            git_fetch_failures,
            renders,
            kube_requests,
            sources,
        }
    }
}

impl Metrics {
    /// Lets the scrape-time gauges see the Applications and the clusters.
    pub fn watch(&self, apps: Store<StoredApp>, clusters: Arc<Clusters>) {
        let _ = self.sources.apps.set(apps);
        let _ = self.sources.clusters.set(clusters);
    }

    /// Reports only the apps `reported` accepts (those of this controller's shard).
    pub fn report_only(&self, reported: AppFilter) {
        let _ = self.sources.reported.set(reported);
    }

    /// Builds the Kubernetes clients whose requests `argocd_app_k8s_request_total` counts.
    pub fn kube_clients(&self) -> KubeClients {
        KubeClients(self.kube_requests.clone())
    }

    /// Records Git requests; hand it to the repository cache.
    pub fn git_observer(&self) -> RequestObserver {
        let (requests, durations, failures) = (
            self.git_requests.clone(),
            self.git_durations.clone(),
            self.git_fetch_failures.clone(),
        );
        Arc::new(move |request: &GitRequest<'_>| {
            let labels = GitLabels {
                repo: request.repo.to_string(),
                request_type: request.operation.to_string(),
            };
            requests.get_or_create(&labels).inc();
            durations
                .get_or_create(&labels)
                .observe(request.duration.as_secs_f64());
            if request.operation == "fetch" && !request.succeeded {
                failures
                    .get_or_create(&RepoLabels { repo: labels.repo })
                    .inc();
            }
        })
    }

    pub fn reconciled(&self, app: &AppIdentity<'_>, duration: Duration) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                namespace: app.namespace.to_string(),
                dest_server: app.dest_server.to_string(),
            })
            .observe(duration.as_secs_f64());
    }

    /// Counts an operation that ended in `phase`.
    pub fn sync_completed(&self, app: &AppIdentity<'_>, phase: OperationPhase) {
        let phase = serde_json::to_value(phase)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let labels = SyncLabels {
            namespace: app.namespace.to_string(),
            name: app.name.to_string(),
            project: app.project.to_string(),
            dest_server: app.dest_server.to_string(),
            phase,
        };
        self.syncs.get_or_create(&labels).inc();
        self.sources
            .sync_series
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((labels.namespace.clone(), labels.name.clone()))
            .or_default()
            .insert(labels);
    }

    /// Drops the per-app series of every app `keep` refuses (by namespace and name): deleted
    /// apps, or another shard's.
    pub fn retain_apps(&self, keep: impl Fn(&str, &str) -> bool) {
        let mut series = self
            .sources
            .sync_series
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        series.retain(|(namespace, name), labels| {
            let kept = keep(namespace, name);
            if !kept {
                for labels in labels.iter() {
                    self.syncs.remove(labels);
                }
            }
            kept
        });
    }

    /// Lets `ferry_app_state_entries` see the controller's per-app state.
    pub fn watch_app_state(&self, source: AppStateSource) {
        let _ = self.sources.app_state.set(source);
    }

    /// Records a render: `rendered` is `None` when it failed.
    pub fn rendered(&self, rendered: Option<&Rendered>, duration: Duration) {
        let source_type = rendered.map_or_else(|| "Unknown".to_string(), source_type);
        self.renders
            .get_or_create(&RenderLabels { source_type })
            .observe(duration.as_secs_f64());
    }
}

impl Exposition for Metrics {
    fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// The per-app labels Argo CD puts on sync and reconcile metrics.
pub struct AppIdentity<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub project: &'a str,
    pub dest_server: &'a str,
}

impl<'a> AppIdentity<'a> {
    pub fn of_app(app: &'a Application) -> Self {
        Self {
            namespace: app.metadata.namespace.as_deref().unwrap_or_default(),
            name: app.metadata.name.as_deref().unwrap_or_default(),
            project: app.project(),
            dest_server: &app.spec.destination.server,
        }
    }

    /// Of an Application that may not parse as one.
    pub fn of_object(object: &'a StoredApp) -> Self {
        Self {
            namespace: object.metadata.namespace.as_deref().unwrap_or_default(),
            name: object.metadata.name.as_deref().unwrap_or_default(),
            project: project_or_default(&object.facts.project),
            dest_server: &object.facts.destination.server,
        }
    }
}

fn project_or_default(project: &str) -> &str {
    match project {
        "" => DEFAULT_PROJECT,
        project => project,
    }
}

/// The source type of a render: the one type of its rendered sources, `Mixed` for several.
fn source_type(rendered: &Rendered) -> String {
    let mut types: Vec<String> = rendered
        .sources
        .iter()
        .filter_map(|s| s.source_type)
        .map(|t| t.to_string())
        .collect();
    types.sort();
    types.dedup();
    match types.as_slice() {
        [one] => one.clone(),
        [] => "Unknown".into(),
        _ => "Mixed".into(),
    }
}

/// `argocd_app_info`, one series per Application, as the controller's store has it now.
struct AppCollector(Arc<Sources>);

impl fmt::Debug for AppCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppCollector")
    }
}

impl Collector for AppCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let Some(store) = self.0.apps.get() else {
            return Ok(());
        };
        let mut family = encoder.encode_descriptor(
            "argocd_app_info",
            "Information about application",
            None,
            MetricType::Gauge,
        )?;
        let reported = self.0.reported.get();
        for app in store.state() {
            if reported.is_some_and(|reported| !reported(&app)) {
                continue;
            }
            let labels = AppInfo::of(&app);
            ConstGauge::new(1).encode(family.encode_family(&labels.labels())?)?;
        }
        Ok(())
    }
}

/// The labels of one app's `argocd_app_info`, Argo CD's set.
#[derive(Debug, PartialEq)]
struct AppInfo<'a> {
    namespace: &'a str,
    name: &'a str,
    project: &'a str,
    autosync_enabled: bool,
    repo: String,
    dest_server: &'a str,
    dest_namespace: &'a str,
    sync_status: &'a str,
    health_status: &'a str,
    operation: &'a str,
}

impl<'a> AppInfo<'a> {
    fn of(app: &'a StoredApp) -> Self {
        let facts = &app.facts;
        let repo = ferry_git::repo_url::scrub(&ferry_git::repo_url::normalize(&facts.repo_url));
        let operation = if app.metadata.deletion_timestamp.is_some() {
            "delete"
        } else if facts.sync_requested {
            "sync"
        } else {
            ""
        };
        let or_unknown = |status: &'a str| match status {
            "" => "Unknown",
            status => status,
        };
        Self {
            namespace: app.metadata.namespace.as_deref().unwrap_or_default(),
            name: app.metadata.name.as_deref().unwrap_or_default(),
            project: project_or_default(&facts.project),
            autosync_enabled: facts.automated,
            repo,
            dest_server: &facts.destination.server,
            dest_namespace: &facts.destination.namespace,
            sync_status: or_unknown(&facts.sync_status),
            health_status: or_unknown(&facts.health_status),
            operation,
        }
    }

    fn labels(&self) -> [(&str, &str); 10] {
        [
            ("namespace", self.namespace),
            ("name", self.name),
            ("project", self.project),
            (
                "autosync_enabled",
                if self.autosync_enabled {
                    "true"
                } else {
                    "false"
                },
            ),
            ("repo", &self.repo),
            ("dest_server", self.dest_server),
            ("dest_namespace", self.dest_namespace),
            ("sync_status", self.sync_status),
            ("health_status", self.health_status),
            ("operation", self.operation),
        ]
    }
}

/// `ferry_app_state_entries`: how many apps the controller keeps each kind of state for, which
/// follows the apps it reconciles (a deleted app's is gone).
struct AppStateCollector(Arc<Sources>);

impl fmt::Debug for AppStateCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppStateCollector")
    }
}

impl Collector for AppStateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let Some(source) = self.0.app_state.get() else {
            return Ok(());
        };
        let mut entries = source();
        let series = self.0.sync_series.lock().map_or(0, |s| s.len());
        entries.push(("sync_series", series));
        let mut family = encoder.encode_descriptor(
            "ferry_app_state_entries",
            "Number of apps the controller keeps each kind of per-app state for",
            None,
            MetricType::Gauge,
        )?;
        for (kind, count) in entries {
            ConstGauge::new(count as i64).encode(family.encode_family(&[("kind", kind)])?)?;
        }
        Ok(())
    }
}

/// Per-cluster gauges from the caches that have started: `argocd_cluster_api_resource_objects`,
/// `argocd_cluster_api_resources` and `argocd_cluster_info`.
struct ClusterCollector(Arc<Sources>);

impl fmt::Debug for ClusterCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterCollector")
    }
}

impl Collector for ClusterCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let Some(clusters) = self.0.clusters.get() else {
            return Ok(());
        };
        // One series per server URL: a Secret for the in-cluster server replaces the local
        // cluster (registered clusters come last and win).
        let mut by_server = BTreeMap::new();
        for cluster in clusters.all() {
            if let Some(cache) = cluster.started_cache() {
                by_server.insert(cluster.server.clone(), (cluster.clone(), cache.stats()));
            }
        }
        let mut objects = encoder.encode_descriptor(
            "argocd_cluster_api_resource_objects",
            "Number of Kubernetes objects in the cluster cache",
            None,
            MetricType::Gauge,
        )?;
        for (server, (_, stats)) in &by_server {
            ConstGauge::new(stats.objects as i64)
                .encode(objects.encode_family(&[("server", server.as_str())])?)?;
        }
        let mut kinds = encoder.encode_descriptor(
            "argocd_cluster_api_resources",
            "Number of Kubernetes resource kinds the cluster cache watches",
            None,
            MetricType::Gauge,
        )?;
        for (server, (_, stats)) in &by_server {
            ConstGauge::new(stats.kinds.len() as i64)
                .encode(kinds.encode_family(&[("server", server.as_str())])?)?;
        }
        let mut info = encoder.encode_descriptor(
            "argocd_cluster_info",
            "Information about cluster",
            None,
            MetricType::Gauge,
        )?;
        for (server, (cluster, _)) in &by_server {
            let labels = [
                ("server", server.as_str()),
                ("name", cluster.name.as_str()),
                ("k8s_version", cluster.known_version().unwrap_or_default()),
            ];
            ConstGauge::new(1).encode(info.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_render::SourceRevision;
    use ferry_types::source::SourceType;
    use kube::api::ApiResource;
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;
    use serde_json::{Value, json};

    fn app(value: Value) -> StoredApp {
        serde_json::from_value(value).unwrap()
    }

    fn guestbook() -> StoredApp {
        app(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "guestbook", "namespace": "argocd"},
            "spec": {
                "project": "team-a",
                "source": {"repoURL": "https://alice:s3cret@git.example.com/Org/Apps.git"},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"},
                "syncPolicy": {"automated": {"prune": true}},
            },
            "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}},
            "operation": {"sync": {"revision": "HEAD"}},
        }))
    }

    #[test]
    fn app_info_has_argo_cds_labels_and_no_password() {
        let object = guestbook();
        let info = AppInfo::of(&object);
        assert_eq!(
            info,
            AppInfo {
                namespace: "argocd",
                name: "guestbook",
                project: "team-a",
                autosync_enabled: true,
                repo: "https://alice:***@git.example.com/org/apps".into(),
                dest_server: "https://kubernetes.default.svc",
                dest_namespace: "web",
                sync_status: "Synced",
                health_status: "Healthy",
                operation: "sync",
            }
        );

        // Bare: default project, Unknown statuses, no automation, the first of `sources`.
        let bare = app(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "bare", "namespace": "argocd"},
            "spec": {
                "source": {"repoURL": "https://ignored.example.com/a"},
                "sources": [{"repoURL": "https://git.example.com/b"}, {"repoURL": "x"}],
                "destination": {"name": "in-cluster"},
                "syncPolicy": {"automated": {"enabled": false}},
            },
        }));
        let info = AppInfo::of(&bare);
        assert_eq!(
            (info.project, info.autosync_enabled, info.repo.as_str()),
            ("default", false, "https://git.example.com/b")
        );
        assert_eq!(
            (info.sync_status, info.health_status),
            ("Unknown", "Unknown")
        );
        assert_eq!((info.dest_server, info.operation), ("", ""));
    }

    /// The whole exposition for one synced, reconciled app: names, label sets and types as a
    /// scraper sees them.
    #[tokio::test]
    async fn the_registry_renders_argo_cds_names_in_the_text_format() {
        let metrics = Metrics::default();
        let mut writer = reflector::store::Writer::new(ApiResource::erase::<Application>(&()));
        writer.apply_watcher_event(&Event::Apply(guestbook()));
        let store = writer.as_reader();
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        let clusters = Arc::new(Clusters::new(
            kube::Client::try_from(config).unwrap(),
            metrics.kube_clients(),
        ));
        metrics.watch(store, clusters);

        let object = guestbook();
        let app = AppIdentity::of_object(&object);
        metrics.reconciled(&app, Duration::from_millis(30));
        metrics.sync_completed(&app, OperationPhase::Succeeded);
        metrics.sync_completed(&app, OperationPhase::Succeeded);
        let observe = metrics.git_observer();
        observe(&GitRequest {
            repo: "https://git.example.com/org/apps",
            operation: "fetch",
            duration: Duration::from_millis(300),
            succeeded: false,
        });
        let rendered = Rendered {
            objects: Vec::new(),
            sources: vec![SourceRevision {
                repo_url: "https://git.example.com/org/apps".into(),
                revision: "abc".into(),
                source_type: Some(SourceType::Helm),
                objects: 0,
            }],
        };
        metrics.rendered(Some(&rendered), Duration::from_millis(200));
        metrics.rendered(None, Duration::from_millis(5));

        let text = metrics.render().unwrap();
        for line in [
            "# TYPE argocd_app_sync_total counter",
            r#"argocd_app_sync_total{namespace="argocd",name="guestbook",project="team-a",dest_server="https://kubernetes.default.svc",phase="Succeeded"} 2"#,
            "# TYPE argocd_app_reconcile histogram",
            r#"argocd_app_reconcile_bucket{namespace="argocd",dest_server="https://kubernetes.default.svc",le="0.05"} 1"#,
            r#"argocd_app_reconcile_bucket{namespace="argocd",dest_server="https://kubernetes.default.svc",le="0.01"} 0"#,
            r#"argocd_app_reconcile_count{namespace="argocd",dest_server="https://kubernetes.default.svc"} 1"#,
            r#"argocd_git_request_total{repo="https://git.example.com/org/apps",request_type="fetch"} 1"#,
            r#"argocd_git_request_duration_seconds_count{repo="https://git.example.com/org/apps",request_type="fetch"} 1"#,
            r#"argocd_git_fetch_fail_total{repo="https://git.example.com/org/apps"} 1"#,
            r#"ferry_render_duration_seconds_count{source_type="Helm"} 1"#,
            r#"ferry_render_duration_seconds_count{source_type="Unknown"} 1"#,
            "# TYPE argocd_app_info gauge",
            r#"argocd_app_info{namespace="argocd",name="guestbook",project="team-a",autosync_enabled="true",repo="https://alice:***@git.example.com/org/apps",dest_server="https://kubernetes.default.svc",dest_namespace="web",sync_status="Synced",health_status="Healthy",operation="sync"} 1"#,
            "# TYPE argocd_cluster_api_resource_objects gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "no line {line}\n{text}");
        }
        assert!(!text.contains("s3cret"), "{text}");
        // No cache has started yet: no cluster series.
        assert!(!text.contains("argocd_cluster_api_resources{"), "{text}");
    }
}
