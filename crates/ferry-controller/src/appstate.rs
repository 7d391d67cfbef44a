//! What an Application resolves to before anything is compared or synced: its project and the
//! project's verdict on its sources and destination, its cluster, and its rendered manifests
//! compared with the live state.

use std::sync::Arc;
use std::time::Instant;

use ferry_appstate::{CompareInput, Comparison, annotations};
use ferry_cache::ClusterCache;
use ferry_diff::IgnoreRules;
use ferry_health::AppRef;
use ferry_render::{AppContext, Rendered};
use ferry_types::application::{ApplicationDestination, RefreshType};
use ferry_types::project::ProjectPolicy;
use ferry_types::source::ApplicationSource;
use ferry_types::{AppProject, Application};
use kube::ResourceExt;
use kube::api::PostParams;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::clusters::Cluster;
use crate::context::Context;

/// An Application's project, cluster and tracking name, once the spec checks out.
pub struct Setup {
    pub project: AppProject,
    pub policy: ProjectPolicy,
    pub cluster: Arc<Cluster>,
    pub cache: ClusterCache,
    /// The name the app's resources are tracked under.
    pub instance: String,
}

impl Setup {
    /// The app's destination on its resolved cluster, server and name both set: projects
    /// permit resources by either, as Argo CD checks them against the cluster it found.
    pub fn destination(&self, app: &Application) -> ApplicationDestination {
        ApplicationDestination {
            server: self.cluster.server.clone(),
            name: self.cluster.name.clone(),
            ..app.spec.destination.clone()
        }
    }
}

/// Checks the spec against its project and finds its cluster. Errors are InvalidSpecError
/// messages.
pub async fn setup(ctx: &Context, app: &Application) -> Result<Setup, String> {
    if app.sources().is_empty() {
        return Err("spec.source or spec.sources is required".into());
    }
    let project = project(ctx, app.project()).await?;
    permit_app_namespace(ctx, app, &project)?;
    let cluster = ctx.clusters.resolve(&app.spec.destination)?;
    let policy = ferry_appstate::check_project(
        &project,
        app,
        &cluster.server,
        &cluster.name,
        &cluster.project,
    )?;
    let cache = cluster
        .cache(
            &ctx.settings,
            ctx.resource_filter(&cluster.server),
            &ctx.triggers,
        )
        .await
        .map_err(|err| format!("{err:#}"))?;
    Ok(Setup {
        project,
        policy,
        cluster,
        cache,
        instance: app.instance_name(&ctx.settings.namespace),
    })
}

/// An app outside the control namespace uses its project only when the project lists the
/// app's namespace in `sourceNamespaces` (Argo CD's `ErrProjectNotPermitted`): until then
/// nothing of it is compared, synced or deleted.
fn permit_app_namespace(
    ctx: &Context,
    app: &Application,
    project: &AppProject,
) -> Result<(), String> {
    if app.foreign_namespace(&ctx.settings.namespace).is_none() {
        return Ok(());
    }
    let policy = project.policy().map_err(|err| err.to_string())?;
    ferry_appstate::check_app_namespace(&policy, app, &ctx.settings.namespace)
}

/// Whether `app` is refused because its project does not take apps from its namespace: Argo CD
/// reports that as an `UnknownError`, not an `InvalidSpecError`.
pub fn namespace_refused(ctx: &Context, app: &Application) -> bool {
    let Some(namespace) = app.foreign_namespace(&ctx.settings.namespace) else {
        return false;
    };
    let key =
        kube::runtime::reflector::ObjectRef::new(app.project()).within(&ctx.settings.namespace);
    ctx.project_store
        .get(&key)
        .and_then(|project| project.policy().ok())
        .is_some_and(|policy| {
            !policy.is_app_namespace_permitted(namespace, &ctx.settings.namespace)
        })
}

