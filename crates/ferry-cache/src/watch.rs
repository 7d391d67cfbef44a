//! One watch: a kind, cluster-wide or in one namespace, kept in the store by kube-runtime's
//! `watcher` (which lists, watches, resumes from the last resourceVersion and re-lists when that
//! has expired), with backoff between failed attempts.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use ferry_types::ResourceKey;
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::{Map, Value};
use tracing::warn;

use crate::GroupKind;
use crate::cache::Shared;
use crate::object::CachedObject;
use crate::store::{CacheEvent, Store};
use crate::tracking::TrackingMethod;

/// What one watch covers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Scope {
    pub kind: GroupKind,
    /// `None` watches all namespaces (or a cluster-scoped kind).
    pub namespace: Option<String>,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{} in namespace {namespace}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

/// Runs a watch until aborted, applying its events to the cache's store.
pub(crate) async fn run(
    shared: Arc<Shared>,
    api: Api<DynamicObject>,
    resource: ApiResource,
    scope: Scope,
) {
    let mut sync = ScopeSync::new(scope.clone());
    let mut failing = false;
    let mut events = watcher::watcher(api, shared.watcher_config())
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                shared.watch_failed(&scope, &err, !failing);
                failing = true;
                continue;
            }
        };
        if std::mem::take(&mut failing) {
            shared.watch_recovered(&scope);
        }
        let listed = matches!(event, Event::InitDone);
        if let Some(event) = into_cached(event, &resource, shared.tracking(), &scope) {
            let changes = sync.handle(&mut shared.store_mut(), event);
            shared.publish(changes);
        }
        if listed {
            shared.listed(&scope);
        }
    }
}

/// Applies one scope's watch events to the store. A (re-)list starts with `Init`, delivers every
/// object as `InitApply` and ends with `InitDone`; objects of the scope that the list did not
/// deliver are gone from the cluster. Listed objects are applied as they arrive, so the store
/// keeps answering with the last known state throughout.
pub(crate) struct ScopeSync {
    scope: Scope,
    listed: Option<HashSet<ResourceKey>>,
}

impl ScopeSync {
    pub(crate) fn new(scope: Scope) -> Self {
        Self {
            scope,
            listed: None,
        }
    }

    pub(crate) fn handle(
        &mut self,
        store: &mut Store,
        event: Event<CachedObject>,
    ) -> Vec<CacheEvent> {
        match event {
            Event::Init => {
                self.listed = Some(HashSet::new());
                Vec::new()
            }
            Event::InitApply(object) => {
                if let Some(listed) = &mut self.listed {
                    listed.insert(object.key.clone());
                }
                store.apply(object).into_iter().collect()
            }
            Event::InitDone => {
                let listed = self.listed.take().unwrap_or_default();
                store.retain(&self.scope.kind, self.scope.namespace.as_deref(), &listed)
            }
            Event::Apply(object) => store.apply(object).into_iter().collect(),
            Event::Delete(object) => store.delete(&object.key).into_iter().collect(),
        }
    }
}

fn into_cached(
    event: Event<DynamicObject>,
    resource: &ApiResource,
    tracking: &TrackingMethod,
    scope: &Scope,
) -> Option<Event<CachedObject>> {
    let convert = |object: DynamicObject| {
        let cached = CachedObject::new(into_value(object, resource), tracking);
        if cached.is_none() {
            warn!("watch of {scope} delivered an object without a name; skipped");
        }
        cached
    };
    Some(match event {
        Event::Init => Event::Init,
        Event::InitDone => Event::InitDone,
        Event::InitApply(object) => Event::InitApply(convert(object)?),
        Event::Apply(object) => Event::Apply(convert(object)?),
        Event::Delete(object) => Event::Delete(convert(object)?),
    })
}

