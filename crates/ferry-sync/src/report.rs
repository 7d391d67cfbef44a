//! What a sync did, in Argo CD's `operationState` vocabulary (`phase`, `message`,
//! `syncResult.resources[]`), so the controller stores it in Application status as it is.

use ferry_types::application::{OperationPhase, ResourceResult};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
