//! `/api/v1/certificates` (`argocd cert list/add-ssh/add-tls/rm`): the ssh known hosts of
//! `argocd-ssh-known-hosts-cm` and the TLS certificates of `argocd-tls-certs-cm`, listed,
//! added and removed as Argo CD's certificate service does, under RBAC's `certificates`; each
//! change an audit Event on the ConfigMap written. The repository code trusts what is here.

mod entries;

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use base64::Engine as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use serde::Deserialize;
use serde_json::{Value, json};

use super::authn::Caller;
use super::authz::authorize;
use super::error::ApiError;
use super::state::AppState;
use crate::rbac::resources::{CERTIFICATES, CREATE, DELETE, GET};
use entries::{KnownHost, KnownHostsFile, Selector, certificate};

const KNOWN_HOSTS_CM: &str = "argocd-ssh-known-hosts-cm";
const KNOWN_HOSTS_KEY: &str = "ssh_known_hosts";
const TLS_CERTS_CM: &str = "argocd-tls-certs-cm";

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/v1/certificates",
        get(list).post(create).delete(delete),
    )
}

/// `RepositoryCertificateQuery` as query parameters.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct CertificateQuery {
    host_name_pattern: String,
    cert_type: String,
    cert_sub_type: String,
}

impl From<CertificateQuery> for Selector {
    fn from(query: CertificateQuery) -> Self {
        Selector {
            host_name_pattern: query.host_name_pattern,
            cert_type: query.cert_type,
            cert_sub_type: query.cert_sub_type,
        }
    }
}

/// `GET /api/v1/certificates`: the matching certificates without their data; an ssh key's
/// info is its fingerprint, a TLS certificate's its subject.
async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<CertificateQuery>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state.settings(), &caller, CERTIFICATES, GET, "")?;
    let selector = Selector::from(query);
    let mut items = Vec::new();
    if selector.ssh() {
        let known = known_hosts(&read(&state, KNOWN_HOSTS_CM).await?);
        for entry in known
            .entries()
            .filter(|entry| selector.known_host_matches(entry))
        {
            items.push(certificate(
                &entry.host,
                "ssh",
                &entry.sub_type,
                None,
                &entry.fingerprint(),
            ));
        }
    }
    if selector.https() {
        let tls = data(&read(&state, TLS_CERTS_CM).await?);
        for (host, pems) in tls.iter().filter(|(host, _)| selector.host_matches(host)) {
            // An entry that is no PEM data lists nothing, as in Argo CD.
            for pem in entries::pem_certificates(pems).unwrap_or_default() {
                let (sub_type, info) =
                    entries::describe_pem(&pem).unwrap_or_else(|err| ("invalid".to_owned(), err));
                items.push(certificate(host, "https", &sub_type, None, &info));
            }
        }
    }
    Ok(Json(json!({"metadata": {}, "items": items})))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Upsert {
    upsert: bool,
}

/// One `RepositoryCertificate` of a create request.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewCertificate {
    server_name: String,
    cert_type: String,
    #[serde(default)]
    cert_sub_type: String,
    /// base64, as protobuf's JSON carries bytes.
    #[serde(default)]
    cert_data: String,
}

#[derive(Deserialize)]
pub struct CertificateList {
    #[serde(default)]
    items: Vec<Value>,
}

