//! Argo CD's `ServerSideDiff` (what `argocd app diff --server-side-diff` asks per resource): the
//! caller's live states and target manifests, index by index, compared through a server-side
//! apply dry run on the app's cluster — as a sync would apply them (namespaced and marked with
//! the app's tracking, as the field manager a sync applies as), under the app's
//! ignoreDifferences. Only resources the app manages (its `status.resources`) are dry-run: any
//! other is refused before the cluster is asked, as Argo CD refuses it.

use std::collections::HashSet;

use ferry_diff::SyncStatus;
use ferry_types::ResourceKey;
use ferry_types::application::ResourceStatus;
use kube::ResourceExt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ViewError, application};
use crate::appstate::{ignore_rules, prepare, setup};
use crate::context::Context;

/// Argo CD's `ApplicationServerSideDiffQuery`, less the app's name.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServerSideDiffQuery {
    pub live_resources: Vec<LiveResource>,
    pub target_manifests: Vec<String>,
}

/// One of the query's `liveResources` (Argo CD's `ResourceDiff`, as `ManagedResources` answers
/// it); `liveState` empty for a resource to create.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LiveResource {
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub live_state: String,
    pub hook: bool,
    pub resource_version: String,
}

/// Argo CD's `ApplicationServerSideDiffResponse`: per index, the predicted (`targetState`) and
/// normalized live (`liveState`) objects, Secret values masked, and whether they differ.
pub async fn server_side_diff(
    ctx: &Context,
    name: &str,
    query: &ServerSideDiffQuery,
) -> Result<Value, ViewError> {
    let app = application(ctx, name).await?;
    let setup = setup(ctx, &app).await.map_err(ViewError::Failed)?;
    let lives = query
        .live_resources
        .iter()
        .map(live_object)
        .collect::<Result<Vec<_>, _>>()?;
    let targets = targets(ctx, &app, &setup, &query.target_manifests)?;
    let managed: HashSet<ResourceKey> = app
        .status
        .iter()
        .flat_map(|status| &status.resources)
        .map(ResourceStatus::key)
        .collect();
    let count = lives.len().max(targets.len());
    let mut keys = Vec::with_capacity(count);
    for index in 0..count {
        let key = match (query.live_resources.get(index), targets.get(index)) {
            (Some(live), _) => {
                ResourceKey::new(&live.group, &live.kind, &live.namespace, &live.name)
            }
            (None, Some(Some(target))) => ResourceKey::of(target).ok_or_else(|| {
                ViewError::Failed(format!(
                    "target manifest {index} has no apiVersion, kind or metadata.name"
                ))
            })?,
            (None, _) => {
                return Err(ViewError::Failed(format!(
                    "diff result index {index} out of bounds: live resources ({}), target objects ({})",
                    lives.len(),
                    targets.len()
                )));
            }
        };
        // Before anything is dry-run: the cluster is asked about the app's resources only.
        if !managed.contains(&key) {
            return Err(ViewError::PermissionDenied(format!(
                "{} {} {} not found as part of application {}",
                key.kind,
                key.group,
                key.name,
                app.name_any()
            )));
        }
        keys.push(key);
    }
    let ignore = ignore_rules(ctx, &app).map_err(ViewError::Failed)?;
    let options = ferry_appstate::diff_options(
        &ignore,
        ctx.argo_cm.get().compare_options,
        &ctx.settings.field_manager,
    );
    let resolver = ferry_appstate::Resolver(&setup.cache);
    let mut items = Vec::with_capacity(count);
    let mut modified = false;
    for (index, key) in keys.into_iter().enumerate() {
        let live = lives.get(index).and_then(Option::as_ref);
        let target = targets.get(index).and_then(Option::as_ref);
        let (target_state, live_state, differs) = if live.is_none() && target.is_none() {
            (String::new(), String::new(), false)
        } else {
            let result = ferry_diff::server_side_diff(
                &setup.cluster.client,
                &resolver,
                target,
                live,
                &options,
                None,
            )
            .await
            .map_err(|err| ViewError::Failed(format!("{key}: {err}")))?;
            let show = |object: Option<Value>| object.map(|o| o.to_string()).unwrap_or_default();
            (
                show(result.normalized_desired),
                show(result.normalized_live),
                result.status != SyncStatus::Synced,
            )
        };
        modified |= differs;
        let given = query.live_resources.get(index);
        items.push(json!({
            "group": key.group,
            "kind": key.kind,
            "namespace": key.namespace,
            "name": key.name,
            "targetState": target_state,
            "liveState": live_state,
            "diff": "",
            "hook": given.is_some_and(|live| live.hook),
            "modified": differs,
            "resourceVersion": given.map(|live| live.resource_version.as_str()).unwrap_or_default(),
        }));
    }
    Ok(json!({"items": items, "modified": modified}))
}

