//! A `resource` template's node. Upstream runs `argoexec resource` (kubectl) in a pod; ferry
//! acts from the controller with its own client instead, so no pod, no executor image and no
//! RBAC for the workflow's service account is needed — the controller's own service account
//! needs rights over the kinds that workflows' resource templates touch.
//!
//! The operator stays pure: for every unfinished resource node a pass emits a [`Request`]; the
//! controller [`perform`]s it and [`record`]s the [`Report`] into the status it writes. The
//! node is Pending until the action is done, then Running while its conditions are checked
//! every [`POLL`]; the object acted on is kept in the node (`ferryResource`), so a later pass or
//! a restarted controller polls it without acting again.

use std::time::Duration;

use ferry_types::workflow::{NodeStatus, Outputs, Parameter, Phase, ResourceTemplate, Template};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::Discovery;
use kube::discovery::Scope as ApiScope;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::resource_flags;
use super::{Call, Op};
use crate::condition::{Check, Condition, check};
use crate::expr::{Scope, substitute};
use crate::jsonpath;

/// How often a resource's conditions are checked (upstream's `RESOURCE_STATE_CHECK_INTERVAL`).
pub const POLL: Duration = Duration::from_secs(5);

/// The node field holding the object a resource node acted on.
const ACTED: &str = "ferryResource";

/// The field manager of `apply` (server-side apply).
const FIELD_MANAGER: &str = "ferry-workflow";

/// One resource node's work for the controller.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub node_id: String,
    /// The workflow's namespace: where namespaced objects without one go.
    pub namespace: String,
    /// The template with its manifest substituted.
    pub resource: ResourceTemplate,
    pub outputs: Vec<Parameter>,
    /// The workflow as the object's controlling owner (`setOwnerReference`).
    pub owner: Option<OwnerReference>,
    /// The object already acted on, if any.
    pub acted: Option<ObjectRef>,
}

/// The object a resource node acted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

/// What became of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub phase: Phase,
    pub message: Option<String>,
    pub outputs: Option<Outputs>,
    pub acted: Option<ObjectRef>,
}

impl Report {
    fn failed(message: String) -> Self {
        Self {
            phase: Phase::Failed,
            message: Some(message),
            outputs: None,
            acted: None,
        }
    }
}

impl Op<'_> {
    pub(super) fn execute_resource(
        &mut self,
        id: &str,
        call: &Call,
        template: &Template,
        scope: &Scope,
    ) {
        if !self.may_run(id) {
            return;
        }
        let Some(resource) = &template.resource else {
            return;
        };
        let mut scope = scope.clone();
        scope.insert("node.name".into(), call.name.clone());
        let mut resource = match substituted(resource, &scope) {
            Ok(resource) => resource,
            Err(message) => return self.mark(id, Phase::Error, Some(message)),
        };
        if let Some(name) = manifest_artifact(&resource) {
            match self.manifest_from(id, name) {
                Ok(manifest) => resource.manifest = Some(manifest),
                Err(message) => return self.mark(id, Phase::Error, Some(message)),
            }
        }
        let meta = &self.workflow.metadata;
        let owner = (resource.set_owner_reference == Some(true)).then(|| OwnerReference {
            api_version: "argoproj.io/v1alpha1".into(),
            kind: "Workflow".into(),
            name: self.name.clone(),
            uid: meta.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        });
        let acted = self.nodes.get(id).and_then(acted_on);
        self.outcome.resources.push(Request {
            node_id: id.into(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            resource,
            outputs: template
                .outputs
                .iter()
                .flat_map(|o| o.parameters.clone())
                .collect(),
            owner,
            acted,
        });
    }
}

impl Op<'_> {
    /// The content of the node's input artifact `name`, for `manifestFrom.artifact` (upstream
    /// reads it from the artifact's path in its pod; the controller has the raw ones at hand).
    fn manifest_from(&self, id: &str, name: &str) -> Result<String, String> {
        let artifact = self
            .nodes
            .get(id)
            .and_then(|node| node.inputs.as_ref())
            .and_then(|inputs| inputs.artifacts.iter().find(|a| a.name == name))
            .ok_or_else(|| {
                format!("artifact {name} in `manifestFrom` refer to a non-exist artifact")
            })?;
        match &artifact.raw {
            Some(raw) => Ok(raw.data.clone()),
            None => Err(format!(
                "resource.manifestFrom.artifact: {name:?} is not a raw artifact; the controller reads only raw ones yet"
            )),
        }
    }
}