/// `POST /api/v1/certificates?upsert=`: adds each certificate of the list; one that exists with
/// other data is refused unless `upsert`. Any bad entry refuses the whole request before
/// anything is written. Answers the certificates added or changed.
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(upsert): Query<Upsert>,
    Json(list): Json<CertificateList>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state.settings(), &caller, CERTIFICATES, CREATE, "")?;
    let upsert = upsert.upsert;
    let known_cm = read(&state, KNOWN_HOSTS_CM).await?;
    let tls_cm = read(&state, TLS_CERTS_CM).await?;
    let mut known = known_hosts(&known_cm);
    let mut tls = data(&tls_cm);
    let (mut save_ssh, mut save_tls) = (false, false);
    let mut created = Vec::new();
    for item in list.items {
        let new: NewCertificate = serde_json::from_value(item)
            .map_err(|err| ApiError::invalid_argument(format!("certificate: {err}")))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(new.cert_data.as_bytes())
            .map_err(|err| ApiError::invalid_argument(format!("certData: {err}")))?;
        let cert_data = String::from_utf8(bytes)
            .map_err(|_| ApiError::invalid_argument("certData is not text"))?;
        let name = new.server_name.as_str();
        let checked = if new.cert_type == "ssh" {
            entries::ssh_host(name)
        } else {
            name
        };
        if !entries::valid_host_name(checked) {
            return Err(ApiError::invalid_argument(format!(
                "invalid hostname in request: {checked}"
            )));
        }
        match new.cert_type.as_str() {
            "ssh" => {
                let line = format!("{name} {} {cert_data}", new.cert_sub_type);
                let parsed: ssh_key::known_hosts::Entry = line.parse().map_err(|err| {
                    ApiError::invalid_argument(format!("ssh key of {name}: {err}"))
                })?;
                let (added, changed) = match known.entry_mut(name, &new.cert_sub_type) {
                    Some(entry) if entry.data == cert_data => (false, false),
                    Some(entry) if upsert => {
                        entry.data = cert_data.clone();
                        (false, true)
                    }
                    Some(entry) => {
                        return Err(ApiError::invalid_argument(format!(
                            "key for '{}' (subtype: '{}') already exists, and upsert was not specified",
                            entry.host, entry.sub_type
                        )));
                    }
                    None => (true, false),
                };
                if added {
                    known.push(KnownHost {
                        host: name.to_owned(),
                        sub_type: new.cert_sub_type.clone(),
                        data: cert_data.clone(),
                    });
                }
                if added || changed {
                    let fingerprint = parsed
                        .public_key()
                        .fingerprint(ssh_key::HashAlg::Sha256)
                        .to_string();
                    let info = fingerprint.trim_start_matches("SHA256:");
                    created.push(certificate(
                        name,
                        "ssh",
                        &new.cert_sub_type,
                        Some(&cert_data),
                        info,
                    ));
                    save_ssh = true;
                }
            }
            "https" => {
                let pems =
                    entries::pem_certificates(&cert_data).map_err(ApiError::invalid_argument)?;
                if pems.is_empty() {
                    return Err(ApiError::invalid_argument("no valid PEM data received"));
                }
                for pem in &pems {
                    entries::describe_pem(pem).map_err(ApiError::invalid_argument)?;
                }
                let changed = match tls.get(name) {
                    Some(existing) if *existing == cert_data => false,
                    Some(_) if !upsert => {
                        return Err(ApiError::invalid_argument(format!(
                            "TLS certificate for server '{name}' already exists, and upsert was not specified"
                        )));
                    }
                    _ => true,
                };
                if changed {
                    tls.insert(name.to_owned(), cert_data.clone());
                    created.extend(
                        pems.iter()
                            .map(|pem| certificate(name, "https", "", Some(pem), "")),
                    );
                    save_tls = true;
                }
            }
            other => {
                return Err(ApiError::invalid_argument(format!(
                    "unknown certificate type: {other}"
                )));
            }
        }
    }
    let names = described(&created);
    if save_ssh {
        let written = write_known_hosts(&state, known_cm, &known).await?;
        audit(
            &state,
            &caller,
            &written,
            "CertificatesAdded",
            "added",
            &names,
        )
        .await;
    }
    if save_tls {
        let written = write(&state, TLS_CERTS_CM, tls_cm, tls).await?;
        audit(
            &state,
            &caller,
            &written,
            "CertificatesAdded",
            "added",
            &names,
        )
        .await;
    }
    Ok(Json(json!({"metadata": {}, "items": created})))
}

