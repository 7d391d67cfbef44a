//! Comparing an Application's desired objects with what is live: per-resource sync status
//! and health, the app's aggregate, and what a sync would need to know (which resources differ,
//! which are extra).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use ferry_diff::{DiffOptions, DiffResult, IgnoreRules, SyncStatus};
use ferry_health::{AppRef, HealthChecks, HealthCode, ManagedResource};
use ferry_types::ResourceKey;
use ferry_types::application::{HealthStatus, HealthStatusCode, ResourceStatus, SyncStatusCode};
use ferry_types::project::ProjectPolicy;
use futures::{StreamExt, stream};
use serde_json::Value;

use crate::annotations;
use crate::live::{LiveState, Resolver, read_with_managed_fields};
use crate::resource_compare_options::ResourceCompareOptions;

/// Server-side dry runs of one app that may be in flight at once.
const DIFF_CONCURRENCY: usize = 8;

/// What one comparison found.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    /// Managed resources (desired, live-and-tracked, and live hooks), sorted.
    pub resources: Vec<ResourceStatus>,
    pub sync: SyncStatusCode,
    pub health: HealthStatus,
    /// Resources whose live state differs from Git (missing ones included).
    pub out_of_sync: HashSet<ResourceKey>,
    /// Unified diffs of the differing resources, secrets masked, keyed by resource.
    pub diffs: BTreeMap<ResourceKey, String>,
    /// Container images of the live workloads, sorted and de-duplicated.
    pub images: Vec<String>,
    /// Resources the project does not permit; a sync would refuse them.
    pub forbidden: Vec<String>,
    /// Desired resources whose live object is tracked by another app (Argo CD's
    /// SharedResourceWarning messages).
    pub shared: Vec<String>,
    /// Per-resource comparison failures; the app's sync status is then Unknown.
    pub errors: Vec<String>,
    /// The states compared, per resource; only kept when asked for ([`CompareInput::keep_states`]).
    pub states: Vec<ResourceStates>,
}

/// What was compared for one resource: Argo CD's `ResourceDiff`, Secret values not yet masked.
#[derive(Clone, Debug, Default)]
pub struct ResourceStates {
    pub key: ResourceKey,
    pub version: String,
    pub hook: bool,
    /// The object as rendered and prepared for applying.
    pub target: Option<Value>,
    pub live: Option<Value>,
    /// The live object as compared (defaults and ignored fields normalized away).
    pub normalized_live: Option<Value>,
    /// What the live object would be once the target is applied.
    pub predicted_live: Option<Value>,
    pub diff: String,
}

/// Everything a comparison reads.
pub struct CompareInput<'a, L> {
    /// The Application's name and namespace (an app may manage its own object).
    pub app: AppRef<'a>,
    /// The name the app's resources are tracked under.
    pub instance: &'a str,
    pub destination: &'a ferry_types::application::ApplicationDestination,
    /// Objects prepared for applying ([`crate::desired::prepare`]), hooks included.
    pub desired: &'a [Value],
    pub live: &'a L,
    pub client: &'a kube::Client,
    pub policy: &'a ProjectPolicy,
    pub ignore: &'a IgnoreRules,
    /// argocd-cm's `resource.compareoptions`.
    pub compare_options: ResourceCompareOptions,
    pub health: &'a HealthChecks,
    pub server_side_diff: bool,
    /// Dry-run answers to reuse for unchanged resources (none: ask the API server for each).
    pub predictions: Option<&'a ferry_diff::Predictions>,
    pub field_manager: &'a str,
    /// Keep every resource's states in [`Comparison::states`] (on demand, for the API server:
    /// the controller's own comparisons do without them).
    pub keep_states: bool,
}

/// One resource as compared: desired and/or live.
struct Pair {
    key: ResourceKey,
    version: String,
    desired: Option<Value>,
    /// The live object, parsed from the cache once per comparison.
    live: Option<Value>,
    hook: bool,
}

