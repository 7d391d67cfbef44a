//! Container registry client for ferry's image updater, compatible with Argo CD Image Updater's
//! registry handling: `registries.conf`, its credential sources, and the OCI distribution v2
//! API (tags, manifests, digests, creation times).
//!
//! # Public API
//!
//! - [`RegistriesConf::parse`] / [`RegistriesConf::load`]: `registries.conf` with upstream's
//!   fields (`name`, `api_url`, `prefix`, `ping`, `credentials`, `credsexpire`, `insecure`,
//!   `ca_file`, `ca_data`, `default`, `defaultns`, `limit`, `tagsortmode`) and checks.
//!   `ca_file` / `ca_data` (a PEM bundle trusted besides the system roots, ignored with
//!   `insecure`) are upstream's names for a registry's custom CA.
//! - [`Registries::new`]`(&conf, secrets)` then [`Registries::for_image`]`(host, image)`: the
//!   [`Registry`] serving an image, chosen as upstream does (default registry for images
//!   without a host, exact prefix, longest prefix at a `/` boundary, else inferred
//!   `https://<host>`; Docker Hub built in as `registry-1.docker.io` with the `library/`
//!   namespace). `secrets` is a
//!   [`SecretReader`] (implemented for [`kube::Client`]) for `pullsecret:` and `secret:`.
//! - [`Registry::repository`]`(image)`: the repository path (`nginx` → `library/nginx`).
//! - [`Registry::tags`]`(repo, creds)`: all tags, following `Link` pages.
//! - [`Registry::digest`]`(repo, tag, creds)`: the digest a tag points at (one HEAD).
//! - [`Registry::tag_info`]`(repo, tag, &ManifestOptions, creds)`: digest, creation time and
//!   labels ([`TagInfo`]), `Ok(None)` when the tag has no image for the wanted platforms
//!   ([`ManifestOptions::platforms`], matched as upstream's `platforms` annotation:
//!   `linux/arm64` takes any variant); an index's creation time is its newest wanted image's.
//!   Manifests and configs are cached by digest, so a known tag costs one HEAD request.
//! - [`Registry::registry_credentials`]: the entry's `credentials`, re-read after
//!   `credsexpire`. Every call above takes `creds: Option<&Credentials>`: image-level
//!   credentials (read with [`CredentialSource::fetch`]) or `None` for the registry's own,
//!   else anonymous.
//! - [`Registry::requests_sent`]: HTTP requests so far (token requests included), for metrics.
//! - [`CredentialSource`]: `pullsecret:<ns>/<name>`, `secret:<ns>/<name>#<field>`, `env:<VAR>`,
//!   `ext:<absolute script path>` (10 s limit), parsed with `str::parse`.
//! - [`Platform`]: `os/arch[/variant]`; [`Platform::runtime`] is upstream's default filter.
//! - [`Error`]: names the registry (`registry <name> (<api_url>): …`) and the cause;
//!   [`Error::kind`] ([`ErrorKind`]: unreachable, unauthorized, denied, not found,
//!   rate limited, protocol, config, credentials) lets callers branch.
//!
//! Auth: anonymous, Basic, or Bearer tokens (the registry's `WWW-Authenticate: Bearer
//! realm,service` challenge, a token per repository scope from the realm, with Basic
//! credentials, cached for its `expires_in`), learnt from the first 401. Every request,
//! token requests included, goes through the registry's `limit` (requests per second,
//! default 20); a 429 is retried after its `Retry-After` (up to 3 times, 30 s at most each).
//! Credentials are never logged, and [`Credentials`]' `Debug` masks the password.
//!
//! ```no_run
//! # async fn example() -> Result<(), ferry_registry::Error> {
//! use ferry_registry::{ManifestOptions, Registries, RegistriesConf};
//! let conf = RegistriesConf::parse("registries: []")?;
//! let registries = Registries::new(&conf, None)?;
//! let registry = registries.for_image(Some("ghcr.io"), "org/app")?;
//! let repository = registry.repository("org/app");
//! for tag in registry.tags(&repository, None).await? {
//!     let options = ManifestOptions { platforms: vec!["linux/amd64".parse()?], metadata: true };
//!     if let Some(info) = registry.tag_info(&repository, &tag, &options, None).await? {
//!         println!("{tag} {} {:?}", info.digest, info.created);
//!     }
//! }
//! # Ok(()) }
//! ```

mod config;
mod credentials;
mod error;
mod platform;
mod registries;
mod registry;
mod transport;

pub use config::{DEFAULT_LIMIT, RegistriesConf, RegistryConfig, TagSortMode};
pub use credentials::{CredentialSource, Credentials, SecretReader};
pub use error::{Error, ErrorKind, Result};
pub use platform::{ManifestOptions, Platform};
pub use registries::Registries;
pub use registry::{Registry, TagInfo};

#[cfg(test)]
mod tests {
    use super::*;

    /// The updater shares the registries between tasks and spawns their calls.
    #[test]
    fn registries_and_their_calls_are_send() {
        fn send<T: Send + 'static>(_: T) {}
        let all = std::sync::Arc::new(Registries::new(&RegistriesConf::default(), None).unwrap());
        send(all.clone());
        let hub = all.default_registry().unwrap().clone();
        // Built, never polled: no request leaves.
        send(async move {
            let _ = hub.tags("library/nginx", None).await;
            let _ = hub.digest("library/nginx", "latest", None).await;
            let _ = hub
                .tag_info("library/nginx", "latest", &ManifestOptions::default(), None)
                .await;
        });
    }
}
