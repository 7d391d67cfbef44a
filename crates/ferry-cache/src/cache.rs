//! The cluster cache: discovery, one watch per kind (and namespace), the store they feed, and the
//! queries the controller, diff and sync engine run against it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockWriteGuard};
use std::time::Duration;

use ferry_types::ResourceKey;
use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, PartialObjectMeta};
use kube::discovery::ApiResource;
use kube::runtime::WatchStreamExt;
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, DefaultBackoff, Event};
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::GroupKind;
use crate::config::CacheConfig;
use crate::discovery::{Discovered, ServedKind, discover};
use crate::error::CacheError;
use crate::filter::CompiledFilter;
use crate::object::CachedObject;
use crate::store::{CacheEvent, KindStats, Store, TreeNode};
use crate::tracking::TrackingMethod;
use crate::watch::{self as kind_watch, Scope};

/// CRD changes come in bursts (created, names accepted, established): let them settle.
const CRD_SETTLE: Duration = Duration::from_millis(500);
/// Discovery can trail a CRD's Established condition; look once more shortly after.
const CRD_RECHECK: Duration = Duration::from_secs(2);

/// A live view of a cluster, kept current by watches. Cheap to clone; the watches stop when the
/// last clone is dropped.
#[derive(Clone)]
pub struct ClusterCache {
    shared: Arc<Shared>,
    _tasks: Arc<Tasks>,
}

/// What the cache holds and how its watches are doing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub objects: usize,
    pub approx_bytes: usize,
    /// Every watched kind, with what is cached of it.
    pub kinds: BTreeMap<GroupKind, KindStats>,
    /// Running watch streams (one per kind, or per kind and namespace).
    pub watches: usize,
    pub synced: bool,
    /// Watches (and discovery) whose last attempt failed, with the error.
    pub failing: Vec<String>,
}

impl ClusterCache {
    /// Starts the cache and waits until discovery and every initial list are done (at most
    /// `config.sync_timeout`). Must run inside a tokio runtime.
    pub async fn start(client: Client, config: CacheConfig) -> Result<Self, CacheError> {
        let timeout = config.sync_timeout;
        let cache = Self::spawn(client, config)?;
        cache.wait_synced(timeout).await?;
        Ok(cache)
    }

    /// Starts the cache without waiting for it to sync; see `wait_synced`.
    pub fn spawn(client: Client, config: CacheConfig) -> Result<Self, CacheError> {
        let filter = CompiledFilter::new(&config.filter)?;
        let (events, _) = broadcast::channel(config.event_capacity.max(1));
        let shared = Arc::new(Shared {
            client,
            filter,
            config,
            store: RwLock::default(),
            discovered: RwLock::default(),
            events,
            health: Mutex::default(),
            health_changed: watch::Sender::new(()),
            watches: Mutex::default(),
            reconciling: tokio::sync::Mutex::new(()),
            crd_changed: Notify::new(),
            closed: AtomicBool::new(false),
        });
        let background = vec![
            tokio::spawn(discovery_loop(shared.clone())),
            tokio::spawn(watch_crds(shared.clone())),
        ];
        let tasks = Tasks {
            shared: shared.clone(),
            background,
        };
        Ok(Self {
            shared,
            _tasks: Arc::new(tasks),
        })
    }

