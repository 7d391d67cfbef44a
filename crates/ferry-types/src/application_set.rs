//! The `argoproj.io/v1alpha1` `ApplicationSet`: generators that produce parameter sets and a
//! template that turns each set into an Application.
//!
//! Field names follow Argo CD exactly. The template's `spec` is kept as JSON rather than as an
//! [`ApplicationSpec`](crate::application::ApplicationSpec): its strings hold `{{...}}`
//! placeholders (also where a number or a duration goes, via `templatePatch`), so it is only an
//! Application spec once rendered. Fields ferry does not know are kept (`unknown` maps) and
//! listed by [`ApplicationSet::unknown_fields`], so the controller can report them.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::application::{HealthStatus, ResourceStatus};
use crate::object::{argo_resource, check_type, is_false, is_zero, push_unknown};
use crate::source::UnknownFields;

mod scm;
pub use scm::*;

/// Annotation asking the ApplicationSet controller to generate again now (Argo CD's name);
/// removed once done.
pub const REFRESH_ANNOTATION: &str = "argocd.argoproj.io/application-set-refresh";

/// An Argo CD ApplicationSet.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(try_from = "ApplicationSetRepr")]
pub struct ApplicationSet {
    pub metadata: ObjectMeta,
    pub spec: ApplicationSetSpec,
    pub status: Option<ApplicationSetStatus>,
    /// Top-level fields other than the above.
    pub unknown: UnknownFields,
}

argo_resource!(ApplicationSet, kind: "ApplicationSet", plural: "applicationsets",
    spec: ApplicationSetSpec, status: ApplicationSetStatus);

/// `spec`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetSpec {
    /// Render with Go templates (`{{ .path.basename }}`) instead of fasttemplate
    /// (`{{path.basename}}`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub go_template: bool,
    /// Options of the Go template engine, e.g. `missingkey=error`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub go_template_options: Vec<String>,
    #[serde(default)]
    pub generators: Vec<ApplicationSetGenerator>,
    #[serde(default)]
    pub template: ApplicationSetTemplate,
    /// A templated YAML/JSON patch merged into each generated Application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_patch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_policy: Option<ApplicationSetSyncPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserved_fields: Option<ApplicationPreservedFields>,
    /// How changes reach the generated Applications: all at once, or step by step
    /// (`RollingSync`, with the controller's `--enable-progressive-syncs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<ApplicationSetStrategy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_application_differences: Vec<ApplicationSetResourceIgnoreDifferences>,
    /// Whether the `selector` of generators nested in a matrix or merge applies (it always
    /// does in Argo CD 3; kept for round trips).
    #[serde(default, skip_serializing_if = "is_false")]
    pub apply_nested_selectors: bool,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `spec.template` and a generator's `template`: an Application's metadata and spec, with
/// placeholders.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetTemplate {
    #[serde(default)]
    pub metadata: ApplicationSetTemplateMeta,
    /// The Application spec, placeholders and all.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub spec: Value,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `template.metadata`: the parts of an Application's metadata a template may set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetTemplateMeta {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// One entry of `spec.generators` (or of a matrix's or merge's `generators`): exactly one
