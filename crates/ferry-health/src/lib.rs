//! Health assessment of Kubernetes objects, built-in and Lua scripts.
//!
//! Semantics follow Argo CD and its gitops-engine: six health codes ordered from healthy to
//! worst, built-in checks for the workload and networking kinds and for the popular CRDs whose
//! health scripts Argo CD bundles (cert-manager, Argo Rollouts, External Secrets, Sealed
//! Secrets, Flux, KEDA, Strimzi), custom Lua scripts with Argo CD's contract (configured per
//! group/kind, winning over built-ins), and an application's health as the worst of its
//! resources'.
//!
//! ```
//! use ferry_health::{HealthChecks, HealthCode, assess};
//!
//! let pvc = serde_json::json!({
//!     "apiVersion": "v1", "kind": "PersistentVolumeClaim",
//!     "metadata": {"name": "data"}, "status": {"phase": "Pending"}
//! });
//! let health = assess(&pvc, &HealthChecks::new()).unwrap();
//! assert_eq!(health.status, HealthCode::Progressing);
//! ```

mod actions;
mod app;
mod builtin;
mod checks;
mod lua;
mod object;
mod status;

use ferry_types::GroupKindRef;
use serde_json::Value;

pub use actions::{ActionError, ActionParam, Impact, ResourceAction, ResourceActions};
pub use app::{AppHealth, AppRef, ManagedResource, app_health};
pub use checks::{ConfigError, HealthChecks};
pub use lua::{LuaLimits, LuaScript};
pub use status::{HealthCode, HealthStatus, UnknownHealthCode, worst};

/// Finalizer sync hooks carry while Argo CD still needs them; such a hook being deleted is
/// still assessed normally.
const HOOK_FINALIZER: &str = "argocd.argoproj.io/hook-finalizer";

/// The health of a live object, or `None` for kinds without a built-in check or script
/// (Argo CD shows no health for those).
///
/// An object being deleted is `Progressing` ("Pending deletion"). A check that cannot read the
/// object, or a failing script, gives `Unknown` with a message naming the object or script and
/// the cause.
pub fn assess(obj: &Value, checks: &HealthChecks) -> Option<HealthStatus> {
    let Some(gk) = GroupKindRef::of(obj) else {
        return Some(HealthStatus::unknown(
            "object has no apiVersion and kind, so its health cannot be assessed",
        ));
    };
    let metadata = obj.get("metadata");
    let being_deleted = metadata
        .and_then(|m| m.get("deletionTimestamp"))
        .is_some_and(|t| !t.is_null());
    let hook_finalizer = metadata
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|f| f.as_str() == Some(HOOK_FINALIZER)));
    if being_deleted && !hook_finalizer {
        return Some(HealthStatus::progressing("Pending deletion"));
    }
    if let Some(script) = checks.script_for(gk) {
        return Some(script.assess(obj, checks.limits()));
    }
    let check = builtin::check_for(gk)?;
    Some(check(obj).unwrap_or_else(|cause| {
        let name = metadata
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        HealthStatus::unknown(format!("cannot read {} {name:?}: {cause}", gk.kind))
    }))
}