/// Compares desired objects (namespaces already placed) with the live ones: pairs them up,
/// diffs each pair, assesses health, and sums it up per resource and for the app.
pub async fn compare<L: LiveState>(input: CompareInput<'_, L>) -> Comparison {
    let mut out = Comparison::default();
    let pairs = pair_up(&input, &mut out);
    let diffs = diff_all(&pairs, &input).await;
    let managed: Vec<ManagedResource<'_>> = pairs
        .iter()
        .map(|pair| ManagedResource {
            target: pair.desired.as_ref(),
            live: pair.live.as_ref(),
        })
        .collect();
    let health = ferry_health::app_health(Some(input.app), &managed, input.health);
    let mut images = BTreeSet::new();
    let mut any_out_of_sync = false;
    for ((pair, diff), resource_health) in pairs.iter().zip(diffs).zip(health.resources) {
        if let Some(live) = &pair.live {
            collect_images(live, &mut images);
        }
        if input.keep_states {
            out.states.push(states_of(pair, &diff));
        }
        let (status, requires_pruning, counts) = record_diff(pair, diff, &mut out);
        any_out_of_sync |= counts;
        out.resources.push(ResourceStatus {
            group: pair.key.group.clone(),
            version: pair.version.clone(),
            kind: pair.key.kind.clone(),
            namespace: pair.key.namespace.clone(),
            name: pair.key.name.clone(),
            status,
            health: resource_health.map(|h| HealthStatus {
                status: health_code(h.status),
                message: h.message,
                ..Default::default()
            }),
            hook: pair.hook,
            requires_pruning,
            requires_deletion_confirmation: pair.desired.iter().chain(pair.live.as_ref()).any(
                |object| {
                    ferry_sync::SyncOptionSet::default()
                        .for_resource(object)
                        .0
                        .delete_confirm
                },
            ),
            sync_wave: pair
                .desired
                .as_ref()
                .and_then(|d| ferry_sync::wave_of(d).ok())
                .unwrap_or_default()
                .into(),
            ..Default::default()
        });
    }
    out.resources.sort_by_key(ResourceStatus::key);
    out.images = images.into_iter().collect();
    out.sync = if !out.errors.is_empty() {
        SyncStatusCode::Unknown
    } else if any_out_of_sync {
        SyncStatusCode::OutOfSync
    } else {
        SyncStatusCode::Synced
    };
    out.health = HealthStatus {
        status: health_code(health.status),
        ..Default::default()
    };
    out
}

/// The desired objects with their live counterparts, then the tracked live objects no longer
/// desired (extras, or hooks of earlier syncs). Duplicates are errors; resources the project
/// does not permit are noted as forbidden.
fn pair_up<L: LiveState>(input: &CompareInput<'_, L>, out: &mut Comparison) -> Vec<Pair> {
    let mut pairs: Vec<Pair> = Vec::new();
    let mut seen = HashSet::new();
    for object in input.desired {
        let Some(key) = ResourceKey::of(object) else {
            // Hooks with generateName only: nothing to compare until they run.
            continue;
        };
        let hook = annotations::is_hook(object);
        if hook && annotations::is_skipped_hook(object) {
            continue;
        }
        if !seen.insert(key.clone()) {
            out.errors
                .push(format!("{key} appears more than once in the manifests"));
            continue;
        }
        if !input.policy.is_resource_permitted(
            &key.group,
            &key.kind,
            &key.name,
            &key.namespace,
            input.destination,
        ) {
            let scope = if key.namespace.is_empty() {
                "cluster"
            } else {
                "namespace"
            };
            out.forbidden.push(format!(
                "resource {}:{} is not permitted in project ({scope}-scoped {})",
                key.group, key.kind, key
            ));
        }
        let live = input.live.get(&key);
        if let Some(owner) = live.as_ref().and_then(|l| l.app.as_deref())
            && !hook
            && owner != input.instance
        {
            out.shared.push(format!(
                "{}/{} is part of applications {}/{} and {}",
                key.kind,
                key.name,
                input.app.namespace,
                input.app.name,
                owner.replace('_', "/")
            ));
        }
        pairs.push(Pair {
            version: version_of(object).to_string(),
            key,
            desired: (!hook).then(|| object.clone()),
            live: live
                .filter(|l| !hook || l.app.as_deref() == Some(input.instance))
                .map(|l| l.object()),
            hook,
        });
    }
    for live in input.live.tracked(input.instance) {
        if seen.contains(&live.key) {
            continue;
        }
        let object = live.object();
        pairs.push(Pair {
            key: live.key.clone(),
            version: version_of(&object).to_string(),
            hook: annotations::is_hook(&object),
            desired: None,
            live: Some(object),
        });
    }
    pairs
}

