//! Argo Workflows' `argoproj.io/v1alpha1` kinds: `Workflow`, `WorkflowTemplate`,
//! `ClusterWorkflowTemplate`, `CronWorkflow` and `WorkflowEventBinding`.
//!
//! Field names are upstream's exactly. The fields ferry's workflow engine reads are typed; every
//! other field is kept as written (`unknown` maps, and containers as JSON objects, since Argo's
//! container templates may omit the `name` a Kubernetes `Container` requires), so a
//! read-modify-write never drops what a newer Argo manifest holds.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::object::check_type;
use crate::source::UnknownFields;

mod artifact;
pub use artifact::*;

/// `spec` of a Workflow, and of the templates that hold one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<Template>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Arguments>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// The template run after the workflow ends, whatever its phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_exit: Option<String>,
    /// Seconds the workflow may run before it is failed and its pods deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Value>>,
    /// Given to every pod: to pull the executor's image and the templates' images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<Vec<Value>>,
    /// `Stop` (no new steps, exit handlers run) or `Terminate` (nothing more runs); set by
    /// `argo stop`/`terminate`. Running pods are deleted either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<String>,
    /// No new steps while true; set by `argo suspend`, cleared by `argo resume`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_template_ref: Option<WorkflowTemplateRef>,
    /// Most pods of the workflow running at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<i64>,
    /// When the workflow's pods are deleted.
    #[serde(default, rename = "podGC", skip_serializing_if = "Option::is_none")]
    pub pod_gc: Option<PodGc>,
    /// When the finished workflow itself is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_strategy: Option<TtlStrategy>,
    /// Which artifact repository the workflow's artifacts go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_repository_ref: Option<ArtifactRepositoryRef>,
    /// Kubernetes volumes the templates' containers may mount by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<Value>>,
    /// PersistentVolumeClaims created for the workflow (`<workflow>-<name>`), mountable by
    /// `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_claim_templates: Option<Vec<Value>>,
    /// A strategic merge patch (YAML or JSON) of every pod's spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_spec_patch: Option<String>,
    /// When those claims are deleted.
    #[serde(
        default,
        rename = "volumeClaimGC",
        skip_serializing_if = "Option::is_none"
    )]
    pub volume_claim_gc: Option<VolumeClaimGc>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `arguments`: parameters (and artifacts, kept as written) given to a workflow or template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arguments {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<Artifact>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `inputs` of a template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inputs {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<Artifact>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `outputs` of a template, and of a node in the status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outputs {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<Artifact>,
    /// A script's standard output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// A parameter of `arguments`, `inputs` or `outputs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameter {
    pub name: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "any_string"
    )]
    pub value: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "any_string"
    )]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFrom>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `valueFrom` of an output parameter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueFrom {
    /// A file in the main container whose content is the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A reference such as `{{steps.x.outputs.parameters.y}}`, for steps and dag templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    /// kubectl's JSONPath template over a resource template's object, e.g. `{.metadata.name}`.
    #[serde(default, rename = "jsonPath", skip_serializing_if = "Option::is_none")]
    pub json_path: Option<String>,
    /// A jq filter over a resource template's object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jq_filter: Option<String>,
    /// An expression over an event, for a WorkflowEventBinding's submitted arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "any_string"
    )]
    pub default: Option<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// One template of `spec.templates`. Exactly one of `container`, `script`, `steps`, `dag`,
