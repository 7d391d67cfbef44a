//! What the CRD checks share: reading `status.conditions`, the rule most of Argo CD's bundled
//! scripts follow (one condition type decides, `True` Healthy, `False` Degraded), and the kind
//! for checks that serve several kinds.

use serde::Deserialize;
use serde_json::Value;

use crate::object::{Condition, read};
use crate::status::HealthStatus;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Object {
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Status {
    conditions: Option<Vec<Condition>>,
}

/// The object's `status.conditions`, `None` while the controller has written none (which some
/// checks tell apart from an empty list, as Argo CD's scripts do).
pub(super) fn conditions(obj: &Value) -> Result<Option<Vec<Condition>>, String> {
    Ok(read::<Object>(obj)?.status.and_then(|s| s.conditions))
}

/// The health given by the first condition of type `kind` that is `True` (Healthy) or `False`
/// (Degraded), with its message; `Unknown` ones are passed over.
pub(super) fn decided_by(conditions: &[Condition], kind: &str) -> Option<HealthStatus> {
    conditions
        .iter()
        .filter(|c| c.is(kind))
        .find_map(|c| match c.status.as_deref() {
            Some("True") => Some(HealthStatus::healthy(c.message())),
            Some("False") => Some(HealthStatus::degraded(c.message())),
            _ => None,
        })
}

/// `decided_by` over the object's conditions, else Progressing with `waiting`.
pub(super) fn decided_or(obj: &Value, kind: &str, waiting: &str) -> Result<HealthStatus, String> {
    let conditions = conditions(obj)?.unwrap_or_default();
    Ok(decided_by(&conditions, kind).unwrap_or_else(|| HealthStatus::progressing(waiting)))
}

/// The object's kind, for checks whose messages name it.
pub(super) fn kind(obj: &Value) -> &str {
    obj.get("kind").and_then(Value::as_str).unwrap_or("")
}
