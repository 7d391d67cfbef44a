//! Failed logins shared by the API server replicas through the ConfigMap
//! `ferry-login-failures` (Argo CD shares its failed-login counts through Redis; ferry has no
//! Redis), so guesses spread over replicas count as if one replica saw them all, and a lockout
//! made by one holds on every one.
//!
//! Each replica writes only its own key, `<guard>.<replica>` (`users` or `clients`), a JSON map
//! from username or client address to `{"f": [failure times], "l": locked until}` in Unix
//! seconds, by JSON merge patch: replicas never contend for a write. Each follows the
//! ConfigMap and adds the other replicas' failures to its own when it decides a lockout.
//!
//! Writes stay bounded whatever the guessing rate: a replica writes its key at most once per
//! [`PUBLISH_INTERVAL`], only when its failures changed, with at most [`MAX_SHARED`] names
//! (lockouts first, then the most failures). The price is a lag of about that interval before
//! other replicas count a failure; the per-replica guard still stops a burst at one replica.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Notify;

use super::login_guard::LoginGuard;

/// The ConfigMap holding every replica's failed logins.
pub const LOGIN_FAILURES_CONFIG_MAP: &str = "ferry-login-failures";
/// Most often a replica writes its failures.
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);
/// Most names a replica shares per guard (a ConfigMap holds at most 1 MiB).
pub const MAX_SHARED: usize = 500;

/// One name's failures as a replica shares them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Shared {
    /// Times of the failures within the window, Unix seconds.
    #[serde(rename = "f", default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<i64>,
    /// End of a lockout, Unix seconds.
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<i64>,
}

/// What the other replicas report, for one guard.
pub struct SharedFailures {
    /// This replica's key in the ConfigMap.
    key: String,
    /// The key prefix of this guard's entries (`users.` or `clients.`).
    prefix: String,
    /// The other replicas' reports, merged by name.
    peers: RwLock<HashMap<String, Shared>>,
    /// Set when this replica's failures changed and should be published.
    changed: Notify,
}

impl SharedFailures {
    /// `guard` is `users` or `clients`; `replica` names this server process uniquely.
    pub fn new(guard: &str, replica: &str) -> Self {
        Self {
            key: format!("{guard}.{replica}"),
            prefix: format!("{guard}."),
            peers: RwLock::default(),
            changed: Notify::new(),
        }
    }

    /// The other replicas' failures of `name` within `window` before `now`, and the end of
    /// their lockout of it if it is still on.
    pub fn of(
        &self,
        name: &str,
        now: Timestamp,
        window: SignedDuration,
    ) -> (usize, Option<Timestamp>) {
        let peers = self.peers.read().unwrap_or_else(|p| p.into_inner());
        let Some(shared) = peers.get(name) else {
            return (0, None);
        };
        let since = now.as_second() - window.as_secs();
        let failures = shared.failures.iter().filter(|&&t| t > since).count();
        let locked = shared
            .locked_until
            .and_then(|until| Timestamp::from_second(until).ok())
            .filter(|until| *until > now);
        (failures, locked)
    }

    /// Asks for this replica's failures to be published.
    pub fn touch(&self) {
        self.changed.notify_one();
    }

    /// Replaces what is known of the other replicas with the ConfigMap's `data`.
    pub(crate) fn merge(&self, data: &BTreeMap<String, String>) {
        let mut merged: HashMap<String, Shared> = HashMap::new();
        for (key, value) in data {
            if !key.starts_with(&self.prefix) || *key == self.key {
                continue;
            }
            // An entry ferry did not write is ignored.
            let Ok(entries) = serde_json::from_str::<BTreeMap<String, Shared>>(value) else {
                continue;
            };
            for (name, shared) in entries {
                let into = merged.entry(name).or_default();
                into.failures.extend(shared.failures);
                into.locked_until = into.locked_until.max(shared.locked_until);
            }
        }
        *self.peers.write().unwrap_or_else(|p| p.into_inner()) = merged;
    }
}

