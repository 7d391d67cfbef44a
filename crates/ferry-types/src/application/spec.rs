//! `Application.spec`: where the manifests come from, where they go and how syncs run.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::{DurationError, parse_seconds_or_duration};
use crate::object::{is_false, push_unknown};
use crate::source::{ApplicationSource, UnknownFields};

/// `spec`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    /// The single source; ignored when `sources` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ApplicationSource>,
    #[serde(default)]
    pub destination: ApplicationDestination,
    /// The AppProject; empty means `default`.
    #[serde(default)]
    pub project: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_policy: Option<SyncPolicy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_differences: Vec<ResourceIgnoreDifferences>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub info: Vec<Info>,
    /// How many `status.history` entries to keep; 10 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i64>,
    /// Several sources rendered together (takes precedence over `source`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<ApplicationSource>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl ApplicationSpec {
    pub(crate) fn push_unknown_fields(&self, out: &mut Vec<String>, prefix: &str) {
        push_unknown(out, prefix, &self.unknown);
        if let Some(source) = &self.source {
            push_source_unknown(out, &format!("{prefix}source."), source);
        }
        for (i, source) in self.sources.iter().enumerate() {
            push_source_unknown(out, &format!("{prefix}sources[{i}]."), source);
        }
        push_unknown(
            out,
            &format!("{prefix}destination."),
            &self.destination.unknown,
        );
        if let Some(policy) = &self.sync_policy {
            policy.push_unknown_fields(out, &format!("{prefix}syncPolicy."));
        }
        for (i, diff) in self.ignore_differences.iter().enumerate() {
            push_unknown(
                out,
                &format!("{prefix}ignoreDifferences[{i}]."),
                &diff.unknown,
            );
        }
        for (i, info) in self.info.iter().enumerate() {
            push_unknown(out, &format!("{prefix}info[{i}]."), &info.unknown);
        }
    }
}

pub(crate) fn push_source_unknown(out: &mut Vec<String>, prefix: &str, source: &ApplicationSource) {
    out.extend(
        source
            .unknown_fields()
            .into_iter()
            .map(|field| format!("{prefix}{field}")),
    );
}

/// `spec.destination`: the cluster (by API server URL or by name) and the default namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ApplicationDestination {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `spec.syncPolicy`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automated: Option<SyncPolicyAutomated>,
    /// `Name=value` options such as `CreateNamespace=true` or `PruneLast=true`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_options: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryStrategy>,
    /// Labels and annotations for the namespace made by `CreateNamespace=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_namespace_metadata: Option<ManagedNamespaceMetadata>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl SyncPolicy {
    /// True when automated sync is configured and not switched off with `enabled: false`.
    pub fn is_automated(&self) -> bool {
        self.automated
            .as_ref()
            .is_some_and(|a| a.enabled != Some(false))
    }

    fn push_unknown_fields(&self, out: &mut Vec<String>, prefix: &str) {
        push_unknown(out, prefix, &self.unknown);
        if let Some(a) = &self.automated {
            push_unknown(out, &format!("{prefix}automated."), &a.unknown);
        }
        if let Some(retry) = &self.retry {
            retry.push_unknown_fields(out, &format!("{prefix}retry."));
        }
        if let Some(m) = &self.managed_namespace_metadata {
            push_unknown(
                out,
                &format!("{prefix}managedNamespaceMetadata."),
                &m.unknown,
            );
        }
    }
}

/// `syncPolicy.automated`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncPolicyAutomated {
    /// Delete resources that left Git during automated syncs.
    #[serde(default, skip_serializing_if = "is_false")]
    pub prune: bool,
    /// Sync again when the live state drifts although Git did not change.
    #[serde(default, skip_serializing_if = "is_false")]
    pub self_heal: bool,
    /// Allow an automated sync whose desired state is empty.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_empty: bool,
    /// `false` keeps the block but switches automation off; unset means on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `syncPolicy.retry` and `operation.retry`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RetryStrategy {
    /// Retries after the first failure; a negative number means no limit.
    #[serde(default, skip_serializing_if = "crate::object::is_zero")]
    pub limit: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// Refresh (resolve the revision again) before each retry.
    #[serde(default, skip_serializing_if = "is_false")]
    pub refresh: bool,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// Argo CD's retry defaults: 5s doubling up to 3m.
