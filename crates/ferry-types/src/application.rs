//! The `argoproj.io/v1alpha1` `Application`.
//!
//! Field names follow Argo CD exactly so real Application YAML deserializes unchanged. Fields ferry
//! does not know are kept (every struct has an `unknown` map) and listed by
//! [`Application::unknown_fields`], so the controller can report them instead of dropping them.

mod operation;
mod request;
mod spec;
mod status;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

pub use operation::{
    Operation, OperationInitiator, SyncOperation, SyncOperationResource, SyncStrategy,
    SyncStrategyApply,
};
pub use request::RequestError;
pub use spec::{
    ApplicationDestination, ApplicationSpec, Backoff, DEFAULT_RETRY_DURATION, DEFAULT_RETRY_FACTOR,
    DEFAULT_RETRY_MAX_DURATION, Info, ManagedNamespaceMetadata, ResourceIgnoreDifferences,
    RetryStrategy, SyncPolicy, SyncPolicyAutomated,
};
pub use status::{
    ApplicationCondition, ApplicationStatus, ApplicationSummary, ComparedTo, HealthStatus,
    HealthStatusCode, HookType, OperationPhase, OperationState, ResourceResult, ResourceStatus,
    ResultCode, RevisionHistory, SyncOperationResult, SyncPhase, SyncStatus, SyncStatusCode,
};

use crate::object::{argo_resource, check_type, push_unknown};
use crate::source::{ApplicationSource, UnknownFields};

/// The project an Application with an empty `spec.project` belongs to.
pub const DEFAULT_PROJECT: &str = "default";

/// How many `status.history` entries are kept when `revisionHistoryLimit` is unset.
pub const DEFAULT_REVISION_HISTORY_LIMIT: i64 = 10;

/// Annotation asking for a refresh: `normal` (compare again) or `hard` (also drop cached
/// manifests). The controller removes it once the refresh is done.
pub const REFRESH_ANNOTATION: &str = "argocd.argoproj.io/refresh";

/// `"true"` (as Go's `strconv.ParseBool` reads it) makes the controller leave the Application
/// alone: no refresh, no status writes, no operations, no deletion.
pub const SKIP_RECONCILE_ANNOTATION: &str = "argocd.argoproj.io/skip-reconcile";

/// An RFC 3339 time: an app deletion waiting for confirmation (`Delete=confirm`) since no
/// later than this may go ahead.
pub const DELETION_APPROVED_ANNOTATION: &str = "argocd.argoproj.io/deletion-approved";

/// Finalizers that make deleting an Application delete its resources too.
pub mod finalizer {
    /// Cascading delete, foreground propagation.
    pub const RESOURCES: &str = "resources-finalizer.argocd.argoproj.io";
    pub const RESOURCES_FOREGROUND: &str = "resources-finalizer.argocd.argoproj.io/foreground";
    pub const RESOURCES_BACKGROUND: &str = "resources-finalizer.argocd.argoproj.io/background";
    /// Runs `PreDelete` hooks before the resources are deleted.
    pub const PRE_DELETE: &str = "pre-delete-finalizer.argocd.argoproj.io";
    /// Removes the `PreDelete` hooks' own resources afterwards.
    pub const PRE_DELETE_CLEANUP: &str = "pre-delete-finalizer.argocd.argoproj.io/cleanup";
    /// Runs `PostDelete` hooks before the Application goes away.
    pub const POST_DELETE: &str = "post-delete-finalizer.argocd.argoproj.io";
    /// Removes the `PostDelete` hooks' own resources afterwards.
    pub const POST_DELETE_CLEANUP: &str = "post-delete-finalizer.argocd.argoproj.io/cleanup";
}

/// `status.conditions[].type` values Argo CD uses.
pub mod condition {
    pub const UNKNOWN_ERROR: &str = "UnknownError";
    pub const COMPARISON_ERROR: &str = "ComparisonError";
    pub const INVALID_SPEC_ERROR: &str = "InvalidSpecError";
    pub const SYNC_ERROR: &str = "SyncError";
    pub const DELETION_ERROR: &str = "DeletionError";
    pub const SHARED_RESOURCE_WARNING: &str = "SharedResourceWarning";
    pub const REPEATED_RESOURCE_WARNING: &str = "RepeatedResourceWarning";
    pub const EXCLUDED_RESOURCE_WARNING: &str = "ExcludedResourceWarning";
    pub const ORPHANED_RESOURCE_WARNING: &str = "OrphanedResourceWarning";
    /// ferry's own: the spec uses fields this version of ferry does not support.
    pub const UNSUPPORTED_FIELDS_WARNING: &str = "UnsupportedFieldsWarning";
    /// ferry's own: `status.resources` leaves some resources out, so the Application stays
    /// under etcd's object size limit.
    pub const RESOURCES_TRUNCATED_WARNING: &str = "ResourcesTruncatedWarning";

    /// Whether a condition type is an error (the others are warnings).
    pub fn is_error(condition_type: &str) -> bool {
        condition_type.ends_with("Error")
    }
}

