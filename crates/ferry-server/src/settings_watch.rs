//! Keeps the settings snapshot current: kube-runtime reflectors follow `argocd-cm`,
//! `argocd-secret`, `argocd-rbac-cm`, the AppProjects and the Secrets labelled
//! `app.kubernetes.io/part-of=argocd` (which `oidc.config` may refer to) of the control namespace,
//! and every change to any of them builds a new [`Snapshot`] that replaces the old one at once.

use std::sync::Arc;

use ferry_types::AppProject;
use futures::{Stream, StreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use tokio::sync::watch;

use crate::api::Snapshot;
use crate::auth::{self, secret_data};
use crate::oidc::{LabelledSecrets, PART_OF_LABEL};
use crate::rbac;

/// The reflectors' caches, read whenever something changes.
struct Stores {
    config_map: Store<ConfigMap>,
    secret: Store<Secret>,
    rbac_config_map: Store<ConfigMap>,
    projects: Store<AppProject>,
    labelled_secrets: Store<Secret>,
}

impl Stores {
    fn snapshot(&self) -> Snapshot {
        let config_data = |store: &Store<ConfigMap>| {
            store
                .state()
                .first()
                .and_then(|config_map| config_map.data.clone())
                .unwrap_or_default()
        };
        let secret = self
            .secret
            .state()
            .first()
            .map(|secret| secret_data(secret))
            .unwrap_or_default();
        let projects = self
            .projects
            .state()
            .iter()
            .map(|project| AppProject::clone(project))
            .collect();
        let labelled: LabelledSecrets = self
            .labelled_secrets
            .state()
            .iter()
            .filter_map(|secret| Some((secret.metadata.name.clone()?, secret_data(secret))))
            .collect();
        Snapshot::build(
            &config_data(&self.config_map),
            &secret,
            &config_data(&self.rbac_config_map),
            projects,
            &labelled,
        )
    }
}

/// A reflector over the objects of `api` that `config` selects, yielding `()` per change.
fn follow<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (Store<K>, impl Stream<Item = ()> + Send + 'static)
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let changes = reflector::reflector(writer, watcher(api, config).default_backoff()).filter_map(
        move |event| {
            let kind = kind.clone();
            async move {
                match event {
                    // Only complete states count: the middle of a relist is no consistent view.
                    Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_))
                    | Ok(watcher::Event::InitDone) => Some(()),
                    Ok(_) => None,
                    Err(err) => {
                        tracing::warn!(kind, error = %err, "watching settings failed; retrying");
                        None
                    }
                }
            }
        },
    );
    (reader, changes)
}

fn named(name: &str) -> watcher::Config {
    watcher::Config::default().fields(&format!("metadata.name={name}"))
}

/// Starts following the settings of `namespace`; returns once the first snapshot is built. The
/// snapshots keep coming while the returned task runs.
pub async fn watch_settings(
    client: kube::Client,
    namespace: &str,
) -> anyhow::Result<(watch::Receiver<Arc<Snapshot>>, tokio::task::JoinHandle<()>)> {
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let (labelled_secrets, labelled_changes) = follow(
        secrets.clone(),
        watcher::Config::default().labels(PART_OF_LABEL),
    );
    let projects: Api<AppProject> = Api::namespaced(client, namespace);
    let (config_map, cm_changes) = follow(config_maps.clone(), named(auth::CONFIG_MAP_NAME));
    let (secret, secret_changes) = follow(secrets, named(auth::SECRET_NAME));
    let (rbac_config_map, rbac_changes) = follow(config_maps, named(rbac::CONFIG_MAP_NAME));
    let (projects, project_changes) = follow(projects, watcher::Config::default());
    let stores = Stores {
        config_map,
        secret,
        rbac_config_map,
        projects,
        labelled_secrets,
    };
    let mut changes = stream::select_all([
        cm_changes.boxed(),
        secret_changes.boxed(),
        rbac_changes.boxed(),
        project_changes.boxed(),
        labelled_changes.boxed(),
    ]);

    // Drive the streams until every store has its first full list.
    {
        let ready = async {
            for store in [&stores.config_map, &stores.rbac_config_map] {
                store.wait_until_ready().await?;
            }
            for store in [&stores.secret, &stores.labelled_secrets] {
                store.wait_until_ready().await?;
            }
            stores.projects.wait_until_ready().await
        };
        tokio::pin!(ready);
        loop {
            tokio::select! {
                result = &mut ready => {
                    result?;
                    break;
                }
                _ = changes.next() => {}
            }
        }
    }

    let first = Arc::new(stores.snapshot());
    log_problems(&first);
    let (sender, receiver) = watch::channel(first);
    let task = tokio::spawn(async move {
        while changes.next().await.is_some() {
            let snapshot = Arc::new(stores.snapshot());
            log_problems(&snapshot);
            sender.send_replace(snapshot);
        }
    });
    Ok((receiver, task))
}

fn log_problems(snapshot: &Snapshot) {
    for problem in snapshot.problems() {
        tracing::error!(problem, "settings cannot be used");
    }
}