/// Each pair's diff, a few server-side dry runs at a time.
async fn diff_all<L: LiveState>(
    pairs: &[Pair],
    input: &CompareInput<'_, L>,
) -> Vec<Option<Result<DiffResult, String>>> {
    let options = diff_options(input.ignore, input.compare_options, input.field_manager);
    let resolver = Resolver(input.live);
    // Futures made up front: a closure inside the stream trips the compiler's higher-ranked
    // lifetime inference when this runs in a spawned task.
    let pending: Vec<_> = pairs
        .iter()
        .map(|pair| diff_pair(pair, input, &resolver, &options))
        .collect();
    stream::iter(pending)
        .buffered(DIFF_CONCURRENCY)
        .collect()
        .await
}

/// How a comparison diffs each resource: the ignore rules, argocd-cm's
/// `resource.compareoptions`, and the field manager a sync applies as (whose dry runs predict).
pub fn diff_options(
    ignore: &IgnoreRules,
    compare_options: ResourceCompareOptions,
    field_manager: &str,
) -> DiffOptions {
    DiffOptions {
        ignore_differences: ignore.clone(),
        field_manager: field_manager.to_string(),
        ignore_status: compare_options.ignore_status,
        ignore_aggregated_roles: compare_options.ignore_aggregated_roles,
    }
}

/// What was compared for one pair, for [`Comparison::states`].
fn states_of(pair: &Pair, diff: &Option<Result<DiffResult, String>>) -> ResourceStates {
    let result = diff.as_ref().and_then(|diff| diff.as_ref().ok());
    ResourceStates {
        key: pair.key.clone(),
        version: pair.version.clone(),
        hook: pair.hook,
        target: pair.desired.clone(),
        live: pair.live.clone(),
        normalized_live: result.and_then(|r| r.normalized_live.clone()),
        predicted_live: result.and_then(|r| r.normalized_desired.clone()),
        diff: result.map(|r| r.text.clone()).unwrap_or_default(),
    }
}

/// Records one pair's diff in `out`: its sync status (`None` for hooks), whether it is an
/// extra to prune, and whether it makes the app OutOfSync (an extra marked IgnoreExtraneous
/// does not).
fn record_diff(
    pair: &Pair,
    diff: Option<Result<DiffResult, String>>,
    out: &mut Comparison,
) -> (Option<SyncStatusCode>, bool, bool) {
    match diff {
        None => (None, false, false),
        Some(Ok(result)) => {
            let requires_pruning = result.status == SyncStatus::Extra;
            if result.status == SyncStatus::Synced {
                return (Some(SyncStatusCode::Synced), false, false);
            }
            let ignored_extra = requires_pruning
                && pair
                    .live
                    .as_ref()
                    .is_some_and(annotations::ignore_extraneous);
            out.out_of_sync.insert(pair.key.clone());
            if !result.text.is_empty() {
                out.diffs.insert(pair.key.clone(), result.text);
            }
            (
                Some(SyncStatusCode::OutOfSync),
                requires_pruning,
                !ignored_extra,
            )
        }
        Some(Err(message)) => {
            out.errors.push(message);
            (Some(SyncStatusCode::Unknown), false, false)
        }
    }
}

