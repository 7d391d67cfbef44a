//! Which tag an image goes to: Argo CD Image Updater's update strategies as pure functions over
//! the tags a registry listed.
//!
//! Tags first pass the filters (`ignore-tags` globs, the `allow-tags` match function, and for the
//! strategies that read image metadata the platforms); then the strategy orders what is left and
//! takes the last: `semver` the highest version within the constraint (tags that are no version
//! are left out), `newest-build` the latest creation time (ties by name), `alphabetical` the
//! greatest name, `digest` the constraint's own tag with its current digest. When nothing is
//! left, nothing is chosen and the image keeps its current tag.

use std::fmt;

use ferry_git::version_constraint::{Constraint, parse_version};
use globset::{GlobBuilder, GlobMatcher};
use jiff::Timestamp;
use regex::Regex;
use semver::Version;

/// A tag found in the registry, with what the strategies may need of it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Candidate {
    pub name: String,
    /// The digest of the tag's manifest (or index), when fetched.
    pub digest: Option<String>,
    /// When the image was built (its config's `created`), when fetched.
    pub created: Option<Timestamp>,
    /// The `os/arch[/variant]`s the tag offers: `None` when unknown, an empty list when the
    /// registry found none of the wanted ones.
    pub platforms: Option<Vec<String>>,
}

impl Candidate {
    pub fn named(name: &str) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}

/// How a new tag is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    #[default]
    Semver,
    NewestBuild,
    Alphabetical,
    Digest,
}

impl Strategy {
    /// Upstream's names, with the old `latest` and `name` for `newest-build` and
    /// `alphabetical`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "semver" => Ok(Self::Semver),
            "newest-build" | "latest" => Ok(Self::NewestBuild),
            "alphabetical" | "name" => Ok(Self::Alphabetical),
            "digest" => Ok(Self::Digest),
            other => Err(format!(
                "unknown update strategy {other:?} (one of semver, newest-build, alphabetical, digest; or the old names latest, name)"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Semver => "semver",
            Self::NewestBuild => "newest-build",
            Self::Alphabetical => "alphabetical",
            Self::Digest => "digest",
        }
    }

    /// Whether the strategy needs each tag's manifest and config (creation time, platforms,
    /// digest), which costs registry requests per tag.
    pub fn needs_metadata(self) -> bool {
        matches!(self, Self::NewestBuild | Self::Digest)
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `allow-tags` match function.
#[derive(Debug, Clone, Default)]
pub enum AllowTags {
    #[default]
    Any,
    Regexp(Regex),
}

impl AllowTags {
    /// `regexp:<expression>` or `any` (empty is `any`, as when the setting is absent).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("any") {
            return Ok(Self::Any);
        }
        match text.split_once(':') {
            Some(("regexp", expression)) => Regex::new(expression)
                .map(Self::Regexp)
                .map_err(|err| format!("invalid regular expression {expression:?}: {err}")),
            _ => Err(format!(
                "unknown match function {text:?} (regexp:<expression> or any)"
            )),
        }
    }

    fn allows(&self, tag: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Regexp(re) => re.is_match(tag),
        }
    }
}

/// `ignore-tags`: glob patterns as Go's `filepath.Match` reads them.
#[derive(Debug, Clone, Default)]
pub struct IgnoreTags(Vec<(String, GlobMatcher)>);

impl IgnoreTags {
    pub fn parse<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut globs = Vec::new();
        for pattern in patterns
            .into_iter()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|err| format!("invalid pattern {pattern:?}: {err}"))?;
            globs.push((pattern.to_string(), glob.compile_matcher()));
        }
        Ok(Self(globs))
    }

    fn matching(&self, tag: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(_, glob)| glob.is_match(tag))
            .map(|(pattern, _)| pattern.as_str())
    }
}

/// Checks `os/arch[/variant]`.
pub fn parse_platform(text: &str) -> Result<String, String> {
    let text = text.trim();
    let parts: Vec<&str> = text.split('/').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
        return Err(format!(
            "invalid platform {text:?} (os/arch or os/arch/variant)"
        ));
    }
    Ok(text.to_string())
}

/// The platform this process runs on, as upstream's default for the metadata strategies.
pub fn runtime_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("linux/{arch}")
}

/// Everything that decides the tag of one image.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub strategy: Strategy,
    /// What follows the image name: a semver constraint (`semver`), the tracked tag (`digest`);
    /// unused by the other strategies.
    pub constraint: Option<String>,
    pub allow_tags: AllowTags,
    pub ignore_tags: IgnoreTags,
    /// Platforms a tag must offer one of (metadata strategies only); none: any.
    pub platforms: Vec<String>,
}

