//! Sharding by destination cluster, as Argo CD's application controller does it
//! (`controller/sharding`): with `ARGOCD_CONTROLLER_REPLICAS` > 1, every cluster belongs to one
//! shard, and each replica reconciles only the Applications whose destination cluster is in its
//! own shard (`ARGOCD_CONTROLLER_SHARD`, or the ordinal at the end of a StatefulSet pod's
//! hostname). Clusters are told apart by server URL; their ids are their Secrets' uids (the
//! in-cluster cluster without a Secret has the empty id). The `shard` key of a cluster Secret
//! pins the cluster to a shard; otherwise the sharding method picks one:
//! - `legacy`: FNV-1a (32 bit) of the id modulo the replicas; the empty id goes to shard 0;
//! - `round-robin`: the cluster's position among all clusters sorted by id, modulo the replicas;
//! - `consistent-hashing`: consistent hashing with bounded loads (BLAKE2b ring, 1000 points per
//!   shard), the load of a shard being the apps of the clusters placed on it so far.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{OnceLock, RwLock};

use blake2::{Blake2b512, Digest};
use ferry_types::application::ApplicationDestination;
use kube::api::DynamicObject;
use kube::runtime::reflector::Store;
use tracing::{info, warn};

use crate::clusters::Clusters;
use crate::stored_app::StoredApp;

/// Environment variables of Argo CD's controller that ferry reads the same way.
pub const REPLICAS_ENV: &str = "ARGOCD_CONTROLLER_REPLICAS";
pub const SHARD_ENV: &str = "ARGOCD_CONTROLLER_SHARD";
pub const SHARDING_ALGORITHM_ENV: &str = "ARGOCD_CONTROLLER_SHARDING_ALGORITHM";

/// Argo CD's cluster Secret annotation that takes a cluster away from every shard (the same
/// name as the Application's).
use ferry_types::application::SKIP_RECONCILE_ANNOTATION;

/// Argo CD's `--sharding-method`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Algorithm {
    #[default]
    Legacy,
    RoundRobin,
    ConsistentHashing,
}

/// Which shard this replica is, out of how many.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardSettings {
    pub replicas: i64,
    pub shard: i64,
    pub algorithm: Algorithm,
}

impl Default for ShardSettings {
    /// One replica reconciling everything.
    fn default() -> Self {
        Self {
            replicas: 1,
            shard: 0,
            algorithm: Algorithm::Legacy,
        }
    }
}

impl ShardSettings {
    /// Argo CD's `GetClusterSharding` (without dynamic distribution): with more than one
    /// replica, the shard is `shard` or else the number ending `hostname`; one replica or none is
    /// shard 0 of everything.
    pub fn resolve(
        replicas: i64,
        shard: Option<i64>,
        hostname: &str,
        algorithm: Algorithm,
    ) -> Self {
        let shard = if replicas > 1 {
            let shard = match shard {
                Some(shard) if shard >= 0 => shard,
                _ => shard_of_hostname(hostname),
            };
            // Argo CD checks `shard > replicas` only, leaving shard == replicas with no cluster;
            // ferry treats it as the out-of-range shard it is.
            if shard >= replicas {
                warn!(
                    shard,
                    replicas, "shard number is not below the replica count; using shard 0"
                );
                0
            } else {
                shard
            }
        } else {
            0
        };
        Self {
            replicas,
            shard,
            algorithm,
        }
    }

    pub fn sharded(&self) -> bool {
        self.replicas > 1
    }
}

/// Argo CD's `InferShard`: the number after the last `-` of the hostname
/// (`argocd-application-controller-2` is shard 2), 0 when there is none.
fn shard_of_hostname(hostname: &str) -> i64 {
    let last = hostname.rsplit('-').next().unwrap_or_default();
    last.parse().unwrap_or_else(|_| {
        warn!(
            hostname,
            "hostname should end with the shard number after a '-'; using shard 0"
        );
        0
    })
}

