//! Destination clusters: the one the controller runs against (`in-cluster`,
//! `https://kubernetes.default.svc`) and the ones registered as Argo CD cluster Secrets, each
//! with a live-state cache and a sync engine started on first use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context as _;
use ferry_cache::{CacheConfig, ClusterCache, ResourceFilter};
use ferry_health::HealthChecks;
use ferry_sync::{Engine, EngineSettings};
use ferry_types::application::ApplicationDestination;
use ferry_types::secrets::{ClusterSecret, IN_CLUSTER_NAME, IN_CLUSTER_SERVER};
use k8s_openapi::api::core::v1::Secret;
use kube::config::KubeConfigOptions;
use tokio::sync::OnceCell;
use tokio_util::sync::DropGuard;
use tracing::{info, warn};

use crate::impersonation;
use crate::metrics::KubeClients;
use crate::settings::ControllerSettings;
use crate::sharding::ShardedCluster;
use crate::triggers::Triggers;

/// One destination cluster.
pub struct Cluster {
    pub name: String,
    pub server: String,
    pub client: kube::Client,
    /// Namespaces the cluster Secret limits ferry to (empty: the whole cluster).
    pub namespaces: Vec<String>,
    pub cluster_resources: bool,
    /// The AppProject the cluster Secret assigns it to (`project`); empty for none, as for
    /// the in-cluster default without a Secret.
    pub project: String,
    /// What sharding reads of the cluster's Secret (its uid, `shard`).
    pub sharding: ShardedCluster,
    /// The live-state cache and the filter it was started with: a changed filter (argocd-cm's
    /// `resource.exclusions` / `inclusions`) starts a new one.
    cache: tokio::sync::Mutex<Option<(ResourceFilter, ClusterCache, DropGuard)>>,
    /// Set when a sync first needs it; forgotten when the health checks change, so the next
    /// sync waits for health with the new ones.
    engine: Mutex<Option<Arc<Engine>>>,
    /// Engines whose requests impersonate a service account, by user name.
    impersonating: Mutex<HashMap<String, Arc<Engine>>>,
    kube_version: OnceCell<String>,
}

impl Cluster {
    fn new(name: String, server: String, client: kube::Client) -> Self {
        Self {
            name,
            client,
            namespaces: Vec::new(),
            cluster_resources: false,
            project: String::new(),
            sharding: ShardedCluster {
                id: String::new(),
                server: server.clone(),
                shard: None,
                skip_reconcile: false,
            },
            server,
            cache: tokio::sync::Mutex::default(),
            engine: Mutex::default(),
            impersonating: Mutex::default(),
            kube_version: OnceCell::new(),
        }
    }

    /// The cluster's live-state cache watching what `filter` lets through, started (and its
    /// events wired to app refreshes) on first use and again when the filter changed.
    pub async fn cache(
        &self,
        settings: &ControllerSettings,
        filter: ResourceFilter,
        triggers: &Triggers,
    ) -> anyhow::Result<ClusterCache> {
        let mut slot = self.cache.lock().await;
        if let Some((started_with, cache, _)) = slot.as_ref()
            && *started_with == filter
        {
            return Ok(cache.clone());
        }
        let restart = slot.is_some();
        let config = CacheConfig {
            tracking: settings.tracking.clone(),
            filter: filter.clone(),
            namespaces: self.namespaces.clone(),
            cluster_resources: self.cluster_resources,
            ..CacheConfig::default()
        };
        let cache = ClusterCache::start(self.client.clone(), config)
            .await
            .with_context(|| format!("starting the cache of cluster {}", self.server))?;
        info!(cluster = %self.server, objects = cache.stats().objects, restart, "cluster cache synced");
        let following = triggers.follow(&cache);
        // The one it replaces stops watching when the last reconcile holding it is done; its
        // changes are this one's too, so only this one's are followed.
        *slot = Some((filter, cache.clone(), following));
        Ok(cache)
    }

    /// Stops following the cache (its watches end once no reconcile holds it), so that the next
    /// use starts a new one; a cache being started right now is left alone.
    fn forget_cache(&self) {
        if let Ok(mut slot) = self.cache.try_lock() {
            slot.take();
        }
    }

