//! What the repository, credential template and cluster endpoints share: their entries are Argo
//! CD's Secrets in the control namespace (read and written with `ferry_types::secrets`), their
//! RBAC objects name the entry's project, and every change is audited on the Secret it wrote or
//! removed.

use ferry_runtime::secret_store::{self as store, SaveError, Saved};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::DeleteParams;

use super::authn::Caller;
use super::error::ApiError;
use super::state::AppState;

/// Argo CD's RBAC object of a repository or cluster: `<project>/<url or server>`, or the bare
/// URL for one every project may use.
pub fn rbac_object(project: &str, id: &str) -> String {
    if project.is_empty() {
        id.to_string()
    } else {
        format!("{project}/{id}")
    }
}

fn secrets(state: &AppState) -> Api<Secret> {
    Api::namespaced(state.client(), state.namespace())
}

/// The entries of the Secrets of these types, each with its Secret. A Secret `parse` refuses is
/// logged (its name and why, never a value) and skipped, as Argo CD does, so one bad Secret does
/// not hide the others.
pub async fn entries<T>(
    state: &AppState,
    types: &[&str],
    parse: impl Fn(&Secret) -> Result<T, String>,
) -> Result<Vec<(Secret, T)>, ApiError> {
    let listed = store::list_typed(&secrets(state), types)
        .await
        .map_err(|err| ApiError::kube("listing Secrets", &err))?;
    Ok(listed
        .into_iter()
        .filter_map(|secret| match parse(&secret) {
            Ok(entry) => Some((secret, entry)),
            Err(err) => {
                tracing::warn!("ignoring {err}");
                None
            }
        })
        .collect())
}

/// Writes `secret`, which holds `wanted`, over `existing` (the entry's Secret and what it holds)
/// unless it holds `wanted` already; an existing entry with other settings is only replaced with
/// `upsert`. `what` names the entry in messages and audit Events.
pub async fn save<T: PartialEq>(
    state: &AppState,
    caller: &Caller,
    secret: Secret,
    existing: Option<(&Secret, T)>,
    wanted: &T,
    upsert: bool,
    what: &str,
) -> Result<(), ApiError> {
    let existing =
        existing.map(|(secret, entry)| (secret.metadata.name.clone().unwrap_or_default(), entry));
    let (written, reason, done) =
        match store::save(&secrets(state), secret, existing, wanted, upsert).await {
            Ok(Saved::Unchanged) => return Ok(()),
            Ok(Saved::Created(written)) => (written, "ResourceCreated", "created"),
            Ok(Saved::Updated(written)) => (written, "ResourceUpdated", "updated"),
            Err(SaveError::Differs) => {
                return Err(ApiError::already_exists(format!(
                    "existing {what} spec is different; use upsert flag to force update"
                )));
            }
            // Created meanwhile, or its generated name is taken by a Secret that is no entry.
            Err(SaveError::Kube(kube::Error::Api(status))) if status.is_already_exists() => {
                return Err(ApiError::already_exists(format!(
                    "{what} already exists: {}",
                    status.message
                )));
            }
            Err(SaveError::Kube(err)) => {
                return Err(ApiError::kube(
                    &format!("writing the Secret of {what}"),
                    &err,
                ));
            }
        };
    state
        .audit()
        .record(caller, &written, reason, &format!("{done} {what}"))
        .await;
    Ok(())
}

/// Deletes an entry's Secret and audits it.
pub async fn delete(
    state: &AppState,
    caller: &Caller,
    secret: &Secret,
    what: &str,
) -> Result<(), ApiError> {
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    match secrets(state).delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.is_not_found() => {
            return Err(ApiError::not_found(format!("{what} not found")));
        }
        Err(err) => {
            return Err(ApiError::kube(
                &format!("deleting the Secret of {what}"),
                &err,
            ));
        }
    }
    state
        .audit()
        .record(
            caller,
            secret,
            "ResourceDeleted",
            &format!("deleted {what}"),
        )
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_name_the_project_unless_every_project_may_use_the_entry() {
        assert_eq!(
            rbac_object("team-a", "https://git.example.com/apps"),
            "team-a/https://git.example.com/apps"
        );
        assert_eq!(
            rbac_object("", "https://kubernetes.default.svc"),
            "https://kubernetes.default.svc"
        );
    }
}