    /// Waits until discovery has run and every watched kind has been listed.
    pub async fn wait_synced(&self, timeout: Duration) -> Result<(), CacheError> {
        let mut changed = self.shared.health_changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changed.borrow_and_update();
            if self.shared.health().synced() {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                return Err(CacheError::NotSynced {
                    timeout,
                    pending: self.shared.health().pending(),
                });
            }
        }
    }

    /// Whether discovery has run and every watched kind has been listed.
    pub fn is_synced(&self) -> bool {
        self.shared.health().synced()
    }

    /// Runs discovery now (instead of waiting for the next round or a CRD event), starting and
    /// stopping watches to match. For callers that just created or deleted CRDs.
    pub async fn rediscover(&self) -> Result<(), CacheError> {
        let found = discover(&self.shared.client)
            .await
            .map_err(CacheError::Discovery)?;
        self.shared.reconcile(found).await;
        Ok(())
    }

    pub fn get(&self, key: &ResourceKey) -> Option<Arc<CachedObject>> {
        self.shared.store().get(key)
    }

    /// The objects tracked to an app instance (see `tracking::instance_name`), sorted by key. As
    /// in Argo CD only top-level objects count: owned ones (a Deployment's ReplicaSets, even when
    /// they carry the tracking label) are part of its `tree`.
    pub fn app_resources(&self, app: &str) -> Vec<Arc<CachedObject>> {
        self.shared.store().app_resources(app)
    }

    /// The objects of one namespace, sorted by key (for orphaned-resource checks).
    pub fn namespace_resources(&self, namespace: &str) -> Vec<Arc<CachedObject>> {
        self.shared.store().namespace_objects(namespace)
    }

    /// The objects whose ownerReferences name `uid`.
    pub fn children(&self, uid: &str) -> Vec<Arc<CachedObject>> {
        self.shared.store().children(uid)
    }

    /// The app's resources and everything they own, transitively, with parent references.
    pub fn tree(&self, app: &str) -> Vec<TreeNode> {
        self.shared.store().tree(app)
    }

    /// The API resource of a kind at its preferred version, and whether it is namespaced. Every
    /// served kind resolves, watched or not.
    pub fn resolve(&self, group: &str, kind: &str) -> Option<(ApiResource, bool)> {
        let discovered = read(&self.shared.discovered);
        let served = discovered.preferred.get(&GroupKind::new(group, kind))?;
        Some((served.resource.clone(), served.namespaced))
    }

    /// The API resource of a kind at exactly `api_version`, if the server serves that version.
    pub fn resolve_api_version(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Option<(ApiResource, bool)> {
        let discovered = read(&self.shared.discovered);
        let served = discovered
            .versions
            .get(&(api_version.to_string(), kind.to_string()))?;
        Some((served.resource.clone(), served.namespaced))
    }

    /// Every (apiVersion, kind) the server serves, in no particular order.
    pub fn served_kinds(&self) -> Vec<(String, String)> {
        read(&self.shared.discovered)
            .versions
            .keys()
            .cloned()
            .collect()
    }

    /// Changes from now on. A subscriber that falls more than `config.event_capacity` events
    /// behind gets `RecvError::Lagged` and should treat every app as changed.
    pub fn subscribe(&self) -> broadcast::Receiver<CacheEvent> {
        self.shared.events.subscribe()
    }

    pub fn stats(&self) -> CacheStats {
        let (objects, mut kinds) = {
            let store = self.shared.store();
            (store.len(), store.kind_stats())
        };
        let health = self.shared.health();
        for scope in health.scopes.keys() {
            kinds.entry(scope.kind.clone()).or_default();
        }
        CacheStats {
            objects,
            approx_bytes: kinds.values().map(|k| k.approx_bytes).sum(),
            kinds,
            watches: health.scopes.len(),
            synced: health.synced(),
            failing: health.failing(),
        }
    }

    pub fn tracking(&self) -> &TrackingMethod {
        self.shared.tracking()
    }
}

/// State shared by the cache handle and its tasks.
pub(crate) struct Shared {
    client: Client,
    config: CacheConfig,
    filter: CompiledFilter,
    store: RwLock<Store>,
    discovered: RwLock<Discovered>,
    events: broadcast::Sender<CacheEvent>,
    health: Mutex<Health>,
    /// Bumped whenever `health` changes, to wake `wait_synced`.
    health_changed: watch::Sender<()>,
    /// The running watch tasks by kind.
    watches: Mutex<HashMap<GroupKind, Running>>,
    /// Serializes discovery results being applied (the loop and `rediscover`).
    reconciling: tokio::sync::Mutex<()>,
    crd_changed: Notify,
    /// Set when the cache is dropped: no watch may start after that.
    closed: AtomicBool,
}

struct Running {
    served: ServedKind,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Default)]
struct Health {
    discovered: bool,
    discovery_error: Option<String>,
    scopes: BTreeMap<Scope, ScopeHealth>,
}

#[derive(Default)]
struct ScopeHealth {
    listed: bool,
    error: Option<String>,
}

impl Health {
    fn synced(&self) -> bool {
        self.discovered && self.scopes.values().all(|s| s.listed)
    }

    fn pending(&self) -> Vec<String> {
        let mut pending = Vec::new();
        if !self.discovered {
            let error = self.discovery_error.as_deref().unwrap_or("not finished");
            pending.push(format!("API discovery: {error}"));
        }
        for (scope, health) in &self.scopes {
            if !health.listed {
                let error = health
                    .error
                    .as_deref()
                    .unwrap_or("initial list in progress");
                pending.push(format!("{scope}: {error}"));
            }
        }
        pending
    }

