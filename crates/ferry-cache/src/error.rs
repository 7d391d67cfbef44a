//! What can go wrong, with enough context to act on.

use std::time::Duration;

/// Errors of the cluster cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("invalid resource filter pattern {pattern:?}: {source}")]
    InvalidPattern {
        pattern: String,
        #[source]
        source: globset::Error,
    },
    #[error("API discovery failed: {0}")]
    Discovery(#[source] kube::Error),
    #[error("cluster cache not synced after {timeout:?}; still waiting for: {}", .pending.join("; "))]
    NotSynced {
        timeout: Duration,
        /// What has not finished its initial list, each with its last error if any.
        pending: Vec<String>,
    },
}
