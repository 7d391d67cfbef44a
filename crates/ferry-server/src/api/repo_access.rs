//! `POST /api/v1/repositories/{url}/validate` (Argo CD's `ValidateAccess`, which `argocd repo
//! add` asks before it saves a repository): the repository's refs are listed with the
//! credentials given — on top of the saved ones, for templates they may inherit — and the hosts
//! argocd-cm's siblings trust, in a Git cache of the request's own. Nothing is written.
//! `POST /api/v1/write-repositories/{url}/validate` (`ValidateWriteAccess`) does the same with
//! the credentials given alone, as Argo CD (a read: nothing is pushed).
//! `GET /api/v1/repositories/{url}/refs` (`ListRefs`, the web UI's revision choices) lists them
//! with the saved credentials, `.../oci-tags` (`ListOCITags`) an OCI repository's tags.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use ferry_git::{Credentials, RepoCache, TlsCerts};
use ferry_types::secrets::{RepoSecret, RepoSecretKind};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde_json::{Value, json};

use super::argo_secrets::rbac_object;
use super::authn::Caller;
use super::authz::authorize;
use super::error::ApiError;
use super::repositories::resource;
use super::state::AppState;
use crate::rbac::resources::{CREATE, GET, REPOSITORIES};

const KNOWN_HOSTS_CM: &str = "argocd-ssh-known-hosts-cm";
const TLS_CERTS_CM: &str = "argocd-tls-certs-cm";

/// `POST /api/v1/repositories/{url}/validate`: whether the repository answers with the
/// credentials given, the body's or (as the gRPC gateway sends all but `repo`) the query's.
pub async fn validate(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(url): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    validate_access(&state, &caller, url, query, body, false).await
}

/// `POST /api/v1/write-repositories/{url}/validate`: the same for a write repository, checked
/// as `write-repositories`, with the credentials given only.
pub async fn validate_write(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(url): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    validate_access(&state, &caller, url, query, body, true).await
}

async fn validate_access(
    state: &AppState,
    caller: &Caller,
    url: String,
    query: HashMap<String, String>,
    mut body: Value,
    write: bool,
) -> Result<Json<Value>, ApiError> {
    if let Some(fields) = body.as_object_mut() {
        for (name, value) in query {
            fields.entry(name).or_insert(Value::String(value));
        }
        fields.insert("repo".into(), Value::String(url.clone()));
    }
    let repo = RepoSecret {
        write,
        ..RepoSecret::from_api(RepoSecretKind::Repository, &body)
            .map_err(ApiError::invalid_argument)?
    };
    // As Argo CD: testing a repository needs the right to create it.
    authorize(
        &state.settings(),
        caller,
        resource(write),
        CREATE,
        &rbac_object(&repo.project, &repo.url),
    )?;
    test_access(state, &repo).await?;
    Ok(Json(json!({})))
}

/// Lists the refs of git repository `repo` with its credentials: a read entry's on top of the
/// saved ones (for templates it may inherit), a write entry's alone, as Argo CD tests them.
pub(super) async fn test_access(state: &AppState, repo: &RepoSecret) -> Result<(), ApiError> {
    if repo.repo_type != "git" {
        return Err(ApiError::invalid_argument(format!(
            "ferry tests access to git repositories only, not {}; add it with `ferry repo add`",
            repo.repo_type
        )));
    }
    let saved = if repo.write {
        trusted(state, Credentials::new()).await?
    } else {
        saved_credentials(state).await?
    };
    let credentials = ferry_render::with_repo_secret(saved, repo);
    ls_remote(credentials, repo)
        .await
        .map_err(ApiError::invalid_argument)
}

/// `GET /api/v1/repositories/{url}/refs?appProject=`: Argo CD's `Refs`, the short names of the
/// repository's branches and tags, as its server lists them for anyone who may get the
/// repository (configured or not: credential templates apply).
pub async fn refs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(url): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (project, credentials) = readable(&state, &caller, &url, &query).await?;
    let project = project.as_str();
    let cache = tempfile::Builder::new()
        .prefix("ferry-server-repo-refs-")
        .tempdir()
        .map_err(|err| ApiError::internal("making a Git cache", &err))?;
    let refs = RepoCache::new(cache.path(), credentials)
        .for_project(project)
        .ls_remote(&url)
        .await
        .map_err(|err| {
            ApiError::failed_precondition(format!("cannot list the refs of {url}: {err}"))
        })?;
    let names = |prefix: &str| -> Vec<String> {
        let mut names: Vec<String> = refs
            .iter()
            .filter_map(|reference| reference.name.strip_prefix(prefix))
            // The peeled entry of an annotated tag names the same tag.
            .filter(|name| !name.ends_with("^{}"))
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    };
    Ok(Json(json!({
        "branches": names("refs/heads/"),
        "tags": names("refs/tags/"),
    })))
}