/// The object as JSON, with the `apiVersion` and `kind` list responses leave out of their items.
fn into_value(object: DynamicObject, resource: &ApiResource) -> Value {
    let mut map = match object.data {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    map.insert("apiVersion".into(), resource.api_version.clone().into());
    map.insert("kind".into(), resource.kind.clone().into());
    let metadata = serde_json::to_value(object.metadata).unwrap_or(Value::Null);
    map.insert("metadata".into(), metadata);
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Change;
    use serde_json::json;

    fn configmap(namespace: &str, name: &str, version: &str) -> CachedObject {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": name, "namespace": namespace, "uid": format!("{namespace}-{name}"),
            "resourceVersion": version, "labels": {"app.kubernetes.io/instance": "shop"}}});
        CachedObject::new(obj, &TrackingMethod::label()).unwrap()
    }

    fn summary(events: &[CacheEvent]) -> Vec<(String, Change)> {
        events
            .iter()
            .map(|e| (e.key.to_string(), e.change))
            .collect()
    }

    fn scope(namespace: Option<&str>) -> Scope {
        Scope {
            kind: GroupKind::new("", "ConfigMap"),
            namespace: namespace.map(str::to_string),
        }
    }

    #[test]
    fn a_relist_replaces_the_scope_and_reports_only_changes() {
        let mut store = Store::default();
        let mut sync = ScopeSync::new(scope(None));
        let mut feed = |store: &mut Store, events: Vec<Event<CachedObject>>| {
            events
                .into_iter()
                .flat_map(|e| sync.handle(store, e))
                .collect::<Vec<_>>()
        };
        let first = feed(
            &mut store,
            vec![
                Event::Init,
                Event::InitApply(configmap("a", "one", "1")),
                Event::InitApply(configmap("a", "two", "2")),
                Event::InitDone,
                Event::Apply(configmap("b", "three", "3")),
            ],
        );
        assert_eq!(first.len(), 3);
        assert!(first.iter().all(|e| e.apps == ["shop"]));

        // After a 410 Gone the watcher lists again: "one" is unchanged, "two" changed while the
        // watch was down, "three" was deleted and "four" created.
        let relist = feed(
            &mut store,
            vec![
                Event::Init,
                Event::InitApply(configmap("a", "one", "1")),
                Event::InitApply(configmap("a", "two", "5")),
                Event::InitApply(configmap("a", "four", "6")),
                Event::InitDone,
            ],
        );
        assert_eq!(
            summary(&relist),
            [
                ("/ConfigMap/a/two".to_string(), Change::Applied),
                ("/ConfigMap/a/four".to_string(), Change::Applied),
                ("/ConfigMap/b/three".to_string(), Change::Deleted),
            ]
        );
        let names: Vec<_> = store
            .app_resources("shop")
            .iter()
            .map(|o| o.key.name.clone())
            .collect();
        assert_eq!(names, ["four", "one", "two"]);
        assert_eq!(
            store
                .get(&configmap("a", "two", "5").key)
                .unwrap()
                .resource_version,
            "5"
        );
    }

    #[test]
    fn a_namespaced_relist_leaves_other_namespaces_alone() {
        let mut store = Store::default();
        store.apply(configmap("other", "kept", "1"));
        store.apply(configmap("mine", "stale", "1"));
        let mut sync = ScopeSync::new(scope(Some("mine")));
        let mut events = Vec::new();
        for event in [
            Event::Init,
            Event::InitApply(configmap("mine", "fresh", "2")),
            Event::InitDone,
        ] {
            events.extend(sync.handle(&mut store, event));
        }
        assert_eq!(
            summary(&events),
            [
                ("/ConfigMap/mine/fresh".to_string(), Change::Applied),
                ("/ConfigMap/mine/stale".to_string(), Change::Deleted),
            ]
        );
        assert!(store.get(&configmap("other", "kept", "1").key).is_some());
    }

    #[test]
    fn deletes_remove_objects() {
        let mut store = Store::default();
        let mut sync = ScopeSync::new(scope(None));
        sync.handle(&mut store, Event::Apply(configmap("a", "one", "1")));
        let events = sync.handle(&mut store, Event::Delete(configmap("a", "one", "2")));
        assert_eq!(
            summary(&events),
            [("/ConfigMap/a/one".to_string(), Change::Deleted)]
        );
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn list_items_get_their_kind_and_metadata_back() {
        let resource = ApiResource {
            group: "apps".into(),
            version: "v1".into(),
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
        };
        let item: DynamicObject = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "prod",
                         "managedFields": [{"manager": "kubectl"}]},
            "spec": {"replicas": 1}
        }))
        .unwrap();
        let value = into_value(item, &resource);
        assert_eq!(value["apiVersion"], "apps/v1");
        assert_eq!(value["kind"], "Deployment");
        assert_eq!(value["metadata"]["name"], "web");
        assert_eq!(value["spec"]["replicas"], 1);
        let cached = CachedObject::new(value, &TrackingMethod::default()).unwrap();
        assert!(cached.object()["metadata"].get("managedFields").is_none());
    }
}
