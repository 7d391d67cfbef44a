//! Deleting an Application with Argo CD's resources finalizer: its resources are deleted first
//! (foreground or background propagation, as the finalizer says), and the finalizer is removed
//! once none is left. Without the finalizer the resources stay where they are.

use std::time::Duration;

use ferry_sync::SyncOptionSet;
use ferry_types::Application;
use ferry_types::application::{
    ApplicationStatus, CascadePolicy, SyncStatusCode, condition, finalizer,
};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, PropagationPolicy};
use kube::runtime::controller::Action;
use serde_json::json;
use tracing::{info, warn};

use crate::appstate;
use crate::context::Context;
use crate::impersonation;
use crate::patch;

/// How often deletion progress is checked.
const RECHECK: Duration = Duration::from_secs(2);

pub async fn finalize(ctx: &Context, app: &Application) -> kube::Result<Action> {
    let name = ctx.key_of(app);
    let Some(policy) = app.cascade_policy() else {
        return Ok(Action::await_change());
    };
    ctx.operations.terminate(&name);
    let setup = match appstate::setup(ctx, app).await {
        Ok(setup) => setup,
        Err(message) if message.starts_with("there are no clusters") => {
            // Argo CD's rule: with its cluster gone there is nothing left to delete.
            warn!(app = %name, "{message}; removing the finalizer without deleting resources");
            remove_finalizers(ctx, app).await?;
            return Ok(Action::await_change());
        }
        Err(message) => {
            deletion_error(ctx, app, message).await?;
            return Ok(Action::requeue(RECHECK * 5));
        }
    };
    // Deletions are changes to the cluster like a sync's, made as the same identity.
    let client = match impersonation::sync_identity(ctx, app, &setup)
        .await
        .and_then(|user| {
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
    let propagation = match policy {
        CascadePolicy::Foreground => PropagationPolicy::Foreground,
        CascadePolicy::Background => PropagationPolicy::Background,
    };
    let mut remaining = 0;
    let mut failures = Vec::new();
    let destination = setup.destination(app);
    for object in setup.cache.app_resources(&setup.instance) {
        let (options, _) = SyncOptionSet::default().for_resource(&object.object);
        // `Delete=false` resources outlive their app; so do ones the project does not permit.
        if !options.delete
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
        remaining += 1;
        if object.object["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let api_version = object.object["apiVersion"].as_str().unwrap_or_default();
        let Some((resource, namespaced)) = setup
            .cache
            .resolve_api_version(api_version, &object.key.kind)
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
    remove_finalizers(ctx, app).await?;
    Ok(Action::await_change())
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

/// Removes the resources finalizers with a merge patch that carries the resourceVersion it read,
/// so a finalizer someone else added meanwhile is not lost (the write fails and is retried).
async fn remove_finalizers(ctx: &Context, app: &Application) -> kube::Result<()> {
    let kept: Vec<&String> = app
        .finalizers()
        .iter()
        .filter(|f| {
            ![
                finalizer::RESOURCES,
                finalizer::RESOURCES_FOREGROUND,
                finalizer::RESOURCES_BACKGROUND,
            ]
            .contains(&f.as_str())
        })
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
