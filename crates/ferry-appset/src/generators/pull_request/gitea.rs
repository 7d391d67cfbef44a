//! Gitea's open pull requests (`GET /repos/{owner}/{repo}/pulls?state=open`). Tested against a
//! real Gitea (tests/scm_generators.rs).

use ferry_types::application_set::PullRequestGitea;
use serde::Deserialize;

use super::{ListError, PullRequest, has_labels};
use crate::generators::GeneratorError;
use crate::generators::scm::{RestApi, ScmSettings, segment};
use crate::generators::scm_provider::gitea::{PAGE, rest_api};

pub(crate) struct Gitea {
    api: RestApi,
    owner: String,
    repo: String,
    labels: Vec<String>,
}

#[derive(Deserialize)]
struct Pull {
    number: i64,
    #[serde(default)]
    title: String,
    head: Ref,
    base: Ref,
    #[serde(default)]
    labels: Option<Vec<Label>>,
    user: Option<User>,
}

#[derive(Deserialize)]
struct Ref {
    #[serde(rename = "ref", default)]
    name: String,
    #[serde(default)]
    sha: String,
}

#[derive(Deserialize)]
struct Label {
    name: String,
}

#[derive(Deserialize)]
struct User {
    #[serde(default)]
    login: String,
}

impl Gitea {
    pub fn new(
        config: &PullRequestGitea,
        token: &str,
        settings: &ScmSettings,
    ) -> Result<Self, GeneratorError> {
        Ok(Self {
            api: rest_api(&config.api, token, config.insecure, settings)?,
            owner: config.owner.clone(),
            repo: config.repo.clone(),
            labels: config.labels.clone(),
        })
    }

    pub async fn list(&self) -> Result<Vec<PullRequest>, ListError> {
        let path = format!(
            "repos/{}/{}/pulls",
            segment(&self.owner),
            segment(&self.repo)
        );
        let url = self
            .api
            .url(&path, &[("state", "open"), ("limit", PAGE)])
            .map_err(|e| ListError::from_call(e, "listing pull requests"))?;
        let context = format!("listing pull requests of {}/{}", self.owner, self.repo);
        let pulls: Vec<Pull> = self
            .api
            .get_all(url)
            .await
            .map_err(|e| ListError::from_call(e, &context))?;
        Ok(pulls
            .into_iter()
            .map(|p| PullRequest {
                number: p.number,
                title: p.title,
                branch: p.head.name,
                target_branch: p.base.name,
                head_sha: p.head.sha,
                labels: p
                    .labels
                    .unwrap_or_default()
                    .into_iter()
                    .map(|l| l.name)
                    .collect(),
                author: p.user.map(|u| u.login).unwrap_or_default(),
            })
            .filter(|p| has_labels(&self.labels, &p.labels))
            .collect())
    }
}
