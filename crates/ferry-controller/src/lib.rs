//! Application controller reconciling `argoproj.io/v1alpha1` Applications.
//!
//! Built on kube-runtime's `Controller`: one watch on the Applications of the control namespace,
//! a bounded number of concurrent reconciles, and extra triggers from the cluster caches (a
//! live change to an app's resources reconciles that app), from AppProject changes and from
//! finished operations. No task per app polls anything: an unchanged app costs one cached
//! comparison per resync period.
//!
//! A reconcile checks the app against its project, renders its sources (`ferry-render`),
//! compares them with the live state of its cluster (`ferry-cache`, `ferry-diff`,
//! `ferry-health`) and writes Argo CD's status. Syncs (`ferry-sync`) run as operations in the
//! background with their state persisted in the Application, so a restarted controller resumes
//! them.

mod appstate;
mod argocd_cm;
mod automation;
mod backoff;
mod clusters;
mod commit_signatures;
mod context;
mod delete_hooks;
mod deletion;
pub mod dynamic_shards;
pub mod ha;
mod ignored_updates;
mod impersonation;
pub mod metrics;
mod operation;
mod patch;
mod reconcile;
mod registry;
mod settings;
pub mod sharding;
mod status_size;
mod stored_app;
mod triggers;
mod view;
mod view_http;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use ferry_git::{Credentials, RepoCache};
use ferry_render::Renderer;
use ferry_types::allowed_namespaces::AllowedNamespaces;
use ferry_types::{AppProject, Application};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector;
use kube::runtime::watcher::{self, Event};
use tracing::{info, warn};

pub use ferry_appstate::{Comparison, health_code};
pub use metrics::Metrics;
pub use settings::ControllerSettings;

use crate::argocd_cm::LiveArgoSettings;
use crate::clusters::Clusters;
use crate::commit_signatures::CommitSignatures;
use crate::context::Context;
use crate::operation::Operations;
use crate::sharding::Sharding;
use crate::stored_app::StoredApp;
use crate::triggers::Triggers;

/// Runs the controller until `shutdown` resolves, then lets running syncs finish for
/// `settings.shutdown_grace` (what is still running then is resumed by the next controller).
/// Records into `metrics`; `client`'s requests are counted when `metrics` built it.
pub async fn run(
    client: kube::Client,
    mut settings: ControllerSettings,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let namespace = settings.namespace.clone();
    let app_namespaces = AllowedNamespaces::new(&namespace, &settings.application_namespaces)
        .map_err(|e| anyhow::anyhow!("--application-namespaces {e}"))?;
    prepare_cluster(&client, &settings).await?;

    let resource = ApiResource::erase::<Application>(&());
    let apps: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
    let projects: Api<AppProject> = Api::namespaced(client.clone(), &namespace);
    let (project_store, project_writer) = reflector::store();
    let argo_cm = Arc::new(LiveArgoSettings::load(&client, &namespace).await?);
    if let Some(tracking) = argo_cm.get().tracking.clone() {
        settings.tracking = tracking;
    }
    let (triggers, requests) = Triggers::new(resource.clone(), &namespace, argo_cm.clone());

    let git = RepoCache::new(&settings.git_root, Credentials::new())
        .with_timeout(settings.git_timeout)
        .with_observer(metrics.git_observer());
    let renderer = Arc::new(Renderer::new(
        Arc::new(git.clone()),
        settings.render.clone(),
    ));
    let clusters = Arc::new(Clusters::new(client.clone(), metrics.kube_clients()));
    let signatures =
        CommitSignatures::start(client.clone(), &namespace, git.clone(), triggers.clone());
    let ready = registry::spawn(
        client.clone(),
        namespace.clone(),
        git,
        clusters.clone(),
        triggers.clone(),
    );
    ready
        .await
        .context("loading repository and cluster secrets")?;

    let project_events = {
        let triggers = triggers.clone();
        reflector::reflector(
            project_writer,
            watcher::watcher(projects.clone(), watcher::Config::default()),
        )
        .default_backoff()
        .for_each(move |event| {
            if let Ok(Event::Apply(project) | Event::Delete(project)) = &event {
                triggers.project(&project.name_any());
            }
            futures::future::ready(())
        })
    };
    tokio::spawn(project_events);
    project_store
        .wait_until_ready()
        .await
        .context("listing AppProjects")?;
    signatures
        .ready()
        .await
        .context("reading the GnuPG keys ConfigMap")?;

    if let Some(dynamic) = &settings.dynamic_sharding {
        let replicas = dynamic_shards::replicas(&client, &namespace, &dynamic.deployment).await?;
        // Argo CD claims a shard at start only when there are several.
        let shard = if replicas > 1 {
            dynamic_shards::heartbeat(&client, &namespace, dynamic, replicas).await?
        } else {
            0
        };
        settings.sharding.replicas = replicas;
        settings.sharding.shard = shard;
    }
    let sharding = Sharding::new(settings.sharding);
    let predictions = (settings.server_side_diff_cache_size > 0)
        .then(|| ferry_diff::Predictions::new(settings.server_side_diff_cache_size));
    let ctx = Arc::new(Context {
        operations: Operations::new(settings.operation_processors),
        settings,
        apps: apps.clone(),
        client: client.clone(),
        projects,
        project_store,
        clusters,
        renderer,
        signatures,
        argo_cm,
        triggers: triggers.clone(),
        predictions,
        comparisons: Default::default(),
        written_statuses: Default::default(),
        error_backoff: Default::default(),
        reconcile_backoff: Default::default(),
        metrics: metrics.clone(),
        sharding,
    });
    argocd_cm::follow(Arc::downgrade(&ctx), client.clone(), &namespace);
    if let Some(address) = ctx.settings.view_listen {
        view_http::spawn(ctx.clone(), client.clone(), address).await;
    }
    let forget = Arc::downgrade(&ctx);
    let deleted = move |app: &StoredApp| {
        if let Some(ctx) = forget.upgrade() {
            ctx.forget_app(&ctx.key_of(app));
        }
    };
    let controller = app_controller(&client, &namespace, resource, app_namespaces, deleted)
        .with_config(controller::Config::default().concurrency(ctx.settings.status_processors))
        .reconcile_on(requests)
        .graceful_shutdown_on(shutdown);
    triggers.set_store(controller.store());
    ctx.sharding.set_apps(controller.store());
    sweep_periodically(Arc::downgrade(&ctx), controller.store());
    let state = Arc::downgrade(&ctx);
    metrics.watch_app_state(Arc::new(move || {
        state
            .upgrade()
            .map(|ctx| ctx.app_state_entries())
            .unwrap_or_default()
    }));
    let shard = Arc::downgrade(&ctx);
    metrics.report_only(Arc::new(move |app| {
        shard
            .upgrade()
            .is_none_or(|ctx| ctx.sharding.manages_app(&ctx.clusters, app))
    }));
    if let Some(dynamic) = ctx.settings.dynamic_sharding.clone() {
        let current = (ctx.settings.sharding.shard, ctx.settings.sharding.replicas);
        let moved = ctx.clone();
        tokio::spawn(dynamic_shards::follow(
            client.clone(),
            namespace.clone(),
            dynamic,
            current,
            move |shard, replicas| {
                moved.sharding.reassign(shard, replicas);
                moved.triggers.all();
                if let Some(apps) = moved.triggers.apps() {
                    moved.forget_unmanaged(apps);
                }
            },
        ));
    }
    metrics.watch(controller.store(), ctx.clusters.clone());
    info!(namespace = %namespace, others = ?ctx.settings.application_namespaces, shard = ctx.settings.sharding.shard, replicas = ctx.settings.sharding.replicas, "controller started");
    controller
        .run(reconcile::reconcile, reconcile::error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()))
        .await;

    info!(running = ctx.operations.count(), "shutting down");
    if !ctx.operations.wait_idle(ctx.settings.shutdown_grace).await {
        warn!(
            running = ctx.operations.count(),
            "syncs still running at shutdown; the next controller resumes them"
        );
    }
    Ok(())
}

