//! Errors of a comparison. Messages name the resource and the cause, never a secret value.

use std::time::Duration;

/// Why a desired/live pair could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// The object is malformed (missing identity fields, mismatched pair, bad Secret data, ...).
    #[error("{resource}: {reason}")]
    InvalidObject { resource: String, reason: String },

    /// An ignoreDifferences rule does not compile (bad JSON pointer, jq syntax, glob).
    #[error("ignoreDifferences rule for {rule}: {reason}")]
    InvalidIgnoreRule { rule: String, reason: String },

    /// A jqPathExpressions entry ran longer than allowed.
    #[error("{resource}: jq path expression `{expression}` did not finish within {timeout:?}")]
    JqTimeout {
        resource: String,
        expression: String,
        timeout: Duration,
    },

    /// The API server does not serve this apiVersion/kind.
    #[error("{resource}: the server does not serve {api_version} {kind}")]
    UnknownKind {
        resource: String,
        api_version: String,
        kind: String,
    },

    /// The server-side apply dry-run was rejected (validation, admission, conflicts, ...).
    #[error("{resource}: server-side dry-run failed: {source}")]
    DryRun {
        resource: String,
        #[source]
        source: kube::Error,
    },

    /// Rendering the objects as YAML for the text diff failed.
    #[error("{resource}: cannot render YAML: {source}")]
    Render {
        resource: String,
        #[source]
        source: serde_yaml::Error,
    },
}
