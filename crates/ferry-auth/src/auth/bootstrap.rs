//! The Kubernetes side of a first start: reads `argocd-cm` and `argocd-secret`, lets
//! [`initial_admin`] decide what is missing, and writes it.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

use super::error::AuthError;
use super::initial_admin::{
    INITIAL_ADMIN_PASSWORD_KEY, INITIAL_ADMIN_SECRET_NAME, InitialPassword, initial_admin,
};
use super::patch::SettingsPatch;
use super::settings::{CONFIG_MAP_NAME, SECRET_NAME};

const FIELD_MANAGER: &str = "ferry-server";
/// Rounds of read-decide-write before giving up on a Secret that keeps changing.
const ATTEMPTS: usize = 5;

/// Generates what a fresh install lacks (see [`initial_admin`]) in `namespace`, and returns the
/// `argocd-secret` keys it set: none when nothing was missing, so running it on every start is
/// harmless.
///
/// Safe with several replicas starting at once: `argocd-secret` is only written if it has not
/// changed since it was read, and only the replica whose write went through writes the plain
/// password to `argocd-initial-admin-secret`, so the two always agree. Should the process die
/// between the two writes, the password is lost; deleting `admin.password` makes the next start
/// generate a new one.
pub async fn ensure_initial_admin(
    client: kube::Client,
    namespace: &str,
) -> Result<Vec<String>, AuthError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let config_maps: Api<ConfigMap> = Api::namespaced(client, namespace);
    for _ in 0..ATTEMPTS {
        let config = config_maps
            .get_opt(CONFIG_MAP_NAME)
            .await
            .map_err(AuthError::kube(format!(
                "reading ConfigMap {CONFIG_MAP_NAME}"
            )))?
            .and_then(|config_map| config_map.data)
            .unwrap_or_default();
        let existing = secrets
            .get_opt(SECRET_NAME)
            .await
            .map_err(AuthError::kube(format!("reading Secret {SECRET_NAME}")))?;
        let data = existing.as_ref().map(secret_data).unwrap_or_default();
        let plan = initial_admin(&config, &data, Timestamp::now())?;
        if plan.settings_patch.is_empty() {
            return Ok(Vec::new());
        }
        let written = match &existing {
            None => create_settings_secret(&secrets, &plan.settings_patch).await,
            Some(secret) => update_settings_secret(&secrets, secret, &plan.settings_patch).await,
        };
        match written {
            // Another replica got there first: decide again on what it wrote.
            Err(kube::Error::Api(status)) if status.is_conflict() || status.is_already_exists() => {
                continue;
            }
            other => other.map_err(AuthError::kube(format!("writing Secret {SECRET_NAME}")))?,
        }
        if let Some(password) = &plan.password {
            write_initial_password(&secrets, password)
                .await
                .map_err(AuthError::kube(format!(
                    "writing Secret {INITIAL_ADMIN_SECRET_NAME}"
                )))?;
        }
        return Ok(plan
            .settings_patch
            .secret_keys_set()
            .map(str::to_string)
            .collect());
    }
    Err(AuthError::Contended { name: SECRET_NAME })
}

/// A Secret's values; `stringData` (only there before the API server merges it) wins.
pub fn secret_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(key, value)| (key.clone(), value.0.clone()))
        .collect();
    for (key, value) in secret.string_data.iter().flatten() {
        data.insert(key.clone(), value.clone().into_bytes());
    }
    data
}

/// `argocd-secret` as Argo CD's install manifests make it, labelled so Argo CD sees it too.
async fn create_settings_secret(
    secrets: &Api<Secret>,
    patch: &SettingsPatch,
) -> Result<(), kube::Error> {
    let mut data = BTreeMap::new();
    patch.apply_to_secret(&mut data);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(SECRET_NAME.to_string()),
            labels: Some(BTreeMap::from([
                (
                    "app.kubernetes.io/name".to_string(),
                    SECRET_NAME.to_string(),
                ),
                (
                    "app.kubernetes.io/part-of".to_string(),
                    "argocd".to_string(),
                ),
            ])),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_string()),
        data: Some(
            data.into_iter()
                .map(|(key, value)| (key, k8s_openapi::ByteString(value)))
                .collect(),
        ),
        ..Secret::default()
    };
    secrets.create(&PostParams::default(), &secret).await?;
    Ok(())
}

/// A merge patch that only applies to the version that was read (the API server refuses it
/// with a conflict otherwise).
pub async fn update_settings_secret(
    secrets: &Api<Secret>,
    read: &Secret,
    patch: &SettingsPatch,
) -> Result<(), kube::Error> {
    let mut body = patch.secret_merge_patch().unwrap_or_else(|| json!({}));
    body["metadata"] = json!({ "resourceVersion": read.metadata.resource_version });
    secrets
        .patch(SECRET_NAME, &PatchParams::default(), &Patch::Merge(&body))
        .await?;
    Ok(())
}

/// Creates `argocd-initial-admin-secret` or replaces its password (a reset), keeping anything
/// else in it.
async fn write_initial_password(
    secrets: &Api<Secret>,
    password: &InitialPassword,
) -> Result<(), kube::Error> {
    let body = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": INITIAL_ADMIN_SECRET_NAME },
        "data": { INITIAL_ADMIN_PASSWORD_KEY: STANDARD.encode(password.expose()) },
    });
    secrets
        .patch(
            INITIAL_ADMIN_SECRET_NAME,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
    Ok(())
}
