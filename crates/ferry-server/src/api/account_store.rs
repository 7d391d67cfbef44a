//! Changing one local account: read `argocd-cm` and `argocd-secret` afresh (not the watched
//! snapshot, which may lag), change the account, and write its `argocd-secret` keys only if the
//! Secret has not changed since it was read, starting over when it has.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;

use super::error::ApiError;
use super::state::AppState;
use crate::auth::{
    Account, AuthSettings, CONFIG_MAP_NAME, SECRET_NAME, SettingsPatch, secret_data,
    update_settings_secret,
};

/// Rounds of read-change-write before giving up on a Secret that keeps changing.
const ATTEMPTS: usize = 5;

/// Applies `change` to account `name` and saves it; `change` gets the settings it was read from.
/// It runs on a blocking thread, as password hashing takes a while.
pub async fn update_account<T, F>(state: &AppState, name: &str, change: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: Fn(&AuthSettings, &mut Account) -> Result<T, ApiError> + Send + Sync + 'static,
{
    let change = Arc::new(change);
    let secrets: Api<Secret> = Api::namespaced(state.client(), state.namespace());
    let config_maps: Api<ConfigMap> = Api::namespaced(state.client(), state.namespace());
    for _ in 0..ATTEMPTS {
        let config = config_maps
            .get_opt(CONFIG_MAP_NAME)
            .await
            .map_err(|err| ApiError::kube("reading argocd-cm", &err))?
            .and_then(|config_map| config_map.data)
            .unwrap_or_default();
        let secret = secrets
            .get_opt(SECRET_NAME)
            .await
            .map_err(|err| ApiError::kube("reading argocd-secret", &err))?
            .ok_or_else(|| ApiError::unavailable("argocd-secret does not exist"))?;
        let settings = AuthSettings::from_data(&config, &secret_data(&secret))
            .map_err(|err| ApiError::unavailable(err.to_string()))?;
        let mut account = settings
            .accounts
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("account {name} does not exist")))?;
        let change = change.clone();
        let (result, account) = state
            .bcrypt(move || change(&settings, &mut account).map(|result| (result, account)))
            .await??;
        let patch = SettingsPatch::save_account(name, &account);
        match update_settings_secret(&secrets, &secret, &patch).await {
            Ok(()) => return Ok(result),
            Err(kube::Error::Api(status)) if status.is_conflict() => continue,
            Err(err) => return Err(ApiError::kube("writing argocd-secret", &err)),
        }
    }
    Err(ApiError::new(
        super::error::Code::Aborted,
        "argocd-secret kept changing; try again",
    ))
}
