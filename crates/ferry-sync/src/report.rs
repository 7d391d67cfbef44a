//! What a sync did, shaped like Argo CD's `operationState` (`phase`, `message`,
//! `syncResult.resources[]`) so the controller can store it in Application status as it is.

use serde::{Deserialize, Serialize};

use crate::hooks::{HookType, SyncPhase};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperationPhase {
    Running,
    Terminating,
    Failed,
    Error,
    Succeeded,
}

impl OperationPhase {
    pub fn completed(self) -> bool {
        matches!(
            self,
            OperationPhase::Failed | OperationPhase::Error | OperationPhase::Succeeded
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResultCode {
    Synced,
    SyncFailed,
    Pruned,
    PruneSkipped,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceResult {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub status: ResultCode,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_type: Option<HookType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_phase: Option<OperationPhase>,
    pub sync_phase: SyncPhase,
    #[serde(default)]
    pub wave: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    pub phase: OperationPhase,
    pub message: String,
    pub resources: Vec<ResourceResult>,
}

impl SyncReport {
    pub fn running() -> Self {
        Self {
            phase: OperationPhase::Running,
            message: String::new(),
            resources: Vec::new(),
        }
    }
}
