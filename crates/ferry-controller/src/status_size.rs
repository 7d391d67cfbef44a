//! Keeping an Application writable. etcd refuses objects over 1.5 MiB, and the Application of
//! an app with thousands of resources lists each of them twice: in `status.resources` and in the
//! last operation's `syncResult.resources`. Both lists give way, each to a byte budget:
//!
//! - `syncResult.resources` ([`SYNC_RESULT_BUDGET`]) leaves out resources that simply synced.
//!   Hooks, failures and prunes always stay (a resumed operation relies on its hooks'
//!   results), and the operation's message says how many were left out.
//! - `status.resources` ([`DEFAULT_RESOURCES_BUDGET`], `--max-status-resources-size`) leaves
//!   out resources that are Synced and Healthy (or have no health): what needs attention
//!   (out of sync, to prune, unhealthy) always stays, and a `ResourcesTruncatedWarning`
//!   condition says how many were left out and why. Argo CD, in the same place, keeps per-resource
//!   health out of the status and falls back to a bare error condition once etcd refuses it.

use ferry_types::application::{
    HealthStatusCode, OperationState, ResourceResult, ResourceStatus, ResultCode, SyncStatusCode,
};
use serde::Serialize;

/// Bytes of JSON `syncResult.resources` may take (about 1,500 resources).
pub const SYNC_RESULT_BUDGET: usize = 256 << 10;

/// Bytes of JSON `status.resources` may take unless configured (about 6,000 ConfigMaps with
/// short names): with the sync result's budget, an Application stays far below etcd's limit.
pub const DEFAULT_RESOURCES_BUDGET: usize = 512 << 10;

/// Keeps what `must_keep` says, then the others in order while they fit in `budget` bytes of
/// JSON; returns how many were left out. Nothing is left out of a list that fits.
fn fit<T: Serialize>(items: &mut Vec<T>, budget: usize, must_keep: impl Fn(&T) -> bool) -> usize {
    let size = |item: &T| serde_json::to_vec(item).map_or(0, |bytes| bytes.len() + 1);
    let total: usize = items.iter().map(size).sum();
    if total <= budget {
        return 0;
    }
    let kept: usize = items.iter().filter(|i| must_keep(i)).map(size).sum();
    let mut room = budget.saturating_sub(kept);
    let before = items.len();
    items.retain(|item| {
        if must_keep(item) {
            return true;
        }
        let fits = size(item) <= room;
        if fits {
            room -= size(item);
        }
        fits
    });
    before - items.len()
}

/// Trims `state`'s result list to the budget; returns how many resources were left out.
pub fn fit_sync_result(state: &mut OperationState) -> usize {
    let Some(result) = state.sync_result.as_mut() else {
        return 0;
    };
    fit(
        &mut result.resources,
        SYNC_RESULT_BUDGET,
        |r: &ResourceResult| r.hook_phase.is_some() || r.status != Some(ResultCode::Synced),
    )
}

/// The operation's message, saying that `left_out` synced resources are not listed.
pub fn with_left_out(message: &str, left_out: usize) -> String {
    if left_out == 0 {
        return message.to_string();
    }
    format!(
        "{message} ({left_out} synced resources are not listed: the list would not fit in the \
         Application)"
    )
}

/// Trims `status.resources` to `budget` bytes of JSON, keeping every resource that needs
/// attention; returns the condition message saying what was left out, if anything was.
pub fn fit_resources(resources: &mut Vec<ResourceStatus>, budget: usize) -> Option<String> {
    let total = resources.len();
    let left_out = fit(resources, budget, |r: &ResourceStatus| {
        r.status != Some(SyncStatusCode::Synced)
            || r.requires_pruning
            || r.health
                .as_ref()
                .is_some_and(|h| h.status != HealthStatusCode::Healthy)
    });
    (left_out > 0).then(|| {
        format!(
            "status.resources lists {} of the application's {total} resources: {left_out} that \
             are Synced and Healthy are left out to keep the Application under etcd's object \
             size limit (the list may take {} KiB; --max-status-resources-size). The resource \
             tree still shows all of them",
            total - left_out,
            budget >> 10
        )
    })
}

