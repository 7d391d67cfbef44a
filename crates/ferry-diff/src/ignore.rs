//! `ignoreDifferences`: fields excluded from the comparison, per application or system-wide,
//! in Argo CD's format.

use std::fmt;
use std::time::Duration;

use globset::{Glob, GlobMatcher};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::DiffError;
use crate::jq_paths::{self, JqFailure, JqPaths};
use crate::managed_fields;
use crate::object::ResourceId;
use crate::path::{Path, parse_pointer, remove_all, resolve_tokens};

/// How long one jq path expression may run on one object (Argo CD's default).
pub const DEFAULT_JQ_TIMEOUT: Duration = Duration::from_secs(1);

/// One `ignoreDifferences` entry (Application `spec.ignoreDifferences`, or a system-wide entry
/// from `resource.customizations.ignoreDifferences.*` with its group and kind filled in).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceIgnoreDifferences {
    /// API group; a glob (`*` matches any group). Empty means the core group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Kind; a glob (`*` matches any kind).
    pub kind: String,
    /// Exact name; empty matches any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Exact namespace; empty matches any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// RFC 6901 pointers of fields to ignore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json_pointers: Vec<String>,
    /// jq expressions selecting fields to ignore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jq_path_expressions: Vec<String>,
    /// Field managers whose fields (per the live object's managedFields) are ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_fields_managers: Vec<String>,
}

impl fmt::Display for ResourceIgnoreDifferences {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "group `{}` kind `{}`", self.group, self.kind)?;
        if !self.namespace.is_empty() {
            write!(f, " namespace `{}`", self.namespace)?;
        }
        if !self.name.is_empty() {
            write!(f, " name `{}`", self.name)?;
        }
        Ok(())
    }
}

/// Compiled `ignoreDifferences` rules.
#[derive(Clone)]
pub struct IgnoreRules {
    rules: Vec<Rule>,
    jq_timeout: Duration,
}

#[derive(Clone)]
struct Rule {
    group: GlobMatcher,
    kind: GlobMatcher,
    name: String,
    namespace: String,
    pointers: Vec<Vec<String>>,
    jq: Vec<(String, JqPaths)>,
    managers: Vec<String>,
}

impl Default for IgnoreRules {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            jq_timeout: DEFAULT_JQ_TIMEOUT,
        }
    }
}

impl fmt::Debug for IgnoreRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IgnoreRules")
            .field("rules", &self.rules.len())
            .field("jq_timeout", &self.jq_timeout)
            .finish()
    }
}

