//! An app's desired and live objects, worked out the way the controller works them out
//! (ferry-appstate), for `ferry app diff` and `ferry app manifests`: the sources rendered,
//! namespaces placed, tracking metadata added; live objects read through API discovery.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use ferry_appstate::LiveState;
use ferry_cache::{CachedObject, TrackingMethod};
use ferry_diff::ResourceResolver;
use ferry_render::AppContext;
use ferry_types::application::{ApplicationDestination, ResourceStatus};
use ferry_types::{Application, ResourceKey};
use kube::api::{ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope};
use kube::{Api, Client};
use serde_json::Value;

use crate::core::Core;
use crate::rendering::{self, local_repo_url};

/// An app's destination cluster and what it serves.
pub struct Target {
    pub client: Client,
    pub discovery: Discovery,
    /// The app's destination with the cluster's server and name both set, as projects permit
    /// resources by either.
    pub destination: ApplicationDestination,
}

impl Target {
    pub async fn connect(core: &Core, app: &Application) -> anyhow::Result<Self> {
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let destination = core
            .destination(&app.spec.destination)
            .await
            .with_context(|| format!("app {name}: destination"))?;
        let discovery = ferry_runtime::discover(&destination.client)
            .await
            .with_context(|| {
                format!(
                    "app {name}: discovering the APIs of cluster {} ({})",
                    destination.name, destination.server
                )
            })?;
        Ok(Self {
            client: destination.client,
            discovery,
            destination: ApplicationDestination {
                server: destination.server,
                name: destination.name,
                ..app.spec.destination.clone()
            },
        })
    }

    /// The live counterparts of `desired` and of the resources in the app's status, read now
    /// and kept as the controller's cluster cache keeps them (tracked to apps by `tracking`).
    pub async fn live_state(
        &self,
        desired: &[Value],
        status: &[ResourceStatus],
        tracking: &TrackingMethod,
    ) -> anyhow::Result<LiveObjects<'_>> {
        let mut objects = HashMap::new();
        let mut keep = |live: Option<Value>| {
            if let Some(object) = live.and_then(|live| CachedObject::new(live, tracking)) {
                objects.insert(object.key.clone(), Arc::new(object));
            }
        };
        for object in desired {
            if let Some((resource, scope)) = self.resolve(object)
                && object.pointer("/metadata/name").is_some()
            {
                keep(self.live_of(&resource, &scope, object).await?);
            }
        }
        for resource in status {
            keep(self.live_of_status(resource).await?);
        }
        Ok(LiveObjects {
            target: self,
            objects,
        })
    }

    /// What Helm sees as the cluster's `.Capabilities`: its version and every served kind at
    /// every served version, as the controller renders with.
    pub async fn with_capabilities(&self, context: AppContext) -> anyhow::Result<AppContext> {
        let version = self
            .client
            .apiserver_version()
            .await
            .context("reading the cluster's version")?;
        let served = self.discovery.groups().flat_map(|group| {
            group.versions().flat_map(move |version| {
                group
                    .versioned_resources(version)
                    .into_iter()
                    .map(|(resource, _)| (resource.api_version, resource.kind))
            })
        });
        let served: Vec<(String, String)> = served.collect();
        Ok(context.with_capabilities(version.git_version, served))
    }

    /// The API resource serving an object's apiVersion and kind, if the cluster serves it.
    pub fn resolve(&self, obj: &Value) -> Option<(ApiResource, Scope)> {
        let api_version = obj.get("apiVersion")?.as_str()?;
        let kind = obj.get("kind")?.as_str()?;
        self.discovery.resolve(api_version, kind)
    }

    /// The live object for a desired one; `None` when it does not exist.
    pub async fn live_of(
        &self,
        resource: &ApiResource,
        scope: &Scope,
        obj: &Value,
    ) -> anyhow::Result<Option<Value>> {
        let name = obj.pointer("/metadata/name").and_then(Value::as_str);
        let namespace = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(name) = name else {
            bail!("{} without metadata.name", resource.kind)
        };
        self.get(resource, scope, namespace, name).await
    }

    /// The live object an entry of `status.resources` names; `None` when it is gone or its kind
    /// is no longer served.
    pub async fn live_of_status(&self, status: &ResourceStatus) -> anyhow::Result<Option<Value>> {
        let found = if status.version.is_empty() {
            self.discovery
                .get(&status.group)
                .and_then(|g| g.recommended_kind(&status.kind))
        } else {
            self.discovery.resolve_gvk(&GroupVersionKind::gvk(
                &status.group,
                &status.version,
                &status.kind,
            ))
        };
        let Some((resource, capabilities)) = found else {
            return Ok(None);
        };
        self.get(
            &resource,
            &capabilities.scope,
            &status.namespace,
            &status.name,
        )
        .await
    }

    async fn get(
        &self,
        resource: &ApiResource,
        scope: &Scope,
        namespace: &str,
        name: &str,
    ) -> anyhow::Result<Option<Value>> {
        let api: Api<DynamicObject> = match scope {
            Scope::Cluster => Api::all_with(self.client.clone(), resource),
            Scope::Namespaced => Api::namespaced_with(self.client.clone(), namespace, resource),
        };
        let live = api
            .get_opt(name)
            .await
            .with_context(|| format!("reading {} {namespace}/{name}", resource.kind))?;
        live.map(serde_json::to_value)
            .transpose()
            .map_err(Into::into)
    }
}

