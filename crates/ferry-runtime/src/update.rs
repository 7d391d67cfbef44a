//! The read-change-write of an object every writer uses: a JSON merge patch of what changed,
//! guarded by the resourceVersion it was computed from.

use ferry_types::merge_patch;
use kube::Api;
use kube::api::{Patch, PatchParams};

/// Rounds of read-change-write before [`update`] gives up on an object that keeps changing.
const ATTEMPTS: usize = 5;

/// Why [`update`] failed.
#[derive(Debug)]
pub enum UpdateError<E> {
    NotFound,
    /// `change` refused the object as it was read.
    Change(E),
    Kube(kube::Error),
    /// Someone else wrote the object between each read and write.
    KeptChanging {
        attempts: usize,
    },
}

/// Changes object `name`: `change` edits a copy of the current object, and the difference is
/// written as a JSON merge patch guarded by the resourceVersion it was computed from, so nothing
/// written concurrently (by the controller or another user) is lost. On a conflict the object is
/// read again and `change` runs again, so its checks see the latest state. Returns the object as
/// written and whether anything changed.
pub async fn update<K, E>(
    api: &Api<K>,
    name: &str,
    mut change: impl FnMut(&mut K) -> Result<(), E>,
) -> Result<(K, bool), UpdateError<E>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let to_json = |object: &K| serde_json::to_value(object).map_err(kube::Error::SerdeError);
    for _ in 0..ATTEMPTS {
        let current = api
            .get_opt(name)
            .await
            .map_err(UpdateError::Kube)?
            .ok_or(UpdateError::NotFound)?;
        let mut next = current.clone();
        change(&mut next).map_err(UpdateError::Change)?;
        let (old, new) = (
            to_json(&current).map_err(UpdateError::Kube)?,
            to_json(&next).map_err(UpdateError::Kube)?,
        );
        let Some(mut patch) = merge_patch(&old, &new) else {
            return Ok((current, false));
        };
        patch["metadata"]["resourceVersion"] = current.meta().resource_version.clone().into();
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(written) => return Ok((written, true)),
            Err(kube::Error::Api(status)) if status.is_conflict() => continue,
            Err(err) => return Err(UpdateError::Kube(err)),
        }
    }
    Err(UpdateError::KeptChanging { attempts: ATTEMPTS })
}
