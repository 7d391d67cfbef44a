//! Which kinds the cache watches: Argo CD's `resource.inclusions` / `resource.exclusions`, with its
//! defaults. Excluded kinds are still resolvable (the sync engine may apply them); they are only
//! not watched.

use globset::{Glob, GlobMatcher};

use crate::GroupKind;
use crate::error::CacheError;

/// API groups and kinds as glob patterns (`*.example.com`); an empty list matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceRule {
    pub groups: Vec<String>,
    pub kinds: Vec<String>,
}

impl ResourceRule {
    pub fn new(groups: &[&str], kinds: &[&str]) -> Self {
        let owned = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        Self {
            groups: owned(groups),
            kinds: owned(kinds),
        }
    }
}

/// A kind is watched when it matches no exclusion and, if inclusions are given, some inclusion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceFilter {
    pub include: Vec<ResourceRule>,
    pub exclude: Vec<ResourceRule>,
}

impl Default for ResourceFilter {
    /// Everything except the exclusions Argo CD ships in its default configuration.
    fn default() -> Self {
        Self {
            include: Vec::new(),
            exclude: default_exclusions(),
        }
    }
}

impl ResourceFilter {
    /// Watch only what the rules match (plus nothing the default exclusions name).
    pub fn only(include: Vec<ResourceRule>) -> Self {
        Self {
            include,
            ..Self::default()
        }
    }
}

/// The exclusions of Argo CD's default `argocd-cm`: high-churn objects nobody manages from Git.
pub fn default_exclusions() -> Vec<ResourceRule> {
    vec![
        ResourceRule::new(&["", "discovery.k8s.io"], &["Endpoints", "EndpointSlice"]),
        ResourceRule::new(&["apiregistration.k8s.io"], &["APIService"]),
        ResourceRule::new(&["coordination.k8s.io"], &["Lease"]),
        ResourceRule::new(
            &["authentication.k8s.io", "authorization.k8s.io"],
            &[
                "SelfSubjectReview",
                "TokenReview",
                "LocalSubjectAccessReview",
                "SelfSubjectAccessReview",
                "SelfSubjectRulesReview",
                "SubjectAccessReview",
            ],
        ),
        ResourceRule::new(&["certificates.k8s.io"], &["CertificateSigningRequest"]),
        ResourceRule::new(&["cert-manager.io"], &["CertificateRequest"]),
        ResourceRule::new(
            &["cilium.io"],
            &["CiliumIdentity", "CiliumEndpoint", "CiliumEndpointSlice"],
        ),
        ResourceRule::new(
            &["kyverno.io", "reports.kyverno.io", "wgpolicyk8s.io"],
            &[
                "PolicyReport",
                "ClusterPolicyReport",
                "EphemeralReport",
                "ClusterEphemeralReport",
                "AdmissionReport",
                "ClusterAdmissionReport",
                "BackgroundScanReport",
                "ClusterBackgroundScanReport",
                "UpdateRequest",
            ],
        ),
    ]
}

/// Excluded whatever the configuration says, as in Argo CD: events and metrics churn constantly
/// and are never part of an application's tree.
fn core_exclusions() -> Vec<ResourceRule> {
    vec![
        ResourceRule::new(&["events.k8s.io", "metrics.k8s.io"], &[]),
        ResourceRule::new(&[""], &["Event"]),
        ResourceRule::new(&["coordination.k8s.io"], &["Lease"]),
    ]
}

/// A filter with its patterns compiled.
#[derive(Debug)]
pub(crate) struct CompiledFilter {
    include: Vec<CompiledRule>,
    exclude: Vec<CompiledRule>,
}

#[derive(Debug)]
struct CompiledRule {
    groups: Vec<GlobMatcher>,
    kinds: Vec<GlobMatcher>,
}

impl CompiledFilter {
    pub(crate) fn new(filter: &ResourceFilter) -> Result<Self, CacheError> {
        let compile = |rules: &[ResourceRule]| {
            rules
                .iter()
                .map(CompiledRule::new)
                .collect::<Result<Vec<_>, _>>()
        };
        let mut exclude = compile(&core_exclusions())?;
        exclude.extend(compile(&filter.exclude)?);
        Ok(Self {
            include: compile(&filter.include)?,
            exclude,
        })
    }

    pub(crate) fn watches(&self, gk: &GroupKind) -> bool {
        let included = self.include.is_empty() || self.include.iter().any(|r| r.matches(gk));
        included && !self.exclude.iter().any(|r| r.matches(gk))
    }
}

impl CompiledRule {
    fn new(rule: &ResourceRule) -> Result<Self, CacheError> {
        let compile = |patterns: &[String]| {
            patterns
                .iter()
                .map(|pattern| {
                    Glob::new(pattern)
                        .map(|glob| glob.compile_matcher())
                        .map_err(|source| CacheError::InvalidPattern {
                            pattern: pattern.clone(),
                            source,
                        })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            groups: compile(&rule.groups)?,
            kinds: compile(&rule.kinds)?,
        })
    }

    fn matches(&self, gk: &GroupKind) -> bool {
        let any = |patterns: &[GlobMatcher], text: &str| {
            patterns.is_empty() || patterns.iter().any(|p| p.is_match(text))
        };
        any(&self.groups, &gk.group) && any(&self.kinds, &gk.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched(filter: &ResourceFilter, group: &str, kind: &str) -> bool {
        CompiledFilter::new(filter)
            .unwrap()
            .watches(&GroupKind::new(group, kind))
    }

    #[test]
    fn defaults_exclude_argo_cd_defaults_and_core_exclusions() {
        let filter = ResourceFilter::default();
        for (group, kind) in [
            ("", "Event"),
            ("events.k8s.io", "Event"),
            ("metrics.k8s.io", "PodMetrics"),
            ("coordination.k8s.io", "Lease"),
            ("", "Endpoints"),
            ("discovery.k8s.io", "EndpointSlice"),
            ("authorization.k8s.io", "SubjectAccessReview"),
            ("certificates.k8s.io", "CertificateSigningRequest"),
        ] {
            assert!(!watched(&filter, group, kind), "{group}/{kind} is excluded");
        }
        for (group, kind) in [
            ("", "ConfigMap"),
            ("apps", "Deployment"),
            ("coordination.k8s.io", "LeaseCandidate"),
            ("example.com", "Widget"),
        ] {
            assert!(watched(&filter, group, kind), "{group}/{kind} is watched");
        }
    }

    #[test]
    fn core_exclusions_hold_even_without_configured_exclusions() {
        let filter = ResourceFilter {
            include: Vec::new(),
            exclude: Vec::new(),
        };
        assert!(!watched(&filter, "", "Event"));
        assert!(!watched(&filter, "metrics.k8s.io", "NodeMetrics"));
        assert!(watched(&filter, "", "Endpoints"));
    }

    #[test]
    fn inclusions_and_globs() {
        let filter = ResourceFilter::only(vec![
            ResourceRule::new(&["*.example.com"], &[]),
            ResourceRule::new(&[""], &["Config*"]),
        ]);
        assert!(watched(&filter, "widgets.example.com", "Widget"));
        assert!(watched(&filter, "", "ConfigMap"));
        assert!(!watched(&filter, "", "Secret"));
        assert!(!watched(&filter, "apps", "Deployment"));
        assert!(!watched(&filter, "example.com", "Widget"));
    }

    #[test]
    fn bad_patterns_are_named() {
        let filter = ResourceFilter::only(vec![ResourceRule::new(&["[oops"], &[])]);
        let err = CompiledFilter::new(&filter).unwrap_err();
        assert!(err.to_string().contains("[oops"), "{err}");
    }
}