/// The app with its single source read from a local Git repository instead (`--local-repo`).
pub fn with_local_repo(mut app: Application, repo: &Path) -> anyhow::Result<Application> {
    let name = app.metadata.name.clone().unwrap_or_default();
    if app.is_multi_source() {
        bail!("app {name} has several sources; --local-repo is for single-source apps");
    }
    let url = local_repo_url(repo).with_context(|| format!("--local-repo {}", repo.display()))?;
    let source = app
        .spec
        .source
        .as_mut()
        .with_context(|| format!("app {name} has no source"))?;
    source.repo_url = url;
    Ok(app)
}

/// Renders the app's sources, at `revision` instead of the target revision when given
/// (single-source apps).
pub async fn render(
    core: &Core,
    app: &Application,
    target: &Target,
    revision: Option<&str>,
) -> anyhow::Result<Vec<Value>> {
    let name = app.metadata.name.clone().unwrap_or_default();
    let mut sources = app.sources().to_vec();
    if let Some(revision) = revision {
        match sources.as_mut_slice() {
            [single] => single.target_revision = revision.to_string(),
            _ => bail!("app {name} has several sources; --revision is for single-source apps"),
        }
    }
    if sources.is_empty() {
        bail!("app {name} has no source");
    }
    // What the controller renders with (argocd-cm's kustomize options included), so the diff
    // shows what a sync would apply.
    let context = target
        .with_capabilities(AppContext {
            name: name.clone(),
            project: app.project().to_string(),
            namespace: app.spec.destination.namespace.clone(),
            kustomize: core.argo_settings().await?.kustomize,
            ..AppContext::default()
        })
        .await
        .with_context(|| format!("app {name}"))?;
    let git = rendering::repo_cache(core.git_credentials().await?);
    let renderer = rendering::renderer(git, Vec::new(), &rendering::Limits::default(), false);
    let rendered = renderer
        .render(&context, &sources)
        .await
        .with_context(|| format!("app {name}: rendering its sources"))?;
    for (i, source) in rendered.sources.iter().enumerate() {
        eprintln!(
            "source {}: {} @ {} ({} objects)",
            i + 1,
            source.repo_url,
            source.revision,
            source.objects
        );
    }
    Ok(rendered.objects)
}

/// The rendered objects as the controller compares them: namespaced objects in the destination
/// namespace unless they name one, cluster-scoped ones without a namespace, and marked as the
/// app's.
pub fn desired_objects(
    app: &Application,
    rendered: Vec<Value>,
    target: &Target,
    tracking: &TrackingMethod,
) -> anyhow::Result<Vec<Value>> {
    let name = app.metadata.name.as_deref().unwrap_or_default();
    ferry_appstate::desired::prepare(
        &rendered,
        &app.spec.destination.namespace,
        name,
        tracking,
        |api_version, kind| {
            target
                .discovery
                .resolve(api_version, kind)
                .map(|(_, scope)| scope == Scope::Namespaced)
        },
    )
    .map_err(|err| anyhow::anyhow!("app {name}: {err}"))
}

/// Live objects read through the API for one comparison ([`Target::live_state`]).
pub struct LiveObjects<'a> {
    target: &'a Target,
    objects: HashMap<ResourceKey, Arc<CachedObject>>,
}

impl LiveState for LiveObjects<'_> {
    fn get(&self, key: &ResourceKey) -> Option<Arc<CachedObject>> {
        self.objects.get(key).cloned()
    }

    fn tracked(&self, instance: &str) -> Vec<Arc<CachedObject>> {
        self.objects
            .values()
            .filter(|object| object.app.as_deref() == Some(instance))
            .cloned()
            .collect()
    }

    fn resolve(&self, api_version: &str, kind: &str) -> Option<(ApiResource, bool)> {
        let (resource, scope) = self.target.discovery.resolve(api_version, kind)?;
        Some((resource, scope == Scope::Namespaced))
    }
}
