//! Which health check applies to an object: custom Lua scripts keyed by group/kind patterns
//! (Argo CD's `resource.customizations`), which win over the built-in checks.

use ferry_types::resource_overrides::{OverrideProblem, ResourceOverrides};
use globset::{Glob, GlobMatcher};

use crate::builtin;
use crate::lua::{LuaLimits, LuaScript};
use ferry_types::GroupKindRef;

/// A health-check configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("health check pattern {pattern:?} is invalid: {reason}")]
    InvalidPattern { pattern: String, reason: String },
    #[error("Lua health script for {pattern:?} does not compile: {message}")]
    Syntax { pattern: String, message: String },
    #[error("{0}")]
    Override(OverrideProblem),
}

/// The health checks in force: the built-in ones, overridden by Lua scripts per group/kind.
///
/// Patterns are Argo CD's keys: `group/Kind`, or `Kind` for the core group; globs are allowed
/// (`cert-manager.io/*`, `*.crossplane.io/*`), `*` matching across `/` as in Argo CD. An exact
/// key wins over globs; among globs the first added wins.
#[derive(Clone, Debug, Default)]
pub struct HealthChecks {
    custom: Vec<Custom>,
    limits: LuaLimits,
}

#[derive(Clone, Debug)]
struct Custom {
    pattern: String,
    glob: Option<GlobMatcher>,
    script: LuaScript,
}

impl HealthChecks {
    /// Only the built-in checks, with the default Lua limits.
    pub fn new() -> Self {
        HealthChecks::default()
    }

    /// Adds (or replaces) the Lua script for a group/kind pattern. The script is compiled now,
    /// so syntax errors surface here rather than on every assessment.
    pub fn with_lua(
        mut self,
        pattern: &str,
        script: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidPattern {
            pattern: pattern.to_owned(),
            reason: reason.to_owned(),
        };
        if pattern.is_empty() || pattern.chars().any(char::is_whitespace) {
            return Err(invalid(
                "expected group/Kind, Kind, or a glob such as group/*",
            ));
        }
        if pattern.matches('/').count() > 1 {
            return Err(invalid("a group/kind has at most one '/'"));
        }
        let glob = if pattern.contains(['*', '?', '[', '{']) {
            let glob = Glob::new(pattern).map_err(|err| invalid(&err.kind().to_string()))?;
            Some(glob.compile_matcher())
        } else {
            None
        };
        let script =
            LuaScript::new(pattern, script.into()).map_err(|message| ConfigError::Syntax {
                pattern: pattern.to_owned(),
                message,
            })?;
        self.custom.retain(|custom| custom.pattern != pattern);
        self.custom.push(Custom {
            pattern: pattern.to_owned(),
            glob,
            script,
        });
        Ok(self)
    }

    /// Replaces the CPU and memory limits Lua scripts run under.
    pub fn with_limits(mut self, limits: LuaLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> &LuaLimits {
        &self.limits
    }

    /// Reads the health scripts of an argocd-cm ConfigMap's `data` ([`ResourceOverrides`]);
    /// a key about health that cannot be read is an error, other kinds of customization are
    /// ignored. `useOpenLibs` is accepted but changes nothing: the sandbox always offers
    /// `string`, `math`, `table` and a clock-only `os`, and never `io` or process access.
    pub fn from_argocd_cm<K, V>(data: impl IntoIterator<Item = (K, V)>) -> Result<Self, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let read = ResourceOverrides::from_argocd_cm(data);
        let about_health = |customization: Option<&str>| {
            customization.is_none_or(|c| c == "health" || c == "useOpenLibs")
        };
        if let Some(problem) = read
            .problems
            .iter()
            .find(|p| about_health(p.customization.as_deref()))
        {
            return Err(ConfigError::Override(problem.clone()));
        }
        let mut checks = HealthChecks::new();
        for (pattern, found) in &read.overrides {
            if !found.health_lua.trim().is_empty() {
                checks = checks.with_lua(pattern, found.health_lua.as_str())?;
            }
        }
        Ok(checks)
    }

    /// The Lua script configured for a group/kind, if any.
    pub fn script_for(&self, gk: GroupKindRef<'_>) -> Option<&LuaScript> {
        let key = gk.to_string();
        let exact = self
            .custom
            .iter()
            .find(|c| c.glob.is_none() && c.pattern == key);
        exact
            .or_else(|| {
                self.custom
                    .iter()
                    .find(|c| c.glob.as_ref().is_some_and(|glob| glob.is_match(&key)))
            })
            .map(|custom| &custom.script)
    }

    /// Whether objects of this group/kind get a health at all (a script or a built-in check).
    pub fn has_check(&self, gk: GroupKindRef<'_>) -> bool {
        self.script_for(gk).is_some() || builtin::check_for(gk).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEALTHY: &str = r#"return {status = "Healthy"}"#;

    fn script_name(checks: &HealthChecks, group: &str, kind: &str) -> Option<String> {
        checks
            .script_for(GroupKindRef::new(group, kind))
            .map(|s| s.name().to_owned())
    }

    #[test]
    fn shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<HealthChecks>();
    }