/// The input artifact `manifestFrom.artifact` names.
fn manifest_artifact(resource: &ResourceTemplate) -> Option<&str> {
    resource.manifest_from.as_ref()?["artifact"]["name"].as_str()
}

impl Op<'_> {
    /// Whether a node run by the controller itself (resource, http) may act now: not past the
    /// workflow's deadline, not shut down (else it is failed as a pod node would be).
    pub(super) fn may_run(&mut self, id: &str) -> bool {
        if self.deadline_exceeded && !self.in_exit_handler {
            self.mark(
                id,
                Phase::Failed,
                Some(super::pod_node::DEADLINE_MESSAGE.into()),
            );
            return false;
        }
        if let Some(strategy) = self.shutdown
            && !strategy.should_execute(self.in_exit_handler)
        {
            let message = format!("workflow shutdown with strategy: {}", strategy.as_str());
            self.mark(id, Phase::Failed, Some(message));
            return false;
        }
        true
    }
}

/// The template with its tags substituted (upstream substitutes the whole template): the
/// manifest, the conditions and the flags.
fn substituted(resource: &ResourceTemplate, scope: &Scope) -> Result<ResourceTemplate, String> {
    let text = |s: &Option<String>| s.as_deref().map(|s| substitute(s, scope)).transpose();
    Ok(ResourceTemplate {
        manifest: text(&resource.manifest)?,
        success_condition: text(&resource.success_condition)?,
        failure_condition: text(&resource.failure_condition)?,
        flags: resource
            .flags
            .iter()
            .map(|flag| substitute(flag, scope))
            .collect::<Result<_, _>>()?,
        ..resource.clone()
    })
}

fn acted_on(node: &NodeStatus) -> Option<ObjectRef> {
    serde_json::from_value(node.unknown.get(ACTED)?.clone()).ok()
}

/// Writes `report` into the node `id` of `nodes`.
pub fn record(
    nodes: &mut std::collections::BTreeMap<String, NodeStatus>,
    id: &str,
    report: Report,
    now: &Time,
) {
    let Some(node) = nodes.get_mut(id) else {
        return;
    };
    if node.phase.is_completed() {
        return;
    }
    if let Some(acted) = &report.acted
        && let Ok(value) = serde_json::to_value(acted)
    {
        node.unknown.insert(ACTED.into(), value);
    }
    node.phase = report.phase;
    if report.message.is_some() {
        node.message = report.message;
    }
    if report.outputs.is_some() {
        node.outputs = report.outputs;
    }
    if report.phase.is_completed() {
        node.finished_at = Some(now.clone());
    }
}

/// A failure worth trying again on the next pass (the API server unreachable, overloaded).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Transient(pub String);

/// Why an action or a check did not get through.
enum Failure {
    Transient(String),
    /// Fails the node with this message (as kubectl's error fails upstream's pod).
    Permanent(String),
}

impl From<kube::Error> for Failure {
    fn from(err: kube::Error) -> Self {
        match err {
            kube::Error::Api(status) if status.code >= 500 || status.code == 429 => {
                Failure::Transient(status.message)
            }
            kube::Error::Api(status) => Failure::Permanent(status.message),
            kube::Error::Discovery(err) => Failure::Permanent(err.to_string()),
            other => Failure::Transient(other.to_string()),
        }
    }
}

/// Acts on the request's object, or checks the object acted on; `Err` leaves the node as it
/// is for the next pass.
pub async fn perform(client: &kube::Client, request: &Request) -> Result<Report, Transient> {
    let outcome = match &request.acted {
        None => act(client, request).await,
        Some(acted) => poll(client, request, acted).await,
    };
    match outcome {
        Ok(report) => Ok(report),
        Err(Failure::Permanent(message)) => Ok(Report::failed(message)),
        Err(Failure::Transient(message)) => Err(Transient(message)),
    }
}

