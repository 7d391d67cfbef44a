//! The configured registries and how an image finds its own, as upstream chooses: no registry
//! host → the default registry; a host equal to a prefix → that entry; otherwise the longest
//! prefix of `<host>/<image>` (at a `/` boundary); otherwise an entry inferred from the host
//! (`https://<host>`).
//! Docker Hub is built in (prefix `docker.io`, API `https://registry-1.docker.io`, namespace
//! `library`, 10 requests/s, the default) unless the configuration has a `docker.io` entry or
//! another default.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::{RegistriesConf, RegistryConfig, TagSortMode};
use crate::credentials::SecretReader;
use crate::error::{Error, ErrorKind, Result};
use crate::registry::Registry;

/// Upstream's request rate for Docker Hub and for registries inferred from an image's host.
const DOCKER_HUB_LIMIT: u32 = 10;
const INFERRED_LIMIT: u32 = 20;

/// Every registry an updater talks to, built from `registries.conf`.
pub struct Registries {
    configured: Vec<Arc<Registry>>,
    default: Option<Arc<Registry>>,
    inferred: Mutex<HashMap<String, Arc<Registry>>>,
    secrets: Option<Arc<dyn SecretReader>>,
}

fn docker_hub() -> RegistryConfig {
    RegistryConfig {
        name: "Docker Hub".into(),
        api_url: "https://registry-1.docker.io".into(),
        prefix: "docker.io".into(),
        ping: true,
        defaultns: Some("library".into()),
        limit: Some(DOCKER_HUB_LIMIT),
        default: true,
        tagsortmode: TagSortMode::Unsorted,
        ..Default::default()
    }
}

