//! Platforms (`os/arch[/variant]`, as the `<alias>.platforms` annotation lists them) and
//! upstream's matching rule.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorKind};

/// An image platform in Go's names (`linux/amd64`, `linux/arm/v7`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_string),
        }
    }

    /// The platform this process runs on, in Go's names: upstream's default filter when an
    /// image lists no platforms.
    pub fn runtime() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform::new(std::env::consts::OS, architecture, None)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let mut parts = text.trim().splitn(3, '/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(os), Some(arch), variant) if !os.is_empty() && !arch.is_empty() => {
                Ok(Platform::new(os, arch, variant))
            }
            _ => Err(Error::new(
                ErrorKind::Config,
                format!("invalid platform {text:?} (expected os/arch[/variant])"),
            )),
        }
    }
}

/// What [`crate::Registry::tag_info`] looks for.
#[derive(Clone, Debug, Default)]
pub struct ManifestOptions {
    /// Only images for these platforms count; empty: any platform.
    pub platforms: Vec<Platform>,
    /// Fetch creation time and labels (the image configs). Without it an index is judged by
    /// its platform list alone and no config is read.
    pub metadata: bool,
}

impl ManifestOptions {
    /// Upstream's rule: an exact match, or a wanted `os/arch` without variant matching any
    /// variant of it.
    pub fn wants(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        self.platforms.is_empty()
            || self.platforms.iter().any(|p| {
                p.os == os
                    && p.architecture == architecture
                    && (p.variant.as_deref() == variant.filter(|v| !v.is_empty())
                        || p.variant.is_none())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let p: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!(p, Platform::new("linux", "arm", Some("v7")));
        assert_eq!(p.to_string(), "linux/arm/v7");
        assert_eq!(
            " linux/amd64 ".parse::<Platform>().unwrap().to_string(),
            "linux/amd64"
        );
        assert!("linux".parse::<Platform>().is_err());
        assert!("/amd64".parse::<Platform>().is_err());
    }

    #[test]
    fn matches_as_upstream() {
        let options = ManifestOptions {
            platforms: vec![
                "linux/arm64".parse().unwrap(),
                "linux/arm/v7".parse().unwrap(),
            ],
            metadata: false,
        };
        assert!(options.wants("linux", "arm64", None));
        assert!(options.wants("linux", "arm64", Some("v8")));
        assert!(options.wants("linux", "arm", Some("v7")));
        assert!(!options.wants("linux", "arm", Some("v6")));
        assert!(!options.wants("linux", "arm", None));
        assert!(!options.wants("linux", "amd64", None));
        assert!(ManifestOptions::default().wants("windows", "amd64", None));
    }
}