async fn poll(
    client: &kube::Client,
    request: &Request,
    acted: &ObjectRef,
) -> Result<Report, Failure> {
    let deleting = request.resource.action == "delete";
    let (api, _) = api_for(client, acted, &request.namespace).await?;
    let Some(object) = api.get_opt(&acted.name).await? else {
        if deleting {
            return Ok(done(Phase::Succeeded, None, None, Some(acted.clone())));
        }
        return Ok(Report::failed(format!(
            "The resource has been deleted while its status was still being checked. Will not be retried: {} {:?} not found",
            acted.kind.to_lowercase(),
            acted.name
        )));
    };
    if deleting {
        // Still there (finalizers): kubectl delete waits for it to go.
        return Ok(done(Phase::Running, None, None, Some(acted.clone())));
    }
    Ok(judge(request, acted, &object))
}

fn done(
    phase: Phase,
    message: Option<String>,
    outputs: Option<Outputs>,
    acted: Option<ObjectRef>,
) -> Report {
    Report {
        phase,
        message,
        outputs,
        acted,
    }
}

/// The conditions over the object, then its outputs once it succeeded.
fn judge(request: &Request, acted: &ObjectRef, object: &DynamicObject) -> Report {
    let resource = &request.resource;
    let object = match serde_json::to_value(object) {
        Ok(object) => object,
        Err(err) => return Report::failed(err.to_string()),
    };
    let parse = |text: &Option<String>, what: &str| match text.as_deref() {
        None | Some("") => Ok(Condition::default()),
        Some(text) => Condition::parse(text)
            .map_err(|err| format!("{what} condition '{text}' failed to parse: {err}")),
    };
    let conditions = parse(&resource.success_condition, "success")
        .and_then(|s| Ok((s, parse(&resource.failure_condition, "fail")?)));
    let (success, failure) = match conditions {
        Ok(conditions) => conditions,
        Err(message) => return done(Phase::Error, Some(message), None, Some(acted.clone())),
    };
    match check(&object, &success, &failure) {
        Check::Waiting => done(Phase::Running, None, None, Some(acted.clone())),
        Check::Failed(message) => done(Phase::Failed, Some(message), None, Some(acted.clone())),
        Check::Succeeded => match outputs(&request.outputs, &object) {
            Ok(outputs) => done(Phase::Succeeded, None, outputs, Some(acted.clone())),
            Err(message) => done(Phase::Error, Some(message), None, Some(acted.clone())),
        },
    }
}

/// The declared output parameters, from `valueFrom.jsonPath` or `valueFrom.jqFilter` over
/// the object (upstream reads them once the conditions are met).
fn outputs(declared: &[Parameter], object: &Value) -> Result<Option<Outputs>, String> {
    if declared.is_empty() {
        return Ok(None);
    }
    let mut parameters = Vec::new();
    for parameter in declared {
        let from = parameter.value_from.as_ref();
        let value = if let Some(path) = from.and_then(|f| f.json_path.as_deref()) {
            Some(jsonpath::render(path, object).map_err(|err| {
                format!(
                    "outputs.parameters.{}.valueFrom.jsonPath: {err}",
                    parameter.name
                )
            })?)
        } else if let Some(filter) = from.and_then(|f| f.jq_filter.as_deref()) {
            Some(crate::jq::render(filter, object).map_err(|err| {
                format!(
                    "outputs.parameters.{}.valueFrom.jqFilter: {err}",
                    parameter.name
                )
            })?)
        } else {
            parameter.value.clone()
        };
        parameters.push(Parameter {
            value,
            ..parameter.clone()
        });
    }
    Ok(Some(Outputs {
        parameters,
        ..Outputs::default()
    }))
}

