//! Argo CD's ignoreResourceUpdates at the point where live changes refresh apps: an update of
//! a tracked object (or of one annotated `argocd.argoproj.io/ignore-resource-updates: "true"`)
//! that leaves both its hash without the ignored fields
//! ([`ferry_appstate::resource_updates`]) and its health as they were refreshes nothing.
//! Creations, deletions and changes of untracked objects (a Deployment's Pods) always count.
//!
//! Upstream hashes every object as its cache lists it; here an object's hash is remembered from
//! its first change the controller sees, so that first change always counts.

use std::collections::HashMap;

use ferry_appstate::argocd_cm::ArgoSettings;
use ferry_cache::{CacheEvent, CachedObject, Change, ResourceKey};
use ferry_health::HealthCode;
use ferry_types::application::parse_go_bool;
use serde_json::Value;

/// Argo CD's opt-in for objects no app tracks (a CronJob's Jobs and Pods).
pub const IGNORE_RESOURCE_UPDATES_ANNOTATION: &str = "argocd.argoproj.io/ignore-resource-updates";

/// What was seen of the objects whose updates can be ignored, by key.
#[derive(Default)]
pub struct SeenObjects {
    seen: HashMap<ResourceKey, Seen>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Seen {
    hash: u64,
    health: Option<HealthCode>,
}

impl SeenObjects {
    /// Whether `event` should refresh its apps; `object` is the object as cached now (`None`
    /// once gone).
    pub fn counts(
        &mut self,
        event: &CacheEvent,
        object: Option<&CachedObject>,
        settings: &ArgoSettings,
    ) -> bool {
        let object = object.filter(|_| event.change == Change::Applied);
        let now = object.and_then(|object| seen(object, settings));
        match now {
            Some(now) => self.seen.insert(event.key.clone(), now) != Some(now),
            None => {
                self.seen.remove(&event.key);
                true
            }
        }
    }

    /// Forgets everything (after missed events, which may have deleted objects).
    pub fn clear(&mut self) {
        self.seen.clear();
    }
}

/// The object's hash and health, when its updates can be ignored.
fn seen(object: &CachedObject, settings: &ArgoSettings) -> Option<Seen> {
    let updates = &settings.resource_updates;
    if !updates.enabled {
        return None;
    }
    let value = object.object();
    if !hashed(object, &value) {
        return None;
    }
    Some(Seen {
        hash: updates.hash(&value)?,
        health: ferry_health::assess(&value, &settings.health).map(|h| h.status),
    })
}

/// Upstream's shouldHashManifest: tracked objects, Applications, and objects that ask for it.
fn hashed(object: &CachedObject, value: &Value) -> bool {
    let is_application = object.key.group == ferry_types::GROUP && object.key.kind == "Application";
    if object.app.is_some() || is_application {
        return true;
    }
    value["metadata"]["annotations"][IGNORE_RESOURCE_UPDATES_ANNOTATION]
        .as_str()
        .and_then(parse_go_bool)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use ferry_cache::TrackingMethod;
    use serde_json::json;

    fn settings(entries: &[(&str, &str)]) -> ArgoSettings {
        let data: BTreeMap<String, String> = entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let settings = ArgoSettings::from_data(&data).unwrap();
        assert!(settings.problems.is_empty(), "{:?}", settings.problems);
        settings
    }

    fn config_map(metadata: Value, data: Value) -> CachedObject {
        let mut object = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "shop"}, "data": data});
        for (key, value) in metadata.as_object().unwrap() {
            object["metadata"][key] = value.clone();
        }
        CachedObject::new(object, &TrackingMethod::label()).unwrap()
    }

    fn event(object: &CachedObject, change: Change) -> CacheEvent {
        CacheEvent {
            key: object.key.clone(),
            change,
            apps: vec!["web".into()],
        }
    }

    const TRACKED: &str = "app.kubernetes.io/instance";

    #[test]
    fn only_changes_outside_the_ignored_fields_count() {
        let settings = settings(&[(
            "resource.customizations.ignoreResourceUpdates.ConfigMap",
            "jsonPointers: [/data/color]",
        )]);
        let mut seen = SeenObjects::default();
        let object = |color: &str, size: &str| {
            config_map(
                json!({"labels": {TRACKED: "web"}}),
                json!({"color": color, "size": size}),
            )
        };
        let blue = object("blue", "s");
        assert!(seen.counts(&event(&blue, Change::Applied), Some(&blue), &settings));
        let red = object("red", "s");
        assert!(!seen.counts(&event(&red, Change::Applied), Some(&red), &settings));
        let large = object("red", "l");
        assert!(seen.counts(&event(&large, Change::Applied), Some(&large), &settings));
        // Deletions count, and what follows is a creation.
        assert!(seen.counts(&event(&large, Change::Deleted), None, &settings));
        assert!(seen.counts(&event(&large, Change::Applied), Some(&large), &settings));

        let off = self::settings(&[
            (
                "resource.customizations.ignoreResourceUpdates.ConfigMap",
                "jsonPointers: [/data/color]",
            ),
            ("resource.ignoreResourceUpdatesEnabled", "false"),
        ]);
        let blue = object("blue", "l");
        assert!(seen.counts(&event(&blue, Change::Applied), Some(&blue), &off));
        assert!(seen.counts(&event(&blue, Change::Applied), Some(&blue), &off));
    }

    #[test]
    fn a_change_of_health_counts() {
        let settings = settings(&[
            (
                "resource.customizations.ignoreResourceUpdates.ConfigMap",
                "jsonPointers: [/data/color]",
            ),
            (
                "resource.customizations.health.ConfigMap",
                "hs = {status = 'Healthy'}\nif obj.data.color == 'red' then hs.status = \
                 'Degraded' end\nreturn hs",
            ),
        ]);
        let mut seen = SeenObjects::default();
        let object =
            |color: &str| config_map(json!({"labels": {TRACKED: "web"}}), json!({"color": color}));
        for (color, counts) in [
            ("blue", true),
            ("green", false),
            ("red", true),
            ("red", false),
        ] {
            let now = object(color);
            let event = event(&now, Change::Applied);
            assert_eq!(
                seen.counts(&event, Some(&now), &settings),
                counts,
                "{color}"
            );
        }
    }

    #[test]
    fn untracked_objects_count_unless_annotated() {
        let settings = settings(&[]);
        let mut seen = SeenObjects::default();
        let untracked = config_map(json!({}), json!({"a": "1"}));
        let event = event(&untracked, Change::Applied);
        assert!(seen.counts(&event, Some(&untracked), &settings));
        assert!(seen.counts(&event, Some(&untracked), &settings));

        let annotated = config_map(
            json!({"annotations": {IGNORE_RESOURCE_UPDATES_ANNOTATION: "true"}}),
            json!({"a": "1"}),
        );
        assert!(seen.counts(&event, Some(&annotated), &settings));
        assert!(!seen.counts(&event, Some(&annotated), &settings));
    }
}