pub const DEFAULT_RETRY_DURATION: Duration = Duration::from_secs(5);
pub const DEFAULT_RETRY_FACTOR: i64 = 2;
pub const DEFAULT_RETRY_MAX_DURATION: Duration = Duration::from_secs(180);

impl RetryStrategy {
    /// Whether another attempt is allowed after `retry_count` retries.
    pub fn allows_retry(&self, retry_count: i64) -> bool {
        self.limit < 0 || retry_count < self.limit
    }

    /// The wait before retry number `retry_count` (0 for the first retry):
    /// `duration * factor^retry_count`, capped at `maxDuration`.
    pub fn backoff_delay(&self, retry_count: i64) -> Result<Duration, DurationError> {
        let mut duration = DEFAULT_RETRY_DURATION;
        let mut factor = DEFAULT_RETRY_FACTOR;
        let mut max = DEFAULT_RETRY_MAX_DURATION;
        if let Some(b) = &self.backoff {
            if !b.duration.is_empty() {
                duration = parse_seconds_or_duration(&b.duration)?;
            }
            if !b.max_duration.is_empty() {
                max = parse_seconds_or_duration(&b.max_duration)?;
            }
            if let Some(f) = b.factor {
                factor = f;
            }
        }
        let exponent = i32::try_from(retry_count.max(0)).unwrap_or(i32::MAX);
        let wait = duration.as_secs_f64() * (factor as f64).powi(exponent);
        let wait = if max > Duration::ZERO {
            wait.min(max.as_secs_f64())
        } else {
            wait
        };
        Ok(Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX))
    }

    fn push_unknown_fields(&self, out: &mut Vec<String>, prefix: &str) {
        push_unknown(out, prefix, &self.unknown);
        if let Some(b) = &self.backoff {
            push_unknown(out, &format!("{prefix}backoff."), &b.unknown);
        }
    }
}

/// `retry.backoff`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    /// First wait: seconds (`"5"`) or a duration (`"2m"`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub duration: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub max_duration: String,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `syncPolicy.managedNamespaceMetadata`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ManagedNamespaceMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `spec.ignoreDifferences[]`: which resources, and which of their fields the diff leaves out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceIgnoreDifferences {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json_pointers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jq_path_expressions: Vec<String>,
    /// Fields owned by these managers (server-side apply `managedFields`) are ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_fields_managers: Vec<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `spec.info[]` and `operation.info[]`: free-form name/value pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(yaml: &str) -> RetryStrategy {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_like_argo() {
        let r = retry("limit: 5\nbackoff: {duration: 5s, factor: 2, maxDuration: 3m}\n");
        let delays: Vec<u64> = (0..7)
            .map(|n| r.backoff_delay(n).unwrap().as_secs())
            .collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 180]);
        assert!(r.allows_retry(4));
        assert!(!r.allows_retry(5));
    }

    #[test]
    fn backoff_defaults_and_bare_seconds() {
        assert_eq!(
            retry("limit: 2").backoff_delay(1).unwrap(),
            Duration::from_secs(10)
        );
        let r = retry("backoff: {duration: \"30\", factor: 3}");
        assert_eq!(r.backoff_delay(1).unwrap(), Duration::from_secs(90));
        assert!(retry("limit: -1").allows_retry(1_000));
        let bad = retry("backoff: {duration: 5d}");
        assert_eq!(
            bad.backoff_delay(0).unwrap_err().to_string(),
            "invalid duration \"5d\": unknown unit"
        );
    }

    #[test]
    fn automated_can_be_switched_off() {
        let p: SyncPolicy = serde_yaml::from_str("automated: {}").unwrap();
        assert!(p.is_automated());
        let p: SyncPolicy = serde_yaml::from_str("automated: {enabled: false}").unwrap();
        assert!(!p.is_automated());
        assert!(!SyncPolicy::default().is_automated());
    }
}
