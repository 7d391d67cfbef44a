//! Sync engine: phases, waves, hooks, apply and prune.
//!
//! Given the desired objects of an application and the live objects tracked to it, [`Engine`]
//! builds sync tasks, orders them (phase, wave, kind, name), dry-runs them on the server, applies
//! them wave by wave (waiting for health in between), prunes extras behind a guard, and reports a
//! per-resource result in Argo CD's shape.

mod checkpoint;
mod desired;
mod engine;
mod guard;
mod hooks;
mod merge;
mod options;
mod report;
mod tasks;

pub use checkpoint::{Checkpoint, CheckpointRequest, HOOK_RUN_LABEL, hook_run_value};
pub use desired::{crd_scope, settle_namespace};
pub use engine::{Engine, EngineSettings, OnApplied, PruneConfirmation, SyncRequest};
pub use guard::PruneGuard;
pub use hooks::{
    DeletePolicy, HOOK_ANNOTATION, HOOK_DELETE_POLICY_ANNOTATION, Hook, SYNC_WAVE_ANNOTATION,
    phase_of, wave_of,
};
pub use options::{Propagation, SYNC_OPTIONS_ANNOTATION, SyncOptionSet, UnknownOption};
pub use report::SyncReport;
