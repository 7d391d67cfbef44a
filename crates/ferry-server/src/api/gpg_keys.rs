//! GnuPG public keys (`argocd gpg list/get`): Argo CD's `argocd-gpg-keys-cm`, key ID →
//! ASCII-armored key, each described by the real gpg ([`ferry_git::gpg_keys`]), as Argo CD's
//! server does. The same ConfigMap the controller verifies commit signatures with.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde::Deserialize;
use serde_json::{Value, json};

use super::authn::Caller;
use super::authz::authorize;
use super::error::ApiError;
use super::state::AppState;
use crate::rbac::resources::{CREATE, DELETE, GET, GPGKEYS};

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

/// `POST /api/v1/gpgkeys?upsert=` with Argo CD's `GnuPGPublicKey` (`keyData`: one or more
/// ASCII-armored keys): each key not configured yet is added under its ID; those that are, are
/// skipped and named, as in Argo CD. Data that holds no key changes nothing.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(key): Json<KeyData>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state.settings(), &caller, GPGKEYS, CREATE, "")?;
    let armored = key.key_data.trim().to_owned();
    if armored.is_empty() {
        return Err(ApiError::invalid_argument("submitted key data is empty"));
    }
    let incoming =
        tokio::task::spawn_blocking(move || ferry_git::gpg_keys::describe_public_keys(&armored))
            .await
            .map_err(|err| ApiError::internal("describing the GnuPG keys", &err))?
            .map_err(ApiError::invalid_argument)?;
    let config_maps = config_maps(&state);
    let existing = config_maps
        .get_opt(GPG_KEYS_CONFIG_MAP)
        .await
        .map_err(|err| ApiError::kube("reading argocd-gpg-keys-cm", &err))?;
    let configured = existing
        .as_ref()
        .and_then(|config_map| config_map.data.clone())
        .unwrap_or_default();
    let (skipped, created): (Vec<_>, Vec<_>) = incoming
        .into_iter()
        .partition(|key| configured.contains_key(&key.key_id));
    let added: HashMap<&str, &str> = created
        .iter()
        .map(|key| (key.key_id.as_str(), key.key_data.as_str()))
        .collect();
    let written = if existing.is_none() {
        let config_map: ConfigMap = serde_json::from_value(json!({
            "metadata": {
                "name": GPG_KEYS_CONFIG_MAP,
                "labels": {"app.kubernetes.io/part-of": "argocd"},
            },
            "data": added,
        }))
        .map_err(|err| ApiError::internal("building argocd-gpg-keys-cm", &err))?;
        config_maps
            .create(&PostParams::default(), &config_map)
            .await
            .map_err(|err| ApiError::kube("creating argocd-gpg-keys-cm", &err))?
    } else {
        config_maps
            .patch(
                GPG_KEYS_CONFIG_MAP,
                &PatchParams::default(),
                &Patch::Merge(json!({"data": added})),
            )
            .await
            .map_err(|err| ApiError::kube("writing argocd-gpg-keys-cm", &err))?
    };
    let ids: Vec<&str> = added.keys().copied().collect();
    if !ids.is_empty() {
        let message = format!("added GnuPG public keys {}", ids.join(", "));
        state
            .audit()
            .record(&caller, &written, "GPGKeysAdded", &message)
            .await;
    }
    let skipped: Vec<String> = skipped.into_iter().map(|key| key.key_id).collect();
    let items: Vec<Value> = created.into_iter().map(shape).collect();
    Ok(Json(json!({
        "created": {"metadata": {}, "items": items},
        "skipped": skipped,
    })))
}

/// The key data of a create request; Argo CD's client sends the rest of the message empty.
#[derive(Deserialize)]
pub struct KeyData {
    #[serde(rename = "keyData", default)]
    key_data: String,
}

/// `DELETE /api/v1/gpgkeys?keyID=`: removes one configured key.
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state.settings(), &caller, GPGKEYS, DELETE, "")?;
    let key_id = query.get("keyID").map(String::as_str).unwrap_or_default();
    let wanted = long_key_id(key_id)
        .ok_or_else(|| ApiError::invalid_argument("KeyID is malformed or empty"))?;
    let config_maps = config_maps(&state);
    let configured = config_maps
        .get_opt(GPG_KEYS_CONFIG_MAP)
        .await
        .map_err(|err| ApiError::kube("reading argocd-gpg-keys-cm", &err))?
        .and_then(|config_map| config_map.data)
        .unwrap_or_default();
    if !configured.contains_key(&wanted) {
        return Err(ApiError::not_found(format!(
            "no such key configured: {wanted}"
        )));
    }
    let written = config_maps
        .patch(
            GPG_KEYS_CONFIG_MAP,
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {wanted.as_str(): null}})),
        )
        .await
        .map_err(|err| ApiError::kube("writing argocd-gpg-keys-cm", &err))?;
    state
        .audit()
        .record(
            &caller,
            &written,
            "GPGKeyDeleted",
            &format!("deleted GnuPG public key {wanted}"),
        )
        .await;
    Ok(Json(json!({})))
}

fn config_maps(state: &AppState) -> Api<ConfigMap> {
    Api::namespaced(state.client(), state.namespace())
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
    let data = config_maps(state)
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
