//! Real-world-shaped Argo CD manifests read, checked and written back unchanged.

use ferry_types::application::{
    HealthStatusCode, HookType, OperationPhase, ResultCode, SyncPhase, SyncStatusCode, condition,
};
use ferry_types::project::SyncWindow;
use ferry_types::{AppProject, Application};
use serde::de::DeserializeOwned;
use serde_json::Value;

const MULTI_SOURCE: &str = include_str!("manifests/multi-source-helm.yaml");
const AUTOMATED: &str = include_str!("manifests/automated-retry.yaml");
const IGNORE_DIFFERENCES: &str = include_str!("manifests/ignore-differences.yaml");
const NEWER_FIELDS: &str = include_str!("manifests/newer-argo-fields.yaml");
const SYNCED_STATUS: &str = include_str!("manifests/synced-status.yaml");
const PROJECT: &str = include_str!("manifests/project-windows.yaml");

/// Reads a manifest and checks that writing it gives back the same document (Argo CD writes
/// `false` flags only sometimes, so those are left out of the comparison) and that the written
/// form reads back to an equal value.
fn round_trip<T>(yaml: &str) -> T
where
    T: DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
{
    let value: T = serde_yaml::from_str(yaml).unwrap();
    let original: Value = serde_yaml::from_str(yaml).unwrap();
    let written = serde_json::to_value(&value).unwrap();
    assert_eq!(without_false(written.clone()), without_false(original));
    let back: T = serde_json::from_value(written).unwrap();
    assert_eq!(back, value);
    let back: T = serde_yaml::from_str(&serde_yaml::to_string(&value).unwrap()).unwrap();
    assert_eq!(back, value);
    value
}

fn without_false(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| v != &Value::Bool(false))
                .map(|(k, v)| (k, without_false(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_false).collect()),
        other => other,
    }
}

#[test]
fn multi_source_with_a_values_ref() {
    let app: Application = round_trip(MULTI_SOURCE);
    assert!(app.is_multi_source());
    let sources = app.sources();
    assert_eq!(sources.len(), 2);
    assert_eq!(sources[0].chart, "podinfo");
    assert_eq!(
        sources[0].helm.as_ref().unwrap().value_files,
        ["$values/envs/prod/podinfo.yaml"]
    );
    assert_eq!(sources[1].ref_name, "values");
    assert_eq!(app.project(), "web");
    assert_eq!(app.revision_history_limit(), 5);
    assert_eq!(
        app.refresh_requested(),
        Some(ferry_types::application::RefreshType::Hard)
    );
    let policy = app.spec.sync_policy.as_ref().unwrap();
    assert!(!policy.is_automated());
    assert_eq!(
        policy.managed_namespace_metadata.as_ref().unwrap().labels["istio-injection"],
        "enabled"
    );
    assert_eq!(app.spec.info[0].name, "Runbook");
    assert!(
        app.unknown_fields().is_empty(),
        "{:?}",
        app.unknown_fields()
    );
}

#[test]
fn automated_sync_with_retry_and_a_requested_operation() {
    let app: Application = round_trip(AUTOMATED);
    let policy = app.spec.sync_policy.as_ref().unwrap();
    assert!(policy.is_automated());
    let automated = policy.automated.as_ref().unwrap();
    assert!(automated.prune && automated.self_heal && !automated.allow_empty);
    let retry = policy.retry.as_ref().unwrap();
    assert_eq!(retry.limit, 5);
    assert_eq!(retry.backoff_delay(3).unwrap().as_secs(), 40);
    assert_eq!(app.spec.destination.name, "in-cluster");

    let operation = app.operation.as_ref().unwrap();
    assert_eq!(operation.initiated_by.username, "alice");
    let sync = operation.sync.as_ref().unwrap();
    assert!(sync.prune && !sync.dry_run);
    assert!(
        sync.sync_strategy
            .as_ref()
            .unwrap()
            .hook
            .as_ref()
            .unwrap()
            .force
    );
    assert_eq!(
        sync.resources[0].key(),
        ferry_types::ResourceKey::new("apps", "Deployment", "guestbook", "guestbook-ui")
    );
    assert_eq!(
        sync.resources[1].key().to_string(),
        "/Service//guestbook-ui"
    );
    assert_eq!(operation.retry.as_ref().unwrap().limit, 2);
    assert!(
        app.unknown_fields().is_empty(),
        "{:?}",
        app.unknown_fields()
    );
}

#[test]
fn ignore_differences_with_jq_paths_and_managers() {
    let app: Application = round_trip(IGNORE_DIFFERENCES);
    let diffs = &app.spec.ignore_differences;
    assert_eq!(diffs.len(), 4);
    assert_eq!(diffs[0].json_pointers, ["/spec/replicas"]);
    assert_eq!(diffs[1].name, "ingress-nginx-admission");
    assert_eq!(diffs[1].jq_path_expressions.len(), 2);
    assert!(diffs[1].jq_path_expressions[1].contains("select(.name =="));
    assert_eq!(
        diffs[2].managed_fields_managers,
        ["kube-controller-manager"]
    );
    assert_eq!(diffs[3].group, "");
    assert_eq!(diffs[3].namespace, "ingress-nginx");
    assert!(
        app.unknown_fields().is_empty(),
        "{:?}",
        app.unknown_fields()
    );
}

