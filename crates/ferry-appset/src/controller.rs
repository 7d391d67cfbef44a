//! The ApplicationSet controller: a kube-runtime Controller over the ApplicationSets of the
//! control namespace (and of the `--applicationset-namespaces`). Each reconcile generates the Applications, applies them as
//! `applicationsSync` allows, and writes the status. A generator or template error changes
//! nothing but the status: no Application is created, updated or deleted on a failed
//! generation.

mod apply;
mod events;
mod progressive;
mod secrets;
mod status;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_git::{Credentials, RepoCache};
use ferry_types::allowed_namespaces::AllowedNamespaces;
use ferry_types::application_set::{ApplicationsSyncPolicy, reason};
use ferry_types::{AppProject, Application, ApplicationSet};
use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{ResourceExt, api::ListParams};
use serde_json::json;
use tracing::{info, warn};

use crate::generate::{self, GenerateError};
use crate::generators::{self, GitSource, Sources};

pub use apply::FIELD_MANAGER;
pub use secrets::current as current_secrets;
pub use status::resources as resource_statuses;

/// How soon an ApplicationSet in error is generated again (Argo CD's).
const RETRY_ON_ERROR: Duration = Duration::from_secs(180);

/// Settings of [`run`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// Namespace of the ApplicationSets, AppProjects and repository/cluster Secrets.
    pub namespace: String,
    /// Where Git mirrors and checkouts live.
    pub git_root: PathBuf,
    /// Most bytes one checkout of a git generator may hold.
    pub max_repo_size: Option<u64>,
    /// ApplicationSets reconciled at once.
    pub concurrency: u16,
    /// Honour the RollingSync strategy (Argo CD's `--enable-progressive-syncs`).
    pub progressive_syncs: bool,
    /// Namespaces besides the control namespace whose ApplicationSets are reconciled (globs or
    /// `/regex/`, Argo CD's `--applicationset-namespaces`); their Applications are made in the
    /// set's own namespace.
    pub applicationset_namespaces: Vec<String>,
    /// The controller's `--policy` (`sync` when not given).
    pub policy: ApplicationsSyncPolicy,
    /// Whether a set's own `syncPolicy.applicationsSync` overrides `policy`
    /// (`--enable-policy-override`).
    pub policy_override: bool,
    /// What the SCM provider and pull request generators may call, and how.
    pub scm: generators::ScmSettings,
}

impl Settings {
    /// What the controller may do to `appset`'s Applications: the set's
    /// `syncPolicy.applicationsSync` if overriding is enabled and it has one, else `--policy`
    /// (upstream's `DefaultPolicy`).
    pub fn policy_of(&self, appset: &ApplicationSet) -> ApplicationsSyncPolicy {
        let own = appset
            .spec
            .sync_policy
            .as_ref()
            .and_then(|p| p.applications_sync);
        match own {
            Some(own) if self.policy_override => own,
            _ => self.policy,
        }
    }
}

struct Context {
    client: kube::Client,
    events: events::Events,
    settings: Settings,
    namespaces: AllowedNamespaces,
    git: GitSource,
    clusters: secrets::ClusterSecrets,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ReconcileError(String);

/// Runs until `shutdown` resolves.
pub async fn run(
    client: kube::Client,
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let namespace = settings.namespace.clone();
    let git = GitSource {
        cache: RepoCache::new(settings.git_root.clone(), Credentials::new()),
        max_checkout_bytes: settings.max_repo_size,
    };
    let clusters = secrets::ClusterSecrets::default();
    let secret_changes = secrets::watch(
        client.clone(),
        &namespace,
        git.cache.clone(),
        clusters.clone(),
    );
    let namespaces = AllowedNamespaces::new(&namespace, &settings.applicationset_namespaces)
        .map_err(|e| anyhow::anyhow!("--applicationset-namespaces {e}"))?;
    // Other namespaces are watched cluster-wide and filtered in `reconcile`, as upstream does.
    let (appsets, apps): (Api<ApplicationSet>, Api<Application>) = if namespaces.control_only() {
        (
            Api::namespaced(client.clone(), &namespace),
            Api::namespaced(client.clone(), &namespace),
        )
    } else {
        (Api::all(client.clone()), Api::all(client.clone()))
    };
    let concurrency = settings.concurrency;
    info!(namespace = %namespace, others = ?settings.applicationset_namespaces, "reconciling ApplicationSets");
    let context = Arc::new(Context {
        events: events::Events::new(client.clone()),
        client,
        settings,
        namespaces,
        git,
        clusters,
    });
    Controller::new(appsets, watcher::Config::default())
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .watches(apps, watcher::Config::default(), owner_on_change())
        .reconcile_all_on(secret_changes)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|_| futures::future::ready(()))
        .await;
    Ok(())
}

