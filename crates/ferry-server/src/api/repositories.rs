//! `/api/v1/repositories` and `/api/v1/repocreds`: repositories and credential templates, kept
//! in Argo CD's `repository` and `repo-creds` Secrets; `/api/v1/write-repositories` and
//! `/api/v1/write-repocreds` the same for Argo CD's write entries (`repository-write` and
//! `repo-write-creds`: credentials to push with, never used to read). Credentials are
//! write-only: no answer holds a password, key or token, only whether a repository inherits a
//! template's (a write repository a write template's).
//!
//! A repository is identified by its URL and project (`appProject` in the query), a template by
//! its URL prefix; both are RBAC-checked as `repositories`, write entries as
//! `write-repositories`.

use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use ferry_types::project::normalize_repo_url;
use ferry_types::secrets::{RepoSecret, RepoSecretKind};
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};

use super::argo_secrets::{self, entries, rbac_object};
use super::authn::Caller;
use super::authz::{authorize, visible};
use super::error::ApiError;
use super::query::Query;
use super::repo_access;
use super::state::{AppState, Snapshot};
use crate::rbac::resources::{CREATE, DELETE, GET, REPOSITORIES, UPDATE, WRITE_REPOSITORIES};

pub fn routes() -> Router<AppState> {
    use RepoSecretKind::{RepoCreds, Repository};
    kind_routes(Repository, false, "/api/v1/repositories")
        .merge(kind_routes(RepoCreds, false, "/api/v1/repocreds"))
        .merge(kind_routes(Repository, true, "/api/v1/write-repositories"))
        .merge(kind_routes(RepoCreds, true, "/api/v1/write-repocreds"))
}

/// The RBAC resource of entries to read with (`repositories`) or write entries
/// (`write-repositories`).
pub(super) fn resource(write: bool) -> &'static str {
    if write {
        WRITE_REPOSITORIES
    } else {
        REPOSITORIES
    }
}

/// The same requests for each kind, read or write: list and create at `base`, the rest at
/// `base/{url}` (the URL percent-encoded into one path segment).
fn kind_routes(kind: RepoSecretKind, write: bool, base: &str) -> Router<AppState> {
    let of = Of { kind, write };
    Router::new()
        .route(
            base,
            get(
                move |State(state): State<AppState>,
                      Extension(caller): Extension<Caller>,
                      RawQuery(query): RawQuery| {
                    list(state, caller, of, Query::parse(query.as_deref()))
                },
            )
            .post(
                move |State(state): State<AppState>,
                      Extension(caller): Extension<Caller>,
                      RawQuery(query): RawQuery,
                      Json(body): Json<Value>| {
                    create(state, caller, of, Query::parse(query.as_deref()), body)
                },
            ),
        )
        .route(
            &format!("{base}/{{url}}"),
            get(
                move |State(state): State<AppState>,
                      Extension(caller): Extension<Caller>,
                      Path(url): Path<String>,
                      RawQuery(query): RawQuery| {
                    get_one(state, caller, of, url, Query::parse(query.as_deref()))
                },
            )
            .put(
                move |State(state): State<AppState>,
                      Extension(caller): Extension<Caller>,
                      Path(url): Path<String>,
                      Json(body): Json<Value>| {
                    update(state, caller, of, url, body)
                },
            )
            .delete(
                move |State(state): State<AppState>,
                      Extension(caller): Extension<Caller>,
                      Path(url): Path<String>,
                      RawQuery(query): RawQuery| {
                    delete(state, caller, of, url, Query::parse(query.as_deref()))
                },
            ),
        )
}

/// Which entries a route serves: repositories or templates, to read with or write ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Of {
    kind: RepoSecretKind,
    write: bool,
}

impl Of {
    fn resource(self) -> &'static str {
        resource(self.write)
    }

    /// `repository <url>`, `repo-write-creds <url>`..., for messages and audit Events.
    fn what(self, url: &str) -> String {
        format!("{} {url}", self.kind.label_value(self.write))
    }

    fn holds(self, repo: &RepoSecret) -> bool {
        repo.kind == self.kind && repo.write == self.write
    }
}

type Entry = (Secret, RepoSecret);

/// Every repository and template to read with, or (`write`) every write one: a repository's
/// view needs the templates.
pub(super) async fn entries_of(state: &AppState, write: bool) -> Result<Vec<Entry>, ApiError> {
    let types =
        [RepoSecretKind::Repository, RepoSecretKind::RepoCreds].map(|k| k.label_value(write));
    entries(state, &types, RepoSecret::from_secret).await
}