/// Does the template's action, then judges the object it returned.
async fn act(client: &kube::Client, request: &Request) -> Result<Report, Failure> {
    let resource = &request.resource;
    let flags = match resource_flags::parse(&resource.flags) {
        Ok(flags) => flags,
        Err(message) => return Ok(Report::failed(message)),
    };
    let namespace = flags.namespace.as_deref().unwrap_or(&request.namespace);
    let manifest = resource
        .manifest
        .as_deref()
        .filter(|m| !m.trim().is_empty())
        .map(serde_yaml::from_str::<Value>)
        .transpose();
    let manifest = match manifest {
        Ok(manifest) => manifest,
        Err(err) => return Ok(Report::failed(format!("manifest: {err}"))),
    };
    if let Some((kind, name)) = &flags.object {
        return act_on_named(client, request, kind, name, namespace, manifest.as_ref()).await;
    }
    let Some(mut manifest) = manifest else {
        return Ok(Report::failed("manifest is required".into()));
    };
    let Some(target) = target(&manifest) else {
        return Ok(Report::failed(
            "Kind and name are both required but at least one of them is missing from the manifest"
                .into(),
        ));
    };
    if let Some(owner) = &request.owner {
        add_owner(&mut manifest, owner);
    }
    let (api, namespaced) = api_for(client, &target, namespace).await?;
    if namespaced && let Some(meta) = manifest.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.entry("namespace")
            .or_insert_with(|| Value::from(namespace.to_string()));
    }
    let object: DynamicObject = match serde_json::from_value(manifest.clone()) {
        Ok(object) => object,
        Err(err) => return Ok(Report::failed(format!("manifest: {err}"))),
    };
    let name = target.name.clone();
    if resource.action == "delete" {
        return delete(&api, target).await;
    }
    let result = match resource.action.as_str() {
        "create" => api.create(&PostParams::default(), &object).await,
        "apply" => {
            let params = PatchParams::apply(FIELD_MANAGER).force();
            api.patch(&name, &params, &Patch::Apply(&manifest)).await
        }
        "replace" => api.replace(&name, &PostParams::default(), &object).await,
        "patch" => {
            let patch = match resource.merge_strategy.as_deref().unwrap_or("strategic") {
                "merge" => Patch::Merge(&manifest),
                _ => Patch::Strategic(&manifest),
            };
            api.patch(&name, &PatchParams::default(), &patch).await
        }
        "get" => api.get(&name).await,
        other => return Ok(Report::failed(format!("unknown action {other:?}"))),
    };
    let object = result?;
    let acted = ObjectRef {
        name: object.metadata.name.clone().unwrap_or(name),
        namespace: object.metadata.namespace.clone(),
        ..target
    };
    Ok(judge(request, &acted, &object))
}

/// `kubectl delete --ignore-not-found`: an absent object is already deleted; else the node
/// waits until it is gone.
async fn delete(api: &Api<DynamicObject>, target: ObjectRef) -> Result<Report, Failure> {
    match api.delete(&target.name, &DeleteParams::default()).await {
        Ok(_) => Ok(done(Phase::Running, None, None, Some(target))),
        Err(kube::Error::Api(status)) if status.is_not_found() => {
            Ok(done(Phase::Succeeded, None, None, Some(target)))
        }
        Err(err) => Err(err.into()),
    }
}

