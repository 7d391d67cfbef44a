//! Writing Applications: JSON merge patches ([`merge_patch`]) computed from what was read, so an unchanged status
//! costs no write and a concurrent change to another part of the object (a user editing the
//! spec, the CLI requesting an operation) is not overwritten.

use ferry_types::merge_patch;
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};
use serde::Serialize;
use serde_json::{Map, Value};

/// Writes the difference between two versions of a part of the Application (`status`,
/// `operation`, ...) as field manager `manager`. Returns whether anything was written.
pub async fn write_changes<T: Serialize>(
    api: &Api<DynamicObject>,
    name: &str,
    manager: &str,
    field: &str,
    old: &T,
    new: &T,
) -> kube::Result<bool> {
    let old = serde_json::to_value(old).map_err(kube::Error::SerdeError)?;
    let new = serde_json::to_value(new).map_err(kube::Error::SerdeError)?;
    let Some(change) = merge_patch(&old, &new) else {
        return Ok(false);
    };
    let mut body = Map::new();
    body.insert(field.to_string(), change);
    write(api, name, manager, Value::Object(body)).await?;
    Ok(true)
}

/// Sends a merge patch as field manager `manager`.
pub async fn write(
    api: &Api<DynamicObject>,
    name: &str,
    manager: &str,
    patch: Value,
) -> kube::Result<DynamicObject> {
    let params = PatchParams {
        field_manager: Some(manager.to_string()),
        ..PatchParams::default()
    };
    api.patch(name, &params, &Patch::Merge(&patch)).await
}
