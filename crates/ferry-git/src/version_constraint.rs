//! Semver constraints in the syntax Argo CD accepts for `targetRevision` (that of Go's
//! Masterminds/semver): comparators separated by spaces or commas (AND), alternatives separated
//! by `||`, hyphen ranges `1.2 - 1.4`, wildcards `1.2.*` / `1.2.x`, `~`, `~>`, `^`, `!=`, and an
//! optional leading `v` on versions. A bare version means exactly that version. Matching itself
//! is done by the `semver` crate. Shared with the image updater, whose semver strategy takes the
//! same constraints on image tags.

use std::sync::LazyLock;

use regex::Regex;
use semver::{Version, VersionReq};

/// A parsed constraint: any alternative may match.
#[derive(Debug)]
pub struct Constraint {
    alternatives: Vec<Alternative>,
}

#[derive(Debug)]
struct Alternative {
    required: VersionReq,
    excluded: Vec<Version>,
}

static COMPARATOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?P<op>!=|>=|<=|~>|=|>|<|~|\^)?\s*[vV]?",
        r"(?P<version>[0-9xX*]+(?:\.[0-9xX*]+){0,2}(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)",
        r"(?:\s*,\s*|\s+|$)"
    ))
    .expect("valid regex")
});

static HYPHEN_RANGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\S+)\s+-\s+(\S+)$").expect("valid regex"));

impl Constraint {
    /// `None` when `text` is not a constraint (then it is a branch, tag or SHA to look up).
    pub fn parse(text: &str) -> Option<Self> {
        let alternatives = text
            .split("||")
            .map(|alt| parse_alternative(alt.trim()))
            .collect::<Option<Vec<_>>>()?;
        Some(Constraint { alternatives })
    }

    pub fn matches(&self, version: &Version) -> bool {
        self.alternatives
            .iter()
            .any(|alt| alt.required.matches(version) && !alt.excluded.contains(version))
    }
}

fn parse_alternative(text: &str) -> Option<Alternative> {
    if text.is_empty() {
        return None;
    }
    if let Some(caps) = HYPHEN_RANGE.captures(text) {
        return parse_alternative(&format!(">={}, <={}", &caps[1], &caps[2]));
    }
    let mut comparators = Vec::new();
    let mut excluded = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let caps = COMPARATOR.captures(rest)?;
        let version = caps["version"].replace(['x', 'X'], "*");
        let has_wildcard = version.contains('*');
        match caps.name("op").map(|m| m.as_str()) {
            Some("!=") => excluded.push(parse_version(&version)?),
            Some("~>") => comparators.push(format!("~{version}")),
            Some(op) => comparators.push(format!("{op}{version}")),
            // A bare version is an exact match; a bare wildcard is a range.
            // `2.x-0`: the range, pre-releases included (Masterminds' way to ask for them).
            None if has_wildcard && version.contains('-') => {
                comparators.extend(prerelease_range(&version)?)
            }
            None if has_wildcard => comparators.push(version),
            None => comparators.push(format!("={version}")),
        }
        rest = &rest[caps.get(0)?.end()..];
    }
    let required = if comparators.is_empty() {
        VersionReq::STAR
    } else {
        VersionReq::parse(&comparators.join(", ")).ok()?
    };
    Some(Alternative { required, excluded })
}

/// `>=lower-pre, <upper-0` for a wildcard version with a pre-release suffix (`1.2.x-0`).
fn prerelease_range(version: &str) -> Option<Vec<String>> {
    let (core, pre) = version.split_once('-')?;
    let parts: Vec<&str> = core.split('.').collect();
    let number = |i: usize| -> Option<u64> { parts.get(i).and_then(|p| p.parse().ok()) };
    let lower: Vec<String> = (0..3).map(|i| number(i).unwrap_or(0).to_string()).collect();
    let mut range = vec![format!(">={}-{pre}", lower.join("."))];
    match (number(0), number(1)) {
        (None, _) => {}
        (Some(major), None) => range.push(format!("<{}.0.0-0", major + 1)),
        (Some(major), Some(minor)) => range.push(format!("<{major}.{}.0-0", minor + 1)),
    }
    Some(range)
}

