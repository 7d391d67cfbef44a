//! The API server's server-side apply dry-run answers, kept per resource: a resource whose
//! manifest and live object are both unchanged since its last dry run is predicted from memory
//! instead of asking the API server again on every comparison of its app. An app's comparison
//! runs whenever any of its resources changes (a Deployment's status during a rollout), so this
//! spares the API server all but the changed resource's dry run. Argo CD caches server-side
//! diff results the same way; as there, a hard refresh asks the API server again (callers then
//! pass no cache).
//!
//! An answer is kept per manifest, field manager and live object version (its uid and a digest
//! of all it holds but its status and bookkeeping): any change to the live object but its status,
//! by anyone, makes it unusable (an answer for an older version stays until it is evicted: a
//! comparison that read the live object just before a sync applied it must not push out what the
//! sync remembered). A status change alone keeps it: an apply never writes the status of a kind
//! that has a status subresource, and keeps another writer's status where there is none, so the
//! kept change applies to the new status as it did to the old (a Deployment's rollout changes
//! its status a few times, and its comparisons need no dry run for that). Only successful
//! answers are kept, within a byte budget (least recently used out first), and only as what
//! they change of the live object they were given for (a JSON patch, empty for the usual answer
//! of an object in sync), without `metadata.managedFields` and the last-applied annotation,
//! which a comparison drops.
//!
//! A sync tells when it starts applying a manifest and when the answer is kept: a comparison
//! that meanwhile sees the object the apply made (its watch event can come before the apply's
//! answer) waits for that answer instead of asking for a dry run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_types::bookkeeping;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::normalize::strip_server_metadata;

/// What an entry costs besides its text: the key, the cache's bookkeeping.
const ENTRY_OVERHEAD: usize = 160;

/// Dry-run answers by resource state.
pub struct Predictions {
    answers: moka::sync::Cache<[u8; 32], Arc<Answer>>,
    in_flight: InFlight,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Applies in flight by field manager and manifest; each channel closes when its answer is kept.
type InFlight = Arc<Mutex<HashMap<[u8; 32], watch::Receiver<()>>>>;

/// An apply in flight, from [`Predictions::applying`] until dropped (after its answer was kept
/// with [`Predictions::remember_applied`], or it failed).
pub struct Applying {
    in_flight: InFlight,
    key: [u8; 32],
    mine: watch::Receiver<()>,
    _done: watch::Sender<()>,
}

impl Drop for Applying {
    fn drop(&mut self) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if in_flight
            .get(&self.key)
            .is_some_and(|waiter| waiter.same_channel(&self.mine))
        {
            in_flight.remove(&self.key);
        }
    }
}

/// The answer for one live version.
struct Answer {
    version: [u8; 32],
    /// The JSON patch from the live object to the answer, as compact JSON.
    patch: Box<str>,
}

/// Where the answer for a dry run goes: the key, and the live version it is for.
pub(crate) struct Slot {
    key: [u8; 32],
    version: [u8; 32],
}

/// How often the cache answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PredictionStats {
    pub hits: u64,
    pub misses: u64,
}

