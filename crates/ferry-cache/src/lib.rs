//! Cluster live-state cache: discovery, watches, indexes by app and owner.
//!
//! The equivalent of gitops-engine's cluster cache. `ClusterCache::start` discovers every
//! listable and watchable kind (preferred version per group, minus Argo CD's default exclusions
//! or a configured subset), watches each one with kube-runtime's `watcher` (cluster-wide or per
//! namespace) and returns once every initial list is in. Discovery runs again periodically and
//! whenever a CustomResourceDefinition changes, so kinds come and go with their CRDs. Failed
//! watches retry with backoff while the cache keeps serving the last known state; expired ones
//! re-list, and whatever a re-list no longer returns leaves the cache.
//!
//! Objects are stored once, as `Arc<CachedObject>` without managedFields or the last-applied
//! annotation, their body as compact JSON parsed only when read (`CachedObject::object`), and
//! indexed by key, by the app they are tracked to (Argo CD's label, annotation
//! or annotation+label tracking) and by owner UID for the resource tree. Every change is
//! broadcast as a `CacheEvent` naming the app(s) concerned, so the controller can requeue them.

mod cache;
mod config;
mod discovery;
mod error;
mod filter;
mod object;
mod store;
mod watch;

pub use cache::{CacheStats, ClusterCache};
pub use config::CacheConfig;
pub use error::CacheError;
pub use ferry_types::tracking::{self, TrackingError, TrackingMethod, instance_name};
pub use ferry_types::{GroupKind, ResourceKey, group_of};
pub use filter::{ResourceFilter, ResourceRule, default_exclusions};
pub use object::{CachedObject, LAST_APPLIED_ANNOTATION, OwnerRef, strip};
pub use store::{CacheEvent, Change, KindStats, TreeNode};
