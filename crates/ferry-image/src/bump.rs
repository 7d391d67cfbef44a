//! Semver bumps of image tags, as CI pipelines do: `1.4.2` → `1.4.3` / `1.5.0` / `2.0.0`. A
//! leading `v` stays; pre-release and build parts are dropped (the bump is a release).

use std::fmt;
use std::str::FromStr;

use crate::edit::EditError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Patch,
    Minor,
    Major,
}

impl FromStr for Level {
    type Err = EditError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "patch" => Ok(Level::Patch),
            "minor" => Ok(Level::Minor),
            "major" => Ok(Level::Major),
            _ => Err(EditError::Invalid(format!(
                "unknown bump {s:?}: expected patch, minor or major"
            ))),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Patch => "patch",
            Level::Minor => "minor",
            Level::Major => "major",
        })
    }
}

/// The tag after bumping `level`; a tag that is not `[v]MAJOR.MINOR.PATCH[-pre][+build]` is
/// an error naming it.
pub fn bump(tag: &str, level: Level) -> Result<String, EditError> {
    let (prefix, version) = match tag.strip_prefix('v') {
        Some(rest) => ("v", rest),
        None => ("", tag),
    };
    let mut version = semver::Version::parse(version)
        .map_err(|e| EditError::Invalid(format!("tag {tag:?} is not a semantic version: {e}")))?;
    match level {
        Level::Patch => version.patch += 1,
        Level::Minor => {
            version.minor += 1;
            version.patch = 0;
        }
        Level::Major => {
            version.major += 1;
            version.minor = 0;
            version.patch = 0;
        }
    }
    version.pre = semver::Prerelease::EMPTY;
    version.build = semver::BuildMetadata::EMPTY;
    Ok(format!("{prefix}{version}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bumps_keep_the_v_and_reset_lower_parts() {
        assert_eq!(bump("1.4.2", Level::Patch).unwrap(), "1.4.3");
        assert_eq!(bump("v1.4.2", Level::Minor).unwrap(), "v1.5.0");
        assert_eq!(bump("v1.4.2-rc.1+git.abc", Level::Major).unwrap(), "v2.0.0");
        assert_eq!(bump("0.9.9", Level::Patch).unwrap(), "0.9.10");
        assert_eq!("minor".parse::<Level>().unwrap(), Level::Minor);
        for bad in ["latest", "1.4", "v", "01.2.3", "1.2.3.4"] {
            let e = bump(bad, Level::Patch).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        assert!("huge".parse::<Level>().is_err());
    }
}