/// `suspend`, `resource`, `http` (or a kind ferry does not run yet, kept in `unknown`) says what
/// it does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Inputs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Outputs>,
    /// A Kubernetes container, as written (its `name` is optional here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Map<String, Value>>,
    /// A container with `source`, run by its `command` as a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<Map<String, Value>>,
    /// Groups run one after the other; the steps of a group run in parallel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<Vec<WorkflowStep>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dag: Option<DagTemplate>,
    /// Waits for `argo resume`, or for its `duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<SuspendTemplate>,
    /// Creates, applies, patches, replaces, deletes or gets a Kubernetes object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceTemplate>,
    /// Sends one HTTP request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpTemplate>,
    /// Most of a steps or dag template's steps or tasks running at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_strategy: Option<RetryStrategy>,
    /// Seconds the template's pod may run (the pod's own `activeDeadlineSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Value>>,
    /// Containers beside the main one (Kubernetes containers with `mirrorVolumeMounts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecars: Option<Vec<Map<String, Value>>>,
    /// Volumes of this template's pod alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<Value>>,
    /// A strategic merge patch (YAML or JSON) of this template's pod spec, after the workflow's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_spec_patch: Option<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// One step of a `steps` template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStep {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_ref: Option<TemplateRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Arguments>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_items: Option<Vec<Value>>,
    /// A JSON list (after substitution) to fan out over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_param: Option<String>,
    /// A run of numbers to fan out over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_sequence: Option<Sequence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `templateRef`: a template of a WorkflowTemplate (or, with `clusterScope`, of a
/// ClusterWorkflowTemplate).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRef {
    pub name: String,
    pub template: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_scope: Option<bool>,
}

/// `workflowTemplateRef` of a Workflow: run that WorkflowTemplate's spec, merged with this one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowTemplateRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_scope: Option<bool>,
}

/// `dag`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DagTemplate {
    pub tasks: Vec<DagTask>,
    /// The tasks whose phases decide the DAG's; its leaves when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// One task of a `dag` template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DagTask {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_ref: Option<TemplateRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Arguments>,
    /// Tasks that must succeed first (the older form of `depends`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
    /// An expression over other tasks' results, e.g. `A && (B.Failed || C.Skipped)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_items: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_param: Option<String>,
    /// A run of numbers to fan out over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_sequence: Option<Sequence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `suspend` of a template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuspendTemplate {
    /// How long to wait before resuming by itself: seconds, or a duration such as `20s`, `2m`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "any_string"
    )]
    pub duration: Option<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `resource` of a template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceTemplate {
    /// `get`, `create`, `apply`, `delete`, `replace` or `patch`.
    #[serde(default)]
    pub action: String,
    /// For `patch`: `strategic` (the default), `merge` or `json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_strategy: Option<String>,
    /// The object as YAML or JSON, `{{...}}` tags substituted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// `{artifact: ...}`: the manifest from an input artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_from: Option<Value>,
    /// Makes the workflow the object's controlling owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_owner_reference: Option<bool>,
    /// A label-selector-like expression over the object's fields, e.g. `status.succeeded > 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_condition: Option<String>,
    /// Extra `kubectl` arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `http` of a template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpTemplate {
    /// `GET` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default)]
    pub url: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HttpHeader>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
    /// An expression over `response.statusCode`, `response.body`, `response.headers`; a 2xx
    /// status when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_from: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// One header of an `http` template: a `value`, or `valueFrom.secretKeyRef`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpHeader {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<HttpHeaderSource>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpHeaderSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<k8s_openapi::api::core::v1::SecretKeySelector>,
}

/// `withSequence`: numbers from `start` (0 by default) to `end`, or `count` of them, each
/// formatted with `format` (printf's, `%d` by default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sequence {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "any_string"
    )]
    pub count: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "any_string"
    )]
    pub start: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "any_string"
    )]
    pub end: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// `retryStrategy.backoff`: wait `duration × factor^(attempts - 1)` before each retry, and
/// give up once `maxDuration` since the first attempt has passed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "any_string"
    )]
    pub duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<String>,
    /// The longest single wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `podGC`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodGc {
    /// `OnPodCompletion`, `OnPodSuccess`, `OnWorkflowCompletion` or `OnWorkflowSuccess`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// How long after the pod (or workflow) finished its pods are deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_delay_duration: Option<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `volumeClaimGC`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeClaimGc {
    /// `OnWorkflowCompletion` (the default) or `OnWorkflowSuccess`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `ttlStrategy`: seconds after which a finished workflow is deleted (the one for its
/// outcome, else `secondsAfterCompletion`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TtlStrategy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_completion: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_success: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_failure: Option<i64>,
}

