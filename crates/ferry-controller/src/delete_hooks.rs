//! `PreDelete` and `PostDelete` hooks, as Argo CD runs them: resources of the desired manifests
//! that are created when the Application is deleted (before its resources are, or after they are
//! gone) instead of during syncs. While its manifests have such hooks, an app carries a pair of
//! finalizers per hook type, so that its deletion waits for them and for their cleanup.

use ferry_health::HealthCode;
use ferry_sync::{DeletePolicy, Hook};
use ferry_types::Application;
use ferry_types::ResourceKey;
use ferry_types::annotations::{HELM_HOOK_DELETE_POLICY_ANNOTATION, HOOK_DELETE_POLICY_ANNOTATION};
use ferry_types::application::{HookType, finalizer};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use serde_json::{Value, json};
use tracing::info;

use crate::appstate::{self, Setup};
use crate::context::Context;
use crate::patch;

/// The finalizers that hold a deletion for one hook type: running the hooks, then removing
/// them by their delete policy.
pub fn finalizers_of(hook_type: HookType) -> [&'static str; 2] {
    match hook_type {
        HookType::PreDelete => [finalizer::PRE_DELETE, finalizer::PRE_DELETE_CLEANUP],
        _ => [finalizer::POST_DELETE, finalizer::POST_DELETE_CLEANUP],
    }
}

fn is_hook_of(object: &Value, hook_type: HookType) -> bool {
    Hook::of(object).types.contains(&hook_type)
}

/// Adds the finalizers of the deletion hooks `desired` has and removes those of the ones it
/// no longer has (never once the app is being deleted). The patch carries the resourceVersion
/// it read, so finalizers someone else changed meanwhile are not lost (the write fails and
/// the reconcile is retried).
pub async fn keep_finalizers(
    ctx: &Context,
    app: &Application,
    desired: &[Value],
) -> kube::Result<()> {
    if app.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let mut finalizers = app.finalizers().to_vec();
    for hook_type in [HookType::PreDelete, HookType::PostDelete] {
        let wanted = desired.iter().any(|o| is_hook_of(o, hook_type));
        for name in finalizers_of(hook_type) {
            let present = finalizers.iter().any(|f| f == name);
            if wanted && !present {
                finalizers.push(name.to_string());
            } else if !wanted && present {
                finalizers.retain(|f| f != name);
            }
        }
    }
    if finalizers == app.finalizers() {
        return Ok(());
    }
    let body = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": app.resource_version(),
    }});
    let apps = ctx.apps_in(&app.namespace().unwrap_or_default());
    patch::write(&apps, &app.name_any(), &ctx.settings.field_manager, body)
        .await
        .map(|_| ())
}

