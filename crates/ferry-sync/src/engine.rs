//! Running a sync: plan tasks, dry-run them all, then apply phase by phase and wave by wave,
//! waiting for each wave to be healthy before the next (after the last only for hooks and
//! prunes), pruning in reverse wave order, running hooks with their delete policies, and
//! SyncFail hooks when anything fails.

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ferry_health::{HealthChecks, HealthCode};
use ferry_types::ResourceKey;
use ferry_types::tracking::{TrackingMethod, instance_name};
use futures::StreamExt;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    ValidationDirective,
};
use kube::discovery::{Discovery, Scope};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::sync::{RwLock, watch};
use tokio_util::sync::CancellationToken;

use crate::checkpoint::{Checkpoint, HOOK_RUN_LABEL, hook_run_value};
use crate::desired::{crd_scope, settle_namespace};
use crate::guard::PruneGuard;
use crate::hooks::{DeletePolicy, Hook, phase_of, wave_of};
use crate::merge::three_way_merge_patch;
use crate::options::{SYNC_OPTIONS_ANNOTATION, SyncOptionSet};
use crate::report::SyncReport;
use crate::tasks::{self, Action, Task};
use ferry_types::application::{
    ManagedNamespaceMetadata, OperationPhase, ResourceResult, ResultCode, SyncPhase,
};

/// At most this many requests of one sync in flight at once: Argo CD's default
/// `--kubectl-parallelism-limit`.
const PARALLEL_REQUESTS: usize = 20;

const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Engine-wide settings.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// The field manager for server-side apply.
    pub field_manager: String,
    /// How often to look at resources while waiting for health or deletion.
    pub poll_interval: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            field_manager: "ferry-controller".to_string(),
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// One sync operation's inputs.
#[derive(Clone, Debug)]
pub struct SyncRequest {
    /// The application, for tracking marks and messages.
    pub app: String,
    /// Namespace of the Application object itself, when apps live outside the control namespace.
    pub app_namespace: Option<String>,
    pub tracking: TrackingMethod,
    /// Namespace for namespaced resources that name none (the destination namespace).
    pub namespace: String,
    /// The rendered objects.
    pub desired: Vec<Value>,
    /// Live objects tracked to the application: prune candidates and hooks of earlier syncs.
    pub live: Vec<Value>,
    pub options: SyncOptionSet,
    pub prune: bool,
    pub dry_run: bool,
    /// Selective sync: only these resources (and no pruning of others).
    pub resources: Option<Vec<ResourceKey>>,
    /// Resources known to differ from Git, for `ApplyOutOfSyncOnly`.
    pub out_of_sync: Option<HashSet<ResourceKey>>,
    pub prune_guard: PruneGuard,
    /// Give up waiting for a wave to become healthy after this long.
    pub health_timeout: Option<Duration>,
    /// What an interrupted earlier run of this operation saved as its
    /// [`SyncReport::waiting_since`]: the first wait of this run that is not over at once (the
    /// one the earlier run was in) times out `health_timeout` after it, so a controller killed
    /// again and again cannot wait forever.
    pub waiting_since: Option<SystemTime>,
    /// Results of an earlier run of this same operation that was interrupted (the controller
    /// restarted): hooks it saw complete are not run again, and hooks it left running are waited
    /// for rather than created a second time.
    pub previous: Vec<ResourceResult>,
    /// The identity of this run of the operation (the same when it resumes, another for a
    /// retry), put on the hooks it creates so a resumed run adopts them; empty: no adoption.
    pub run_id: String,
    /// Where results are saved before a finished hook is deleted; without one, hooks are
    /// deleted as soon as they finish.
    pub checkpoint: Option<Checkpoint>,
    /// Told of every object this sync server-side applied, with the server's answer.
    pub on_applied: Option<OnApplied>,
    /// `syncPolicy.managedNamespaceMetadata`: with `CreateNamespace=true`, the destination
    /// namespace gets these labels and annotations at every sync, created or not.
    pub managed_namespace: Option<ManagedNamespaceMetadata>,
    /// Asked whether prunes marked `Prune=confirm` are approved; without it they fail.
    pub prune_confirmed: Option<PruneConfirmation>,
}

/// The answer to "may the prunes that need a person's confirmation go ahead now?".
type ConfirmationCheck = dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync;

/// Asks whether prunes marked `Prune=confirm` are approved; asked again every poll interval
/// while a wave with such prunes waits.
#[derive(Clone)]
pub struct PruneConfirmation(Arc<ConfirmationCheck>);

impl PruneConfirmation {
    pub fn new<F, Fut>(check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        Self(Arc::new(move || Box::pin(check())))
    }
}

impl std::fmt::Debug for PruneConfirmation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PruneConfirmation")
    }
}

/// A receiver of the sync's server-side applies: the object as sent and as the server answered
/// (a comparison can take that answer as the prediction of applying the same object again,
/// which changes nothing, instead of asking the server for a dry run).
#[derive(Clone)]
pub struct OnApplied {
    applied: Arc<AppliedReceiver>,
    starting: Option<Arc<StartReceiver>>,
}

/// Called with the object as sent and the server's answer.
type AppliedReceiver = dyn Fn(&Value, &Value) + Send + Sync;

/// Called with the object about to be sent; what it returns is dropped once the answer was
/// passed on, or the apply failed.
type StartReceiver = dyn Fn(&Value) -> Box<dyn Send> + Send + Sync;

impl OnApplied {
    pub fn new(receiver: impl Fn(&Value, &Value) + Send + Sync + 'static) -> Self {
        Self {
            applied: Arc::new(receiver),
            starting: None,
        }
    }

