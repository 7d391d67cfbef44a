//! The objects and their indexes: by key, by kind, by tracked app (top-level objects only, as in
//! Argo CD) and by owner UID (for the resource tree). Every mutation returns the `CacheEvent`s it
//! caused, so the caller can publish them after releasing its lock.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use ferry_types::ResourceKey;

use crate::GroupKind;
use crate::object::CachedObject;

/// Something changed in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheEvent {
    pub key: ResourceKey,
    pub change: Change,
    /// The app instances the object is tracked to, itself or through its owners (before and after
    /// the change, when that moved it between apps). Empty for objects no app knows.
    pub apps: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Applied,
    Deleted,
}

/// One node of an app's resource tree.
#[derive(Clone, Debug)]
pub struct TreeNode {
    pub object: Arc<CachedObject>,
    /// The owners of this object that are in the tree; empty for the app's own resources.
    pub parents: Vec<ResourceKey>,
}

/// Object count and approximate size of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindStats {
    pub objects: usize,
    pub approx_bytes: usize,
}

type Key = Arc<ResourceKey>;

#[derive(Default)]
struct KindIndex {
    keys: HashSet<Key>,
    approx_bytes: usize,
}

#[derive(Default)]
pub(crate) struct Store {
    objects: HashMap<Key, Arc<CachedObject>>,
    by_kind: HashMap<GroupKind, KindIndex>,
    by_app: HashMap<String, HashSet<Key>>,
    by_owner: HashMap<String, HashSet<Key>>,
    by_uid: HashMap<String, Key>,
    by_namespace: HashMap<String, HashSet<Key>>,
}

impl Store {
    /// Adds or replaces an object. An object whose resourceVersion is unchanged (as a re-list
    /// delivers most of them) is left alone and reports nothing.
    pub(crate) fn apply(&mut self, object: CachedObject) -> Option<CacheEvent> {
        let previous = self.objects.get(&object.key);
        if previous.is_some_and(|p| {
            p.resource_version == object.resource_version && !object.resource_version.is_empty()
        }) {
            return None;
        }
        let mut apps = previous.map(|p| self.apps_of(p)).unwrap_or_default();
        let object = Arc::new(object);
        let key = self
            .unindex(&object.key)
            .unwrap_or_else(|| Arc::new(object.key.clone()));
        self.index(key, object.clone());
        apps.extend(self.apps_of(&object));
        Some(CacheEvent {
            key: object.key.clone(),
            change: Change::Applied,
            apps: apps.into_iter().collect(),
        })
    }

    /// Removes an object, if cached.
    pub(crate) fn delete(&mut self, key: &ResourceKey) -> Option<CacheEvent> {
        let apps = self.apps_of(self.objects.get(key)?);
        self.unindex(key)?;
        Some(CacheEvent {
            key: key.clone(),
            change: Change::Deleted,
            apps: apps.into_iter().collect(),
        })
    }

    /// Removes every object of `kind` (in `namespace`, if given) that is not in `keep`: after a
    /// (re-)list, whatever the list did not return is gone from the cluster.
    pub(crate) fn retain(
        &mut self,
        kind: &GroupKind,
        namespace: Option<&str>,
        keep: &HashSet<ResourceKey>,
    ) -> Vec<CacheEvent> {
        let Some(index) = self.by_kind.get(kind) else {
            return Vec::new();
        };
        let mut gone: Vec<Key> = index
            .keys
            .iter()
            .filter(|key| namespace.is_none_or(|ns| key.namespace == ns))
            .filter(|key| !keep.contains(key.as_ref()))
            .cloned()
            .collect();
        gone.sort();
        gone.iter().filter_map(|key| self.delete(key)).collect()
    }

    pub(crate) fn get(&self, key: &ResourceKey) -> Option<Arc<CachedObject>> {
        self.objects.get(key).cloned()
    }

    /// The top-level objects tracked to `app`, sorted by key.
    pub(crate) fn app_resources(&self, app: &str) -> Vec<Arc<CachedObject>> {
        self.sorted(self.by_app.get(app))
    }

    /// The objects of a namespace, sorted by key.
    pub(crate) fn namespace_objects(&self, namespace: &str) -> Vec<Arc<CachedObject>> {
        self.sorted(self.by_namespace.get(namespace))
    }

    /// The objects that name `uid` as an owner, sorted by key.
    pub(crate) fn children(&self, uid: &str) -> Vec<Arc<CachedObject>> {
        self.sorted(self.by_owner.get(uid))
    }