/// A boolean as Go's `strconv.ParseBool` reads it; `None` for anything else.
pub fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// An Argo CD Application.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(try_from = "ApplicationRepr")]
pub struct Application {
    pub metadata: ObjectMeta,
    pub spec: ApplicationSpec,
    pub status: Option<ApplicationStatus>,
    /// A requested operation (a sync), cleared by the controller when it starts it.
    pub operation: Option<Operation>,
    /// Top-level fields other than the above.
    pub unknown: UnknownFields,
}

argo_resource!(Application, kind: "Application", plural: "applications",
    spec: ApplicationSpec, status: ApplicationStatus);

/// What a refresh request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshType {
    Normal,
    Hard,
}

/// How resources are deleted when the Application is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CascadePolicy {
    Foreground,
    Background,
}

impl Application {
    pub fn new(name: &str, spec: ApplicationSpec) -> Self {
        Self {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..Default::default()
            },
            spec,
            ..Default::default()
        }
    }

    /// The effective sources: `spec.sources` when set, else `spec.source`, else none.
    pub fn sources(&self) -> &[ApplicationSource] {
        if self.is_multi_source() {
            &self.spec.sources
        } else {
            self.spec.source.as_slice()
        }
    }

    /// True when `spec.sources` is used (even with a single entry).
    pub fn is_multi_source(&self) -> bool {
        !self.spec.sources.is_empty()
    }

    /// The project name, `default` when `spec.project` is empty.
    pub fn project(&self) -> &str {
        match self.spec.project.as_str() {
            "" => DEFAULT_PROJECT,
            name => name,
        }
    }

    pub fn revision_history_limit(&self) -> i64 {
        self.spec
            .revision_history_limit
            .unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT)
    }

    /// The refresh the annotation asks for; any value other than `hard` means a normal one.
    pub fn refresh_requested(&self) -> Option<RefreshType> {
        self.annotations()
            .get(REFRESH_ANNOTATION)
            .map(|value| match value.as_str() {
                "hard" => RefreshType::Hard,
                _ => RefreshType::Normal,
            })
    }

    /// `managedNamespaceMetadata` differs from what the last sync applied (Argo CD's
    /// `HasChangedManagedNamespaceMetadata`): the app is OutOfSync until it syncs again.
    pub fn has_changed_managed_namespace_metadata(&self) -> bool {
        let Some(wanted) = self
            .spec
            .sync_policy
            .as_ref()
            .and_then(|p| p.managed_namespace_metadata.as_ref())
        else {
            return false;
        };
        self.status
            .as_ref()
            .and_then(|s| s.operation_state.as_ref())
            .and_then(|o| o.sync_result.as_ref())
            .is_some_and(|r| r.managed_namespace_metadata.as_ref() != Some(wanted))
    }

    /// Whether the deletion-approved annotation approves what has waited since `since`
    /// (Argo CD's `IsDeletionConfirmed`: an approval at or after that time).
    pub fn deletion_approved_since(&self, since: jiff::Timestamp) -> bool {
        self.annotations()
            .get(DELETION_APPROVED_ANNOTATION)
            .and_then(|value| value.parse::<jiff::Timestamp>().ok())
            .is_some_and(|approved| approved >= since)
    }

    /// The deletion policy set by a resources finalizer, or `None` (deleting the Application
    /// leaves its resources in place).
    pub fn cascade_policy(&self) -> Option<CascadePolicy> {
        self.finalizers().iter().find_map(|f| match f.as_str() {
            finalizer::RESOURCES | finalizer::RESOURCES_FOREGROUND => {
                Some(CascadePolicy::Foreground)
            }
            finalizer::RESOURCES_BACKGROUND => Some(CascadePolicy::Background),
            _ => None,
        })
    }

    /// Dotted paths of user-supplied fields (outside `status`) ferry does not know, e.g.
    /// `spec.sourceHydrator` or `spec.sources[1].helm.valueFile`.
    pub fn unknown_fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        push_unknown(&mut out, "", &self.unknown);
        self.spec.push_unknown_fields(&mut out, "spec.");
        if let Some(operation) = &self.operation {
            operation.push_unknown_fields(&mut out, "operation.");
        }
        out
    }
}

/// The wire form: `apiVersion` and `kind` are checked on the way in and written on the way out.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApplicationRepr {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    metadata: ObjectMeta,
    spec: ApplicationSpec,
    #[serde(default)]
    status: Option<ApplicationStatus>,
    #[serde(default)]
    operation: Option<Operation>,
    #[serde(flatten)]
    unknown: UnknownFields,
}

impl TryFrom<ApplicationRepr> for Application {
    type Error = String;

    fn try_from(repr: ApplicationRepr) -> Result<Self, String> {
        check_type(
            repr.api_version.as_deref(),
            repr.kind.as_deref(),
            "Application",
        )?;
        Ok(Self {
            metadata: repr.metadata,
            spec: repr.spec,
            status: repr.status,
            operation: repr.operation,
            unknown: repr.unknown,
        })
    }
}

