//! Glob patterns as AppProjects use them: `*`, `?`, `[...]`, `{a,b}`; a lone `*` matches
//! anything; with a separator, `*` stays within one `/`-separated segment and `**` crosses them;
//! a leading `!` (where allowed) turns the pattern into a denial.

use globset::{GlobBuilder, GlobMatcher};

#[derive(Debug, Clone)]
pub(crate) struct Glob {
    /// `!pattern`: matches whatever the rest does not match.
    deny: bool,
    matcher: Option<GlobMatcher>,
}

/// Whether `*` may cross `/` (repository URLs are matched segment by segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Separator {
    Slash,
    None,
}

/// Whether a leading `!` means denial or is a literal character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Negation {
    Allowed,
    Literal,
}

impl Glob {
    pub(crate) fn new(
        pattern: &str,
        separator: Separator,
        negation: Negation,
    ) -> Result<Self, globset::Error> {
        let (deny, body) = match pattern.strip_prefix('!') {
            Some(rest) if negation == Negation::Allowed => (true, rest),
            _ => (false, pattern),
        };
        // A lone `*` matches everything, separators included (Argo CD short-cuts it).
        let matcher = if body == "*" && !deny {
            None
        } else {
            Some(
                GlobBuilder::new(body)
                    .literal_separator(separator == Separator::Slash)
                    .backslash_escape(true)
                    .build()?
                    .compile_matcher(),
            )
        };
        Ok(Self { deny, matcher })
    }

    pub(crate) fn is_deny(&self) -> bool {
        self.deny
    }

    /// Whether `value` matches; for a `!` pattern, whether it is outside the denied set.
    pub(crate) fn matches(&self, value: &str) -> bool {
        let hit = self.matcher.as_ref().is_none_or(|m| m.is_match(value));
        hit != self.deny
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &str, sep: Separator) -> Glob {
        Glob::new(p, sep, Negation::Allowed).unwrap()
    }

    #[test]
    fn star_stays_in_a_segment_only_with_a_separator() {
        let g = glob("https://github.com/org/*", Separator::Slash);
        assert!(g.matches("https://github.com/org/repo"));
        assert!(!g.matches("https://github.com/org/group/repo"));
        assert!(!g.matches("https://github.com/other/repo"));
        let g = glob("https://github.com/org/**", Separator::Slash);
        assert!(g.matches("https://github.com/org/group/repo"));
        let g = glob("https://github.com/org/*", Separator::None);
        assert!(g.matches("https://github.com/org/group/repo"));
    }

    #[test]
    fn a_lone_star_matches_everything() {
        for sep in [Separator::Slash, Separator::None] {
            let g = glob("*", sep);
            assert!(g.matches("https://a/b/c") && g.matches(""));
        }
    }

    #[test]
    fn negation_and_literals() {
        let g = glob("!kube-*", Separator::None);
        assert!(g.is_deny());
        assert!(!g.matches("kube-system"));
        assert!(g.matches("prod"));
        let literal = Glob::new("!x", Separator::None, Negation::Literal).unwrap();
        assert!(!literal.is_deny() && literal.matches("!x"));
        assert!(glob("{dev,prod}-?", Separator::None).matches("prod-1"));
        assert!(glob("", Separator::None).matches(""));
        assert!(!glob("", Separator::None).matches("x"));
        assert!(Glob::new("[", Separator::None, Negation::Allowed).is_err());
    }
}