    fn failing(&self) -> Vec<String> {
        let discovery = self
            .discovery_error
            .iter()
            .map(|error| format!("API discovery: {error}"));
        let scopes = self
            .scopes
            .iter()
            .filter_map(|(scope, h)| Some(format!("{scope}: {}", h.error.as_ref()?)));
        discovery.chain(scopes).collect()
    }
}

impl Shared {
    pub(crate) fn tracking(&self) -> &TrackingMethod {
        &self.config.tracking
    }

    pub(crate) fn watcher_config(&self) -> watcher::Config {
        let config = watcher::Config::default();
        match self.config.watch_timeout {
            Some(seconds) => config.timeout(seconds),
            None => config,
        }
    }

    fn store(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        read(&self.store)
    }

    pub(crate) fn store_mut(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(|e| e.into_inner())
    }

    fn health(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update_health(&self, change: impl FnOnce(&mut Health)) {
        change(&mut self.health());
        self.health_changed.send_replace(());
    }

    pub(crate) fn publish(&self, events: Vec<CacheEvent>) {
        for event in events {
            // Nobody listening is fine: the store is the source of truth.
            let _ = self.events.send(event);
        }
    }

    pub(crate) fn listed(&self, scope: &Scope) {
        self.update_health(|health| {
            if let Some(scope) = health.scopes.get_mut(scope) {
                scope.listed = true;
                scope.error = None;
            }
        });
    }

    /// A watch failed. An outage of the cluster fails every watch (one per kind): only the
    /// first to fail is a warning, the others and their retries are debug lines.
    pub(crate) fn watch_failed(&self, scope: &Scope, err: &watcher::Error, first: bool) {
        let mut others_failing = false;
        self.update_health(|health| {
            others_failing = health
                .scopes
                .iter()
                .any(|(other, h)| other != scope && h.error.is_some());
            if let Some(scope) = health.scopes.get_mut(scope) {
                scope.error = Some(err.to_string());
            }
        });
        if first && !others_failing {
            warn!(
                "watch of {scope} failed, retrying with backoff (serving the last known state; \
                 other watches failing now are logged at debug level): {err}"
            );
        } else if first {
            debug!("watch of {scope} failed too: {err}");
        } else {
            debug!("watch of {scope} still failing: {err}");
        }
    }

    /// A watch works again; the recovery is logged once, when no watch fails any more.
    pub(crate) fn watch_recovered(&self, scope: &Scope) {
        let mut still_failing = 0;
        self.update_health(|health| {
            if let Some(scope) = health.scopes.get_mut(scope) {
                scope.error = None;
            }
            still_failing = health.scopes.values().filter(|h| h.error.is_some()).count();
        });
        if still_failing == 0 {
            info!("watches recovered (the last: {scope})");
        } else {
            debug!("watch of {scope} recovered, {still_failing} still failing");
        }
    }

    /// The watches a served kind needs under this configuration.
    fn scopes_for(&self, kind: &GroupKind, served: &ServedKind) -> Vec<Scope> {
        if !served.watchable || !self.filter.watches(kind) {
            return Vec::new();
        }
        let scope = |namespace: Option<&String>| Scope {
            kind: kind.clone(),
            namespace: namespace.cloned(),
        };
        if self.config.namespaces.is_empty() {
            vec![scope(None)]
        } else if served.namespaced {
            self.config.namespaces.iter().map(Some).map(scope).collect()
        } else if self.config.cluster_resources {
            vec![scope(None)]
        } else {
            Vec::new()
        }
    }

    /// Makes the running watches match a discovery result: new kinds start, vanished (or
    /// re-versioned) ones stop and their objects leave the cache.
    async fn reconcile(self: &Arc<Self>, found: Discovered) {
        let _serial = self.reconciling.lock().await;
        let wanted: HashMap<GroupKind, (ServedKind, Vec<Scope>)> = found
            .preferred
            .iter()
            .map(|(kind, served)| {
                (
                    kind.clone(),
                    (served.clone(), self.scopes_for(kind, served)),
                )
            })
            .filter(|(_, (_, scopes))| !scopes.is_empty())
            .collect();
        *self.discovered.write().unwrap_or_else(|e| e.into_inner()) = found;

        let stopping: Vec<(GroupKind, Running)> = {
            let mut watches = lock(&self.watches);
            let stale: Vec<GroupKind> = watches
                .iter()
                .filter(|(kind, running)| {
                    wanted
                        .get(*kind)
                        .is_none_or(|(served, _)| *served != running.served)
                })
                .map(|(kind, _)| kind.clone())
                .collect();
            stale
                .into_iter()
                .filter_map(|kind| watches.remove_entry(&kind))
                .collect()
        };
        for (kind, running) in stopping {
            for task in running.tasks {
                task.abort();
                // Wait until it is gone so it cannot write after the cleanup below.
                let _ = task.await;
            }
            self.update_health(|health| health.scopes.retain(|scope, _| scope.kind != kind));
            let removed = self.store_mut().retain(&kind, None, &HashSet::new());
            info!(
                "stopped watching {kind} ({} objects dropped)",
                removed.len()
            );
            self.publish(removed);
        }

        {
            let mut watches = lock(&self.watches);
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            let mut health = self.health();
            for (kind, (served, scopes)) in wanted {
                if watches.contains_key(&kind) {
                    continue;
                }
                debug!("watching {kind} at {}", served.resource.api_version);
                let tasks = scopes
                    .into_iter()
                    .map(|scope| {
                        health.scopes.insert(scope.clone(), ScopeHealth::default());
                        self.spawn_watch(&served, scope)
                    })
                    .collect();
                watches.insert(kind, Running { served, tasks });
            }
            health.discovered = true;
            health.discovery_error = None;
        }
        self.health_changed.send_replace(());
    }

    fn spawn_watch(self: &Arc<Self>, served: &ServedKind, scope: Scope) -> JoinHandle<()> {
        let client = self.client.clone();
        let resource = served.resource.clone();
        let api = match &scope.namespace {
            Some(namespace) => Api::namespaced_with(client, namespace, &resource),
            None => Api::all_with(client, &resource),
        };
        tokio::spawn(kind_watch::run(self.clone(), api, resource, scope))
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        for (_, running) in lock(&self.watches).drain() {
            running.tasks.iter().for_each(JoinHandle::abort);
        }
    }
}

/// Discovery now, then again every `discovery_interval` or when CRDs change; failures retry with
/// backoff while the last good result stays in force.
async fn discovery_loop(shared: Arc<Shared>) {
    let mut backoff = DefaultBackoff::default();
    let mut recheck = false;
    loop {
        let wait = match discover(&shared.client).await {
            Ok(found) => {
                shared.reconcile(found).await;
                backoff.reset();
                if std::mem::take(&mut recheck) {
                    CRD_RECHECK
                } else {
                    shared.config.discovery_interval
                }
            }
            Err(err) => {
                warn!("API discovery failed, retrying with backoff: {err}");
                shared.update_health(|health| health.discovery_error = Some(err.to_string()));
                backoff.next().unwrap_or(shared.config.discovery_interval)
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.crd_changed.notified() => {
                tokio::time::sleep(CRD_SETTLE).await;
                recheck = true;
            }
        }
    }
}

/// Wakes the discovery loop whenever a CustomResourceDefinition changes. Watches metadata only:
/// the CRDs themselves, if watched at all, are cached by their own kind watch.
async fn watch_crds(shared: Arc<Shared>) {
    let api: Api<PartialObjectMeta<CustomResourceDefinition>> = Api::all(shared.client.clone());
    let mut events = watcher::watcher(api, shared.watcher_config())
        .default_backoff()
        .boxed();
    let mut listed_once = false;
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Apply(_) | Event::Delete(_)) => shared.crd_changed.notify_one(),
            // A re-list may stand for changes the broken watch never delivered.
            Ok(Event::InitDone) => {
                if std::mem::replace(&mut listed_once, true) {
                    shared.crd_changed.notify_one();
                }
            }
            Ok(Event::Init | Event::InitApply(_)) => {}
            Err(err) => debug!("CRD watch failed, retrying with backoff: {err}"),
        }
    }
}

/// Stops every task when the last `ClusterCache` clone goes.
struct Tasks {
    shared: Arc<Shared>,
    background: Vec<JoinHandle<()>>,
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.background.iter().for_each(JoinHandle::abort);
        self.shared.close();
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
