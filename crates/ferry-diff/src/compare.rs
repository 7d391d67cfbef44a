//! The last steps every comparison shares: ignore rules, normalization, status, masking, and
//! the patch and text outputs.

use serde_json::Value;

use crate::mask::mask_secrets;
use crate::normalize::{drop_aggregated_rules, reconcile_empty, strip_server_fields};
use crate::object::ResourceId;
use crate::path::remove_all;
use crate::{DiffError, DiffOptions, DiffResult, SyncStatus, text};

/// Compares the predicted object (what the desired state becomes once applied) with the live
/// object.
pub(crate) fn finish(
    id: &ResourceId,
    predicted: Option<Value>,
    live: Option<Value>,
    opts: &DiffOptions,
) -> Result<DiffResult, DiffError> {
    let (mut predicted, mut live) = (predicted, live);
    ignore(id, predicted.as_mut(), live.as_mut(), opts)?;
    for obj in [predicted.as_mut(), live.as_mut()].into_iter().flatten() {
        strip_server_fields(obj, id, opts.ignore_status);
        if opts.ignore_aggregated_roles {
            drop_aggregated_rules(obj, id);
        }
    }
    if let (Some(p), Some(l)) = (predicted.as_mut(), live.as_mut()) {
        reconcile_empty(p, l);
    }
    let status = match (&predicted, &live) {
        (Some(p), Some(l)) if p == l => SyncStatus::Synced,
        (Some(_), Some(_)) => SyncStatus::OutOfSync,
        (Some(_), None) => SyncStatus::Missing,
        (None, _) => SyncStatus::Extra,
    };
    // Everything below is shown to users.
    mask_secrets(predicted.as_mut(), live.as_mut());
    let (patch, text) = if status == SyncStatus::Synced {
        (json_patch::Patch::default(), String::new())
    } else {
        let patch = json_patch::diff(
            live.as_ref().unwrap_or(&Value::Null),
            predicted.as_ref().unwrap_or(&Value::Null),
        );
        (patch, text::unified(id, live.as_ref(), predicted.as_ref())?)
    };
    Ok(DiffResult {
        status,
        patch,
        text,
        normalized_live: live,
        normalized_desired: predicted,
    })
}

/// Removes the ignored fields from both sides. Paths are computed on the untouched objects
/// first, since managed-field rules compare one side with the other.
fn ignore(
    id: &ResourceId,
    predicted: Option<&mut Value>,
    live: Option<&mut Value>,
    opts: &DiffOptions,
) -> Result<(), DiffError> {
    let rules = &opts.ignore_differences;
    if rules.is_empty() {
        return Ok(());
    }
    let (p_ref, l_ref) = (predicted.as_deref(), live.as_deref());
    let p_paths = p_ref
        .map(|p| rules.paths(id, p, l_ref, l_ref))
        .transpose()?;
    let l_paths = l_ref
        .map(|l| rules.paths(id, l, p_ref, l_ref))
        .transpose()?;
    if let (Some(p), Some(paths)) = (predicted, p_paths) {
        remove_all(p, paths);
    }
    if let (Some(l), Some(paths)) = (live, l_paths) {
        remove_all(l, paths);
    }
    Ok(())
}
