//! GnuPG public keys (`argocd gpg list/get`): Argo CD's `argocd-gpg-keys-cm`, key ID →
//! ASCII-armored key, each described by the real gpg ([`ferry_git::gpg_keys`]), as Argo CD's
//! server does. The same ConfigMap the controller verifies commit signatures with.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde_json::{Value, json};

use super::authn::Caller;
use super::authz::authorize;
use super::error::ApiError;
use super::state::AppState;
use crate::rbac::resources::{GET, GPGKEYS};

/// Argo CD's ConfigMap of trusted GnuPG public keys.
const GPG_KEYS_CONFIG_MAP: &str = "argocd-gpg-keys-cm";

/// `GET /api/v1/gpgkeys`: every configured key, without its key data (as Argo CD, to keep the
/// list small).
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state.settings(), &caller, GPGKEYS, GET, "")?;
    let items: Vec<Value> = configured(&state)
        .await?
        .into_iter()
        .map(|key| {
            let mut item = shape(key);
            item["keyData"] = json!("");
            item
        })
        .collect();
    Ok(Json(json!({"metadata": {}, "items": items})))
}

/// `GET /api/v1/gpgkeys/{keyID}`: one key, with its data; the ID long (16 hex digits) or a
/// whole fingerprint.
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state.settings(), &caller, GPGKEYS, GET, "")?;
    let wanted = long_key_id(&key_id)
        .ok_or_else(|| ApiError::invalid_argument("KeyID is malformed or empty"))?;
    configured(&state)
        .await?
        .into_iter()
        .find(|key| key.key_id == wanted)
        .map(|key| Json(shape(key)))
        .ok_or_else(|| ApiError::not_found(format!("no such key: {wanted}")))
}

/// Argo CD's `GnuPGPublicKey`.
fn shape(key: ferry_git::gpg_keys::PublicKey) -> Value {
    json!({
        "keyID": key.key_id,
        "fingerprint": key.fingerprint,
        "owner": key.owner,
        "trust": key.trust,
        "subType": key.sub_type,
        "keyData": key.key_data,
    })
}

/// The long key ID (16 upper-case hex digits) a key ID or fingerprint names, as Argo CD's
/// `gpg.KeyID`.
fn long_key_id(text: &str) -> Option<String> {
    let text = text.trim();
    if !matches!(text.len(), 16 | 40) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(text[text.len() - 16..].to_uppercase())
}

/// The keys of `argocd-gpg-keys-cm` (none when it does not exist), sorted by ID; an entry that
/// is no key, or another key than its name says, is an error naming it, as in Argo CD.
async fn configured(state: &AppState) -> Result<Vec<ferry_git::gpg_keys::PublicKey>, ApiError> {
    let config_maps: Api<ConfigMap> = Api::namespaced(state.client(), state.namespace());
    let data = config_maps
        .get_opt(GPG_KEYS_CONFIG_MAP)
        .await
        .map_err(|err| ApiError::kube("reading argocd-gpg-keys-cm", &err))?
        .and_then(|config_map| config_map.data)
        .unwrap_or_default();
    let described = tokio::task::spawn_blocking(move || {
        let mut keys = Vec::new();
        for (name, armored) in data {
            let expected = long_key_id(&name).ok_or_else(|| {
                format!(
                    "found entry with key '{name}' in ConfigMap, but this is not a valid PGP key ID"
                )
            })?;
            let parsed = ferry_git::gpg_keys::describe_public_keys(&armored)
                .map_err(|err| format!("could not parse GPG key for entry '{expected}': {err}"))?;
            let key = parsed
                .into_iter()
                .next()
                .ok_or_else(|| format!("no GPG key in entry '{expected}'"))?;
            if key.key_id != expected {
                return Err(format!(
                    "key parsed for entry with key ID '{expected}' had different key ID '{}'",
                    key.key_id
                ));
            }
            keys.push(key);
        }
        keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        Ok(keys)
    })
    .await
    .map_err(|err| ApiError::internal("describing the GnuPG keys", &err))?;
    described.map_err(|message| ApiError::new(super::error::Code::Internal, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_long_ids_or_fingerprints() {
        assert_eq!(
            long_key_id("4aee18f83afdeb23").as_deref(),
            Some("4AEE18F83AFDEB23")
        );
        assert_eq!(
            long_key_id("21ADFC1E076883352675650F354152E398FEAA3D").as_deref(),
            Some("354152E398FEAA3D")
        );
        assert_eq!(long_key_id("4AEE18F8"), None);
        assert_eq!(long_key_id("zzzzzzzzzzzzzzzz"), None);
    }
}
