//! Keeping an Application writable. etcd refuses objects over 1.5 MiB, and the Application of
//! an app with thousands of resources lists each of them twice: in `status.resources` and in the
//! last operation's `syncResult.resources`. The second list gives way: beyond
//! [`SYNC_RESULT_BUDGET`] bytes, resources that simply synced are left out of it. Hooks,
//! failures and prunes always stay (a resumed operation relies on its hooks' results), and the
//! operation's message says how many were left out.

use ferry_types::application::{OperationState, ResourceResult, ResultCode};

/// Bytes of JSON `syncResult.resources` may take (about 1,500 resources).
pub const SYNC_RESULT_BUDGET: usize = 256 << 10;

/// Trims `state`'s result list to the budget; returns how many resources were left out.
pub fn fit_sync_result(state: &mut OperationState) -> usize {
    let Some(result) = state.sync_result.as_mut() else {
        return 0;
    };
    let size = |r: &ResourceResult| serde_json::to_vec(r).map_or(0, |bytes| bytes.len() + 1);
    let total: usize = result.resources.iter().map(size).sum();
    if total <= SYNC_RESULT_BUDGET {
        return 0;
    }
    let must_keep =
        |r: &ResourceResult| r.hook_phase.is_some() || r.status != Some(ResultCode::Synced);
    let mut room = SYNC_RESULT_BUDGET
        - result
            .resources
            .iter()
            .filter(|r| must_keep(r))
            .map(size)
            .sum::<usize>()
            .min(SYNC_RESULT_BUDGET);
    let before = result.resources.len();
    result.resources.retain(|r| {
        if must_keep(r) {
            return true;
        }
        let fits = size(r) <= room;
        if fits {
            room -= size(r);
        }
        fits
    });
    before - result.resources.len()
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
}