    #[test]
    fn exact_key_beats_glob_and_first_glob_wins() {
        let checks = HealthChecks::new()
            .with_lua("*.example.com/*", HEALTHY)
            .unwrap()
            .with_lua("db.example.com/*", HEALTHY)
            .unwrap()
            .with_lua("db.example.com/Cluster", HEALTHY)
            .unwrap();
        assert_eq!(
            script_name(&checks, "db.example.com", "Cluster").as_deref(),
            Some("db.example.com/Cluster")
        );
        assert_eq!(
            script_name(&checks, "db.example.com", "Backup").as_deref(),
            Some("*.example.com/*")
        );
        assert_eq!(script_name(&checks, "example.com", "Backup"), None);
        assert_eq!(script_name(&checks, "apps", "Deployment"), None);
    }

    #[test]
    fn core_group_keys_are_bare_kinds() {
        let checks = HealthChecks::new().with_lua("Service", HEALTHY).unwrap();
        assert!(script_name(&checks, "", "Service").is_some());
        assert!(script_name(&checks, "serving.knative.dev", "Service").is_none());
        let everything = HealthChecks::new().with_lua("*", HEALTHY).unwrap();
        assert!(script_name(&everything, "", "ConfigMap").is_some());
        assert!(script_name(&everything, "apps", "Deployment").is_some());
    }

    #[test]
    fn adding_a_pattern_again_replaces_it() {
        let checks = HealthChecks::new()
            .with_lua("a.io/*", HEALTHY)
            .unwrap()
            .with_lua("b.io/*", HEALTHY)
            .unwrap()
            .with_lua("a.io/*", r#"return {status = "Degraded"}"#)
            .unwrap();
        assert_eq!(checks.custom.len(), 2);
        assert_eq!(checks.custom[1].pattern, "a.io/*");
    }

    #[test]
    fn has_check_covers_builtins_and_scripts() {
        let checks = HealthChecks::new()
            .with_lua("cert-manager.io/*", HEALTHY)
            .unwrap();
        assert!(checks.has_check(GroupKindRef::new("apps", "Deployment")));
        assert!(checks.has_check(GroupKindRef::new("cert-manager.io", "Certificate")));
        assert!(!checks.has_check(GroupKindRef::new("", "ConfigMap")));
    }

    #[test]
    fn rejects_bad_patterns_and_scripts() {
        for pattern in ["", "a b/C", "a/b/C", "a.io/[x"] {
            let err = HealthChecks::new().with_lua(pattern, HEALTHY).unwrap_err();
            assert!(
                matches!(err, ConfigError::InvalidPattern { .. }),
                "{pattern}: {err}"
            );
        }
        let err = HealthChecks::new()
            .with_lua("a.io/B", "hs = {\nreturn hs")
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("Lua health script for \"a.io/B\" does not compile: a.io/B:2:"),
            "{text}"
        );
    }

    #[test]
    fn reads_argocd_cm_data() {
        let data = [
            (
                "resource.customizations",
                "cert-manager.io/Certificate:\n  health.lua: |\n    return {status = \"Progressing\"}\n  ignoreDifferences: |\n    jsonPointers: [/spec]\n\"*.crossplane.io/*\":\n  health.lua: |\n    return {status = \"Healthy\"}\napps/Deployment:\n  ignoreDifferences: '{}'\n",
            ),
            (
                "resource.customizations.health.cert-manager.io_Certificate",
                HEALTHY,
            ),
            (
                "resource.customizations.health.PersistentVolumeClaim",
                HEALTHY,
            ),
            (
                "resource.customizations.useOpenLibs.cert-manager.io_Certificate",
                "true",
            ),
            (
                "resource.customizations.ignoreDifferences.apps_Deployment",
                "jsonPointers: [/spec/replicas]",
            ),
            ("url", "https://argocd.example.com"),
        ];
        let checks = HealthChecks::from_argocd_cm(data).unwrap();
        let mut patterns: Vec<&str> = checks.custom.iter().map(|c| c.pattern.as_str()).collect();
        patterns.sort();
        assert_eq!(
            patterns,
            [
                "*.crossplane.io/*",
                "PersistentVolumeClaim",
                "cert-manager.io/Certificate"
            ]
        );
        assert!(script_name(&checks, "apps", "Deployment").is_none());
    }

    #[test]
    fn split_keys_win_over_the_yaml_block() {
        let data = [
            (
                "resource.customizations",
                "cert-manager.io/Certificate:\n  health.lua: |\n    return {status = \"Degraded\"}\n",
            ),
            (
                "resource.customizations.health.cert-manager.io_Certificate",
                HEALTHY,
            ),
        ];
        let checks = HealthChecks::from_argocd_cm(data).unwrap();
        let obj = serde_json::json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate"});
        let status = checks
            .script_for(GroupKindRef::new("cert-manager.io", "Certificate"))
            .unwrap()
            .assess(&obj, checks.limits());
        assert_eq!(status.status, crate::HealthCode::Healthy);
    }

    #[test]
    fn bad_argocd_cm_entries_are_named() {
        let err = HealthChecks::from_argocd_cm([("resource.customizations.health.a_b_C", HEALTHY)])
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("argocd-cm key \"resource.customizations.health.a_b_C\""),
            "{err}"
        );
        let err = HealthChecks::from_argocd_cm([("resource.customizations", "- not\n- a map\n")])
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("argocd-cm key \"resource.customizations\": not a map"),
            "{err}"
        );
        let err = HealthChecks::from_argocd_cm([(
            "resource.customizations.health.example.com_Widget",
            "return {",
        )])
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("\"example.com/Widget\" does not compile"),
            "{err}"
        );
    }
}
