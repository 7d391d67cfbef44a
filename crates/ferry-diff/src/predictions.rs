//! The API server's server-side apply dry-run answers, kept per resource: a resource whose
//! manifest and live object are both unchanged since its last dry run is predicted from memory
//! instead of asking the API server again on every comparison of its app. An app's comparison
//! runs whenever any of its resources changes (a Deployment's status during a rollout), so this
//! spares the API server all but the changed resource's dry run. Argo CD caches server-side
//! diff results the same way; as there, a hard refresh asks the API server again (callers then
//! pass no cache).
//!
//! The key covers everything the answer depends on that ferry can see: the manifest as sent,
//! the field manager, and the live object's uid and resourceVersion (any change to the live
//! object, by anyone, changes it). Only successful answers are kept, as compact JSON, within a
//! byte budget (least recently used out first).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::normalize::strip_server_metadata;

/// Dry-run answers by resource state.
pub struct Predictions {
    answers: moka::sync::Cache<[u8; 32], Arc<[u8]>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// How often the cache answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PredictionStats {
    pub hits: u64,
    pub misses: u64,
}

impl Predictions {
    /// A cache holding at most `max_bytes` of answers.
    pub fn new(max_bytes: u64) -> Self {
        let answers = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_, answer: &Arc<[u8]>| u32::try_from(answer.len()).unwrap_or(u32::MAX))
            .build();
        Self {
            answers,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn stats(&self) -> PredictionStats {
        PredictionStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// The key of a dry run of `body` over `live`; `None` when the live object lacks the uid
    /// or resourceVersion that would tell its versions apart.
    pub(crate) fn key(body: &Value, live: Option<&Value>, field_manager: &str) -> Option<[u8; 32]> {
        let mut digest = Sha256::new();
        digest.update(field_manager.as_bytes());
        digest.update([0]);
        if let Some(live) = live {
            let metadata = &live["metadata"];
            for field in ["uid", "resourceVersion"] {
                digest.update(
                    metadata[field]
                        .as_str()
                        .filter(|v| !v.is_empty())?
                        .as_bytes(),
                );
                digest.update([0]);
            }
        }
        digest.update(serde_json::to_vec(body).ok()?);
        Some(digest.finalize().into())
    }

    /// Keeps the answer to a real server-side apply of `sent` (as `field_manager`, forced, as a
    /// sync applies) as the prediction for the same manifest over the object that apply left:
    /// applying it again would change nothing, so the comparison after a sync needs no dry run
    /// of what the sync just applied. A later change of the live object is another key.
    pub fn remember_applied(&self, sent: &Value, answer: &Value, field_manager: &str) {
        let mut body = sent.clone();
        strip_server_metadata(&mut body);
        if let Some(key) = Self::key(&body, Some(answer), field_manager) {
            self.insert(key, answer);
        }
    }

    pub(crate) fn get(&self, key: &[u8; 32]) -> Option<Value> {
        let answer = self
            .answers
            .get(key)
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let counter = if answer.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        answer
    }

    pub(crate) fn insert(&self, key: [u8; 32], answer: &Value) {
        if let Ok(bytes) = serde_json::to_vec(answer) {
            self.answers.insert(key, bytes.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live(rv: &str) -> Value {
        json!({"metadata": {"name": "web", "uid": "u-1", "resourceVersion": rv}})
    }

    #[test]
    fn any_change_of_manifest_live_version_or_manager_is_another_key() {
        let body = json!({"kind": "ConfigMap", "data": {"a": "1"}});
        let key = Predictions::key(&body, Some(&live("7")), "ferry").unwrap();
        assert_eq!(
            Predictions::key(&body, Some(&live("7")), "ferry"),
            Some(key)
        );
        for other in [
            Predictions::key(
                &json!({"kind": "ConfigMap", "data": {"a": "2"}}),
                Some(&live("7")),
                "ferry",
            ),
            Predictions::key(&body, Some(&live("8")), "ferry"),
            Predictions::key(&body, Some(&live("7")), "argocd-controller"),
            Predictions::key(&body, None, "ferry"),
        ] {
            assert_ne!(other, Some(key));
        }
        // A live object without a resourceVersion cannot be told apart from its next version.
        let unversioned = json!({"metadata": {"uid": "u-1"}});
        assert_eq!(Predictions::key(&body, Some(&unversioned), "ferry"), None);
    }

    #[test]
    fn answers_come_back_and_are_counted() {
        let predictions = Predictions::new(1 << 20);
        let key = Predictions::key(&json!({}), Some(&live("1")), "ferry").unwrap();
        assert_eq!(predictions.get(&key), None);
        predictions.insert(key, &json!({"spec": {"replicas": 1}}));
        assert_eq!(
            predictions.get(&key),
            Some(json!({"spec": {"replicas": 1}}))
        );
        assert_eq!(predictions.stats(), PredictionStats { hits: 1, misses: 1 });
    }
}
