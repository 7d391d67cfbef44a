//! An OCI registry for Helm charts: the CNCF distribution registry (built by `scripts/toolchain`,
//! the binary of the sandbox's own registry) on a free loopback port, storing into a temporary
//! directory, optionally behind htpasswd basic auth and serving HTTPS with a self-signed
//! certificate. Charts are pushed with the real `helm` (`helm package`, `helm push`) under a
//! throwaway helm home, so no registry login reaches the user's own helm configuration.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use ferry_testkit::registry::{Registry, RegistryOptions};
//! let registry = Registry::start(RegistryOptions {
//!     auth: Some(("alice", "s3cret")),
//!     ..Default::default()
//! })?;
//! registry.push_chart(std::path::Path::new("charts/web"), "charts")?;
//! println!("oci://{}/charts/web", registry.host());
//! # Ok(()) }
//! ```
//!
//! With `token`, the registry wants Bearer tokens from a [`TokenService`] (which checks `auth`'s
//! credentials) instead of basic auth. Test images (a config and a layer, optionally under an
//! OCI index or Docker manifest list per platform) are pushed with oci-client, no Docker.
//! The registry can be stopped and started again on its port, for outage tests.
//!
//! The registry stops when its handle is dropped.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use anyhow::{Context, Result, bail};
use serde_json::json;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::daemon::{start_on_free_port, start_on_port, stop};
use crate::helm::Helm;
use crate::http::SelfSigned;
pub use crate::registry_token::TokenService;

/// How the registry is served.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegistryOptions<'a> {
    /// Require HTTP basic auth with this user and password.
    pub auth: Option<(&'a str, &'a str)>,
    /// HTTPS with a self-signed certificate for 127.0.0.1, instead of plain HTTP.
    pub tls: bool,
    /// Bearer tokens from a [`TokenService`] that takes `auth`'s credentials, instead of basic
    /// auth (`auth` is required).
    pub token: bool,
    /// The most tags one page of a tag list holds (distribution's `tags.maxtags`); the rest
    /// follows through `Link` headers.
    pub max_tags: Option<u32>,
}

/// A running registry.
pub struct Registry {
    child: Child,
    port: u16,
    tls: bool,
    tls_cert: Option<String>,
    auth: Option<(String, String)>,
    token: Option<TokenService>,
    binary: PathBuf,
    config: serde_json::Value,
    dir: TempDir,
}

/// One platform's image of [`Registry::push_image`] and [`Registry::push_index`].
#[derive(Clone, Copy, Debug)]
pub struct TestImage<'a> {
    pub os: &'a str,
    pub architecture: &'a str,
    pub variant: Option<&'a str>,
    /// The config's `created` (RFC 3339).
    pub created: &'a str,
    pub labels: &'a [(&'a str, &'a str)],
}

impl Default for TestImage<'_> {
    fn default() -> Self {
        TestImage {
            os: "linux",
            architecture: "amd64",
            variant: None,
            created: "2026-01-01T00:00:00Z",
            labels: &[],
        }
    }
}

/// Which media types pushed manifests have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestFormat {
    /// OCI image manifest / OCI image index.
    Oci,
    /// Docker image manifest v2 schema 2 / Docker manifest list.
    Docker,
}

