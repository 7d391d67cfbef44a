//! Server-side diff: the API server predicts the applied object with a server-side apply
//! dry-run (defaults, admission, mutating webhooks included), and the prediction is compared
//! with the live object.

use std::time::Duration;

use ferry_types::split_api_version;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Discovery, Scope};
use serde_json::Value;

use crate::normalize::{fold_string_data, strip_server_metadata};
use crate::object::ResourceId;
use crate::{DiffError, DiffOptions, DiffResult, Predictions, compare};

/// Resolves an apiVersion and kind to the API resource serving it.
pub trait ResourceResolver: Send + Sync {
    /// The resource and its scope, or `None` when the server does not serve the kind.
    fn resolve(&self, api_version: &str, kind: &str) -> Option<(ApiResource, Scope)>;
}

impl ResourceResolver for Discovery {
    fn resolve(&self, api_version: &str, kind: &str) -> Option<(ApiResource, Scope)> {
        let (group, version) = split_api_version(api_version);
        let gvk = GroupVersionKind::gvk(group, version, kind);
        self.resolve_gvk(&gvk)
            .map(|(resource, caps)| (resource, caps.scope))
    }
}

/// How long a comparison waits for the answer of an apply in flight of the same manifest.
const APPLY_WAIT: Duration = Duration::from_secs(2);

/// Compares `desired` with `live` through a server-side apply dry-run as field manager
/// `opts.field_manager` (with `force`, as a sync would apply). Only a pair with both sides asks
/// the server: a desired object that does not exist yet is `Missing` and shown as its manifest,
/// and a live object with no desired counterpart is `Extra`, as in Argo CD. A manifest the
/// server would refuse is caught by the sync's own dry run, before anything is applied. With
/// `predictions`, an answer the API server gave for the same manifest over the same live
/// version is reused.
pub async fn server_side_diff(
    client: &kube::Client,
    resolver: &dyn ResourceResolver,
    desired: Option<&Value>,
    live: Option<&Value>,
    opts: &DiffOptions,
    predictions: Option<&Predictions>,
) -> Result<DiffResult, DiffError> {
    let id = ResourceId::of_pair(desired, live)?;
    let Some(desired) = desired else {
        return compare::finish(&id, None, live.cloned(), opts);
    };
    let api = api_for(client, resolver, desired, &id)?;
    let Some(live) = live else {
        // Missing: the manifest itself, not every field the server would default.
        return compare::finish(&id, Some(manifest(desired, &id)?), None, opts);
    };
    let mut body = desired.clone();
    strip_server_metadata(&mut body);
    let slot = predictions.and_then(|_| Predictions::slot(&body, live, &opts.field_manager));
    if let (Some(predictions), Some(slot)) = (predictions, &slot) {
        // The live object may be what a sync's apply in flight just made: its answer is the
        // prediction, and comes as soon as the apply's does.
        predictions
            .wait_for_apply(&body, &opts.field_manager, APPLY_WAIT)
            .await;
        if let Some(predicted) = predictions.get(slot, live) {
            return compare::finish(&id, Some(predicted), Some(live.clone()), opts);
        }
    }
    let params = PatchParams::apply(&opts.field_manager).force().dry_run();
    let predicted = api
        .patch(&id.name, &params, &Patch::Apply(&body))
        .await
        .map_err(|source| DiffError::DryRun {
            resource: id.to_string(),
            source,
        })?;
    let predicted = serde_json::to_value(predicted).map_err(|e| DiffError::InvalidObject {
        resource: id.to_string(),
        reason: format!("unreadable dry-run result: {e}"),
    })?;
    if let (Some(predictions), Some(slot)) = (predictions, slot) {
        predictions.insert(slot, &predicted, live);
    }
    compare::finish(&id, Some(predicted), Some(live.clone()), opts)
}

fn api_for(
    client: &kube::Client,
    resolver: &dyn ResourceResolver,
    desired: &Value,
    id: &ResourceId,
) -> Result<Api<DynamicObject>, DiffError> {
    let api_version = desired["apiVersion"].as_str().unwrap_or_default();
    let kind = desired["kind"].as_str().unwrap_or_default();
    let Some((resource, scope)) = resolver.resolve(api_version, kind) else {
        return Err(DiffError::UnknownKind {
            resource: id.to_string(),
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        });
    };
    Ok(match scope {
        Scope::Cluster => Api::all_with(client.clone(), &resource),
        Scope::Namespaced if id.namespace.is_empty() => {
            return Err(DiffError::InvalidObject {
                resource: id.to_string(),
                reason: "namespaced resource without metadata.namespace".into(),
            });
        }
        Scope::Namespaced => Api::namespaced_with(client.clone(), &id.namespace, &resource),
    })
}

fn manifest(desired: &Value, id: &ResourceId) -> Result<Value, DiffError> {
    let mut desired = desired.clone();
    fold_string_data(&mut desired, id)?;
    Ok(desired)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reconciles run on a multi-threaded runtime: the comparison must be spawnable.
    #[test]
    fn server_side_diff_is_send() {
        fn is_send<T: Send>(_: &T) {}
        fn check(client: &kube::Client, resolver: &dyn ResourceResolver, opts: &DiffOptions) {
            is_send(&server_side_diff(client, resolver, None, None, opts, None));
        }
        let _ = check as fn(&kube::Client, &dyn ResourceResolver, &DiffOptions);
    }
}