/// Maps a change of an owned Application to its ApplicationSet, but only when something the
/// ApplicationSet decides changed (not the status the application controller keeps writing).
fn owner_on_change() -> impl Fn(Application) -> Option<ObjectRef<ApplicationSet>> + Send + Sync {
    let seen: Mutex<HashMap<String, serde_json::Value>> = Mutex::default();
    move |app: Application| {
        let owner = app
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true) && o.kind == "ApplicationSet")?
            .name
            .clone();
        let key = app.name_any();
        let fingerprint = apply::fingerprint(&app);
        let mut seen = seen.lock().ok()?;
        if seen.get(&key) == Some(&fingerprint) {
            return None;
        }
        seen.insert(key, fingerprint);
        Some(ObjectRef::new(&owner).within(&app.namespace().unwrap_or_default()))
    }
}

fn error_policy(_: Arc<ApplicationSet>, err: &ReconcileError, _: Arc<Context>) -> Action {
    warn!("reconciling an ApplicationSet: {err}");
    Action::requeue(Duration::from_secs(10))
}

async fn reconcile(
    appset: Arc<ApplicationSet>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let namespace = appset.namespace().unwrap_or_default();
    if !ctx.namespaces.allows(&namespace) {
        return Ok(Action::await_change());
    }
    let appsets: Api<ApplicationSet> = Api::namespaced(ctx.client.clone(), &namespace);
    let apps: Api<Application> = Api::namespaced(ctx.client.clone(), &namespace);
    let kube_error = |e: kube::Error| ReconcileError(e.to_string());
    let owned = owned_apps(&apps, &appset).await.map_err(kube_error)?;

    if appset.metadata.deletion_timestamp.is_some() {
        // Kubernetes' garbage collector deletes the owned Applications; a policy that forbids
        // deleting them releases them first.
        if !ctx.settings.policy_of(&appset).allows_delete() {
            apply::orphan(&apps, &appset, &owned)
                .await
                .map_err(ReconcileError)?;
        }
        if let Some(steps) = progressive::rolling_steps(&appset)
            && progressive::deletion_reversed(&appset)
        {
            let owned = owned_apps(&apps, &appset).await.map_err(kube_error)?;
            let order = progressive::reverse_deletion_order(steps, &owned);
            if let Some(wait) = delete_in_order(&apps, &appset, &order, &ctx.events).await? {
                return Ok(Action::requeue(wait));
            }
        }
        set_resources_finalizer(&appsets, &appset, false)
            .await
            .map_err(kube_error)?;
        return Ok(Action::await_change());
    }
    // A reverse deletion order needs the set to stay until its Applications are gone.
    if ctx.settings.progressive_syncs && progressive::deletion_reversed(&appset) {
        set_resources_finalizer(&appsets, &appset, true)
            .await
            .map_err(kube_error)?;
    }

    let cluster_secrets = ctx.clusters.snapshot();
    let kube = generators::Kube {
        client: ctx.client.clone(),
        namespace: ctx.settings.namespace.clone(),
    };
    let sources = Sources {
        git: &ctx.git,
        cluster_secrets: &cluster_secrets,
        kube: Some(&kube),
        scm: &ctx.settings.scm,
    };
    let generated = match generate::applications(&appset, &sources).await {
        Ok(apps) => apps,
        Err(err) => return fail(&appsets, &appset, &err, false).await,
    };
    if let Err(err) = generate::validate_names(&appset, &generated) {
        return fail(&appsets, &appset, &err, true).await;
    }
    if ctx.settings.progressive_syncs
        && progressive::is_rolling_sync(&appset)
        && progressive::rolling_steps(&appset).is_none()
    {
        let err = GenerateError {
            reason: reason::APPLICATION_SET_ROLLOUT_ERROR,
            message: "No steps defined for rollout".into(),
        };
        return fail(&appsets, &appset, &err, true).await;
    }

    // An Application whose project does not exist is not applied (nor deleted); outside the
    // control namespace, nor one whose project's `sourceNamespaces` leave its namespace out (the
    // application controller would refuse it; ferry's does not watch other namespaces at all).
    let mut invalid = Vec::new();
    let projects: Api<AppProject> = Api::namespaced(ctx.client.clone(), &ctx.settings.namespace);
    let outside = namespace != ctx.settings.namespace;
    // Each project's verdict: `None` if its Applications may be applied, else why not.
    let mut verdicts: HashMap<String, Option<String>> = HashMap::new();
    for app in &generated {
        let project = app.project().to_string();
        if !verdicts.contains_key(&project) {
            let verdict = if project == ferry_types::application::DEFAULT_PROJECT && !outside {
                None
            } else {
                match projects.get_opt(&project).await.map_err(kube_error)? {
                    None => Some(format!(
                        "application references project {project} which does not exist"
                    )),
                    Some(_) if !outside => None,
                    Some(found) => match found.policy() {
                        Ok(p)
                            if p.is_app_namespace_permitted(
                                &namespace,
                                &ctx.settings.namespace,
                            ) =>
                        {
                            None
                        }
                        Ok(_) => Some(format!(
                            "application references project {project} whose sourceNamespaces do not permit namespace {namespace}"
                        )),
                        Err(why) => Some(format!("project {project}: {why}")),
                    },
                }
            };
            verdicts.insert(project.clone(), verdict);
        }
        if let Some(Some(why)) = verdicts.get(&project) {
            invalid.push(why.clone());
        }
    }
    // Nor one whose destination cluster ferry does not know (as Argo CD checks before it creates).
    for app in &generated {
        if let Some(why) = apply::unknown_destination(app, &cluster_secrets) {
            invalid.push(format!(
                "application destination spec for {} is invalid: {why}",
                app.name_any()
            ));
        }
    }
    let valid: Vec<_> = generated
        .iter()
        .filter(|app| {
            verdicts.get(app.project()) == Some(&None)
                && apply::unknown_destination(app, &cluster_secrets).is_none()
        })
        .collect();

    // A rolling sync: the controller syncs the Applications itself, step by step.
    let rolling = ctx
        .settings
        .progressive_syncs
        .then(|| progressive::rolling_steps(&appset))
        .flatten();
    let mut desired: Vec<Application> = valid.into_iter().cloned().collect();
    let mut prunes = HashMap::new();
    if rolling.is_some() {
        for app in &mut desired {
            prunes.insert(app.name_any(), progressive::disable_automated_sync(app));
        }
    }
    let mut changed = HashSet::new();

    let policy = ctx.settings.policy_of(&appset);
    let listed: HashMap<_, _> = owned.iter().map(|app| (app.name_any(), app)).collect();
    let mut first_error = None;
    for app in &desired {
        let live = listed.get(&app.name_any()).copied();
        match apply::create_or_update(&apps, &appset, app, live, policy.allows_update()).await {
            Ok(Some(action)) => {
                if action == "Updated" {
                    changed.insert(app.name_any());
                }
                info!(applicationset = %appset.name_any(), application = %app.name_any(), "{action} Application");
                ctx.events
                    .record(
                        &appset,
                        action,
                        &format!("{action} Application {:?}", app.name_any()),
                    )
                    .await;
            }
            Ok(None) => {}
            Err(message) => {
                let why = if policy.allows_update() {
                    reason::UPDATE_APPLICATION_ERROR
                } else {
                    reason::CREATE_APPLICATION_ERROR
                };
                first_error.get_or_insert((why, message));
            }
        }
    }
    if first_error.is_none() && policy.allows_delete() {
        let names: HashSet<_> = generated.iter().map(|a| a.name_any()).collect();
        match apply::delete_stale(&apps, &owned, &names, &cluster_secrets).await {
            Ok(deleted) => {
                for name in deleted {
                    let note = format!("Deleted Application {name:?}");
                    ctx.events.record(&appset, "Deleted", &note).await;
                }
            }
            Err(message) => first_error = Some((reason::DELETE_APPLICATION_ERROR, message)),
        }
    }
    if first_error.is_none()
        && let Some(message) = invalid.first()
    {
        let message = match invalid.len() {
            1 => message.clone(),
            n => format!("{message} (and {} more)", n - 1),
        };
        first_error = Some((reason::APPLICATION_VALIDATION_ERROR, message));
    }

    let owned = owned_apps(&apps, &appset).await.map_err(kube_error)?;
    let mut conditions = match &first_error {
        Some((why, message)) => status::conditions(Some((why, message)), true),
        None => status::conditions(None, true),
    };
    let rolling_out = match rolling {
        Some(steps) => {
            let (statuses, issues) = roll(&apps, &appset, steps, &owned, &changed, &prunes).await?;
            let done = statuses.iter().all(|s| s.status == progressive::HEALTHY);
            conditions.push(progressive::progressing_condition(steps, &statuses));
            conditions.push(progressive::config_condition(&issues));
            status::write_application_status(&appsets, &appset, statuses)
                .await
                .map_err(kube_error)?;
            !done
        }
        // Without a rolling sync there is no rollout to record.
        None => {
            status::write_application_status(&appsets, &appset, Vec::new())
                .await
                .map_err(kube_error)?;
            false
        }
    };
    status::write(
        &appsets,
        &appset,
        conditions,
        Some(status::resources(&owned)),
    )
    .await
    .map_err(kube_error)?;
    if appset.refresh_requested() {
        let patch = json!({"metadata": {"annotations": {
            ferry_types::application_set::REFRESH_ANNOTATION: null
        }}});
        appsets
            .patch(
                &appset.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(kube_error)?;
    }
    if let Some((_, message)) = first_error {
        return Err(ReconcileError(message));
    }
    if rolling_out {
        // The Applications' sync and health move the rollout on; they are not watched.
        return Ok(Action::requeue(ROLLOUT_POLL));
    }
    Ok(requeue(&appset))
}

/// How often a rolling sync in progress looks at its Applications again.
const ROLLOUT_POLL: Duration = Duration::from_secs(3);

/// One round of a rolling sync: the Applications' states, and a sync for each that may start;
/// what is wrong with the steps.
async fn roll(
    apps: &Api<Application>,
    appset: &ApplicationSet,
    steps: &[ferry_types::application_set::ApplicationSetRolloutStep],
    owned: &[Application],
    changed: &HashSet<String>,
    prunes: &HashMap<String, bool>,
) -> Result<
    (
        Vec<ferry_types::application_set::ApplicationSetApplicationStatus>,
        progressive::Issues,
    ),
    ReconcileError,
> {
    let now = jiff::Timestamp::now();
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        now.round(jiff::Unit::Second).unwrap_or(now),
    );
    let (step_of, members, mut issues) = progressive::steps_of(steps, owned);
    let mut statuses = progressive::update_statuses(appset, owned, changed, &step_of, &now);
    let to_sync = progressive::apps_to_sync(&statuses, &members);
    let promoted =
        progressive::promote(&mut statuses, steps, &step_of, &to_sync, &now, &mut issues);
    for name in promoted {
        let Some(app) = owned.iter().find(|a| a.name_any() == name) else {
            continue;
        };
        let prune = prunes.get(&name).copied().unwrap_or(false);
        let patch = json!({"operation": progressive::sync_operation(app, prune)});
        apps.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| ReconcileError(format!("starting the sync of Application {name}: {e}")))?;
        info!(applicationset = %appset.name_any(), application = %name, "RollingSync: syncing Application");
    }
    Ok((statuses, issues))
}

