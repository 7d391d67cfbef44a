//! `GET /api/v1/repositories/{url}/helmcharts?appProject=` (Argo CD's `GetHelmCharts`, the web
//! UI's chart choices): the charts of a Helm repository's `index.yaml` and their versions,
//! fetched with the saved credentials, trusted certificates and proxy, for anyone who may get
//! the repository.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::authn::Caller;
use super::error::{ApiError, Code};
use super::repo_access::readable;
use super::state::AppState;

/// How long fetching an index may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest index read, as Argo CD bounds it (`helm.registry.max.index.size`'s default).
const MAX_INDEX_SIZE: u64 = 1024 * 1024 * 1024;

/// The part of a Helm repository index read here.
#[derive(Deserialize, Default)]
struct Index {
    #[serde(default)]
    entries: BTreeMap<String, Vec<Entry>>,
}

#[derive(Deserialize)]
struct Entry {
    version: String,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(url): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (project, credentials) = readable(&state, &caller, &url, &query).await?;
    let credential = credentials.lookup(&url, Some(&project)).unwrap_or_default();
    let text = tokio::task::spawn_blocking({
        let url = url.clone();
        move || fetch_index(&url, &credential, &credentials)
    })
    .await
    .map_err(|err| ApiError::internal("fetching the index", &err))?
    .map_err(|err| ApiError::new(Code::Unknown, err))?;
    let items = charts(&text).map_err(|err| {
        ApiError::new(
            Code::Unknown,
            format!("error unmarshaling index of {url}: {err}"),
        )
    })?;
    Ok(Json(json!({"items": items})))
}

/// `<url>/index.yaml`, as Argo CD's helm client fetches it: basic auth with the credential's
/// username and password, the repository's TLS settings and proxy.
fn fetch_index(
    url: &str,
    credential: &ferry_git::RepoCredential,
    trust: &ferry_git::Credentials,
) -> Result<String, String> {
    let client = ferry_git::repository_client(url, credential, trust, FETCH_TIMEOUT)
        .map_err(|err| err.to_string())?;
    let index_url = format!("{}/index.yaml", url.trim().trim_end_matches('/'));
    let mut request = client.get(&index_url);
    if let (Some(username), Some(password)) = (&credential.username, &credential.password) {
        request = request.basic_auth(username, Some(password));
    }
    let failed = |err: &dyn std::fmt::Display| format!("failed to fetch {index_url}: {err}");
    let response = request.send().map_err(|err| failed(&err))?;
    if !response.status().is_success() {
        return Err(failed(&format!("status code {}", response.status())));
    }
    let mut text = String::new();
    response
        .take(MAX_INDEX_SIZE + 1)
        .read_to_string(&mut text)
        .map_err(|err| failed(&err))?;
    if text.len() as u64 > MAX_INDEX_SIZE {
        return Err(failed(&format!(
            "the index is larger than {MAX_INDEX_SIZE} bytes"
        )));
    }
    Ok(text)
}

/// Argo CD's `HelmChart`s of an index: each chart's versions in the index's order, charts by name.
fn charts(text: &str) -> Result<Vec<Value>, serde_yaml::Error> {
    let index: Index = serde_yaml::from_str(text)?;
    Ok(index
        .entries
        .into_iter()
        .map(|(name, entries)| {
            let versions: Vec<String> = entries.into_iter().map(|entry| entry.version).collect();
            json!({"name": name, "versions": versions})
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_gives_each_chart_with_its_versions() {
        let index = r"
apiVersion: v1
entries:
  web:
  - {name: web, version: 1.2.0, urls: [web-1.2.0.tgz]}
  - {name: web, version: 1.10.0, urls: [web-1.10.0.tgz]}
  api:
  - {name: api, version: 0.1.0}
generated: 2026-12-07T10:00:00Z
";
        assert_eq!(
            charts(index).unwrap(),
            vec![
                json!({"name": "api", "versions": ["0.1.0"]}),
                json!({"name": "web", "versions": ["1.2.0", "1.10.0"]}),
            ]
        );
        assert_eq!(charts("apiVersion: v1\n").unwrap(), Vec::<Value>::new());
        assert!(charts("entries: [1, 2]").is_err());
    }
}
