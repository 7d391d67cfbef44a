//! One registry: its settings, its transport, its registry-wide credentials (re-read after
//! `credsexpire`) and the metadata cache.
//!
//! The cache is keyed by digest: what a manifest or image config says never changes for a
//! digest, so a tag costs one HEAD request to learn its digest, and no manifest or config
//! fetch unless that digest is new.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use url::Url;

use crate::config::{DEFAULT_LIMIT, RegistryConfig};
use crate::credentials::{CredentialSource, Credentials, SecretReader};
use crate::error::{Error, ErrorKind, Result};
use crate::platform::{ManifestOptions, Platform};
use crate::transport::{Transport, TransportOptions};

const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";
/// Tags asked for per page; registries may answer fewer and continue with a `Link` header.
const TAGS_PAGE: u32 = 1000;
/// Manifests kept per registry (a few hundred bytes each). Digests of old pushes are never
/// asked again, so a full cache is emptied and refills with what is still in use.
const MAX_CACHED_MANIFESTS: usize = 100_000;

/// What a tag points at, for the update strategies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagInfo {
    /// The digest of the tag's manifest or index (`sha256:…`): what a pod pulls by digest.
    pub digest: String,
    /// The image's `created` time; for an index, the newest among the wanted platforms.
    /// `None` unless metadata was asked for, or when the config has none.
    pub created: Option<jiff::Timestamp>,
    /// The image config's labels (of the newest wanted platform image).
    pub labels: BTreeMap<String, String>,
}

/// What a digest's manifest says, cached.
#[derive(Debug)]
enum Node {
    /// An OCI index or Docker manifest list: its entries' platforms and digests.
    Index(Vec<(Option<Platform>, String)>),
    /// An image: what its config says.
    Image {
        platform: Platform,
        created: Option<jiff::Timestamp>,
        labels: BTreeMap<String, String>,
    },
}

pub struct Registry {
    config: RegistryConfig,
    transport: Transport,
    credentials: Option<CredentialSource>,
    secrets: Option<Arc<dyn SecretReader>>,
    /// Registry-wide credentials and when they were read; a lock held while reading them, so
    /// that concurrent lookups read them once.
    cached_credentials: tokio::sync::Mutex<Option<(Credentials, Instant)>>,
    nodes: Mutex<HashMap<String, Arc<Node>>>,
}

