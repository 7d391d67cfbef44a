//! The patterns of a policy's resource, action and object fields.

use std::fmt;
use std::str::FromStr;

use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;

/// How the patterns of a policy are matched: `policy.matchMode` in `argocd-rbac-cm`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MatchMode {
    /// `*`, `?`, `[...]`, `{a,b}`; `*` crosses `/`, so `team-a/*` covers `team-a/ns/app`.
    #[default]
    Glob,
    /// Regular expressions, unanchored as Casbin's `regexMatch` is: `prod` matches
    /// `team-a/prod-web`; write `^...$` to match whole values.
    Regex,
}

impl FromStr for MatchMode {
    type Err = String;

    /// `glob` or `regex`; empty means the default, `glob`. Anything else is refused: Argo CD
    /// falls back to globs, which would silently turn regex rules into near no-ops.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim() {
            "" | "glob" => Ok(Self::Glob),
            "regex" => Ok(Self::Regex),
            other => Err(format!("unknown match mode {other:?} (use glob or regex)")),
        }
    }
}

impl fmt::Display for MatchMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Glob => "glob",
            Self::Regex => "regex",
        })
    }
}

/// A compiled field pattern.
#[derive(Debug, Clone)]
pub(crate) enum Pattern {
    /// A lone `*` glob: anything, without running a matcher.
    Any,
    /// A glob without wildcards, or a value that must be matched literally.
    Exact(String),
    Glob(GlobMatcher),
    Regex(Regex),
}

impl Pattern {
    pub(crate) fn compile(text: &str, mode: MatchMode) -> Result<Self, String> {
        match mode {
            MatchMode::Glob if text == "*" => Ok(Self::Any),
            MatchMode::Glob if !text.contains(['*', '?', '[', ']', '{', '}', '\\']) => {
                Ok(Self::Exact(text.to_string()))
            }
            MatchMode::Glob => GlobBuilder::new(text)
                .literal_separator(false)
                .backslash_escape(true)
                .build()
                .map(|glob| Self::Glob(glob.compile_matcher()))
                .map_err(|err| format!("invalid glob {text:?}: {}", err.kind())),
            MatchMode::Regex => Regex::new(text)
                .map(Self::Regex)
                .map_err(|err| format!("invalid regular expression {text:?}: {err}")),
        }
    }

    pub(crate) fn matches(&self, value: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(text) => text == value,
            Self::Glob(glob) => glob.is_match(value),
            Self::Regex(regex) => regex.is_match(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(text: &str) -> Pattern {
        Pattern::compile(text, MatchMode::Glob).unwrap()
    }

    fn regex(text: &str) -> Pattern {
        Pattern::compile(text, MatchMode::Regex).unwrap()
    }

    #[test]
    fn globs_cross_slashes_and_support_classes_and_alternatives() {
        assert!(glob("*").matches(""));
        assert!(glob("*/*").matches("team-a/ns/guestbook"));
        assert!(!glob("*/*").matches("guestbook"));
        assert!(glob("team-a/*").matches("team-a/guestbook"));
        assert!(!glob("team-a/*").matches("team-b/guestbook"));
        assert!(glob("action/apps/Deployment/*").matches("action/apps/Deployment/restart"));
        assert!(glob("team-?/{web,api}").matches("team-b/api"));
        assert!(!glob("team-?/{web,api}").matches("team-b/db"));
        assert!(glob("env-[0-9]").matches("env-7"));
        assert!(glob(r"literal\*").matches("literal*"));
        assert!(!glob(r"literal\*").matches("literally"));
    }

    #[test]
    fn globs_without_wildcards_match_exactly() {
        assert!(matches!(glob("applications"), Pattern::Exact(_)));
        assert!(glob("applications").matches("applications"));
        assert!(!glob("applications").matches("applicationsets"));
        assert!(!glob("get").matches("Get"));
    }

    #[test]
    fn regexes_are_unanchored_like_casbin() {
        assert!(regex("prod").matches("team-a/prod-web"));
        assert!(!regex("^prod$").matches("team-a/prod-web"));
        assert!(regex("^team-(a|b)/.+$").matches("team-b/guestbook"));
        assert!(!regex("^team-(a|b)/.+$").matches("team-c/guestbook"));
    }

    #[test]
    fn invalid_patterns_are_errors() {
        let err = Pattern::compile("team-[a", MatchMode::Glob).unwrap_err();
        assert!(err.starts_with("invalid glob \"team-[a\""), "{err}");
        let err = Pattern::compile("*/*", MatchMode::Regex).unwrap_err();
        assert!(
            err.starts_with("invalid regular expression \"*/*\""),
            "{err}"
        );
    }

    #[test]
    fn match_modes_parse_strictly() {
        assert_eq!("".parse(), Ok(MatchMode::Glob));
        assert_eq!(" glob ".parse(), Ok(MatchMode::Glob));
        assert_eq!("regex".parse(), Ok(MatchMode::Regex));
        assert_eq!(
            "Regex".parse::<MatchMode>(),
            Err("unknown match mode \"Regex\" (use glob or regex)".to_string())
        );
        assert_eq!(MatchMode::Regex.to_string(), "regex");
    }
}