fn object(repo: &RepoSecret) -> String {
    rbac_object(&repo.project, &repo.url)
}

/// An entry as the API shows it. A repository also says whether it uses a template's
/// credentials, and its connection state: `Unknown` unless a list is asked to check it.
fn view(repo: &RepoSecret, entries: &[Entry]) -> Value {
    let mut view = repo.api_view();
    if repo.kind == RepoSecretKind::Repository {
        view["inheritedCreds"] = inherits_credentials(repo, entries).into();
        view["connectionState"] = json!({"status": "Unknown", "message": ""});
    }
    view
}

/// Whether a repository without credentials of its own gets a template's (Argo CD's
/// `InheritedCreds`): a template's URL is a prefix of its URL.
fn inherits_credentials(repo: &RepoSecret, entries: &[Entry]) -> bool {
    let url = normalize_repo_url(&repo.url);
    !repo.has_credentials()
        && entries.iter().any(|(_, template)| {
            template.kind == RepoSecretKind::RepoCreds
                && template.write == repo.write
                && url.starts_with(&normalize_repo_url(&template.url))
        })
}

/// The entry `of` for `url`: a template by URL alone; a repository of `project` when given,
/// else the one every project may use, else the only one with that URL.
fn find<'e>(entries: &'e [Entry], of: Of, url: &str, project: Option<&str>) -> Option<&'e Entry> {
    let mut same_url = entries
        .iter()
        .filter(|(_, repo)| of.holds(repo) && repo.url == url);
    match (of.kind, project) {
        (RepoSecretKind::RepoCreds, _) => same_url.next(),
        (_, Some(project)) => same_url.find(|(_, repo)| repo.project == project),
        (_, None) => {
            let candidates: Vec<&Entry> = same_url.collect();
            match candidates.as_slice() {
                [only] => Some(only),
                _ => candidates
                    .into_iter()
                    .find(|(_, repo)| repo.project.is_empty()),
            }
        }
    }
}

/// The RBAC object of the repository a request for `url` in `project` reads, as Argo CD looks
/// it up: the project's own entry, else one every project may use (URLs compared normalized),
/// else an unsaved repository, which no project owns.
pub(super) async fn repo_object(
    state: &AppState,
    url: &str,
    project: &str,
) -> Result<String, ApiError> {
    let entries = entries_of(state, false).await?;
    let wanted = normalize_repo_url(url);
    let owned = !project.is_empty()
        && entries.iter().any(|(_, repo)| {
            repo.kind == RepoSecretKind::Repository
                && repo.project == project
                && normalize_repo_url(&repo.url) == wanted
        });
    Ok(rbac_object(if owned { project } else { "" }, url))
}

/// The entry the caller may do `action` to. One that does not exist is a 404 to callers who may
/// do `action` to such an entry and a 403 to others, as Argo CD checks RBAC first.
fn authorized<'e>(
    settings: &Snapshot,
    caller: &Caller,
    entries: &'e [Entry],
    (of, url, project): (Of, &str, Option<&str>),
    action: &str,
) -> Result<&'e Entry, ApiError> {
    match find(entries, of, url, project) {
        Some(entry) => {
            authorize(settings, caller, of.resource(), action, &object(&entry.1))?;
            Ok(entry)
        }
        None => {
            let object = rbac_object(project.unwrap_or_default(), url);
            authorize(settings, caller, of.resource(), action, &object)?;
            Err(ApiError::not_found(format!("{} not found", of.what(url))))
        }
    }
}

/// `GET /api/v1/repositories?forceRefresh=` (`/api/v1/repocreds`, and the write ones): what the
/// caller may see; with `forceRefresh`, each repository's connection checked now.
async fn list(
    state: AppState,
    caller: Caller,
    of: Of,
    query: Query,
) -> Result<Json<Value>, ApiError> {
    let entries = entries_of(&state, of.write).await?;
    let settings = state.settings();
    let mut items = Vec::new();
    for (_, repo) in entries.iter().filter(|(_, repo)| of.holds(repo)) {
        if visible(&settings, &caller, of.resource(), GET, &object(repo))? {
            items.push(repo);
        }
    }
    items.sort_by(|a, b| (&a.url, &a.project).cmp(&(&b.url, &b.project)));
    let mut views: Vec<Value> = items.iter().map(|repo| view(repo, &entries)).collect();
    if of.kind == RepoSecretKind::Repository && query.flag("forceRefresh")? {
        let states = repo_access::connection_states(&state, &items, of.write).await?;
        for (view, connection) in views.iter_mut().zip(states) {
            view["connectionState"] = connection;
        }
    }
    Ok(Json(json!({ "metadata": {}, "items": views })))
}