impl Predictions {
    /// A cache holding at most `max_bytes` of answers, each counted with its key and the
    /// cache's bookkeeping of it.
    pub fn new(max_bytes: u64) -> Self {
        let answers = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_, answer: &Arc<Answer>| {
                let bytes = ENTRY_OVERHEAD + answer.patch.len();
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .build();
        Self {
            answers,
            in_flight: InFlight::default(),
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

    /// The slot of a dry run of `body` over `live`; `None` when the live object lacks the uid
    /// that tells it from an object of the same name made again.
    pub(crate) fn slot(body: &Value, live: &Value, field_manager: &str) -> Option<Slot> {
        let uid = live["metadata"]["uid"].as_str().filter(|v| !v.is_empty())?;
        let version = version_of(live)?;
        let mut digest = Sha256::new();
        for part in [field_manager.as_bytes(), uid.as_bytes(), &version] {
            digest.update(part);
            digest.update([0]);
        }
        digest.update(serde_json::to_vec(body).ok()?);
        Some(Slot {
            key: digest.finalize().into(),
            version,
        })
    }

    /// Keeps the answer to a real server-side apply of `sent` (as `field_manager`, forced, as a
    /// sync applies) as the prediction for the same manifest over the object that apply left:
    /// applying it again would change nothing, so the comparison after a sync needs no dry run
    /// of what the sync just applied. A later change of the live object is another version.
    pub fn remember_applied(&self, sent: &Value, answer: &Value, field_manager: &str) {
        let mut body = sent.clone();
        strip_server_metadata(&mut body);
        if let Some(slot) = Self::slot(&body, answer, field_manager) {
            // The answer is the live object at that version: nothing to change of it.
            self.keep(slot, "[]".into());
        }
    }

    /// Marks an apply of `sent` by `field_manager` as in flight until the guard is dropped.
    pub fn applying(&self, sent: &Value, field_manager: &str) -> Applying {
        let mut body = sent.clone();
        strip_server_metadata(&mut body);
        let key = manifest_key(&body, field_manager);
        let (done, mine) = watch::channel(());
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        in_flight.insert(key, mine.clone());
        Applying {
            in_flight: self.in_flight.clone(),
            key,
            mine,
            _done: done,
        }
    }

    /// Waits, at most `limit`, for an apply of `body` (a manifest without server metadata) by
    /// `field_manager` that is in flight; at once when there is none.
    pub(crate) async fn wait_for_apply(&self, body: &Value, field_manager: &str, limit: Duration) {
        let waiter = {
            let in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            // Most comparisons run with no sync applying anything: no key to compute then.
            if in_flight.is_empty() {
                return;
            }
            in_flight.get(&manifest_key(body, field_manager)).cloned()
        };
        if let Some(mut waiter) = waiter {
            // Ends with an error as the guard drops its sender.
            let _ = tokio::time::timeout(limit, waiter.changed()).await;
        }
    }

    /// The answer kept for `slot`, applied to `live` (the object at the slot's version).
    pub(crate) fn get(&self, slot: &Slot, live: &Value) -> Option<Value> {
        let answer = self
            .answers
            .get(&slot.key)
            .filter(|answer| answer.version == slot.version)
            .and_then(|answer| {
                let patch: json_patch::Patch = serde_json::from_str(&answer.patch).ok()?;
                let mut predicted = live.clone();
                json_patch::patch(&mut predicted, &patch).ok()?;
                Some(predicted)
            });
        let counter = if answer.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        answer
    }

    /// Keeps `answer`, given for `live`, in `slot`.
    pub(crate) fn insert(&self, slot: Slot, answer: &Value, live: &Value) {
        let (mut answer, mut live) = (answer.clone(), live.clone());
        bookkeeping::strip(&mut answer);
        bookkeeping::strip(&mut live);
        if let Ok(patch) = serde_json::to_string(&json_patch::diff(&live, &answer)) {
            self.keep(slot, patch);
        }
    }

    fn keep(&self, slot: Slot, patch: String) {
        let answer = Answer {
            version: slot.version,
            patch: patch.into_boxed_str(),
        };
        self.answers.insert(slot.key, Arc::new(answer));
    }
}

/// The digest of what an apply's outcome depends on in `live`: all but its status, its
/// resourceVersion and what [`bookkeeping::strip`] drops (the cluster cache keeps objects without
/// those, the apply's answer has them).
fn version_of(live: &Value) -> Option<[u8; 32]> {
    let mut digest = Sha256::new();
    let mut feed = |key: &str, value: &Value| -> Option<()> {
        digest.update(key.as_bytes());
        digest.update([0]);
        serde_json::to_writer(&mut digest, value).ok()?;
        digest.update([0]);
        Some(())
    };
    for (key, value) in live.as_object()? {
        match key.as_str() {
            "status" => {}
            "metadata" => {
                for (field, value) in value.as_object()? {
                    match field.as_str() {
                        "resourceVersion" | "managedFields" => {}
                        "annotations" => {
                            let kept: serde_json::Map<String, Value> = value
                                .as_object()?
                                .iter()
                                .filter(|(name, _)| *name != bookkeeping::LAST_APPLIED_ANNOTATION)
                                .map(|(name, value)| (name.clone(), value.clone()))
                                .collect();
                            if !kept.is_empty() {
                                feed("metadata.annotations", &Value::Object(kept))?;
                            }
                        }
                        _ => feed(&format!("metadata.{field}"), value)?,
                    }
                }
            }
            _ => feed(key, value)?,
        }
    }
    Some(digest.finalize().into())
}

fn manifest_key(body: &Value, field_manager: &str) -> [u8; 32] {
    let mut digest = Sha256::new();
    digest.update(field_manager.as_bytes());
    digest.update([0]);
    digest.update(serde_json::to_vec(body).unwrap_or_default());
    digest.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_types::bookkeeping::LAST_APPLIED_ANNOTATION;
    use serde_json::json;

    fn live(rv: &str) -> Value {
        json!({"metadata": {"name": "web", "uid": "u-1", "resourceVersion": rv}})
    }

    #[test]
    fn any_change_of_manifest_live_object_or_manager_is_another_key() {
        let body = json!({"kind": "ConfigMap", "data": {"a": "1"}});
        let slot = Predictions::slot(&body, &live("7"), "ferry").unwrap();
        let again = Predictions::slot(&body, &live("7"), "ferry").unwrap();
        assert_eq!((again.key, again.version), (slot.key, slot.version));
        let mut recreated = live("7");
        recreated["metadata"]["uid"] = json!("u-2");
        let mut labelled = live("8");
        labelled["metadata"]["labels"] = json!({"team": "a"});
        let mut respecified = live("8");
        respecified["spec"] = json!({"replicas": 3});
        for other in [
            Predictions::slot(
                &json!({"kind": "ConfigMap", "data": {"a": "2"}}),
                &live("7"),
                "ferry",
            ),
            Predictions::slot(&body, &recreated, "ferry"),
            Predictions::slot(&body, &labelled, "ferry"),
            Predictions::slot(&body, &respecified, "ferry"),
            Predictions::slot(&body, &live("7"), "argocd-controller"),
        ] {
            assert_ne!(other.unwrap().key, slot.key);
        }
        // Another version by its status and bookkeeping only is the same for an apply.
        let mut restated = live("9");
        restated["status"] = json!({"readyReplicas": 1});
        restated["metadata"]["managedFields"] = json!([{"manager": "kube-controller-manager"}]);
        restated["metadata"]["annotations"] = json!({LAST_APPLIED_ANNOTATION: "{}"});
        assert_eq!(
            Predictions::slot(&body, &restated, "ferry").unwrap().key,
            slot.key
        );
        // A live object without a uid cannot be told from one made again under its name.
        let anonymous = json!({"metadata": {"name": "web", "resourceVersion": "7"}});
        assert!(Predictions::slot(&body, &anonymous, "ferry").is_none());
    }

    #[test]
    fn answers_come_back_for_their_live_version_only_and_are_counted() {
        let predictions = Predictions::new(1 << 20);
        let body = json!({"spec": {"replicas": 2}});
        let slot = |rv| Predictions::slot(&body, &live(rv), "ferry").unwrap();
        assert_eq!(predictions.get(&slot("1"), &live("1")), None);
        let mut answer = live("1");
        answer["spec"] = json!({"replicas": 2});
        answer["metadata"]["managedFields"] = json!([{"manager": "ferry"}]);
        answer["metadata"]["annotations"] = json!({LAST_APPLIED_ANNOTATION: "{}", "team": "a"});
        predictions.insert(slot("1"), &answer, &live("1"));
        // What comparisons drop is not kept.
        let mut expected = live("1");
        expected["spec"] = json!({"replicas": 2});
        expected["metadata"]["annotations"] = json!({"team": "a"});
        assert_eq!(predictions.get(&slot("1"), &live("1")), Some(expected));
        assert_eq!(predictions.stats(), PredictionStats { hits: 1, misses: 1 });
        // Its status changed since: the answer holds, over the new status.
        let mut restated = live("2");
        restated["status"] = json!({"readyReplicas": 1});
        let slot2 = Predictions::slot(&body, &restated, "ferry").unwrap();
        let mut expected = restated.clone();
        expected["spec"] = json!({"replicas": 2});
        expected["metadata"]["annotations"] = json!({"team": "a"});
        assert_eq!(predictions.get(&slot2, &restated), Some(expected));
        // Its spec changed since: the answer no longer holds.
        let mut respecified = live("3");
        respecified["spec"] = json!({"replicas": 5});
        let slot3 = Predictions::slot(&body, &respecified, "ferry").unwrap();
        assert_eq!(predictions.get(&slot3, &respecified), None);
        assert_eq!(predictions.stats(), PredictionStats { hits: 2, misses: 2 });
    }

    #[test]
    fn an_object_just_applied_is_its_own_prediction_and_costs_no_copy() {
        let predictions = Predictions::new(1 << 20);
        let sent = json!({"kind": "ConfigMap", "metadata": {"name": "web"}, "data": {"a": "1"}});
        let mut answer = sent.clone();
        answer["metadata"] = live("3")["metadata"].clone();
        answer["metadata"]["managedFields"] = json!([{"manager": "ferry"}]);
        predictions.remember_applied(&sent, &answer, "ferry");
        let slot = Predictions::slot(&sent, &answer, "ferry").unwrap();
        // As the cache holds it, without managedFields.
        let mut cached = answer.clone();
        bookkeeping::strip(&mut cached);
        assert_eq!(predictions.get(&slot, &cached), Some(cached));
        assert_eq!(&*predictions.answers.get(&slot.key).unwrap().patch, "[]");
    }

    /// The watch event of an object a sync creates can come before the apply's answer: a
    /// comparison then waits for that answer rather than asking for a dry run. Applies of
    /// another manifest or by another manager are not waited for.
    #[tokio::test]
    async fn a_comparison_waits_for_the_answer_of_an_apply_in_flight() {
        let predictions = Predictions::new(1 << 20);
        let sent = json!({"kind": "ConfigMap", "metadata": {"name": "web"}, "data": {"a": "1"}});
        let mut answer = sent.clone();
        answer["metadata"] = live("3")["metadata"].clone();
        let slot = Predictions::slot(&sent, &answer, "ferry").unwrap();
        let long = Duration::from_secs(30);

        let applying = predictions.applying(&sent, "ferry");
        let other = json!({"kind": "ConfigMap", "metadata": {"name": "web"}, "data": {"a": "2"}});
        let started = std::time::Instant::now();
        predictions.wait_for_apply(&other, "ferry", long).await;
        predictions
            .wait_for_apply(&sent, "argocd-controller", long)
            .await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "waited for another apply"
        );

        let answered = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            predictions.remember_applied(&sent, &answer, "ferry");
            drop(applying);
        };
        let compared = async {
            predictions.wait_for_apply(&sent, "ferry", long).await;
            predictions.get(&slot, &answer)
        };
        let ((), predicted) = tokio::join!(answered, compared);
        assert_eq!(predicted, Some(answer));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "waited past the answer"
        );
        // Done: nothing is in flight any more.
        assert!(predictions.in_flight.lock().unwrap().is_empty());
    }
}
