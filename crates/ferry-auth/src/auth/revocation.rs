//! Tokens revoked before they expire (by a logout), shared by every server replica through a
//! ConfigMap of the control namespace, so a revocation holds on all of them and survives
//! restarts. Argo CD keeps this list in Redis; ferry has no Redis.
//!
//! An entry is `<key>: <expiry>`: the key is a hash of the token (any token — ferry's own or
//! an SSO provider's ID token — is revoked the same way, and the list names no token), the
//! expiry the token's own `exp` in Unix seconds (`0` for a token that never expires). Entries
//! are dropped once their token has expired anyway. Each replica keeps the union of what it
//! revoked itself and what the ConfigMap says, so a watch event from before its own write cannot
//! bring a revoked token back.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use sha2::{Digest, Sha256};

use super::error::AuthError;

/// The ConfigMap holding the revoked tokens.
pub const REVOKED_TOKENS_CONFIG_MAP: &str = "ferry-revoked-tokens";
/// How often a write that raced another replica's is tried again.
const WRITE_ATTEMPTS: usize = 8;

/// The revoked tokens this replica knows of; cheap to clone.
#[derive(Clone, Default)]
pub struct Revocations {
    /// Key → expiry (Unix seconds, 0 for never).
    entries: Arc<RwLock<BTreeMap<String, i64>>>,
}

/// The key a token is revoked under: 128 bits of its SHA-256, in hex.
pub fn revocation_key(token: &str) -> String {
    hex::encode(&Sha256::digest(token.as_bytes())[..16])
}

impl Revocations {
    /// Whether `token` was revoked (and has not expired since).
    pub fn is_revoked(&self, token: &str) -> bool {
        let key = revocation_key(token);
        self.entries
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains_key(&key)
    }

    /// Adds what the ConfigMap lists; nothing is taken away but what expired by `now`.
    pub fn merge(&self, data: &BTreeMap<String, String>, now: i64) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.extend(parse(data));
        entries.retain(|_, expiry| live(*expiry, now));
    }

    /// Revokes `token`, valid until `expires_at` (`None`: never expires), here at once and in
    /// the ConfigMap for the other replicas. Fails if the ConfigMap cannot be written: a logout
    /// that only looks done would be worse than one that says it failed.
    pub async fn revoke(
        &self,
        client: kube::Client,
        namespace: &str,
        token: &str,
        expires_at: Option<i64>,
        now: i64,
    ) -> Result<(), AuthError> {
        let key = revocation_key(token);
        let expiry = expires_at.unwrap_or(0);
        self.entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key.clone(), expiry);
        let api: Api<ConfigMap> = Api::namespaced(client, namespace);
        let kube_error = |source| AuthError::Kube {
            action: format!("recording the revoked token in ConfigMap {REVOKED_TOKENS_CONFIG_MAP}"),
            source,
        };
        for _ in 0..WRITE_ATTEMPTS {
            let existing = api
                .get_opt(REVOKED_TOKENS_CONFIG_MAP)
                .await
                .map_err(kube_error)?;
            let written = match existing {
                Some(mut config_map) => {
                    let data = config_map.data.get_or_insert_default();
                    data.retain(|_, value| value.parse().is_ok_and(|expiry| live(expiry, now)));
                    data.insert(key.clone(), expiry.to_string());
                    api.replace(
                        REVOKED_TOKENS_CONFIG_MAP,
                        &PostParams::default(),
                        &config_map,
                    )
                    .await
                }
                None => {
                    let config_map = ConfigMap {
                        metadata: ObjectMeta {
                            name: Some(REVOKED_TOKENS_CONFIG_MAP.to_string()),
                            labels: Some(BTreeMap::from([(
                                "app.kubernetes.io/part-of".to_string(),
                                "argocd".to_string(),
                            )])),
                            ..ObjectMeta::default()
                        },
                        data: Some(BTreeMap::from([(key.clone(), expiry.to_string())])),
                        ..ConfigMap::default()
                    };
                    api.create(&PostParams::default(), &config_map).await
                }
            };
            match written {
                Ok(_) => return Ok(()),
                // Another replica wrote meanwhile: read again and retry.
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(err) => return Err(kube_error(err)),
            }
        }
        Err(AuthError::Contended {
            name: REVOKED_TOKENS_CONFIG_MAP,
        })
    }

    /// Follows the ConfigMap until the task is dropped, so revocations made by other replicas
    /// (and before this one started) hold here. Returns once the first state is known.
    pub async fn follow(
        &self,
        client: kube::Client,
        namespace: &str,
    ) -> Result<tokio::task::JoinHandle<()>, AuthError> {
        let api: Api<ConfigMap> = Api::namespaced(client, namespace);
        let first = api
            .get_opt(REVOKED_TOKENS_CONFIG_MAP)
            .await
            .map_err(AuthError::kube(format!(
                "reading ConfigMap {REVOKED_TOKENS_CONFIG_MAP}"
            )))?;
        if let Some(config_map) = first {
            self.merge(&config_map.data.unwrap_or_default(), unix_now());
        }
        let config = watcher::Config::default()
            .fields(&format!("metadata.name={REVOKED_TOKENS_CONFIG_MAP}"));
        let revocations = self.clone();
        Ok(tokio::spawn(async move {
            let mut objects = watcher(api, config)
                .default_backoff()
                .applied_objects()
                .boxed();
            while let Some(event) = objects.next().await {
                match event {
                    Ok(config_map) => {
                        revocations.merge(&config_map.data.unwrap_or_default(), unix_now())
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "watching revoked tokens failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }))
    }
}

/// The entries of the ConfigMap's data; malformed ones (not written by ferry) are skipped.
fn parse(data: &BTreeMap<String, String>) -> impl Iterator<Item = (String, i64)> + '_ {
    data.iter()
        .filter_map(|(key, value)| Some((key.clone(), value.trim().parse().ok()?)))
}

fn live(expiry: i64, now: i64) -> bool {
    expiry == 0 || expiry > now
}

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tokens_are_known_by_a_hash_that_does_not_reveal_them() {
        let key = revocation_key("header.payload.signature");
        assert_eq!(key.len(), 32);
        assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(key, revocation_key("header.payload.signaturf"));
    }

    #[test]
    fn entries_hold_until_their_token_expires() {
        let revocations = Revocations::default();
        let (a, b, c) = ("token-a", "token-b", "token-c");
        revocations.merge(
            &data(&[
                (&revocation_key(a), "2000"),
                (&revocation_key(b), "0"),
                (&revocation_key(c), "999"),
                ("not-a-number", "soon"),
            ]),
            1000,
        );
        assert!(revocations.is_revoked(a));
        assert!(
            revocations.is_revoked(b),
            "a token without expiry stays revoked"
        );
        assert!(!revocations.is_revoked(c), "already expired");
        revocations.merge(&BTreeMap::new(), 2000);
        assert!(!revocations.is_revoked(a));
        assert!(revocations.is_revoked(b));
    }

    #[test]
    fn an_older_view_of_the_config_map_does_not_unrevoke() {
        let revocations = Revocations::default();
        revocations.merge(&data(&[(&revocation_key("mine"), "5000")]), 1000);
        // A watch event from before the write arrives late.
        revocations.merge(&data(&[(&revocation_key("other"), "5000")]), 1001);
        assert!(revocations.is_revoked("mine") && revocations.is_revoked("other"));
    }
}
