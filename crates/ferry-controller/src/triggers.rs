//! What makes an Application reconcile besides its own changes: live changes to its resources
//! (from the cluster caches), finished operations, and project changes. Each trigger is an
//! `ObjectRef` fed to the kube-runtime controller, which merges repeated requests for one app.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use ferry_cache::{CacheEvent, ClusterCache};
use ferry_types::tracking::app_of_instance;
use futures::channel::mpsc;
use kube::discovery::ApiResource;
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::debug;

use crate::argocd_cm::LiveArgoSettings;
use crate::ignored_updates::SeenObjects;
use crate::stored_app::StoredApp;

/// A cheap handle to request reconciles.
#[derive(Clone)]
pub struct Triggers {
    tx: mpsc::UnboundedSender<ObjectRef<StoredApp>>,
    resource: ApiResource,
    namespace: String,
    /// Per app (by instance name), a number that changes with every live change the caches
    /// see of its resources: part of the key under which comparisons are reused. Numbers come
    /// from `changes` and are never handed out twice, so an app forgotten and seen again cannot
    /// come back to a number an old comparison was keyed under.
    generations: Arc<Mutex<HashMap<String, u64>>>,
    changes: Arc<AtomicU64>,
    /// Bumped for every instance at once when a cache subscriber lagged behind.
    epoch: Arc<Mutex<u64>>,
    apps: Arc<OnceLock<Store<StoredApp>>>,
    /// argocd-cm, for its ignoreResourceUpdates and health checks.
    argo_cm: Arc<LiveArgoSettings>,
}

impl Triggers {
    pub fn new(
        resource: ApiResource,
        namespace: &str,
        argo_cm: Arc<LiveArgoSettings>,
    ) -> (Self, mpsc::UnboundedReceiver<ObjectRef<StoredApp>>) {
        let (tx, rx) = mpsc::unbounded();
        let triggers = Self {
            tx,
            resource,
            namespace: namespace.to_string(),
            generations: Arc::default(),
            changes: Arc::default(),
            epoch: Arc::default(),
            apps: Arc::default(),
            argo_cm,
        };
        (triggers, rx)
    }

    /// Gives the triggers the controller's view of all Applications, for `all`.
    pub fn set_store(&self, store: Store<StoredApp>) {
        let _ = self.apps.set(store);
    }

    /// The controller's view of all Applications, once set.
    pub fn apps(&self) -> Option<&Store<StoredApp>> {
        self.apps.get()
    }

    /// The app with this key (its instance name: `<name>` in the control namespace,
    /// `<namespace>_<name>` elsewhere).
    pub fn app(&self, key: &str) {
        let (namespace, name) = app_of_instance(key, &self.namespace);
        let reference = ObjectRef::new_with(name, self.resource.clone()).within(namespace);
        let _ = self.tx.unbounded_send(reference);
    }

    fn object(&self, app: &StoredApp) {
        let reference = ObjectRef::from_obj_with(app, self.resource.clone());
        let _ = self.tx.unbounded_send(reference);
    }

    /// Every Application the controller knows.
    pub fn all(&self) {
        let Some(store) = self.apps.get() else { return };
        for app in store.state() {
            self.object(&app);
        }
    }

    /// Applications of one project.
    pub fn project(&self, project: &str) {
        let Some(store) = self.apps.get() else { return };
        for app in store.state() {
            let of = app.facts.project.as_str();
            let of = if of.is_empty() { "default" } else { of };
            if of == project {
                self.object(&app);
            }
        }
    }

    /// Forgets the live changes of every instance `keep` refuses (apps deleted, or another
    /// shard's).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.generations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|instance, _| keep(instance));
    }

    /// How many instances have live changes counted.
    pub fn generations_len(&self) -> usize {
        self.generations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Whether an Application with this instance name is known (true until the controller's
    /// view of the apps is set).
    fn is_app(&self, instance: &str) -> bool {
        let Some(store) = self.apps.get() else {
            return true;
        };
        let (namespace, name) = app_of_instance(instance, &self.namespace);
        let reference = ObjectRef::new_with(name, self.resource.clone()).within(namespace);
        store.get(&reference).is_some()
    }

    /// The live-change generation of an instance (see `generations`).
    pub fn live_generation(&self, instance: &str) -> (u64, u64) {
        let epoch = *self.epoch.lock().unwrap_or_else(|p| p.into_inner());
        let generation = self
            .generations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(instance)
            .copied()
            .unwrap_or_default();
        (epoch, generation)
    }

    /// Forwards a cluster cache's changes to the apps they concern until the guard returned is
    /// dropped (it holds the cache, to read the objects that changed).
    pub fn follow(&self, cache: &ClusterCache) -> DropGuard {
        let mut events = cache.subscribe();
        let cache = cache.clone();
        let triggers = self.clone();
        let stop = CancellationToken::new();
        let guard = stop.clone().drop_guard();
        tokio::spawn(async move {
            let mut seen = SeenObjects::default();
            loop {
                let event = tokio::select! {
                    _ = stop.cancelled() => return,
                    event = events.recv() => event,
                };
                match event {
                    Ok(event) => triggers.cache_changed(&cache, &mut seen, &event),
                    Err(RecvError::Lagged(_)) => {
                        seen.clear();
                        *triggers.epoch.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                        triggers.all();
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        guard
    }

    /// A change of one cached object: its apps' comparisons are outdated, and they are
    /// refreshed unless the change is one argocd-cm's ignoreResourceUpdates ignores.
    fn cache_changed(&self, cache: &ClusterCache, seen: &mut SeenObjects, event: &CacheEvent) {
        if event.apps.is_empty() {
            return;
        }
        let object = cache.get(&event.key);
        let refresh = seen.counts(event, object.as_deref(), &self.argo_cm.get());
        if !refresh {
            debug!(key = %event.key, "ignoring a change of object: none of the watched resource fields changed");
        }
        for instance in &event.apps {
            self.live_changed(instance, refresh);
        }
    }

    /// An app's resource changed: comparisons made before are not reused (an ignored update
    /// shows in the next one), and the app is refreshed when `refresh`.
    fn live_changed(&self, instance: &str, refresh: bool) {
        // Resources can carry instance names of no Application (another tool's labels):
        // nothing is kept for those.
        if !self.is_app(instance) {
            return;
        }
        let generation = self.changes.fetch_add(1, Ordering::Relaxed) + 1;
        self.generations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(instance.to_string(), generation);
        if refresh {
            self.app(instance);
        }
    }
}
