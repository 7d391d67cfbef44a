//! `registries.conf` (the `registries.conf` key of `argocd-image-updater-config`), with Argo CD
//! Image Updater's field names and checks.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::error::{Error, ErrorKind, Result};

/// Requests per second for a registry whose entry sets no `limit` (upstream's documented default).
pub const DEFAULT_LIMIT: u32 = 20;

/// The whole file: a `registries:` list.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegistriesConf {
    #[serde(default)]
    pub registries: Vec<RegistryConfig>,
}

/// One entry of `registries:`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Informational name, used in messages.
    #[serde(default)]
    pub name: String,
    /// `http(s)://host[:port]` of the v2 API.
    #[serde(default)]
    pub api_url: String,
    /// Image prefix this entry serves (`ghcr.io`, `harbor.example/team`); empty only for the default.
    #[serde(default)]
    pub prefix: String,
    /// Accepted as upstream; ferry learns the auth scheme from the registry's first 401 either way.
    #[serde(default, deserialize_with = "yaml11_bool")]
    pub ping: bool,
    /// Registry-wide credential source (`pullsecret:`, `secret:`, `env:`, `ext:`).
    #[serde(default)]
    pub credentials: Option<String>,
    /// How long credentials read from `credentials` are used before being read again (`5h`, `1h30m`).
    #[serde(default, deserialize_with = "go_duration")]
    pub credsexpire: Option<Duration>,
    /// Skip TLS certificate verification.
    #[serde(default, deserialize_with = "yaml11_bool")]
    pub insecure: bool,
    /// PEM CA bundle file trusted for this registry besides the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM CA bundle given inline, trusted like `ca_file`.
    #[serde(default)]
    pub ca_data: Option<String>,
    /// Use this registry for images without a registry host.
    #[serde(default, deserialize_with = "yaml11_bool")]
    pub default: bool,
    /// Namespace for single-component image names (`library` on Docker Hub).
    #[serde(default)]
    pub defaultns: Option<String>,
    /// Requests per second (every HTTP request, token requests included); default [`DEFAULT_LIMIT`].
    #[serde(default)]
    pub limit: Option<u32>,
    /// How the registry orders its tag list.
    #[serde(default)]
    pub tagsortmode: TagSortMode,
}

/// `tagsortmode`: whether the registry's tag list is already ordered by time, so that upstream's
/// newest-build strategy may take the order instead of fetching metadata.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TagSortMode {
    /// `none` or unset.
    #[default]
    Unsorted,
    /// `latest-first`
    LatestFirst,
    /// `latest-last`
    LatestLast,
}

impl<'de> Deserialize<'de> for TagSortMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        match value.to_ascii_lowercase().as_str() {
            "" | "none" => Ok(TagSortMode::Unsorted),
            "latest-first" => Ok(TagSortMode::LatestFirst),
            "latest-last" => Ok(TagSortMode::LatestLast),
            _ => Err(serde::de::Error::custom(format!(
                "unknown tag sort mode {value:?} (none, latest-first, latest-last)"
            ))),
        }
    }
}

/// A boolean as YAML 1.1 (upstream's parser) spells it: also `yes`/`no`, `on`/`off`, `y`/`n`
/// (upstream's own example writes `insecure: yes`).
fn yaml11_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Text(String),
    }
    match Flag::deserialize(deserializer)? {
        Flag::Bool(value) => Ok(value),
        Flag::Text(text) => match text.to_ascii_lowercase().as_str() {
            "yes" | "y" | "on" | "true" => Ok(true),
            "no" | "n" | "off" | "false" => Ok(false),
            _ => Err(serde::de::Error::custom(format!(
                "invalid boolean {text:?}"
            ))),
        },
    }
}

/// Go's `time.Duration` text (`30s`, `5h`, `1h30m`), as upstream's YAML decoder reads it.
fn go_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let parsed: jiff::SignedDuration = text
        .parse()
        .map_err(|e| serde::de::Error::custom(format!("invalid duration {text:?}: {e}")))?;
    Duration::try_from(parsed)
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("negative duration {text:?}")))
}

