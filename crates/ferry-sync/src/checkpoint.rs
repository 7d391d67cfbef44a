//! What makes a sync's hooks exactly-once across a controller that can die at any moment.
//!
//! - Every hook a run creates carries [`HOOK_RUN_LABEL`] with the run's identity and the hook's
//!   phase, so a resumed run finds (adopts) a hook it created but never got to record, instead
//!   of creating it again.
//! - Before a hook is deleted after it finished (its delete policy), its result is saved through
//!   a [`Checkpoint`]: a resumed run then knows it finished, rather than waiting for a hook that
//!   is gone.

use tokio::sync::{mpsc, oneshot};

use crate::report::SyncReport;
use ferry_types::application::SyncPhase;

/// The label of a hook naming the run (and phase) that created it.
pub const HOOK_RUN_LABEL: &str = "sync.ferry.dev/run";

/// The [`HOOK_RUN_LABEL`] value of hooks of `phase` created by the run `run_id`.
pub fn hook_run_value(run_id: &str, phase: SyncPhase) -> String {
    format!("{run_id}-{}", format!("{phase:?}").to_lowercase())
}

/// Saves a report where a resumed run will read it (the Application's `operationState`),
/// synchronously: the engine waits for the answer before an irreversible step.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    requests: mpsc::Sender<(SyncReport, oneshot::Sender<bool>)>,
}

/// What the owner of the operation's state receives: a report to save, and where to say
/// whether it was saved.
pub type CheckpointRequest = (SyncReport, oneshot::Sender<bool>);

impl Checkpoint {
    /// A checkpoint and the requests its owner must answer.
    pub fn new() -> (Self, mpsc::Receiver<CheckpointRequest>) {
        let (requests, receiver) = mpsc::channel(1);
        (Self { requests }, receiver)
    }

    /// Whether `report` was saved; false when nobody answered or the save failed.
    pub async fn save(&self, report: SyncReport) -> bool {
        let (answer, answered) = oneshot::channel();
        if self.requests.send((report, answer)).await.is_err() {
            return false;
        }
        answered.await.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_labels_are_valid_label_values_per_phase() {
        let value = hook_run_value("0123456789abcdef", SyncPhase::PreSync);
        assert_eq!(value, "0123456789abcdef-presync");
        assert_ne!(
            value,
            hook_run_value("0123456789abcdef", SyncPhase::PostSync)
        );
        assert!(value.len() <= 63);
    }

    #[tokio::test]
    async fn a_save_waits_for_its_answer() {
        let (checkpoint, mut requests) = Checkpoint::new();
        let owner = tokio::spawn(async move {
            let (report, answer) = requests.recv().await.unwrap();
            answer.send(report.message == "keep").unwrap();
        });
        let mut report = SyncReport::running();
        report.message = "keep".into();
        assert!(checkpoint.save(report).await);
        owner.await.unwrap();
        // Nobody listening: not saved.
        let (checkpoint, requests) = Checkpoint::new();
        drop(requests);
        assert!(!checkpoint.save(SyncReport::running()).await);
    }
}