/// `retryStrategy`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryStrategy {
    /// Retries after the first attempt (no limit when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<IntOrString>,
    /// `Always`, `OnFailure` (the default), `OnError` or `OnTransientError`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// A workflow's or a node's phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Phase {
    #[default]
    Pending,
    Running,
    Succeeded,
    Skipped,
    Failed,
    Error,
    Omitted,
}

impl Phase {
    /// Done, whatever the outcome.
    pub fn is_completed(self) -> bool {
        !matches!(self, Phase::Pending | Phase::Running)
    }

    pub fn is_failed_or_error(self) -> bool {
        matches!(self, Phase::Failed | Phase::Error)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Skipped => "Skipped",
            Phase::Failed => "Failed",
            Phase::Error => "Error",
            Phase::Omitted => "Omitted",
        }
    }
}

/// `status` of a Workflow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStatus {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "phase_or_empty"
    )]
    pub phase: Option<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// Completed pods out of all pods so far, as `n/m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Every node of the workflow's graph, by node ID.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes: BTreeMap<String, NodeStatus>,
    /// The templates `templateRef`s name, as they were when the workflow started, by
    /// `namespaced/<WorkflowTemplate>/<template>` or `cluster/<ClusterWorkflowTemplate>/<template>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stored_templates: BTreeMap<String, Template>,
    /// The spec `workflowTemplateRef` names, as it was when the workflow started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_workflow_template_spec: Option<WorkflowSpec>,
    /// The artifact repository, as read when the workflow first needed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_repository_ref: Option<ArtifactRepositoryRefStatus>,
    /// The claims of `volumeClaimTemplates` created and not yet deleted, as pod volumes
    /// (`name` the template's, `persistentVolumeClaim.claimName` the claim's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub persistent_volume_claims: Vec<Value>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// One node of `status.nodes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    pub id: String,
    pub name: String,
    pub display_name: String,
    /// `Pod`, `Steps`, `StepGroup`, `DAG`, `Retry`, `Skipped`...
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_ref: Option<TemplateRef>,
    /// Where the template was found: `local/<workflow>`, `namespaced/<WorkflowTemplate>`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_scope: Option<String>,
    #[serde(default)]
    pub phase: Phase,
    /// The ID of the steps or dag node this node belongs to.
    #[serde(
        default,
        rename = "boundaryID",
        skip_serializing_if = "Option::is_none"
    )]
    pub boundary_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Inputs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Outputs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_node_name: Option<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `spec` of a CronWorkflow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CronWorkflowSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<String>,
    /// `Allow` (the default), `Forbid` or `Replace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// The IANA time zone of the schedules (UTC when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// A run missed by more than this many seconds is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_deadline_seconds: Option<i64>,
    /// Succeeded workflows kept (3 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful_jobs_history_limit: Option<i64>,
    /// Failed workflows kept (1 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_jobs_history_limit: Option<i64>,
    pub workflow_spec: WorkflowSpec,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// Upstream's parameter values are "any string": YAML may give a number or a boolean.
fn any_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}

