//! What can go wrong, with enough context to act on.

use std::time::Duration;

/// Errors of the tracking helpers.
#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    #[error("cannot track an object for an empty app name")]
    EmptyAppName,
    #[error(
        "cannot track {object}: app instance name {value:?} is longer than the 63 characters a \
         label value allows (annotation tracking has no such limit)"
    )]
    LabelTooLong { object: String, value: String },
    #[error("cannot track {object}: {field} is missing or empty")]
    MissingField { object: String, field: String },
    #[error("cannot track {object}: {field} is not a map")]
    NotAMap { object: String, field: String },
    #[error("invalid tracking id {0:?}: expected <app>:<group>/<kind>:<namespace>/<name>")]
    InvalidTrackingId(String),
}

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