/// generator, optionally filtered by `selector`. Generators ferry does not implement stay in
/// `unknown`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetGenerator {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<ListGenerator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<ClusterGenerator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitGenerator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<MatrixGenerator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<MergeGenerator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_decision_resource: Option<DuckTypeGenerator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<PluginGenerator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scm_provider: Option<ScmProviderGenerator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequestGenerator>,
    /// Keeps only the parameter sets whose (flattened) parameters match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `list`: literal parameter sets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListGenerator {
    #[serde(default)]
    pub elements: Vec<Value>,
    /// More elements, as a YAML list in a string (usually templated by an outer matrix).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub elements_yaml: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ApplicationSetTemplate>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `clusters`: one parameter set per Argo CD cluster Secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterGenerator {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    /// All clusters in one parameter set, as a `clusters` list.
    #[serde(default, skip_serializing_if = "is_false")]
    pub flat_list: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ApplicationSetTemplate>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `git`: one parameter set per matching directory, or per object in matching files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitGenerator {
    #[serde(rename = "repoURL", default)]
    pub repo_url: String,
    #[serde(default)]
    pub revision: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directories: Vec<GitPathItem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<GitPathItem>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path_param_prefix: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requeue_after_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ApplicationSetTemplate>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// A glob of `git.directories` or `git.files`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitPathItem {
    #[serde(default)]
    pub path: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub exclude: bool,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `matrix`: the product of two generators' parameter sets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatrixGenerator {
    #[serde(default)]
    pub generators: Vec<ApplicationSetGenerator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ApplicationSetTemplate>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `merge`: the first generator's parameter sets, overridden by the others' sets with the same
/// `mergeKeys` values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeGenerator {
    #[serde(default)]
    pub generators: Vec<ApplicationSetGenerator>,
    #[serde(default)]
    pub merge_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ApplicationSetTemplate>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `clusterDecisionResource`: one parameter set per cluster a duck-typed resource's status lists
/// (e.g. Open Cluster Management's PlacementDecision), described by the ConfigMap
/// `configMapRef` (`apiVersion`, `kind` as the resource's plural, `statusListKey`, `matchKey`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DuckTypeGenerator {
    #[serde(default)]
    pub config_map_ref: String,
    /// The resource's name; or `labelSelector`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requeue_after_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ApplicationSetTemplate>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `plugin`: parameter sets from an HTTP service, as the ConfigMap `configMapRef` names it
/// (`baseUrl`, `token` as a `$key` of a Secret, `requestTimeout`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginGenerator {
    #[serde(default)]
    pub config_map_ref: PluginConfigMapRef,
    #[serde(default, skip_serializing_if = "PluginInput::is_empty")]
    pub input: PluginInput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requeue_after_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ApplicationSetTemplate>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `plugin.configMapRef`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginConfigMapRef {
    #[serde(default)]
    pub name: String,
}

/// `plugin.input`: what the service is sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginInput {
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub parameters: serde_json::Map<String, Value>,
}

impl PluginInput {
    pub fn is_empty(&self) -> bool {
        self.parameters.is_empty()
    }
}

/// `spec.syncPolicy`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetSyncPolicy {
    /// Generated Applications get no resources finalizer, so deleting them (or the
    /// ApplicationSet) leaves their resources in place.
    #[serde(default, skip_serializing_if = "is_false")]
    pub preserve_resources_on_deletion: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applications_sync: Option<ApplicationsSyncPolicy>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `spec.syncPolicy.applicationsSync`: what the controller may do to generated Applications.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplicationsSyncPolicy {
    #[serde(rename = "create-only")]
    CreateOnly,
    #[serde(rename = "create-update")]
    CreateUpdate,
    #[serde(rename = "create-delete")]
    CreateDelete,
    /// Create, update and delete (the default).
    #[default]
    #[serde(rename = "sync")]
    Sync,
}

impl ApplicationsSyncPolicy {
    pub fn allows_update(self) -> bool {
        matches!(self, Self::CreateUpdate | Self::Sync)
    }

    pub fn allows_delete(self) -> bool {
        matches!(self, Self::CreateDelete | Self::Sync)
    }
}

/// `spec.strategy`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetStrategy {
    /// `AllAtOnce` (the default) or `RollingSync`.
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_sync: Option<ApplicationSetRolloutStrategy>,
    /// `AllAtOnce` (the default) or `Reverse`: the generated Applications deleted with the set
    /// step by step, the last step first (RollingSync with progressive syncs only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub deletion_order: String,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `spec.strategy.rollingSync`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApplicationSetRolloutStrategy {
    #[serde(default)]
    pub steps: Vec<ApplicationSetRolloutStep>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// A step: the Applications whose labels match every expression, at most `maxUpdate` of them
/// (a number or a percentage) syncing at once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetRolloutStep {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<ApplicationMatchExpression>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_update: Option<k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// A step's label expression: `In` or `NotIn` `values`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApplicationMatchExpression {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub operator: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// A `status.applicationStatus` entry: where an Application is in a progressive sync.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetApplicationStatus {
    pub application: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    #[serde(default)]
    pub message: String,
    /// `Waiting`, `Pending`, `Progressing` or `Healthy`.
    #[serde(default)]
    pub status: String,
    /// The step (from 1; -1 for none).
    #[serde(default)]
    pub step: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_revisions: Vec<String>,
}