/// How often a reverse deletion looks again while an Application is going (upstream's); the
/// Applications' deletions wake it sooner.
const REVERSE_DELETION_POLL: Duration = Duration::from_secs(10);

/// One round of a reverse deletion: the first of `order` still there is deleted, or waited
/// for if it is being deleted. `Some(wait)` until all are gone.
async fn delete_in_order(
    apps: &Api<Application>,
    appset: &ApplicationSet,
    order: &[String],
    events: &events::Events,
) -> Result<Option<Duration>, ReconcileError> {
    for name in order {
        let Some(app) = apps
            .get_opt(name)
            .await
            .map_err(|e| ReconcileError(format!("reading Application {name}: {e}")))?
        else {
            continue;
        };
        if app.metadata.deletion_timestamp.is_some() {
            return Ok(Some(REVERSE_DELETION_POLL));
        }
        match apps.delete(name, &kube::api::DeleteParams::default()).await {
            Ok(_) => {
                info!(applicationset = %appset.name_any(), application = %name, "reverse deletion: deleted Application");
                let note = format!("Deleted Application {name:?}");
                events.record(appset, "Deleted", &note).await;
                return Ok(Some(REVERSE_DELETION_POLL));
            }
            Err(kube::Error::Api(status)) if status.is_not_found() => continue,
            Err(e) => return Err(ReconcileError(format!("deleting Application {name}: {e}"))),
        }
    }
    Ok(None)
}

