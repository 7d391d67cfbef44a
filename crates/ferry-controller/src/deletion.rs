//! Deleting an Application, step by step as its finalizers ask, one step per reconcile:
//! `PreDelete` hooks run first; with Argo CD's resources finalizer its resources are deleted
//! next (foreground or background propagation, as the finalizer says); then `PostDelete` hooks
//! run; last, the hooks are removed by their delete policies. Each step removes its finalizer
//! when done. Without the resources finalizer the resources stay where they are. A step that
//! fails keeps its finalizer and says why in a DeletionError condition.

use std::time::Duration;

use ferry_sync::SyncOptionSet;
use ferry_types::application::{
    ApplicationStatus, CascadePolicy, HookType, SyncStatusCode, condition, finalizer,
};
use ferry_types::{Application, ResourceKey};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, PropagationPolicy};
use kube::runtime::controller::Action;
use serde_json::json;
use tracing::{info, warn};

use crate::appstate::{self, Setup};
use crate::context::Context;
use crate::delete_hooks;
use crate::impersonation;
use crate::patch;

/// How often deletion progress is checked.
const RECHECK: Duration = Duration::from_secs(2);

/// The resources finalizers, one per propagation policy.
const RESOURCES_FINALIZERS: [&str; 3] = [
    finalizer::RESOURCES,
    finalizer::RESOURCES_FOREGROUND,
    finalizer::RESOURCES_BACKGROUND,
];

/// Every finalizer this controller acts on.
fn handled(app: &Application) -> bool {
    app.finalizers().iter().any(|f| {
        RESOURCES_FINALIZERS.contains(&f.as_str())
            || delete_hooks::finalizers_of(HookType::PreDelete).contains(&f.as_str())
            || delete_hooks::finalizers_of(HookType::PostDelete).contains(&f.as_str())
    })
}

fn has(app: &Application, name: &str) -> bool {
    app.finalizers().iter().any(|f| f == name)
}

pub async fn finalize(ctx: &Context, app: &Application) -> kube::Result<Action> {
    let name = ctx.key_of(app);
    if !handled(app) {
        return Ok(Action::await_change());
    }
    ctx.operations.terminate(&name);
    let setup = match appstate::setup(ctx, app).await {
        Ok(setup) => setup,
        Err(message) if message.starts_with("there are no clusters") => {
            // Argo CD's rule: with its cluster gone there is nothing left to delete or run.
            warn!(app = %name, "{message}; removing the finalizers without deleting resources");
            let mut all = RESOURCES_FINALIZERS.to_vec();
            all.extend(delete_hooks::finalizers_of(HookType::PreDelete));
            all.extend(delete_hooks::finalizers_of(HookType::PostDelete));
            remove_finalizers(ctx, app, &all).await?;
            return Ok(Action::await_change());
        }
        Err(message) => {
            deletion_error(ctx, app, message).await?;
            return Ok(Action::requeue(RECHECK * 5));
        }
    };
    // Deletions are changes to the cluster like a sync's, made as the same identity.
    let client = match impersonation::sync_identity(ctx, app, &setup).and_then(|user| {
        setup
            .cluster
            .client_as(user.as_deref())
            .map_err(|err| format!("{err:#}"))
    }) {
        Ok(client) => client,
        Err(message) => {
            deletion_error(ctx, app, message).await?;
            return Ok(Action::requeue(RECHECK * 5));
        }
    };
    let [pre_delete, pre_delete_cleanup] = delete_hooks::finalizers_of(HookType::PreDelete);
    let [post_delete, post_delete_cleanup] = delete_hooks::finalizers_of(HookType::PostDelete);
    let step = if has(app, pre_delete) {
        Step::Hooks(HookType::PreDelete, pre_delete)
    } else if let Some(policy) = app.cascade_policy() {
        return delete_resources(ctx, app, &setup, &client, policy).await;
    } else if has(app, post_delete) {
        Step::Hooks(HookType::PostDelete, post_delete)
    } else if has(app, pre_delete_cleanup) {
        Step::Cleanup(HookType::PreDelete, pre_delete_cleanup)
    } else if has(app, post_delete_cleanup) {
        Step::Cleanup(HookType::PostDelete, post_delete_cleanup)
    } else {
        return Ok(Action::await_change());
    };
    let (done, finalizer) = match step {
        Step::Hooks(hook_type, finalizer) => (
            delete_hooks::run(ctx, app, &setup, &client, hook_type).await,
            finalizer,
        ),
        Step::Cleanup(hook_type, finalizer) => (
            delete_hooks::clean_up(ctx, &setup, &client, hook_type).await,
            finalizer,
        ),
    };
    match done {
        Ok(true) => {
            info!(app = %name, "{finalizer} done");
            remove_finalizers(ctx, app, &[finalizer]).await?;
            Ok(Action::await_change())
        }
        Ok(false) => Ok(Action::requeue(RECHECK)),
        Err(message) => {
            deletion_error(ctx, app, message).await?;
            Ok(Action::requeue(RECHECK * 5))
        }
    }
}

