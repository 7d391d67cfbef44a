//! The `argoproj.io/v1alpha1` `AppProject` and the rules it enforces on Applications: which
//! repositories they may use, where they may deploy, which kinds of resources they may manage and
//! when they may sync.

mod glob;
mod permit;
mod scoped_clusters;
mod service_accounts;
mod windows;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

pub use permit::{ProjectError, ProjectPolicy, normalize_repo_url};
pub use windows::{SyncWindows, WindowError};

use crate::application::{ApplicationDestination, DEFAULT_PROJECT};
use crate::object::{argo_resource, check_type, is_false, push_unknown};
use crate::source::UnknownFields;

/// An Argo CD AppProject.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(try_from = "AppProjectRepr")]
pub struct AppProject {
    pub metadata: ObjectMeta,
    pub spec: AppProjectSpec,
    pub status: Option<AppProjectStatus>,
    /// Top-level fields other than the above.
    pub unknown: UnknownFields,
}

argo_resource!(AppProject, kind: "AppProject", plural: "appprojects",
    spec: AppProjectSpec, status: AppProjectStatus);

/// `spec`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppProjectSpec {
    /// Repository URL globs Applications may use; `!` entries deny.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_repos: Vec<String>,
    /// Server/name/namespace globs Applications may deploy to; `!` entries deny.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<ApplicationDestination>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<ProjectRole>,
    /// Cluster-scoped kinds that may be deployed; none when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_resource_whitelist: Vec<ClusterResourceRestrictionItem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_resource_blacklist: Vec<GroupKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orphaned_resources: Option<OrphanedResourcesMonitorSettings>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_windows: Vec<SyncWindow>,
    /// Namespaced kinds that may be deployed: all when absent, none when present but empty
    /// (Argo CD tells a missing list from an empty one here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_resource_whitelist: Option<Vec<GroupKind>>,
    /// GnuPG key IDs commits must be signed with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signature_keys: Vec<SignatureKey>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_resource_blacklist: Vec<ClusterResourceRestrictionItem>,
    /// Namespaces (globs, or `/regex/`) outside the controller's own where Applications of this
    /// project may live.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_namespaces: Vec<String>,
    /// Only clusters that belong to this project count as permitted destinations.
    #[serde(default, skip_serializing_if = "is_false")]
    pub permit_only_project_scoped_clusters: bool,
    /// Service accounts to impersonate per destination.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destination_service_accounts: Vec<ApplicationDestinationServiceAccount>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// A group/kind pattern (`filepath.Match` style globs in both parts; `""` is the core group).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub kind: String,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// A cluster-scoped resource pattern: group/kind globs and an optional name glob.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterResourceRestrictionItem {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `spec.orphanedResources`: report resources in the destination namespaces no Application owns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrphanedResourcesMonitorSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<OrphanedResourceKey>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl OrphanedResourcesMonitorSettings {
    /// Whether orphans raise an `OrphanedResourceWarning`; on unless `warn: false`.
    pub fn is_warn(&self) -> bool {
        self.warn != Some(false)
    }

    /// Whether a live resource is left out of the orphan count: one of the project's `ignore`
    /// entries matches it (empty fields match anything, the rest are globs), or it is one of the
    /// objects Kubernetes puts in every namespace (the `default` ServiceAccount and the
    /// `kube-root-ca.crt` ConfigMap), which Argo CD leaves out too.
    pub fn ignores(&self, group: &str, kind: &str, name: &str) -> bool {
        let built_in = (group.is_empty() && kind == "ServiceAccount" && name == "default")
            || (group.is_empty() && kind == "ConfigMap" && name == "kube-root-ca.crt");
        built_in
            || self.ignore.iter().any(|entry| {
                let matches = |pattern: &str, value: &str| {
                    pattern.is_empty()
                        || glob::Glob::new(pattern, glob::Separator::None, glob::Negation::Literal)
                            .is_ok_and(|g| g.matches(value))
                };
                matches(&entry.group, group)
                    && matches(&entry.kind, kind)
                    && matches(&entry.name, name)
            })
    }
}

