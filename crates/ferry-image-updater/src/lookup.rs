//! Asking the registry about one image: its tags, and for the strategies that need them each
//! considered tag's digest, creation time and platforms (`ferry-registry`, which caches
//! manifests by digest and keeps each registry's rate limit).

use std::sync::Arc;

use ferry_image::ImageRef;
use ferry_registry::{
    CredentialSource, Credentials, ManifestOptions, Platform, Registries, Registry, SecretReader,
};

use crate::strategy::{Candidate, Policy, Strategy};

/// Why an image's tags could not be listed, naming the registry.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Registry(#[from] ferry_registry::Error),
    #[error(
        "pull secret {reference:?} is in namespace {secret_namespace}, not the application's ({app_namespace})"
    )]
    ForeignPullSecret {
        reference: String,
        secret_namespace: String,
        app_namespace: String,
    },
    #[error("{0}")]
    Policy(String),
}

/// The registry host written in `image`, if any (`ghcr.io`, `127.0.0.1:5000`, `localhost`),
/// and the rest of the name.
pub fn split_host(image: &ImageRef) -> (Option<&str>, &str) {
    let name = image.name();
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// The registry for `image`.
pub fn registry_for(
    registries: &Registries,
    image: &ImageRef,
) -> Result<Arc<Registry>, LookupError> {
    let (host, path) = split_host(image);
    Ok(registries.for_image(host, path)?)
}

/// Credentials of the image's `pull-secret`, which must live in `app_namespace` when it is
/// a Secret (tenants read no one else's), or `None` for the registry's own.
pub async fn image_credentials(
    registry: &Registry,
    pull_secret: Option<&str>,
    app_namespace: &str,
    secrets: Option<&dyn SecretReader>,
) -> Result<Option<Credentials>, LookupError> {
    let Some(reference) = pull_secret else {
        return Ok(None);
    };
    let source: CredentialSource = reference.parse()?;
    if let CredentialSource::PullSecret { namespace, .. }
    | CredentialSource::Secret { namespace, .. } = &source
        && namespace != app_namespace
    {
        return Err(LookupError::ForeignPullSecret {
            reference: reference.to_string(),
            secret_namespace: namespace.clone(),
            app_namespace: app_namespace.to_string(),
        });
    }
    let host = registry.config().prefix.clone();
    Ok(Some(source.fetch(&[host.as_str()], secrets).await?))
}

/// The tags of the image as candidates for `policy`: names only for `semver` and
/// `alphabetical`; with digest, creation time and platform fit for the metadata strategies,
/// fetched only for tags the filters let through (`digest`: only the tracked tag).
pub async fn candidates(
    registry: &Registry,
    image: &ImageRef,
    policy: &Policy,
    creds: Option<&Credentials>,
) -> Result<Vec<Candidate>, LookupError> {
    let (_, path) = split_host(image);
    let repository = registry.repository(path);
    let tags = registry.tags(&repository, creds).await?;
    if !policy.strategy.needs_metadata() {
        return Ok(tags.iter().map(|t| Candidate::named(t)).collect());
    }
    let options = ManifestOptions {
        platforms: policy
            .platforms
            .iter()
            .map(|p| p.parse::<Platform>())
            .collect::<Result<_, _>>()?,
        metadata: policy.strategy == Strategy::NewestBuild,
    };
    let mut candidates = Vec::with_capacity(tags.len());
    for tag in tags {
        if !policy.considers(&tag) {
            candidates.push(Candidate::named(&tag));
            continue;
        }
        let candidate = match registry
            .tag_info(&repository, &tag, &options, creds)
            .await?
        {
            Some(info) => Candidate {
                digest: Some(info.digest),
                created: info.created,
                ..Candidate::named(&tag)
            },
            None => Candidate {
                platforms: Some(Vec::new()),
                ..Candidate::named(&tag)
            },
        };
        candidates.push(candidate);
    }
    Ok(candidates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_told_from_namespaces() {
        let split = |text: &str| {
            let image = ImageRef::parse(text).unwrap();
            let (host, path) = split_host(&image);
            (host.map(String::from), path.to_string())
        };
        assert_eq!(split("nginx"), (None, "nginx".into()));
        assert_eq!(split("team/app"), (None, "team/app".into()));
        assert_eq!(
            split("ghcr.io/org/app"),
            (Some("ghcr.io".into()), "org/app".into())
        );
        assert_eq!(
            split("127.0.0.1:5000/app"),
            (Some("127.0.0.1:5000".into()), "app".into())
        );
        assert_eq!(
            split("localhost/app"),
            (Some("localhost".into()), "app".into())
        );
    }
}