    /// Also tells when each apply starts.
    pub fn with_start(
        mut self,
        start: impl Fn(&Value) -> Box<dyn Send> + Send + Sync + 'static,
    ) -> Self {
        self.starting = Some(Arc::new(start));
        self
    }
}

impl std::fmt::Debug for OnApplied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnApplied")
    }
}

/// The sync engine. One per cluster: it holds a client and the cluster's API discovery.
pub struct Engine {
    client: Client,
    discovery: RwLock<Discovery>,
    health: HealthChecks,
    settings: EngineSettings,
}

/// Why a sync stopped early.
enum Stop {
    Failed(String),
    Terminated,
}

impl Engine {
    pub async fn new(
        client: Client,
        health: HealthChecks,
        settings: EngineSettings,
    ) -> Result<Self, kube::Error> {
        let discovery = ferry_runtime::discover(&client).await?;
        Ok(Self {
            client,
            discovery: RwLock::new(discovery),
            health,
            settings,
        })
    }

    /// Runs a sync to completion (or termination through `cancel`), publishing progress on
    /// `progress` after every step.
    pub async fn sync(
        &self,
        request: SyncRequest,
        cancel: CancellationToken,
        progress: &watch::Sender<SyncReport>,
    ) -> SyncReport {
        // A resumed run starts from what the interrupted one recorded, so that what it saves
        // (should it be interrupted in turn) still says which hooks already ran.
        let mut report = SyncReport::running();
        report.resources = request.previous.clone();
        report.waiting_since = request.waiting_since;
        let mut run = Run {
            engine: self,
            request: &request,
            report,
            progress,
            inherited_wait: request.waiting_since,
        };
        match run.execute(&cancel).await {
            Ok(message) => run.finish(OperationPhase::Succeeded, message),
            Err(Stop::Terminated) => {
                run.finish(OperationPhase::Failed, "Operation terminated".into())
            }
            Err(Stop::Failed(message)) => run.finish(OperationPhase::Failed, message),
        }
    }

    /// Resolves apiVersion + kind, refreshing discovery once on a miss (a CRD applied earlier in
    /// this sync adds kinds).
    async fn resolve(&self, api_version: &str, kind: &str) -> Option<(ApiResource, bool)> {
        if let Some(found) = lookup(&*self.discovery.read().await, api_version, kind) {
            return Some(found);
        }
        let fresh = ferry_runtime::discover(&self.client).await.ok()?;
        let found = lookup(&fresh, api_version, kind);
        *self.discovery.write().await = fresh;
        found
    }

    async fn api_for(&self, task: &Task) -> Result<Api<DynamicObject>, String> {
        let (resource, namespaced) = self
            .resolve(task.api_version(), task.kind())
            .await
            .ok_or_else(|| {
                format!(
                    "the server does not serve {} {}",
                    task.api_version(),
                    task.kind()
                )
            })?;
        Ok(if namespaced {
            Api::namespaced_with(self.client.clone(), task.namespace(), &resource)
        } else {
            Api::all_with(self.client.clone(), &resource)
        })
    }
}

fn lookup(discovery: &Discovery, api_version: &str, kind: &str) -> Option<(ApiResource, bool)> {
    let (group, version) = ferry_types::split_api_version(api_version);
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    discovery
        .resolve_gvk(&gvk)
        .map(|(resource, caps)| (resource, caps.scope == Scope::Namespaced))
}

/// What the sync found of the namespaces it may create.
#[derive(Default)]
struct NamespacesFound {
    missing: BTreeSet<String>,
    existing: BTreeSet<String>,
}

struct Run<'a> {
    engine: &'a Engine,
    request: &'a SyncRequest,
    report: SyncReport,
    progress: &'a watch::Sender<SyncReport>,
    /// The earlier run's wait start, until a wait of this run has to wait.
    inherited_wait: Option<SystemTime>,
}

