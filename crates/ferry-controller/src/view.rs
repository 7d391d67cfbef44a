//! What the API server asks the controller about one Application, in Argo CD's JSON shapes:
//! its managed resources with their target, live and predicted states (for `app diff`), the
//! tree of its live resources and what they own (for the UI and `app resources`), and its
//! rendered manifests at a revision (for `app manifests`). Argo CD's server reads the first two
//! from the controller's cache in Redis; here they are computed on demand from the controller's
//! caches (the render cache and the cluster cache), so nothing is stored twice.
//!
//! Secret values are masked in everything answered.

use std::collections::BTreeSet;

use ferry_appstate::collect_images;
use ferry_render::{Rendered, SourceRevision};
use ferry_types::Application;
use kube::ResourceExt;
use serde_json::{Value, json};

use crate::appstate::{compare_with_live, render_context, render_desired, setup};
use crate::context::Context;

mod revision_details;
mod server_side_diff;

pub use revision_details::{chart_details, oci_metadata};
pub use server_side_diff::{ServerSideDiffQuery, server_side_diff};

/// Why a view cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("application {0} not found")]
    NotFound(String),
    /// Another replica's shard holds the app's cluster; it has the caches to answer.
    #[error("application {0} belongs to another controller shard")]
    OtherShard(String),
    /// The app cannot be rendered or compared; the message names the source and cause.
    #[error("{0}")]
    Failed(String),
    /// The request names something the app does not manage.
    #[error("{0}")]
    PermissionDenied(String),
}

/// The app with key `name` (its instance name, `<namespace>_<name>` outside the control
/// namespace).
async fn application(ctx: &Context, name: &str) -> Result<Application, ViewError> {
    let (apps, app_name) = ctx.app_api(name);
    let object = apps
        .get_opt(app_name)
        .await
        .map_err(|err| ViewError::Failed(format!("reading application {name}: {err}")))?
        .ok_or_else(|| ViewError::NotFound(name.to_string()))?;
    if !ctx.sharding.owns_app(&ctx.clusters, &object) {
        return Err(ViewError::OtherShard(name.to_string()));
    }
    serde_json::to_value(object)
        .and_then(serde_json::from_value)
        .map_err(|err| ViewError::Failed(format!("application {name}: {err}")))
}

fn masked(object: Option<Value>) -> String {
    match object {
        Some(mut object) => {
            ferry_diff::mask_secrets(None, Some(&mut object));
            object.to_string()
        }
        None => String::new(),
    }
}

/// Argo CD's `ManagedResourcesResponse`: per resource, the states as JSON strings (empty when
/// absent) and the unified diff, Secret values masked alike in target and live.
pub async fn managed_resources(ctx: &Context, name: &str) -> Result<Value, ViewError> {
    let app = application(ctx, name).await?;
    let setup = setup(ctx, &app).await.map_err(ViewError::Failed)?;
    let (_, desired) = render_desired(ctx, &app, &setup, app.sources())
        .await
        .map_err(ViewError::Failed)?;
    let comparison = compare_with_live(ctx, &app, &setup, &desired, true)
        .await
        .map_err(ViewError::Failed)?;
    let items: Vec<Value> = comparison
        .states
        .into_iter()
        .map(|mut states| {
            ferry_diff::mask_secrets(states.target.as_mut(), states.live.as_mut());
            ferry_diff::mask_secrets(
                states.predicted_live.as_mut(),
                states.normalized_live.as_mut(),
            );
            let show = |object: Option<Value>| object.map(|o| o.to_string()).unwrap_or_default();
            json!({
                "group": states.key.group,
                "kind": states.key.kind,
                "namespace": states.key.namespace,
                "name": states.key.name,
                "version": states.version,
                "hook": states.hook,
                "targetState": show(states.target),
                "liveState": show(states.live),
                "normalizedLiveState": show(states.normalized_live),
                "predictedLiveState": show(states.predicted_live),
                "diff": states.diff,
                "modified": !states.diff.is_empty(),
            })
        })
        .collect();
    Ok(json!({ "items": items }))
}