/// A tag as a version, leniently like Masterminds: optional `v`, missing minor/patch are zero.
pub fn parse_version(tag: &str) -> Option<Version> {
    let tag = tag.strip_prefix(['v', 'V']).unwrap_or(tag);
    let core_end = tag.find(['-', '+']).unwrap_or(tag.len());
    let (core, suffix) = tag.split_at(core_end);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let padded: Vec<&str> = parts.iter().copied().chain(["0", "0"]).take(3).collect();
    Version::parse(&format!("{}{suffix}", padded.join("."))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn satisfied(constraint: &str, version: &str) -> bool {
        let c =
            Constraint::parse(constraint).unwrap_or_else(|| panic!("{constraint} should parse"));
        c.matches(&parse_version(version).unwrap())
    }

    #[test]
    fn argo_forms() {
        assert!(satisfied("1.2.*", "1.2.9"));
        assert!(!satisfied("1.2.*", "1.3.0"));
        assert!(satisfied("v1.2.x", "v1.2.3"));
        assert!(satisfied(">=1.0.0 <2.0.0", "1.9.0"));
        assert!(!satisfied(">=1.0.0 <2.0.0", "2.0.0"));
        assert!(satisfied(">= 1.0, < 2", "1.5.0"));
        assert!(satisfied("~1.2", "1.2.7"));
        assert!(!satisfied("~1.2", "1.3.0"));
        assert!(satisfied("~>1.2.3", "1.2.9"));
        assert!(satisfied("^1.2", "1.9.0"));
        assert!(!satisfied("^1.2", "2.0.0"));
        assert!(satisfied("*", "3.1.4"));
        assert!(satisfied("1.0.0 - 1.4.0", "1.4.0"));
        assert!(!satisfied("1.0.0 - 1.4.0", "1.4.1"));
        assert!(satisfied("<1.0.0 || >=3", "3.0.1"));
        assert!(!satisfied("<1.0.0 || >=3", "2.0.0"));
        assert!(!satisfied(">=1, !=1.5.0", "1.5.0"));
        assert!(satisfied(">=1, !=1.5.0", "1.5.1"));
    }

    #[test]
    fn wildcards_with_a_prerelease_suffix_take_prereleases() {
        assert!(satisfied("2.x-0", "2.0.0-rc1"));
        assert!(satisfied("2.x-0", "2.0.1"));
        assert!(!satisfied("2.x-0", "3.0.0-rc1"));
        assert!(!satisfied("2.x-0", "1.9.0"));
        assert!(satisfied("1.2.x-0", "1.2.0-beta.1"));
        assert!(!satisfied("1.2.x-0", "1.3.0"));
    }

    #[test]
    fn bare_version_is_exact() {
        assert!(satisfied("1.2.3", "v1.2.3"));
        assert!(!satisfied("1.2.3", "1.2.4"));
        assert!(satisfied("v1.2.3", "1.2.3"));
    }

    #[test]
    fn prereleases_only_when_asked_for() {
        assert!(!satisfied(">=1.0.0", "1.1.0-rc.1"));
        assert!(satisfied(">=1.1.0-rc.0", "1.1.0-rc.1"));
    }

    #[test]
    fn non_constraints() {
        for text in [
            "main",
            "HEAD",
            "",
            "feature/x",
            "release-1.2",
            "abc1234",
            "1.2.3.4",
            ">=",
            "v1.2 || ",
        ] {
            assert!(
                Constraint::parse(text).is_none(),
                "{text:?} should not parse"
            );
        }
    }

    #[test]
    fn lenient_tag_versions() {
        assert_eq!(parse_version("v1"), Some(Version::new(1, 0, 0)));
        assert_eq!(parse_version("1.2"), Some(Version::new(1, 2, 0)));
        assert_eq!(
            parse_version("V2.0.1-rc.1").unwrap().to_string(),
            "2.0.1-rc.1"
        );
        assert_eq!(parse_version("release"), None);
        assert_eq!(parse_version("1.2.3.4"), None);
    }
}