/// The AppProject by name; the `default` project is created when missing, as Argo CD does.
async fn project(ctx: &Context, name: &str) -> Result<AppProject, String> {
    let namespace = &ctx.settings.namespace;
    let key = kube::runtime::reflector::ObjectRef::new(name).within(namespace);
    if let Some(project) = ctx.project_store.get(&key) {
        return Ok((*project).clone());
    }
    match ctx.projects.get_opt(name).await {
        Ok(Some(project)) => return Ok(project),
        Ok(None) => {}
        Err(err) => return Err(format!("reading AppProject {name}: {err}")),
    }
    if name != ferry_types::application::DEFAULT_PROJECT {
        return Err(format!(
            "application references project {name} which does not exist"
        ));
    }
    let default = AppProject::default_project(namespace);
    match ctx.projects.create(&PostParams::default(), &default).await {
        Ok(created) => Ok(created),
        Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(default),
        Err(err) => Err(format!("creating the default AppProject: {err}")),
    }
}

/// Manifests rendered and compared with the live state.
pub struct Observed {
    pub rendered: Rendered,
    /// The rendered objects with namespaces settled (what a sync applies).
    pub desired: Vec<Value>,
    pub comparison: Arc<Comparison>,
    /// False when the comparison was reused from an earlier reconcile.
    pub fresh: bool,
}

/// Renders `sources` (the spec's, or an operation's override) and compares them with the live
/// state, reusing the last comparison when nothing it depends on changed. Errors are
/// ComparisonError messages that name the source and cause.
pub async fn observe(
    ctx: &Context,
    app: &Application,
    setup: &Setup,
    sources: &[ApplicationSource],
    reuse: bool,
) -> Result<Observed, String> {
    let (rendered, desired) = render_desired(ctx, app, setup, sources).await?;
    let key = fingerprint(ctx, app, setup, &desired);
    let name = ctx.key_of(app);
    if reuse && let Some(comparison) = ctx.cached_comparison(&name, &key) {
        return Ok(Observed {
            rendered,
            desired,
            comparison,
            fresh: false,
        });
    }
    let comparison = Arc::new(compare_with_live(ctx, app, setup, &desired, false).await?);
    // Per-resource errors are mostly transient (a server restarting, a timeout): a comparison
    // that has them is never reused, so the next reconcile tries again.
    if comparison.errors.is_empty() {
        ctx.remember_comparison(&name, key, comparison.clone());
    } else {
        ctx.forget_comparison(&name);
    }
    Ok(Observed {
        rendered,
        desired,
        comparison,
        fresh: true,
    })
}

/// Renders `sources` for `app`'s cluster, and prepares the objects as a sync would apply them
/// (namespaced and marked), so comparisons see what a sync would change.
pub async fn render_desired(
    ctx: &Context,
    app: &Application,
    setup: &Setup,
    sources: &[ApplicationSource],
) -> Result<(Rendered, Vec<Value>), String> {
    let render_context = render_context(ctx, app, setup).await?;
    let sources = ctx
        .signatures
        .verified_sources(app, &setup.project, sources)
        .await?;
    let started = Instant::now();
    let rendered = ctx.renderer.render(&render_context, &sources).await;
    ctx.metrics
        .rendered(rendered.as_ref().ok(), started.elapsed());
    let rendered =
        rendered.map_err(|err| format!("rendering application {}: {err}", app.name_any()))?;
    let desired = prepare(ctx, app, setup, &rendered.objects)?;
    Ok((rendered, desired))
}

/// What rendering `app` for its cluster needs to know: its name, project and destination
/// namespace, argocd-cm's Kustomize settings, and the cluster's version and served kinds.
pub async fn render_context(
    ctx: &Context,
    app: &Application,
    setup: &Setup,
) -> Result<AppContext, String> {
    let kube_version = setup
        .cluster
        .kube_version()
        .await
        .map_err(|err| format!("{err:#}"))?;
    Ok(AppContext {
        name: app.name_any(),
        // Repositories are reached with the credentials of the app's project and global ones.
        project: app.project().to_string(),
        namespace: app.spec.destination.namespace.clone(),
        hard_refresh: app.refresh_requested() == Some(RefreshType::Hard),
        kustomize: ctx.argo_cm.get().kustomize.clone(),
        ..AppContext::default()
    }
    .with_capabilities(kube_version.to_string(), setup.cache.served_kinds()))
}

