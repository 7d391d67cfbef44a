//! GitHub's open pull requests (`GET /repos/{owner}/{repo}/pulls`).
//!
//! No GitHub server can run here, so only the parsing of GitHub-shaped answers (from GitHub's
//! documented example) is unit-tested; the generator logic above the client is the one tested
//! against a real Gitea.

use ferry_types::application_set::PullRequestGithub;
use serde::Deserialize;

use super::{ListError, PullRequest, has_labels};
use crate::generators::GeneratorError;
use crate::generators::scm::{RestApi, ScmSettings, segment};
use crate::generators::scm_provider::github::rest_api;

pub(crate) struct Github {
    api: RestApi,
    owner: String,
    repo: String,
    labels: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Pull {
    number: i64,
    #[serde(default)]
    title: String,
    head: Ref,
    base: Ref,
    #[serde(default)]
    labels: Vec<Label>,
    user: User,
}

#[derive(Debug, Deserialize)]
struct Ref {
    #[serde(rename = "ref")]
    name: String,
    #[serde(default)]
    sha: String,
}

#[derive(Debug, Deserialize)]
struct Label {
    name: String,
}

#[derive(Debug, Deserialize)]
struct User {
    login: String,
}

impl Github {
    pub fn new(
        config: &PullRequestGithub,
        token: &str,
        settings: &ScmSettings,
    ) -> Result<Self, GeneratorError> {
        Ok(Self {
            api: rest_api(&config.api, token, settings)?,
            owner: config.owner.clone(),
            repo: config.repo.clone(),
            labels: config.labels.clone(),
        })
    }

    pub async fn list(&self) -> Result<Vec<PullRequest>, ListError> {
        let context = format!(
            "error listing pull requests for {}/{}",
            self.owner, self.repo
        );
        let path = format!(
            "repos/{}/{}/pulls",
            segment(&self.owner),
            segment(&self.repo)
        );
        let url = self
            .api
            .url(&path, &[("per_page", "100")])
            .map_err(|e| ListError::from_call(e, &context))?;
        let pulls: Vec<Pull> = self
            .api
            .get_all(url)
            .await
            .map_err(|e| ListError::from_call(e, &context))?;
        Ok(pulls
            .into_iter()
            .map(to_pull_request)
            .filter(|p| has_labels(&self.labels, &p.labels))
            .collect())
    }
}

fn to_pull_request(pull: Pull) -> PullRequest {
    PullRequest {
        number: pull.number,
        title: pull.title,
        branch: pull.head.name,
        target_branch: pull.base.name,
        head_sha: pull.head.sha,
        labels: pull.labels.into_iter().map(|l| l.name).collect(),
        author: pull.user.login,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An abridged entry of GitHub's documented `GET /repos/{owner}/{repo}/pulls` answer.
    #[test]
    fn pull_requests_are_read_from_githubs_answer() {
        let answer = r#"[{"url": "https://api.github.com/repos/octocat/Hello-World/pulls/1347",
            "id": 1, "number": 1347, "state": "open", "title": "Amazing new feature",
            "user": {"login": "octocat", "id": 1},
            "labels": [{"id": 208045946, "name": "bug", "color": "f29513"}],
            "head": {"label": "octocat:new-topic", "ref": "new-topic",
                     "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e"},
            "base": {"label": "octocat:master", "ref": "master",
                     "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e"}}]"#;
        let pulls: Vec<Pull> = serde_json::from_str(answer).unwrap();
        let pull = to_pull_request(pulls.into_iter().next().unwrap());
        assert_eq!(
            pull,
            PullRequest {
                number: 1347,
                title: "Amazing new feature".into(),
                branch: "new-topic".into(),
                target_branch: "master".into(),
                head_sha: "6dcb09b5b57875f334f61aebed695e2e4193db5e".into(),
                labels: vec!["bug".into()],
                author: "octocat".into(),
            }
        );
    }
}
