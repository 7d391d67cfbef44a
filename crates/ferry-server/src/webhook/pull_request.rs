//! GitHub `pull_request` and GitLab `Merge Request Hook` events, and the ApplicationSet
//! pull-request generators they concern. Only the actions Argo CD's ApplicationSet webhook acts
//! on count: those that open, close, update or relabel a pull request.

use ferry_types::application_set::PullRequestGenerator;
use serde::Deserialize;

use super::error::WebhookError;
use super::event::decode;
use super::provider::Provider;

const GITHUB_ACTIONS: &[&str] = &[
    "opened",
    "closed",
    "synchronize",
    "labeled",
    "reopened",
    "unlabeled",
];
const GITLAB_ACTIONS: &[&str] = &["open", "close", "reopen", "update", "merge"];

/// The APIs pull-request generators use when they name none, as upstream.
const GITHUB_DEFAULT_API: &str = "https://api.github.com/";
const GITLAB_DEFAULT_API: &str = "https://gitlab.com/";

/// A verified pull (merge) request event of an action that may change a generator's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestEvent {
    pub provider: Provider,
    pub action: String,
    pub repository: PullRequestRepository,
}

/// The repository whose pull requests changed, as pull-request generators name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullRequestRepository {
    /// The base repository, and the host of the API serving it (`api.github.com` or a GitHub
    /// Enterprise host).
    GitHub {
        owner: String,
        repo: String,
        api_host: String,
    },
    /// The target project, by id and path, and the instance's host.
    GitLab {
        project_id: String,
        project_path: Option<String>,
        api_host: String,
    },
}

#[derive(Deserialize)]
struct GithubPayload {
    action: String,
    repository: GithubRepository,
}

#[derive(Deserialize)]
struct GithubRepository {
    name: String,
    owner: GithubOwner,
    /// The repository's API URL, `https://api.github.com/repos/<owner>/<repo>`.
    url: String,
}

#[derive(Deserialize)]
struct GithubOwner {
    login: String,
}

#[derive(Deserialize)]
struct GitlabPayload {
    project: GitlabProject,
    object_attributes: GitlabMergeRequest,
}

#[derive(Deserialize)]
struct GitlabProject {
    web_url: String,
}

#[derive(Deserialize)]
struct GitlabMergeRequest {
    #[serde(default)]
    action: String,
    target_project_id: i64,
    target: Option<GitlabTarget>,
}

#[derive(Deserialize)]
struct GitlabTarget {
    path_with_namespace: Option<String>,
}

pub(crate) fn github(event: &str, body: &[u8]) -> Result<PullRequestEvent, WebhookError> {
    let payload: GithubPayload = decode(Provider::GitHub, body)?;
    acted_on(Provider::GitHub, event, &payload.action, GITHUB_ACTIONS)?;
    let repo = payload.repository;
    Ok(PullRequestEvent {
        provider: Provider::GitHub,
        action: payload.action,
        repository: PullRequestRepository::GitHub {
            api_host: host(Provider::GitHub, "repository.url", &repo.url)?,
            owner: repo.owner.login,
            repo: repo.name,
        },
    })
}

pub(crate) fn gitlab(event: &str, body: &[u8]) -> Result<PullRequestEvent, WebhookError> {
    let payload: GitlabPayload = decode(Provider::GitLab, body)?;
    let request = payload.object_attributes;
    acted_on(Provider::GitLab, event, &request.action, GITLAB_ACTIONS)?;
    Ok(PullRequestEvent {
        provider: Provider::GitLab,
        action: request.action,
        repository: PullRequestRepository::GitLab {
            project_id: request.target_project_id.to_string(),
            project_path: request.target.and_then(|t| t.path_with_namespace),
            api_host: host(
                Provider::GitLab,
                "project.web_url",
                &payload.project.web_url,
            )?,
        },
    })
}

fn acted_on(
    provider: Provider,
    event: &str,
    action: &str,
    actions: &[&str],
) -> Result<(), WebhookError> {
    if actions.contains(&action) {
        Ok(())
    } else {
        Err(WebhookError::IgnoredAction {
            provider,
            event: event.to_string(),
            action: action.to_string(),
        })
    }
}

fn host(provider: Provider, field: &str, url: &str) -> Result<String, WebhookError> {
    url_host(url).ok_or_else(|| {
        WebhookError::malformed(
            provider,
            format!("{field}: {url:?} is not a URL with a host"),
        )
    })
}

fn url_host(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .host_str()
        .map(str::to_ascii_lowercase)
}