/// `kubectl get|delete TYPE NAME`, or `kubectl patch TYPE NAME --type <mergeStrategy>
/// --patch-file <manifest>`: the object the flags name (a patch's manifest is the patch; for
/// `json`, a JSON patch: a list of operations).
async fn act_on_named(
    client: &kube::Client,
    request: &Request,
    kind: &str,
    name: &str,
    namespace: &str,
    manifest: Option<&Value>,
) -> Result<Report, Failure> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let Some((api_resource, capabilities)) = resource_flags::resolve(&discovery, kind) else {
        return Ok(Report::failed(format!(
            "the server doesn't have a resource type {kind:?}"
        )));
    };
    let api: Api<DynamicObject> = if resource_flags::namespaced(&capabilities) {
        Api::namespaced_with(client.clone(), namespace, &api_resource)
    } else {
        Api::all_with(client.clone(), &api_resource)
    };
    let target = ObjectRef {
        api_version: api_resource.api_version.clone(),
        kind: api_resource.kind.clone(),
        namespace: resource_flags::namespaced(&capabilities).then(|| namespace.to_string()),
        name: name.to_string(),
    };
    let manifest = match (request.resource.action.as_str(), manifest) {
        ("get", _) => {
            let object = api.get(name).await?;
            return Ok(judge(request, &target, &object));
        }
        ("delete", _) => return delete(&api, target).await,
        (_, Some(manifest)) => manifest,
        (_, None) => return Ok(Report::failed("manifest is required".into())),
    };
    let object = match request.resource.merge_strategy.as_deref() {
        Some("json") => {
            // kube's Patch::Json takes its own json-patch version's type; the body is the
            // manifest as it is, which the API server checks.
            let body =
                serde_json::to_vec(manifest).map_err(|e| Failure::Permanent(e.to_string()))?;
            let http = http::Request::patch(format!("{}/{name}", api.resource_url()))
                .header(http::header::CONTENT_TYPE, "application/json-patch+json")
                .body(body)
                .map_err(|e| Failure::Permanent(e.to_string()))?;
            client.request::<DynamicObject>(http).await?
        }
        Some("merge") => {
            api.patch(name, &PatchParams::default(), &Patch::Merge(manifest))
                .await?
        }
        _ => {
            api.patch(name, &PatchParams::default(), &Patch::Strategic(manifest))
                .await?
        }
    };
    Ok(judge(request, &target, &object))
}

/// The manifest's apiVersion, kind and name (or `generateName`, for `create`).
fn target(manifest: &Value) -> Option<ObjectRef> {
    let text = |field: &str| {
        manifest
            .get(field)
            .and_then(Value::as_str)
            .map(String::from)
    };
    let meta = manifest.get("metadata");
    let meta_text = |field: &str| {
        meta.and_then(|m| m.get(field))
            .and_then(Value::as_str)
            .map(String::from)
    };
    Some(ObjectRef {
        api_version: text("apiVersion")?,
        kind: text("kind")?,
        namespace: meta_text("namespace"),
        name: meta_text("name").or_else(|| meta_text("generateName"))?,
    })
}

fn add_owner(manifest: &mut Value, owner: &OwnerReference) {
    let Ok(owner) = serde_json::to_value(owner) else {
        return;
    };
    let Some(root) = manifest.as_object_mut() else {
        return;
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()));
    if let Some(meta) = meta.as_object_mut() {
        let owners = meta
            .entry("ownerReferences")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(owners) = owners.as_array_mut() {
            owners.push(owner);
        }
    }
}

/// The API of the object's kind (found through discovery), and whether it is namespaced.
async fn api_for(
    client: &kube::Client,
    target: &ObjectRef,
    default_namespace: &str,
) -> Result<(Api<DynamicObject>, bool), Failure> {
    let (group, version) = match target.api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", target.api_version.as_str()),
    };
    let gvk = GroupVersionKind::gvk(group, version, &target.kind);
    let (resource, capabilities) = match kube::discovery::pinned_kind(client, &gvk).await {
        Ok(found) => found,
        Err(kube::Error::Api(status)) if status.is_not_found() => {
            return Err(Failure::Permanent(format!(
                "no matches for kind {:?} in version {:?}",
                target.kind, target.api_version
            )));
        }
        Err(err) => return Err(err.into()),
    };
    Ok(match capabilities.scope {
        ApiScope::Namespaced => {
            let namespace = target.namespace.as_deref().unwrap_or(default_namespace);
            (
                Api::namespaced_with(client.clone(), namespace, &resource),
                true,
            )
        }
        ApiScope::Cluster => (Api::all_with(client.clone(), &resource), false),
    })
}

/// The actions upstream's validation accepts.
const ACTIONS: &[&str] = &["get", "create", "apply", "delete", "replace", "patch"];

