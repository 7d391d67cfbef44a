//! What every reconcile and operation shares.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use ferry_appstate::Comparison;
use ferry_render::Renderer;
use ferry_types::tracking::{app_of_instance, instance_name};
use ferry_types::{AppProject, Application};
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};

use crate::argocd_cm::LiveArgoSettings;
use crate::backoff::ErrorBackoff;
use crate::clusters::Clusters;
use crate::commit_signatures::CommitSignatures;
use crate::metrics::Metrics;
use crate::operation::Operations;
use crate::settings::ControllerSettings;
use crate::sharding::Sharding;
use crate::stored_app::StoredApp;
use crate::triggers::Triggers;

pub struct Context {
    pub settings: ControllerSettings,
    /// Applications in the control namespace, read and written as JSON.
    pub apps: Api<DynamicObject>,
    /// For the Applications of other namespaces (`--application-namespaces`).
    pub client: kube::Client,
    pub projects: Api<AppProject>,
    pub project_store: Store<AppProject>,
    pub clusters: Arc<Clusters>,
    pub renderer: Arc<Renderer>,
    /// Commit signatures, for projects that list `signatureKeys`.
    pub signatures: CommitSignatures,
    /// What `argocd-cm` says now (health checks, system-wide ignoreDifferences, kustomize
    /// options, resource filter, resync), swapped when it changes.
    pub argo_cm: Arc<LiveArgoSettings>,
    pub triggers: Triggers,
    pub operations: Operations,
    /// Server-side dry-run answers by resource state, when kept.
    pub predictions: Option<ferry_diff::Predictions>,
    /// The last comparison of each app, reused while nothing it depends on changed.
    pub comparisons: Mutex<HashMap<String, CachedComparison>>,
    /// The status each app was last given here: a reconcile of a view that trails that write
    /// finds the same status and writes nothing.
    pub written_statuses: Mutex<HashMap<String, WrittenStatus>>,
    /// When apps whose comparison failed are looked at again.
    pub error_backoff: ErrorBackoff,
    /// When apps whose reconcile failed (an error, not a failed comparison) are tried again.
    pub reconcile_backoff: ErrorBackoff,
    pub metrics: Arc<Metrics>,
    /// Which apps this replica reconciles (all of them unless sharded).
    pub sharding: Sharding,
}

/// A status as written to an app: the app's uid, a digest of the status, the fields the
/// controller owns as written (compact JSON), when.
pub struct WrittenStatus {
    pub uid: String,
    pub digest: Vec<u8>,
    pub owned: String,
    pub at: std::time::Instant,
}

/// A comparison and the fingerprint of its inputs (spec, revisions, project, live changes).
#[derive(Clone)]
pub struct CachedComparison {
    pub key: String,
    pub comparison: Arc<Comparison>,
}

impl Context {
    /// The Applications of `namespace`, read and written as JSON.
    pub fn apps_in(&self, namespace: &str) -> Api<DynamicObject> {
        if namespace.is_empty() || namespace == self.settings.namespace {
            return self.apps.clone();
        }
        let resource = ApiResource::erase::<Application>(&());
        Api::namespaced_with(self.client.clone(), namespace, &resource)
    }

    /// An app's key: its instance name.
    pub fn key_of(&self, app: &impl ResourceExt) -> String {
        let namespace = app.namespace().filter(|ns| *ns != self.settings.namespace);
        instance_name(&app.name_any(), namespace.as_deref())
    }

    /// The Applications API and the name for an app's key, its instance name (`<name>`, or
    /// `<namespace>_<name>` outside the control namespace): comparisons, backoffs and running
    /// operations are kept under it.
    pub fn app_api<'a>(&'a self, key: &'a str) -> (Api<DynamicObject>, &'a str) {
        let (namespace, name) = app_of_instance(key, &self.settings.namespace);
        (self.apps_in(namespace), name)
    }

    pub fn cached_comparison(&self, app: &str, key: &str) -> Option<Arc<Comparison>> {
        let cache = self.comparisons.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(app)
            .filter(|c| c.key == key)
            .map(|c| c.comparison.clone())
    }

    pub fn remember_comparison(&self, app: &str, key: String, comparison: Arc<Comparison>) {
        self.comparisons
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(app.to_string(), CachedComparison { key, comparison });
    }

    /// Whether a comparison of `app` is kept (none: the first, or the first since a sync).
    pub fn has_comparison(&self, app: &str) -> bool {
        let cache = self.comparisons.lock().unwrap_or_else(|p| p.into_inner());
        cache.contains_key(app)
    }

    pub fn forget_comparison(&self, app: &str) {
        self.comparisons
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(app);
    }

    /// Forgets everything kept about the app with this key: it was deleted.
    pub fn forget_app(&self, key: &str) {
        self.retain_apps(|app| app != key);
    }

    /// Forgets the apps this controller no longer reconciles: gone from its view of the
    /// Applications (deleted while no watch event said so, or since), or another shard's.
    pub fn forget_unmanaged(&self, apps: &Store<StoredApp>) {
        let managed: HashSet<String> = apps
            .state()
            .iter()
            .filter(|app| self.sharding.manages_app(&self.clusters, app))
            .map(|app| self.key_of(app.as_ref()))
            .collect();
        self.retain_apps(|app| managed.contains(app));
    }

    /// Keeps per-app state (comparison, last written status, backoffs, the end of its last
    /// operation, live-change generation, per-app metrics) only for the apps `keep` accepts,
    /// by key. A running operation is left to end: it removes itself, and the next sweep
    /// removes what its end left.
    fn retain_apps(&self, keep: impl Fn(&str) -> bool) {
        self.comparisons
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|app, _| keep(app));
        self.written_statuses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|app, _| keep(app));
        self.error_backoff.retain(&keep);
        self.reconcile_backoff.retain(&keep);
        self.operations.retain(&keep);
        self.triggers.retain(&keep);
        let control = self.settings.namespace.as_str();
        self.metrics.retain_apps(|namespace, name| {
            let foreign = Some(namespace).filter(|ns| !ns.is_empty() && *ns != control);
            keep(&instance_name(name, foreign))
        });
    }

    /// How many apps each kind of per-app state is kept for, for `ferry_app_state_entries`.
    pub fn app_state_entries(&self) -> Vec<(&'static str, usize)> {
        fn len<V>(map: &Mutex<HashMap<String, V>>) -> usize {
            map.lock().map_or(0, |m| m.len())
        }
        vec![
            ("comparisons", len(&self.comparisons)),
            ("written_statuses", len(&self.written_statuses)),
            ("error_backoffs", self.error_backoff.len()),
            ("reconcile_backoffs", self.reconcile_backoff.len()),
            ("ended_operations", self.operations.finished_len()),
            ("live_generations", self.triggers.generations_len()),
        ]
    }
}