    /// The app's resources followed by their owned descendants, breadth first.
    pub(crate) fn tree(&self, app: &str) -> Vec<TreeNode> {
        let mut seen: HashSet<ResourceKey> = HashSet::new();
        let mut order = Vec::new();
        let mut queue: VecDeque<Arc<CachedObject>> = self.app_resources(app).into();
        while let Some(object) = queue.pop_front() {
            if !seen.insert(object.key.clone()) {
                continue;
            }
            queue.extend(self.children(&object.uid));
            order.push(object);
        }
        let in_tree: HashMap<&str, &ResourceKey> = order
            .iter()
            .filter(|o| !o.uid.is_empty())
            .map(|o| (o.uid.as_str(), &o.key))
            .collect();
        order
            .iter()
            .map(|object| TreeNode {
                parents: object
                    .owners
                    .iter()
                    .filter_map(|owner| in_tree.get(owner.uid.as_str()).map(|k| (*k).clone()))
                    .collect(),
                object: object.clone(),
            })
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.objects.len()
    }

    pub(crate) fn kind_stats(&self) -> BTreeMap<GroupKind, KindStats> {
        self.by_kind
            .iter()
            .filter(|(_, index)| !index.keys.is_empty())
            .map(|(kind, index)| {
                let stats = KindStats {
                    objects: index.keys.len(),
                    approx_bytes: index.approx_bytes,
                };
                (kind.clone(), stats)
            })
            .collect()
    }

    /// The apps an object belongs to: its own tracking, else that of the nearest tracked owners.
    fn apps_of(&self, object: &CachedObject) -> BTreeSet<String> {
        let mut apps = BTreeSet::new();
        let mut visited = HashSet::new();
        let mut pending = vec![object];
        while let Some(current) = pending.pop() {
            if !visited.insert(current.key.clone()) {
                continue;
            }
            if let Some(app) = &current.app {
                apps.insert(app.clone());
                continue;
            }
            pending.extend(
                current
                    .owners
                    .iter()
                    .filter_map(|owner| self.by_uid.get(&owner.uid))
                    .filter_map(|key| self.objects.get(key))
                    .map(Arc::as_ref),
            );
        }
        apps
    }

    fn index(&mut self, key: Key, object: Arc<CachedObject>) {
        let kind = self.by_kind.entry(GroupKind::of(&key)).or_default();
        kind.keys.insert(key.clone());
        kind.approx_bytes += object.approx_bytes;
        // Like Argo CD, only objects nobody owns are an app's own; owned ones are its tree.
        if let Some(app) = &object.app
            && object.owners.is_empty()
        {
            self.by_app
                .entry(app.clone())
                .or_default()
                .insert(key.clone());
        }
        for owner in &object.owners {
            self.by_owner
                .entry(owner.uid.clone())
                .or_default()
                .insert(key.clone());
        }
        if !object.uid.is_empty() {
            self.by_uid.insert(object.uid.clone(), key.clone());
        }
        if !key.namespace.is_empty() {
            self.by_namespace
                .entry(key.namespace.clone())
                .or_default()
                .insert(key.clone());
        }
        self.objects.insert(key, object);
    }

    /// Takes an object out of every index, handing back its shared key.
    fn unindex(&mut self, key: &ResourceKey) -> Option<Key> {
        let (key, object) = self.objects.remove_entry(key)?;
        if let Some(kind) = self.by_kind.get_mut(&GroupKind::of(&key)) {
            kind.keys.remove(&key);
            kind.approx_bytes -= object.approx_bytes;
        }
        if let Some(app) = &object.app {
            remove_from(&mut self.by_app, app, &key);
        }
        for owner in &object.owners {
            remove_from(&mut self.by_owner, &owner.uid, &key);
        }
        if self.by_uid.get(&object.uid) == Some(&key) {
            self.by_uid.remove(&object.uid);
        }
        remove_from(&mut self.by_namespace, &key.namespace, &key);
        Some(key)
    }

    fn sorted(&self, keys: Option<&HashSet<Key>>) -> Vec<Arc<CachedObject>> {
        let mut objects: Vec<_> = keys
            .into_iter()
            .flatten()
            .filter_map(|key| self.objects.get(key).cloned())
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        objects
    }
}

