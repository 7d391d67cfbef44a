//! External Secrets Operator: ExternalSecret, ClusterExternalSecret, and the stores and
//! PushSecret, which are decided by their `Ready` condition.

use serde::Deserialize;
use serde_json::Value;

use super::conditions::{conditions, decided_or, kind};
use crate::object::{Condition, read};
use crate::status::HealthStatus;

#[derive(Deserialize, Default)]
#[serde(default)]
struct ExternalSecret {
    spec: Option<Spec>,
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Spec {
    refresh_policy: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Status {
    refresh_time: Option<String>,
    conditions: Option<Vec<Condition>>,
}

/// With `refreshPolicy: OnChange` a `Ready` condition older than the last refresh belongs to
/// the previous spec, so it does not count yet (RFC 3339 UTC times compare as text).
pub(super) fn external_secret(obj: &Value) -> Result<HealthStatus, String> {
    let secret: ExternalSecret = read(obj)?;
    let on_change = secret.spec.and_then(|s| s.refresh_policy).as_deref() == Some("OnChange");
    let status = secret.status.unwrap_or_default();
    let current = |c: &Condition| match (&c.last_transition_time, &status.refresh_time) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(changed), Some(refreshed)) => changed >= refreshed,
    };
    let conditions = status.conditions.as_deref().unwrap_or_default();
    let ready = conditions
        .iter()
        .find(|c| c.is("Ready") && (!on_change || current(c)));
    Ok(match ready {
        None => HealthStatus::progressing("Waiting for ExternalSecret"),
        Some(c) if c.is_true() => HealthStatus::healthy(c.message()),
        Some(c) if c.is_false() => HealthStatus::degraded(c.message()),
        // Argo CD's script returns nothing here, which it reports as Unknown.
        Some(c) => HealthStatus::unknown(c.message()),
    })
}

/// The controller appends conditions, so only the last one tells the current state.
pub(super) fn cluster_external_secret(obj: &Value) -> Result<HealthStatus, String> {
    let conditions = conditions(obj)?.unwrap_or_default();
    Ok(match conditions.last() {
        Some(c) if c.is("Ready") && c.is_true() => HealthStatus::healthy(c.message()),
        Some(c) if (c.is("PartiallyReady") || c.is("NotReady")) && c.is_true() => {
            HealthStatus::degraded(c.message())
        }
        _ => HealthStatus::progressing("Waiting for ClusterExternalSecret"),
    })
}

/// SecretStore, ClusterSecretStore and PushSecret.
pub(super) fn ready(obj: &Value) -> Result<HealthStatus, String> {
    decided_or(obj, "Ready", &format!("Waiting for {}", kind(obj)))
}
