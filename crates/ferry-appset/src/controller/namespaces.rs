//! `--applicationset-namespaces`: the namespaces whose ApplicationSets the controller
//! reconciles besides its own, each entry a glob (`team-*`) or a `/regex/`, as Argo CD's
//! `glob.MatchStringInList` with REGEXP reads them.

use globset::{Glob, GlobMatcher};
use regex::Regex;

enum Pattern {
    Regex(Regex),
    Glob(GlobMatcher),
}

/// The control namespace and the allowed patterns.
pub struct AllowedNamespaces {
    control: String,
    patterns: Vec<Pattern>,
}

impl AllowedNamespaces {
    /// Refuses an entry that is neither a glob nor a regular expression the `regex` crate takes
    /// (it has no look-around, which Argo CD's regexp2 has).
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
                        .map_err(|e| format!("--applicationset-namespaces entry {entry:?}: {e}")),
                    None => Glob::new(entry)
                        .map(|g| Pattern::Glob(g.compile_matcher()))
                        .map_err(|e| format!("--applicationset-namespaces entry {entry:?}: {e}")),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            control: control.to_string(),
            patterns,
        })
    }

    /// Whether only the control namespace is watched.
    pub fn control_only(&self) -> bool {
        self.patterns.is_empty()
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
