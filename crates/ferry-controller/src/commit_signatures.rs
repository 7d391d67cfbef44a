//! `signatureKeys`: an AppProject that lists GnuPG key IDs accepts only commits signed by one of
//! them. Before an app of such a project is rendered (for a comparison, a sync or a view), each
//! of its Git sources is pinned to the commit its revision names, and that commit's signature
//! is verified with the public keys of the `argocd-gpg-keys-cm` ConfigMap (key ID → ASCII-armored
//! key). Anything else (unsigned, a bad or expired signature, a key without a public key there,
//! a good signature by a key the project does not list) is an error naming the app, the source,
//! the commit and the reason: a ComparisonError, so nothing is synced at that commit.
//!
//! Helm chart sources (Helm repositories, OCI registries) carry no commit and are not verified,
//! as in Argo CD.

use std::collections::HashMap;
use std::sync::Mutex;

use ferry_git::RepoCache;
use ferry_git::signature::{SignatureError, Signer};
use ferry_types::source::ApplicationSource;
use ferry_types::{AppProject, Application};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use sha2::{Digest, Sha256};

use crate::triggers::Triggers;

/// Argo CD's ConfigMap of trusted GnuPG public keys.
pub const GPG_KEYS_CONFIG_MAP: &str = "argocd-gpg-keys-cm";

/// Verdicts kept at most; the whole map is dropped beyond (they are cheap to recompute).
const MAX_VERDICTS: usize = 4096;

pub struct CommitSignatures {
    git: RepoCache,
    keys: Store<ConfigMap>,
    /// Verdicts by commit, keys and accepted key IDs: a commit is verified once, not at every
    /// reconcile. Only definite answers are kept, never a failure to fetch or to run gpg.
    verdicts: Mutex<HashMap<String, Verdict>>,
}

/// What a verification says about a commit.
#[derive(Clone)]
enum Verdict {
    Accepted,
    /// Why the commit is refused.
    Refused(String),
    /// Why no verdict could be reached (a fetch or gpg failure); asked again next time.
    Unknown(String),
}

impl CommitSignatures {
    /// Follows `argocd-gpg-keys-cm` in `namespace` (a change reconciles every app again).
    pub fn start(
        client: kube::Client,
        namespace: &str,
        git: RepoCache,
        triggers: Triggers,
    ) -> Self {
        let config_maps: Api<ConfigMap> = Api::namespaced(client, namespace);
        let (keys, writer) = reflector::store();
        let events = reflector::reflector(
            writer,
            watcher::watcher(
                config_maps,
                watcher::Config::default().fields(&format!("metadata.name={GPG_KEYS_CONFIG_MAP}")),
            ),
        )
        .default_backoff()
        .for_each(move |event| {
            if let Ok(Event::Apply(_) | Event::Delete(_) | Event::InitDone) = event {
                triggers.all();
            }
            futures::future::ready(())
        });
        tokio::spawn(events);
        Self {
            git,
            keys,
            verdicts: Mutex::default(),
        }
    }

    /// Resolves once the keys have been listed.
    pub async fn ready(&self) -> Result<(), reflector::store::WriterDropped> {
        self.keys.wait_until_ready().await
    }

    /// The Git access these verifications use (the controller's, with its credentials).
    pub fn git(&self) -> &RepoCache {
        &self.git
    }