/// `POST /api/v1/repositories?upsert=&credsOnly=` (`/api/v1/repocreds?upsert=`, and the write
/// ones): creates an entry, or replaces one with other settings given `upsert`. `credsOnly` makes
/// the repository a template, as in Argo CD's older API. A write repository must have
/// credentials, and answer with them, as Argo CD's.
async fn create(
    state: AppState,
    caller: Caller,
    of: Of,
    query: Query,
    body: Value,
) -> Result<Json<Value>, ApiError> {
    let upsert = query.flag("upsert")?;
    let mut repo = RepoSecret {
        write: of.write,
        ..RepoSecret::from_api(of.kind, &body).map_err(ApiError::invalid_argument)?
    };
    if of.kind == RepoSecretKind::Repository && query.flag("credsOnly")? {
        repo.kind = RepoSecretKind::RepoCreds;
    }
    let settings = state.settings();
    authorize(&settings, &caller, of.resource(), CREATE, &object(&repo))?;
    if repo.write && repo.kind == RepoSecretKind::Repository {
        if !repo.has_credentials() {
            return Err(ApiError::invalid_argument("missing credentials in request"));
        }
        repo_access::test_access(&state, &repo).await?;
    }
    let entries = entries_of(&state, of.write).await?;
    let existing = entries
        .iter()
        .find(|(_, current)| current.same_entry(&repo));
    if upsert && existing.is_some_and(|(_, current)| current != &repo) {
        authorize(&settings, &caller, of.resource(), UPDATE, &object(&repo))?;
    }
    let what = Of {
        kind: repo.kind,
        ..of
    }
    .what(&repo.url);
    argo_secrets::save(
        &state,
        &caller,
        repo.to_secret(state.namespace()),
        existing.map(|(secret, current)| (secret, current.clone())),
        &repo,
        upsert,
        &what,
    )
    .await?;
    Ok(Json(view(&repo, &entries)))
}

/// `GET /api/v1/repositories/{url}?appProject=` (`/api/v1/repocreds/{url}`, and the write
/// ones).
async fn get_one(
    state: AppState,
    caller: Caller,
    of: Of,
    url: String,
    query: Query,
) -> Result<Json<Value>, ApiError> {
    let entries = entries_of(&state, of.write).await?;
    let project = query.value("appProject").filter(|p| !p.is_empty());
    let (_, repo) = authorized(
        &state.settings(),
        &caller,
        &entries,
        (of, &url, project),
        GET,
    )?;
    Ok(Json(view(repo, &entries)))
}

/// `PUT /api/v1/repositories/{url}` (`/api/v1/repocreds/{url}`, and the write ones): replaces
/// the settings of the entry of the body's project (credentials included: those not given are
/// removed).
async fn update(
    state: AppState,
    caller: Caller,
    of: Of,
    url: String,
    mut body: Value,
) -> Result<Json<Value>, ApiError> {
    let url_field = of.kind.url_field();
    let fields = body
        .as_object_mut()
        .ok_or_else(|| ApiError::invalid_argument("expected a JSON object"))?;
    match fields.get(url_field).and_then(Value::as_str) {
        None => {
            fields.insert(url_field.into(), url.clone().into());
        }
        Some(given) if given.trim() == url => {}
        Some(_) => {
            return Err(ApiError::invalid_argument(format!(
                "{url_field} of the body is not the one of the path"
            )));
        }
    }
    let repo = RepoSecret {
        write: of.write,
        ..RepoSecret::from_api(of.kind, &body).map_err(ApiError::invalid_argument)?
    };
    let entries = entries_of(&state, of.write).await?;
    let (secret, current) = authorized(
        &state.settings(),
        &caller,
        &entries,
        (of, &repo.url, Some(&repo.project)),
        UPDATE,
    )?;
    argo_secrets::save(
        &state,
        &caller,
        repo.to_secret(state.namespace()),
        Some((secret, current.clone())),
        &repo,
        true,
        &of.what(&repo.url),
    )
    .await?;
    Ok(Json(view(&repo, &entries)))
}

