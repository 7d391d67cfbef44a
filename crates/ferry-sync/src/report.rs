//! What a sync did, in Argo CD's `operationState` vocabulary (`phase`, `message`,
//! `syncResult.resources[]`), so the controller stores it in Application status as it is.

use std::time::SystemTime;

use ferry_types::application::{OperationPhase, ResourceResult};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    pub phase: OperationPhase,
    pub message: String,
    pub resources: Vec<ResourceResult>,
    /// Since when the sync has been waiting for health: the start of the wait in progress, or
    /// the end of the last one. Saved with the report, it is where a resumed run's first wait
    /// counts its timeout from ([`crate::SyncRequest::waiting_since`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_since: Option<SystemTime>,
}

impl SyncReport {
    pub fn running() -> Self {
        Self {
            phase: OperationPhase::Running,
            message: String::new(),
            resources: Vec::new(),
            waiting_since: None,
        }
    }
}
