//! GitHub's REST API (api.github.com, or GitHub Enterprise's `<api>/api/v3`): an organization's
//! repositories (topics as labels), their branches, and whether a path exists at a branch.
//!
//! No GitHub server can run here, so only the request URLs and the parsing of GitHub-shaped
//! answers (from GitHub's documented examples) are unit-tested; the generator logic above the
//! client is the one tested against a real Gitea.

use ferry_types::application_set::ScmProviderGithub;
use serde::Deserialize;
use serde_json::json;

use super::{Repository, clone_url};
use crate::generators::GeneratorError;
use crate::generators::scm::{RestApi, ScmSettings, path_segments, segment};

pub(crate) struct Github {
    api: RestApi,
    organization: String,
    all_branches: bool,
    exclude_archived: bool,
}

#[derive(Debug, Deserialize)]
struct Repo {
    id: i64,
    name: String,
    owner: Owner,
    #[serde(default)]
    default_branch: String,
    #[serde(default)]
    ssh_url: String,
    #[serde(default)]
    clone_url: String,
    #[serde(default)]
    archived: bool,
    #[serde(default)]
    topics: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Owner {
    login: String,
}

#[derive(Debug, Deserialize)]
struct Branch {
    name: String,
    commit: Commit,
}

#[derive(Debug, Deserialize)]
struct Commit {
    sha: String,
}

/// The API root as go-github's `WithEnterpriseURLs` makes it: api.github.com without `api`,
/// else `<api>/api/v3/` unless the URL already ends so or its host is an `api.` host.
pub(crate) fn base_url(api: &str) -> String {
    if api.is_empty() {
        return "https://api.github.com/".into();
    }
    let mut base = api.to_string();
    if !base.ends_with('/') {
        base.push('/');
    }
    let host = reqwest::Url::parse(&base)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    if !base.ends_with("/api/v3/") && !host.starts_with("api.") && !host.contains(".api.") {
        base.push_str("api/v3/");
    }
    base
}

/// GitHub's API with `Authorization: Bearer …` and its versioned media type.
pub(crate) fn rest_api(
    api: &str,
    token: &str,
    settings: &ScmSettings,
) -> Result<RestApi, GeneratorError> {
    let auth = (!token.is_empty()).then(|| ("authorization", format!("Bearer {token}")));
    Ok(
        RestApi::new(settings.http_client(false)?, &base_url(api), auth)?
            .with_header("accept", "application/vnd.github+json")
            .with_header("x-github-api-version", "2022-11-28"),
    )
}

impl Github {
    pub fn new(
        config: &ScmProviderGithub,
        token: &str,
        settings: &ScmSettings,
    ) -> Result<Self, GeneratorError> {
        Ok(Self {
            api: rest_api(&config.api, token, settings)?,
            organization: config.organization.clone(),
            all_branches: config.all_branches,
            exclude_archived: config.exclude_archived_repos,
        })
    }

    pub async fn list_repos(&self, protocol: &str) -> Result<Vec<Repository>, GeneratorError> {
        let path = format!("orgs/{}/repos", segment(&self.organization));
        let repos: Vec<Repo> = self
            .api
            .get_all(self.api.url(&path, &[("per_page", "100")])?)
            .await
            .map_err(|e| {
                GeneratorError::new(format!(
                    "error listing repositories for {}: {}",
                    self.organization, e.message
                ))
            })?;
        repos
            .into_iter()
            .filter(|r| !(self.exclude_archived && r.archived))
            .map(|r| to_repository(r, protocol))
            .collect()
    }

    pub async fn branches(&self, repo: &Repository) -> Result<Vec<Repository>, GeneratorError> {
        let base = format!(
            "repos/{}/{}/branches",
            segment(&repo.organization),
            segment(&repo.repository)
        );
        let listed = if self.all_branches {
            self.api
                .get_all::<Branch>(self.api.url(&base, &[("per_page", "100")])?)
                .await
        } else {
            let url = self
                .api
                .url(&format!("{base}/{}", segment(&repo.branch)), &[])?;
            match self.api.get::<Branch>(url).await {
                Ok(branch) => Ok(vec![branch]),
                // No default branch: an empty repository.
                Err(err) if err.not_found() => Ok(Vec::new()),
                Err(err) => Err(err),
            }
        };
        let branches = listed.map_err(|e| {
            GeneratorError::new(format!(
                "error listing branches for {}/{}: {}",
                repo.organization, repo.repository, e.message
            ))
        })?;
        Ok(branches
            .into_iter()
            .map(|b| Repository {
                branch: b.name,
                sha: b.commit.sha,
                ..repo.clone()
            })
            .collect())
    }

    pub async fn has_path(&self, repo: &Repository, path: &str) -> Result<bool, GeneratorError> {
        let url = self.api.url(
            &format!(
                "repos/{}/{}/contents/{}",
                segment(&repo.organization),
                segment(&repo.repository),
                path_segments(path)
            ),
            &[("ref", &repo.branch)],
        )?;
        match self.api.get::<serde_json::Value>(url).await {
            Ok(_) => Ok(true),
            Err(err) if err.not_found() => Ok(false),
            Err(err) => Err(err.into()),
        }
    }
}

fn to_repository(repo: Repo, protocol: &str) -> Result<Repository, GeneratorError> {
    Ok(Repository {
        url: clone_url(protocol, &repo.ssh_url, &repo.clone_url, "GitHub")?,
        organization: repo.owner.login,
        repository: repo.name,
        branch: repo.default_branch,
        sha: String::new(),
        labels: repo.topics,
        repository_id: json!(repo.id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enterprise_urls_get_api_v3() {
        assert_eq!(base_url(""), "https://api.github.com/");
        assert_eq!(
            base_url("https://ghe.example.com"),
            "https://ghe.example.com/api/v3/"
        );
        assert_eq!(
            base_url("https://ghe.example.com/api/v3"),
            "https://ghe.example.com/api/v3/"
        );
        assert_eq!(
            base_url("https://api.ghe.example.com/"),
            "https://api.ghe.example.com/"
        );
    }

    /// An abridged entry of GitHub's documented `GET /orgs/{org}/repos` answer.
    #[test]
    fn repositories_are_read_from_githubs_answer() {
        let answer = r#"[{"id": 1296269, "name": "Hello-World", "full_name": "octocat/Hello-World",
            "owner": {"login": "octocat", "id": 1}, "private": false,
            "clone_url": "https://github.com/octocat/Hello-World.git",
            "ssh_url": "git@github.com:octocat/Hello-World.git",
            "default_branch": "master", "archived": false,
            "topics": ["octocat", "atom"]}]"#;
        let repos: Vec<Repo> = serde_json::from_str(answer).unwrap();
        let repo = to_repository(repos.into_iter().next().unwrap(), "https").unwrap();
        assert_eq!(
            repo,
            Repository {
                organization: "octocat".into(),
                repository: "Hello-World".into(),
                url: "https://github.com/octocat/Hello-World.git".into(),
                branch: "master".into(),
                sha: String::new(),
                labels: vec!["octocat".into(), "atom".into()],
                repository_id: json!(1296269),
            }
        );
        let branch: Branch = serde_json::from_str(
            r#"{"name": "master", "commit": {"sha": "c5b97d5ae6c19d5c5df71a34c7fbeeda2479ccbc",
                "url": "https://api.github.com/repos/octocat/Hello-World/commits/c5b97d5"},
                "protected": true}"#,
        )
        .unwrap();
        assert_eq!(
            branch.commit.sha,
            "c5b97d5ae6c19d5c5df71a34c7fbeeda2479ccbc"
        );
    }
}