/// `spec.preservedFields`: annotations and labels of generated Applications that others may
/// change and the controller keeps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPreservedFields {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// An entry of `spec.ignoreApplicationDifferences`: fields of the generated Applications (all,
/// or the one named) the controller leaves as they are live.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetResourceIgnoreDifferences {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json_pointers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jq_path_expressions: Vec<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `status`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ApplicationSetCondition>,
    /// Progressive syncs: each Application's state in the rollout.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub application_status: Vec<ApplicationSetApplicationStatus>,
    /// The generated Applications, with their sync and health status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceStatus>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resources_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthStatus>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// A `status.conditions` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetCondition {
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// `True`, `False` or `Unknown`.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub reason: String,
}

/// `status.conditions[].type` values.
pub mod condition {
    pub const ERROR_OCCURRED: &str = "ErrorOccurred";
    pub const PARAMETERS_GENERATED: &str = "ParametersGenerated";
    pub const RESOURCES_UP_TO_DATE: &str = "ResourcesUpToDate";
    pub const ROLLOUT_PROGRESSING: &str = "RolloutProgressing";
    pub const INVALID_ROLLOUT_CONFIG: &str = "InvalidRolloutConfig";
}

/// `status.conditions[].reason` values.
pub mod reason {
    pub const ERROR_OCCURRED: &str = "ErrorOccurred";
    pub const APPLICATION_SET_UP_TO_DATE: &str = "ApplicationSetUpToDate";
    pub const PARAMETERS_GENERATED: &str = "ParametersGenerated";
    pub const UPDATE_APPLICATION_ERROR: &str = "UpdateApplicationError";
    pub const APPLICATION_PARAMS_GENERATION_ERROR: &str = "ApplicationGenerationFromParamsError";
    pub const RENDER_TEMPLATE_PARAMS_ERROR: &str = "RenderTemplateParamsError";
    pub const CREATE_APPLICATION_ERROR: &str = "CreateApplicationError";
    pub const DELETE_APPLICATION_ERROR: &str = "DeleteApplicationError";
    pub const APPLICATION_VALIDATION_ERROR: &str = "ApplicationValidationError";
    pub const APPLICATION_SET_MODIFIED: &str = "ApplicationSetModified";
    pub const APPLICATION_SET_ROLLOUT_COMPLETE: &str = "ApplicationSetRolloutComplete";
    pub const APPLICATION_SET_ROLLOUT_ERROR: &str = "ApplicationSetRolloutError";
    pub const INVALID_ROLLOUT_CONFIG: &str = "ApplicationSetInvalidRolloutConfig";
    pub const VALID_ROLLOUT_CONFIG: &str = "ApplicationSetValidRolloutConfig";
}

impl ApplicationSet {
    /// `spec.syncPolicy.applicationsSync`, `sync` when unset.
    pub fn applications_sync(&self) -> ApplicationsSyncPolicy {
        self.spec
            .sync_policy
            .as_ref()
            .and_then(|p| p.applications_sync)
            .unwrap_or_default()
    }

    pub fn preserve_resources_on_deletion(&self) -> bool {
        self.spec
            .sync_policy
            .as_ref()
            .is_some_and(|p| p.preserve_resources_on_deletion)
    }

    /// Whether the refresh annotation asks for a generation now.
    pub fn refresh_requested(&self) -> bool {
        self.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(REFRESH_ANNOTATION))
    }

    /// Dotted paths of user-supplied fields (outside `status` and the template's spec) ferry
    /// does not know, e.g. `spec.generators[0].pullRequest.bitbucket`.
    pub fn unknown_fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        push_unknown(&mut out, "", &self.unknown);
        let spec = &self.spec;
        push_unknown(&mut out, "spec.", &spec.unknown);
        push_template_unknown(&mut out, "spec.template.", &spec.template);
        if let Some(policy) = &spec.sync_policy {
            push_unknown(&mut out, "spec.syncPolicy.", &policy.unknown);
        }
        if let Some(strategy) = &spec.strategy {
            push_unknown(&mut out, "spec.strategy.", &strategy.unknown);
            if let Some(rolling) = &strategy.rolling_sync {
                push_unknown(&mut out, "spec.strategy.rollingSync.", &rolling.unknown);
                for (i, step) in rolling.steps.iter().enumerate() {
                    let prefix = format!("spec.strategy.rollingSync.steps[{i}].");
                    push_unknown(&mut out, &prefix, &step.unknown);
                }
            }
        }
        if let Some(preserved) = &spec.preserved_fields {
            push_unknown(&mut out, "spec.preservedFields.", &preserved.unknown);
        }
        for (i, diff) in spec.ignore_application_differences.iter().enumerate() {
            let prefix = format!("spec.ignoreApplicationDifferences[{i}].");
            push_unknown(&mut out, &prefix, &diff.unknown);
        }
        for (i, generator) in spec.generators.iter().enumerate() {
            push_generator_unknown(&mut out, &format!("spec.generators[{i}]."), generator);
        }
        out
    }
}