/// Why a policy cannot choose at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error("invalid semver constraint {0:?}")]
    InvalidConstraint(String),
    #[error("the digest strategy needs the tag to track after the image name (image:tag)")]
    DigestWithoutTag,
}

impl Policy {
    /// Checks what can be checked before any tag is seen.
    pub fn validate(&self) -> Result<(), PolicyError> {
        self.semver_constraint().map(|_| ())?;
        if self.strategy == Strategy::Digest && self.constraint.is_none() {
            return Err(PolicyError::DigestWithoutTag);
        }
        Ok(())
    }

    /// Whether `tag` passes the filters that need nothing but its name (ignore-tags,
    /// allow-tags, the tracked tag of `digest`), so metadata is fetched for it.
    pub fn considers(&self, tag: &str) -> bool {
        self.ignore_tags.matching(tag).is_none()
            && self.allow_tags.allows(tag)
            && (self.strategy != Strategy::Digest || self.constraint.as_deref() == Some(tag))
    }

    fn semver_constraint(&self) -> Result<Option<Constraint>, PolicyError> {
        if self.strategy != Strategy::Semver {
            return Ok(None);
        }
        match self.constraint.as_deref() {
            None | Some("") => Ok(None),
            Some(text) => Constraint::parse(text)
                .map(Some)
                .ok_or_else(|| PolicyError::InvalidConstraint(text.into())),
        }
    }
}

/// What became of one tag.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Ignored {
        pattern: String,
    },
    NotAllowed,
    NoPlatform {
        offered: Vec<String>,
    },
    NotAVersion,
    OutsideConstraint,
    NotTheTrackedTag,
    /// Passed every filter; lost to the chosen one.
    Eligible,
    Chosen,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ignored { pattern } => write!(f, "ignored by pattern {pattern:?}"),
            Self::NotAllowed => f.write_str("not matched by allow-tags"),
            Self::NoPlatform { offered } if offered.is_empty() => {
                f.write_str("built for none of the platforms")
            }
            Self::NoPlatform { offered } => {
                write!(f, "built for {} only", offered.join(", "))
            }
            Self::NotAVersion => f.write_str("not a semantic version"),
            Self::OutsideConstraint => f.write_str("outside the version constraint"),
            Self::NotTheTrackedTag => f.write_str("not the tracked tag"),
            Self::Eligible => f.write_str("eligible, but not the newest"),
            Self::Chosen => f.write_str("chosen"),
        }
    }
}

/// The outcome: the chosen tag, if any, and what became of each tag (in the registry's order).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Selection {
    pub chosen: Option<Candidate>,
    pub verdicts: Vec<(String, Verdict)>,
}

/// Chooses among `candidates` as `policy` says.
pub fn select(policy: &Policy, candidates: &[Candidate]) -> Result<Selection, PolicyError> {
    policy.validate()?;
    let constraint = policy.semver_constraint()?;
    let mut verdicts = Vec::with_capacity(candidates.len());
    let mut eligible: Vec<(usize, Option<Version>)> = Vec::new();
    for (index, candidate) in candidates.iter().enumerate() {
        let tag = candidate.name.as_str();
        let (verdict, version) = judge(policy, constraint.as_ref(), candidate);
        if verdict == Verdict::Eligible {
            eligible.push((index, version));
        }
        verdicts.push((tag.to_string(), verdict));
    }
    let best = match policy.strategy {
        Strategy::Semver => eligible
            .into_iter()
            .max_by(|(a, va), (b, vb)| {
                va.cmp(vb)
                    .then_with(|| candidates[*a].name.cmp(&candidates[*b].name))
            })
            .map(|(i, _)| i),
        Strategy::NewestBuild => eligible
            .into_iter()
            .max_by(|(a, _), (b, _)| {
                let (a, b) = (&candidates[*a], &candidates[*b]);
                a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name))
            })
            .map(|(i, _)| i),
        Strategy::Alphabetical | Strategy::Digest => eligible
            .into_iter()
            .max_by(|(a, _), (b, _)| candidates[*a].name.cmp(&candidates[*b].name))
            .map(|(i, _)| i),
    };
    if let Some(index) = best {
        verdicts[index].1 = Verdict::Chosen;
    }
    Ok(Selection {
        chosen: best.map(|i| candidates[i].clone()),
        verdicts,
    })
}