/// `orphanedResources.ignore[]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanedResourceKey {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `spec.syncWindows[]`: from each `schedule` start (5-field cron, in `timeZone`) for `duration`,
/// syncs of the matching Applications are allowed (`kind: allow`) or blocked (`kind: deny`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncWindow {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub schedule: String,
    #[serde(default)]
    pub duration: String,
    /// Application name globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<String>,
    /// Destination namespace globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Destination cluster globs, matched against both the server URL and the cluster name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
    /// Let manual syncs through while this window blocks syncs.
    #[serde(default, skip_serializing_if = "is_false")]
    pub manual_sync: bool,
    /// IANA time zone of `schedule`; UTC when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub time_zone: String,
    /// Match only when every non-empty selector (applications, namespaces, clusters) matches,
    /// instead of any of them.
    #[serde(rename = "andOperator", default, skip_serializing_if = "is_false")]
    pub and_operator: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Let a sync that is already running continue past the window's edge.
    #[serde(default, skip_serializing_if = "is_false")]
    pub sync_overrun: bool,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `spec.roles[]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectRole {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Casbin policy lines (`p, proj:<project>:<role>, applications, get, <project>/*, allow`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    #[serde(rename = "jwtTokens", default, skip_serializing_if = "Vec::is_empty")]
    pub jwt_tokens: Vec<JwtToken>,
    /// OIDC groups bound to the role.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// A project token's issue/expiry times (Unix seconds) and id; the token itself is never stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtToken {
    #[serde(default)]
    pub iat: i64,
    #[serde(default, skip_serializing_if = "crate::object::is_zero")]
    pub exp: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `spec.signatureKeys[]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureKey {
    #[serde(rename = "keyID", default)]
    pub key_id: String,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `spec.destinationServiceAccounts[]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationDestinationServiceAccount {
    #[serde(default)]
    pub server: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default)]
    pub default_service_account: String,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `status`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppProjectStatus {
    #[serde(
        rename = "jwtTokensByRole",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub jwt_tokens_by_role: BTreeMap<String, JwtTokens>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `status.jwtTokensByRole.<role>`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtTokens {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<JwtToken>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl AppProject {
    /// Argo CD's built-in `default` project: any repository, any destination, any resource.
    pub fn default_project(namespace: &str) -> Self {
        Self {
            metadata: ObjectMeta {
                name: Some(DEFAULT_PROJECT.to_string()),
                namespace: Some(namespace.to_string()),
                ..Default::default()
            },
            spec: AppProjectSpec {
                source_repos: vec!["*".into()],
                destinations: vec![ApplicationDestination {
                    server: "*".into(),
                    namespace: "*".into(),
                    ..Default::default()
                }],
                cluster_resource_whitelist: vec![ClusterResourceRestrictionItem {
                    group: "*".into(),
                    kind: "*".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Dotted paths of spec fields ferry does not know, e.g. `spec.syncWindows[0].foo`.
    pub fn unknown_fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        let spec = &self.spec;
        push_unknown(&mut out, "", &self.unknown);
        push_unknown(&mut out, "spec.", &spec.unknown);
        let lists: [(&str, Vec<&UnknownFields>); 10] = [
            (
                "destinations",
                spec.destinations.iter().map(|d| &d.unknown).collect(),
            ),
            ("roles", spec.roles.iter().map(|r| &r.unknown).collect()),
            (
                "clusterResourceWhitelist",
                spec.cluster_resource_whitelist
                    .iter()
                    .map(|g| &g.unknown)
                    .collect(),
            ),
            (
                "clusterResourceBlacklist",
                spec.cluster_resource_blacklist
                    .iter()
                    .map(|g| &g.unknown)
                    .collect(),
            ),
            (
                "namespaceResourceBlacklist",
                spec.namespace_resource_blacklist
                    .iter()
                    .map(|g| &g.unknown)
                    .collect(),
            ),
            (
                "namespaceResourceWhitelist",
                spec.namespace_resource_whitelist
                    .iter()
                    .flatten()
                    .map(|g| &g.unknown)
                    .collect(),
            ),
            (
                "syncWindows",
                spec.sync_windows.iter().map(|w| &w.unknown).collect(),
            ),
            (
                "signatureKeys",
                spec.signature_keys.iter().map(|k| &k.unknown).collect(),
            ),
            (
                "destinationServiceAccounts",
                spec.destination_service_accounts
                    .iter()
                    .map(|d| &d.unknown)
                    .collect(),
            ),
            (
                "orphanedResources.ignore",
                spec.orphaned_resources
                    .iter()
                    .flat_map(|o| o.ignore.iter().map(|k| &k.unknown))
                    .collect(),
            ),
        ];
        for (list, entries) in lists {
            for (i, unknown) in entries.into_iter().enumerate() {
                push_unknown(&mut out, &format!("spec.{list}[{i}]."), unknown);
            }
        }
        for (i, role) in spec.roles.iter().enumerate() {
            for (j, token) in role.jwt_tokens.iter().enumerate() {
                push_unknown(
                    &mut out,
                    &format!("spec.roles[{i}].jwtTokens[{j}]."),
                    &token.unknown,
                );
            }
        }
        if let Some(orphaned) = &spec.orphaned_resources {
            push_unknown(&mut out, "spec.orphanedResources.", &orphaned.unknown);
        }
        out
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppProjectRepr {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    metadata: ObjectMeta,
    spec: AppProjectSpec,
    #[serde(default)]
    status: Option<AppProjectStatus>,
    #[serde(flatten)]
    unknown: UnknownFields,
}

impl TryFrom<AppProjectRepr> for AppProject {
    type Error = String;

    fn try_from(repr: AppProjectRepr) -> Result<Self, String> {
        check_type(
            repr.api_version.as_deref(),
            repr.kind.as_deref(),
            "AppProject",
        )?;
        Ok(Self {
            metadata: repr.metadata,
            spec: repr.spec,
            status: repr.status,
            unknown: repr.unknown,
        })
    }
}

impl Serialize for AppProject {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Out<'a> {
            api_version: &'a str,
            kind: &'a str,
            metadata: &'a ObjectMeta,
            spec: &'a AppProjectSpec,
            #[serde(skip_serializing_if = "Option::is_none")]
            status: &'a Option<AppProjectStatus>,
            #[serde(flatten)]
            unknown: &'a UnknownFields,
        }
        Out {
            api_version: crate::object::API_VERSION,
            kind: "AppProject",
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

    #[test]
    fn orphan_ignores_match_globs_and_kubernetes_defaults() {
        let settings: OrphanedResourcesMonitorSettings =
            serde_yaml::from_str("ignore: [{kind: ConfigMap, name: 'cache-*'}, {group: apps}]")
                .unwrap();
        assert!(settings.ignores("", "ConfigMap", "cache-1"));
        assert!(!settings.ignores("", "ConfigMap", "config"));
        assert!(settings.ignores("apps", "Deployment", "web"));
        assert!(settings.ignores("", "ServiceAccount", "default"));
        assert!(settings.ignores("", "ConfigMap", "kube-root-ca.crt"));
        assert!(!settings.ignores("", "Secret", "token"));
    }

    #[test]
    fn default_project_is_argo_cds() {
        let p = AppProject::default_project("argocd");
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AppProject",
                "metadata": {"name": "default", "namespace": "argocd"},
                "spec": {
                    "sourceRepos": ["*"],
                    "destinations": [{"server": "*", "namespace": "*"}],
                    "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
                }
            })
        );
        let back: AppProject = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn empty_namespace_whitelist_is_kept_apart_from_a_missing_one() {
        let p: AppProject = serde_yaml::from_str("spec: {namespaceResourceWhitelist: []}").unwrap();
        assert_eq!(p.spec.namespace_resource_whitelist, Some(vec![]));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(
            json["spec"]["namespaceResourceWhitelist"],
            serde_json::json!([])
        );
        let p: AppProject = serde_yaml::from_str("spec: {}").unwrap();
        assert_eq!(p.spec.namespace_resource_whitelist, None);
    }

    #[test]
    fn orphaned_warn_defaults_on() {
        let o: OrphanedResourcesMonitorSettings = serde_yaml::from_str("{}").unwrap();
        assert!(o.is_warn());
        let o: OrphanedResourcesMonitorSettings = serde_yaml::from_str("warn: false").unwrap();
        assert!(!o.is_warn());
    }

    #[test]
    fn wrong_kind_is_refused() {
        let err = serde_yaml::from_str::<AppProject>("kind: Application\nspec: {}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected kind AppProject"), "{err}");
    }
}