/// Checks of a resource template's fields, named from `resource.` (upstream's validation, and
/// refusals of what ferry does not do).
pub fn validate(template: &Template) -> Result<(), String> {
    let Some(resource) = &template.resource else {
        return Ok(());
    };
    if !ACTIONS.contains(&resource.action.as_str()) {
        return Err(format!(
            "resource.action must be one of: {}",
            ACTIONS.join(", ")
        ));
    }
    let flags = resource_flags::parse(&resource.flags)?;
    let json = match resource.merge_strategy.as_deref() {
        None | Some("strategic" | "merge") => false,
        Some("json") => true,
        Some(other) => {
            return Err(format!(
                "resource.mergeStrategy must be one of: strategic, merge, json (not {other:?})"
            ));
        }
    };
    let manifest = resource
        .manifest
        .as_deref()
        .filter(|m| !m.trim().is_empty());
    let reading = matches!(resource.action.as_str(), "get" | "delete");
    if let Some(name) = manifest_artifact(resource) {
        if manifest.is_some() {
            return Err(
                "resource.manifestFrom: shouldn't have both `manifest` and `manifestFrom` specified in `Manifest` for resource template"
                    .into(),
            );
        }
        let inputs = template.inputs.iter().flat_map(|i| &i.artifacts);
        if !inputs.clone().any(|a| a.name == name) {
            return Err(format!(
                "resource.manifestFrom.artifact: artifact {name} in `manifestFrom` refer to a non-exist artifact"
            ));
        }
    } else if resource.manifest_from.is_some() {
        return Err("resource.manifestFrom: only `artifact: {name}` is known".into());
    } else if manifest.is_none() && !reading {
        return Err("resource.manifest or resource.manifestFrom must be specified".into());
    }
    // Tags are substituted when the node runs; a placeholder keeps the YAML checkable now.
    let placeholders = regex::Regex::new(r"\{\{[^}]*\}\}").map_err(|err| err.to_string())?;
    let parsed = match manifest {
        Some(manifest) => {
            let checkable = placeholders.replace_all(manifest, "placeholder");
            let Ok(parsed) = serde_yaml::from_str::<Value>(&checkable) else {
                return Err("resource.manifest must be a valid yaml".into());
            };
            Some(parsed)
        }
        None => None,
    };
    let from_artifact = resource.manifest_from.is_some();
    // Upstream's kubectl takes the object from the flags for a JSON patch or a patch without a
    // kind, or a get or delete without a manifest, else from the manifest (`-f`), and refuses
    // both at once.
    let kindless = parsed.as_ref().is_some_and(|p| p.get("kind").is_none());
    let named = (resource.action == "patch" && (json || kindless))
        || (reading && manifest.is_none() && !from_artifact);
    match (&flags.object, named) {
        (None, true) if json => {
            return Err(
                "resource.flags: a json patch names its object in flags (TYPE NAME or TYPE/NAME)"
                    .into(),
            );
        }
        (Some(_), false) => {
            return Err(
                "resource.flags: the manifest names the object; flags may not name another (kubectl: you may not specify resource arguments as well)"
                    .into(),
            );
        }
        _ => {}
    }
    if named && flags.object.is_none() && reading {
        return Err("resource.manifest or resource.manifestFrom must be specified".into());
    }
    if json
        && let (Some(parsed), Some(manifest)) = (&parsed, manifest)
        && !parsed.is_array()
        && !manifest.trim_start().starts_with("{{")
    {
        return Err("resource.manifest: a json patch is a list of operations".into());
    }
    let outputs = template.outputs.iter().flat_map(|o| &o.parameters);
    if resource.action == "delete"
        && (resource.success_condition.is_some()
            || resource.failure_condition.is_some()
            || outputs.clone().next().is_some())
    {
        return Err(
            "resource: successCondition, failureCondition and outputs are not supported for delete action"
                .into(),
        );
    }
    for (field, text) in [
        ("successCondition", &resource.success_condition),
        ("failureCondition", &resource.failure_condition),
    ] {
        if let Some(text) = text.as_deref().filter(|t| !t.contains("{{")) {
            Condition::parse(text).map_err(|err| format!("resource.{field}: {err}"))?;
        }
    }
    for parameter in outputs {
        let from = parameter.value_from.as_ref();
        let given = from.is_some_and(|f| f.json_path.is_some() || f.jq_filter.is_some());
        if !given && parameter.value.is_none() {
            return Err(format!(
                "outputs.parameters.{}: a resource template's outputs need valueFrom.jsonPath or valueFrom.jqFilter",
                parameter.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(yaml: &str) -> Template {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            (
                "resource: {manifest: 'a: b'}",
                "resource.action must be one of",
            ),
            (
                "resource: {action: bake, manifest: 'a: b'}",
                "resource.action must be one of",
            ),
            (
                "resource: {action: create}",
                "resource.manifest or resource.manifestFrom must be specified",
            ),
            (
                "resource: {action: delete}",
                "resource.manifest or resource.manifestFrom must be specified",
            ),
            (
                "resource: {action: create, manifest: 'a: b', manifestFrom: {artifact: {name: m}}}\ninputs: {artifacts: [{name: m}]}",
                "shouldn't have both",
            ),
            (
                "resource: {action: create, manifest: 'a: [b'}",
                "resource.manifest must be a valid yaml",
            ),
            (
                "resource: {action: create, manifestFrom: {artifact: {name: m}}}",
                "resource.manifestFrom.artifact: artifact m in `manifestFrom` refer to a non-exist artifact",
            ),
            (
                "resource: {action: create, manifest: 'a: b', flags: [--validate=false]}",
                "resource.flags",
            ),
            (
                "resource: {action: patch, mergeStrategy: json, manifest: '[]'}",
                "resource.flags: a json patch names its object in flags",
            ),
            (
                "resource: {action: patch, mergeStrategy: json, flags: [pod, p], manifest: 'a: b'}",
                "a json patch is a list of operations",
            ),
            (
                "resource: {action: create, flags: [pod, p], manifest: 'kind: Pod'}",
                "the manifest names the object",
            ),
            (
                "resource: {action: patch, mergeStrategy: other, manifest: 'a: b'}",
                "resource.mergeStrategy must be",
            ),
            (
                "resource: {action: delete, manifest: 'a: b', successCondition: a}",
                "not supported for delete action",
            ),
            (
                "resource: {action: create, manifest: 'a: b', successCondition: 'a > b'}",
                "resource.successCondition",
            ),
            (
                "resource: {action: create, manifest: 'a: b'}\noutputs: {parameters: [{name: x}]}",
                "outputs.parameters.x",
            ),
        ];
        for (yaml, expected) in cases {
            let err = validate(&template(&format!("name: t\n{yaml}"))).unwrap_err();
            assert!(err.contains(expected), "{yaml}: {err}");
        }
        let fine = "name: t
resource:
  action: create
  manifest: |
    kind: ConfigMap
    metadata: {name: '{{workflow.name}}'}
  successCondition: data.ready == yes
outputs: {parameters: [{name: x, valueFrom: {jsonPath: '{.metadata.name}'}}]}";
        assert_eq!(validate(&template(fine)), Ok(()));
        let json_patch = "name: t
resource:
  action: patch
  mergeStrategy: json
  flags: [configmap, '{{workflow.name}}', -n, other]
  manifest: '[{op: add, path: /data/x, value: y}]'";
        assert_eq!(validate(&template(json_patch)), Ok(()));
        let by_flags = "name: t\nresource: {action: delete, flags: [pod/p]}";
        assert_eq!(validate(&template(by_flags)), Ok(()));
        let from_artifact = "name: t
inputs: {artifacts: [{name: m, raw: {data: 'kind: ConfigMap'}}]}
resource: {action: create, manifestFrom: {artifact: {name: m}}}";
        assert_eq!(validate(&template(from_artifact)), Ok(()));
    }

    #[test]
    fn targets_and_owners() {
        let manifest: Value =
            serde_yaml::from_str("apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: x-}")
                .unwrap();
        let found = target(&manifest).unwrap();
        assert_eq!(
            (found.kind.as_str(), found.name.as_str()),
            ("ConfigMap", "x-")
        );
        assert!(target(&serde_json::json!({"kind": "ConfigMap"})).is_none());
        let mut manifest = manifest;
        let owner = OwnerReference {
            name: "wf".into(),
            ..OwnerReference::default()
        };
        add_owner(&mut manifest, &owner);
        assert_eq!(manifest["metadata"]["ownerReferences"][0]["name"], "wf");
    }
}