impl Registry {
    pub(crate) fn new(
        config: RegistryConfig,
        secrets: Option<Arc<dyn SecretReader>>,
    ) -> Result<Self> {
        let label = format!("{} ({})", config.name, config.api_url);
        let config_error =
            |message: String| Error::new(ErrorKind::Config, message).at(label.clone());
        let base = Url::parse(config.api_url.trim_end_matches('/'))
            .map_err(|e| config_error(format!("api_url: {e}")))?;
        let credentials = config
            .credentials
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|c| {
                c.parse::<CredentialSource>()
                    .map_err(|e| e.at(label.clone()))
            })
            .transpose()?;
        let ca_file =
            match (&config.ca_file, config.insecure) {
                (Some(path), false) => Some(std::fs::read(path).map_err(|e| {
                    config_error(format!("reading ca_file {}: {e}", path.display()))
                })?),
                _ => None,
            };
        let mut ca_pems: Vec<&[u8]> = Vec::new();
        if !config.insecure {
            ca_pems.extend(ca_file.as_deref());
            ca_pems.extend(config.ca_data.as_deref().map(str::as_bytes));
        }
        let transport = Transport::new(
            label,
            base,
            TransportOptions {
                insecure: config.insecure,
                ca_pems,
                requests_per_second: NonZeroU32::new(config.limit.unwrap_or(DEFAULT_LIMIT)),
            },
        )?;
        Ok(Registry {
            config,
            transport,
            credentials,
            secrets,
            cached_credentials: Default::default(),
            nodes: Default::default(),
        })
    }

    /// The entry this registry was built from (inferred registries get one too).
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// `"<name> (<api_url>)"`, as errors name the registry.
    pub fn label(&self) -> &str {
        &self.transport.label
    }

    /// The repository path of `image` in this registry: `defaultns` is put before a name
    /// without a namespace (`nginx` → `library/nginx` on Docker Hub).
    pub fn repository(&self, image: &str) -> String {
        match &self.config.defaultns {
            Some(ns) if !ns.is_empty() && !image.contains('/') => format!("{ns}/{image}"),
            _ => image.to_string(),
        }
    }

    /// HTTP requests sent to this registry and its token service so far.
    pub fn requests_sent(&self) -> u64 {
        self.transport.requests()
    }

    /// The registry's own credentials (`credentials` of its entry), read again once
    /// `credsexpire` has passed; `None` without a credential source.
    pub async fn registry_credentials(&self) -> Result<Option<Credentials>> {
        let Some(source) = &self.credentials else {
            return Ok(None);
        };
        let mut cached = self.cached_credentials.lock().await;
        if let Some((creds, read)) = cached.as_ref() {
            let fresh = self
                .config
                .credsexpire
                .is_none_or(|ttl| read.elapsed() < ttl);
            if fresh {
                return Ok(Some(creds.clone()));
            }
        }
        let hosts = self.hosts();
        let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let creds = source
            .fetch(&hosts, self.secrets.as_deref())
            .await
            .map_err(|e| e.at(self.label()))?;
        *cached = Some((creds.clone(), Instant::now()));
        Ok(Some(creds))
    }

    /// The host names a pull secret may list this registry under.
    fn hosts(&self) -> Vec<String> {
        let mut hosts = Vec::new();
        if let Some(host) = self.transport.base.host_str() {
            hosts.push(match self.transport.base.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_string(),
            });
        }
        if let Some(prefix_host) = self
            .config
            .prefix
            .split('/')
            .next()
            .filter(|h| !h.is_empty())
            && !hosts.iter().any(|h| h == prefix_host)
        {
            hosts.push(prefix_host.to_string());
        }
        // `docker login` writes Docker Hub's entry as `https://index.docker.io/v1/`.
        if self.config.prefix == "docker.io" {
            hosts.push("index.docker.io".to_string());
        }
        hosts
    }

    /// `given`, else the registry's own credentials, else anonymous.
    async fn creds(&self, given: Option<&Credentials>) -> Result<Option<Credentials>> {
        match given {
            Some(c) => Ok(Some(c.clone())),
            None => self.registry_credentials().await,
        }
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.transport.base.clone();
        let base_path = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{base_path}/v2/{path}"));
        url
    }

    /// Every tag of `repository`, following the registry's `Link` pages.
    pub async fn tags(&self, repository: &str, creds: Option<&Credentials>) -> Result<Vec<String>> {
        let creds = self.creds(creds).await?;
        let scope = pull_scope(repository);
        let mut url = self.url(&format!("{repository}/tags/list"));
        url.query_pairs_mut()
            .append_pair("n", &TAGS_PAGE.to_string());
        let mut tags = Vec::new();
        loop {
            let response = self
                .transport
                .send(
                    Method::GET,
                    url.clone(),
                    "application/json",
                    creds.as_ref(),
                    &scope,
                )
                .await?;
            if !response.status().is_success() {
                return Err(self
                    .transport
                    .status_error(
                        response,
                        &format!("listing tags of repository {repository}"),
                    )
                    .await);
            }
            let next = next_link(response.headers(), &url);
            let page: oci_spec::distribution::TagList = response.json().await.map_err(|e| {
                self.protocol(format!("tag list of {repository} is not valid: {e}"))
            })?;
            tags.extend(page.tags().iter().cloned());
            match next {
                Some(next) => url = next,
                None => return Ok(tags),
            }
        }
    }

    /// The digest of `reference` (a tag) in `repository`: the manifest or index a pull by
    /// digest gets. One HEAD request.
    pub async fn digest(
        &self,
        repository: &str,
        reference: &str,
        creds: Option<&Credentials>,
    ) -> Result<String> {
        let creds = self.creds(creds).await?;
        self.digest_with(repository, reference, creds.as_ref())
            .await
    }

    async fn digest_with(
        &self,
        repository: &str,
        reference: &str,
        creds: Option<&Credentials>,
    ) -> Result<String> {
        let url = self.url(&format!("{repository}/manifests/{reference}"));
        let scope = pull_scope(repository);
        let response = self
            .transport
            .send(Method::HEAD, url.clone(), MANIFEST_TYPES, creds, &scope)
            .await?;
        if !response.status().is_success() {
            let what = format!("manifest {repository}:{reference}");
            return Err(match response.status() {
                // A HEAD answer has no body to name the cause.
                StatusCode::NOT_FOUND => {
                    self.error(ErrorKind::NotFound, format!("{what} not found"))
                }
                _ => self.transport.status_error(response, &what).await,
            });
        }
        if let Some(digest) = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            return Ok(digest.to_string());
        }
        // Not every registry says the digest on HEAD; the manifest's bytes do.
        let bytes = self.manifest(repository, reference, creds).await?;
        Ok(sha256_digest(&bytes))
    }

    /// What `tag` of `repository` is, if it has an image for a wanted platform (`Ok(None)`
    /// if not). Manifests and configs already seen (by digest) are not fetched again.
    pub async fn tag_info(
        &self,
        repository: &str,
        tag: &str,
        options: &ManifestOptions,
        creds: Option<&Credentials>,
    ) -> Result<Option<TagInfo>> {
        let creds = self.creds(creds).await?;
        let creds = creds.as_ref();
        let digest = self.digest_with(repository, tag, creds).await?;
        let node = self.node(repository, &digest, creds).await?;
        match &*node {
            Node::Image {
                platform,
                created,
                labels,
            } => {
                if !options.wants(
                    &platform.os,
                    &platform.architecture,
                    platform.variant.as_deref(),
                ) {
                    return Ok(None);
                }
                Ok(Some(TagInfo {
                    digest,
                    created: created.filter(|_| options.metadata),
                    labels: if options.metadata {
                        labels.clone()
                    } else {
                        BTreeMap::new()
                    },
                }))
            }
            Node::Index(entries) => {
                let wanted: Vec<&String> = entries
                    .iter()
                    .filter(|(platform, _)| match platform {
                        Some(p) => options.wants(&p.os, &p.architecture, p.variant.as_deref()),
                        None => options.platforms.is_empty(),
                    })
                    .map(|(_, digest)| digest)
                    .collect();
                if wanted.is_empty() {
                    return Ok(None);
                }
                let mut info = TagInfo {
                    digest,
                    created: None,
                    labels: BTreeMap::new(),
                };
                if !options.metadata {
                    return Ok(Some(info));
                }
                for child in wanted {
                    let Node::Image {
                        created, labels, ..
                    } = &*self.node(repository, child, creds).await?
                    else {
                        return Err(self.protocol(format!(
                            "index {} of {repository}:{tag} lists another index {child}",
                            info.digest
                        )));
                    };
                    if created.is_some() && *created > info.created {
                        info.created = *created;
                        info.labels = labels.clone();
                    }
                }
                Ok(Some(info))
            }
        }
    }

    /// The cached node of `digest`, or fetched: the manifest, and for an image its config.
    async fn node(
        &self,
        repository: &str,
        digest: &str,
        creds: Option<&Credentials>,
    ) -> Result<Arc<Node>> {
        if let Some(node) = self.nodes.lock().expect("node cache lock").get(digest) {
            return Ok(node.clone());
        }
        let bytes = self.manifest(repository, digest, creds).await?;
        if sha256_digest(&bytes) != digest && digest.starts_with("sha256:") {
            return Err(self.protocol(format!(
                "manifest {repository}@{digest} does not match its digest"
            )));
        }
        let node = Arc::new(self.parse_node(repository, digest, &bytes, creds).await?);
        let mut nodes = self.nodes.lock().expect("node cache lock");
        if nodes.len() >= MAX_CACHED_MANIFESTS {
            nodes.clear();
        }
        nodes.insert(digest.to_string(), node.clone());
        Ok(node)
    }

    async fn parse_node(
        &self,
        repository: &str,
        digest: &str,
        bytes: &[u8],
        creds: Option<&Credentials>,
    ) -> Result<Node> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Shape {
            schema_version: Option<u32>,
            manifests: Option<serde_json::Value>,
            config: Option<serde_json::Value>,
        }
        let invalid = |e: serde_json::Error| {
            self.protocol(format!("manifest {repository}@{digest} is not valid: {e}"))
        };
        let shape: Shape = serde_json::from_slice(bytes).map_err(invalid)?;
        if shape.schema_version == Some(1) {
            return Err(self.protocol(format!(
                "manifest {repository}@{digest} is Docker schema 1, which is not supported"
            )));
        }
        if shape.manifests.is_some() {
            // OCI index or Docker manifest list: the same shape.
            let index: oci_spec::image::ImageIndex =
                serde_json::from_slice(bytes).map_err(invalid)?;
            return Ok(Node::Index(
                index
                    .manifests()
                    .iter()
                    .map(|entry| {
                        let platform = entry.platform().as_ref().map(|p| {
                            Platform::new(
                                &p.os().to_string(),
                                &p.architecture().to_string(),
                                p.variant().as_deref(),
                            )
                        });
                        (platform, entry.digest().to_string())
                    })
                    .collect(),
            ));
        }
        if shape.config.is_none() {
            return Err(self.protocol(format!(
                "manifest {repository}@{digest} is neither an image manifest nor an index"
            )));
        }
        // OCI image manifest or Docker schema 2: the same shape.
        let manifest: oci_spec::image::ImageManifest =
            serde_json::from_slice(bytes).map_err(invalid)?;
        let config_digest = manifest.config().digest().to_string();
        let config_bytes = self.blob(repository, &config_digest, creds).await?;
        let config: oci_spec::image::ImageConfiguration = serde_json::from_slice(&config_bytes)
            .map_err(|e| {
                self.protocol(format!(
                    "image config {config_digest} of {repository}@{digest} is not valid: {e}"
                ))
            })?;
        let created = match config.created() {
            Some(text) => Some(text.parse::<jiff::Timestamp>().map_err(|e| {
                self.protocol(format!(
                    "image config {config_digest} of {repository}@{digest}: created {text:?}: {e}"
                ))
            })?),
            None => None,
        };
        Ok(Node::Image {
            platform: Platform::new(
                &config.os().to_string(),
                &config.architecture().to_string(),
                config.variant().as_deref(),
            ),
            created,
            labels: config
                .config()
                .as_ref()
                .and_then(|c| c.labels().clone())
                .map(|l| l.into_iter().collect())
                .unwrap_or_default(),
        })
    }

    /// The raw manifest of `reference` (a tag or digest).
    async fn manifest(
        &self,
        repository: &str,
        reference: &str,
        creds: Option<&Credentials>,
    ) -> Result<Vec<u8>> {
        let url = self.url(&format!("{repository}/manifests/{reference}"));
        let response = self
            .transport
            .send(
                Method::GET,
                url,
                MANIFEST_TYPES,
                creds,
                &pull_scope(repository),
            )
            .await?;
        if !response.status().is_success() {
            return Err(self
                .transport
                .status_error(response, &format!("manifest {repository}:{reference}"))
                .await);
        }
        let bytes = response.bytes().await.map_err(|e| {
            self.error(
                ErrorKind::Unreachable,
                format!("reading manifest {repository}:{reference}: {e}"),
            )
        })?;
        Ok(bytes.to_vec())
    }

    async fn blob(
        &self,
        repository: &str,
        digest: &str,
        creds: Option<&Credentials>,
    ) -> Result<Vec<u8>> {
        let url = self.url(&format!("{repository}/blobs/{digest}"));
        let response = self
            .transport
            .send(Method::GET, url, "*/*", creds, &pull_scope(repository))
            .await?;
        if !response.status().is_success() {
            return Err(self
                .transport
                .status_error(response, &format!("blob {repository}@{digest}"))
                .await);
        }
        let bytes = response.bytes().await.map_err(|e| {
            self.error(
                ErrorKind::Unreachable,
                format!("reading blob {repository}@{digest}: {e}"),
            )
        })?;
        if digest.starts_with("sha256:") && sha256_digest(&bytes) != digest {
            return Err(self.protocol(format!(
                "blob {repository}@{digest} does not match its digest"
            )));
        }
        Ok(bytes.to_vec())
    }

    fn error(&self, kind: ErrorKind, message: String) -> Error {
        Error::new(kind, message).at(self.label())
    }

    fn protocol(&self, message: String) -> Error {
        self.error(ErrorKind::Protocol, message)
    }
}

fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// The `rel="next"` target of a `Link` header, resolved against the page's URL.
fn next_link(headers: &reqwest::header::HeaderMap, current: &Url) -> Option<Url> {
    let value = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    let links = parse_link_header::parse_with_rel(value).ok()?;
    let next = links.get("next")?;
    current.join(&next.raw_uri).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, LINK};

    #[test]
    fn follows_relative_and_absolute_links() {
        let current = Url::parse("https://r.example/v2/app/tags/list?n=5").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            LINK,
            HeaderValue::from_static(r#"</v2/app/tags/list?last=v5&n=5>; rel="next""#),
        );
        assert_eq!(
            next_link(&headers, &current).unwrap().as_str(),
            "https://r.example/v2/app/tags/list?last=v5&n=5"
        );
        headers.insert(
            LINK,
            HeaderValue::from_static(r#"<https://cdn.example/page2>; rel="next""#),
        );
        assert_eq!(
            next_link(&headers, &current).unwrap().as_str(),
            "https://cdn.example/page2"
        );
        assert!(next_link(&HeaderMap::new(), &current).is_none());
    }

    #[test]
    fn repository_gets_the_default_namespace() {
        let registry = Registry::new(
            RegistryConfig {
                name: "hub".into(),
                api_url: "https://registry-1.docker.io".into(),
                prefix: "docker.io".into(),
                defaultns: Some("library".into()),
                ..Default::default()
            },
            None,
        )
        .unwrap();
        assert_eq!(registry.repository("nginx"), "library/nginx");
        assert_eq!(registry.repository("team/app"), "team/app");
        assert_eq!(
            registry.hosts(),
            ["registry-1.docker.io", "docker.io", "index.docker.io"]
        );
    }
}