fn judge(
    policy: &Policy,
    constraint: Option<&Constraint>,
    candidate: &Candidate,
) -> (Verdict, Option<Version>) {
    let tag = candidate.name.as_str();
    if let Some(pattern) = policy.ignore_tags.matching(tag) {
        let pattern = pattern.to_string();
        return (Verdict::Ignored { pattern }, None);
    }
    if !policy.allow_tags.allows(tag) {
        return (Verdict::NotAllowed, None);
    }
    if let Some(offered) = &candidate.platforms
        && policy.strategy.needs_metadata()
        && !policy.platforms.is_empty()
        && !offered.iter().any(|p| {
            policy
                .platforms
                .iter()
                .any(|wanted| platform_matches(wanted, p))
        })
    {
        let offered = offered.clone();
        return (Verdict::NoPlatform { offered }, None);
    }
    match policy.strategy {
        Strategy::Semver => {
            let Some(version) = parse_version(tag) else {
                return (Verdict::NotAVersion, None);
            };
            let within = match constraint {
                Some(c) => c.matches(&version),
                // No constraint: any release; a pre-release only when asked for.
                None => version.pre.is_empty(),
            };
            if !within {
                return (Verdict::OutsideConstraint, None);
            }
            (Verdict::Eligible, Some(version))
        }
        Strategy::Digest if policy.constraint.as_deref() != Some(tag) => {
            (Verdict::NotTheTrackedTag, None)
        }
        _ => (Verdict::Eligible, None),
    }
}

/// `linux/arm64` matches `linux/arm64/v8`: a wanted platform without a variant takes any.
fn platform_matches(wanted: &str, offered: &str) -> bool {
    wanted == offered
        || (wanted.matches('/').count() == 1
            && offered
                .strip_prefix(wanted)
                .is_some_and(|rest| rest.starts_with('/')))
}