/// Argo CD's `ApplicationTree`: the app's live resources and, through owner references, what
/// they own, each with its health and images.
pub async fn resource_tree(ctx: &Context, name: &str) -> Result<Value, ViewError> {
    let app = application(ctx, name).await?;
    let setup = setup(ctx, &app).await.map_err(ViewError::Failed)?;
    let tree = setup.cache.tree(&setup.instance);
    let uids: std::collections::HashMap<_, _> = tree
        .iter()
        .map(|node| (node.object.key.clone(), node.object.uid.clone()))
        .collect();
    let nodes: Vec<Value> = tree
        .iter()
        .map(|node| {
            let object = node.object.object();
            let key = &node.object.key;
            let mut images = BTreeSet::new();
            collect_images(&object, &mut images);
            let parents: Vec<Value> = node
                .parents
                .iter()
                .map(|parent| {
                    json!({
                        "group": parent.group,
                        "kind": parent.kind,
                        "namespace": parent.namespace,
                        "name": parent.name,
                        "uid": uids.get(parent).cloned().unwrap_or_default(),
                    })
                })
                .collect();
            let version = node
                .object
                .api_version
                .rsplit('/')
                .next()
                .unwrap_or_default();
            let mut node = json!({
                "group": key.group,
                "version": version,
                "kind": key.kind,
                "namespace": key.namespace,
                "name": key.name,
                "uid": node.object.uid,
                "resourceVersion": node.object.resource_version,
                "parentRefs": parents,
                "createdAt": object["metadata"]["creationTimestamp"],
            });
            if !images.is_empty() {
                node["images"] = json!(images);
            }
            if let Some(health) = ferry_health::assess(&object, &ctx.argo_cm.get().health) {
                node["health"] = json!({
                    "status": ferry_appstate::health_code(health.status).to_string(),
                    "message": health.message,
                });
            }
            node
        })
        .collect();
    Ok(json!({ "nodes": nodes }))
}

/// Argo CD's `RevisionMetadata`: author, date, message and tags of commit `revision` (a SHA, as
/// Argo CD requires) of one of the app's sources — the one at `source_index` (the first by
/// default) of its spec, or of history entry `version_id` — read from the repository.
pub async fn revision_metadata(
    ctx: &Context,
    name: &str,
    revision: &str,
    source_index: Option<usize>,
    version_id: Option<i64>,
) -> Result<Value, ViewError> {
    let (app, source) = app_source(ctx, name, source_index, version_id).await?;
    if source.is_chart() {
        return Err(ViewError::Failed(format!(
            "source {} is a Helm chart: it has no commits",
            source.describe()
        )));
    }
    let git = ctx.signatures.git().for_project(app.project());
    let commit = git
        .commit_metadata(&source.repo_url, revision)
        .await
        .map_err(|err| ViewError::Failed(err.to_string()))?;
    let date = jiff::Timestamp::from_second(commit.date)
        .map_err(|err| ViewError::Failed(format!("commit {}: {err}", commit.sha)))?;
    Ok(json!({
        "author": commit.author,
        "date": date.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "tags": commit.tags,
        "message": commit.message,
    }))
}

/// The app with key `name` and its source at `source_index` of its spec or of history entry
/// `version_id` ([`source_at`]).
async fn app_source(
    ctx: &Context,
    name: &str,
    source_index: Option<usize>,
    version_id: Option<i64>,
) -> Result<(Application, ferry_types::source::ApplicationSource), ViewError> {
    let app = application(ctx, name).await?;
    let source = source_at(&app, source_index, version_id)?;
    Ok((app, source))
}

/// The app's source at `source_index` (the first by default) of its spec, or of history entry
/// `version_id` (Argo CD's `getAppSourceBySourceIndexAndVersionId`).
fn source_at(
    app: &Application,
    source_index: Option<usize>,
    version_id: Option<i64>,
) -> Result<ferry_types::source::ApplicationSource, ViewError> {
    let mut sources = match version_id {
        None => app.sources().to_vec(),
        Some(id) => history_sources(app, id)?,
    };
    let index = source_index.unwrap_or(0);
    if index >= sources.len() {
        return Err(ViewError::Failed(format!(
            "source index {index} not found because there are only {} sources",
            sources.len()
        )));
    }
    Ok(sources.swap_remove(index))
}