/// The diff of one pair; `None` for hooks, which are run rather than kept in sync.
async fn diff_pair<L: LiveState>(
    pair: &Pair,
    input: &CompareInput<'_, L>,
    resolver: &Resolver<'_, L>,
    options: &DiffOptions,
) -> Option<Result<DiffResult, String>> {
    if pair.hook {
        return None;
    }
    let mut live = pair.live.as_ref();
    let key = &pair.key;
    let with_managed_fields;
    if let Some(object) = &pair.live
        && input
            .ignore
            .needs_managed_fields(&key.group, &key.kind, &key.namespace, &key.name)
    {
        // Live states drop managedFields; rules naming field managers need them, so this one
        // object is read from the API server. Failing that, the resource is Unknown rather
        // than compared without the rule (a sync would then undo the other manager's work).
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        with_managed_fields =
            match read_with_managed_fields(input.live, input.client, api_version, key).await {
                Ok(object) => object,
                Err(err) => return Some(Err(format!("{key}: reading its managedFields: {err}"))),
            };
        live = with_managed_fields.as_ref();
    }
    let server_side = input.server_side_diff
        && pair
            .desired
            .as_ref()
            .is_none_or(|d| annotations::compare_options(d).server_side_diff != Some(false));
    let result = if server_side {
        ferry_diff::server_side_diff(
            input.client,
            resolver,
            pair.desired.as_ref(),
            live,
            options,
            input.predictions,
        )
        .await
    } else {
        ferry_diff::structural_diff(pair.desired.as_ref(), live, options)
    };
    Some(result.map_err(|err| format!("{}: {err}", pair.key)))
}

fn version_of(object: &Value) -> &str {
    ferry_types::split_api_version(object["apiVersion"].as_str().unwrap_or_default()).1
}

/// ferry-health's verdict as Argo CD's status code.
pub fn health_code(code: HealthCode) -> HealthStatusCode {
    match code {
        HealthCode::Healthy => HealthStatusCode::Healthy,
        HealthCode::Suspended => HealthStatusCode::Suspended,
        HealthCode::Progressing => HealthStatusCode::Progressing,
        HealthCode::Missing => HealthStatusCode::Missing,
        HealthCode::Degraded => HealthStatusCode::Degraded,
        HealthCode::Unknown => HealthStatusCode::Unknown,
    }
}

/// Images of the containers a workload runs (pods, pod templates, CronJob job templates).
pub fn collect_images(object: &Value, out: &mut BTreeSet<String>) {
    const POD_SPECS: [&str; 3] = [
        "/spec",
        "/spec/template/spec",
        "/spec/jobTemplate/spec/template/spec",
    ];
    for pointer in POD_SPECS {
        let Some(spec) = object.pointer(pointer) else {
            continue;
        };
        for list in ["initContainers", "containers"] {
            for container in spec[list].as_array().into_iter().flatten() {
                if let Some(image) = container["image"].as_str() {
                    out.insert(image.to_string());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn images_of_pods_templates_and_cron_jobs() {
        let mut out = BTreeSet::new();
        collect_images(
            &json!({"kind": "Deployment", "spec": {"template": {"spec": {
                "initContainers": [{"image": "busybox:1"}],
                "containers": [{"image": "nginx:1.27"}, {"image": "envoy:1"}]}}}}),
            &mut out,
        );
        collect_images(
            &json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"image": "backup:2"}]}}}}}}),
            &mut out,
        );
        collect_images(
            &json!({"kind": "Pod", "spec": {"containers": [{"image": "nginx:1.27"}]}}),
            &mut out,
        );
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            ["backup:2", "busybox:1", "envoy:1", "nginx:1.27"]
        );
    }
}