/// A fresh workflow's phase is `""` upstream.
fn phase_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Phase>, D::Error> {
    match Option::<String>::deserialize(d)?.as_deref() {
        None | Some("") => Ok(None),
        Some(phase) => Phase::deserialize(serde_json::Value::String(phase.into()))
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// The serialized form of a root kind: `apiVersion` and `kind` around `metadata`, `spec` and
/// an optional `status`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Root<Spec, Status> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(default)]
    metadata: ObjectMeta,
    spec: Spec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
    #[serde(flatten)]
    unknown: UnknownFields,
}

/// Declares a root kind: its struct, its `apiVersion`/`kind` check on reading, both written
/// back on serializing, and its `kube::Resource` glue. Kinds without `status` keep one, if
/// written, among their unknown fields.
macro_rules! workflow_kind {
    ($(#[$doc:meta])* $ty:ident, $kind:literal, $plural:literal, $scope:ty, $spec:ty, status: $status:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $ty {
            pub metadata: ObjectMeta,
            pub spec: $spec,
            pub status: Option<$status>,
            pub unknown: UnknownFields,
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let root = Root::<$spec, $status>::deserialize(d)?;
                check_type(root.api_version.as_deref(), root.kind.as_deref(), $kind)
                    .map_err(serde::de::Error::custom)?;
                Ok(Self {
                    metadata: root.metadata,
                    spec: root.spec,
                    status: root.status,
                    unknown: root.unknown,
                })
            }
        }

        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                Root {
                    api_version: Some(crate::object::API_VERSION.into()),
                    kind: Some($kind.into()),
                    metadata: self.metadata.clone(),
                    spec: &self.spec,
                    status: self.status.as_ref(),
                    unknown: self.unknown.clone(),
                }
                .serialize(serializer)
            }
        }

        resource_glue!($ty, $kind, $plural, $scope);
    };
    ($(#[$doc:meta])* $ty:ident, $kind:literal, $plural:literal, $scope:ty, $spec:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $ty {
            pub metadata: ObjectMeta,
            pub spec: $spec,
            pub unknown: UnknownFields,
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let root = Root::<$spec, Value>::deserialize(d)?;
                check_type(root.api_version.as_deref(), root.kind.as_deref(), $kind)
                    .map_err(serde::de::Error::custom)?;
                let mut unknown = root.unknown;
                if let Some(status) = root.status {
                    unknown.insert("status".into(), status);
                }
                Ok(Self {
                    metadata: root.metadata,
                    spec: root.spec,
                    unknown,
                })
            }
        }

        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                Root::<_, Value> {
                    api_version: Some(crate::object::API_VERSION.into()),
                    kind: Some($kind.into()),
                    metadata: self.metadata.clone(),
                    spec: &self.spec,
                    status: None,
                    unknown: self.unknown.clone(),
                }
                .serialize(serializer)
            }
        }

        resource_glue!($ty, $kind, $plural, $scope);
    };
}

macro_rules! resource_glue {
    ($ty:ident, $kind:literal, $plural:literal, $scope:ty) => {
        impl kube::Resource for $ty {
            type DynamicType = ();
            type Scope = $scope;

            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                crate::object::GROUP.into()
            }
            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                crate::object::VERSION.into()
            }
            fn api_version(_: &()) -> std::borrow::Cow<'_, str> {
                crate::object::API_VERSION.into()
            }
            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

workflow_kind!(
    /// An Argo Workflows `Workflow`.
    Workflow, "Workflow", "workflows", k8s_openapi::NamespaceResourceScope, WorkflowSpec,
    status: WorkflowStatus
);
workflow_kind!(
    /// An Argo Workflows `WorkflowTemplate`: a workflow spec to submit or reference.
    WorkflowTemplate, "WorkflowTemplate", "workflowtemplates",
    k8s_openapi::NamespaceResourceScope, WorkflowSpec
);
workflow_kind!(
    /// An Argo Workflows `ClusterWorkflowTemplate`: a WorkflowTemplate for every namespace.
    ClusterWorkflowTemplate, "ClusterWorkflowTemplate", "clusterworkflowtemplates",
    k8s_openapi::ClusterResourceScope, WorkflowSpec
);
workflow_kind!(
    /// An Argo Workflows `CronWorkflow`: a workflow spec submitted on a schedule.
    CronWorkflow, "CronWorkflow", "cronworkflows", k8s_openapi::NamespaceResourceScope,
    CronWorkflowSpec, status: Value
);

workflow_kind!(
    /// An Argo Workflows `WorkflowEventBinding`: which events submit which WorkflowTemplate.
    WorkflowEventBinding, "WorkflowEventBinding", "workfloweventbindings",
    k8s_openapi::NamespaceResourceScope, WorkflowEventBindingSpec
);

/// `spec` of a WorkflowEventBinding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowEventBindingSpec {
    pub event: EventSelector,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submit: Option<EventSubmit>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `spec.event`: an expression over the event's `payload`, `metadata` and `discriminator`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSelector {
    pub selector: String,
}

/// `spec.submit`: the template to submit, and arguments whose `valueFrom.event` is an expression.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSubmit {
    pub workflow_template_ref: WorkflowTemplateRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Arguments>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// Labels and annotations upstream puts on a workflow's pods.