impl Run<'_> {
    async fn execute(&mut self, cancel: &CancellationToken) -> Result<String, Stop> {
        let mut tasks = self.plan().await?;
        tasks::sort(&mut tasks);
        // Asked once: the dry run skips objects in missing namespaces, and the sync creates
        // its namespace unless it is known to exist.
        let namespaces = self.namespaces_to_create(&tasks).await;
        self.dry_run(&mut tasks, &namespaces.missing).await?;
        if self.request.dry_run {
            for task in &tasks {
                let code = match task.action {
                    Action::Apply => ResultCode::Synced,
                    Action::Prune => ResultCode::Pruned,
                };
                self.record(task, code, "(dry run)".into(), None);
            }
            return Ok("dry run succeeded".into());
        }
        if self.request.options.create_namespace {
            self.create_namespace(&namespaces.existing).await?;
        }

        let (main, sync_fail): (Vec<Task>, Vec<Task>) = tasks
            .into_iter()
            .partition(|t| t.phase != SyncPhase::SyncFail);
        match self.run_waves(main, cancel).await {
            Ok(()) => Ok("successfully synced (all tasks run)".into()),
            Err(Stop::Terminated) => Err(Stop::Terminated),
            Err(Stop::Failed(message)) => {
                if !sync_fail.is_empty() {
                    // SyncFail hooks run to completion even when cancelled; their own failure is
                    // appended to the message.
                    if let Err(Stop::Failed(more)) =
                        self.run_waves(sync_fail, &CancellationToken::new()).await
                    {
                        return Err(Stop::Failed(format!("{message}; SyncFail hooks: {more}")));
                    }
                }
                Err(Stop::Failed(message))
            }
        }
    }

    /// Builds the tasks: applies for desired objects and hooks, prunes for tracked extras.
    async fn plan(&mut self) -> Result<Vec<Task>, Stop> {
        let (mut tasks, desired_keys) = self.plan_applies().await?;
        let (mut prunes, tracked) = self.plan_prunes(&desired_keys);
        self.request
            .prune_guard
            .check(desired_keys.len(), tracked, prunes.len())
            .map_err(Stop::Failed)?;
        place_prunes(&tasks, &mut prunes);
        tasks.extend(prunes);

        if self.request.options.fail_on_shared_resource {
            self.check_shared(&tasks).await?;
        }
        Ok(tasks)
    }

    /// The apply tasks of the desired objects and hooks this sync takes, and the keys of every
    /// desired object that is not a hook. Objects that cannot be synced (unknown sync options,
    /// a bad wave, no identity, tracking that cannot be marked) fail the plan, all named.
    async fn plan_applies(&mut self) -> Result<(Vec<Task>, HashSet<ResourceKey>), Stop> {
        let request = self.request;
        let mut tasks = Vec::new();
        let mut desired_keys = HashSet::new();
        let mut problems = Vec::new();

        for object in &request.desired {
            let mut object = object.clone();
            let hook = Hook::of(&object);
            if hook.skipped() {
                continue;
            }
            let (options, unknown) = request.options.for_resource(&object);
            if !unknown.is_empty() {
                let names: Vec<&str> = unknown.iter().map(|u| u.0.as_str()).collect();
                problems.push(format!(
                    "{}: unknown sync options {}",
                    describe(&object),
                    names.join(", ")
                ));
                continue;
            }
            let wave = match wave_of(&object) {
                Ok(wave) => wave,
                Err(why) => {
                    problems.push(format!("{}: {why}", describe(&object)));
                    continue;
                }
            };
            self.default_namespace(&mut object).await;
            let Some(key) = key_of(&object) else {
                problems.push(format!(
                    "{}: object has no apiVersion, kind or name",
                    describe(&object)
                ));
                continue;
            };
            if !hook.is_hook() {
                desired_keys.insert(key.clone());
            }
            if !self.applies(&key, &hook, &options) {
                continue;
            }
            // A hook with generateName has no identity to record until the server names it.
            if object["metadata"]["name"].is_string()
                && let Err(err) = request.tracking.mark(
                    &mut object,
                    &request.app,
                    request.app_namespace.as_deref(),
                )
            {
                problems.push(format!("{key}: {err}"));
                continue;
            }
            tasks.extend(apply_tasks(object, hook, wave, options));
        }
        if !problems.is_empty() {
            return Err(Stop::Failed(problems.join("; ")));
        }
        Ok((tasks, desired_keys))
    }

    /// Whether this sync applies the desired object `key`: one of the resources asked for, and
    /// with ApplyOutOfSyncOnly only when out of sync (hooks always run).
    fn applies(&self, key: &ResourceKey, hook: &Hook, options: &SyncOptionSet) -> bool {
        let request = self.request;
        if request
            .resources
            .as_ref()
            .is_some_and(|only| !only.contains(key))
        {
            return false;
        }
        let in_sync = request
            .out_of_sync
            .as_ref()
            .is_some_and(|out_of_sync| !out_of_sync.contains(key));
        hook.is_hook() || !options.apply_out_of_sync_only || !in_sync
    }

    /// The prune tasks of tracked live objects no longer desired (those the sync may not prune
    /// are recorded as skipped), and how many tracked objects there are.
    fn plan_prunes(&mut self, desired_keys: &HashSet<ResourceKey>) -> (Vec<Task>, usize) {
        let request = self.request;
        let mut prunes = Vec::new();
        let mut tracked = 0;
        for live in &request.live {
            let hook = Hook::of(live);
            let Some(key) = key_of(live) else { continue };
            if hook.is_hook() {
                continue;
            }
            tracked += 1;
            if desired_keys.contains(&key) {
                continue;
            }
            if let Some(only) = &request.resources
                && !only.contains(&key)
            {
                continue;
            }
            let (options, _) = request.options.for_resource(live);
            let task = Task {
                action: Action::Prune,
                object: live.clone(),
                phase: SyncPhase::Sync,
                wave: wave_of(live).unwrap_or(0),
                hook_type: None,
                hook,
                options,
            };
            if !request.prune {
                self.record(
                    &task,
                    ResultCode::PruneSkipped,
                    "ignored (requires pruning)".into(),
                    None,
                );
            } else if !task.options.prune {
                self.record(
                    &task,
                    ResultCode::PruneSkipped,
                    "ignored (Prune=false)".into(),
                    None,
                );
            } else {
                prunes.push(task);
            }
        }
        (prunes, tracked)
    }

    /// Namespaced objects without a namespace go to the destination namespace; cluster-scoped
    /// objects lose a namespace they should not have.
    async fn default_namespace(&self, object: &mut Value) {
        let api_version = object["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let namespaced = match self.engine.resolve(&api_version, &kind).await {
            Some((_, namespaced)) => namespaced,
            // A kind the server does not know yet (its CRD is part of this sync): look for the
            // CRD among the desired objects.
            None => crd_scope(&self.request.desired, &api_version, &kind).unwrap_or(true),
        };
        settle_namespace(object, namespaced, &self.request.namespace);
    }

    async fn check_shared(&self, tasks: &[Task]) -> Result<(), Stop> {
        for task in tasks
            .iter()
            .filter(|t| t.action == Action::Apply && !t.is_hook())
        {
            let Ok(api) = self.engine.api_for(task).await else {
                continue;
            };
            if let Ok(Some(live)) = api.get_opt(task.name()).await {
                let live = serde_json::to_value(live).unwrap_or_default();
                let ours = instance_name(&self.request.app, self.request.app_namespace.as_deref());
                if let Some(owner) = self.request.tracking.app_of(&live)
                    && owner != ours
                {
                    return Err(Stop::Failed(format!(
                        "{} is part of application {owner} and FailOnSharedResource is set",
                        task.key()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Server-side dry run of every apply, so a bad manifest fails the sync before anything
    /// changes.
    async fn dry_run(
        &mut self,
        tasks: &mut [Task],
        missing_namespaces: &BTreeSet<String>,
    ) -> Result<(), Stop> {
        let mut failures = Vec::new();
        let mut crds = BTreeSet::new();
        let mut checks = Vec::new();
        for task in tasks.iter() {
            if task.action != Action::Apply {
                continue;
            }
            // The server cannot dry-run into a namespace this very sync creates.
            if missing_namespaces.contains(task.namespace()) {
                continue;
            }
            if task.kind() == "CustomResourceDefinition"
                && let (Some(group), Some(kind)) = (
                    task.object.pointer("/spec/group").and_then(Value::as_str),
                    task.object
                        .pointer("/spec/names/kind")
                        .and_then(Value::as_str),
                )
            {
                crds.insert(format!("{group}/{kind}"));
            }
            let served = self
                .engine
                .resolve(task.api_version(), task.kind())
                .await
                .is_some();
            if !served {
                let group = ferry_types::group_of(task.api_version());
                // Its CRD comes with this sync, or the user said to skip the check.
                if crds.contains(&format!("{group}/{}", task.kind()))
                    || task.options.skip_dry_run_on_missing_resource
                {
                    continue;
                }
            }
            checks.push(task);
        }
        // Nothing is created by a dry run, so their order does not matter: all at once.
        // The futures are made before the stream: the compiler cannot prove a stream that maps
        // borrowed items to futures Send (a known limitation with higher-ranked lifetimes).
        let run = &*self;
        let checks: Vec<_> = checks
            .into_iter()
            .map(|task| async move { (task, run.apply(task, true).await) })
            .collect();
        let answers: Vec<_> = futures::stream::iter(checks)
            .buffered(PARALLEL_REQUESTS)
            .collect()
            .await;
        for (task, answer) in answers {
            if let Err(message) = answer {
                failures.push((task.clone(), message));
            }
        }
        if failures.is_empty() {
            return Ok(());
        }
        let summary = failures
            .iter()
            .map(|(task, message)| format!("{}: {message}", task.key()))
            .collect::<Vec<_>>()
            .join("; ");
        for (task, message) in failures {
            self.record(&task, ResultCode::SyncFailed, message, None);
        }
        Err(Stop::Failed(format!(
            "one or more objects failed to apply (dry run): {summary}"
        )))
    }

    /// Which of the namespaces the sync will create (Namespace objects in Git, or
    /// `CreateNamespace=true`) exist already and which do not (one that could not be asked
    /// about is in neither).
    async fn namespaces_to_create(&self, tasks: &[Task]) -> NamespacesFound {
        let mut candidates: BTreeSet<String> = tasks
            .iter()
            .filter(|t| {
                t.action == Action::Apply && t.kind() == "Namespace" && t.api_version() == "v1"
            })
            .map(|t| t.name().to_string())
            .collect();
        if self.request.options.create_namespace && !self.request.namespace.is_empty() {
            candidates.insert(self.request.namespace.clone());
        }
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.engine.client.clone());
        let mut found = NamespacesFound::default();
        for name in candidates {
            match api.get_opt(&name).await {
                Ok(None) => found.missing.insert(name),
                Ok(Some(_)) => found.existing.insert(name),
                Err(_) => false,
            };
        }
        found
    }

    /// `CreateNamespace=true`: the destination namespace, applied unless it was there as the
    /// sync began, and at every sync with managed metadata.
    async fn create_namespace(&mut self, existing: &BTreeSet<String>) -> Result<(), Stop> {
        let namespace = &self.request.namespace;
        if namespace.is_empty() {
            return Ok(());
        }
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.engine.client.clone());
        let mut metadata = json!({"name": namespace});
        if let Some(managed) = &self.request.managed_namespace {
            // Applied server-side at every sync, as Argo CD does: labels and annotations others
            // set stay, and ones dropped from the spec go.
            let mut annotations = managed.annotations.clone();
            annotations.insert(
                SYNC_OPTIONS_ANNOTATION.into(),
                "ServerSideApply=true".into(),
            );
            metadata["labels"] = json!(managed.labels);
            metadata["annotations"] = json!(annotations);
        } else if existing.contains(namespace) {
            return Ok(());
        }
        let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata});
        let params = PatchParams::apply(&self.engine.settings.field_manager).force();
        api.patch(namespace, &params, &Patch::Apply(&object))
            .await
            .map_err(|err| {
                Stop::Failed(format!(
                    "creating namespace {namespace}: {}",
                    kube_message(&err)
                ))
            })?;
        Ok(())
    }

    async fn run_waves(
        &mut self,
        tasks: Vec<Task>,
        cancel: &CancellationToken,
    ) -> Result<(), Stop> {
        let mut rest = tasks.as_slice();
        while let Some(first) = rest.first() {
            let (phase, wave) = (first.phase, first.wave);
            let len = rest
                .iter()
                .take_while(|t| t.phase == phase && t.wave == wave)
                .count();
            let (group, tail) = rest.split_at(len);
            rest = tail;
            if cancel.is_cancelled() {
                return Err(Stop::Terminated);
            }
            self.await_prune_confirmation(group, cancel).await?;
            let mut started = Vec::new();
            let mut failures = Vec::new();
            let mut to_run = Vec::new();
            for task in group {
                let mut task = task.clone();
                if let Some(earlier) = self.earlier_hook_run(&task) {
                    task.object["metadata"]["name"] = json!(earlier.name);
                    let done = earlier.hook_phase == Some(OperationPhase::Succeeded);
                    self.keep(earlier);
                    if !done {
                        started.push(task);
                    }
                    continue;
                }
                if let Some(name) = self.adoptable_hook(&task).await {
                    task.object["metadata"]["name"] = json!(name);
                    let message = format!("{} created by an earlier run of this sync", task.kind());
                    self.record(
                        &task,
                        ResultCode::Synced,
                        message,
                        Some(OperationPhase::Running),
                    );
                    started.push(task);
                    continue;
                }
                to_run.push(task);
            }
            for batch in batches(to_run, |task| (task.action, task.kind().to_string())) {
                for (task, outcome) in self.run_batch(batch).await {
                    match self.record_outcome(&task, outcome) {
                        Ok(()) => started.push(task),
                        Err(message) => failures.push(format!("{}: {message}", task.key())),
                    }
                }
                self.publish();
            }
            if !failures.is_empty() {
                return Err(Stop::Failed(failures.join("; ")));
            }
            // As in Argo CD, health gates what comes next; after the last wave only hooks (to
            // complete) and prunes (to be gone) are waited for: the operation then ends, and the
            // app shows Progressing until its resources are healthy.
            if rest.is_empty() {
                started.retain(|task| task.is_hook() || task.action == Action::Prune);
            }
            self.wait_wave(&started, cancel).await?;
        }
        Ok(())
    }

    /// `Prune=confirm`: a wave with such prunes waits, Running and saying so, until they are
    /// approved (as Argo CD's sync does).
    async fn await_prune_confirmation(
        &mut self,
        group: &[Task],
        cancel: &CancellationToken,
    ) -> Result<(), Stop> {
        let pending: Vec<String> = group
            .iter()
            .filter(|t| t.action == Action::Prune && t.options.prune_confirm)
            .map(|t| {
                format!(
                    "{}/{}/{}",
                    ferry_types::group_of(t.api_version()),
                    t.kind(),
                    t.name()
                )
            })
            .collect();
        let Some(first) = pending.first() else {
            return Ok(());
        };
        let Some(confirmed) = self.request.prune_confirmed.clone() else {
            return Err(Stop::Failed(format!(
                "pruning {first} requires confirmation (Prune=confirm), which this sync cannot ask for"
            )));
        };
        let mut message = format!("waiting for pruning confirmation of {first}");
        if pending.len() > 1 {
            message = format!("{message} and {} more resources", pending.len() - 1);
        }
        while !(confirmed.0)().await {
            if self.report.message != message {
                self.report.message = message.clone();
                self.publish();
            }
            tokio::select! {
                _ = cancel.cancelled() => return Err(Stop::Terminated),
                _ = tokio::time::sleep(self.engine.settings.poll_interval) => {}
            }
        }
        if self.report.message == message {
            self.report.message = "pruning confirmed".into();
            self.publish();
        }
        Ok(())
    }

    /// The result an interrupted earlier run recorded for this hook, if it got the hook
    /// created (a hook made from `generateName` is matched by its name's prefix).
    fn earlier_hook_run(&self, task: &Task) -> Option<ResourceResult> {
        if !task.is_hook() || task.action != Action::Apply {
            return None;
        }
        let key = task.key();
        let generated = task.name().is_empty();
        self.request
            .previous
            .iter()
            .find(|r| {
                r.group == key.group
                    && r.kind == key.kind
                    && r.namespace == key.namespace
                    && r.sync_phase == Some(task.phase)
                    && matches!(
                        r.hook_phase,
                        Some(OperationPhase::Running | OperationPhase::Succeeded)
                    )
                    && if generated {
                        r.name.starts_with(&key.name)
                    } else {
                        r.name == key.name
                    }
            })
            .cloned()
    }

    /// The name of the live hook this run created for `task` but may not have recorded (the
    /// controller died in between): a hook labelled with this run and phase, of the task's
    /// name or `generateName` prefix.
    async fn adoptable_hook(&self, task: &Task) -> Option<String> {
        if !task.is_hook() || task.action != Action::Apply || self.request.run_id.is_empty() {
            return None;
        }
        let api = self.engine.api_for(task).await.ok()?;
        let label = format!(
            "{HOOK_RUN_LABEL}={}",
            hook_run_value(&self.request.run_id, task.phase)
        );
        let key = task.key();
        let generated = task.name().is_empty();
        let listed = api.list(&ListParams::default().labels(&label)).await.ok()?;
        listed
            .items
            .into_iter()
            .filter(|live| live.metadata.deletion_timestamp.is_none())
            .filter_map(|live| live.metadata.name)
            .find(|name| {
                if generated {
                    name.starts_with(&key.name)
                } else {
                    *name == key.name
                }
            })
    }

    /// Applies or prunes each task of a batch at once (at most [`PARALLEL_REQUESTS`] in flight),
    /// as Argo CD does with the tasks of one kind in a wave; answers in the batch's order.
    async fn run_batch(&self, batch: Vec<Task>) -> Vec<(Task, Result<(), String>)> {
        let runs: Vec<_> = batch
            .into_iter()
            .map(|mut task| async move {
                let outcome = match task.action {
                    Action::Apply => self.run_apply(&mut task).await,
                    Action::Prune => self.prune(&task).await,
                };
                (task, outcome)
            })
            .collect();
        futures::stream::iter(runs)
            .buffered(PARALLEL_REQUESTS)
            .collect()
            .await
    }

    /// Puts a task's outcome in the report: a hook applied is Running until it completes.
    fn record_outcome(&mut self, task: &Task, outcome: Result<(), String>) -> Result<(), String> {
        let hook_phase = |phase| task.is_hook().then_some(phase);
        match (&outcome, task.action) {
            (Ok(()), Action::Apply) => self.record(
                task,
                ResultCode::Synced,
                synced_message(task),
                hook_phase(OperationPhase::Running),
            ),
            (Ok(()), Action::Prune) => self.record(task, ResultCode::Pruned, "pruned".into(), None),
            (Err(message), Action::Apply) => self.record(
                task,
                ResultCode::SyncFailed,
                message.clone(),
                hook_phase(OperationPhase::Failed),
            ),
            (Err(message), Action::Prune) => {
                self.record(task, ResultCode::SyncFailed, message.clone(), None)
            }
        }
        outcome
    }

    async fn run_apply(&self, task: &mut Task) -> Result<(), String> {
        if task.is_hook() && !self.request.run_id.is_empty() {
            task.object["metadata"]["labels"][HOOK_RUN_LABEL] =
                json!(hook_run_value(&self.request.run_id, task.phase));
        }
        if task.is_hook()
            && task.hook.has_policy(DeletePolicy::BeforeHookCreation)
            && !task.name().is_empty()
        {
            self.delete_and_wait(task).await?;
        }
        let applied = self.apply(task, false).await?;
        if let Some(name) = applied["metadata"]["name"].as_str() {
            task.object["metadata"]["name"] = json!(name);
        }
        Ok(())
    }

    /// Applies one object the way its options ask; returns the object as the server has it.
    async fn apply(&self, task: &Task, dry_run: bool) -> Result<Value, String> {
        let api = self.engine.api_for(task).await?;
        let manager = &self.engine.settings.field_manager;
        let object = &task.object;
        let name = task.name();
        let post = PostParams {
            dry_run,
            field_manager: Some(manager.clone()),
        };
        let dynamic: DynamicObject = serde_json::from_value(object.clone())
            .map_err(|err| format!("invalid object: {err}"))?;

        let applied = if name.is_empty() {
            // A hook with generateName: a new object every time.
            api.create(&post, &dynamic).await
        } else if task.options.replace {
            // Replaced at the live object's version: a controller writing it in between (a
            // Job's status) makes that a conflict, so read it again and replace again.
            let mut attempts = 0;
            loop {
                attempts += 1;
                let result = match api.get_opt(name).await.map_err(|e| kube_message(&e))? {
                    None => api.create(&post, &dynamic).await,
                    Some(_) if task.options.force && dry_run => {
                        api.create(&post, &under_generated_name(&dynamic)).await
                    }
                    Some(_) if task.options.force => {
                        self.delete_and_wait(task).await?;
                        api.create(&post, &dynamic).await
                    }
                    Some(live) => {
                        let mut replacement = dynamic.clone();
                        replacement.metadata.resource_version = live.metadata.resource_version;
                        api.replace(name, &post, &replacement).await
                    }
                };
                match result {
                    Err(kube::Error::Api(status)) if status.is_conflict() && attempts < 5 => {}
                    other => break other,
                }
            }
        } else if task.options.server_side_apply {
            let mut params = PatchParams::apply(manager).force();
            params.dry_run = dry_run;
            params.field_validation = Some(field_validation(&task.options));
            let told = self.request.on_applied.as_ref().filter(|_| !dry_run);
            let _applying = told
                .and_then(|t| t.starting.as_ref())
                .map(|start| start(object));
            let result = api.patch(name, &params, &Patch::Apply(object)).await;
            if let (Ok(answer), Some(on_applied)) = (&result, told)
                && let Ok(answer) = serde_json::to_value(answer)
            {
                (on_applied.applied)(object, &answer);
            }
            match result {
                // Force=true: an object the server refuses to update in place (immutable
                // fields) is deleted and created again.
                Err(kube::Error::Api(status))
                    if status.is_invalid() && task.options.force && !dry_run =>
                {
                    self.delete_and_wait(task).await?;
                    api.create(&post, &dynamic).await
                }
                other => other,
            }
        } else {
            self.client_side_apply(&api, task, &post).await
        };
        let applied = match applied {
            // Force=true: the sync will delete and create what the server refuses to update in
            // place, so the dry run checks that creating it passes (under a generated name, as
            // the object itself is still there).
            Err(kube::Error::Api(status))
                if status.is_invalid() && task.options.force && dry_run =>
            {
                api.create(&post, &under_generated_name(&dynamic)).await
            }
            other => other,
        };
        let applied = applied.map_err(|err| kube_message(&err))?;
        serde_json::to_value(applied).map_err(|err| err.to_string())
    }

    /// `kubectl apply`-style: a three-way JSON merge patch from the last-applied annotation, the
    /// desired object and the live one; the desired object is recorded as last-applied.
    async fn client_side_apply(
        &self,
        api: &Api<DynamicObject>,
        task: &Task,
        post: &PostParams,
    ) -> Result<DynamicObject, kube::Error> {
        let mut desired = task.object.clone();
        let recorded = serde_json::to_string(&desired).unwrap_or_default();
        desired["metadata"]["annotations"][LAST_APPLIED_ANNOTATION] = json!(recorded);
        let dynamic: DynamicObject =
            serde_json::from_value(desired.clone()).map_err(kube::Error::SerdeError)?;
        let Some(live) = api.get_opt(task.name()).await? else {
            return api.create(post, &dynamic).await;
        };
        let live = serde_json::to_value(&live).map_err(kube::Error::SerdeError)?;
        let last_applied = live
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(LAST_APPLIED_ANNOTATION))
            .and_then(Value::as_str)
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or(Value::Null);
        let patch = three_way_merge_patch(&last_applied, &desired, &live);
        let params = PatchParams {
            dry_run: post.dry_run,
            field_manager: post.field_manager.clone(),
            field_validation: Some(field_validation(&task.options)),
            ..Default::default()
        };
        api.patch(task.name(), &params, &Patch::Merge(&patch)).await
    }

    async fn prune(&self, task: &Task) -> Result<(), String> {
        let api = self.engine.api_for(task).await?;
        let params = DeleteParams {
            propagation_policy: Some(task.options.propagation.to_kube()),
            ..Default::default()
        };
        match api.delete(task.name(), &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
            Err(err) => Err(kube_message(&err)),
        }
    }

    async fn delete_and_wait(&self, task: &Task) -> Result<(), String> {
        let api = self.engine.api_for(task).await?;
        match api.delete(task.name(), &DeleteParams::foreground()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_not_found() => return Ok(()),
            Err(err) => return Err(kube_message(&err)),
        }
        let deadline = self.request.health_timeout.map(|t| Instant::now() + t);
        loop {
            match api.get_opt(task.name()).await {
                Ok(None) => return Ok(()),
                Ok(Some(_)) => {}
                Err(err) => return Err(kube_message(&err)),
            }
            if deadline.is_some_and(|d| Instant::now() > d) {
                return Err(format!("{} was not deleted in time", task.key()));
            }
            tokio::time::sleep(self.engine.settings.poll_interval).await;
        }
    }

    /// Waits until every applied resource of a wave is healthy (hooks: completed) and every
    /// pruned one is gone. A Degraded resource or a failed hook fails the sync.
    async fn wait_wave(&mut self, tasks: &[Task], cancel: &CancellationToken) -> Result<(), Stop> {
        let since = self.inherited_wait.unwrap_or_else(SystemTime::now);
        self.report.waiting_since = Some(since);
        let deadline = self.request.health_timeout.map(|timeout| {
            let waited = SystemTime::now().duration_since(since).unwrap_or_default();
            Instant::now() + timeout.saturating_sub(waited)
        });
        let outcome = self.wait_until(tasks, deadline, since, cancel).await;
        self.report.waiting_since = Some(SystemTime::now());
        outcome
    }

    async fn wait_until(
        &mut self,
        tasks: &[Task],
        deadline: Option<Instant>,
        since: SystemTime,
        cancel: &CancellationToken,
    ) -> Result<(), Stop> {
        let mut pending: Vec<&Task> = tasks.iter().collect();
        loop {
            let mut still = Vec::new();
            for task in pending {
                match self.observe(task).await {
                    Observed::Done => self.finish_hook(task, true).await,
                    Observed::Waiting(_) => still.push(task),
                    Observed::Failed(message) => {
                        self.finish_hook(task, false).await;
                        self.publish();
                        return Err(Stop::Failed(format!("{}: {message}", task.key())));
                    }
                }
            }
            self.publish();
            if still.is_empty() {
                return Ok(());
            }
            if cancel.is_cancelled() {
                return Err(Stop::Terminated);
            }
            if deadline.is_some_and(|d| Instant::now() > d) {
                let mut waiting = Vec::new();
                for task in &still {
                    if let Observed::Waiting(why) = self.observe(task).await {
                        waiting.push(format!("{} ({why})", task.key()));
                    }
                }
                let waited = SystemTime::now().duration_since(since).unwrap_or_default();
                return Err(Stop::Failed(format!(
                    "timed out waiting for healthy state of {} (waited {} s, health timeout {} s{})",
                    waiting.join(", "),
                    waited.as_secs(),
                    self.request.health_timeout.unwrap_or_default().as_secs(),
                    if self.request.waiting_since == Some(since) {
                        ", counted from before the controller restarted"
                    } else {
                        ""
                    }
                )));
            }
            // This wait is the one an earlier run was in: later waits count from their start.
            self.inherited_wait = None;
            pending = still;
            tokio::select! {
                _ = tokio::time::sleep(self.engine.settings.poll_interval) => {}
                _ = cancel.cancelled() => return Err(Stop::Terminated),
            }
        }
    }

    async fn observe(&self, task: &Task) -> Observed {
        let api = match self.engine.api_for(task).await {
            Ok(api) => api,
            Err(message) => return Observed::Failed(message),
        };
        let live = match api.get_opt(task.name()).await {
            Ok(live) => live,
            Err(err) => return Observed::Waiting(kube_message(&err)),
        };
        if task.action == Action::Prune {
            return match live {
                None => Observed::Done,
                Some(_) => Observed::Waiting("being deleted".into()),
            };
        }
        let Some(live) = live else {
            // It was created (or adopted) by this operation, and its result is saved before its
            // delete policy removes it: gone unseen means someone else deleted it.
            return if task.is_hook() {
                Observed::Failed(format!(
                    "{} was deleted before it completed (not by this sync)",
                    task.kind()
                ))
            } else {
                Observed::Waiting("not found yet".into())
            };
        };
        let live = serde_json::to_value(live).unwrap_or_default();
        let Some(health) = ferry_health::assess(&live, &self.engine.health) else {
            return Observed::Done;
        };
        match health.status {
            HealthCode::Healthy => Observed::Done,
            // A suspended resource is where its owner wants it; hooks must finish, though.
            HealthCode::Suspended if !task.is_hook() => Observed::Done,
            HealthCode::Degraded => Observed::Failed(format!("Degraded: {}", health.message)),
            _ => Observed::Waiting(format!("{:?}: {}", health.status, health.message)),
        }
    }

    /// Records a hook's outcome and applies its delete policy.
    async fn finish_hook(&mut self, task: &Task, succeeded: bool) {
        if !task.is_hook() {
            return;
        }
        let (phase, message) = if succeeded {
            (
                OperationPhase::Succeeded,
                format!("{} hook succeeded", task.kind()),
            )
        } else {
            (
                OperationPhase::Failed,
                format!("{} hook failed", task.kind()),
            )
        };
        let code = if succeeded {
            ResultCode::Synced
        } else {
            ResultCode::SyncFailed
        };
        self.record(task, code, message.clone(), Some(phase));
        let policy = if succeeded {
            DeletePolicy::HookSucceeded
        } else {
            DeletePolicy::HookFailed
        };
        if !task.hook.has_policy(policy) {
            return;
        }
        // The result first: a run resumed after the delete must know the hook finished.
        if let Some(checkpoint) = &self.request.checkpoint
            && !checkpoint.save(self.report.clone()).await
        {
            let kept =
                format!("{message} (kept: its result could not be saved before deleting it)");
            self.record(task, code, kept, Some(phase));
            return;
        }
        if let Ok(api) = self.engine.api_for(task).await {
            let _ = api.delete(task.name(), &DeleteParams::background()).await;
        }
    }

    /// Records (or updates) the result of a resource in the report.
    fn record(
        &mut self,
        task: &Task,
        status: ResultCode,
        message: String,
        hook_phase: Option<OperationPhase>,
    ) {
        let key = task.key();
        let version = task
            .api_version()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let result = ResourceResult {
            group: key.group,
            version,
            kind: key.kind,
            namespace: key.namespace,
            name: key.name,
            status: Some(status),
            message,
            hook_type: task.hook_type,
            hook_phase,
            sync_phase: Some(task.phase),
            ..Default::default()
        };
        match self
            .report
            .resources
            .iter_mut()
            .find(|r| same_resource(r, &result))
        {
            Some(existing) => *existing = result,
            None => self.report.resources.push(result),
        }
    }

    /// Puts an earlier run's result in the report (where it already is, or at the end).
    fn keep(&mut self, earlier: ResourceResult) {
        match self
            .report
            .resources
            .iter_mut()
            .find(|r| same_resource(r, &earlier))
        {
            Some(existing) => *existing = earlier,
            None => self.report.resources.push(earlier),
        }
    }

    fn publish(&self) {
        self.progress.send_replace(self.report.clone());
    }

    fn finish(mut self, phase: OperationPhase, message: String) -> SyncReport {
        self.report.phase = phase;
        self.report.message = message;
        self.publish();
        self.report
    }
}

/// Whether two results are of the same resource in the same sync phase.
fn same_resource(a: &ResourceResult, b: &ResourceResult) -> bool {
    a.group == b.group
        && a.kind == b.kind
        && a.namespace == b.namespace
        && a.name == b.name
        && a.sync_phase == b.sync_phase
}

enum Observed {
    Done,
    Waiting(String),
    Failed(String),
}

/// Prunes run in reverse wave order (what was created last goes first), after the applies of
/// their wave; `PruneLast` moves them after every other wave.
fn place_prunes(applies: &[Task], prunes: &mut [Task]) {
    let Some(min) = prunes.iter().map(|t| t.wave).min() else {
        return;
    };
    let max = prunes.iter().map(|t| t.wave).max().unwrap_or(min);
    let last_wave = applies
        .iter()
        .filter(|t| t.phase == SyncPhase::Sync)
        .map(|t| t.wave)
        .chain(prunes.iter().map(|t| min + max - t.wave))
        .max()
        .unwrap_or(0);
    for task in prunes.iter_mut() {
        task.wave = if task.options.prune_last {
            last_wave + 1
        } else {
            min + max - task.wave
        };
    }
}

/// The object to dry-run the create of while its namesake still exists.
fn under_generated_name(object: &DynamicObject) -> DynamicObject {
    let mut fresh = object.clone();
    fresh.metadata.generate_name = fresh.metadata.name.take().map(|n| n + "-");
    fresh.metadata.resource_version = None;
    fresh
}

/// kubectl's `--validate=true` is strict (unknown or duplicate fields are errors, where the
/// server's own default only warns); `Validate=false` drops them silently.
fn field_validation(options: &SyncOptionSet) -> ValidationDirective {
    if options.validate {
        ValidationDirective::Strict
    } else {
        ValidationDirective::Ignore
    }
}

/// The apply tasks of one desired object: one per hook type for a hook (in that type's phase),
/// else one in the Sync phase.
fn apply_tasks(object: Value, hook: Hook, wave: i32, options: SyncOptionSet) -> Vec<Task> {
    if !hook.is_hook() {
        return vec![Task {
            action: Action::Apply,
            object,
            phase: SyncPhase::Sync,
            wave,
            hook_type: None,
            hook,
            options,
        }];
    }
    hook.types
        .iter()
        .filter_map(|hook_type| {
            Some(Task {
                action: Action::Apply,
                object: object.clone(),
                phase: phase_of(*hook_type)?,
                wave,
                hook_type: Some(*hook_type),
                hook: hook.clone(),
                options: options.clone(),
            })
        })
        .collect()
}

fn key_of(object: &Value) -> Option<ResourceKey> {
    let mut object = object.clone();
    let metadata = &mut object["metadata"];
    if metadata["name"].is_null() {
        metadata["name"] = metadata["generateName"].clone();
    }
    ResourceKey::of(&object)
}

fn describe(object: &Value) -> String {
    match key_of(object) {
        Some(key) => key.to_string(),
        None => format!(
            "{} {}",
            object["kind"].as_str().unwrap_or("<no kind>"),
            object["metadata"]["name"].as_str().unwrap_or("<no name>")
        ),
    }
}

/// Splits `items` into runs of consecutive items with the same key, in order.
fn batches<T, K: PartialEq>(items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<Vec<T>> {
    let mut batches: Vec<Vec<T>> = Vec::new();
    for item in items {
        match batches.last_mut() {
            Some(last) if key(&last[0]) == key(&item) => last.push(item),
            _ => batches.push(vec![item]),
        }
    }
    batches
}

fn synced_message(task: &Task) -> String {
    let verb = if task.options.replace {
        "replaced"
    } else {
        "configured"
    };
    format!("{} {verb}", task.kind().to_lowercase())
}

fn kube_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}