impl RegistriesConf {
    /// Parses and checks the YAML text: every entry has a name and an API URL, at most one
    /// entry is the default or lacks a prefix, prefixes are unique.
    pub fn parse(yaml: &str) -> Result<Self> {
        let conf: RegistriesConf = serde_yaml::from_str(yaml)
            .map_err(|e| Error::new(ErrorKind::Config, format!("registries.conf: {e}")))?;
        let invalid = |message: String| Err(Error::new(ErrorKind::Config, message));
        let mut default = None::<&str>;
        let mut without_prefix = None::<&str>;
        for (i, entry) in conf.registries.iter().enumerate() {
            if entry.name.is_empty() {
                return invalid(format!("registries.conf: entry {} has no name", i + 1));
            }
            let url = url::Url::parse(&entry.api_url);
            if !matches!(&url, Ok(u) if matches!(u.scheme(), "http" | "https")) {
                return invalid(format!(
                    "registries.conf: registry {} needs an http(s) api_url, got {:?}",
                    entry.name, entry.api_url
                ));
            }
            if entry.prefix.is_empty()
                && let Some(other) = without_prefix.replace(&entry.name)
            {
                return invalid(format!(
                    "registries.conf: only one registry may lack a prefix ({other} and {})",
                    entry.name
                ));
            }
            if entry.default
                && let Some(other) = default.replace(&entry.name)
            {
                return invalid(format!(
                    "registries.conf: only one default registry allowed ({other} and {})",
                    entry.name
                ));
            }
            if let Some(other) = conf.registries[..i]
                .iter()
                .find(|o| o.prefix == entry.prefix && !entry.prefix.is_empty())
            {
                return invalid(format!(
                    "registries.conf: prefix {} is used by {} and {}",
                    entry.prefix, other.name, entry.name
                ));
            }
            if entry.limit == Some(0) {
                return invalid(format!(
                    "registries.conf: registry {} has limit 0 (requests per second must be positive)",
                    entry.name
                ));
            }
        }
        Ok(conf)
    }

    /// Reads and parses the file at `path`.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("reading {}: {e}", path.display()),
            )
        })?;
        Self::parse(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_example() {
        let conf = RegistriesConf::parse(
            r#"
registries:
- name: Docker Hub
  prefix: docker.io
  api_url: https://registry-1.docker.io
  credentials: secret:foo/bar#creds
  defaultns: library
  default: true
- name: RedHat Quay
  api_url: https://quay.io
  prefix: quay.io
  ca_file: /app/config/certs/quay-ca.pem
  insecure: yes
  credentials: env:REGISTRY_SECRET
  credsexpire: 1h30m
  limit: 10
  tagsortmode: latest-first
  ping: true
"#,
        )
        .unwrap();
        let [hub, quay] = &conf.registries[..] else {
            panic!("two entries")
        };
        assert!(hub.default);
        assert_eq!(hub.defaultns.as_deref(), Some("library"));
        assert_eq!(quay.credsexpire, Some(Duration::from_secs(5400)));
        assert_eq!(quay.limit, Some(10));
        assert!(quay.insecure);
        assert_eq!(quay.tagsortmode, TagSortMode::LatestFirst);
        assert_eq!(
            quay.ca_file.as_deref(),
            Some(std::path::Path::new("/app/config/certs/quay-ca.pem"))
        );
    }

    #[test]
    fn refuses_what_upstream_refuses() {
        for (yaml, expected) in [
            (
                "registries:\n- api_url: https://a\n  prefix: a",
                "has no name",
            ),
            ("registries:\n- name: a\n  prefix: a", "api_url"),
            (
                "registries:\n- name: a\n  api_url: ftp://a\n  prefix: a",
                "api_url",
            ),
            (
                "registries:\n- {name: a, api_url: 'https://a', prefix: a, default: true}\n- {name: b, api_url: 'https://b', prefix: b, default: true}",
                "only one default",
            ),
            (
                "registries:\n- {name: a, api_url: 'https://a'}\n- {name: b, api_url: 'https://b'}",
                "only one registry may lack a prefix",
            ),
            (
                "registries:\n- {name: a, api_url: 'https://a', prefix: x}\n- {name: b, api_url: 'https://b', prefix: x}",
                "prefix x is used",
            ),
            (
                "registries:\n- {name: a, api_url: 'https://a', prefix: a, tagsortmode: random}",
                "unknown tag sort mode",
            ),
            (
                "registries:\n- {name: a, api_url: 'https://a', prefix: a, credsexpire: soon}",
                "invalid duration",
            ),
            (
                "registries:\n- {name: a, api_url: 'https://a', prefix: a, limt: 3}",
                "unknown field `limt`",
            ),
        ] {
            let err = RegistriesConf::parse(yaml).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(err.to_string().contains(expected), "{yaml}: {err}");
        }
    }
}