#[test]
fn fields_of_newer_argo_cd_versions_are_kept_and_listed() {
    let app: Application = round_trip(NEWER_FIELDS);
    assert_eq!(
        app.unknown_fields(),
        [
            "spec.sourceHydrator",
            "spec.source.helm.valueFile",
            "spec.destination.clusterSelector",
            "spec.syncPolicy.automated.waitForHealthy",
            "operation.sync.hydrate",
        ]
    );
    assert_eq!(
        app.spec.unknown["sourceHydrator"]["syncSource"]["targetBranch"],
        "environments/dev"
    );
}

#[test]
fn a_status_written_by_argo_cd_reads_and_writes_back() {
    let app: Application = round_trip(SYNCED_STATUS);
    let status = app.status.as_ref().unwrap();
    assert_eq!(status.sync.status, SyncStatusCode::Synced);
    assert_eq!(status.health.status, HealthStatusCode::Healthy);
    assert_eq!(
        status.reconciled_at.as_ref().unwrap().0.to_string(),
        "2024-05-10T12:03:11Z"
    );
    assert_eq!(
        status
            .sync
            .compared_to
            .as_ref()
            .unwrap()
            .destination
            .namespace,
        "guestbook"
    );
    let deploy = &status.resources[1];
    assert_eq!(
        deploy.health.as_ref().unwrap().status,
        HealthStatusCode::Progressing
    );
    assert_eq!(deploy.sync_wave, 1);
    assert!(status.resources[2].hook && status.resources[2].requires_pruning);
    assert_eq!(
        status
            .condition(condition::ORPHANED_RESOURCE_WARNING)
            .unwrap()
            .message,
        "Application has 1 orphaned resources"
    );
    assert_eq!(
        status.history[0].initiated_by.as_ref().unwrap().username,
        "admin"
    );

    let state = status.operation_state.as_ref().unwrap();
    assert_eq!(state.phase, OperationPhase::Succeeded);
    assert!(state.phase.is_completed());
    let results = &state.sync_result.as_ref().unwrap().resources;
    assert_eq!(results[0].hook_type, Some(HookType::PreSync));
    assert_eq!(results[0].sync_phase, Some(SyncPhase::PreSync));
    assert_eq!(results[1].hook_phase, Some(OperationPhase::Running));
    assert_eq!(results[2].status, Some(ResultCode::Pruned));
    assert_eq!(
        results[2].key().to_string(),
        "apps/Deployment/guestbook/old-ui"
    );
}

#[test]
fn a_project_with_windows_roles_and_lists() {
    let project: AppProject = round_trip(PROJECT);
    assert!(
        project.unknown_fields().is_empty(),
        "{:?}",
        project.unknown_fields()
    );
    let spec = &project.spec;
    assert_eq!(spec.roles[0].jwt_tokens[0].iat, 1_715_342_400);
    assert_eq!(spec.signature_keys[0].key_id, "4AEE18F83AFDEB23");
    assert_eq!(
        project.status.as_ref().unwrap().jwt_tokens_by_role["deployer"].items[0].id,
        "5e8a2a1c-ci"
    );
    assert!(spec.orphaned_resources.as_ref().unwrap().is_warn());
    assert!(spec.sync_windows.iter().all(|w| w.validate().is_ok()));
    assert!(spec.sync_windows[1].and_operator && spec.sync_windows[2].sync_overrun);

    let policy = project.policy().unwrap();
    assert!(policy.is_source_permitted("https://git.example.com/web/shop.git"));
    assert!(!policy.is_source_permitted("https://git.example.com/web/legacy-shop"));
    assert!(policy.is_source_permitted("https://stefanprodan.github.io/podinfo"));
    assert!(policy.is_group_kind_permitted("", "Namespace", false));
    assert!(!policy.is_group_kind_permitted("rbac.authorization.k8s.io", "ClusterRole", false));
    assert!(!policy.is_group_kind_permitted("networking.k8s.io", "NetworkPolicy", true));
    assert!(policy.is_app_namespace_permitted("web-apps", "argocd"));

    // The podinfo Application above belongs to this project and is permitted (every source,
    // the `ref` one included, must be).
    let app: Application = serde_yaml::from_str(MULTI_SOURCE).unwrap();
    assert!(
        app.sources()
            .iter()
            .all(|s| policy.is_source_permitted(&s.repo_url))
    );
    assert!(policy.is_destination_permitted(&app.spec.destination));
    let mut kube_system = app.spec.destination.clone();
    kube_system.namespace = "kube-system".into();
    assert!(!policy.is_destination_permitted(&kube_system));

    // On a Tuesday at 10:00 in Berlin the allow window is open; at 20:00 it is closed, but
    // manual syncs are allowed there.
    let windows = project.sync_windows(&app).unwrap();
    let matched: Vec<&SyncWindow> = windows.all().collect();
    assert_eq!(
        matched.len(),
        1,
        "only the allow window applies to podinfo-prod"
    );
    assert!(windows.can_sync("2024-05-14T08:00:00Z".parse().unwrap(), false));
    assert!(!windows.can_sync("2024-05-14T18:00:00Z".parse().unwrap(), false));
    assert!(windows.can_sync("2024-05-14T18:00:00Z".parse().unwrap(), true));
}