fn push_template_unknown(out: &mut Vec<String>, prefix: &str, template: &ApplicationSetTemplate) {
    push_unknown(out, prefix, &template.unknown);
    push_unknown(
        out,
        &format!("{prefix}metadata."),
        &template.metadata.unknown,
    );
}

fn push_generator_unknown(
    out: &mut Vec<String>,
    prefix: &str,
    generator: &ApplicationSetGenerator,
) {
    push_unknown(out, prefix, &generator.unknown);
    let mut template = |name: &str, t: &Option<ApplicationSetTemplate>| {
        if let Some(t) = t {
            push_template_unknown(out, &format!("{prefix}{name}.template."), t);
        }
    };
    if let Some(list) = &generator.list {
        template("list", &list.template);
    }
    if let Some(clusters) = &generator.clusters {
        template("clusters", &clusters.template);
    }
    if let Some(git) = &generator.git {
        template("git", &git.template);
    }
    if let Some(duck) = &generator.cluster_decision_resource {
        template("clusterDecisionResource", &duck.template);
    }
    if let Some(plugin) = &generator.plugin {
        template("plugin", &plugin.template);
    }
    if let Some(scm) = &generator.scm_provider {
        template("scmProvider", &scm.template);
    }
    if let Some(pull) = &generator.pull_request {
        template("pullRequest", &pull.template);
    }
    if let Some(list) = &generator.list {
        push_unknown(out, &format!("{prefix}list."), &list.unknown);
    }
    if let Some(scm) = &generator.scm_provider {
        push_scm_provider_unknown(out, &format!("{prefix}scmProvider."), scm);
    }
    if let Some(pull) = &generator.pull_request {
        push_pull_request_unknown(out, &format!("{prefix}pullRequest."), pull);
    }
    if let Some(duck) = &generator.cluster_decision_resource {
        push_unknown(
            out,
            &format!("{prefix}clusterDecisionResource."),
            &duck.unknown,
        );
    }
    if let Some(plugin) = &generator.plugin {
        push_unknown(out, &format!("{prefix}plugin."), &plugin.unknown);
    }
    if let Some(clusters) = &generator.clusters {
        push_unknown(out, &format!("{prefix}clusters."), &clusters.unknown);
    }
    if let Some(git) = &generator.git {
        push_unknown(out, &format!("{prefix}git."), &git.unknown);
        for (i, item) in git.directories.iter().enumerate() {
            push_unknown(
                out,
                &format!("{prefix}git.directories[{i}]."),
                &item.unknown,
            );
        }
        for (i, item) in git.files.iter().enumerate() {
            push_unknown(out, &format!("{prefix}git.files[{i}]."), &item.unknown);
        }
    }
    if let Some(matrix) = &generator.matrix {
        push_unknown(out, &format!("{prefix}matrix."), &matrix.unknown);
        for (i, nested) in matrix.generators.iter().enumerate() {
            push_generator_unknown(out, &format!("{prefix}matrix.generators[{i}]."), nested);
        }
    }
    if let Some(merge) = &generator.merge {
        push_unknown(out, &format!("{prefix}merge."), &merge.unknown);
        for (i, nested) in merge.generators.iter().enumerate() {
            push_generator_unknown(out, &format!("{prefix}merge.generators[{i}]."), nested);
        }
    }
}