/// `DELETE /api/v1/repositories/{url}?appProject=` (`/api/v1/repocreds/{url}`, and the write
/// ones).
async fn delete(
    state: AppState,
    caller: Caller,
    of: Of,
    url: String,
    query: Query,
) -> Result<Json<Value>, ApiError> {
    let entries = entries_of(&state, of.write).await?;
    let project = query.value("appProject").filter(|p| !p.is_empty());
    let (secret, _) = authorized(
        &state.settings(),
        &caller,
        &entries,
        (of, &url, project),
        DELETE,
    )?;
    argo_secrets::delete(&state, &caller, secret, &of.what(&url)).await?;
    Ok(Json(json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: RepoSecretKind, url: &str, project: &str) -> Entry {
        let repo = RepoSecret {
            project: project.into(),
            ..RepoSecret::new(kind, url)
        };
        (repo.to_secret("argocd"), repo)
    }

    #[test]
    fn entries_are_found_by_url_and_project() {
        let apps = "https://git.example.com/apps";
        let entries = [
            entry(RepoSecretKind::Repository, apps, ""),
            entry(RepoSecretKind::Repository, apps, "team-a"),
            entry(
                RepoSecretKind::Repository,
                "https://git.example.com/b",
                "team-b",
            ),
            entry(RepoSecretKind::RepoCreds, "https://git.example.com/", ""),
            (
                RepoSecret {
                    write: true,
                    ..RepoSecret::new(RepoSecretKind::Repository, "https://git.example.com/w")
                }
                .to_secret("argocd"),
                RepoSecret {
                    write: true,
                    ..RepoSecret::new(RepoSecretKind::Repository, "https://git.example.com/w")
                },
            ),
        ];
        let project_of = |kind, url, project| {
            find(&entries, Of { kind, write: false }, url, project)
                .map(|(_, repo)| repo.project.as_str())
        };
        // A write entry is found among the write ones only.
        let write = Of {
            kind: RepoSecretKind::Repository,
            write: true,
        };
        assert!(find(&entries, write, "https://git.example.com/w", None).is_some());
        assert!(find(&entries, write, apps, None).is_none());
        assert_eq!(
            project_of(
                RepoSecretKind::Repository,
                "https://git.example.com/w",
                None
            ),
            None
        );
        assert_eq!(project_of(RepoSecretKind::Repository, apps, None), Some(""));
        assert_eq!(
            project_of(RepoSecretKind::Repository, apps, Some("team-a")),
            Some("team-a")
        );
        assert_eq!(
            project_of(RepoSecretKind::Repository, apps, Some("team-b")),
            None
        );
        // The only entry of a URL is found without naming its project.
        assert_eq!(
            project_of(
                RepoSecretKind::Repository,
                "https://git.example.com/b",
                None
            ),
            Some("team-b")
        );
        assert_eq!(
            project_of(
                RepoSecretKind::RepoCreds,
                "https://git.example.com/",
                Some("x")
            ),
            Some("")
        );
        assert_eq!(project_of(RepoSecretKind::RepoCreds, apps, None), None);
    }

    #[test]
    fn repositories_without_credentials_inherit_a_matching_templates() {
        let templates = [entry(
            RepoSecretKind::RepoCreds,
            "https://Git.example.com/team/",
            "",
        )];
        let bare = RepoSecret::new(
            RepoSecretKind::Repository,
            "https://git.example.com/team/app.git",
        );
        let inherited = view(&bare, &templates);
        assert_eq!(inherited["inheritedCreds"], true);
        assert_eq!(inherited["connectionState"]["status"], "Unknown");
        let own = RepoSecret {
            username: Some("bot".into()),
            password: Some("s3cret".into()),
            ..bare.clone()
        };
        let shown = view(&own, &templates);
        assert_eq!(shown["inheritedCreds"], false);
        assert!(!shown.to_string().contains("s3cret"), "{shown}");
        let elsewhere = RepoSecret::new(RepoSecretKind::Repository, "https://other.example.com/x");
        assert_eq!(view(&elsewhere, &templates)["inheritedCreds"], false);
        // Templates show no connection state.
        let template = view(&templates[0].1, &templates);
        assert!(template.get("connectionState").is_none(), "{template}");
    }
}
