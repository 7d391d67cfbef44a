//! `Application.status`, in Argo CD's shape so its UI, CLI and tooling read ferry's status as
//! their own. Timestamps are Kubernetes `Time` (RFC 3339, whole seconds), as Argo CD writes them.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

use super::operation::{Operation, OperationInitiator};
use super::spec::{ApplicationDestination, ManagedNamespaceMetadata, ResourceIgnoreDifferences};
use crate::ResourceKey;
use crate::object::{is_false, is_zero};
use crate::source::{ApplicationSource, SourceType, UnknownFields};

/// `status`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceStatus>,
    #[serde(default)]
    pub sync: SyncStatus,
    #[serde(default)]
    pub health: HealthStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<RevisionHistory>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ApplicationCondition>,
    /// When the application state was last compared with Git.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciled_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_state: Option<OperationState>,
    /// Deprecated by Argo CD (kept because old statuses carry it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<SourceType>,
    #[serde(default, skip_serializing_if = "ApplicationSummary::is_empty")]
    pub summary: ApplicationSummary,
    /// `appTree` when resource health lives in a separate store rather than in `resources`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_health_source: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_types: Vec<SourceType>,
    /// The namespace of the controller that manages this Application.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub controller_namespace: String,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl ApplicationStatus {
    /// The condition of this type, if present.
    pub fn condition(&self, condition_type: &str) -> Option<&ApplicationCondition> {
        self.conditions
            .iter()
            .find(|c| c.condition_type == condition_type)
    }
}

/// Whether the live state matches Git.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SyncStatusCode {
    Synced,
    OutOfSync,
    /// Also what a value from a newer Argo CD reads as, rather than failing the whole object.
    #[default]
    #[serde(other)]
    Unknown,
}

/// Argo CD's health vocabulary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HealthStatusCode {
    Progressing,
    Healthy,
    Suspended,
    Degraded,
    Missing,
    /// Also what a value from a newer Argo CD reads as, rather than failing the whole object.
    #[default]
    #[serde(other)]
    Unknown,
}

macro_rules! display_as_debug {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }
    )*};
}

display_as_debug!(
    SyncStatusCode,
    HealthStatusCode,
    OperationPhase,
    ResultCode,
    HookType,
    SyncPhase
);

/// `status.sync`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    #[serde(default)]
    pub status: SyncStatusCode,
    /// The spec the comparison was made against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compared_to: Option<ComparedTo>,
    /// The resolved commit (or chart version) of a single-source Application.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `sync.comparedTo`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComparedTo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ApplicationSource>,
    #[serde(default)]
    pub destination: ApplicationDestination,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<ApplicationSource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_differences: Vec<ResourceIgnoreDifferences>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `status.health` and `resources[].health`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatus {
    #[serde(default)]
    pub status: HealthStatusCode,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `status.resources[]`: one managed resource with its sync and health state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SyncStatusCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthStatus>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub hook: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub requires_pruning: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sync_wave: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub requires_deletion_confirmation: bool,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl ResourceStatus {
    pub fn key(&self) -> ResourceKey {
        ResourceKey::new(&self.group, &self.kind, &self.namespace, &self.name)
    }
}

/// `status.conditions[]`; `type` is one of the [`condition`](super::condition) constants.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationCondition {
    #[serde(rename = "type", default)]
    pub condition_type: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// The phase of an operation (and of a hook in `syncResult.resources[].hookPhase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OperationPhase {
    Running,
    Terminating,
    Failed,
    Error,
    Succeeded,
}

impl OperationPhase {
    pub fn is_completed(self) -> bool {
        matches!(self, Self::Failed | Self::Error | Self::Succeeded)
    }
}

/// `status.operationState`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationState {
    pub operation: Operation,
    pub phase: OperationPhase,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_result: Option<SyncOperationResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry_count: i64,
    /// ferry's own: since when the running sync has been waiting for health (the wait in
    /// progress, or the end of the last one), so a controller that resumes the operation
    /// times the wait out from there instead of from its own start.
    #[serde(
        rename = "ferryWaitingSince",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub waiting_since: Option<Time>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `operationState.syncResult`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncOperationResult {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceResult>,
    #[serde(default)]
    pub revision: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ApplicationSource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<ApplicationSource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_namespace_metadata: Option<ManagedNamespaceMetadata>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// What a sync did to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResultCode {
    Synced,
    SyncFailed,
    Pruned,
    PruneSkipped,
}

/// The `argocd.argoproj.io/hook` kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HookType {
    PreSync,
    Sync,
    PostSync,
    SyncFail,
    PreDelete,
    PostDelete,
    Skip,
}

/// The phases a sync runs through, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SyncPhase {
    PreSync,
    Sync,
    PostSync,
    SyncFail,
    PostDelete,
}

/// `syncResult.resources[]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceResult {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ResultCode>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_type: Option<HookType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_phase: Option<OperationPhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_phase: Option<SyncPhase>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl ResourceResult {
    pub fn key(&self) -> ResourceKey {
        ResourceKey::new(&self.group, &self.kind, &self.namespace, &self.name)
    }
}

/// `status.history[]`: one deployed revision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionHistory {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_at: Option<Time>,
    #[serde(default)]
    pub id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ApplicationSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_started_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<ApplicationSource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiated_by: Option<OperationInitiator>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `status.summary`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationSummary {
    #[serde(
        rename = "externalURLs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub external_urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl ApplicationSummary {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_status_values_read_as_unknown() {
        let health: HealthStatus =
            serde_json::from_str(r#"{"status": "SomethingNew", "message": "m"}"#).unwrap();
        assert_eq!(health.status, HealthStatusCode::Unknown);
        let sync: SyncStatus = serde_json::from_str(r#"{"status": "Drifting"}"#).unwrap();
        assert_eq!(sync.status, SyncStatusCode::Unknown);
        let known: SyncStatus = serde_json::from_str(r#"{"status": "OutOfSync"}"#).unwrap();
        assert_eq!(known.status, SyncStatusCode::OutOfSync);
    }
}