fn push_scm_provider_unknown(out: &mut Vec<String>, prefix: &str, scm: &ScmProviderGenerator) {
    push_unknown(out, prefix, &scm.unknown);
    if let Some(p) = &scm.gitea {
        push_unknown(out, &format!("{prefix}gitea."), &p.unknown);
    }
    if let Some(p) = &scm.github {
        push_unknown(out, &format!("{prefix}github."), &p.unknown);
    }
    if let Some(p) = &scm.gitlab {
        push_unknown(out, &format!("{prefix}gitlab."), &p.unknown);
    }
    for (i, filter) in scm.filters.iter().enumerate() {
        push_unknown(out, &format!("{prefix}filters[{i}]."), &filter.unknown);
    }
}

fn push_pull_request_unknown(out: &mut Vec<String>, prefix: &str, pull: &PullRequestGenerator) {
    push_unknown(out, prefix, &pull.unknown);
    if let Some(p) = &pull.gitea {
        push_unknown(out, &format!("{prefix}gitea."), &p.unknown);
    }
    if let Some(p) = &pull.github {
        push_unknown(out, &format!("{prefix}github."), &p.unknown);
    }
    if let Some(p) = &pull.gitlab {
        push_unknown(out, &format!("{prefix}gitlab."), &p.unknown);
    }
    for (i, filter) in pull.filters.iter().enumerate() {
        push_unknown(out, &format!("{prefix}filters[{i}]."), &filter.unknown);
    }
}

/// The wire form: `apiVersion` and `kind` are checked on the way in and written on the way out.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApplicationSetRepr {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    metadata: ObjectMeta,
    spec: ApplicationSetSpec,
    #[serde(default)]
    status: Option<ApplicationSetStatus>,
    #[serde(flatten)]
    unknown: UnknownFields,
}

impl TryFrom<ApplicationSetRepr> for ApplicationSet {
    type Error = String;

    fn try_from(repr: ApplicationSetRepr) -> Result<Self, String> {
        check_type(
            repr.api_version.as_deref(),
            repr.kind.as_deref(),
            "ApplicationSet",
        )?;
        Ok(Self {
            metadata: repr.metadata,
            spec: repr.spec,
            status: repr.status,
            unknown: repr.unknown,
        })
    }
}

