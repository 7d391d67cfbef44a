//! The update cycle: every interval, read the Applications and ImageUpdaters of the watched
//! namespaces, plan each managed app (at most `max_concurrency` at once), write back what
//! changed, and say so with a Kubernetes Event on the Application. A registry that fails is an
//! Event naming it and the cause, its image is left as it is, and the app is tried again after
//! a doubling delay ([`crate::retry`]); only the first failure of a streak and the recovery are
//! logged.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_git::push::PushOutcome;
use ferry_registry::{Registries, SecretReader};
use ferry_types::Application;
use ferry_types::image_updater::ImageUpdater;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::Resource;
use kube::api::ListParams;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::Mutex;
use tracing::{debug, info, warn};

use crate::config::{AppConfig, GitCredentials, WriteBack};
use crate::metrics::{CrLabels, Metrics, RegistryLabels};
use crate::plan::{Change, Outcome, plan};
use crate::retry::Retries;
use crate::select::{Managed, managed};
use crate::status;
use crate::writeback::{self, CommitSettings};

/// How the updater runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Argo CD's control namespace (repository Secrets, the Lease, `.argocd-source-<app>` names).
    pub namespace: String,
    /// Namespaces whose Applications and ImageUpdaters are read; empty: all.
    pub watch_namespaces: Vec<String>,
    pub interval: Duration,
    pub max_concurrency: usize,
    pub dry_run: bool,
    pub commit: CommitSettings,
    pub kube_events: bool,
}

/// What one cycle did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CycleReport {
    pub apps: usize,
    pub images: usize,
    pub updated: Vec<(String, Change)>,
    pub errors: Vec<(String, String)>,
}

/// The updater: one per process.
pub struct Runner {
    client: kube::Client,
    registries: Arc<Registries>,
    settings: Settings,
    metrics: Arc<Metrics>,
    reporter: Reporter,
    retries: Mutex<Retries>,
    requests_seen: Mutex<BTreeMap<String, u64>>,
    /// The registries asked so far, for their request counts.
    registries_used: Mutex<BTreeMap<String, Arc<ferry_registry::Registry>>>,
    /// One git write-back per repository at a time, as upstream: apps sharing a repository
    /// would otherwise race for its branch (other writers are handled by push retries).
    repository_locks: Mutex<BTreeMap<String, Arc<Mutex<()>>>>,
}