/// `objects` as a sync applies them to `app`'s cluster: namespaced and marked with the app's
/// tracking.
pub fn prepare(
    ctx: &Context,
    app: &Application,
    setup: &Setup,
    objects: &[Value],
) -> Result<Vec<Value>, String> {
    let cache = &setup.cache;
    ferry_appstate::desired::prepare(
        objects,
        &app.spec.destination.namespace,
        &setup.instance,
        &ctx.settings.tracking,
        |api_version, kind| {
            cache
                .resolve(ferry_types::group_of(api_version), kind)
                .map(|(_, n)| n)
        },
    )
    .map_err(|err| format!("application {}: {err}", app.name_any()))
}

/// Compares `desired` with the live state of `app`'s cluster; `keep_states` keeps what was
/// compared per resource.
pub async fn compare_with_live(
    ctx: &Context,
    app: &Application,
    setup: &Setup,
    desired: &[Value],
    keep_states: bool,
) -> Result<Comparison, String> {
    let ignore = ignore_rules(ctx, app)?;
    let name = app.name_any();
    let app_namespace = app.namespace().unwrap_or_default();
    let destination = setup.destination(app);
    Ok(ferry_appstate::compare(CompareInput {
        app: AppRef {
            namespace: &app_namespace,
            name: &name,
        },
        instance: &setup.instance,
        destination: &destination,
        desired,
        live: &setup.cache,
        client: &setup.cluster.client,
        policy: &setup.policy,
        ignore: &ignore,
        compare_options: ctx.argo_cm.get().compare_options,
        health: &ctx.argo_cm.get().health,
        server_side_diff: server_side_diff(ctx, app),
        // A hard refresh asks the API server again, as Argo CD's server-side diff cache does.
        predictions: ctx
            .predictions
            .as_ref()
            .filter(|_| app.refresh_requested() != Some(RefreshType::Hard)),
        field_manager: &ctx.settings.field_manager,
        keep_states,
    })
    .await)
}

/// The app's `ignoreDifferences` and the system-wide ones, compiled.
pub fn ignore_rules(ctx: &Context, app: &Application) -> Result<IgnoreRules, String> {
    ferry_appstate::ignore_rules(app, &ctx.argo_cm.get().ignore_differences)
}

fn server_side_diff(ctx: &Context, app: &Application) -> bool {
    let object = serde_json::json!({"metadata": {"annotations": app.annotations()}});
    annotations::compare_options(&object)
        .server_side_diff
        .unwrap_or(ctx.settings.server_side_diff)
}

/// Everything a comparison depends on, hashed: the app's uid, its spec and annotations, the desired objects
/// (which change with the revision, and with the cluster's capabilities for Helm charts), the
/// project's version, the cluster, and how many live changes the app's resources have seen.
fn fingerprint(ctx: &Context, app: &Application, setup: &Setup, desired: &[Value]) -> String {
    let mut hash = Sha256::new();
    let mut feed = |part: &str| {
        // Length-prefixed, so parts cannot run into each other.
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    };
    // An app deleted and created again under the same name starts from scratch.
    feed(app.metadata.uid.as_deref().unwrap_or_default());
    feed(&serde_json::to_string(&app.spec).unwrap_or_default());
    // A refresh request only decides whether to reuse; it is not an input of the comparison.
    let annotations: std::collections::BTreeMap<_, _> = app
        .annotations()
        .iter()
        .filter(|(k, _)| k.as_str() != ferry_types::application::REFRESH_ANNOTATION)
        .collect();
    feed(&serde_json::to_string(&annotations).unwrap_or_default());
    for object in desired {
        feed(&object.to_string());
    }
    feed(&setup.project.resource_version().unwrap_or_default());
    feed(&setup.cluster.server);
    let (epoch, generation) = ctx.triggers.live_generation(&setup.instance);
    feed(&format!("{epoch}/{generation}"));
    hex::encode(hash.finalize())
}
