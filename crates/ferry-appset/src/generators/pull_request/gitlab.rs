//! GitLab's merge requests (`GET /projects/:id/merge_requests`, all states unless
//! `pullRequestState` names one, as Argo CD asks), labels filtered by GitLab itself.
//!
//! No GitLab server can run here, so only the request's query and the parsing of GitLab-shaped
//! answers (from GitLab's documented example) are unit-tested; the generator logic above the
//! client is the one tested against a real Gitea.

use ferry_types::application_set::PullRequestGitlab;
use serde::Deserialize;

use super::{ListError, PullRequest};
use crate::generators::GeneratorError;
use crate::generators::scm::{RestApi, ScmSettings, segment};
use crate::generators::scm_provider::gitlab::rest_api;

pub(crate) struct Gitlab {
    api: RestApi,
    project: String,
    labels: Vec<String>,
    state: String,
}

#[derive(Debug, Deserialize)]
struct MergeRequest {
    iid: i64,
    #[serde(default)]
    title: String,
    source_branch: String,
    target_branch: String,
    #[serde(default)]
    sha: String,
    #[serde(default)]
    labels: Vec<String>,
    author: Author,
}

#[derive(Debug, Deserialize)]
struct Author {
    username: String,
}

impl Gitlab {
    pub fn new(
        config: &PullRequestGitlab,
        token: &str,
        settings: &ScmSettings,
    ) -> Result<Self, GeneratorError> {
        Ok(Self {
            api: rest_api(&config.api, token, config.insecure, settings)?,
            project: config.project.clone(),
            labels: config.labels.clone(),
            state: config.pull_request_state.clone(),
        })
    }

    fn query(&self) -> Vec<(&str, String)> {
        let mut query = vec![("per_page", "100".to_string())];
        if !self.labels.is_empty() {
            query.push(("labels", self.labels.join(",")));
        }
        if !self.state.is_empty() {
            query.push(("state", self.state.clone()));
        }
        query
    }

    pub async fn list(&self) -> Result<Vec<PullRequest>, ListError> {
        let context = format!(
            "error listing merge requests for project '{}'",
            self.project
        );
        let path = format!("projects/{}/merge_requests", segment(&self.project));
        let query = self.query();
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let url = self
            .api
            .url(&path, &query)
            .map_err(|e| ListError::from_call(e, &context))?;
        let requests: Vec<MergeRequest> = self
            .api
            .get_all(url)
            .await
            .map_err(|e| ListError::from_call(e, &context))?;
        Ok(requests.into_iter().map(to_pull_request).collect())
    }
}

fn to_pull_request(mr: MergeRequest) -> PullRequest {
    PullRequest {
        number: mr.iid,
        title: mr.title,
        branch: mr.source_branch,
        target_branch: mr.target_branch,
        head_sha: mr.sha,
        labels: mr.labels,
        author: mr.author.username,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_state_go_into_the_query() {
        let config: PullRequestGitlab = serde_yaml::from_str(
            "{project: group/app, labels: [preview, ok], pullRequestState: opened}",
        )
        .unwrap();
        let gitlab = Gitlab::new(&config, "t", &ScmSettings::default()).unwrap();
        let query = gitlab.query();
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let url = gitlab
            .api
            .url(
                &format!("projects/{}/merge_requests", segment(&gitlab.project)),
                &query,
            )
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://gitlab.com/api/v4/projects/group%2Fapp/merge_requests?per_page=100&labels=preview%2Cok&state=opened"
        );
    }

    /// An abridged entry of GitLab's documented `GET /projects/:id/merge_requests` answer.
    #[test]
    fn merge_requests_are_read_from_gitlabs_answer() {
        let answer = r#"[{"id": 1, "iid": 1, "project_id": 3, "title": "test1",
            "state": "opened", "target_branch": "main", "source_branch": "test1",
            "author": {"id": 1, "username": "admin", "name": "Administrator"},
            "labels": ["Community contribution", "Manage"],
            "sha": "8888888888888888888888888888888888888888"}]"#;
        let requests: Vec<MergeRequest> = serde_json::from_str(answer).unwrap();
        let pull = to_pull_request(requests.into_iter().next().unwrap());
        assert_eq!(pull.number, 1);
        assert_eq!(pull.branch, "test1");
        assert_eq!(pull.target_branch, "main");
        assert_eq!(pull.author, "admin");
        assert_eq!(pull.labels, ["Community contribution", "Manage"]);
    }
}