/// The live object a live resource carries, checked to be the one it names.
fn live_object(resource: &LiveResource) -> Result<Option<Value>, ViewError> {
    let state = resource.live_state.trim();
    if state.is_empty() || state == "null" {
        return Ok(None);
    }
    let (kind, name) = (&resource.kind, &resource.name);
    let object: Value = serde_json::from_str(state).map_err(|err| {
        ViewError::Failed(format!(
            "error unmarshaling live state for {kind}/{name}: {err}"
        ))
    })?;
    let Some(found) = ResourceKey::of(&object) else {
        return Err(ViewError::Failed(format!(
            "live state of {kind}/{name} has no apiVersion, kind or metadata.name"
        )));
    };
    let checks = [
        ("name", &resource.name, &found.name),
        ("namespace", &resource.namespace, &found.namespace),
        ("group", &resource.group, &found.group),
        ("kind", &resource.kind, &found.kind),
    ];
    for (field, expected, got) in checks {
        if expected != got {
            return Err(ViewError::Failed(format!(
                "{field} mismatch: expected {expected}, got {got}"
            )));
        }
    }
    Ok(Some(object))
}

/// The target manifests (JSON or YAML; empty for a resource to delete), prepared as a sync
/// applies them.
fn targets(
    ctx: &Context,
    app: &ferry_types::Application,
    setup: &crate::appstate::Setup,
    manifests: &[String],
) -> Result<Vec<Option<Value>>, ViewError> {
    let mut parsed = Vec::with_capacity(manifests.len());
    for (index, manifest) in manifests.iter().enumerate() {
        let text = manifest.trim();
        parsed.push(if text.is_empty() || text == "null" {
            None
        } else {
            let object: Value = serde_yaml::from_str(text).map_err(|err| {
                ViewError::Failed(format!("error unmarshaling target manifest {index}: {err}"))
            })?;
            Some(object)
        });
    }
    let present: Vec<Value> = parsed.iter().flatten().cloned().collect();
    let mut prepared = prepare(ctx, app, setup, &present)
        .map_err(ViewError::Failed)?
        .into_iter();
    Ok(parsed
        .into_iter()
        .map(|object| object.and_then(|_| prepared.next()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(live_state: &str) -> LiveResource {
        LiveResource {
            group: "apps".into(),
            kind: "Deployment".into(),
            namespace: "prod".into(),
            name: "web".into(),
            live_state: live_state.into(),
            ..LiveResource::default()
        }
    }

    #[test]
    fn a_live_state_must_be_the_resource_it_names() {
        assert_eq!(live_object(&resource("")).unwrap(), None);
        assert_eq!(live_object(&resource("null")).unwrap(), None);
        let web = r#"{"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "prod"}}"#;
        assert!(live_object(&resource(web)).unwrap().is_some());
        let other = web.replace("\"prod\"", "\"dev\"");
        let err = live_object(&resource(&other)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "namespace mismatch: expected prod, got dev"
        );
        let err = live_object(&resource("{not json")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("error unmarshaling live state for Deployment/web"),
            "{err}"
        );
    }
}