/// Creates the hooks of `hook_type` that do not exist yet, and says whether all of them have
/// finished: `Ok(false)` while any was just created or is still progressing. Failed hooks are
/// deleted, so that the next attempt runs them again (fixed in Git, perhaps), and reported.
pub async fn run(
    ctx: &Context,
    app: &Application,
    setup: &Setup,
    client: &kube::Client,
    hook_type: HookType,
) -> Result<bool, String> {
    let (_, desired) = appstate::render_desired(ctx, app, setup, app.sources()).await?;
    let mut created = 0;
    let mut progressing = 0;
    let mut failed = Vec::new();
    for hook in desired.iter().filter(|o| is_hook_of(o, hook_type)) {
        let key = ResourceKey::of(hook).ok_or_else(|| {
            format!("a {hook_type:?} hook needs a metadata.name (generateName is not enough)")
        })?;
        let api = api_for(setup, client, hook)?;
        let live = api
            .get_opt(&key.name)
            .await
            .map_err(|err| format!("reading {hook_type:?} hook {key}: {err}"))?;
        let Some(live) = live else {
            let object: DynamicObject = serde_json::from_value(hook.clone())
                .map_err(|err| format!("{hook_type:?} hook {key}: {err}"))?;
            match api.create(&PostParams::default(), &object).await {
                Ok(_) => info!(app = %app.name_any(), hook = %key, "created {hook_type:?} hook"),
                Err(kube::Error::Api(status)) if status.is_already_exists() => {}
                Err(err) => return Err(format!("creating {hook_type:?} hook {key}: {err}")),
            }
            created += 1;
            continue;
        };
        let live = serde_json::to_value(live).unwrap_or_default();
        match ferry_health::assess(&live, &ctx.argo_cm.get().health).map(|h| (h.status, h.message))
        {
            Some((HealthCode::Progressing, _)) => progressing += 1,
            Some((HealthCode::Degraded, message)) => failed.push((key, api, message)),
            // No health check, or any other state: finished, as Argo CD counts them.
            _ => {}
        }
    }
    if created > 0 {
        return Ok(false);
    }
    if !failed.is_empty() {
        let mut names = Vec::new();
        for (key, api, message) in failed {
            match api.delete(&key.name, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.is_not_found() => {}
                Err(err) => return Err(format!("deleting failed hook {key}: {err}")),
            }
            names.push(format!("{key} ({message})"));
        }
        return Err(format!(
            "{hook_type:?} hook(s) failed and were deleted to run again: {}",
            names.join(", ")
        ));
    }
    Ok(progressing == 0)
}

/// Deletes the live hooks of `hook_type` whose delete policy matches how they ended together
/// (all healthy: `HookSucceeded`; any degraded: `HookFailed`; a hook without a policy always
/// goes). `Ok(true)` once none is left to wait for.
pub async fn clean_up(
    ctx: &Context,
    setup: &Setup,
    client: &kube::Client,
    hook_type: HookType,
) -> Result<bool, String> {
    let hooks: Vec<Value> = setup
        .cache
        .app_resources(&setup.instance)
        .into_iter()
        .map(|o| o.object())
        .filter(|o| is_hook_of(o, hook_type))
        .collect();
    let any_degraded = hooks.iter().any(|hook| {
        ferry_health::assess(hook, &ctx.argo_cm.get().health)
            .is_some_and(|h| h.status == HealthCode::Degraded)
    });
    let all_healthy = hooks.iter().all(|hook| {
        ferry_health::assess(hook, &ctx.argo_cm.get().health)
            .is_none_or(|h| h.status == HealthCode::Healthy)
    });
    let mut pending = 0;
    for hook in &hooks {
        let declared = [
            HOOK_DELETE_POLICY_ANNOTATION,
            HELM_HOOK_DELETE_POLICY_ANNOTATION,
        ]
        .iter()
        .any(|name| {
            hook.pointer("/metadata/annotations")
                .and_then(|a| a.get(name))
                .is_some()
        });
        let policies = Hook::of(hook);
        let delete = !declared
            || (any_degraded && policies.has_policy(DeletePolicy::HookFailed))
            || (all_healthy && policies.has_policy(DeletePolicy::HookSucceeded));
        if !delete {
            continue;
        }
        pending += 1;
        if hook["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let Some(key) = ResourceKey::of(hook) else {
            continue;
        };
        match api_for(setup, client, hook)?
            .delete(&key.name, &DeleteParams::background())
            .await
        {
            Ok(_) => info!(hook = %key, "deleted {hook_type:?} hook"),
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(err) => return Err(format!("deleting {hook_type:?} hook {key}: {err}")),
        }
    }
    Ok(pending == 0)
}

fn api_for(
    setup: &Setup,
    client: &kube::Client,
    object: &Value,
) -> Result<Api<DynamicObject>, String> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let (resource, namespaced) = setup
        .cache
        .resolve_api_version(api_version, kind)
        .ok_or_else(|| format!("the cluster does not serve {api_version} {kind}"))?;
    let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
    Ok(if namespaced {
        Api::namespaced_with(client.clone(), namespace, &resource)
    } else {
        Api::all_with(client.clone(), &resource)
    })
}