#[cfg(test)]
mod tests {
    use ferry_types::application::{OperationPhase, SyncOperationResult, SyncPhase};

    use super::*;

    fn result(name: &str, status: ResultCode, hook: bool) -> ResourceResult {
        ResourceResult {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: "big".into(),
            name: name.into(),
            status: Some(status),
            message: format!("configmap/{name} created"),
            hook_phase: hook.then_some(OperationPhase::Succeeded),
            sync_phase: Some(SyncPhase::Sync),
            ..Default::default()
        }
    }

    fn state(resources: Vec<ResourceResult>) -> OperationState {
        OperationState {
            sync_result: Some(SyncOperationResult {
                resources,
                ..Default::default()
            }),
            ..serde_json::from_value(serde_json::json!({"operation": {}, "phase": "Succeeded"}))
                .unwrap()
        }
    }

    #[test]
    fn a_small_result_is_left_alone() {
        let mut small = state(
            (0..100)
                .map(|i| result(&format!("cm-{i}"), ResultCode::Synced, false))
                .collect(),
        );
        assert_eq!(fit_sync_result(&mut small), 0);
        assert_eq!(small.sync_result.unwrap().resources.len(), 100);
    }

    #[test]
    fn thousands_of_synced_resources_give_way_to_hooks_and_failures() {
        let mut resources: Vec<ResourceResult> = (0..5000)
            .map(|i| result(&format!("cm-{i:05}"), ResultCode::Synced, false))
            .collect();
        resources[10] = result("migrate", ResultCode::Synced, true);
        resources[4000] = result("broken", ResultCode::SyncFailed, false);
        resources[4999] = result("gone", ResultCode::Pruned, false);
        let mut big = state(resources);
        let left_out = fit_sync_result(&mut big);
        let kept = big.sync_result.unwrap().resources;
        assert_eq!(kept.len() + left_out, 5000);
        assert!(left_out > 3000, "{left_out}");
        let bytes = serde_json::to_vec(&kept).unwrap().len();
        assert!(bytes <= SYNC_RESULT_BUDGET, "{bytes}");
        for name in ["migrate", "broken", "gone", "cm-00000"] {
            assert!(kept.iter().any(|r| r.name == name), "{name} was left out");
        }
        assert_eq!(
            with_left_out("successfully synced", left_out),
            format!(
                "successfully synced ({left_out} synced resources are not listed: the list \
                 would not fit in the Application)"
            )
        );
    }

    #[test]
    fn thousands_of_healthy_resources_give_way_to_what_needs_attention() {
        let resource =
            |name: &str, sync: SyncStatusCode, health: Option<HealthStatusCode>| ResourceStatus {
                version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: "big".into(),
                name: name.into(),
                status: Some(sync),
                health: health.map(|status| ferry_types::application::HealthStatus {
                    status,
                    ..Default::default()
                }),
                ..Default::default()
            };
        let mut resources: Vec<ResourceStatus> = (0..5000)
            .map(|i| resource(&format!("cm-{i:05}"), SyncStatusCode::Synced, None))
            .collect();
        resources[7] = resource("drifted", SyncStatusCode::OutOfSync, None);
        resources[4000] = resource(
            "sick",
            SyncStatusCode::Synced,
            Some(HealthStatusCode::Degraded),
        );
        resources[4999].requires_pruning = true;
        let mut small = resources[..100].to_vec();
        assert_eq!(fit_resources(&mut small, 64 << 10), None);
        assert_eq!(small.len(), 100);

        let budget = 64 << 10;
        let message = fit_resources(&mut resources, budget).expect("trimmed");
        let bytes = serde_json::to_vec(&resources).unwrap().len();
        assert!(bytes <= budget, "{bytes}");
        for name in ["drifted", "sick", "cm-04999", "cm-00000"] {
            assert!(resources.iter().any(|r| r.name == name), "{name} left out");
        }
        let left_out = 5000 - resources.len();
        assert!(
            message.starts_with(&format!(
                "status.resources lists {} of the application's 5000 resources: {left_out} that \
                 are Synced and Healthy are left out",
                resources.len()
            )),
            "{message}"
        );
    }
}