/// A destination cluster as sharding sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardedCluster {
    /// The cluster Secret's uid; empty for the in-cluster cluster without a Secret.
    pub id: String,
    pub server: String,
    /// The Secret's `shard` key, when it holds a number.
    pub shard: Option<i64>,
    /// The Secret's `argocd.argoproj.io/skip-reconcile: "true"`.
    pub skip_reconcile: bool,
}

impl ShardedCluster {
    /// The sharding fields of a cluster Secret, read as Argo CD reads them.
    pub fn from_secret(secret: &k8s_openapi::api::core::v1::Secret, server: &str) -> Self {
        let name = secret.metadata.name.as_deref().unwrap_or_default();
        let shard = secret
            .data
            .as_ref()
            .and_then(|d| d.get("shard"))
            .and_then(|value| {
                let text = String::from_utf8_lossy(&value.0);
                text.parse()
                    .inspect_err(|err| {
                        warn!(secret = %name, "ignoring shard {text:?} of cluster secret: {err}")
                    })
                    .ok()
            });
        let skip_reconcile = secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(SKIP_RECONCILE_ANNOTATION))
            .is_some_and(|v| ferry_types::application::parse_go_bool(v) == Some(true));
        Self {
            id: secret.metadata.uid.clone().unwrap_or_default(),
            server: server.to_string(),
            shard,
            skip_reconcile,
        }
    }
}

/// The shard of each cluster, by server URL: Argo CD's `ClusterSharding.updateDistribution`.
/// `apps_per_server` counts Applications by `spec.destination.server` (consistent hashing
/// balances them).
pub fn distribute(
    clusters: &[ShardedCluster],
    apps_per_server: &HashMap<String, i64>,
    replicas: i64,
    algorithm: Algorithm,
) -> HashMap<String, i64> {
    // One entry per server, the last one listed winning, as in Argo CD's map.
    let mut by_server: HashMap<&str, &ShardedCluster> = HashMap::new();
    for cluster in clusters {
        by_server.insert(&cluster.server, cluster);
    }
    let mut listed: Vec<&ShardedCluster> = by_server.values().copied().collect();
    listed.sort_by(|a, b| a.id.cmp(&b.id));
    let computed: HashMap<&str, i64> = if replicas <= 1 {
        HashMap::new()
    } else {
        match algorithm {
            Algorithm::Legacy => listed
                .iter()
                .map(|c| (c.id.as_str(), legacy_shard(&c.id, replicas)))
                .collect(),
            Algorithm::RoundRobin => listed
                .iter()
                .enumerate()
                .map(|(index, c)| (c.id.as_str(), index as i64 % replicas))
                .collect(),
            Algorithm::ConsistentHashing => consistent_shards(&listed, apps_per_server, replicas),
        }
    };
    by_server
        .iter()
        .map(|(server, cluster)| {
            let shard = match cluster.shard {
                Some(requested) if requested < replicas => requested,
                Some(requested) => {
                    warn!(
                        cluster = %server,
                        requested, replicas, "cluster secret asks for a shard beyond the replicas; using shard 0"
                    );
                    0
                }
                None => computed.get(cluster.id.as_str()).copied().unwrap_or(0),
            };
            (server.to_string(), shard)
        })
        .collect()
}

/// Argo CD's legacy distribution: FNV-1a 32 of the cluster id (Go's `hash/fnv` New32a; the
/// `fnv` crate offers only the 64-bit hash), modulo the replicas.
fn legacy_shard(id: &str, replicas: i64) -> i64 {
    if id.is_empty() {
        return 0;
    }
    let hash = id.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    i64::from(hash % replicas as u32)
}