fn remove_from(index: &mut HashMap<String, HashSet<Key>>, name: &str, key: &ResourceKey) {
    if let Some(keys) = index.get_mut(name) {
        keys.remove(key);
        if keys.is_empty() {
            index.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracking::TrackingMethod;
    use serde_json::{Value, json};

    fn object(kind: &str, name: &str, uid: &str, owner: Option<(&str, &str, &str)>) -> Value {
        let api_version = match kind {
            "Deployment" | "ReplicaSet" => "apps/v1",
            _ => "v1",
        };
        let mut obj = json!({"apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "namespace": "prod", "uid": uid, "resourceVersion": "1"}});
        if let Some((kind, name, uid)) = owner {
            obj["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind,
                "name": name, "uid": uid, "controller": true}]);
        }
        obj
    }

    fn tracked(mut obj: Value, app: &str) -> Value {
        TrackingMethod::label().mark(&mut obj, app, None).unwrap();
        obj
    }

    fn cached(obj: Value) -> CachedObject {
        CachedObject::new(obj, &TrackingMethod::label()).unwrap()
    }

    fn key(kind: &str, name: &str) -> ResourceKey {
        let group = if kind == "Pod" || kind == "ConfigMap" {
            ""
        } else {
            "apps"
        };
        ResourceKey::new(group, kind, "prod", name)
    }

    fn names(objects: &[Arc<CachedObject>]) -> Vec<&str> {
        objects.iter().map(|o| o.key.name.as_str()).collect()
    }

    /// shop: Deployment web → ReplicaSet web-1 → Pods web-1-a, web-1-b; plus a ConfigMap.
    fn shop() -> Store {
        let mut store = Store::default();
        // Children arrive before their owners, as separate watches deliver them.
        for obj in [
            object(
                "Pod",
                "web-1-a",
                "pod-a",
                Some(("ReplicaSet", "web-1", "rs")),
            ),
            object(
                "Pod",
                "web-1-b",
                "pod-b",
                Some(("ReplicaSet", "web-1", "rs")),
            ),
            object(
                "ReplicaSet",
                "web-1",
                "rs",
                Some(("Deployment", "web", "deploy")),
            ),
            tracked(object("Deployment", "web", "deploy", None), "shop"),
            tracked(object("ConfigMap", "settings", "cm", None), "shop"),
            tracked(object("ConfigMap", "other", "cm2", None), "blog"),
        ] {
            store.apply(cached(obj));
        }
        store
    }

    #[test]
    fn objects_are_indexed_by_app_and_owner() {
        let store = shop();
        assert_eq!(store.len(), 6);
        assert_eq!(names(&store.app_resources("shop")), ["settings", "web"]);
        assert_eq!(names(&store.app_resources("blog")), ["other"]);
        assert!(store.app_resources("none").is_empty());
        assert_eq!(names(&store.children("rs")), ["web-1-a", "web-1-b"]);
        assert_eq!(names(&store.children("deploy")), ["web-1"]);
        assert!(store.children("pod-a").is_empty());
        assert_eq!(store.get(&key("Deployment", "web")).unwrap().uid, "deploy");
        assert_eq!(store.namespace_objects("prod").len(), 6);
        assert!(store.namespace_objects("staging").is_empty());
    }

    #[test]
    fn deleted_objects_leave_the_namespace_index() {
        let mut store = shop();
        store.delete(&key("ConfigMap", "settings")).unwrap();
        let left = store.namespace_objects("prod");
        assert_eq!(left.len(), 5);
        assert!(left.iter().all(|o| o.key.name != "settings"));
    }

    #[test]
    fn tree_follows_owners_with_parent_refs() {
        let store = shop();
        let tree = store.tree("shop");
        let summary: Vec<(String, Vec<String>)> = tree
            .iter()
            .map(|node| {
                let parents = node.parents.iter().map(|p| p.to_string()).collect();
                (node.object.key.to_string(), parents)
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("/ConfigMap/prod/settings".to_string(), vec![]),
                ("apps/Deployment/prod/web".to_string(), vec![]),
                (
                    "apps/ReplicaSet/prod/web-1".to_string(),
                    vec!["apps/Deployment/prod/web".to_string()]
                ),
                (
                    "/Pod/prod/web-1-a".to_string(),
                    vec!["apps/ReplicaSet/prod/web-1".to_string()]
                ),
                (
                    "/Pod/prod/web-1-b".to_string(),
                    vec!["apps/ReplicaSet/prod/web-1".to_string()]
                ),
            ]
        );
    }

    #[test]
    fn owned_objects_are_not_an_apps_own_even_when_labelled() {
        let mut store = Store::default();
        // Helm charts often put the instance label into pod templates: the ReplicaSet carries it.
        store.apply(cached(tracked(
            object("Deployment", "web", "deploy", None),
            "shop",
        )));
        store.apply(cached(tracked(
            object(
                "ReplicaSet",
                "web-1",
                "rs",
                Some(("Deployment", "web", "deploy")),
            ),
            "shop",
        )));
        assert_eq!(names(&store.app_resources("shop")), ["web"]);
        assert_eq!(store.tree("shop").len(), 2);
    }

    #[test]
    fn ownership_cycles_end() {
        let mut store = Store::default();
        store.apply(cached(tracked(
            object("ConfigMap", "root", "root", None),
            "shop",
        )));
        store.apply(cached(object("Pod", "a", "a", Some(("Pod", "b", "b")))));
        let mut b = object("Pod", "b", "b", Some(("Pod", "a", "a")));
        b["metadata"]["ownerReferences"]
            .as_array_mut()
            .unwrap()
            .push(json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "root", "uid": "root"}));
        store.apply(cached(b));
        let tree = store.tree("shop");
        assert_eq!(tree.len(), 3);
        // An app lookup through the cycle ends too.
        let event = store.apply(cached(object("Pod", "c", "c", Some(("Pod", "a", "a")))));
        assert_eq!(event.unwrap().apps, ["shop"]);
    }

    #[test]
    fn events_name_the_app_directly_or_through_owners() {
        let mut store = shop();
        let mut pod = object(
            "Pod",
            "web-1-a",
            "pod-a",
            Some(("ReplicaSet", "web-1", "rs")),
        );
        pod["metadata"]["resourceVersion"] = json!("2");
        let event = store.apply(cached(pod)).unwrap();
        assert_eq!(event.change, Change::Applied);
        assert_eq!(event.apps, ["shop"]);

        let event = store.delete(&key("ConfigMap", "other")).unwrap();
        assert_eq!(
            (event.change, event.apps),
            (Change::Deleted, vec!["blog".into()])
        );
        assert!(store.delete(&key("ConfigMap", "other")).is_none());

        let stray = object("ConfigMap", "stray", "stray", None);
        assert!(store.apply(cached(stray)).unwrap().apps.is_empty());
    }

    #[test]
    fn moving_between_apps_reports_both_and_reindexes() {
        let mut store = shop();
        let mut moved = tracked(object("ConfigMap", "settings", "cm", None), "blog");
        moved["metadata"]["resourceVersion"] = json!("2");
        let event = store.apply(cached(moved)).unwrap();
        assert_eq!(event.apps, ["blog", "shop"]);
        assert_eq!(names(&store.app_resources("shop")), ["web"]);
        assert_eq!(names(&store.app_resources("blog")), ["other", "settings"]);
    }

    #[test]
    fn unchanged_resource_versions_are_not_reapplied() {
        let mut store = shop();
        let before = store.get(&key("ConfigMap", "settings")).unwrap();
        let again = tracked(object("ConfigMap", "settings", "cm", None), "shop");
        assert!(store.apply(cached(again)).is_none());
        let after = store.get(&key("ConfigMap", "settings")).unwrap();
        assert!(
            Arc::ptr_eq(&before, &after),
            "readers keep sharing the same object"
        );
    }

    #[test]
    fn deletion_clears_every_index() {
        let mut store = shop();
        store.delete(&key("ReplicaSet", "web-1"));
        assert!(store.children("deploy").is_empty());
        assert_eq!(
            store.tree("shop").len(),
            2,
            "pods lost their path to the app"
        );
        store.delete(&key("Pod", "web-1-a"));
        assert_eq!(names(&store.children("rs")), ["web-1-b"]);
        store.delete(&key("Deployment", "web"));
        assert_eq!(names(&store.app_resources("shop")), ["settings"]);
        let stats = store.kind_stats();
        assert_eq!(stats[&GroupKind::new("", "Pod")].objects, 1);
        assert!(!stats.contains_key(&GroupKind::new("apps", "Deployment")));
    }

    #[test]
    fn retain_removes_what_a_relist_did_not_return() {
        let mut store = shop();
        let mut elsewhere = tracked(object("ConfigMap", "elsewhere", "cm3", None), "shop");
        elsewhere["metadata"]["namespace"] = json!("staging");
        store.apply(cached(elsewhere));
        let configmaps = GroupKind::new("", "ConfigMap");
        let keep: HashSet<_> = [key("ConfigMap", "settings")].into();

        let events = store.retain(&configmaps, Some("prod"), &keep);
        assert_eq!(
            events.iter().map(|e| e.key.to_string()).collect::<Vec<_>>(),
            ["/ConfigMap/prod/other"]
        );
        assert!(
            store
                .get(&ResourceKey::new("", "ConfigMap", "staging", "elsewhere"))
                .is_some()
        );

        store.retain(&configmaps, None, &HashSet::new());
        assert_eq!(store.kind_stats().get(&configmaps), None);
        assert_eq!(store.len(), 4);
    }

    #[test]
    fn stats_track_counts_and_sizes() {
        let mut store = shop();
        let stats = store.kind_stats();
        let configmaps = stats[&GroupKind::new("", "ConfigMap")];
        assert_eq!(configmaps.objects, 2);
        let expected: usize = store
            .app_resources("shop")
            .iter()
            .chain(store.app_resources("blog").iter())
            .filter(|o| o.key.kind == "ConfigMap")
            .map(|o| o.approx_bytes)
            .sum();
        assert_eq!(configmaps.approx_bytes, expected);
        store.retain(&GroupKind::new("", "ConfigMap"), None, &HashSet::new());
        let total: usize = store.kind_stats().values().map(|s| s.approx_bytes).sum();
        assert!(total > 0);
        assert_eq!(
            store
                .kind_stats()
                .values()
                .map(|s| s.objects)
                .sum::<usize>(),
            4
        );
    }
}