    /// The cache, if something started it.
    pub fn started_cache(&self) -> Option<ClusterCache> {
        let slot = self.cache.try_lock().ok()?;
        slot.as_ref().map(|(_, cache, _)| cache.clone())
    }

    /// The server's Kubernetes version, if it was asked already.
    pub fn known_version(&self) -> Option<&str> {
        self.kube_version.get().map(String::as_str)
    }

    /// The server's Kubernetes version (`v1.34.4`), asked once.
    pub async fn kube_version(&self) -> anyhow::Result<&str> {
        self.kube_version
            .get_or_try_init(|| async {
                let info =
                    self.client.apiserver_version().await.with_context(|| {
                        format!("reading the version of cluster {}", self.server)
                    })?;
                anyhow::Ok(info.git_version)
            })
            .await
            .map(String::as_str)
    }

    /// The sync engine acting as the controller (`user` `None`) or impersonating `user`.
    pub async fn engine(
        &self,
        settings: &ControllerSettings,
        health: &HealthChecks,
        user: Option<&str>,
    ) -> anyhow::Result<Arc<Engine>> {
        let Some(user) = user else {
            let known = self
                .engine
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some(engine) = known {
                return Ok(engine);
            }
            let engine = self
                .new_engine(self.client.clone(), settings, health)
                .await?;
            let mut slot = self.engine.lock().unwrap_or_else(|p| p.into_inner());
            return Ok(slot.get_or_insert(engine).clone());
        };
        let known = self
            .impersonating
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .cloned();
        if let Some(engine) = known {
            return Ok(engine);
        }
        let client = impersonation::client_as(&self.client, user)?;
        let engine = self.new_engine(client, settings, health).await?;
        self.impersonating
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(user.to_string(), engine.clone());
        Ok(engine)
    }

    /// Forgets the sync engines, so the next sync starts one with the current health checks
    /// (running syncs keep theirs).
    fn forget_engines(&self) {
        self.engine.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.impersonating
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// A client for this cluster acting as the controller (`None`) or impersonating `user`.
    pub fn client_as(&self, user: Option<&str>) -> anyhow::Result<kube::Client> {
        match user {
            None => Ok(self.client.clone()),
            Some(user) => impersonation::client_as(&self.client, user),
        }
    }

    async fn new_engine(
        &self,
        client: kube::Client,
        settings: &ControllerSettings,
        health: &HealthChecks,
    ) -> anyhow::Result<Arc<Engine>> {
        let engine = Engine::new(
            client,
            health.clone(),
            EngineSettings {
                field_manager: settings.field_manager.clone(),
                ..EngineSettings::default()
            },
        )
        .await
        .with_context(|| format!("discovering the API of cluster {}", self.server))?;
        Ok(Arc::new(engine))
    }
}

/// The clusters applications can deploy to.
pub struct Clusters {
    local: Arc<Cluster>,
    /// Registered clusters by Secret name, with the Secret's resourceVersion they were built from.
    registered: RwLock<HashMap<String, (String, Arc<Cluster>)>>,
    kube_clients: KubeClients,
}

impl Clusters {
    /// `kube_clients` builds the clients of registered clusters.
    pub fn new(local: kube::Client, kube_clients: KubeClients) -> Self {
        Self {
            local: Arc::new(Cluster::new(
                IN_CLUSTER_NAME.into(),
                IN_CLUSTER_SERVER.into(),
                local,
            )),
            registered: RwLock::default(),
            kube_clients,
        }
    }

    /// The local cluster first, then the registered ones.
    pub fn all(&self) -> Vec<Arc<Cluster>> {
        let registered = self.registered.read().unwrap_or_else(|p| p.into_inner());
        std::iter::once(self.local.clone())
            .chain(registered.values().map(|(_, c)| c.clone()))
            .collect()
    }

