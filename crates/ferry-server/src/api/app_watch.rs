//! The Applications of the control namespace (and of `--application-namespaces`) as the API
//! server knows them: one watch on the
//! Kubernetes API feeds a map that lists are served from (no API server round trip per list, as
//! Argo CD's server lists from an informer) and a broadcast of every change that the event
//! stream (`/api/v1/stream/applications`) forwards to its clients.
//!
//! The map is kept here rather than in a kube-runtime reflector store because the stream needs
//! to tell ADDED from MODIFIED and to notice apps that vanished while the watch was re-listing.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ferry_types::Application;
use ferry_types::allowed_namespaces::AllowedNamespaces;
use futures::{StreamExt, TryStreamExt};
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{RwLock, broadcast, watch};

/// The map's key of an app: `<namespace>/<name>`.
fn key(app: &Application) -> String {
    format!(
        "{}/{}",
        app.metadata.namespace.as_deref().unwrap_or_default(),
        app.metadata.name.as_deref().unwrap_or_default()
    )
}

/// How many changes a slow stream client may fall behind before it is disconnected (it then
/// reconnects and starts from the current state).
const BACKLOG: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// An Application and its JSON, serialized once when it changes rather than per request: lists
/// and streams of many apps then cost copying, not serializing.
#[derive(Clone)]
pub struct Watched {
    pub app: Arc<Application>,
    pub json: Arc<str>,
}

impl Watched {
    fn new(app: Application) -> Self {
        let json = serde_json::to_string(&app).unwrap_or_else(|_| "{}".into());
        Self {
            app: Arc::new(app),
            json: json.into(),
        }
    }
}

/// One change, with its stream message built once for every client.
pub struct Change {
    pub change: ChangeType,
    pub app: Arc<Application>,
    pub message: Arc<str>,
}

impl Change {
    pub fn new(change: ChangeType, watched: &Watched) -> Self {
        let message = format!(
            r#"{{"result":{{"type":"{}","application":{}}}}}"#,
            change.as_str(),
            watched.json
        );
        Self {
            change,
            app: watched.app.clone(),
            message: message.into(),
        }
    }
}

/// The watched Applications; cheap to clone.
#[derive(Clone)]
pub struct AppWatch {
    apps: Arc<RwLock<BTreeMap<String, Watched>>>,
    changes: broadcast::Sender<Arc<Change>>,
    ready: watch::Receiver<bool>,
}

impl AppWatch {
    /// Starts watching the Applications of the namespaces allowed; the task ends with the
    /// runtime. Other namespaces are watched cluster-wide and filtered, as Argo CD's informer.
    pub fn start(client: kube::Client, namespaces: &AllowedNamespaces) -> Self {
        let (changes, _) = broadcast::channel(BACKLOG);
        let (set_ready, ready) = watch::channel(false);
        let this = Self {
            apps: Arc::default(),
            changes,
            ready,
        };
        let api: Api<Application> = if namespaces.control_only() {
            Api::namespaced(client, namespaces.control())
        } else {
            Api::all(client)
        };
        tokio::spawn(this.clone().run(api, namespaces.clone(), set_ready));
        this
    }

    async fn run(
        self,
        api: Api<Application>,
        namespaces: AllowedNamespaces,
        set_ready: watch::Sender<bool>,
    ) {
        let allowed = |app: &Application| {
            namespaces.allows(app.metadata.namespace.as_deref().unwrap_or_default())
        };
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .try_filter(|event| {
                futures::future::ready(match event {
                    watcher::Event::Apply(app)
                    | watcher::Event::Delete(app)
                    | watcher::Event::InitApply(app) => allowed(app),
                    watcher::Event::Init | watcher::Event::InitDone => true,
                })
            })
            .boxed();
        // The keys seen during a re-list; whatever is missing from it at its end was deleted.
        let mut relisted: Option<HashSet<String>> = None;
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Init) => relisted = Some(HashSet::new()),
                Ok(watcher::Event::InitApply(app)) => {
                    if let Some(seen) = relisted.as_mut() {
                        seen.insert(key(&app));
                    }
                    self.apply(app).await;
                }
                Ok(watcher::Event::InitDone) => {
                    let seen = relisted.take().unwrap_or_default();
                    let gone: Vec<String> = self
                        .apps
                        .read()
                        .await
                        .keys()
                        .filter(|name| !seen.contains(*name))
                        .cloned()
                        .collect();
                    for name in gone {
                        self.delete(&name).await;
                    }
                    set_ready.send_replace(true);
                }
                Ok(watcher::Event::Apply(app)) => self.apply(app).await,
                Ok(watcher::Event::Delete(app)) => self.delete(&key(&app)).await,
                Err(err) => tracing::warn!(error = %err, "watching Applications"),
            }
        }
    }

    /// Records `app`, broadcasting the change unless a re-list brought it back unchanged.
    async fn apply(&self, app: Application) {
        let name = key(&app);
        let mut apps = self.apps.write().await;
        if apps
            .get(&name)
            .is_some_and(|old| old.app.metadata.resource_version == app.metadata.resource_version)
        {
            return;
        }
        let watched = Watched::new(app);
        let change = match apps.insert(name, watched.clone()) {
            None => ChangeType::Added,
            Some(_) => ChangeType::Modified,
        };
        // Sent under the lock, so a subscriber's snapshot and its changes never overlap or gap.
        let _ = self.changes.send(Arc::new(Change::new(change, &watched)));
    }

    async fn delete(&self, name: &str) {
        let mut apps = self.apps.write().await;
        if let Some(watched) = apps.remove(name) {
            let _ = self
                .changes
                .send(Arc::new(Change::new(ChangeType::Deleted, &watched)));
        }
    }

    /// Waits (up to `timeout`) for the first complete list; false if it has not come.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut ready = self.ready.clone();
        tokio::time::timeout(timeout, ready.wait_for(|ready| *ready))
            .await
            .is_ok_and(|waited| waited.is_ok())
    }

    /// The Applications now, by namespace and name.
    pub async fn snapshot(&self) -> Vec<Watched> {
        self.apps.read().await.values().cloned().collect()
    }

    /// The Applications now and every change after them.
    pub async fn subscribe(&self) -> (Vec<Watched>, broadcast::Receiver<Arc<Change>>) {
        let apps = self.apps.read().await;
        (apps.values().cloned().collect(), self.changes.subscribe())
    }
}