/// Adds (or removes) the resources finalizer on the set, if it lacks (or has) it.
async fn set_resources_finalizer(
    appsets: &Api<ApplicationSet>,
    appset: &ApplicationSet,
    present: bool,
) -> Result<(), kube::Error> {
    let finalizer = ferry_types::application::finalizer::RESOURCES;
    let has = appset.finalizers().iter().any(|f| f == finalizer);
    if has == present {
        return Ok(());
    }
    let mut finalizers: Vec<_> = appset
        .finalizers()
        .iter()
        .filter(|f| *f != finalizer)
        .cloned()
        .collect();
    if present {
        finalizers.push(finalizer.to_string());
    }
    // The resource version makes a concurrent change of the list fail instead of being lost.
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": appset.resource_version(),
    }});
    appsets
        .patch(
            &appset.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(())
}

/// Records a failed generation in the status; nothing else is touched.
async fn fail(
    appsets: &Api<ApplicationSet>,
    appset: &ApplicationSet,
    err: &GenerateError,
    generated: bool,
) -> Result<Action, ReconcileError> {
    warn!(applicationset = %appset.name_any(), "{}", err.message);
    let conditions = status::conditions(Some((err.reason, &err.message)), generated);
    status::write(appsets, appset, conditions, None)
        .await
        .map_err(|e| ReconcileError(e.to_string()))?;
    Ok(Action::requeue(RETRY_ON_ERROR))
}