impl IgnoreRules {
    /// Compiles the rules (app-level and system-wide alike); a bad pointer, jq expression or
    /// glob is an error naming the rule.
    pub fn new<'a>(
        rules: impl IntoIterator<Item = &'a ResourceIgnoreDifferences>,
    ) -> Result<Self, DiffError> {
        let rules = rules
            .into_iter()
            .map(|source| {
                Rule::compile(source).map_err(|reason| DiffError::InvalidIgnoreRule {
                    rule: source.to_string(),
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            rules,
            jq_timeout: DEFAULT_JQ_TIMEOUT,
        })
    }

    /// Sets how long one jq expression may run on one object.
    pub fn with_jq_timeout(mut self, timeout: Duration) -> Self {
        self.jq_timeout = timeout;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether a rule for this resource names field managers, so the live object must be
    /// compared with its `metadata.managedFields` (which caches usually drop).
    pub fn needs_managed_fields(
        &self,
        group: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> bool {
        let id = ResourceId {
            group: group.into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        };
        self.rules
            .iter()
            .any(|rule| !rule.managers.is_empty() && rule.matches(&id))
    }

    /// Removes from `object` the fields the rules for it ignore by JSON pointer or jq path
    /// expression (managedFieldsManagers need a comparison's other side and are left out, as
    /// Argo CD's ignore normalizer does). A jq expression that times out is an error.
    pub fn remove_ignored(&self, object: &mut Value) -> Result<(), DiffError> {
        let id = ResourceId::of(object);
        let paths = self.paths(&id, object, None, None)?;
        remove_all(object, paths);
        Ok(())
    }

    /// The ignored paths in `doc`. `counterpart` is the other side of the comparison and
    /// `live` the live object whose managedFields say who owns what.
    pub(crate) fn paths(
        &self,
        id: &ResourceId,
        doc: &Value,
        counterpart: Option<&Value>,
        live: Option<&Value>,
    ) -> Result<Vec<Path>, DiffError> {
        let mut out = Vec::new();
        let mut input = None;
        for rule in self.rules.iter().filter(|rule| rule.matches(id)) {
            out.extend(rule.pointers.iter().filter_map(|t| resolve_tokens(doc, t)));
            for (expression, jq) in &rule.jq {
                let result = match &input {
                    Some(input) => jq.paths(doc, input, self.jq_timeout),
                    None => jq_paths::to_input(doc).and_then(|converted| {
                        jq.paths(doc, input.insert(converted), self.jq_timeout)
                    }),
                };
                match result {
                    Ok(paths) => out.extend(paths),
                    // As in Argo CD, an expression that fails on an object ignores nothing
                    // there. The error text may quote field values, so it is not logged.
                    Err(JqFailure::Error) => {
                        tracing::debug!(resource = %id, expression, "jq path expression failed; nothing ignored");
                    }
                    Err(JqFailure::Timeout) => {
                        return Err(DiffError::JqTimeout {
                            resource: id.to_string(),
                            expression: expression.clone(),
                            timeout: self.jq_timeout,
                        });
                    }
                }
            }
            if let Some(live) = live.filter(|_| !rule.managers.is_empty()) {
                let sets = managed_fields::owned_by(live, &rule.managers).map_err(|reason| {
                    DiffError::InvalidObject {
                        resource: id.to_string(),
                        reason,
                    }
                })?;
                for set in sets {
                    out.extend(set.differing_paths(doc, counterpart));
                }
            }
        }
        Ok(out)
    }
}

impl Rule {
    fn compile(source: &ResourceIgnoreDifferences) -> Result<Self, String> {
        let glob = |pattern: &str, what: &str| {
            Glob::new(pattern)
                .map(|g| g.compile_matcher())
                .map_err(|e| format!("invalid {what} pattern `{pattern}`: {e}"))
        };
        if source.kind.is_empty() {
            return Err("kind is required".into());
        }
        let pointers = source
            .json_pointers
            .iter()
            .map(|p| parse_pointer(p))
            .collect::<Result<_, _>>()?;
        let jq = source
            .jq_path_expressions
            .iter()
            .map(|e| {
                JqPaths::compile(e)
                    .map(|jq| (e.clone(), jq))
                    .map_err(|reason| format!("jqPathExpression `{e}`: {reason}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            group: glob(&source.group, "group")?,
            kind: glob(&source.kind, "kind")?,
            name: source.name.clone(),
            namespace: source.namespace.clone(),
            pointers,
            jq,
            managers: source.managed_fields_managers.clone(),
        })
    }

    fn matches(&self, id: &ResourceId) -> bool {
        self.group.is_match(&id.group)
            && self.kind.is_match(&id.kind)
            && (self.name.is_empty() || self.name == id.name)
            && (self.namespace.is_empty() || self.namespace == id.namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::to_pointer;
    use serde_json::json;

    fn rules(yaml: &str) -> IgnoreRules {
        let parsed: Vec<ResourceIgnoreDifferences> = serde_yaml::from_str(yaml).unwrap();
        IgnoreRules::new(&parsed).unwrap()
    }

    #[test]
    fn removes_what_pointers_and_jq_ignore_of_matching_objects_only() {
        let r = rules(
            "- {group: '*', kind: '*', jsonPointers: [/metadata/generation, /status]}\n\
             - {kind: ConfigMap, jqPathExpressions: ['.data.a'], \
                managedFieldsManagers: [kube-controller-manager]}\n",
        );
        let mut config_map = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "generation": 2}, "data": {"a": "1", "b": "2"}});
        r.remove_ignored(&mut config_map).unwrap();
        assert_eq!(
            config_map,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                "data": {"b": "2"}})
        );
        let mut secret = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s"}, "data": {"a": "1"}, "status": {}});
        r.remove_ignored(&mut secret).unwrap();
        assert_eq!(
            secret,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                "data": {"a": "1"}})
        );
    }

    #[test]
    fn only_rules_naming_managers_need_managed_fields() {
        let rules = rules(
            "- {group: apps, kind: Deployment, managedFieldsManagers: [autoscaler]}\n\
             - {kind: ConfigMap, jsonPointers: [/data]}\n",
        );
        assert!(rules.needs_managed_fields("apps", "Deployment", "shop", "web"));
        assert!(!rules.needs_managed_fields("", "ConfigMap", "shop", "web"));
        assert!(!rules.needs_managed_fields("apps", "StatefulSet", "shop", "db"));
    }

    fn id(group: &str, kind: &str, namespace: &str, name: &str) -> ResourceId {
        ResourceId {
            group: group.into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    fn ignored(rules: &IgnoreRules, id: &ResourceId, doc: &Value) -> Vec<String> {
        let mut out: Vec<String> = rules
            .paths(id, doc, None, None)
            .unwrap()
            .iter()
            .map(|p| to_pointer(p))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn argo_format_parses() {
        let parsed: Vec<ResourceIgnoreDifferences> = serde_yaml::from_str(
            "- group: apps\n  kind: Deployment\n  jsonPointers: [/spec/replicas]\n  \
             managedFieldsManagers: [kube-controller-manager]\n\
             - kind: ConfigMap\n  name: cm\n  namespace: ns\n  jqPathExpressions: ['.data.x']\n",
        )
        .unwrap();
        assert_eq!(parsed[0].json_pointers, ["/spec/replicas"]);
        assert_eq!(
            parsed[0].managed_fields_managers,
            ["kube-controller-manager"]
        );
        assert_eq!(parsed[1].group, "");
        assert_eq!(parsed[1].jq_path_expressions, [".data.x"]);
    }

    #[test]
    fn matching_with_wildcards_name_and_namespace() {
        let r = rules(
            "- group: '*'\n  kind: '*'\n  jsonPointers: [/metadata/labels/all]\n\
             - group: apps\n  kind: Deploy*\n  jsonPointers: [/spec/replicas]\n\
             - kind: ConfigMap\n  name: one\n  namespace: ns\n  jsonPointers: [/data/x]\n",
        );
        let doc = json!({"metadata": {"labels": {"all": "1"}}, "spec": {"replicas": 1},
            "data": {"x": "1"}});
        assert_eq!(
            ignored(&r, &id("apps", "Deployment", "ns", "web"), &doc),
            ["/metadata/labels/all", "/spec/replicas"]
        );
        assert_eq!(
            ignored(&r, &id("", "ConfigMap", "ns", "one"), &doc),
            ["/data/x", "/metadata/labels/all"]
        );
        assert_eq!(
            ignored(&r, &id("", "ConfigMap", "other", "one"), &doc),
            ["/metadata/labels/all"]
        );
        // An empty group is the core group only.
        let core_only = rules("- kind: Deployment\n  jsonPointers: [/spec/replicas]\n");
        assert!(ignored(&core_only, &id("apps", "Deployment", "ns", "web"), &doc).is_empty());
    }

    #[test]
    fn bad_rules_are_errors_naming_the_rule() {
        let bad = |yaml: &str| {
            let parsed: Vec<ResourceIgnoreDifferences> = serde_yaml::from_str(yaml).unwrap();
            IgnoreRules::new(&parsed).unwrap_err().to_string()
        };
        let err = bad("- group: apps\n  kind: Deployment\n  jsonPointers: [spec/replicas]\n");
        assert!(
            err.contains("kind `Deployment`") && err.contains("must start with `/`"),
            "{err}"
        );
        let err = bad("- kind: Deployment\n  jqPathExpressions: ['.spec | select(']\n");
        assert!(err.contains("jqPathExpression `.spec | select(`"), "{err}");
        let err = bad("- kind: 'Deploy[ment'\n");
        assert!(err.contains("invalid kind pattern"), "{err}");
    }
}