/// `GET /api/v1/repositories/{url}/oci-tags?appProject=`: Argo CD's `ListOCITags`, the tags
/// of an OCI repository (`oci://registry/repository`), listed with the saved credentials and
/// the registry's trusted certificates, for anyone who may get the repository.
pub async fn oci_tags(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(url): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (project, credentials) = readable(&state, &caller, &url, &query).await?;
    let project = project.as_str();
    let credential = credentials.lookup(&url, Some(project)).unwrap_or_default();
    let tags = ferry_render::oci_tags(&url, &credential, credentials.tls_ca(&url))
        .await
        .map_err(|err| ApiError::failed_precondition(err.to_string()))?;
    Ok(Json(json!({"tags": tags})))
}

/// Argo CD's `connectionState` of saved repositories (`GET /api/v1/repositories?forceRefresh=
/// true`): each git repository's refs listed with the saved credentials (write repositories'
/// with the saved write ones), all at once; other types are not checked (`Unknown`).
pub async fn connection_states(
    state: &AppState,
    repos: &[&RepoSecret],
    write: bool,
) -> Result<Vec<Value>, ApiError> {
    let credentials = if write {
        let saved = super::repositories::entries_of(state, true)
            .await?
            .iter()
            .fold(Credentials::new(), |credentials, (_, entry)| {
                ferry_render::with_repo_secret(credentials, entry)
            });
        trusted(state, saved).await?
    } else {
        saved_credentials(state).await?
    };
    let attempted_at = jiff::Timestamp::now().to_string();
    let checks = repos.iter().map(|repo| {
        let credentials = credentials.clone();
        let attempted_at = attempted_at.clone();
        async move {
            let (status, message) = if repo.repo_type != "git" {
                (
                    "Unknown",
                    format!("ferry checks git repositories only, not {}", repo.repo_type),
                )
            } else {
                match ls_remote(credentials, repo).await {
                    Ok(()) => ("Successful", String::new()),
                    Err(message) => ("Failed", message),
                }
            };
            json!({"status": status, "message": message, "attemptedAt": attempted_at})
        }
    });
    Ok(futures::future::join_all(checks).await)
}

/// What a read of repository `url` on the caller's behalf starts with: the query's
/// `appProject`, checked that the caller may get the repository in it, and the saved
/// credentials.
pub(super) async fn readable(
    state: &AppState,
    caller: &Caller,
    url: &str,
    query: &HashMap<String, String>,
) -> Result<(String, Credentials), ApiError> {
    let project = query.get("appProject").cloned().unwrap_or_default();
    let object = super::repositories::repo_object(state, url, &project).await?;
    authorize(&state.settings(), caller, REPOSITORIES, GET, &object)?;
    Ok((project, saved_credentials(state).await?))
}

/// The saved repository Secrets (to read with) with the SSH known hosts and TLS certificates
/// argocd-cm's siblings trust.
pub(super) async fn saved_credentials(state: &AppState) -> Result<Credentials, ApiError> {
    let (saved, _) = ferry_appset::controller::current_secrets(state.client(), state.namespace())
        .await
        .map_err(|err| ApiError::kube("listing repository Secrets", &err))?;
    trusted(state, saved).await
}

/// `saved` with the SSH known hosts and TLS certificates argocd-cm's siblings trust.
async fn trusted(state: &AppState, saved: Credentials) -> Result<Credentials, ApiError> {
    let known_hosts = config_map_data(state, KNOWN_HOSTS_CM)
        .await?
        .remove("ssh_known_hosts");
    let credentials = match known_hosts {
        Some(known_hosts) => saved
            .with_known_hosts(&known_hosts)
            .map_err(|err| ApiError::failed_precondition(format!("{KNOWN_HOSTS_CM}: {err}")))?,
        None => saved,
    };
    let (certs, _) = TlsCerts::parse(&config_map_data(state, TLS_CERTS_CM).await?);
    Ok(credentials.with_tls_certs(certs))
}

/// Lists `repo`'s refs in a Git cache of the request's own: nothing is written.
async fn ls_remote(credentials: Credentials, repo: &RepoSecret) -> Result<(), String> {
    let cache = tempfile::Builder::new()
        .prefix("ferry-server-repo-access-")
        .tempdir()
        .map_err(|err| format!("making a Git cache: {err}"))?;
    RepoCache::new(cache.path(), credentials)
        .for_project(&repo.project)
        .ls_remote(&repo.url)
        .await
        .map(|_| ())
        .map_err(|err| format!("cannot connect to repository {}: {err}", repo.url))
}

/// A ConfigMap's data in the control namespace; nothing when it is missing.
async fn config_map_data(
    state: &AppState,
    name: &str,
) -> Result<std::collections::BTreeMap<String, String>, ApiError> {
    let config_maps: Api<ConfigMap> = Api::namespaced(state.client(), state.namespace());
    match config_maps.get_opt(name).await {
        Ok(config_map) => Ok(config_map.and_then(|cm| cm.data).unwrap_or_default()),
        Err(err) => Err(ApiError::kube(&format!("reading ConfigMap {name}"), &err)),
    }
}
