//! Where a comparison reads the live state: the controller's cluster cache, or (in the CLI)
//! objects read through the API for the occasion. Both hand over objects as the cache keeps
//! them ([`CachedObject`]: managedFields and the last-applied annotation stripped, the tracked
//! app read by the installation's tracking method), so both compare the same thing.

use std::sync::Arc;

use ferry_cache::{CachedObject, ClusterCache};
use ferry_types::ResourceKey;
use kube::discovery::{ApiResource, Scope};
use serde_json::Value;

/// The live objects of one destination cluster and the kinds it serves.
pub trait LiveState: Sync {
    /// The live object `key`, if it exists.
    fn get(&self, key: &ResourceKey) -> Option<Arc<CachedObject>>;
    /// The live objects tracked to the app instance `instance`.
    fn tracked(&self, instance: &str) -> Vec<Arc<CachedObject>>;
    /// The API resource serving `api_version` and `kind` (the group's preferred version when
    /// the exact one is not served), and whether it is namespaced.
    fn resolve(&self, api_version: &str, kind: &str) -> Option<(ApiResource, bool)>;
}

impl LiveState for ClusterCache {
    fn get(&self, key: &ResourceKey) -> Option<Arc<CachedObject>> {
        ClusterCache::get(self, key)
    }

    fn tracked(&self, instance: &str) -> Vec<Arc<CachedObject>> {
        self.app_resources(instance)
    }

    fn resolve(&self, api_version: &str, kind: &str) -> Option<(ApiResource, bool)> {
        self.resolve_api_version(api_version, kind)
    }
}

/// A [`LiveState`] as ferry-diff's resolver, for server-side diffs.
pub struct Resolver<'a, L>(pub &'a L);

impl<L: LiveState> ferry_diff::ResourceResolver for Resolver<'_, L> {
    fn resolve(&self, api_version: &str, kind: &str) -> Option<(ApiResource, Scope)> {
        let (resource, namespaced) = self.0.resolve(api_version, kind)?;
        let scope = if namespaced {
            Scope::Namespaced
        } else {
            Scope::Cluster
        };
        Some((resource, scope))
    }
}

/// The object `key` (served as `api_version`) as the API server has it, managedFields
/// included (live states drop them; rules naming field managers need them).
pub async fn read_with_managed_fields(
    live: &impl LiveState,
    client: &kube::Client,
    api_version: &str,
    key: &ResourceKey,
) -> Result<Option<Value>, String> {
    let (resource, namespaced) = live
        .resolve(api_version, &key.kind)
        .ok_or_else(|| format!("{api_version} {} is not served", key.kind))?;
    let api: kube::Api<kube::api::DynamicObject> = if namespaced {
        kube::Api::namespaced_with(client.clone(), &key.namespace, &resource)
    } else {
        kube::Api::all_with(client.clone(), &resource)
    };
    let object = api
        .get_opt(&key.name)
        .await
        .map_err(|err| err.to_string())?;
    object
        .map(serde_json::to_value)
        .transpose()
        .map_err(|err| err.to_string())
}
