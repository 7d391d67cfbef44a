//! Listing and writing the repository and cluster Secrets of the control namespace the way
//! `argocd ... add` and Argo CD's API server do, for every writer (the CLI in core mode, the API
//! server).

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ListParams, PostParams};

use ferry_types::secrets::SECRET_TYPE_LABEL;

/// The Secrets labelled with one of these `argocd.argoproj.io/secret-type`s.
pub async fn list_typed(secrets: &Api<Secret>, types: &[&str]) -> kube::Result<Vec<Secret>> {
    let selector = format!("{SECRET_TYPE_LABEL} in ({})", types.join(","));
    Ok(secrets
        .list(&ListParams::default().labels(&selector))
        .await?
        .items)
}

/// What [`save`] did.
#[derive(Debug)]
pub enum Saved {
    /// A new Secret, as written.
    Created(Secret),
    /// The entry already held what was asked for; nothing was written.
    Unchanged,
    /// The existing Secret, replaced under its own name, as written.
    Updated(Secret),
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// The entry exists with other settings and replacing it was not asked for.
    #[error("the entry exists with different settings")]
    Differs,
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// Writes `secret`, which holds `wanted`: created when `existing` (the name of the entry's
/// Secret and what it holds) is absent, left alone when it holds `wanted` already, replaced
/// only with `upsert`. A replaced Secret keeps its name, which may not be the generated one (a
/// Secret written by hand), and the write is guarded by the resourceVersion read just before.
pub async fn save<T: PartialEq>(
    secrets: &Api<Secret>,
    mut secret: Secret,
    existing: Option<(String, T)>,
    wanted: &T,
    upsert: bool,
) -> Result<Saved, SaveError> {
    match existing {
        None => Ok(Saved::Created(
            secrets.create(&PostParams::default(), &secret).await?,
        )),
        Some((_, current)) if &current == wanted => Ok(Saved::Unchanged),
        Some(_) if !upsert => Err(SaveError::Differs),
        Some((name, _)) => {
            let current = secrets.get(&name).await?;
            secret.metadata.name = Some(name.clone());
            secret.metadata.resource_version = current.metadata.resource_version;
            Ok(Saved::Updated(
                secrets
                    .replace(&name, &PostParams::default(), &secret)
                    .await?,
            ))
        }
    }
}