/// Argo CD's `createConsistentHashingWithBoundLoads`, clusters in id order.
fn consistent_shards<'a>(
    sorted: &[&'a ShardedCluster],
    apps_per_server: &HashMap<String, i64>,
    replicas: i64,
) -> HashMap<&'a str, i64> {
    let mut ring = Ring::default();
    for shard in 0..replicas {
        ring.add(&shard.to_string());
    }
    let mut apps_of_shard: HashMap<String, i64> = HashMap::new();
    let mut shards = HashMap::new();
    for cluster in sorted {
        let shard = ring.least_loaded(&cluster.id);
        let apps = apps_of_shard.entry(shard.clone()).or_default();
        *apps += apps_per_server.get(&cluster.server).copied().unwrap_or(0);
        let load = *apps;
        ring.update_load(&shard, load);
        shards.insert(cluster.id.as_str(), shard.parse().unwrap_or(0));
    }
    shards
}

/// Argo CD's `consistent.Consistent`: 1000 points per host on a ring of BLAKE2b-512 hashes (the
/// first 8 bytes, little endian), and Google's bounded loads (`loadOK`) with ε = 0.25.
#[derive(Default)]
struct Ring {
    points: BTreeMap<u64, String>,
    loads: BTreeMap<String, i64>,
    total: i64,
}

impl Ring {
    const POINTS_PER_HOST: usize = 1000;

    fn hash(key: &str) -> u64 {
        let digest = Blake2b512::digest(key.as_bytes());
        u64::from_le_bytes(digest[..8].try_into().expect("a 64-byte digest"))
    }

    fn add(&mut self, host: &str) {
        if self.loads.contains_key(host) {
            return;
        }
        self.loads.insert(host.to_string(), 0);
        for i in 0..Self::POINTS_PER_HOST {
            // A later host's point replaces an equal one, as in Argo CD's map and B-tree.
            self.points
                .insert(Self::hash(&format!("{host}{i}")), host.into());
        }
    }

    /// The first host clockwise after the key's hash (never on it) whose load is acceptable.
    fn least_loaded(&self, key: &str) -> String {
        let mut at = Self::hash(key);
        loop {
            let (point, host) = self
                .points
                .range((Bound::Excluded(at), Bound::Unbounded))
                .next()
                .or_else(|| self.points.iter().next())
                .expect("a ring with hosts");
            if self.load_ok(host) {
                return host.clone();
            }
            at = *point;
        }
    }

    fn load_ok(&self, host: &str) -> bool {
        let total = self.total.max(0);
        // Integer division first, then the float ceiling, exactly as Go computes it.
        let mut average = ((total + 1) / self.loads.len() as i64) as f64;
        if average == 0.0 {
            average = 1.0;
        }
        let bound = (average * 1.25).ceil();
        (self.loads[host] as f64) < bound
    }

    fn update_load(&mut self, host: &str, load: i64) {
        if let Some(current) = self.loads.get_mut(host) {
            self.total += load - *current;
            *current = load;
        }
    }
}

/// This replica's shard and the clusters in it, kept up to date as clusters and apps come and
/// go.
pub struct Sharding {
    /// Fixed, unless dynamic distribution moves this replica ([`Sharding::reassign`]).
    settings: RwLock<ShardSettings>,
    state: RwLock<State>,
    /// The controller's Applications, counted per cluster for consistent hashing.
    apps: OnceLock<Store<StoredApp>>,
}

#[derive(Default)]
struct State {
    /// What the distribution was computed from.
    clusters: Vec<ShardedCluster>,
    apps_per_server: HashMap<String, i64>,
    shards: HashMap<String, i64>,
    /// How many apps the counts in `apps_per_server` were taken from.
    apps_counted: usize,
    /// The replica count the shards were computed for.
    replicas: i64,
}

impl Sharding {
    pub fn new(settings: ShardSettings) -> Self {
        Self {
            settings: RwLock::new(settings),
            state: RwLock::default(),
            apps: OnceLock::new(),
        }
    }

