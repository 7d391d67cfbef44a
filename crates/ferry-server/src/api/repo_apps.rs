//! `GET /api/v1/repositories/{url}/apps` (Argo CD's `ListApps`, the path choices when an app is
//! created): the directories of a repository at a revision that hold a Helm chart or a
//! kustomization, found as Argo CD's repo server finds them, in a checkout of the request's own.

use std::collections::BTreeMap;
use std::path::Path as FsPath;

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use ferry_git::{Checkout, CheckoutOptions, RepoCache};
use serde::Deserialize;
use serde_json::{Value, json};
use tempfile::TempDir;

use super::authn::Caller;
use super::authz::{authorize, visible};
use super::error::{ApiError, Code};
use super::repo_access::saved_credentials;
use super::repositories::repo_object;
use super::state::{AppState, Snapshot};
use crate::rbac::resources::{APPLICATIONS, CREATE, GET, REPOSITORIES, UPDATE};

/// The most bytes a checkout for discovery may hold.
const MAX_CHECKOUT_BYTES: u64 = 512 * 1024 * 1024;

/// Argo CD's `RepoAppsQuery`.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct AppsQuery {
    revision: String,
    app_name: String,
    app_project: String,
}

/// As Argo CD: the caller may get the repository and create or update the app the answer is
/// for (discovery clones and reads the repository for them), and its project must permit the
/// repository.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(url): Path<String>,
    Query(query): Query<AppsQuery>,
) -> Result<Json<Value>, ApiError> {
    let settings = state.settings();
    let object = repo_object(&state, &url, &query.app_project).await?;
    authorize(&settings, &caller, REPOSITORIES, GET, &object)?;
    let app = format!("{}/{}", query.app_project, query.app_name);
    if !visible(&settings, &caller, APPLICATIONS, CREATE, &app)?
        && !visible(&settings, &caller, APPLICATIONS, UPDATE, &app)?
    {
        return Err(ApiError::permission_denied());
    }
    require_permitted(&settings, &query.app_project, &url)?;
    let checkout = checkout(&state, &url, &query.revision, &query.app_project).await?;
    let root = checkout.checkout.path().to_path_buf();
    let apps = tokio::task::spawn_blocking(move || discover(&root))
        .await
        .map_err(|err| ApiError::internal("discovering apps", &err))?
        .map_err(|err| ApiError::internal("discovering apps", &err))?;
    let items: Vec<Value> = apps
        .into_iter()
        .map(|(path, kind)| json!({"type": kind, "path": path}))
        .collect();
    Ok(Json(json!({"items": items})))
}

/// Argo CD's `isRepoPermittedInProject`: the project exists and its `sourceRepos` permit `url`.
pub(super) fn require_permitted(
    settings: &Snapshot,
    project: &str,
    url: &str,
) -> Result<(), ApiError> {
    let policy = settings
        .project(project)
        .ok_or_else(|| ApiError::not_found(format!("appproject {project:?} not found")))?
        .policy()
        .map_err(|err| ApiError::failed_precondition(err.to_string()))?;
    if policy.is_source_permitted(url) {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::PermissionDenied,
            format!("repository '{url}' not permitted in project '{project}'"),
        ))
    }
}

/// A checkout made for one request, in a Git cache of its own.
pub(super) struct RequestCheckout {
    pub checkout: Checkout,
    pub cache: RepoCache,
    // Last: the cache's directory outlives the checkout in it.
    _dir: TempDir,
}

/// `url` at `revision` (`HEAD` when empty) checked out with the saved credentials `project` may
/// use.
pub(super) async fn checkout(
    state: &AppState,
    url: &str,
    revision: &str,
    project: &str,
) -> Result<RequestCheckout, ApiError> {
    let revision = if revision.is_empty() {
        "HEAD"
    } else {
        revision
    };
    let dir = tempfile::Builder::new()
        .prefix("ferry-server-repo-apps-")
        .tempdir()
        .map_err(|err| ApiError::internal("making a Git cache", &err))?;
    let cache = RepoCache::new(dir.path(), saved_credentials(state).await?).for_project(project);
    let failed = |err: ferry_git::GitError| {
        ApiError::failed_precondition(format!("cannot read {url} at {revision}: {err}"))
    };
    let resolved = cache.resolve(url, revision).await.map_err(failed)?;
    let options = CheckoutOptions {
        submodules: false,
        max_bytes: Some(MAX_CHECKOUT_BYTES),
    };
    let checkout = cache
        .checkout(url, &resolved.sha, &options)
        .await
        .map_err(failed)?;
    Ok(RequestCheckout {
        checkout,
        cache,
        _dir: dir,
    })
}

/// Each directory under `root` with a `Chart.yaml` (Helm) or a kustomization (Kustomize, which
/// wins when both are there, as in Argo CD), by its path relative to `root` (`.` for the root).
/// Symbolic links are not followed.
fn discover(root: &FsPath) -> std::io::Result<BTreeMap<String, &'static str>> {
    let mut apps = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                if entry.file_name() != ".git" {
                    pending.push(entry.path());
                }
            } else if kind.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        let relative = dir
            .strip_prefix(root)
            .ok()
            .map(|path| path.to_string_lossy().into_owned())
            .filter(|path| !path.is_empty())
            .unwrap_or_else(|| ".".to_owned());
        let kustomize = names
            .iter()
            .any(|name| ferry_render::KUSTOMIZATION_NAMES.contains(&name.as_str()));
        if kustomize {
            apps.insert(relative, "Kustomize");
        } else if names.iter().any(|name| name.ends_with("Chart.yaml")) {
            apps.insert(relative, "Helm");
        }
    }
    Ok(apps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_and_kustomizations_are_apps() {
        let root = tempfile::tempdir().unwrap();
        let write = |path: &str| {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        };
        write("charts/web/Chart.yaml");
        write("charts/web/templates/deployment.yaml");
        write("overlays/prod/kustomization.yaml");
        write("both/Chart.yaml");
        write("both/kustomization.yml");
        write("plain/configmap.yaml");
        write(".git/kustomization.yaml");
        let apps = discover(root.path()).unwrap();
        assert_eq!(
            apps,
            BTreeMap::from([
                ("both".to_owned(), "Kustomize"),
                ("charts/web".to_owned(), "Helm"),
                ("overlays/prod".to_owned(), "Kustomize"),
            ])
        );
    }
}
