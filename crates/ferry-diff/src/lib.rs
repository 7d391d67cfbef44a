//! Desired-vs-live comparison: normalization, ignoreDifferences, masking, text diff.
//!
//! Semantics follow Argo CD's gitops-engine. [`server_side_diff`] (the default) lets the API
//! server predict the applied object with a server-side apply dry-run; [`structural_diff`]
//! predicts it offline. Either way the prediction and the live object are then normalized
//! (server-owned metadata, `status` as [`IgnoreStatus`] says, empty-vs-absent, Secret `stringData`), the
//! [`IgnoreRules`] are applied to both, and Secret values are masked in every output.

mod compare;
mod error;
mod ignore;
pub mod jq;
mod jq_paths;
mod managed_fields;
mod mask;
mod merge;
mod normalize;
mod object;
mod path;
mod predictions;
mod quantity;
mod respect;
mod server_side;
mod structural;
mod text;
mod worker;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use error::DiffError;
pub use ignore::{DEFAULT_JQ_TIMEOUT, IgnoreRules, ResourceIgnoreDifferences};
pub use mask::mask_secrets;
pub use predictions::{Applying, PredictionStats, Predictions};
pub use respect::respect_ignore_differences;
pub use server_side::{ResourceResolver, server_side_diff};
pub use structural::structural_diff;

/// The field manager ferry applies as; a server-side diff must dry-run as the same manager
/// the sync applies with, or the prediction of removed fields is wrong.
pub const DEFAULT_FIELD_MANAGER: &str = "ferry-controller";

/// How to compare.
#[derive(Clone, Debug)]
pub struct DiffOptions {
    /// Fields excluded from the comparison (app-level and system-wide rules together).
    pub ignore_differences: IgnoreRules,
    /// Field manager for the server-side apply dry-run.
    pub field_manager: String,
    /// Whose `status` is left out (argocd-cm `resource.compareoptions`).
    pub ignore_status: IgnoreStatus,
    /// Leave out the `rules` of ClusterRoles with an `aggregationRule`: the cluster's
    /// aggregation controller writes them, not the manifest (argocd-cm
    /// `resource.compareoptions`).
    pub ignore_aggregated_roles: bool,
}

impl Default for DiffOptions {
    fn default() -> Self {
        Self {
            ignore_differences: IgnoreRules::default(),
            field_manager: DEFAULT_FIELD_MANAGER.to_owned(),
            ignore_status: IgnoreStatus::default(),
            ignore_aggregated_roles: false,
        }
    }
}

/// Which resources' `status` field the comparison leaves out (Argo CD's
/// `ignoreResourceStatusField`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IgnoreStatus {
    /// Every kind's (Argo CD's default).
    #[default]
    All,
    /// CustomResourceDefinitions' only.
    Crds,
    /// No kind's: `status` counts like any other field.
    Never,
}

/// Comparison outcome of one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncStatus {
    Synced,
    OutOfSync,
    /// Desired, not live: to create.
    Missing,
    /// Live and tracked to the app, not desired: to prune.
    Extra,
}

/// The comparison of one resource. Secret values are masked in every field.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffResult {
    pub status: SyncStatus,
    /// RFC 6902 patch turning `normalized_live` into `normalized_desired`.
    pub patch: json_patch::Patch,
    /// Unified diff of the normalized objects as YAML (`--- live <resource>`,
    /// `+++ desired <resource>`); empty when they are equal.
    pub text: String,
    /// The live object as compared; `None` when it does not exist.
    pub normalized_live: Option<Value>,
    /// The desired object as it would be once applied; `None` for an extra resource.
    pub normalized_desired: Option<Value>,
}
