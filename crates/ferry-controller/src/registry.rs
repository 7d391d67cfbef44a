//! Repositories, repository credentials and clusters, from Argo CD's Secrets in the control
//! namespace (`argocd.argoproj.io/secret-type: repository | repo-creds | cluster`) and ssh host
//! keys from the `argocd-ssh-known-hosts-cm` ConfigMap, TLS certificates trusted per host from
//! `argocd-tls-certs-cm`. Changes take effect without a restart.

use std::sync::Arc;

use ferry_git::{Credentials, RepoCache, TlsCerts};
use ferry_render::with_repo_secret;
use ferry_types::secrets::{RepoSecret, SECRET_TYPE_LABEL};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use tokio::sync::oneshot;
use tracing::warn;

use crate::clusters::Clusters;
use crate::triggers::Triggers;

/// Argo CD's ConfigMap of trusted ssh host keys.
pub const KNOWN_HOSTS_CONFIG_MAP: &str = "argocd-ssh-known-hosts-cm";
const KNOWN_HOSTS_KEY: &str = "ssh_known_hosts";
/// Argo CD's ConfigMap of TLS certificates trusted per host.
pub const TLS_CERTS_CONFIG_MAP: &str = "argocd-tls-certs-cm";

/// Keeps the repo cache's credentials and the cluster registry in step with the Secrets, in the
/// background. The receiver resolves once the Secrets have been listed.
pub fn spawn(
    client: kube::Client,
    namespace: String,
    git: RepoCache,
    clusters: Arc<Clusters>,
    triggers: Triggers,
) -> oneshot::Receiver<()> {
    let (ready, listed) = oneshot::channel();
    tokio::spawn(watch(client, namespace, git, clusters, triggers, ready));
    listed
}

async fn watch(
    client: kube::Client,
    namespace: String,
    git: RepoCache,
    clusters: Arc<Clusters>,
    triggers: Triggers,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let config_maps: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let (secret_store, secret_writer) = reflector::store();
    let (known_hosts_store, known_hosts_writer) = reflector::store();
    let (tls_certs_store, tls_certs_writer) = reflector::store();
    let secret_events = reflector::reflector(
        secret_writer,
        watcher::watcher(
            secrets,
            watcher::Config::default().labels(&format!(
                "{SECRET_TYPE_LABEL} in (repository,repo-creds,cluster)"
            )),
        ),
    )
    .default_backoff()
    .map_ok(Change::Secret);
    let known_hosts_events = reflector::reflector(
        known_hosts_writer,
        watcher::watcher(
            config_maps.clone(),
            watcher::Config::default().fields(&format!("metadata.name={KNOWN_HOSTS_CONFIG_MAP}")),
        ),
    )
    .default_backoff()
    .map_ok(Change::ConfigMap);
    let tls_certs_events = reflector::reflector(
        tls_certs_writer,
        watcher::watcher(
            config_maps,
            watcher::Config::default().fields(&format!("metadata.name={TLS_CERTS_CONFIG_MAP}")),
        ),
    )
    .default_backoff()
    .map_ok(Change::ConfigMap);
    let config_map_events = futures::stream::select(known_hosts_events, tls_certs_events);
    let mut events = futures::stream::select(secret_events, config_map_events).boxed();
    // The watcher retries with backoff; an outage is worth one warning and one recovery.
    let mut failing = false;
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                if !std::mem::replace(&mut failing, true) {
                    warn!("watching repository and cluster secrets: {err}; retrying");
                }
                continue;
            }
        };
        if std::mem::replace(&mut failing, false) {
            tracing::info!("watching repository and cluster secrets again");
        }
        match &event {
            Change::Secret(Event::Apply(secret) | Event::InitApply(secret)) => {
                if is_cluster(secret) {
                    clusters.upsert(secret).await;
                    triggers.all();
                    continue;
                }
            }
            Change::Secret(Event::Delete(secret)) => {
                if is_cluster(secret) {
                    clusters.remove(secret.metadata.name.as_deref().unwrap_or_default());
                    triggers.all();
                    continue;
                }
            }
            Change::Secret(Event::Init) | Change::ConfigMap(Event::Init) => continue,
            Change::Secret(Event::InitDone) | Change::ConfigMap(_) => {}
        }
        git.set_credentials(credentials(
            &secret_store,
            &known_hosts_store,
            &tls_certs_store,
        ));
        if matches!(event, Change::Secret(Event::InitDone))
            && let Some(ready) = ready.take()
        {
            let _ = ready.send(());
        }
        triggers.all();
    }
}