fn requeue(appset: &ApplicationSet) -> Action {
    appset
        .spec
        .generators
        .iter()
        .flat_map(generate::split)
        .filter_map(|entry| generators::requeue_after(&entry))
        .filter(|d| !d.is_zero())
        .min()
        .map_or_else(Action::await_change, Action::requeue)
}

async fn owned_apps(
    apps: &Api<Application>,
    appset: &ApplicationSet,
) -> Result<Vec<Application>, kube::Error> {
    let all = apps.list(&ListParams::default()).await?;
    Ok(all
        .items
        .into_iter()
        .filter(|app| apply::owned_by(app, appset))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream's DefaultPolicy: the set's own policy only when overriding is enabled.
    #[test]
    fn the_controllers_policy_wins_unless_overriding_is_enabled() {
        let settings = |policy, policy_override| Settings {
            namespace: "argocd".into(),
            git_root: PathBuf::new(),
            max_repo_size: None,
            concurrency: 1,
            progressive_syncs: false,
            scm: Default::default(),
            applicationset_namespaces: Vec::new(),
            policy,
            policy_override,
        };
        let own: ApplicationSet =
            serde_yaml::from_str("spec: {syncPolicy: {applicationsSync: create-only}}").unwrap();
        let none: ApplicationSet = serde_yaml::from_str("spec: {}").unwrap();
        use ApplicationsSyncPolicy::*;
        assert_eq!(settings(Sync, true).policy_of(&own), CreateOnly);
        assert_eq!(settings(CreateUpdate, false).policy_of(&own), CreateUpdate);
        assert_eq!(settings(CreateDelete, true).policy_of(&none), CreateDelete);
    }
}