    pub fn settings(&self) -> ShardSettings {
        *self.settings.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes this replica shard `shard` of `replicas` (dynamic distribution); the clusters are
    /// distributed again at the next look.
    pub fn reassign(&self, shard: i64, replicas: i64) {
        let mut settings = self.settings.write().unwrap_or_else(|p| p.into_inner());
        settings.shard = shard;
        settings.replicas = replicas;
    }

    /// Gives sharding the controller's view of all Applications.
    pub fn set_apps(&self, store: Store<StoredApp>) {
        let _ = self.apps.set(store);
    }

    /// Whether this replica reconciles `app`: its destination's cluster is in this shard,
    /// the distribution being brought up to date with the clusters and apps first.
    pub fn manages_app(&self, clusters: &Clusters, app: &StoredApp) -> bool {
        let cluster = clusters.resolve(&app.facts.destination).ok();
        // A cluster whose Secret says skip-reconcile is left alone by every controller.
        if cluster.as_ref().is_some_and(|c| c.sharding.skip_reconcile) {
            return false;
        }
        self.owns(clusters, cluster.as_ref().map(|c| c.server.as_str()))
    }

    /// Whether `app`'s cluster is in this replica's shard, reconciled or not: the replica the
    /// API server asks for the app's views.
    pub fn owns_app(&self, clusters: &Clusters, app: &DynamicObject) -> bool {
        let destination: ApplicationDestination =
            serde_json::from_value(app.data["spec"]["destination"].clone()).unwrap_or_default();
        let cluster = clusters.resolve(&destination).ok();
        self.owns(clusters, cluster.as_ref().map(|c| c.server.as_str()))
    }

    fn owns(&self, clusters: &Clusters, server: Option<&str>) -> bool {
        let settings = self.settings();
        if settings.shard < 0 {
            // Dynamic distribution found no shard free for this replica: it waits.
            return false;
        }
        if !settings.sharded() {
            return true;
        }
        self.update(clusters.sharded(), self.apps_per_server());
        self.manages(server)
    }

    /// Apps per `spec.destination.server`, counted again when the number of apps changed
    /// (Argo CD redistributes when an app is added or deleted); consistent hashing only.
    fn apps_per_server(&self) -> HashMap<String, i64> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let Some(store) = self.apps.get() else {
            return state.apps_per_server.clone();
        };
        if self.settings().algorithm != Algorithm::ConsistentHashing
            || store.len() == state.apps_counted
        {
            return state.apps_per_server.clone();
        }
        drop(state);
        let apps = store.state();
        let mut counts = HashMap::new();
        for app in &apps {
            let server = &app.facts.destination.server;
            *counts.entry(server.clone()).or_default() += 1;
        }
        self.state
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .apps_counted = apps.len();
        counts
    }

    /// Recomputes the distribution when the clusters (or, for consistent hashing, the apps per
    /// cluster) changed; logs each cluster whose shard changed.
    pub fn update(&self, clusters: Vec<ShardedCluster>, apps_per_server: HashMap<String, i64>) {
        let settings = self.settings();
        if !settings.sharded() {
            return;
        }
        let apps_per_server = if settings.algorithm == Algorithm::ConsistentHashing {
            apps_per_server
        } else {
            HashMap::new()
        };
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if state.clusters == clusters
            && state.apps_per_server == apps_per_server
            && state.replicas == settings.replicas
        {
            return;
        }
        let shards = distribute(
            &clusters,
            &apps_per_server,
            settings.replicas,
            settings.algorithm,
        );
        for (server, shard) in &shards {
            if state.shards.get(server) != Some(shard) {
                info!(cluster = %server, shard, mine = *shard == settings.shard, "cluster assigned to shard");
            }
        }
        state.shards = shards;
        state.clusters = clusters;
        state.apps_per_server = apps_per_server;
        state.replicas = settings.replicas;
    }

