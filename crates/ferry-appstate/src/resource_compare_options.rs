//! argocd-cm's `resource.compareoptions`: a YAML block of how every app's resources are
//! compared, as Argo CD reads it.
//!
//! - `ignoreAggregatedRoles` (default false): leave out the `rules` of ClusterRoles with an
//!   `aggregationRule`;
//! - `ignoreResourceStatusField`: `all` (the default), `crd`, or `none` (also `off` and
//!   `false`, which YAML 1.1 readers turn a bare `off` into): whose `status` is left out;
//! - `ignoreDifferencesOnResourceUpdates` (default true): the system-wide ignoreDifferences
//!   (and the ignored `status`) also count as ignoreResourceUpdates
//!   ([`crate::resource_updates`]).

use serde::Deserialize;

use ferry_diff::IgnoreStatus;

pub const KEY: &str = "resource.compareoptions";

/// The comparison settings `resource.compareoptions` gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceCompareOptions {
    pub ignore_aggregated_roles: bool,
    pub ignore_status: IgnoreStatus,
    pub ignore_differences_on_resource_updates: bool,
}

impl Default for ResourceCompareOptions {
    /// Argo CD's defaults (its GetDefaultDiffOptions).
    fn default() -> Self {
        Self {
            ignore_aggregated_roles: false,
            ignore_status: IgnoreStatus::All,
            ignore_differences_on_resource_updates: true,
        }
    }
}

/// The block as written.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Block {
    #[serde(default)]
    ignore_aggregated_roles: bool,
    #[serde(default)]
    ignore_resource_status_field: Option<serde_yaml::Value>,
    #[serde(default)]
    ignore_differences_on_resource_updates: Option<bool>,
}

impl ResourceCompareOptions {
    /// Parses the block. An unknown `ignoreResourceStatusField` is an error rather than a
    /// silent fallback, so a typo cannot change what counts as drift.
    pub fn parse(text: &str) -> Result<Self, String> {
        let block: Option<Block> =
            serde_yaml::from_str(text).map_err(|err| format!("{KEY}: {err}"))?;
        let Some(block) = block else {
            return Ok(Self::default());
        };
        let ignore_status = match &block.ignore_resource_status_field {
            None | Some(serde_yaml::Value::Null) => IgnoreStatus::All,
            Some(serde_yaml::Value::Bool(false)) => IgnoreStatus::Never,
            Some(serde_yaml::Value::String(value)) => match value.as_str() {
                "" | "all" => IgnoreStatus::All,
                "crd" => IgnoreStatus::Crds,
                "none" | "off" | "false" => IgnoreStatus::Never,
                other => return Err(unknown_status(other)),
            },
            Some(other) => {
                let text = serde_yaml::to_string(other).unwrap_or_default();
                return Err(unknown_status(text.trim()));
            }
        };
        Ok(Self {
            ignore_aggregated_roles: block.ignore_aggregated_roles,
            ignore_status,
            ignore_differences_on_resource_updates: block
                .ignore_differences_on_resource_updates
                .unwrap_or(true),
        })
    }
}

fn unknown_status(value: &str) -> String {
    format!("{KEY}: ignoreResourceStatusField {value:?} is not one of all, crd, none")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ResourceCompareOptions {
        ResourceCompareOptions::parse(text).unwrap()
    }

    #[test]
    fn defaults_ignore_status_of_all_kinds_and_keep_aggregated_rules() {
        assert_eq!(parse(""), ResourceCompareOptions::default());
        assert_eq!(
            parse("ignoreDifferencesOnResourceUpdates: true\n"),
            ResourceCompareOptions::default()
        );
        assert_eq!(
            ResourceCompareOptions::default().ignore_status,
            IgnoreStatus::All
        );
        assert!(!ResourceCompareOptions::default().ignore_aggregated_roles);
        assert!(ResourceCompareOptions::default().ignore_differences_on_resource_updates);
        assert!(
            !parse("ignoreDifferencesOnResourceUpdates: false\n")
                .ignore_differences_on_resource_updates
        );
    }

    #[test]
    fn reads_each_status_choice_and_aggregated_roles() {
        let status = |text: &str| parse(text).ignore_status;
        assert_eq!(status("ignoreResourceStatusField: all"), IgnoreStatus::All);
        assert_eq!(status("ignoreResourceStatusField: crd"), IgnoreStatus::Crds);
        assert_eq!(
            status("ignoreResourceStatusField: none"),
            IgnoreStatus::Never
        );
        assert_eq!(
            status("ignoreResourceStatusField: off"),
            IgnoreStatus::Never
        );
        assert_eq!(
            status("ignoreResourceStatusField: false"),
            IgnoreStatus::Never
        );
        assert_eq!(
            status("ignoreResourceStatusField: 'false'"),
            IgnoreStatus::Never
        );
        let both =
            parse("# comment\nignoreAggregatedRoles: true\nignoreResourceStatusField: crd\n");
        assert!(both.ignore_aggregated_roles);
        assert_eq!(both.ignore_status, IgnoreStatus::Crds);
    }

    #[test]
    fn bad_values_are_errors_naming_the_key() {
        for text in [
            "ignoreResourceStatusField: some",
            "ignoreResourceStatusField: true",
            "ignoreAggregatedRoles: maybe",
            "ignoreDifferencesOnResourceUpdates: sometimes",
            "[not, a, map]",
        ] {
            let err = ResourceCompareOptions::parse(text).unwrap_err();
            assert!(err.contains(KEY), "{text}: {err}");
        }
    }
}
