//! How a cluster cache is set up.

use std::time::Duration;

use crate::filter::ResourceFilter;
use crate::tracking::TrackingMethod;

#[derive(Clone, Debug)]
pub struct CacheConfig {
    pub tracking: TrackingMethod,
    pub filter: ResourceFilter,
    /// Namespaces to watch; empty watches the whole cluster.
    pub namespaces: Vec<String>,
    /// With `namespaces`, also watch cluster-scoped kinds (Argo CD's `clusterResources`).
    pub cluster_resources: bool,
    /// How often API discovery runs again besides when CustomResourceDefinitions change.
    pub discovery_interval: Duration,
    /// How long `ClusterCache::start` waits for discovery and every initial list.
    pub sync_timeout: Duration,
    /// Server-side timeout of each watch request in seconds (kube-rs defaults to 290); a watch
    /// that ends is resumed from its last resourceVersion, or re-listed when that has expired.
    pub watch_timeout: Option<u32>,
    /// Events buffered per subscriber before a slow one starts missing them (and is told so by
    /// `RecvError::Lagged`).
    pub event_capacity: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            tracking: TrackingMethod::default(),
            filter: ResourceFilter::default(),
            namespaces: Vec::new(),
            cluster_resources: false,
            discovery_interval: Duration::from_secs(300),
            sync_timeout: Duration::from_secs(120),
            watch_timeout: None,
            event_capacity: 4096,
        }
    }
}
