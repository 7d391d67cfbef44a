//! The namespaces a controller or API server serves besides its control namespace
//! (`--application-namespaces`, `--applicationset-namespaces`): each entry a glob (`team-*`) or
//! a `/regex/`, as Argo CD's `security.IsNamespaceEnabled` reads them.

use globset::{Glob, GlobMatcher};
use regex::Regex;

#[derive(Debug, Clone)]
enum Pattern {
    Regex(Regex),
    Glob(GlobMatcher),
}

/// The control namespace and the allowed patterns.
#[derive(Debug, Clone)]
pub struct AllowedNamespaces {
    control: String,
    patterns: Vec<Pattern>,
}

impl AllowedNamespaces {
    /// Refuses an entry that is neither a glob nor a regular expression the `regex` crate takes
    /// (it has no look-around, which Argo CD's regexp2 has); the error names the entry.
    pub fn new(control: &str, entries: &[String]) -> Result<Self, String> {
        let patterns = entries
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
            .map(|entry| {
                let regex = entry
                    .strip_prefix('/')
                    .and_then(|e| e.strip_suffix('/'))
                    .filter(|e| !e.is_empty());
                match regex {
                    Some(regex) => Regex::new(regex)
                        .map(Pattern::Regex)
                        .map_err(|e| format!("entry {entry:?}: {e}")),
                    None => Glob::new(entry)
                        .map(|g| Pattern::Glob(g.compile_matcher()))
                        .map_err(|e| format!("entry {entry:?}: {e}")),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            control: control.to_string(),
            patterns,
        })
    }

    /// Only the control namespace.
    pub fn control_only_of(control: &str) -> Self {
        Self {
            control: control.to_string(),
            patterns: Vec::new(),
        }
    }

    /// Whether only the control namespace is served.
    pub fn control_only(&self) -> bool {
        self.patterns.is_empty()
    }

    pub fn control(&self) -> &str {
        &self.control
    }

    pub fn allows(&self, namespace: &str) -> bool {
        namespace == self.control
            || self.patterns.iter().any(|p| match p {
                Pattern::Regex(re) => re.is_match(namespace),
                Pattern::Glob(glob) => glob.is_match(namespace),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_regular_expressions_as_argo_cd_reads_them() {
        let list = |entries: &[&str]| {
            let entries: Vec<_> = entries.iter().map(|e| e.to_string()).collect();
            AllowedNamespaces::new("argocd", &entries)
        };
        let allowed = list(&["team-*", "/^ci-[0-9]+$/", " exact "]).unwrap();
        assert!(!allowed.control_only());
        for ns in ["argocd", "team-one", "ci-42", "exact"] {
            assert!(allowed.allows(ns), "{ns}");
        }
        for ns in ["other", "ci-x", "exactly", "my-team-one"] {
            assert!(!allowed.allows(ns), "{ns}");
        }
        assert!(list(&["*"]).unwrap().allows("anything"));
        let only = list(&[]).unwrap();
        assert!(only.control_only() && only.allows("argocd") && !only.allows("team-one"));
        let err = list(&["/^((?!not-allowed).)*$/"]).err().unwrap();
        assert!(err.contains("/^((?!not-allowed).)*$/"), "{err}");
    }
}