impl Registries {
    /// `secrets` reads the Secrets of `pullsecret:` and `secret:` credential sources.
    pub fn new(conf: &RegistriesConf, secrets: Option<Arc<dyn SecretReader>>) -> Result<Self> {
        let mut entries = conf.registries.clone();
        if !entries.iter().any(|e| e.prefix == "docker.io") {
            let mut hub = docker_hub();
            hub.default = !entries.iter().any(|e| e.default);
            entries.push(hub);
        }
        let configured = entries
            .into_iter()
            .map(|entry| Registry::new(entry, secrets.clone()).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        let default = configured.iter().find(|r| r.config().default).cloned();
        Ok(Registries {
            configured,
            default,
            inferred: Default::default(),
            secrets,
        })
    }

    /// The registry serving an image: `host` is its registry part (`ghcr.io`,
    /// `127.0.0.1:5000`) or `None` when the reference has none; `image` is the rest
    /// (`team/app`).
    pub fn for_image(&self, host: Option<&str>, image: &str) -> Result<Arc<Registry>> {
        let Some(host) = host.filter(|h| !h.is_empty()) else {
            return self.default.clone().ok_or_else(|| {
                Error::new(
                    ErrorKind::Config,
                    format!(
                        "image {image} names no registry and no default registry is configured"
                    ),
                )
            });
        };
        if let Some(exact) = self.configured.iter().find(|r| r.config().prefix == host) {
            return Ok(exact.clone());
        }
        let full = format!("{host}/{image}");
        if let Some(longest) = self
            .configured
            .iter()
            .filter(|r| prefix_matches(&r.config().prefix, &full))
            .max_by_key(|r| r.config().prefix.len())
        {
            return Ok(longest.clone());
        }
        let mut inferred = self.inferred.lock().expect("inferred registries lock");
        if let Some(registry) = inferred.get(host) {
            return Ok(registry.clone());
        }
        let registry = Arc::new(Registry::new(
            RegistryConfig {
                name: host.to_string(),
                api_url: format!("https://{host}"),
                prefix: host.to_string(),
                limit: Some(INFERRED_LIMIT),
                ..Default::default()
            },
            self.secrets.clone(),
        )?);
        inferred.insert(host.to_string(), registry.clone());
        Ok(registry)
    }

    /// The registry used for images without a registry host.
    pub fn default_registry(&self) -> Option<&Arc<Registry>> {
        self.default.as_ref()
    }
}

/// Whether `prefix` covers the image `full` (`host/path`). Unlike upstream's plain string
/// prefix, only at a path boundary: `harbor.example` must not catch `harbor.example.evil/app`
/// and send its requests to the wrong registry. An empty prefix covers everything.
fn prefix_matches(prefix: &str, full: &str) -> bool {
    prefix.is_empty()
        || full
            .strip_prefix(prefix.trim_end_matches('/'))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registries(yaml: &str) -> Registries {
        Registries::new(&RegistriesConf::parse(yaml).unwrap(), None).unwrap()
    }

    #[test]
    fn docker_hub_is_built_in_and_default() {
        let all = registries("registries: []");
        let hub = all.for_image(None, "nginx").unwrap();
        assert_eq!(hub.config().api_url, "https://registry-1.docker.io");
        assert_eq!(hub.repository("nginx"), "library/nginx");
        assert_eq!(hub.repository("bitnami/nginx"), "bitnami/nginx");
        let same = all.for_image(Some("docker.io"), "library/nginx").unwrap();
        assert!(Arc::ptr_eq(&hub, &same));
    }

    #[test]
    fn picks_by_prefix_then_infers() {
        let all = registries(
            r#"
registries:
- {name: Harbor, api_url: "https://harbor.example", prefix: harbor.example}
- {name: Harbor team, api_url: "https://harbor.example", prefix: harbor.example/team, limit: 5}
- {name: Quay, api_url: "https://quay.io", prefix: quay.io, default: true}
"#,
        );
        assert_eq!(
            all.for_image(Some("harbor.example"), "x/y")
                .unwrap()
                .config()
                .name,
            "Harbor"
        );
        assert_eq!(
            all.for_image(Some("harbor.example"), "team/app")
                .unwrap()
                .config()
                .name,
            "Harbor"
        );
        // An exact host match wins; prefixes with a path serve hosts that are not entries.
        let all_path = registries(
            r#"
registries:
- {name: Team, api_url: "https://r.example", prefix: r.example/team}
- {name: Other, api_url: "https://r.example", prefix: r.example/other}
"#,
        );
        assert_eq!(
            all_path
                .for_image(Some("r.example"), "team/app")
                .unwrap()
                .config()
                .name,
            "Team"
        );
        assert_eq!(
            all_path
                .for_image(Some("r.example"), "other/app")
                .unwrap()
                .config()
                .name,
            "Other"
        );
        assert_eq!(all.for_image(None, "app").unwrap().config().name, "Quay");
        let ghcr = all.for_image(Some("ghcr.io"), "org/app").unwrap();
        assert_eq!(ghcr.config().api_url, "https://ghcr.io");
        assert!(Arc::ptr_eq(
            &ghcr,
            &all.for_image(Some("ghcr.io"), "org/other").unwrap()
        ));
        // Docker Hub stays known, though not the default any more.
        assert_eq!(
            all.for_image(Some("docker.io"), "library/nginx")
                .unwrap()
                .config()
                .name,
            "Docker Hub"
        );
    }

    #[test]
    fn prefixes_match_at_path_boundaries() {
        assert!(prefix_matches("r.example/team", "r.example/team/app"));
        assert!(prefix_matches("r.example/team/", "r.example/team/app"));
        assert!(!prefix_matches("r.example/team", "r.example/team-b/app"));
        assert!(!prefix_matches("r.example", "r.example.evil/app"));
        assert!(prefix_matches("", "anything/app"));
    }

    #[test]
    fn an_entry_without_prefix_serves_unknown_hosts() {
        let all = registries(
            "registries:\n- {name: Mirror, api_url: 'https://mirror.example', default: true}",
        );
        assert_eq!(
            all.for_image(Some("ghcr.io"), "org/app")
                .unwrap()
                .config()
                .name,
            "Mirror"
        );
    }
}