impl PullRequestEvent {
    /// Whether `generator` lists the pull requests of this event's repository: GitHub by owner,
    /// repository (both case-insensitive) and API host, GitLab by project and API host.
    pub fn concerns(&self, generator: &PullRequestGenerator) -> bool {
        let api_matches = |api: &str, default: &str, event_host: &str| {
            let api = if api.is_empty() { default } else { api };
            url_host(api).is_some_and(|host| host == event_host)
        };
        match &self.repository {
            PullRequestRepository::GitHub {
                owner,
                repo,
                api_host,
            } => generator.github.as_ref().is_some_and(|github| {
                github.owner.eq_ignore_ascii_case(owner)
                    && github.repo.eq_ignore_ascii_case(repo)
                    && api_matches(&github.api, GITHUB_DEFAULT_API, api_host)
            }),
            // Upstream matches the project id alone; a generator may name the project by its
            // path too (GitLab's API takes either), so that counts as well.
            PullRequestRepository::GitLab {
                project_id,
                project_path,
                api_host,
            } => generator.gitlab.as_ref().is_some_and(|gitlab| {
                (gitlab.project == *project_id
                    || project_path.as_deref() == Some(gitlab.project.as_str()))
                    && api_matches(&gitlab.api, GITLAB_DEFAULT_API, api_host)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::fixture;
    use super::*;

    fn generator(value: Value) -> PullRequestGenerator {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_github_pull_request_concerns_generators_of_its_repository_and_api() {
        let event = github("pull_request", &fixture("github-pull-request.json")).unwrap();
        assert_eq!(
            event.repository,
            PullRequestRepository::GitHub {
                owner: "octo-org".into(),
                repo: "guestbook".into(),
                api_host: "api.github.com".into(),
            }
        );
        assert!(event.concerns(&generator(
            json!({"github": {"owner": "Octo-Org", "repo": "GuestBook"}})
        )));
        assert!(event.concerns(&generator(json!({"github": {
            "owner": "octo-org", "repo": "guestbook", "api": "https://api.github.com"
        }}))));
        for other in [
            json!({"github": {"owner": "octo-org", "repo": "other"}}),
            json!({"github": {"owner": "someone", "repo": "guestbook"}}),
            json!({"github": {"owner": "octo-org", "repo": "guestbook",
                              "api": "https://ghe.example.com/api/v3"}}),
            json!({"gitlab": {"project": "1"}}),
            json!({"gitea": {"owner": "octo-org", "repo": "guestbook",
                             "api": "https://api.github.com"}}),
        ] {
            assert!(!event.concerns(&generator(other.clone())), "{other}");
        }
    }

    #[test]
    fn a_gitlab_merge_request_concerns_generators_of_its_project_and_host() {
        let event = gitlab("Merge Request Hook", &fixture("gitlab-merge-request.json")).unwrap();
        assert_eq!(
            event.repository,
            PullRequestRepository::GitLab {
                project_id: "1".into(),
                project_path: Some("platform/guestbook".into()),
                api_host: "gitlab.example.com".into(),
            }
        );
        let api = "https://gitlab.example.com";
        assert!(event.concerns(&generator(json!({"gitlab": {"project": "1", "api": api}}))));
        assert!(event.concerns(&generator(
            json!({"gitlab": {"project": "platform/guestbook", "api": api}})
        )));
        for other in [
            json!({"gitlab": {"project": "2", "api": api}}),
            // Without `api`, the generator reads gitlab.com.
            json!({"gitlab": {"project": "1"}}),
            json!({"github": {"owner": "platform", "repo": "guestbook"}}),
        ] {
            assert!(!event.concerns(&generator(other.clone())), "{other}");
        }
    }

    #[test]
    fn other_actions_are_ignored_and_bad_payloads_named() {
        let body = br#"{"action": "assigned", "repository": {"name": "r", "owner": {"login": "o"}, "url": "https://api.github.com/repos/o/r"}}"#;
        let err = github("pull_request", body).unwrap_err();
        assert_eq!(
            err.to_string(),
            "GitHub event \"pull_request\" with action \"assigned\" changes no generated \
             pull request list: ignored"
        );
        let body = br#"{"project": {"web_url": "https://gitlab.com/g/p"}, "object_attributes": {"action": "approved", "target_project_id": 3}}"#;
        assert!(matches!(
            gitlab("Merge Request Hook", body).unwrap_err(),
            WebhookError::IgnoredAction { .. }
        ));
        let body = br#"{"action": "opened", "repository": {"name": "r", "owner": {"login": "o"}, "url": "repos/o/r"}}"#;
        assert_eq!(
            github("pull_request", body).unwrap_err().to_string(),
            "malformed GitHub webhook payload: repository.url: \"repos/o/r\" is not a URL with \
             a host"
        );
    }
}