impl Serialize for ApplicationSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Out<'a> {
            api_version: &'a str,
            kind: &'a str,
            metadata: &'a ObjectMeta,
            spec: &'a ApplicationSetSpec,
            #[serde(skip_serializing_if = "Option::is_none")]
            status: &'a Option<ApplicationSetStatus>,
            #[serde(flatten)]
            unknown: &'a UnknownFields,
        }
        Out {
            api_version: crate::object::API_VERSION,
            kind: "ApplicationSet",
            metadata: &self.metadata,
            spec: &self.spec,
            status: &self.status,
            unknown: &self.unknown,
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn appset(yaml: &str) -> ApplicationSet {
        serde_yaml::from_str(yaml).unwrap()
    }

    /// Upstream's git-directories example, field for field.
    #[test]
    fn upstream_git_directories_example_round_trips() {
        let yaml = "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: cluster-addons
spec:
  goTemplate: true
  goTemplateOptions: [\"missingkey=error\"]
  generators:
  - git:
      repoURL: https://github.com/argoproj/argo-cd.git
      revision: HEAD
      directories:
      - path: applicationset/examples/git-generator-directory/cluster-addons/*
      - path: applicationset/examples/git-generator-directory/cluster-addons/exclude
        exclude: true
  template:
    metadata:
      name: '{{.path.basename}}'
    spec:
      project: default
      source:
        repoURL: https://github.com/argoproj/argo-cd.git
        targetRevision: HEAD
        path: '{{.path.path}}'
      destination:
        server: https://kubernetes.default.svc
        namespace: '{{.path.basename}}'
  syncPolicy:
    applicationsSync: create-update
    preserveResourcesOnDeletion: true
";
        let set = appset(yaml);
        assert!(set.spec.go_template);
        let git = set.spec.generators[0].git.as_ref().unwrap();
        assert_eq!(git.repo_url, "https://github.com/argoproj/argo-cd.git");
        assert_eq!(git.directories.len(), 2);
        assert!(git.directories[1].exclude);
        assert_eq!(set.spec.template.metadata.name, "{{.path.basename}}");
        assert_eq!(set.spec.template.spec["source"]["path"], "{{.path.path}}");
        assert_eq!(
            set.applications_sync(),
            ApplicationsSyncPolicy::CreateUpdate
        );
        assert!(!set.applications_sync().allows_delete());
        assert!(set.preserve_resources_on_deletion());
        assert!(set.unknown_fields().is_empty());

        let back = serde_json::to_value(&set).unwrap();
        let original: Value = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(back, original);
    }

    /// Upstream's cluster-decision-resource example and the plugin example of its docs, field
    /// for field.
    #[test]
    fn upstream_duck_type_and_plugin_examples_round_trip() {
        let duck = "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: book-import}
spec:
  goTemplate: true
  generators:
  - clusterDecisionResource: {configMapRef: ocm-placement, name: test-placement, requeueAfterSeconds: 30}
  template:
    metadata: {name: '{{.clusterName}}-book-import'}
    spec: {project: default, destination: {name: '{{.clusterName}}', namespace: bookimport}}
";
        let plugin = "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: myplugin}
spec:
  goTemplate: true
  generators:
  - plugin:
      configMapRef: {name: my-plugin}
      input:
        parameters: {key1: value1, list: [list, of, values], boolean: true, map: {key1: value1}}
      values: {value1: something}
      requeueAfterSeconds: 30
  template:
    metadata: {name: myplugin}
";
        for yaml in [duck, plugin] {
            let set = appset(yaml);
            assert!(
                set.unknown_fields().is_empty(),
                "{:?}",
                set.unknown_fields()
            );
            let original: Value = serde_yaml::from_str(yaml).unwrap();
            assert_eq!(serde_json::to_value(&set).unwrap(), original);
        }
        let set = appset(plugin);
        let generator = set.spec.generators[0].plugin.as_ref().unwrap();
        assert_eq!(generator.config_map_ref.name, "my-plugin");
        assert_eq!(generator.input.parameters["boolean"], true);
        let set = appset(duck);
        let duck = set.spec.generators[0]
            .cluster_decision_resource
            .as_ref()
            .unwrap();
        assert_eq!(
            (duck.config_map_ref.as_str(), duck.name.as_str()),
            ("ocm-placement", "test-placement")
        );
    }

    #[test]
    fn providers_ferry_lacks_are_kept_and_reported() {
        let set = appset(
            "spec:
  generators:
  - pullRequest: {bitbucket: {owner: o, repo: r}, gitea: {owner: o, repo: r, api: http://gitea}}
  - matrix:
      generators:
      - list: {elements: [{a: b}]}
      - scmProvider: {azureDevOps: {organization: o}, gitea: {owner: o, api: http://gitea}}
  strategy: {type: RollingSync, deletionOrder: Reverse}
  template: {metadata: {}, spec: {}}
",
        );
        assert_eq!(
            set.unknown_fields(),
            [
                "spec.generators[0].pullRequest.bitbucket",
                "spec.generators[1].matrix.generators[1].scmProvider.azureDevOps"
            ]
        );
        let json = serde_json::to_value(&set).unwrap();
        assert_eq!(
            json["spec"]["generators"][0]["pullRequest"]["bitbucket"]["owner"],
            "o"
        );
        let pull = set.spec.generators[0].pull_request.as_ref().unwrap();
        assert_eq!(pull.gitea.as_ref().unwrap().api, "http://gitea");
        assert_eq!(json["spec"]["strategy"]["deletionOrder"], "Reverse");
    }

    #[test]
    fn sync_policies() {
        use ApplicationsSyncPolicy::*;
        assert_eq!(appset("spec: {}").applications_sync(), Sync);
        let allowed: Vec<_> = [CreateOnly, CreateUpdate, CreateDelete, Sync]
            .into_iter()
            .map(|p| (p.allows_update(), p.allows_delete()))
            .collect();
        assert_eq!(
            allowed,
            [(false, false), (true, false), (false, true), (true, true)]
        );
        let err = serde_yaml::from_str::<ApplicationSet>(
            "spec: {syncPolicy: {applicationsSync: create-some}}",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("create-some"), "{err}");
    }

    #[test]
    fn wrong_kind_is_refused() {
        let err = serde_yaml::from_str::<ApplicationSet>("kind: Application\nspec: {}")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("expected kind ApplicationSet, found \"Application\""),
            "{err}"
        );
    }
}