/// The sources an app had at history entry `id`.
fn history_sources(
    app: &Application,
    id: i64,
) -> Result<Vec<ferry_types::source::ApplicationSource>, ViewError> {
    let entry = app
        .status
        .iter()
        .flat_map(|status| &status.history)
        .find(|entry| entry.id == id)
        .ok_or_else(|| {
            ViewError::Failed(format!("revision history not found for version ID {id}"))
        })?;
    Ok(if entry.sources.is_empty() {
        entry.source.clone().into_iter().collect()
    } else {
        entry.sources.clone()
    })
}

/// Argo CD's `ManifestResponse`: the app rendered at `revision` (its target revision when
/// empty; single-source apps only, as in Argo CD), each object as a JSON string.
pub async fn manifests(ctx: &Context, name: &str, revision: &str) -> Result<Value, ViewError> {
    let app = application(ctx, name).await?;
    let setup = setup(ctx, &app).await.map_err(ViewError::Failed)?;
    let mut sources = app.sources().to_vec();
    if !revision.is_empty() {
        if sources.len() != 1 {
            return Err(ViewError::Failed(format!(
                "application {}: a revision can only be given for a single-source app",
                app.name_any()
            )));
        }
        sources[0].target_revision = revision.to_string();
    }
    let (rendered, _) = render_desired(ctx, &app, &setup, &sources)
        .await
        .map_err(ViewError::Failed)?;
    Ok(manifest_response(&app, &setup, rendered))
}

/// Argo CD's `GetManifestsWithFiles`: the app's source (the first of a multi-source app's, as
/// Argo CD's) rendered for its cluster from uploaded files — a gzip'd tar of a directory, as
/// `argocd app diff --local --server-side-generate` sends it — instead of its repository
/// ([`ferry_render::Renderer::render_archive`]); answered as [`manifests`].
pub async fn manifests_with_files(
    ctx: &Context,
    name: &str,
    archive: Vec<u8>,
) -> Result<Value, ViewError> {
    let app = application(ctx, name).await?;
    let setup = setup(ctx, &app).await.map_err(ViewError::Failed)?;
    let render_context = render_context(ctx, &app, &setup)
        .await
        .map_err(ViewError::Failed)?;
    let source = app.sources().first().cloned().unwrap_or_default();
    let (kind, objects) = ctx
        .renderer
        .render_archive(&render_context, &source, archive)
        .await
        .map_err(|err| {
            ViewError::Failed(format!("rendering application {}: {err}", app.name_any()))
        })?;
    let rendered = Rendered {
        sources: vec![SourceRevision {
            repo_url: source.repo_url.clone(),
            revision: "streamed".into(),
            source_type: Some(kind),
            objects: objects.len(),
        }],
        objects: objects.to_vec(),
    };
    Ok(manifest_response(&app, &setup, rendered))
}

/// Argo CD's `ManifestResponse` of objects rendered for `app`: each object as a JSON string,
/// Secret values masked.
fn manifest_response(
    app: &Application,
    setup: &crate::appstate::Setup,
    rendered: Rendered,
) -> Value {
    let manifests: Vec<String> = rendered
        .objects
        .into_iter()
        .map(|object| masked(Some(object)))
        .collect();
    let source = rendered.sources.first();
    json!({
        "manifests": manifests,
        "namespace": app.spec.destination.namespace,
        "server": setup.cluster.server,
        "revision": source.map(|s| s.revision.clone()).unwrap_or_default(),
        "revisions": rendered.sources.iter().map(|s| s.revision.clone()).collect::<Vec<_>>(),
        "sourceType": source
            .and_then(|s| s.source_type)
            .map(|t| t.to_string())
            .unwrap_or_default(),
    })
}
