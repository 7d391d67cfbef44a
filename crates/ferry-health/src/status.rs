//! Health codes, assessment results and the order used to aggregate them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A health code, as Argo CD reports it.
///
/// The variants are declared from healthiest to worst, in the order gitops-engine uses to
/// aggregate (`healthOrder`): `Healthy < Suspended < Progressing < Missing < Degraded < Unknown`.
/// `Ord` follows that order, so the worst of several codes is their `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HealthCode {
    /// The resource is fully healthy.
    Healthy,
    /// The resource is paused or suspended on purpose (a paused Deployment, a suspended CronJob).
    Suspended,
    /// Not healthy yet, but still able to become healthy.
    Progressing,
    /// The resource is expected but absent from the cluster.
    Missing,
    /// The resource failed or cannot become healthy without intervention.
    Degraded,
    /// The assessment itself failed.
    Unknown,
}

impl HealthCode {
    /// All codes, healthiest first.
    pub const ALL: [HealthCode; 6] = [
        HealthCode::Healthy,
        HealthCode::Suspended,
        HealthCode::Progressing,
        HealthCode::Missing,
        HealthCode::Degraded,
        HealthCode::Unknown,
    ];

    /// The code's name as Argo CD spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthCode::Healthy => "Healthy",
            HealthCode::Suspended => "Suspended",
            HealthCode::Progressing => "Progressing",
            HealthCode::Missing => "Missing",
            HealthCode::Degraded => "Degraded",
            HealthCode::Unknown => "Unknown",
        }
    }

    /// Whether `other` is a worse condition than `self` (gitops-engine's `IsWorse`).
    pub fn is_worse(self, other: HealthCode) -> bool {
        other > self
    }
}

impl fmt::Display for HealthCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not one of the six health codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a health status (expected one of Healthy, Suspended, Progressing, Missing, Degraded, Unknown)"
)]
pub struct UnknownHealthCode(pub String);

impl FromStr for HealthCode {
    type Err = UnknownHealthCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HealthCode::ALL
            .into_iter()
            .find(|code| code.as_str() == s)
            .ok_or_else(|| UnknownHealthCode(s.to_owned()))
    }
}

/// The health of one object: a code and a human-readable message (possibly empty).
///
/// Serializes like Argo CD's `HealthStatus`: `{"status": "Healthy", "message": "..."}`, with an
/// empty message left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthStatus {
    pub status: HealthCode,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl HealthStatus {
    pub fn new(status: HealthCode, message: impl Into<String>) -> Self {
        HealthStatus {
            status,
            message: message.into(),
        }
    }

    pub fn healthy(message: impl Into<String>) -> Self {
        HealthStatus::new(HealthCode::Healthy, message)
    }

    pub fn progressing(message: impl Into<String>) -> Self {
        HealthStatus::new(HealthCode::Progressing, message)
    }

    pub fn degraded(message: impl Into<String>) -> Self {
        HealthStatus::new(HealthCode::Degraded, message)
    }

    pub fn suspended(message: impl Into<String>) -> Self {
        HealthStatus::new(HealthCode::Suspended, message)
    }

    pub fn unknown(message: impl Into<String>) -> Self {
        HealthStatus::new(HealthCode::Unknown, message)
    }
}

/// The worst of several codes, or `Healthy` when there are none (an empty app is healthy).
pub fn worst(codes: impl IntoIterator<Item = HealthCode>) -> HealthCode {
    codes.into_iter().max().unwrap_or(HealthCode::Healthy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_matches_gitops_engine() {
        use HealthCode::*;
        let mut shuffled = [Unknown, Healthy, Degraded, Suspended, Missing, Progressing];
        shuffled.sort();
        assert_eq!(
            shuffled,
            [Healthy, Suspended, Progressing, Missing, Degraded, Unknown]
        );
        assert!(Healthy.is_worse(Suspended));
        assert!(Progressing.is_worse(Missing));
        assert!(!Degraded.is_worse(Missing));
        assert!(!Degraded.is_worse(Degraded));
    }

    #[test]
    fn worst_of_empty_is_healthy() {
        assert_eq!(worst([]), HealthCode::Healthy);
        assert_eq!(
            worst([
                HealthCode::Suspended,
                HealthCode::Degraded,
                HealthCode::Missing
            ]),
            HealthCode::Degraded
        );
    }

    #[test]
    fn parses_and_prints_argo_spelling() {
        for code in HealthCode::ALL {
            assert_eq!(code.as_str().parse::<HealthCode>(), Ok(code));
        }
        let err = "healthy".parse::<HealthCode>().unwrap_err();
        assert!(
            err.to_string()
                .contains("\"healthy\" is not a health status")
        );
    }

    #[test]
    fn serializes_like_argo() {
        let status = HealthStatus::degraded("boom");
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            r#"{"status":"Degraded","message":"boom"}"#
        );
        assert_eq!(
            serde_json::to_string(&HealthStatus::healthy("")).unwrap(),
            r#"{"status":"Healthy"}"#
        );
        let back: HealthStatus = serde_json::from_str(r#"{"status":"Missing"}"#).unwrap();
        assert_eq!(back, HealthStatus::new(HealthCode::Missing, ""));
    }
}