/// A deletion step that runs or removes hooks, and the finalizer it removes when done.
enum Step {
    Hooks(HookType, &'static str),
    Cleanup(HookType, &'static str),
}

/// Deletes the app's resources (those the project permits and `Delete=false` does not keep);
/// the resources finalizer goes once none is left.
async fn delete_resources(
    ctx: &Context,
    app: &Application,
    setup: &Setup,
    client: &kube::Client,
    policy: CascadePolicy,
) -> kube::Result<Action> {
    let name = app.name_any();
    let propagation = match policy {
        CascadePolicy::Foreground => PropagationPolicy::Foreground,
        CascadePolicy::Background => PropagationPolicy::Background,
    };
    let destination = setup.destination(app);
    let mut to_delete = Vec::new();
    let mut unconfirmed = Vec::new();
    for object in setup.cache.app_resources(&setup.instance) {
        let live = object.object();
        let (options, _) = SyncOptionSet::default().for_resource(&live);
        // `Delete=false` resources outlive their app; so do ones the project does not permit.
        if !options.delete
            || outlives_app(app, &object.key, &live)
            || !setup.policy.is_resource_permitted(
                &object.key.group,
                &object.key.kind,
                &object.key.name,
                &object.key.namespace,
                &destination,
            )
        {
            continue;
        }
        if options.delete_confirm {
            unconfirmed.push(object.key.to_string());
        }
        to_delete.push(object);
    }
    // `Delete=confirm` holds the whole deletion until someone approves it after it began.
    let since = app.metadata.deletion_timestamp.as_ref().map(|t| t.0);
    if !unconfirmed.is_empty() && !since.is_some_and(|since| app.deletion_approved_since(since)) {
        info!(app = %name, resources = ?unconfirmed, "deletion waits for confirmation (Delete=confirm)");
        return Ok(Action::requeue(RECHECK * 5));
    }
    let mut remaining = 0;
    let mut failures = Vec::new();
    for object in to_delete {
        remaining += 1;
        if object.object()["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let Some((resource, namespaced)) = setup
            .cache
            .resolve_api_version(&object.api_version, &object.key.kind)
        else {
            continue;
        };
        let api: Api<DynamicObject> = if namespaced {
            Api::namespaced_with(client.clone(), &object.key.namespace, &resource)
        } else {
            Api::all_with(client.clone(), &resource)
        };
        let params = DeleteParams {
            propagation_policy: Some(propagation.clone()),
            ..DeleteParams::default()
        };
        match api.delete(&object.key.name, &params).await {
            Ok(_) => info!(app = %name, resource = %object.key, "deleted"),
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(err) => failures.push(format!("{}: {err}", object.key)),
        }
    }
    if !failures.is_empty() {
        deletion_error(ctx, app, failures.join("; ")).await?;
        return Ok(Action::requeue(RECHECK));
    }
    if remaining > 0 {
        return Ok(Action::requeue(RECHECK));
    }
    info!(app = %name, "all resources deleted; removing the finalizer");
    remove_finalizers(ctx, app, &RESOURCES_FINALIZERS).await?;
    Ok(Action::await_change())
}

/// What cascade deletion leaves in place although the app tracks it, as Argo CD's
/// `shouldBeDeleted`: a CRD (deleting it would delete every object of its kind, whoever owns
/// them), the Application itself when it tracks itself, and what Helm marks
/// `helm.sh/resource-policy: keep`.
fn outlives_app(app: &Application, key: &ResourceKey, object: &serde_json::Value) -> bool {
    let crd = key.group == "apiextensions.k8s.io" && key.kind == "CustomResourceDefinition";
    let itself = key.group == "argoproj.io"
        && key.kind == "Application"
        && key.name == app.name_any()
        && Some(key.namespace.as_str()) == app.metadata.namespace.as_deref()
        && object["metadata"]["uid"].as_str() == app.metadata.uid.as_deref();
    let helm_keep = object["metadata"]["annotations"]["helm.sh/resource-policy"]
        .as_str()
        .is_some_and(|policy| policy.split(',').any(|p| p.trim() == "keep"));
    crd || itself || helm_keep
}

async fn deletion_error(ctx: &Context, app: &Application, message: String) -> kube::Result<()> {
    let old = app.status.clone().unwrap_or_default();
    let mut new: ApplicationStatus = old.clone();
    new.conditions
        .retain(|c| c.condition_type != condition::DELETION_ERROR);
    new.conditions
        .push(ferry_types::application::ApplicationCondition {
            condition_type: condition::DELETION_ERROR.into(),
            message,
            last_transition_time: Some(crate::operation::now()),
            ..Default::default()
        });
    new.sync.status = SyncStatusCode::Unknown;
    patch::write_changes(
        &ctx.apps_in(&app.namespace().unwrap_or_default()),
        &app.name_any(),
        &ctx.settings.field_manager,
        "status",
        &old,
        &new,
    )
    .await
    .map(|_| ())
}

/// Removes finalizers with a merge patch that carries the resourceVersion it read, so a
/// finalizer someone else added meanwhile is not lost (the write fails and is retried).
async fn remove_finalizers(ctx: &Context, app: &Application, names: &[&str]) -> kube::Result<()> {
    let kept: Vec<&String> = app
        .finalizers()
        .iter()
        .filter(|f| !names.contains(&f.as_str()))
        .collect();
    let body = json!({"metadata": {
        "finalizers": kept,
        "resourceVersion": app.resource_version(),
    }});
    match patch::write(
        &ctx.apps_in(&app.namespace().unwrap_or_default()),
        &app.name_any(),
        &ctx.settings.field_manager,
        body,
    )
    .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app() -> Application {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "apps", "namespace": "argocd", "uid": "u-1"},
            "spec": {"destination": {}, "project": "default"}
        }))
        .unwrap()
    }

    fn key(group: &str, kind: &str, namespace: &str, name: &str) -> ResourceKey {
        ResourceKey {
            group: group.into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    #[test]
    fn crds_the_app_itself_and_helm_kept_objects_outlive_the_app() {
        let app = app();
        let crd = key(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            "",
            "gadgets.x.io",
        );
        assert!(outlives_app(&app, &crd, &json!({"metadata": {}})));
        let itself = key("argoproj.io", "Application", "argocd", "apps");
        assert!(outlives_app(
            &app,
            &itself,
            &json!({"metadata": {"uid": "u-1"}})
        ));
        // An Application of the same name that is not this one (another uid) goes.
        assert!(!outlives_app(
            &app,
            &itself,
            &json!({"metadata": {"uid": "u-2"}})
        ));
        let child = key("argoproj.io", "Application", "argocd", "child");
        assert!(!outlives_app(
            &app,
            &child,
            &json!({"metadata": {"uid": "u-3"}})
        ));
        let config = key("", "ConfigMap", "web", "settings");
        let kept = json!({"metadata": {"annotations": {"helm.sh/resource-policy": "keep"}}});
        assert!(outlives_app(&app, &config, &kept));
        assert!(!outlives_app(&app, &config, &json!({"metadata": {}})));
    }
}