impl ManifestFormat {
    fn manifest(self) -> &'static str {
        match self {
            ManifestFormat::Oci => "application/vnd.oci.image.manifest.v1+json",
            ManifestFormat::Docker => "application/vnd.docker.distribution.manifest.v2+json",
        }
    }
    fn index(self) -> &'static str {
        match self {
            ManifestFormat::Oci => "application/vnd.oci.image.index.v1+json",
            ManifestFormat::Docker => "application/vnd.docker.distribution.manifest.list.v2+json",
        }
    }
    fn config(self) -> &'static str {
        match self {
            ManifestFormat::Oci => "application/vnd.oci.image.config.v1+json",
            ManifestFormat::Docker => "application/vnd.docker.container.image.v1+json",
        }
    }
    fn layer(self) -> &'static str {
        match self {
            ManifestFormat::Oci => "application/vnd.oci.image.layer.v1.tar",
            ManifestFormat::Docker => "application/vnd.docker.image.rootfs.diff.tar",
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

impl Registry {
    pub fn start(options: RegistryOptions<'_>) -> Result<Self> {
        let binary = ferry_sandbox::toolchain::bin_dir().join("registry");
        if !binary.is_file() {
            bail!(
                "{} is missing: build it with scripts/toolchain",
                binary.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("ferry-registry-")
            .tempdir()?;
        let mut config = json!({
            "version": "0.1",
            "log": {"level": "info"},
            "storage": {"filesystem": {"rootdirectory": dir.path().join("data")}},
            "http": {},
        });
        let token = match (options.token, options.auth) {
            (false, _) => None,
            (true, Some((user, password))) => Some(TokenService::start(user, password)?),
            (true, None) => bail!("a token registry needs `auth` credentials"),
        };
        if let Some(token) = &token {
            let bundle = dir.path().join("token-ca.pem");
            std::fs::write(&bundle, token.root_cert_bundle())?;
            config["auth"] = json!({"token": {
                "realm": token.realm(),
                "service": crate::registry_token::SERVICE,
                "issuer": crate::registry_token::ISSUER,
                "rootcertbundle": bundle,
            }});
        } else if let Some((user, password)) = options.auth {
            // The lowest cost bcrypt allows: every pull checks it again.
            let hash = bcrypt::hash(password, 4)?;
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n"))?;
            config["auth"] = json!({"htpasswd": {"realm": "ferry-test", "path": htpasswd}});
        }
        if let Some(max_tags) = options.max_tags {
            config["tags"] = json!({"maxtags": max_tags});
        }
        let mut tls_cert = None;
        if options.tls {
            let tls = SelfSigned::generate()?;
            let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
            std::fs::write(&cert, &tls.cert)?;
            std::fs::write(&key, tls.key)?;
            config["http"]["tls"] = json!({"certificate": cert, "key": key});
            tls_cert = Some(tls.cert);
        }
        let (child, port) = start_on_free_port(
            &dir.path().join("registry.log"),
            |port| command(&binary, &config, dir.path(), port),
            |_| true,
        )?;
        Ok(Registry {
            child,
            port,
            tls: options.tls,
            tls_cert,
            auth: options
                .auth
                .map(|(user, password)| (user.to_string(), password.to_string())),
            token,
            binary,
            config,
            dir,
        })
    }

    /// Stops the registry process (its storage stays), as in an outage.
    pub fn stop(&mut self) {
        stop(&mut self.child);
    }

    /// Starts it again on the same port, with the same storage.
    pub fn restart(&mut self) -> Result<()> {
        stop(&mut self.child);
        self.child = start_on_port(
            &self.dir.path().join("registry.log"),
            |port| command(&self.binary, &self.config, self.dir.path(), port),
            self.port,
            |_| true,
        )?;
        Ok(())
    }

    /// `http(s)://127.0.0.1:<port>`: the v2 API's base URL.
    pub fn api_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// The self-signed certificate (PEM) a TLS registry serves: the CA a client must trust.
    pub fn tls_certificate(&self) -> Option<&str> {
        self.tls_cert.as_deref()
    }

    /// The token service of a `token` registry.
    pub fn token_service(&self) -> Option<&TokenService> {
        self.token.as_ref()
    }

    /// A pusher of test images to this registry, with its credentials.
    pub fn pusher(&self) -> ImagePusher {
        ImagePusher {
            host: self.host(),
            tls: self.tls,
            auth: self.auth.clone(),
        }
    }

    /// [`ImagePusher::push_image`] to this registry.
    pub async fn push_image(
        &self,
        repository: &str,
        tag: &str,
        image: &TestImage<'_>,
        format: ManifestFormat,
    ) -> Result<String> {
        self.pusher()
            .push_image(repository, tag, image, format)
            .await
    }

    /// [`ImagePusher::push_index`] to this registry.
    pub async fn push_index(
        &self,
        repository: &str,
        tag: &str,
        images: &[TestImage<'_>],
        format: ManifestFormat,
    ) -> Result<String> {
        self.pusher()
            .push_index(repository, tag, images, format)
            .await
    }

    /// What the registry logged so far (one access-log line per request).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `127.0.0.1:<port>`: the registry part of an OCI reference, and how Argo CD writes an OCI
    /// Helm repository's URL.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Packages the chart in `chart_dir` and pushes it to `oci://<host>/<repository>/<name>`,
    /// tagged with its version, logging in first when the registry requires it.
    pub fn push_chart(&self, chart_dir: &Path, repository: &str) -> Result<()> {
        let helm = Helm::new()?;
        let package = helm.package(chart_dir)?;
        let host = self.host();
        if let Some((user, password)) = &self.auth {
            let transport = if self.tls {
                "--insecure"
            } else {
                "--plain-http"
            };
            let login_args = [
                "registry",
                "login",
                &host,
                "--username",
                user,
                "--password-stdin",
                transport,
            ];
            helm.run(&login_args.map(OsStr::new), Some(password))?;
        }
        let target = format!("oci://{host}/{repository}");
        let transport = if self.tls {
            "--insecure-skip-tls-verify"
        } else {
            "--plain-http"
        };
        let push_args = [
            OsStr::new("push"),
            package.as_os_str(),
            OsStr::new(&target),
            OsStr::new(transport),
        ];
        helm.run(&push_args, None)
    }
}

/// Pushes test images (a config and a layer per image, no Docker) with oci-client: to a
/// registry of this module ([`Registry::pusher`]) or another one, such as the sandbox's. TLS
/// certificates are not checked: the tests check trust in what they test, not in their setup.
#[derive(Clone, Debug)]
pub struct ImagePusher {
    host: String,
    tls: bool,
    auth: Option<(String, String)>,
}

impl ImagePusher {
    /// For the registry at `host` (`host:port`), over HTTPS with `tls`, as `auth`'s user.
    pub fn new(host: &str, tls: bool, auth: Option<(&str, &str)>) -> Self {
        ImagePusher {
            host: host.to_string(),
            tls,
            auth: auth.map(|(user, password)| (user.to_string(), password.to_string())),
        }
    }

    fn oci_client(&self) -> oci_client::Client {
        // reqwest (under oci-client) takes the process's rustls provider; ring, as kube's.
        let _ = rustls::crypto::ring::default_provider().install_default();
        oci_client::Client::new(oci_client::client::ClientConfig {
            protocol: if self.tls {
                oci_client::client::ClientProtocol::Https
            } else {
                oci_client::client::ClientProtocol::Http
            },
            accept_invalid_certificates: true,
            ..Default::default()
        })
    }

    fn oci_auth(&self) -> oci_client::secrets::RegistryAuth {
        match &self.auth {
            Some((user, password)) => {
                oci_client::secrets::RegistryAuth::Basic(user.clone(), password.clone())
            }
            None => oci_client::secrets::RegistryAuth::Anonymous,
        }
    }

    fn reference(&self, repository: &str, reference: &str) -> Result<oci_client::Reference> {
        let text = if reference.starts_with("sha256:") {
            format!("{}/{repository}@{reference}", self.host)
        } else {
            format!("{}/{repository}:{reference}", self.host)
        };
        text.parse().with_context(|| format!("reference {text}"))
    }

    /// Pushes `manifest` (JSON) under `reference`; returns its digest and size.
    async fn push_manifest(
        &self,
        client: &oci_client::Client,
        repository: &str,
        reference: &str,
        media_type: &str,
        manifest: serde_json::Value,
    ) -> Result<(String, usize)> {
        let body = serde_json::to_vec(&manifest)?;
        let digest = sha256(&body);
        let size = body.len();
        let target = self.reference(repository, reference)?;
        client
            .push_manifest_raw(&target, body, media_type.parse()?)
            .await
            .with_context(|| format!("pushing manifest {target}"))?;
        Ok((digest, size))
    }

    /// Pushes one image (a config saying `image`'s platform, creation time and labels, and
    /// a small layer unique to it) and its manifest, by digest only; returns digest and size.
    async fn push_image_manifest(
        &self,
        client: &oci_client::Client,
        repository: &str,
        image: &TestImage<'_>,
        format: ManifestFormat,
    ) -> Result<(String, usize)> {
        let auth = self.oci_auth();
        let target = self.reference(repository, "latest")?;
        client
            .store_auth_if_needed(target.resolve_registry(), &auth)
            .await;
        let layer = format!(
            "ferry test layer {}/{}/{} {}",
            image.os,
            image.architecture,
            image.variant.unwrap_or_default(),
            image.created
        )
        .into_bytes();
        let layer_digest = sha256(&layer);
        let mut config = json!({
            "created": image.created,
            "architecture": image.architecture,
            "os": image.os,
            "config": {"Labels": image.labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        });
        if let Some(variant) = image.variant {
            config["variant"] = json!(variant);
        }
        let config = serde_json::to_vec(&config)?;
        let config_digest = sha256(&config);
        let config_size = config.len();
        let layer_size = layer.len();
        client
            .push_blob(&target, layer, &layer_digest)
            .await
            .context("pushing a layer")?;
        client
            .push_blob(&target, config, &config_digest)
            .await
            .context("pushing a config")?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": format.manifest(),
            "config": {"mediaType": format.config(), "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": format.layer(), "digest": layer_digest, "size": layer_size}],
        });
        let by_digest = sha256(&serde_json::to_vec(&manifest)?);
        self.push_manifest(client, repository, &by_digest, format.manifest(), manifest)
            .await
    }

    /// Pushes an artifact as `oras push` does (an empty config, one layer of `media_type`)
    /// tagged `repository:tag`; returns the manifest's digest.
    pub async fn push_artifact(
        &self,
        repository: &str,
        tag: &str,
        layer: Vec<u8>,
        media_type: &str,
    ) -> Result<String> {
        self.push_annotated_artifact(repository, tag, layer, media_type, &[])
            .await
    }

    /// [`Self::push_artifact`] with `annotations` on the manifest (as `oras push
    /// --annotation` writes them).
    pub async fn push_annotated_artifact(
        &self,
        repository: &str,
        tag: &str,
        layer: Vec<u8>,
        media_type: &str,
        annotations: &[(&str, &str)],
    ) -> Result<String> {
        const EMPTY: &str = "application/vnd.oci.empty.v1+json";
        const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
        let client = self.oci_client();
        let target = self.reference(repository, tag)?;
        client
            .store_auth_if_needed(target.resolve_registry(), &self.oci_auth())
            .await;
        let (layer_digest, layer_size) = (sha256(&layer), layer.len());
        client
            .push_blob(&target, layer, &layer_digest)
            .await
            .context("pushing a layer")?;
        let config = b"{}".to_vec();
        let config_digest = sha256(&config);
        client
            .push_blob(&target, config, &config_digest)
            .await
            .context("pushing the empty config")?;
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "artifactType": "application/vnd.ferry.test.manifests",
            "config": {"mediaType": EMPTY, "digest": config_digest, "size": 2},
            "layers": [{
                "mediaType": media_type,
                "digest": layer_digest,
                "size": layer_size,
                "annotations": {"org.opencontainers.image.title": "manifests"},
            }],
        });
        if !annotations.is_empty() {
            let annotations: serde_json::Map<String, serde_json::Value> = annotations
                .iter()
                .map(|(key, value)| (key.to_string(), json!(value)))
                .collect();
            manifest["annotations"] = annotations.into();
        }
        self.push_manifest(&client, repository, tag, MANIFEST, manifest)
            .await
            .map(|(digest, _)| digest)
    }

    /// Pushes `files` (path, content) as an artifact of manifests, one tar.gz layer as `oras push
    /// dir/` makes it, tagged `repository:tag`; returns the manifest's digest.
    pub async fn push_manifests(
        &self,
        repository: &str,
        tag: &str,
        files: &[(&str, &str)],
    ) -> Result<String> {
        self.push_annotated_manifests(repository, tag, files, &[])
            .await
    }

    /// [`Self::push_manifests`] with `annotations` on the manifest.
    pub async fn push_annotated_manifests(
        &self,
        repository: &str,
        tag: &str,
        files: &[(&str, &str)],
        annotations: &[(&str, &str)],
    ) -> Result<String> {
        const GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::default(),
        ));
        for (path, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, content.as_bytes())?;
        }
        let layer = builder.into_inner()?.finish()?;
        self.push_annotated_artifact(repository, tag, layer, GZIP_LAYER, annotations)
            .await
    }

    /// Pushes a single-platform image tagged `repository:tag`; returns the manifest's digest.
    pub async fn push_image(
        &self,
        repository: &str,
        tag: &str,
        image: &TestImage<'_>,
        format: ManifestFormat,
    ) -> Result<String> {
        let client = self.oci_client();
        let (digest, size) = self
            .push_image_manifest(&client, repository, image, format)
            .await?;
        let manifest = self.manifest_of(&client, repository, &digest, size).await?;
        self.push_manifest(&client, repository, tag, format.manifest(), manifest)
            .await
            .map(|(digest, _)| digest)
    }

    /// Pushes one image per entry of `images` and an index (or manifest list) of them tagged
    /// `repository:tag`; returns the index's digest.
    pub async fn push_index(
        &self,
        repository: &str,
        tag: &str,
        images: &[TestImage<'_>],
        format: ManifestFormat,
    ) -> Result<String> {
        let client = self.oci_client();
        let mut entries = Vec::new();
        for image in images {
            let (digest, size) = self
                .push_image_manifest(&client, repository, image, format)
                .await?;
            let mut platform = json!({"os": image.os, "architecture": image.architecture});
            if let Some(variant) = image.variant {
                platform["variant"] = json!(variant);
            }
            entries.push(json!({
                "mediaType": format.manifest(),
                "digest": digest,
                "size": size,
                "platform": platform,
            }));
        }
        let index = json!({"schemaVersion": 2, "mediaType": format.index(), "manifests": entries});
        self.push_manifest(&client, repository, tag, format.index(), index)
            .await
            .map(|(digest, _)| digest)
    }

    /// The manifest pushed under `digest`, to tag it again byte for byte.
    async fn manifest_of(
        &self,
        client: &oci_client::Client,
        repository: &str,
        digest: &str,
        size: usize,
    ) -> Result<serde_json::Value> {
        let target = self.reference(repository, digest)?;
        let accepted = [
            ManifestFormat::Oci.manifest(),
            ManifestFormat::Docker.manifest(),
        ];
        let (bytes, got) = client
            .pull_manifest_raw(&target, &self.oci_auth(), &accepted)
            .await
            .with_context(|| format!("pulling {target}"))?;
        if got != digest || bytes.len() != size {
            bail!("{target} came back as {got}");
        }
        Ok(serde_json::from_slice(&bytes)?)
    }
}

/// The registry's command line for `port`, writing its configuration first.
fn command(binary: &Path, config: &serde_json::Value, dir: &Path, port: u16) -> Result<Command> {
    let mut config = config.clone();
    config["http"]["addr"] = json!(format!("127.0.0.1:{port}"));
    let config_file = dir.join("config.yml");
    // JSON is YAML too.
    std::fs::write(&config_file, config.to_string())?;
    let mut cmd = Command::new(binary);
    // No REGISTRY_* variables of the caller may change the configuration, and distribution's
    // tracing stays off.
    cmd.env_clear()
        .env("OTEL_TRACES_EXPORTER", "none")
        .arg("serve")
        .arg(&config_file);
    Ok(cmd)
}

impl Drop for Registry {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