enum Change {
    Secret(Event<Secret>),
    /// `argocd-ssh-known-hosts-cm` or `argocd-tls-certs-cm`.
    ConfigMap(Event<ConfigMap>),
}

fn is_cluster(secret: &Secret) -> bool {
    secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SECRET_TYPE_LABEL))
        .is_some_and(|t| t == "cluster")
}

/// Credentials from every repository and repo-creds Secret (each global or for its `project`),
/// plus the known hosts and trusted TLS certificates.
fn credentials(
    secrets: &Store<Secret>,
    known_hosts: &Store<ConfigMap>,
    tls_certs: &Store<ConfigMap>,
) -> Credentials {
    let mut credentials = Credentials::new();
    for secret in secrets.state() {
        if is_cluster(&secret) {
            continue;
        }
        let repo = match RepoSecret::from_secret(&secret) {
            Ok(repo) => repo,
            Err(err) => {
                let name = secret.metadata.name.as_deref().unwrap_or_default();
                warn!(secret = %name, "ignoring repository secret: {err}");
                continue;
            }
        };
        // A Secret with `project` serves that project's apps only (see Credentials::lookup).
        credentials = with_repo_secret(credentials, &repo);
    }
    let hosts: String = known_hosts
        .state()
        .iter()
        .filter_map(|cm| cm.data.as_ref()?.get(KNOWN_HOSTS_KEY).cloned())
        .collect();
    if !hosts.is_empty() {
        credentials = match credentials.clone().with_known_hosts(&hosts) {
            Ok(with_hosts) => with_hosts,
            Err(err) => {
                warn!("ignoring {KNOWN_HOSTS_CONFIG_MAP}: {err}");
                credentials
            }
        };
    }
    let data = tls_certs
        .state()
        .iter()
        .filter_map(|cm| cm.data.clone())
        .flatten()
        .collect();
    let (certs, errors) = TlsCerts::parse(&data);
    for err in errors {
        warn!("{TLS_CERTS_CONFIG_MAP}: ignoring the entry: {err}");
    }
    credentials.with_tls_certs(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_of<K>(objects: &[&str]) -> Store<K>
    where
        K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + 'static,
    {
        let (store, mut writer) = reflector::store();
        for yaml in objects {
            writer.apply_watcher_event(&Event::Apply(serde_yaml::from_str(yaml).unwrap()));
        }
        store
    }

    /// Issue 10, item 5: the controller scopes repository Secrets and credential templates to
    /// their `project`; before, a Secret with `project: team-a` served every app.
    #[test]
    fn secrets_with_a_project_serve_that_project_only() {
        let secrets = store_of::<Secret>(&[
            r#"
metadata: {name: team-a-repo, labels: {argocd.argoproj.io/secret-type: repository}}
stringData: {url: "https://git.example.com/team-a/app.git", project: team-a, username: a, password: pa}
"#,
            r#"
metadata: {name: team-b-creds, labels: {argocd.argoproj.io/secret-type: repo-creds}}
stringData: {url: "https://git.example.com/team-b", project: team-b, username: b, password: pb}
"#,
            r#"
metadata: {name: shared-creds, labels: {argocd.argoproj.io/secret-type: repo-creds}}
stringData: {url: "https://git.example.com/shared", username: s, password: ps}
"#,
        ]);
        let credentials = credentials(
            &secrets,
            &store_of::<ConfigMap>(&[]),
            &store_of::<ConfigMap>(&[]),
        );
        let user = |url: &str, project: &str| {
            credentials
                .lookup(url, Some(project))
                .and_then(|c| c.username)
        };
        let team_a = "https://git.example.com/team-a/app.git";
        let team_b = "https://git.example.com/team-b/app.git";
        let shared = "https://git.example.com/shared/app.git";
        assert_eq!(user(team_a, "team-a").as_deref(), Some("a"));
        assert_eq!(user(team_a, "team-b"), None);
        assert_eq!(user(team_b, "team-b").as_deref(), Some("b"));
        assert_eq!(user(team_b, "team-a"), None);
        for project in ["team-a", "team-b", "default"] {
            assert_eq!(user(shared, project).as_deref(), Some("s"));
        }
    }
}
