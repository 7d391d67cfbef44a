//! Argo CD's repository, repo-creds and cluster Secrets in the control namespace: the git
//! generator's credentials and the cluster generator's clusters, kept current by a watch.
//! A change to a cluster Secret generates every ApplicationSet again.

use std::sync::{Arc, RwLock};

use ferry_git::{Credentials, RepoCache};
use ferry_render::with_repo_secret;
use ferry_types::secrets::{RepoSecret, SECRET_TYPE_CLUSTER, SECRET_TYPE_LABEL};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tracing::warn;

/// The cluster Secrets last seen.
#[derive(Clone, Default)]
pub struct ClusterSecrets(Arc<RwLock<Vec<Secret>>>);

impl ClusterSecrets {
    pub fn snapshot(&self) -> Vec<Secret> {
        self.0.read().map(|s| s.clone()).unwrap_or_default()
    }
}

fn secret_type(secret: &Secret) -> Option<&str> {
    secret
        .metadata
        .labels
        .as_ref()?
        .get(SECRET_TYPE_LABEL)
        .map(String::as_str)
}

/// Watches the Secrets, updating `git`'s credentials and `clusters`; the stream yields once per
/// change of the cluster Secrets (and once when they have been listed).
pub fn watch(
    client: kube::Client,
    namespace: &str,
    git: RepoCache,
    clusters: ClusterSecrets,
) -> impl Stream<Item = ()> + Send + 'static {
    let api: Api<Secret> = Api::namespaced(client, namespace);
    let config = watcher::Config::default().labels(&format!(
        "{SECRET_TYPE_LABEL} in (repository,repo-creds,cluster)"
    ));
    let mut all: std::collections::BTreeMap<String, Secret> = Default::default();
    let mut listing: std::collections::BTreeMap<String, Secret> = Default::default();
    watcher::watcher(api, config)
        .default_backoff()
        .filter_map(move |event| {
            let changed = match event {
                Ok(Event::Apply(secret)) => {
                    all.insert(secret.metadata.name.clone().unwrap_or_default(), secret);
                    true
                }
                Ok(Event::Delete(secret)) => {
                    all.remove(secret.metadata.name.as_deref().unwrap_or_default());
                    true
                }
                Ok(Event::Init) => {
                    listing.clear();
                    false
                }
                Ok(Event::InitApply(secret)) => {
                    listing.insert(secret.metadata.name.clone().unwrap_or_default(), secret);
                    false
                }
                Ok(Event::InitDone) => {
                    all = std::mem::take(&mut listing);
                    true
                }
                Err(err) => {
                    warn!("watching repository and cluster secrets: {err}");
                    false
                }
            };
            if changed {
                git.set_credentials(credentials(all.values()));
                let cluster_secrets = all
                    .values()
                    .filter(|s| secret_type(s) == Some(SECRET_TYPE_CLUSTER))
                    .cloned()
                    .collect();
                if let Ok(mut current) = clusters.0.write() {
                    *current = cluster_secrets;
                }
            }
            futures::future::ready(changed.then_some(()))
        })
}

/// The credentials and cluster Secrets as they are now, listed once: what a preview (the API
/// server's generate and dry runs) reads instead of a watch.
pub async fn current(
    client: kube::Client,
    namespace: &str,
) -> Result<(Credentials, Vec<Secret>), kube::Error> {
    let api: Api<Secret> = Api::namespaced(client, namespace);
    let params = kube::api::ListParams::default().labels(&format!(
        "{SECRET_TYPE_LABEL} in (repository,repo-creds,cluster)"
    ));
    let all = api.list(&params).await?.items;
    let clusters = all
        .iter()
        .filter(|s| secret_type(s) == Some(SECRET_TYPE_CLUSTER))
        .cloned()
        .collect();
    Ok((credentials(all.iter()), clusters))
}

/// Credentials from every repository and repo-creds Secret (each global or for its project).
fn credentials<'a>(secrets: impl Iterator<Item = &'a Secret>) -> Credentials {
    let mut credentials = Credentials::new();
    for secret in secrets {
        if secret_type(secret) == Some(SECRET_TYPE_CLUSTER) {
            continue;
        }
        match RepoSecret::from_secret(secret) {
            Ok(repo) => credentials = with_repo_secret(credentials, &repo),
            Err(err) => {
                let name = secret.metadata.name.as_deref().unwrap_or_default();
                warn!(secret = %name, "ignoring repository secret: {err}");
            }
        }
    }
    credentials
}
