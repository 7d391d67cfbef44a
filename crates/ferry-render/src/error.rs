//! Render errors. Every error names the source it came from (repository and path or chart), and
//! where it applies the file and the cause, so a user can act on it without reading logs.

use std::time::Duration;

use crate::limits::{format_over, format_size};

/// A failed render of one source.
#[derive(Debug, thiserror::Error)]
#[error("{source_desc}: {kind}")]
pub struct RenderError {
    /// The source: `repoURL path P` or `repoURL chart C`.
    pub source_desc: String,
    pub kind: ErrorKind,
}

impl RenderError {
    pub fn new(source_desc: impl Into<String>, kind: ErrorKind) -> Self {
        Self {
            source_desc: source_desc.into(),
            kind,
        }
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// A path, value file, import, library or symlink would leave the repository checkout.
    #[error("{path}: {reason}")]
    Unsafe { path: String, reason: String },
    /// A file or tool output that is not a valid Kubernetes manifest stream.
    #[error("{file}: {message}")]
    Manifest { file: String, message: String },
    /// Jsonnet evaluation failed.
    #[error("{file}: jsonnet: {message}")]
    Jsonnet { file: String, message: String },
    /// The source options are invalid or contradict each other.
    #[error("{0}")]
    Invalid(String),
    /// A tool ran and failed.
    #[error("{tool} failed ({status}): {stderr}")]
    ToolFailed {
        tool: String,
        status: String,
        stderr: String,
    },
    /// A tool ran longer than allowed and was killed.
    #[error("{tool} did not finish within {timeout:?} and was killed (--tool-timeout)")]
    ToolTimeout { tool: String, timeout: Duration },
    /// A tool wrote more than allowed to stdout or stderr and was killed.
    #[error(
        "{tool} wrote more than {} to {stream} and was killed (--max-tool-output)",
        format_size(*limit)
    )]
    ToolOutputTooLarge {
        tool: String,
        /// `stdout` or `stderr`.
        stream: &'static str,
        limit: u64,
    },
    /// A tool ran out of the memory it may use and died.
    #[error(
        "{tool} ran out of memory: it may use {} (--max-tool-memory)",
        format_size(*limit)
    )]
    ToolOutOfMemory { tool: String, limit: u64 },
    /// A manifest file (or Jsonnet file or import) is larger than one file may be.
    #[error(
        "{file}: the file is {}, over the limit of {} for one manifest file (--max-manifest-file-size)",
        format_over(*size, *limit).0,
        format_over(*size, *limit).1
    )]
    ManifestFileTooLarge { file: String, size: u64, limit: u64 },
    /// The app's rendered manifests, all sources together, are larger than allowed.
    #[error(
        "rendered manifests reach {}, over the limit of {} (--max-manifest-size)",
        format_over(*size, *limit).0,
        format_over(*size, *limit).1
    )]
    ManifestsTooLarge { size: u64, limit: u64 },
    /// A repository checkout would hold more than allowed.
    #[error(
        "repository {url} at commit {sha} holds more than {} of files (--max-repo-size)",
        format_size(*limit)
    )]
    RepositoryTooLarge {
        url: String,
        sha: String,
        limit: u64,
    },
    /// A tool could not be started (missing binary, permissions).
    #[error("cannot run {tool} ({program}): {error}")]
    ToolStart {
        tool: String,
        program: String,
        error: std::io::Error,
    },
    /// Reading or preparing files failed.
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    /// Resolving or checking out the repository failed.
    #[error("git: {0}")]
    Git(String),
    /// A Helm repository or OCI registry refused or failed a chart pull.
    #[error("{server}: {reason}")]
    ChartPull { server: String, reason: String },
}

impl ErrorKind {
    pub(crate) fn io(path: impl std::fmt::Display, error: std::io::Error) -> Self {
        ErrorKind::Io {
            path: path.to_string(),
            error,
        }
    }

    pub(crate) fn unsafe_path(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ErrorKind::Unsafe {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