impl Runner {
    pub fn new(
        client: kube::Client,
        registries: Arc<Registries>,
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            client,
            registries,
            settings,
            metrics,
            reporter: Reporter {
                controller: "ferry-image-updater".into(),
                instance: std::env::var("POD_NAME").ok(),
            },
            retries: Mutex::new(Retries::default()),
            requests_seen: Mutex::new(BTreeMap::new()),
            registries_used: Mutex::new(BTreeMap::new()),
            repository_locks: Mutex::new(BTreeMap::new()),
        }
    }

    /// Cycles every interval until `shutdown` resolves; apps that failed are retried sooner.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut next_cycle = Instant::now();
        loop {
            let now = Instant::now();
            if now >= next_cycle {
                self.cycle(None).await;
                next_cycle = Instant::now() + self.settings.interval;
            } else {
                let due = self.retries.lock().await.due(now);
                if !due.is_empty() {
                    self.cycle(Some(&due)).await;
                }
            }
            let wake = match self.retries.lock().await.next() {
                Some(retry) => retry.min(next_cycle),
                None => next_cycle,
            };
            let sleep = wake.saturating_duration_since(Instant::now());
            tokio::select! {
                () = tokio::time::sleep(sleep.max(Duration::from_millis(100))) => {}
                () = &mut shutdown => return,
            }
        }
    }

    async fn list<K>(&self) -> Result<Vec<K>, kube::Error>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let mut out = Vec::new();
        if self.settings.watch_namespaces.is_empty() {
            out.extend(
                Api::<K>::all(self.client.clone())
                    .list(&ListParams::default())
                    .await?,
            );
        } else {
            for ns in &self.settings.watch_namespaces {
                let api = Api::<K>::namespaced(self.client.clone(), ns);
                out.extend(api.list(&ListParams::default()).await?);
            }
        }
        Ok(out)
    }

    /// One cycle over every managed app (or only `only`, for retries).
    pub async fn cycle(&self, only: Option<&BTreeSet<(String, String)>>) -> CycleReport {
        let mut report = CycleReport::default();
        let apps: Vec<Application> = match self.list().await {
            Ok(apps) => apps,
            Err(err) => {
                warn!("listing Applications: {err}");
                return report;
            }
        };
        let updaters: Vec<ImageUpdater> = match self.list().await {
            Ok(updaters) => updaters,
            Err(kube::Error::Api(status)) if status.code == 404 => Vec::new(),
            Err(err) => {
                warn!("listing ImageUpdaters: {err}");
                Vec::new()
            }
        };
        let selected = managed(&apps, &updaters);
        if only.is_none() {
            self.count_watched(&selected);
        }
        let by_key: BTreeMap<(String, String), &Application> = apps
            .iter()
            .map(|a| {
                (
                    (
                        a.metadata.namespace.clone().unwrap_or_default(),
                        a.metadata.name.clone().unwrap_or_default(),
                    ),
                    a,
                )
            })
            .collect();
        let work: Vec<_> = selected
            .iter()
            .filter(|(key, _)| only.is_none_or(|o| o.contains(*key)))
            .filter_map(|(key, m)| by_key.get(key).map(|app| (key.clone(), *app, m)))
            .collect();
        report.apps = work.len();
        let results: Vec<_> = futures::stream::iter(work)
            .map(|(key, app, m)| async move { (key.clone(), self.update_app(app, m).await) })
            .buffer_unordered(self.settings.max_concurrency.max(1))
            .collect()
            .await;
        let mut retries = self.retries.lock().await;
        for ((ns, name), result) in results {
            let label = format!("{ns}/{name}");
            report.images += result.images;
            report
                .updated
                .extend(result.updated.into_iter().map(|c| (label.clone(), c)));
            if result.errors.is_empty() {
                if retries.succeeded(&(ns, name)) {
                    info!(app = %label, "image update recovered");
                }
            } else {
                let errors = result.errors.join("; ");
                if retries.failed((ns, name), Instant::now(), self.settings.interval) {
                    warn!(app = %label, "image update failed, retrying with backoff: {errors}");
                } else {
                    debug!(app = %label, "image update still failing: {errors}");
                }
                report
                    .errors
                    .extend(result.errors.into_iter().map(|e| (label.clone(), e)));
            }
        }
        drop(retries);
        self.count_registry_requests().await;
        if only.is_none() && !self.settings.dry_run {
            status::write(&self.client, &updaters, &selected, &report).await;
        }
        info!(
            apps = report.apps,
            images = report.images,
            updated = report.updated.len(),
            errors = report.errors.len(),
            "image update cycle done"
        );
        report
    }

    fn count_watched(&self, selected: &BTreeMap<(String, String), Managed>) {
        let mut apps: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
        for m in selected.values() {
            let labels = CrLabels::from(&m.origin);
            let entry = apps
                .entry((
                    labels.image_updater_cr_namespace,
                    labels.image_updater_cr_name,
                ))
                .or_default();
            entry.0 += 1;
            entry.1 += m.config.as_ref().map_or(0, |c| c.images.len() as i64);
        }
        for ((namespace, name), (app_count, image_count)) in apps {
            let labels = CrLabels {
                image_updater_cr_name: name,
                image_updater_cr_namespace: namespace,
            };
            self.metrics
                .applications_watched
                .get_or_create(&labels)
                .set(app_count);
            self.metrics
                .images_watched
                .get_or_create(&labels)
                .set(image_count);
        }
    }

    async fn count_registry_requests(&self) {
        let mut seen = self.requests_seen.lock().await;
        let used: Vec<_> = self
            .registries_used
            .lock()
            .await
            .values()
            .cloned()
            .collect();
        for registry in used {
            let label = registry.label().to_string();
            let now = registry.requests_sent();
            let before = seen.insert(label.clone(), now).unwrap_or(0);
            self.metrics
                .registry_requests
                .get_or_create(&RegistryLabels { registry: label })
                .inc_by(now.saturating_sub(before));
        }
    }

    async fn event(&self, app: &Application, type_: EventType, reason: &str, note: String) {
        if !self.settings.kube_events {
            return;
        }
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: "ImageUpdate".into(),
            secondary: None,
        };
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        if let Err(err) = recorder.publish(&event, &app.object_ref(&())).await {
            warn!(app = ?app.metadata.name, reason, "recording an event: {err}");
        }
    }

    async fn update_app(&self, app: &Application, managed: &Managed) -> AppResult {
        let mut result = AppResult::default();
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let labels = CrLabels::from(&managed.origin);
        let config = match &managed.config {
            Ok(config) => config,
            Err(err) => {
                self.metrics.images_errors.get_or_create(&labels).inc();
                self.event(
                    app,
                    EventType::Warning,
                    "InvalidConfiguration",
                    err.to_string(),
                )
                .await;
                result
                    .errors
                    .push(format!("invalid image updater configuration: {err}"));
                return result;
            }
        };
        result.images = config.images.len();
        let secrets = self.client.clone();
        let plans = plan(
            app,
            config,
            &self.registries,
            Some(&secrets as &dyn SecretReader),
        )
        .await;
        let mut changes = Vec::new();
        {
            let mut used = self.registries_used.lock().await;
            for registry in plans.iter().filter_map(|p| p.registry.clone()) {
                used.insert(registry.label().to_string(), registry);
            }
        }
        for image in plans {
            match image.outcome {
                Outcome::Update(change) => changes.push(change),
                Outcome::Failed(err) => {
                    let message = format!("image {} ({}): {err}", image.image, image.alias);
                    if let crate::lookup::LookupError::Registry(e) = &err {
                        self.metrics
                            .registry_requests_failed
                            .get_or_create(&RegistryLabels {
                                registry: e.registry().unwrap_or_default().to_string(),
                            })
                            .inc();
                    }
                    self.metrics.images_errors.get_or_create(&labels).inc();
                    self.event(app, EventType::Warning, "RegistryError", message.clone())
                        .await;
                    result.errors.push(message);
                }
                Outcome::NotLive | Outcome::NoMatch | Outcome::UpToDate { .. } => {}
            }
        }
        if changes.is_empty() {
            return result;
        }
        match self.write_back(app, config, changes).await {
            Ok(written) if written.is_empty() => {}
            Ok(written) => {
                self.metrics
                    .images_updated
                    .get_or_create(&labels)
                    .inc_by(written.len() as u64);
                let list: Vec<String> = written
                    .iter()
                    .map(|c| {
                        format!(
                            "{} from '{}' to '{}'",
                            c.image,
                            c.old.as_deref().unwrap_or_default(),
                            c.new_tag()
                        )
                    })
                    .collect();
                let note = format!(
                    "Successfully updated application '{name}': {}",
                    list.join(", ")
                );
                info!(app = name, "{note}");
                self.event(app, EventType::Normal, "ImagesUpdated", note)
                    .await;
                result.updated = written;
            }
            Err(err) => {
                let message = err.to_string();
                self.metrics.images_errors.get_or_create(&labels).inc();
                self.event(app, EventType::Warning, "WriteBackFailed", message.clone())
                    .await;
                result.errors.push(format!("write-back failed: {message}"));
            }
        }
        result
    }

    async fn write_back(
        &self,
        app: &Application,
        config: &AppConfig,
        changes: Vec<Change>,
    ) -> Result<Vec<Change>, writeback::WriteError> {
        let namespace = app.metadata.namespace.as_deref().unwrap_or_default();
        match &config.write_back {
            WriteBack::Argocd if self.settings.dry_run => {
                let mut copy = app.clone();
                let target =
                    crate::app_spec::target(&copy, None).map_err(writeback::WriteError::Invalid)?;
                let would = writeback::apply_to_spec(&mut copy, config, target, &changes)
                    .map_err(writeback::WriteError::Invalid)?;
                info!(app = ?app.metadata.name, changes = would.len(), "dry run: not writing");
                Ok(Vec::new())
            }
            WriteBack::Argocd => {
                let api: Api<Application> = Api::namespaced(self.client.clone(), namespace);
                writeback::to_application(&api, app, config, &changes).await
            }
            WriteBack::Git(git) => {
                let credentials = self.git_credentials(git, app).await.map_err(|message| {
                    writeback::WriteError::Git {
                        url: git.repository.clone().unwrap_or_default(),
                        message,
                    }
                })?;
                let mut settings = self.settings.commit.clone();
                settings.dry_run = self.settings.dry_run;
                let url =
                    writeback::repository_url(app, git).map_err(writeback::WriteError::Invalid)?;
                let lock = self
                    .repository_locks
                    .lock()
                    .await
                    .entry(url)
                    .or_default()
                    .clone();
                let _one_at_a_time = lock.lock().await;
                let written =
                    writeback::to_git(app, config, git, changes, credentials, &settings).await?;
                info!(
                    app = ?app.metadata.name,
                    file = %written.file.display(),
                    outcome = ?written.outcome,
                    "git write-back"
                );
                Ok(match written.outcome {
                    PushOutcome::Pushed { .. } => written.changes,
                    PushOutcome::Unchanged { .. } | PushOutcome::WouldPush { .. } => Vec::new(),
                })
            }
        }
    }

    /// The credentials a git write-back pushes with.
    async fn git_credentials(
        &self,
        git: &crate::config::GitWriteBack,
        app: &Application,
    ) -> Result<ferry_git::Credentials, String> {
        match &git.credentials {
            GitCredentials::RepoCreds => {
                let api: Api<Secret> =
                    Api::namespaced(self.client.clone(), &self.settings.namespace);
                let secrets = api
                    .list(&ListParams::default().labels("argocd.argoproj.io/secret-type"))
                    .await
                    .map_err(|e| format!("reading repository Secrets: {e}"))?;
                let mut credentials = ferry_git::Credentials::new();
                for secret in secrets {
                    if let Ok(repo) = ferry_types::secrets::RepoSecret::from_secret(&secret) {
                        credentials = ferry_render::with_repo_secret(credentials, &repo);
                    }
                }
                Ok(credentials)
            }
            GitCredentials::Secret { namespace, name } => {
                let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
                let secret = api
                    .get(name)
                    .await
                    .map_err(|e| format!("reading Secret {namespace}/{name}: {e}"))?;
                let data: BTreeMap<String, Vec<u8>> = secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect();
                let app_namespace = app.metadata.namespace.as_deref().unwrap_or_default();
                if namespace != app_namespace && *namespace != self.settings.namespace {
                    return Err(format!(
                        "Secret {namespace}/{name} is neither in the application's namespace nor in {}",
                        self.settings.namespace
                    ));
                }
                let url = writeback::repository_url(app, git)?;
                Ok(ferry_git::Credentials::new()
                    .with_repo(&url, writeback::secret_credential(&data)))
            }
        }
    }
}

/// What became of one app in a cycle.
#[derive(Debug, Default)]
struct AppResult {
    images: usize,
    updated: Vec<Change>,
    errors: Vec<String>,
}