impl Serialize for Application {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Out<'a> {
            api_version: &'a str,
            kind: &'a str,
            metadata: &'a ObjectMeta,
            spec: &'a ApplicationSpec,
            #[serde(skip_serializing_if = "Option::is_none")]
            status: &'a Option<ApplicationStatus>,
            #[serde(skip_serializing_if = "Option::is_none")]
            operation: &'a Option<Operation>,
            #[serde(flatten)]
            unknown: &'a UnknownFields,
        }
        Out {
            api_version: crate::object::API_VERSION,
            kind: "Application",
            metadata: &self.metadata,
            spec: &self.spec,
            status: &self.status,
            operation: &self.operation,
            unknown: &self.unknown,
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(yaml: &str) -> Application {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn single_and_multi_source() {
        let single = app("spec: {source: {repoURL: a}, destination: {}}");
        assert!(!single.is_multi_source());
        assert_eq!(single.sources().len(), 1);
        assert_eq!(single.sources()[0].repo_url, "a");
        // `sources` wins over `source`, as in Argo CD.
        let multi = app("spec: {source: {repoURL: a}, sources: [{repoURL: b}, {repoURL: c}]}");
        assert!(multi.is_multi_source());
        let urls: Vec<_> = multi.sources().iter().map(|s| &s.repo_url).collect();
        assert_eq!(urls, ["b", "c"]);
        assert!(app("spec: {}").sources().is_empty());
    }

    #[test]
    fn project_and_history_defaults() {
        let a = app("spec: {}");
        assert_eq!(a.project(), "default");
        assert_eq!(a.revision_history_limit(), 10);
        let a = app("spec: {project: team, revisionHistoryLimit: 3}");
        assert_eq!(a.project(), "team");
        assert_eq!(a.revision_history_limit(), 3);
    }

    #[test]
    fn refresh_annotation() {
        let refresh = |value: &str| {
            app(&format!(
                "metadata: {{annotations: {{argocd.argoproj.io/refresh: {value}}}}}\nspec: {{}}"
            ))
            .refresh_requested()
        };
        assert_eq!(refresh("hard"), Some(RefreshType::Hard));
        assert_eq!(refresh("normal"), Some(RefreshType::Normal));
        assert_eq!(refresh("\"\""), Some(RefreshType::Normal));
        assert_eq!(app("spec: {}").refresh_requested(), None);
    }

    #[test]
    fn go_bools_and_deletion_approval() {
        let with = |annotations: &str| {
            app(&format!(
                "metadata: {{annotations: {{{annotations}}}}}\nspec: {{}}"
            ))
        };
        assert_eq!(parse_go_bool("T"), Some(true));
        assert_eq!(parse_go_bool("False"), Some(false));
        assert_eq!(parse_go_bool("yes"), None);

        let since: jiff::Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        let approved = |at: &str| {
            with(&format!("argocd.argoproj.io/deletion-approved: \"{at}\""))
                .deletion_approved_since(since)
        };
        assert!(approved("2026-01-02T03:04:05Z"));
        assert!(approved("2026-01-02T03:04:06Z"));
        assert!(
            !approved("2026-01-02T03:04:04Z"),
            "an approval before the wait began"
        );
        assert!(!approved("soon"));
        assert!(!app("spec: {}").deletion_approved_since(since));
    }

    #[test]
    fn finalizers_choose_the_cascade_policy() {
        let with = |f: &str| {
            app(&format!(
                "metadata: {{finalizers: [other, {f}]}}\nspec: {{}}"
            ))
            .cascade_policy()
        };
        assert_eq!(with(finalizer::RESOURCES), Some(CascadePolicy::Foreground));
        assert_eq!(
            with(finalizer::RESOURCES_FOREGROUND),
            Some(CascadePolicy::Foreground)
        );
        assert_eq!(
            with(finalizer::RESOURCES_BACKGROUND),
            Some(CascadePolicy::Background)
        );
        assert_eq!(with(finalizer::POST_DELETE), None);
    }

    #[test]
    fn wrong_kind_or_version_is_refused() {
        let err = serde_yaml::from_str::<Application>("kind: AppProject\nspec: {}")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("expected kind Application, found \"AppProject\""),
            "{err}"
        );
        let err = serde_yaml::from_str::<Application>("apiVersion: argoproj.io/v1\nspec: {}")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("expected apiVersion argoproj.io/v1alpha1"),
            "{err}"
        );
        let err = serde_yaml::from_str::<Application>("metadata: {name: x}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `spec`"), "{err}");
    }

    #[test]
    fn serializing_writes_type_meta() {
        let json =
            serde_json::to_value(Application::new("web", ApplicationSpec::default())).unwrap();
        assert_eq!(json["apiVersion"], "argoproj.io/v1alpha1");
        assert_eq!(json["kind"], "Application");
        assert_eq!(json["metadata"]["name"], "web");
        assert!(json.get("status").is_none() && json.get("operation").is_none());
    }

    #[test]
    fn condition_kinds() {
        assert!(condition::is_error(condition::COMPARISON_ERROR));
        assert!(!condition::is_error(condition::ORPHANED_RESOURCE_WARNING));
    }
}