    /// Whether this replica reconciles apps deploying to `server` (`None`: a destination no
    /// cluster matches, which every replica reports, as in Argo CD).
    pub fn manages(&self, server: Option<&str>) -> bool {
        let Some(server) = server else { return true };
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let settings = self.settings();
        if !settings.sharded() {
            return true;
        }
        state.shards.get(server).copied().unwrap_or(0) == settings.shard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(id: &str, server: &str) -> ShardedCluster {
        ShardedCluster {
            id: id.into(),
            server: server.into(),
            shard: None,
            skip_reconcile: false,
        }
    }

    fn in_cluster() -> ShardedCluster {
        cluster("", "https://kubernetes.default.svc")
    }

    fn shards_of(
        clusters: &[ShardedCluster],
        apps: &[(&str, i64)],
        replicas: i64,
        algorithm: Algorithm,
    ) -> Vec<i64> {
        let apps = apps.iter().map(|(s, n)| (s.to_string(), *n)).collect();
        let shards = distribute(clusters, &apps, replicas, algorithm);
        clusters.iter().map(|c| shards[&c.server]).collect()
    }

    /// Expected shards here and in the consistent-hashing test are what Argo CD's own code
    /// answers (`LegacyDistributionFunction`, and `createConsistentHashingWithBoundLoads` over
    /// `controller/sharding/consistent` at argo-cd 37ee009, run with Go), and a Python
    /// transcription agrees. FNV-1a 32: "1" → 0x340ca71c, "2" → 0x370cabd5, "3" → 0x360caa42,
    /// the uid → 0x5b651540.
    #[test]
    fn legacy_is_fnv_1a_of_the_secret_uid_modulo_the_replicas() {
        let clusters = [
            in_cluster(),
            cluster("1", "https://one"),
            cluster("2", "https://two"),
            cluster("3", "https://three"),
            cluster("f47ac10b-58cc-4372-a567-0e02b2c3d479", "https://uid"),
        ];
        assert_eq!(
            shards_of(&clusters, &[], 2, Algorithm::Legacy),
            [0, 0, 1, 0, 0]
        );
        assert_eq!(
            shards_of(&clusters, &[], 3, Algorithm::Legacy),
            [0, 1, 1, 2, 1]
        );
    }

    /// Argo CD's round-robin counts the in-cluster cluster (id "", first in id order) too, so
    /// the registered clusters start at shard 1.
    #[test]
    fn round_robin_deals_clusters_in_id_order() {
        let clusters = [
            cluster("c", "https://c"),
            in_cluster(),
            cluster("a", "https://a"),
            cluster("b", "https://b"),
        ];
        assert_eq!(
            shards_of(&clusters, &[], 2, Algorithm::RoundRobin),
            [1, 0, 1, 0]
        );
        assert_eq!(
            shards_of(&clusters, &[], 3, Algorithm::RoundRobin),
            [0, 0, 1, 2]
        );
    }

    #[test]
    fn a_shard_in_the_secret_wins_when_it_is_below_the_replicas() {
        let mut pinned = cluster("1", "https://one");
        pinned.shard = Some(1);
        let mut beyond = cluster("3", "https://three");
        beyond.shard = Some(5);
        let clusters = [pinned, beyond, cluster("2", "https://two")];
        for algorithm in [
            Algorithm::Legacy,
            Algorithm::RoundRobin,
            Algorithm::ConsistentHashing,
        ] {
            let shards = shards_of(&clusters, &[], 2, algorithm);
            assert_eq!(shards[..2], [1, 0], "{algorithm:?}");
        }
        // Round robin still counts the pinned clusters: "2" is second in id order.
        assert_eq!(shards_of(&clusters, &[], 2, Algorithm::RoundRobin)[2], 1);
    }

    #[test]
    fn a_cluster_secret_gives_its_uid_shard_and_skip_reconcile() {
        let secret: k8s_openapi::api::core::v1::Secret =
            serde_json::from_value(serde_json::json!({
                "metadata": {
                    "name": "c", "uid": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
                    "annotations": {"argocd.argoproj.io/skip-reconcile": "true"},
                },
                "data": {"shard": "Mg=="},
            }))
            .unwrap();
        assert_eq!(
            ShardedCluster::from_secret(&secret, "https://c"),
            ShardedCluster {
                id: "f47ac10b-58cc-4372-a567-0e02b2c3d479".into(),
                server: "https://c".into(),
                shard: Some(2),
                skip_reconcile: true,
            }
        );
        // A shard that is not a number is ignored (Argo CD logs it and distributes the cluster).
        let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "c"}, "data": {"shard": "dHdv"}}),
        )
        .unwrap();
        assert_eq!(
            ShardedCluster::from_secret(&secret, "https://c").shard,
            None
        );
    }

    #[test]
    fn one_replica_or_none_is_shard_zero_of_everything() {
        let clusters = [cluster("1", "https://one"), cluster("2", "https://two")];
        for replicas in [0, 1] {
            assert_eq!(
                shards_of(&clusters, &[], replicas, Algorithm::Legacy),
                [0, 0]
            );
        }
        let settings = ShardSettings::resolve(1, Some(3), "controller-2", Algorithm::Legacy);
        assert_eq!(settings.shard, 0);
        assert!(!settings.sharded());
    }

    #[test]
    fn the_shard_comes_from_the_environment_or_the_hostname_ordinal() {
        let resolve = |shard, host| ShardSettings::resolve(3, shard, host, Algorithm::Legacy).shard;
        assert_eq!(resolve(Some(2), "argocd-application-controller-0"), 2);
        assert_eq!(resolve(None, "argocd-application-controller-1"), 1);
        assert_eq!(resolve(Some(-1), "argocd-application-controller-2"), 2);
        assert_eq!(resolve(None, "controller"), 0);
        assert_eq!(resolve(None, "argocd-application-controller-7"), 0);
    }

    /// The ring's hash: `int.from_bytes(hashlib.blake2b(b"00").digest()[:8], "little")`.
    #[test]
    fn the_ring_hashes_like_argo_cds() {
        assert_eq!(Ring::hash("00"), 0x2689_45de_f254_477a);
    }

    #[test]
    fn consistent_hashing_bounds_the_apps_per_shard() {
        let clusters: Vec<ShardedCluster> = (0..6)
            .map(|i| cluster(&format!("id-{i}"), &format!("https://c{i}")))
            .collect();
        let apps: Vec<(String, i64)> = (0..6).map(|i| (format!("https://c{i}"), 10)).collect();
        let apps: Vec<(&str, i64)> = apps.iter().map(|(s, n)| (s.as_str(), *n)).collect();
        // Without loads the ring alone places three clusters on shard 1; ten apps each bound
        // every shard to two clusters.
        assert_eq!(
            shards_of(&clusters, &[], 3, Algorithm::ConsistentHashing),
            [0, 1, 1, 1, 2, 0]
        );
        assert_eq!(
            shards_of(&clusters, &apps, 3, Algorithm::ConsistentHashing),
            [0, 1, 2, 1, 2, 0]
        );
    }

    #[test]
    fn only_the_own_shards_clusters_are_managed() {
        let sharding = Sharding::new(ShardSettings::resolve(
            2,
            Some(1),
            "",
            Algorithm::RoundRobin,
        ));
        sharding.update(
            vec![
                in_cluster(),
                cluster("a", "https://a"),
                cluster("b", "https://b"),
            ],
            HashMap::new(),
        );
        assert!(!sharding.manages(Some("https://kubernetes.default.svc")));
        assert!(sharding.manages(Some("https://a")));
        assert!(!sharding.manages(Some("https://b")));
        assert!(sharding.manages(None));
        // An unknown server is shard 0's, as in Argo CD.
        assert!(!sharding.manages(Some("https://unknown")));
        // Moved to shard 0 (dynamic distribution): the clusters are dealt again.
        sharding.reassign(0, 2);
        sharding.update(
            vec![in_cluster(), cluster("a", "https://a")],
            HashMap::new(),
        );
        assert!(sharding.manages(Some("https://kubernetes.default.svc")));
        assert!(!sharding.manages(Some("https://a")));
        sharding.reassign(0, 3);
        sharding.update(
            vec![in_cluster(), cluster("a", "https://a")],
            HashMap::new(),
        );
        assert_eq!(sharding.state.read().unwrap().replicas, 3);
    }
}