/// `DELETE /api/v1/certificates`: removes every certificate the query matches (a TLS entry
/// with all of its certificates) and answers them.
async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<CertificateQuery>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state.settings(), &caller, CERTIFICATES, DELETE, "")?;
    let selector = Selector::from(query);
    let mut removed = Vec::new();
    let mut writes = Vec::new();
    if selector.ssh() {
        let known_cm = read(&state, KNOWN_HOSTS_CM).await?;
        let mut known = known_hosts(&known_cm);
        let gone = known.remove(|entry| selector.known_host_matches(entry));
        if !gone.is_empty() {
            removed.extend(gone.iter().map(|entry| {
                certificate(&entry.host, "ssh", &entry.sub_type, Some(&entry.data), "")
            }));
            writes.push(write_known_hosts(&state, known_cm, &known).await?);
        }
    }
    if selector.https() {
        let tls_cm = read(&state, TLS_CERTS_CM).await?;
        let mut tls = data(&tls_cm);
        let hosts: Vec<String> = tls
            .keys()
            .filter(|host| selector.host_matches(host))
            .cloned()
            .collect();
        for host in &hosts {
            let pems = tls.remove(host).unwrap_or_default();
            // Only readable data can be removed here, as in Argo CD; the rest by editing the
            // ConfigMap.
            let pems = entries::pem_certificates(&pems).map_err(ApiError::invalid_argument)?;
            removed.extend(
                pems.iter()
                    .map(|pem| certificate(host, "https", "", Some(pem), "")),
            );
        }
        if !hosts.is_empty() {
            writes.push(write(&state, TLS_CERTS_CM, tls_cm, tls).await?);
        }
    }
    let names = described(&removed);
    for written in &writes {
        audit(
            &state,
            &caller,
            written,
            "CertificatesRemoved",
            "removed",
            &names,
        )
        .await;
    }
    Ok(Json(json!({"metadata": {}, "items": removed})))
}

fn config_maps(state: &AppState) -> Api<ConfigMap> {
    Api::namespaced(state.client(), state.namespace())
}

async fn read(state: &AppState, name: &str) -> Result<Option<ConfigMap>, ApiError> {
    config_maps(state)
        .get_opt(name)
        .await
        .map_err(|err| ApiError::kube(&format!("reading {name}"), &err))
}

fn data(config_map: &Option<ConfigMap>) -> BTreeMap<String, String> {
    config_map
        .as_ref()
        .and_then(|config_map| config_map.data.clone())
        .unwrap_or_default()
}

fn known_hosts(config_map: &Option<ConfigMap>) -> KnownHostsFile {
    KnownHostsFile::parse(
        data(config_map)
            .get(KNOWN_HOSTS_KEY)
            .map(String::as_str)
            .unwrap_or_default(),
    )
}

async fn write_known_hosts(
    state: &AppState,
    read: Option<ConfigMap>,
    known: &KnownHostsFile,
) -> Result<ConfigMap, ApiError> {
    let mut data = data(&read);
    data.insert(KNOWN_HOSTS_KEY.to_owned(), known.render());
    write(state, KNOWN_HOSTS_CM, read, data).await
}

/// Writes `data` into the ConfigMap as it was read: a replace at its resourceVersion, so a
/// change in between is a conflict, not lost; created (labelled as Argo CD's) if it was missing.
async fn write(
    state: &AppState,
    name: &str,
    read: Option<ConfigMap>,
    data: BTreeMap<String, String>,
) -> Result<ConfigMap, ApiError> {
    let config_maps = config_maps(state);
    let written = match read {
        Some(mut config_map) => {
            config_map.data = Some(data);
            config_maps
                .replace(name, &PostParams::default(), &config_map)
                .await
        }
        None => {
            let config_map: ConfigMap = serde_json::from_value(json!({
                "metadata": {
                    "name": name,
                    "labels": {"app.kubernetes.io/part-of": "argocd"},
                },
                "data": data,
            }))
            .map_err(|err| ApiError::internal("building a ConfigMap", &err))?;
            config_maps
                .create(&PostParams::default(), &config_map)
                .await
        }
    };
    written.map_err(|err| ApiError::kube(&format!("writing {name}"), &err))
}

/// `host (type subtype)` of each certificate, for the audit trail.
fn described(certificates: &[Value]) -> String {
    let mut names: Vec<String> = Vec::new();
    for item in certificates {
        let name = format!(
            "{} ({} {})",
            item["serverName"].as_str().unwrap_or_default(),
            item["certType"].as_str().unwrap_or_default(),
            item["certSubType"].as_str().unwrap_or_default()
        );
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.join(", ")
}

async fn audit(
    state: &AppState,
    caller: &Caller,
    written: &ConfigMap,
    reason: &str,
    verb: &str,
    names: &str,
) {
    let message = format!("{verb} certificates {names}");
    state
        .audit()
        .record(caller, written, reason, &message)
        .await;
}
