//! The names of the annotations Argo CD reads on managed resources, shared by the sync engine,
//! the comparison and the health checks (the tracking ones are in [`crate::tracking`]).

/// Runs the resource as a hook of a sync phase (`PreSync`, `Sync`, `PostSync`, `SyncFail`,
/// `Skip`) instead of keeping it in sync.
pub const HOOK_ANNOTATION: &str = "argocd.argoproj.io/hook";
pub const HOOK_DELETE_POLICY_ANNOTATION: &str = "argocd.argoproj.io/hook-delete-policy";
pub const SYNC_WAVE_ANNOTATION: &str = "argocd.argoproj.io/sync-wave";
/// Per-resource sync options, comma-separated.
pub const SYNC_OPTIONS_ANNOTATION: &str = "argocd.argoproj.io/sync-options";
/// Per-app or per-resource compare options (`IgnoreExtraneous`, `ServerSideDiff=true|false`).
pub const COMPARE_OPTIONS_ANNOTATION: &str = "argocd.argoproj.io/compare-options";
/// Helm's hook annotations, which Argo CD maps onto its own.
pub const HELM_HOOK_ANNOTATION: &str = "helm.sh/hook";
pub const HELM_HOOK_WEIGHT_ANNOTATION: &str = "helm.sh/hook-weight";
pub const HELM_HOOK_DELETE_POLICY_ANNOTATION: &str = "helm.sh/hook-delete-policy";