pub mod labels {
    /// On pods (and completed workflows): the workflow's name.
    pub const WORKFLOW: &str = "workflows.argoproj.io/workflow";
    /// On workflows: `true` once the workflow finished.
    pub const COMPLETED: &str = "workflows.argoproj.io/completed";
    /// On pods: the node's name, e.g. `hello[0].print`.
    pub const NODE_NAME: &str = "workflows.argoproj.io/node-name";
    /// On pods: the node's ID.
    pub const NODE_ID: &str = "workflows.argoproj.io/node-id";
    /// On workflows submitted by an event: the WorkflowEventBinding's name.
    pub const WORKFLOW_EVENT_BINDING: &str = "workflows.argoproj.io/workflow-event-binding";
}

impl Workflow {
    pub fn template(&self, name: &str) -> Option<&Template> {
        self.spec.templates.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream's steps example (examples/steps.yaml) with a field ferry does not know.
    const STEPS: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: steps-
spec:
  entrypoint: hello-hello-hello
  podPriorityClassName: high
  templates:
  - name: hello-hello-hello
    steps:
    - - name: hello1
        template: print-message
        arguments:
          parameters: [{name: message, value: hello1}]
    - - name: hello2a
        template: print-message
        arguments:
          parameters: [{name: message, value: 2}]
      - name: hello2b
        template: print-message
        continueOn: {failed: true}
  - name: print-message
    inputs:
      parameters:
      - name: message
    container:
      image: busybox
      command: [echo]
      args: ["{{inputs.parameters.message}}"]
"#;

    #[test]
    fn upstream_steps_example_reads_and_keeps_unknown_fields() {
        let wf: Workflow = serde_yaml::from_str(STEPS).unwrap();
        assert_eq!(wf.spec.entrypoint.as_deref(), Some("hello-hello-hello"));
        let steps = wf.spec.templates[0].steps.as_ref().unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[1][1].name, "hello2b");
        let number = &steps[1][0].arguments.as_ref().unwrap().parameters[0];
        assert_eq!(
            number.value.as_deref(),
            Some("2"),
            "numbers are any-strings"
        );
        assert!(wf.spec.unknown.contains_key("podPriorityClassName"));
        assert!(steps[1][1].unknown.contains_key("continueOn"));

        let written = serde_json::to_value(&wf).unwrap();
        assert_eq!(written["apiVersion"], "argoproj.io/v1alpha1");
        assert_eq!(written["kind"], "Workflow");
        assert_eq!(written["spec"]["podPriorityClassName"], "high");
        assert_eq!(
            written["spec"]["templates"][1]["container"]["args"][0],
            "{{inputs.parameters.message}}"
        );
        let again: Workflow = serde_json::from_value(written).unwrap();
        assert_eq!(again, wf);
    }

    #[test]
    fn status_has_upstreams_shape() {
        let status: WorkflowStatus = serde_json::from_value(serde_json::json!({
            "phase": "",
            "nodes": {"wf": {"id": "wf", "name": "wf", "displayName": "wf", "type": "Steps",
                "phase": "Running", "boundaryID": "b", "children": ["c"]}},
            "conditions": []
        }))
        .unwrap();
        assert_eq!(status.phase, None, "a fresh workflow's phase is empty");
        let node = &status.nodes["wf"];
        assert_eq!((node.type_.as_str(), node.phase), ("Steps", Phase::Running));
        assert_eq!(node.boundary_id.as_deref(), Some("b"));
        let written = serde_json::to_value(&status).unwrap();
        assert_eq!(written["nodes"]["wf"]["boundaryID"], "b");
        assert!(written.get("conditions").is_some());
    }

    #[test]
    fn another_kind_is_refused() {
        let err = serde_yaml::from_str::<Workflow>(
            "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nmetadata: {}\nspec: {}\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("expected kind Workflow"), "{err}");
        let template: WorkflowTemplate = serde_yaml::from_str(
            "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nmetadata: {name: t}\nspec: {entrypoint: main}\n",
        )
        .unwrap();
        assert_eq!(template.spec.entrypoint.as_deref(), Some("main"));
    }
}
