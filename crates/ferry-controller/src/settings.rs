//! How a controller is set up.

use std::path::PathBuf;
use std::time::Duration;

use ferry_cache::{ResourceFilter, TrackingMethod};
use ferry_render::RenderConfig;

use crate::dynamic_shards::DynamicSharding;
use crate::sharding::ShardSettings;

/// Settings of one controller. `Default` is what `ferry-controller` runs with unless told
/// otherwise.
#[derive(Clone, Debug)]
pub struct ControllerSettings {
    /// Namespace of the Applications, AppProjects and repository/cluster Secrets (Argo CD's
    /// `argocd`).
    pub namespace: String,
    /// Namespaces besides `namespace` whose Applications are reconciled: names, globs or
    /// `/regex/` (Argo CD's `--application-namespaces`).
    pub application_namespaces: Vec<String>,
    /// How often every Application is compared with Git again (Argo CD's `timeout.reconciliation`).
    pub resync: Duration,
    /// Up to this much is added to each app's resync, so apps do not refresh in lockstep.
    pub resync_jitter: Duration,
    /// Comparisons that may run at once (Argo CD's status processors).
    pub status_processors: u16,
    /// Sync operations that may run at once (Argo CD's operation processors).
    pub operation_processors: usize,
    /// First delay before self-heal syncs again after a self-heal; doubles per attempt.
    pub self_heal_backoff: Duration,
    /// Longest delay between self-heal attempts.
    pub self_heal_backoff_max: Duration,
    /// Field manager for applies and status writes.
    pub field_manager: String,
    pub tracking: TrackingMethod,
    /// Kinds the cluster caches watch.
    pub resource_filter: ResourceFilter,
    pub render: RenderConfig,
    /// Root of the Git mirror cache.
    pub git_root: PathBuf,
    /// Bound on each Git network operation.
    pub git_timeout: Duration,
    /// Refuse a prune of more than this fraction of an app's resources at once.
    pub prune_max_fraction: Option<f64>,
    /// How long a sync waits for a wave to become healthy.
    pub health_timeout: Option<Duration>,
    /// Bytes of JSON `status.resources` may take; beyond, Synced and Healthy resources are
    /// left out of it (and a condition says so).
    pub max_status_resources_size: usize,
    /// Diff through a server-side apply dry run (apps can opt out with the
    /// `argocd.argoproj.io/compare-options: ServerSideDiff=false` annotation).
    pub server_side_diff: bool,
    /// Bytes of server-side dry-run answers kept for resources whose manifest and live object
    /// did not change since (0: ask the API server on every comparison).
    pub server_side_diff_cache_size: u64,
    /// How long a graceful shutdown waits for running syncs before leaving them to the next
    /// controller (which resumes them from the Application status).
    pub shutdown_grace: Duration,
    /// Where the API server asks for an app's managed resources, resource tree and manifests
    /// ([`crate::view`]); `None`: nowhere.
    pub view_listen: Option<std::net::SocketAddr>,
    /// This replica's shard of the destination clusters ([`crate::sharding`]).
    pub sharding: ShardSettings,
    /// Argo CD's dynamic cluster distribution, when enabled: the shard and replica count come
    /// from the Deployment and the shard mapping ConfigMap instead ([`crate::dynamic_shards`]).
    pub dynamic_sharding: Option<DynamicSharding>,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        let cache = std::env::var_os("FERRY_CACHE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("ferry-controller"));
        Self {
            namespace: "argocd".into(),
            application_namespaces: Vec::new(),
            resync: Duration::from_secs(180),
            resync_jitter: Duration::from_secs(30),
            status_processors: 20,
            operation_processors: 10,
            self_heal_backoff: Duration::from_secs(2),
            self_heal_backoff_max: Duration::from_secs(180),
            field_manager: ferry_diff::DEFAULT_FIELD_MANAGER.into(),
            tracking: TrackingMethod::default(),
            resource_filter: ResourceFilter::default(),
            render: RenderConfig {
                work_dir: cache.join("render"),
                ..RenderConfig::default()
            },
            git_root: cache.join("git"),
            git_timeout: ferry_git::DEFAULT_TIMEOUT,
            prune_max_fraction: None,
            health_timeout: Some(Duration::from_secs(600)),
            max_status_resources_size: crate::status_size::DEFAULT_RESOURCES_BUDGET,
            server_side_diff: true,
            server_side_diff_cache_size: 64 << 20,
            shutdown_grace: Duration::from_secs(20),
            view_listen: None,
            sharding: ShardSettings::default(),
            dynamic_sharding: None,
        }
    }
}
