//! One error type for everything the crate does, carrying which registry failed and a kind the
//! caller can branch on (the updater reports an outage differently from bad credentials).

use std::time::Duration;

/// What went wrong, coarsely; [`Error`]'s message has the details.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// `registries.conf` or a credential source specification is invalid.
    Config,
    /// Credentials could not be read from their source (Secret, environment, script).
    Credentials,
    /// The registry (or its token service) could not be reached: connection refused, DNS, TLS.
    Unreachable,
    /// 401: no credentials, or the registry or its token service rejected them.
    Unauthorized,
    /// 403: the credentials are valid but may not read this repository.
    Denied,
    /// 404: unknown repository, tag or blob.
    NotFound,
    /// 429 beyond the retries (each after the Retry-After the registry asked for).
    RateLimited,
    /// Any other unexpected answer: 5xx, a body that is not what the API defines.
    Protocol,
}

/// A failure, naming the registry (its name and API URL) when one was involved.
#[derive(Debug, thiserror::Error)]
#[error("{}{message}", registry.as_deref().map(|r| format!("registry {r}: ")).unwrap_or_default())]
pub struct Error {
    kind: ErrorKind,
    registry: Option<String>,
    message: String,
    retry_after: Option<Duration>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            registry: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, said of `registry` (`"<name> (<api_url>)"`).
    pub(crate) fn at(mut self, registry: impl Into<String>) -> Self {
        self.registry.get_or_insert_with(|| registry.into());
        self
    }

    pub(crate) fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The registry the error happened at, as `"<name> (<api_url>)"`.
    pub fn registry(&self) -> Option<&str> {
        self.registry.as_deref()
    }

    /// For [`ErrorKind::RateLimited`]: how long the registry last asked to wait.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_the_registry_once() {
        let err = Error::new(ErrorKind::NotFound, "repository app not found")
            .at("Harbor (https://harbor.example)")
            .at("another");
        assert_eq!(
            err.to_string(),
            "registry Harbor (https://harbor.example): repository app not found"
        );
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
}
