//! Bitnami SealedSecret: its `Synced` condition, once it describes the current generation.

use serde::Deserialize;
use serde_json::Value;

use super::conditions::decided_by;
use crate::object::{Condition, Metadata, read};
use crate::status::HealthStatus;

const WAITING: &str = "Waiting for Sealed Secret to be decrypted";

#[derive(Deserialize, Default)]
#[serde(default)]
struct SealedSecret {
    metadata: Option<Metadata>,
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Status {
    observed_generation: Option<i64>,
    conditions: Option<Vec<Condition>>,
}

pub(super) fn check(obj: &Value) -> Result<HealthStatus, String> {
    let secret: SealedSecret = read(obj)?;
    let generation = secret.metadata.and_then(|m| m.generation);
    let status = secret.status.unwrap_or_default();
    // A `Synced` left from an earlier generation says nothing about the new ciphertext.
    if generation.is_none() || status.observed_generation != generation {
        return Ok(HealthStatus::progressing(WAITING));
    }
    let conditions = status.conditions.unwrap_or_default();
    Ok(decided_by(&conditions, "Synced").unwrap_or_else(|| HealthStatus::progressing(WAITING)))
}