/// Shares `guard`'s failures with the other replicas in `namespace` from now on: follows the
/// ConfigMap and publishes this replica's failures when they change. Returns once the
/// ConfigMap has been read.
pub async fn share(
    guard: Arc<LoginGuard>,
    shared: Arc<SharedFailures>,
    client: kube::Client,
    namespace: &str,
) -> Result<(), kube::Error> {
    let api: Api<ConfigMap> = Api::namespaced(client, namespace);
    if let Some(config_map) = api.get_opt(LOGIN_FAILURES_CONFIG_MAP).await? {
        shared.merge(&config_map.data.unwrap_or_default());
    }
    let config =
        watcher::Config::default().fields(&format!("metadata.name={LOGIN_FAILURES_CONFIG_MAP}"));
    let following = shared.clone();
    let watched = api.clone();
    tokio::spawn(async move {
        let mut objects = watcher(watched, config)
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(event) = objects.next().await {
            match event {
                Ok(config_map) => following.merge(&config_map.data.unwrap_or_default()),
                Err(err) => tracing::warn!("watching shared failed logins: {err}"),
            }
        }
    });
    tokio::spawn(publish(guard, shared, api));
    Ok(())
}

/// Writes this replica's failures whenever they changed, at most once per interval.
async fn publish(guard: Arc<LoginGuard>, shared: Arc<SharedFailures>, api: Api<ConfigMap>) {
    let mut published = BTreeMap::new();
    loop {
        shared.changed.notified().await;
        tokio::time::sleep(PUBLISH_INTERVAL).await;
        let now = guard.now();
        let current = guard.shared_snapshot(now, MAX_SHARED);
        if current == published {
            continue;
        }
        match write(&api, &shared.key, &current).await {
            Ok(()) => published = current,
            Err(err) => {
                tracing::warn!("sharing failed logins: {err}");
                shared.touch();
            }
        }
    }
}

async fn write(
    api: &Api<ConfigMap>,
    key: &str,
    entries: &BTreeMap<String, Shared>,
) -> Result<(), kube::Error> {
    let value = if entries.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::to_string(entries)
            .map_err(kube::Error::SerdeError)?
            .into()
    };
    let patch = json!({"data": {key: value}});
    match api
        .patch(
            LOGIN_FAILURES_CONFIG_MAP,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        // Nothing shared yet and nothing to share.
        Err(kube::Error::Api(status)) if status.code == 404 && value.is_null() => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => {
            let config_map: ConfigMap = serde_json::from_value(json!({
                "metadata": {"name": LOGIN_FAILURES_CONFIG_MAP},
                "data": {key: value},
            }))
            .map_err(kube::Error::SerdeError)?;
            match api.create(&PostParams::default(), &config_map).await {
                // Another replica created it meanwhile: write into it.
                Err(kube::Error::Api(status)) if status.code == 409 => api
                    .patch(
                        LOGIN_FAILURES_CONFIG_MAP,
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await
                    .map(drop),
                other => other.map(drop),
            }
        }
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_replicas_failures_add_up_and_their_lockouts_hold() {
        let shared = SharedFailures::new("users", "me");
        let now = Timestamp::from_second(1_000_000).unwrap();
        let at = |secs: i64| now.as_second() - secs;
        let data = BTreeMap::from([
            (
                "users.a".to_string(),
                json!({"admin": {"f": [at(10), at(400)]}, "bob": {"l": at(-60)}}).to_string(),
            ),
            (
                "users.b".to_string(),
                json!({"admin": {"f": [at(5)]}}).to_string(),
            ),
            // This replica's own key and the other guard's are not the peers' of this guard.
            (
                "users.me".to_string(),
                json!({"admin": {"f": [at(1)]}}).to_string(),
            ),
            (
                "clients.a".to_string(),
                json!({"admin": {"f": [at(1)]}}).to_string(),
            ),
            ("users.c".to_string(), "not written by ferry".to_string()),
        ]);
        shared.merge(&data);
        let window = SignedDuration::from_secs(300);
        assert_eq!(shared.of("admin", now, window), (2, None));
        assert_eq!(
            shared.of("bob", now, window),
            (0, Some(Timestamp::from_second(at(-60)).unwrap()))
        );
        assert_eq!(shared.of("carol", now, window), (0, None));
        // A lockout that ended no longer counts.
        let later = now + SignedDuration::from_secs(61);
        assert_eq!(shared.of("bob", later, window), (0, None));
    }
}