/// The image as it runs now: its tag and, when it is pinned to one, its digest.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Current {
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Whether the chosen tag differs from what runs: for `digest`, unless the image already runs
/// at the chosen digest; otherwise unless it runs the chosen tag.
pub fn needs_update(strategy: Strategy, current: &Current, chosen: &Candidate) -> bool {
    if strategy == Strategy::Digest {
        return current.digest.is_none() || current.digest != chosen.digest;
    }
    current.tag.as_deref() != Some(chosen.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(names: &[&str]) -> Vec<Candidate> {
        names.iter().map(|n| Candidate::named(n)).collect()
    }

    fn semver(constraint: Option<&str>) -> Policy {
        Policy {
            constraint: constraint.map(Into::into),
            ..Policy::default()
        }
    }

    fn chosen(policy: &Policy, candidates: &[Candidate]) -> Option<String> {
        select(policy, candidates).unwrap().chosen.map(|c| c.name)
    }

    const NGINX: &[&str] = &[
        "1.17.10",
        "1.18.0",
        "1.19.0",
        "1.19.1",
        "1.19.10",
        "1.20.0",
        "1.21.0-rc.1",
        "latest",
        "stable",
        "v2.0.0",
    ];

    #[test]
    fn semver_takes_the_highest_version_within_the_constraint() {
        // images.md: "nginx:~1.19" follows the 1.19 patch branch.
        assert_eq!(
            chosen(&semver(Some("~1.19")), &tags(NGINX)),
            Some("1.19.10".into())
        );
        // update-strategies.md: "1.2.x" patch releases, "1.x" minor releases.
        let some = tags(&["1.2.3", "1.2.12", "1.3.0", "1.15.2", "2.0"]);
        assert_eq!(chosen(&semver(Some("1.2.x")), &some), Some("1.2.12".into()));
        assert_eq!(chosen(&semver(Some("1.x")), &some), Some("1.15.2".into()));
        // Without a constraint, the highest version; "v" prefixes compare as versions.
        assert_eq!(chosen(&semver(None), &tags(NGINX)), Some("v2.0.0".into()));
        // "a constraint of v1.x would match a tag 1.0 and a constraint of 1.x also matches v1.0".
        assert_eq!(
            chosen(&semver(Some("v1.x")), &tags(&["1.0"])),
            Some("1.0".into())
        );
        assert_eq!(
            chosen(&semver(Some("1.x")), &tags(&["v1.0"])),
            Some("v1.0".into())
        );
    }

    #[test]
    fn semver_leaves_out_tags_that_are_no_version_and_prereleases_unless_asked() {
        let selection = select(&semver(Some(">=1.20, <2")), &tags(NGINX)).unwrap();
        assert_eq!(selection.chosen.unwrap().name, "1.20.0");
        let verdict = |tag: &str| {
            selection
                .verdicts
                .iter()
                .find(|(t, _)| t == tag)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(verdict("latest"), Verdict::NotAVersion);
        assert_eq!(verdict("1.21.0-rc.1"), Verdict::OutsideConstraint);
        assert_eq!(verdict("1.17.10"), Verdict::OutsideConstraint);
        // Asking for pre-releases with a "-0" suffix, as upstream documents.
        let rcs = tags(&["1.9.0", "2.0.0-rc1", "2.0.0-rc2"]);
        assert_eq!(
            chosen(&semver(Some(">=2.0.0-0")), &rcs),
            Some("2.0.0-rc2".into())
        );
        // update-strategies.md: "2.x-0" for pre-releases such as v2.0-rc1.
        let rcs = tags(&["1.9.0", "v2.0-rc1"]);
        assert_eq!(
            chosen(&semver(Some("2.x-0")), &rcs),
            Some("v2.0-rc1".into())
        );
    }

    #[test]
    fn an_invalid_constraint_is_an_error_and_nothing_matching_is_no_choice() {
        assert_eq!(
            select(&semver(Some("latest")), &tags(NGINX)).unwrap_err(),
            PolicyError::InvalidConstraint("latest".into())
        );
        assert_eq!(chosen(&semver(Some("~3.0")), &tags(NGINX)), None);
        assert_eq!(chosen(&semver(None), &[]), None);
    }

    #[test]
    fn allow_and_ignore_tags_filter_before_the_strategy() {
        // images.md: newest-build restricted to 7-digit hex SHAs.
        let allow = AllowTags::parse("regexp:^[0-9a-f]{7}$").unwrap();
        let mut candidates = tags(&["a5fb3d3", "f7bb2e3", "latest", "master"]);
        for (i, c) in candidates.iter_mut().enumerate() {
            c.created = Some(Timestamp::from_second(1_700_000_000 + i as i64).unwrap());
        }
        let policy = Policy {
            strategy: Strategy::NewestBuild,
            allow_tags: allow,
            ..Policy::default()
        };
        assert_eq!(chosen(&policy, &candidates), Some("f7bb2e3".into()));
        let policy = Policy {
            strategy: Strategy::NewestBuild,
            ignore_tags: IgnoreTags::parse(["latest", "master"]).unwrap(),
            ..Policy::default()
        };
        assert_eq!(chosen(&policy, &candidates), Some("f7bb2e3".into()));
        // "*" ignores every tag: the image is not updated.
        let policy = Policy {
            ignore_tags: IgnoreTags::parse(["*"]).unwrap(),
            ..semver(None)
        };
        let selection = select(&policy, &tags(NGINX)).unwrap();
        assert_eq!(selection.chosen, None);
        assert!(selection.verdicts.iter().all(|(_, v)| *v
            == Verdict::Ignored {
                pattern: "*".into()
            }));
        // Globs as Go's filepath.Match reads them.
        let ignore = IgnoreTags::parse(["1.19.*", "v*"]).unwrap();
        let policy = Policy {
            ignore_tags: ignore,
            ..semver(None)
        };
        assert_eq!(chosen(&policy, &tags(NGINX)), Some("1.20.0".into()));
    }

    #[test]
    fn match_functions_and_bad_ones() {
        assert!(matches!(AllowTags::parse("any").unwrap(), AllowTags::Any));
        assert!(matches!(AllowTags::parse("").unwrap(), AllowTags::Any));
        let err = AllowTags::parse("regexp:^(unclosed").unwrap_err();
        assert!(err.contains("invalid regular expression"), "{err}");
        let err = AllowTags::parse("^1\\.").unwrap_err();
        assert!(err.contains("unknown match function"), "{err}");
        assert!(IgnoreTags::parse(["[unclosed"]).is_err());
        assert_eq!(
            Strategy::parse("latest").unwrap(),
            Strategy::NewestBuild,
            "the old name"
        );
        assert_eq!(Strategy::parse("name").unwrap(), Strategy::Alphabetical);
        assert!(Strategy::parse("newest").is_err());
        assert!(parse_platform("linux").is_err());
        assert_eq!(parse_platform("linux/arm64/v8").unwrap(), "linux/arm64/v8");
    }

    #[test]
    fn newest_build_takes_the_latest_creation_and_breaks_ties_by_name() {
        // update-strategies.md: one build tagged f33bacd, dev and latest: "latest" is taken.
        let at = |s| Some(Timestamp::from_second(s).unwrap());
        let candidates = vec![
            Candidate {
                created: at(100),
                ..Candidate::named("0ld0001")
            },
            Candidate {
                created: at(200),
                ..Candidate::named("f33bacd")
            },
            Candidate {
                created: at(200),
                ..Candidate::named("dev")
            },
            Candidate {
                created: at(200),
                ..Candidate::named("latest")
            },
        ];
        let policy = Policy {
            strategy: Strategy::NewestBuild,
            ..Policy::default()
        };
        assert_eq!(chosen(&policy, &candidates), Some("latest".into()));
    }

    #[test]
    fn platforms_filter_metadata_strategies_only() {
        let at = |s| Some(Timestamp::from_second(s).unwrap());
        let candidates = vec![
            Candidate {
                created: at(100),
                platforms: Some(vec!["linux/amd64".into(), "linux/arm64/v8".into()]),
                ..Candidate::named("multi")
            },
            Candidate {
                created: at(200),
                platforms: Some(vec!["linux/amd64".into()]),
                ..Candidate::named("amd64-only")
            },
        ];
        let policy = Policy {
            strategy: Strategy::NewestBuild,
            platforms: vec!["linux/arm64".into()],
            ..Policy::default()
        };
        let selection = select(&policy, &candidates).unwrap();
        assert_eq!(selection.chosen.unwrap().name, "multi");
        assert_eq!(
            selection.verdicts[1].1,
            Verdict::NoPlatform {
                offered: vec!["linux/amd64".into()]
            }
        );
        // semver and alphabetical do not read platforms.
        let policy = Policy {
            strategy: Strategy::Alphabetical,
            platforms: vec!["linux/arm64".into()],
            ..Policy::default()
        };
        assert_eq!(chosen(&policy, &candidates), Some("multi".into()));
    }

    #[test]
    fn alphabetical_takes_the_greatest_name() {
        // update-strategies.md: calver tags YYYY-MM-DD.
        let policy = Policy {
            strategy: Strategy::Alphabetical,
            allow_tags: AllowTags::parse("regexp:^[0-9]{4}-[0-9]{2}-[0-9]{2}$").unwrap(),
            ..Policy::default()
        };
        let candidates = tags(&["2024-01-31", "2024-11-02", "2024-02-28", "latest", "zzz"]);
        assert_eq!(chosen(&policy, &candidates), Some("2024-11-02".into()));
    }

    #[test]
    fn digest_tracks_one_mutable_tag() {
        let policy = Policy {
            strategy: Strategy::Digest,
            constraint: Some("latest".into()),
            ..Policy::default()
        };
        let candidates = vec![
            Candidate {
                digest: Some("sha256:new".into()),
                ..Candidate::named("latest")
            },
            Candidate {
                digest: Some("sha256:other".into()),
                ..Candidate::named("stable")
            },
        ];
        let chosen = select(&policy, &candidates).unwrap().chosen.unwrap();
        assert_eq!(chosen.digest.as_deref(), Some("sha256:new"));
        // Updated while running a tag, or another digest; not when at the same digest.
        let running = |tag: &str, digest: Option<&str>| Current {
            tag: Some(tag.into()),
            digest: digest.map(Into::into),
        };
        assert!(needs_update(
            Strategy::Digest,
            &running("latest", None),
            &chosen
        ));
        assert!(needs_update(
            Strategy::Digest,
            &running("latest", Some("sha256:old")),
            &chosen
        ));
        assert!(!needs_update(
            Strategy::Digest,
            &running("latest", Some("sha256:new")),
            &chosen
        ));
        let without_tag = Policy {
            constraint: None,
            ..policy
        };
        assert_eq!(
            select(&without_tag, &candidates).unwrap_err(),
            PolicyError::DigestWithoutTag
        );
    }

    #[test]
    fn tag_strategies_update_when_the_tag_differs() {
        let chosen = Candidate::named("1.19.10");
        let running = |tag: Option<&str>| Current {
            tag: tag.map(Into::into),
            digest: None,
        };
        assert!(needs_update(
            Strategy::Semver,
            &running(Some("1.19.1")),
            &chosen
        ));
        assert!(needs_update(Strategy::Semver, &running(None), &chosen));
        assert!(!needs_update(
            Strategy::Semver,
            &running(Some("1.19.10")),
            &chosen
        ));
    }
}