    /// The cluster an Application's destination names (by server URL or by name), or why none.
    pub fn resolve(&self, dest: &ApplicationDestination) -> Result<Arc<Cluster>, String> {
        if !dest.server.is_empty() && !dest.name.is_empty() {
            return Err(format!(
                "destination sets both server {:?} and name {:?}; use one",
                dest.server, dest.name
            ));
        }
        let registered = self.registered.read().unwrap_or_else(|p| p.into_inner());
        let found = registered.values().map(|(_, c)| c).find(|c| {
            (!dest.server.is_empty() && c.server == dest.server)
                || (!dest.name.is_empty() && c.name == dest.name)
        });
        if let Some(cluster) = found {
            return Ok(cluster.clone());
        }
        if dest.server == IN_CLUSTER_SERVER || dest.name == IN_CLUSTER_NAME {
            return Ok(self.local.clone());
        }
        match (dest.server.is_empty(), dest.name.is_empty()) {
            (true, true) => Err("destination names neither a server nor a cluster name".into()),
            (false, _) => Err(format!(
                "there are no clusters with this URL: {}",
                dest.server
            )),
            (true, false) => Err(format!(
                "there are no clusters with this name: {}",
                dest.name
            )),
        }
    }

    /// Takes a cluster Secret that was added or changed: any change (Argo CD's refresh
    /// annotation, which the API's InvalidateCache writes, included) builds the cluster anew,
    /// so its cache is dropped and listed again on next use. A Secret for the in-cluster server
    /// only renames or scopes the local cluster, keeping the controller's own credentials; the
    /// local cluster's own cache, which it stands in for, is dropped.
    pub async fn upsert(&self, secret: &Secret) {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let version = secret.metadata.resource_version.clone().unwrap_or_default();
        let unchanged = self
            .registered
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&name)
            .is_some_and(|(v, _)| *v == version);
        if unchanged {
            return;
        }
        let cluster = match build(secret, &self.local, &self.kube_clients).await {
            Ok(cluster) => cluster,
            Err(err) => {
                warn!(secret = %name, "ignoring cluster secret: {err:#}");
                return;
            }
        };
        info!(secret = %name, server = %cluster.server, name = %cluster.name, "cluster registered");
        if cluster.server == IN_CLUSTER_SERVER {
            self.local.forget_cache();
        }
        self.registered
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name, (version, Arc::new(cluster)));
    }

    /// The clusters as Argo CD's sharding lists them: the registered ones, and the in-cluster
    /// cluster unless a Secret registers it; in server order, so equal lists compare equal.
    pub fn sharded(&self) -> Vec<ShardedCluster> {
        let registered = self.registered.read().unwrap_or_else(|p| p.into_inner());
        let mut clusters: Vec<ShardedCluster> = registered
            .values()
            .map(|(_, c)| c.sharding.clone())
            .collect();
        if !clusters.iter().any(|c| c.server == IN_CLUSTER_SERVER) {
            clusters.push(self.local.sharding.clone());
        }
        clusters.sort_by(|a, b| (&a.server, &a.id).cmp(&(&b.server, &b.id)));
        clusters
    }

    /// New health checks from argocd-cm: syncs started from now on wait for health with them.
    pub fn health_changed(&self) {
        for cluster in self.all() {
            cluster.forget_engines();
        }
    }

    pub fn remove(&self, secret_name: &str) {
        self.registered
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(secret_name);
    }
}

async fn build(
    secret: &Secret,
    local: &Cluster,
    kube_clients: &KubeClients,
) -> anyhow::Result<Cluster> {
    let parsed = ClusterSecret::from_secret(secret).map_err(anyhow::Error::msg)?;
    let name = if parsed.name.is_empty() {
        parsed.server.clone()
    } else {
        parsed.name.clone()
    };
    let client = if parsed.server == IN_CLUSTER_SERVER {
        local.client.clone()
    } else {
        client_for(&parsed, kube_clients).await?
    };
    let mut cluster = Cluster::new(name, parsed.server.clone(), client);
    cluster.namespaces = parsed.namespaces.clone();
    cluster.cluster_resources = parsed.cluster_resources;
    cluster.project = parsed.project.clone();
    cluster.sharding = ShardedCluster::from_secret(secret, &parsed.server);
    Ok(cluster)
}

/// A client from Argo CD's cluster `config`, by way of a kubeconfig so kube-rs does the
/// certificate and token handling it does for every kubeconfig.
async fn client_for(
    secret: &ClusterSecret,
    kube_clients: &KubeClients,
) -> anyhow::Result<kube::Client> {
    let kubeconfig = secret.to_kubeconfig().map_err(anyhow::Error::msg)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("cluster {}: invalid connection settings", secret.server))?;
    kube_clients
        .client(config, &secret.server)
        .with_context(|| format!("cluster {}: cannot build a client", secret.server))
}
