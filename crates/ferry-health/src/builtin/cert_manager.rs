//! cert-manager: Certificate, Issuer and ClusterIssuer, decided by their `Ready` condition.

use serde_json::Value;

use super::conditions::{conditions, decided_by, decided_or};
use crate::status::HealthStatus;

/// An issuance in flight (`Issuing` True) comes first: `Ready` still describes the previous
/// certificate, or the failure the retry is about to replace.
pub(super) fn certificate(obj: &Value) -> Result<HealthStatus, String> {
    let conditions = conditions(obj)?.unwrap_or_default();
    if let Some(issuing) = conditions.iter().find(|c| c.is("Issuing") && c.is_true()) {
        return Ok(HealthStatus::progressing(issuing.message()));
    }
    Ok(decided_by(&conditions, "Ready")
        .unwrap_or_else(|| HealthStatus::progressing("Waiting for certificate")))
}

pub(super) fn issuer(obj: &Value) -> Result<HealthStatus, String> {
    decided_or(obj, "Ready", "Initializing issuer")
}

pub(super) fn cluster_issuer(obj: &Value) -> Result<HealthStatus, String> {
    decided_or(obj, "Ready", "Initializing ClusterIssuer")
}