    /// The sources to render. Unchanged when `project` lists no signature keys; otherwise every
    /// Git source is pinned to the commit its revision names, once that commit's signature is
    /// accepted (pinning, so what is rendered is what was verified, even if the branch moves
    /// meanwhile). Errors are ComparisonError messages.
    pub async fn verified_sources(
        &self,
        app: &Application,
        project: &AppProject,
        sources: &[ApplicationSource],
    ) -> Result<Vec<ApplicationSource>, String> {
        let accepted: Vec<&str> = project
            .spec
            .signature_keys
            .iter()
            .map(|k| k.key_id.as_str())
            .collect();
        if accepted.is_empty() {
            return Ok(sources.to_vec());
        }
        let app_name = app.metadata.name.as_deref().unwrap_or_default();
        let git = self.git.for_project(app.project());
        let public_keys = self.public_keys();
        let mut pinned = sources.to_vec();
        for source in pinned.iter_mut().filter(|s| !s.is_chart()) {
            let revision = match source.target_revision.trim() {
                "" => "HEAD",
                revision => revision,
            };
            let fail = |why: String| {
                format!(
                    "application {app_name}: source {}: {why}",
                    source.describe()
                )
            };
            let sha = git
                .resolve(&source.repo_url, revision)
                .await
                .map_err(|err| fail(err.to_string()))?
                .sha;
            let key = verdict_key(&source.repo_url, &sha, &public_keys, &accepted);
            let known = self.verdicts().get(&key).cloned();
            let verdict = match known {
                Some(verdict) => verdict,
                None => {
                    let checked = git
                        .verify_commit_signature(&source.repo_url, &sha, &public_keys)
                        .await;
                    let verdict = judge(checked, &accepted, app.project());
                    if !matches!(verdict, Verdict::Unknown(_)) {
                        let mut verdicts = self.verdicts();
                        if verdicts.len() >= MAX_VERDICTS {
                            verdicts.clear();
                        }
                        verdicts.insert(key, verdict.clone());
                    }
                    verdict
                }
            };
            match verdict {
                Verdict::Accepted => source.target_revision = sha,
                Verdict::Refused(why) | Verdict::Unknown(why) => {
                    return Err(fail(format!("commit {sha}: {why}")));
                }
            }
        }
        Ok(pinned)
    }

    /// The configured public keys, in a stable order.
    fn public_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .keys
            .state()
            .iter()
            .flat_map(|cm| cm.data.clone().unwrap_or_default().into_values())
            .collect();
        keys.sort();
        keys
    }

    fn verdicts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Verdict>> {
        self.verdicts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The verdict on a verification's outcome: accepted only for a good signature by a key the
/// project lists. Messages use Argo CD's words where it has some.
fn judge(checked: Result<Signer, SignatureError>, accepted: &[&str], project: &str) -> Verdict {
    let refused = |why: String| Verdict::Refused(why);
    match checked {
        Ok(signer) if signer.is_one_of(accepted) => Verdict::Accepted,
        Ok(signer) => refused(format!(
            "found a good signature made with key {} ({}), but this key is not allowed in \
             AppProject {project}",
            signer.key_id, signer.user_id
        )),
        Err(SignatureError::Unsigned { .. }) => refused(format!(
            "the commit is not signed, but AppProject {project} requires a signature \
             (signatureKeys)"
        )),
        Err(SignatureError::UnknownKey { key_id, .. }) => refused(format!(
            "signed with key {key_id}, which has no public key in {GPG_KEYS_CONFIG_MAP}"
        )),
        Err(SignatureError::Bad { key_id, .. }) => {
            refused(format!("bad signature made with key {key_id}"))
        }
        Err(SignatureError::Invalid { key_id, reason, .. }) => refused(format!(
            "found a signature made with key {key_id}, but it is not valid: {reason}"
        )),
        Err(SignatureError::Unverifiable { reason, .. }) => {
            Verdict::Unknown(format!("the signature cannot be verified: {reason}"))
        }
        Err(SignatureError::Git(err)) => {
            Verdict::Unknown(format!("verifying the signature: {err}"))
        }
    }
}

/// Everything a verdict depends on, hashed.
fn verdict_key(url: &str, sha: &str, public_keys: &[String], accepted: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in [url, sha]
        .into_iter()
        .chain(public_keys.iter().map(String::as_str))
        .chain(std::iter::once("\0accepted"))
        .chain(accepted.iter().copied())
    {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    hex::encode(hash.finalize())
}
