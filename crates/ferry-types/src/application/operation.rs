//! The top-level `operation` of an Application: a sync requested by a user or by automation,
//! picked up and cleared by the controller.

use serde::{Deserialize, Serialize};

use super::spec::{Info, RetryStrategy, push_source_unknown};
use crate::ResourceKey;
use crate::object::{is_false, is_zero, push_unknown};
use crate::source::{ApplicationSource, UnknownFields};

/// `operation`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncOperation>,
    #[serde(default, skip_serializing_if = "OperationInitiator::is_empty")]
    pub initiated_by: OperationInitiator,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub info: Vec<Info>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryStrategy>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl Operation {
    pub(crate) fn push_unknown_fields(&self, out: &mut Vec<String>, prefix: &str) {
        push_unknown(out, prefix, &self.unknown);
        push_unknown(
            out,
            &format!("{prefix}initiatedBy."),
            &self.initiated_by.unknown,
        );
        for (i, info) in self.info.iter().enumerate() {
            push_unknown(out, &format!("{prefix}info[{i}]."), &info.unknown);
        }
        if let Some(retry) = &self.retry {
            push_unknown(out, &format!("{prefix}retry."), &retry.unknown);
            if let Some(b) = &retry.backoff {
                push_unknown(out, &format!("{prefix}retry.backoff."), &b.unknown);
            }
        }
        let Some(sync) = &self.sync else { return };
        let prefix = format!("{prefix}sync.");
        push_unknown(out, &prefix, &sync.unknown);
        for (i, r) in sync.resources.iter().enumerate() {
            push_unknown(out, &format!("{prefix}resources[{i}]."), &r.unknown);
        }
        if let Some(strategy) = &sync.sync_strategy {
            push_unknown(out, &format!("{prefix}syncStrategy."), &strategy.unknown);
            if let Some(apply) = &strategy.apply {
                push_unknown(out, &format!("{prefix}syncStrategy.apply."), &apply.unknown);
            }
            if let Some(hook) = &strategy.hook {
                push_unknown(out, &format!("{prefix}syncStrategy.hook."), &hook.unknown);
            }
        }
        if let Some(source) = &sync.source {
            push_source_unknown(out, &format!("{prefix}source."), source);
        }
        for (i, source) in sync.sources.iter().enumerate() {
            push_source_unknown(out, &format!("{prefix}sources[{i}]."), source);
        }
    }
}

/// `operation.sync`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncOperation {
    /// Revision to sync to; the spec's `targetRevision` when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub prune: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_strategy: Option<SyncStrategy>,
    /// Sync only these resources (a partial sync); everything when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<SyncOperationResource>,
    /// Overrides the spec's source (set by rollbacks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ApplicationSource>,
    /// Local manifests overriding the source (`argocd app sync --local`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_options: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<ApplicationSource>,
    /// One revision per source for multi-source Applications.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub auto_heal_attempts_count: i64,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `sync.resources[]`: one resource of a partial sync (no version, as in Argo CD).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncOperationResource {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl SyncOperationResource {
    pub fn key(&self) -> ResourceKey {
        ResourceKey::new(&self.group, &self.kind, &self.namespace, &self.name)
    }
}

/// `sync.syncStrategy`: `apply` (plain apply, hooks skipped) or `hook` (the default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncStrategy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply: Option<SyncStrategyApply>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<SyncStrategyApply>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `syncStrategy.apply` / `syncStrategy.hook` (Argo CD gives both the same shape).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncStrategyApply {
    /// Delete and recreate a resource when patching it fails.
    #[serde(default, skip_serializing_if = "is_false")]
    pub force: bool,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `operation.initiatedBy`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationInitiator {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// True for syncs started by automated sync policy.
    #[serde(default, skip_serializing_if = "is_false")]
    pub automated: bool,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl OperationInitiator {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}
