//! Hooks: resources run at a sync phase rather than kept in sync, from Argo CD's annotations or
//! Helm's (mapped as Argo CD maps them).

use ferry_types::application::{HookType, SyncPhase};
use serde_json::Value;

use crate::options::annotation;

pub use ferry_types::annotations::{
    HELM_HOOK_ANNOTATION, HELM_HOOK_DELETE_POLICY_ANNOTATION, HELM_HOOK_WEIGHT_ANNOTATION,
    HOOK_ANNOTATION, HOOK_DELETE_POLICY_ANNOTATION, SYNC_WAVE_ANNOTATION,
};

/// The phase a hook of this type runs in; `None` for hooks that do not run during a sync
/// (`Skip`, and `PreDelete` and `PostDelete`, which run when the application is deleted).
pub fn phase_of(hook: HookType) -> Option<SyncPhase> {
    match hook {
        HookType::PreSync => Some(SyncPhase::PreSync),
        HookType::Sync => Some(SyncPhase::Sync),
        HookType::PostSync => Some(SyncPhase::PostSync),
        HookType::SyncFail => Some(SyncPhase::SyncFail),
        HookType::PreDelete | HookType::PostDelete | HookType::Skip => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeletePolicy {
    BeforeHookCreation,
    HookSucceeded,
    HookFailed,
}

/// A resource's hook declaration. `types` is empty for ordinary resources.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hook {
    pub types: Vec<HookType>,
    pub delete_policies: Vec<DeletePolicy>,
    /// Helm hooks that Argo CD does not run (pre-delete, test, ...): the resource is left out.
    pub unsupported_helm_hook: bool,
}

impl Hook {
    pub fn of(obj: &Value) -> Hook {
        let mut hook = Hook::default();
        if let Some(value) = annotation(obj, HOOK_ANNOTATION) {
            hook.types = list(value)
                .filter_map(|t| match t {
                    "PreSync" => Some(HookType::PreSync),
                    "Sync" => Some(HookType::Sync),
                    "PostSync" => Some(HookType::PostSync),
                    "SyncFail" => Some(HookType::SyncFail),
                    "PreDelete" => Some(HookType::PreDelete),
                    "PostDelete" => Some(HookType::PostDelete),
                    "Skip" => Some(HookType::Skip),
                    _ => None,
                })
                .collect();
        } else if let Some(value) = annotation(obj, HELM_HOOK_ANNOTATION) {
            let mut supported = false;
            for t in list(value) {
                let mapped = match t {
                    "crd-install" | "pre-install" | "pre-upgrade" => Some(HookType::PreSync),
                    "post-install" | "post-upgrade" => Some(HookType::PostSync),
                    "pre-delete" => Some(HookType::PreDelete),
                    "post-delete" => Some(HookType::PostDelete),
                    _ => None,
                };
                if let Some(mapped) = mapped {
                    supported = true;
                    if !hook.types.contains(&mapped) {
                        hook.types.push(mapped);
                    }
                }
            }
            hook.unsupported_helm_hook = !supported;
        }

        let policies = annotation(obj, HOOK_DELETE_POLICY_ANNOTATION)
            .or_else(|| annotation(obj, HELM_HOOK_DELETE_POLICY_ANNOTATION));
        if let Some(value) = policies {
            hook.delete_policies = list(value)
                .filter_map(|p| match p {
                    "BeforeHookCreation" | "before-hook-creation" => {
                        Some(DeletePolicy::BeforeHookCreation)
                    }
                    "HookSucceeded" | "hook-succeeded" => Some(DeletePolicy::HookSucceeded),
                    "HookFailed" | "hook-failed" => Some(DeletePolicy::HookFailed),
                    _ => None,
                })
                .collect();
        }
        // Argo CD's default when a hook names no policy.
        if hook.is_hook() && hook.delete_policies.is_empty() {
            hook.delete_policies.push(DeletePolicy::BeforeHookCreation);
        }
        hook
    }

    /// Hooks are run, not kept in sync, and never pruned.
    pub fn is_hook(&self) -> bool {
        !self.types.is_empty() || self.unsupported_helm_hook
    }

    pub fn skipped(&self) -> bool {
        self.unsupported_helm_hook || self.types.contains(&HookType::Skip)
    }

    pub fn has_policy(&self, policy: DeletePolicy) -> bool {
        self.delete_policies.contains(&policy)
    }
}

/// The sync wave: `argocd.argoproj.io/sync-wave`, else a Helm hook's weight, else 0.
pub fn wave_of(obj: &Value) -> Result<i32, String> {
    let Some(value) = annotation(obj, SYNC_WAVE_ANNOTATION)
        .or_else(|| annotation(obj, HELM_HOOK_WEIGHT_ANNOTATION))
    else {
        return Ok(0);
    };
    value
        .trim()
        .parse()
        .map_err(|_| format!("sync wave {value:?} is not an integer"))
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with(annotations: Value) -> Value {
        json!({"metadata": {"annotations": annotations}})
    }

    #[test]
    fn argo_hooks_and_default_policy() {
        let hook = Hook::of(&with(json!({HOOK_ANNOTATION: "PreSync,PostSync"})));
        assert_eq!(hook.types, vec![HookType::PreSync, HookType::PostSync]);
        assert_eq!(hook.delete_policies, vec![DeletePolicy::BeforeHookCreation]);
        assert!(!Hook::of(&json!({"metadata": {}})).is_hook());
    }

    #[test]
    fn helm_hooks_map_like_argo() {
        let hook = Hook::of(&with(json!({
            HELM_HOOK_ANNOTATION: "pre-install,pre-upgrade",
            HELM_HOOK_DELETE_POLICY_ANNOTATION: "hook-succeeded",
        })));
        assert_eq!(hook.types, vec![HookType::PreSync]);
        assert_eq!(hook.delete_policies, vec![DeletePolicy::HookSucceeded]);

        // Helm's delete hooks run when the application is deleted, as Argo CD runs them.
        let delete_hooks = Hook::of(&with(
            json!({HELM_HOOK_ANNOTATION: "pre-delete,post-delete"}),
        ));
        assert_eq!(
            delete_hooks.types,
            vec![HookType::PreDelete, HookType::PostDelete]
        );
        assert!(delete_hooks.is_hook() && !delete_hooks.skipped());
        assert_eq!(phase_of(HookType::PreDelete), None);

        let test_hook = Hook::of(&with(json!({HELM_HOOK_ANNOTATION: "test"})));
        assert!(test_hook.is_hook() && test_hook.skipped());

        // Argo CD's own annotation wins over Helm's.
        let both = Hook::of(&with(
            json!({HOOK_ANNOTATION: "Sync", HELM_HOOK_ANNOTATION: "post-install"}),
        ));
        assert_eq!(both.types, vec![HookType::Sync]);
    }

    #[test]
    fn waves() {
        assert_eq!(wave_of(&with(json!({SYNC_WAVE_ANNOTATION: "-2"}))), Ok(-2));
        assert_eq!(
            wave_of(&with(json!({HELM_HOOK_WEIGHT_ANNOTATION: "5"}))),
            Ok(5)
        );
        assert_eq!(wave_of(&json!({})), Ok(0));
        assert!(wave_of(&with(json!({SYNC_WAVE_ANNOTATION: "soon"}))).is_err());
    }
}