/// The controller over the Applications of the control namespace or, with other namespaces
/// allowed, over those of every allowed namespace: watched cluster-wide and filtered before
/// anything is stored, as Argo CD's informer does. `deleted` hears of each app deleted.
fn app_controller(
    client: &kube::Client,
    namespace: &str,
    resource: ApiResource,
    namespaces: AllowedNamespaces,
    deleted: impl Fn(&StoredApp) + Send + 'static,
) -> Controller<StoredApp> {
    let watched: Api<StoredApp> = if namespaces.control_only() {
        Api::namespaced_with(client.clone(), namespace, &resource)
    } else {
        Api::all_with(client.clone(), &resource)
    };
    let writer = reflector::store::Writer::new(resource.clone());
    let reader = writer.as_reader();
    let allowed = move |event: &Event<StoredApp>| {
        let app = match event {
            Event::Apply(app) | Event::Delete(app) | Event::InitApply(app) => app,
            Event::Init | Event::InitDone => return true,
        };
        namespaces.allows(app.metadata.namespace.as_deref().unwrap_or_default())
    };
    let events = watcher::watcher(watched, watcher::Config::default())
        .try_filter(move |event| futures::future::ready(allowed(event)));
    let applied = reflector::reflector(writer, events)
        .inspect_ok(move |event| {
            if let Event::Delete(app) = event {
                deleted(app);
            }
        })
        .applied_objects();
    Controller::for_stream_with(applied, reader, resource)
}

/// Every resync period, forgets what is kept about apps this controller no longer reconciles
/// (see [`Context::forget_unmanaged`]): a deletion the watch missed (a relist replaces the
/// view without delete events), an operation that ended after its app was deleted, an app
/// whose cluster moved to another shard.
fn sweep_periodically(ctx: std::sync::Weak<Context>, apps: reflector::Store<StoredApp>) {
    tokio::spawn(async move {
        if apps.wait_until_ready().await.is_err() {
            return;
        }
        loop {
            let Some(period) = ctx.upgrade().map(|ctx| ctx.resync()) else {
                return;
            };
            tokio::time::sleep(period.max(std::time::Duration::from_secs(1))).await;
            let Some(ctx) = ctx.upgrade() else { return };
            ctx.forget_unmanaged(&apps);
        }
    });
}

/// The control namespace, Argo CD's CRDs (installed when absent) and the `default` project.
async fn prepare_cluster(
    client: &kube::Client,
    settings: &ControllerSettings,
) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(&settings.namespace).await?.is_none() {
        let namespace: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": settings.namespace}
        }))?;
        match namespaces.create(&PostParams::default(), &namespace).await {
            Ok(_) | Err(kube::Error::Api(_)) => {}
            Err(err) => return Err(err).context("creating the control namespace"),
        }
    }
    for crd in ferry_runtime::install_crds(client, &settings.field_manager).await? {
        info!(crd = %crd, "installed CRD");
    }
    if ferry_runtime::ensure_default_project(client, &settings.namespace)
        .await
        .context("creating the default AppProject")?
    {
        info!("created the default AppProject");
    }
    Ok(())
}
