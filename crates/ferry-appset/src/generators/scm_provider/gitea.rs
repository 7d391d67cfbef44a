//! Gitea's REST API (`<api>/api/v1`): an organization's repositories, their labels and
//! branches, and whether a path exists at a branch. Tested against a real Gitea
//! (tests/scm_generators.rs).

use ferry_types::application_set::ScmProviderGitea;
use serde::Deserialize;
use serde_json::json;

use super::{Repository, clone_url};
use crate::generators::GeneratorError;
use crate::generators::scm::{RestApi, ScmSettings, path_segments, segment};

/// Gitea's page size limit (`[api] MAX_RESPONSE_ITEMS`) by default.
pub(crate) const PAGE: &str = "50";

pub(crate) struct Gitea {
    api: RestApi,
    owner: String,
    all_branches: bool,
    exclude_archived: bool,
}

#[derive(Deserialize)]
struct Repo {
    id: i64,
    name: String,
    #[serde(default)]
    default_branch: String,
    #[serde(default)]
    ssh_url: String,
    #[serde(default)]
    html_url: String,
    #[serde(default)]
    archived: bool,
}

#[derive(Deserialize)]
struct Label {
    name: String,
}

#[derive(Deserialize)]
pub(crate) struct Branch {
    pub name: String,
    pub commit: Commit,
}

#[derive(Deserialize)]
pub(crate) struct Commit {
    pub id: String,
}

/// `<api>/api/v1/` with Gitea's `Authorization: token …`.
pub(crate) fn rest_api(
    api: &str,
    token: &str,
    insecure: bool,
    settings: &ScmSettings,
) -> Result<RestApi, GeneratorError> {
    let base = format!("{}/api/v1/", api.trim_end_matches('/'));
    let auth = (!token.is_empty()).then(|| ("authorization", format!("token {token}")));
    RestApi::new(settings.http_client(insecure)?, &base, auth)
}

impl Gitea {
    pub fn new(
        config: &ScmProviderGitea,
        token: &str,
        settings: &ScmSettings,
    ) -> Result<Self, GeneratorError> {
        Ok(Self {
            api: rest_api(&config.api, token, config.insecure, settings)?,
            owner: config.owner.clone(),
            all_branches: config.all_branches,
            exclude_archived: config.exclude_archived_repos,
        })
    }

    pub async fn list_repos(&self, protocol: &str) -> Result<Vec<Repository>, GeneratorError> {
        let owner = segment(&self.owner);
        let url = self
            .api
            .url(&format!("orgs/{owner}/repos"), &[("limit", PAGE)])?;
        let repos: Vec<Repo> = self.api.get_all(url).await?;
        let mut out = Vec::with_capacity(repos.len());
        for repo in repos {
            let url = clone_url(protocol, &repo.ssh_url, &repo.html_url, "Gitea")?;
            if self.exclude_archived && repo.archived {
                continue;
            }
            let path = format!("repos/{owner}/{}/labels", segment(&repo.name));
            let labels: Vec<Label> = self
                .api
                .get_all(self.api.url(&path, &[("limit", PAGE)])?)
                .await?;
            out.push(Repository {
                organization: self.owner.clone(),
                repository: repo.name,
                url,
                branch: repo.default_branch,
                sha: String::new(),
                labels: labels.into_iter().map(|l| l.name).collect(),
                repository_id: json!(repo.id),
            });
        }
        Ok(out)
    }

    pub async fn branches(&self, repo: &Repository) -> Result<Vec<Repository>, GeneratorError> {
        let base = format!(
            "repos/{}/{}/branches",
            segment(&self.owner),
            segment(&repo.repository)
        );
        let branches: Vec<Branch> = if self.all_branches {
            self.api
                .get_all(self.api.url(&base, &[("limit", PAGE)])?)
                .await?
        } else {
            let url = self
                .api
                .url(&format!("{base}/{}", segment(&repo.branch)), &[])?;
            match self.api.get::<Branch>(url).await {
                Ok(branch) => vec![branch],
                Err(err) if err.not_found() => {
                    return Err(GeneratorError::new(format!(
                        "got 404 while getting default branch {:?} for repo {:?} - check your repo config: {}",
                        repo.branch, repo.repository, err.message
                    )));
                }
                Err(err) => return Err(err.into()),
            }
        };
        Ok(branches
            .into_iter()
            .map(|b| Repository {
                branch: b.name,
                sha: b.commit.id,
                ..repo.clone()
            })
            .collect())
    }

    /// A file or a directory at the branch.
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
