//! GitLab's REST API (`<api>/api/v4`, gitlab.com by default): a group's projects (topics as
//! labels), their branches, and whether a file or directory exists at a branch.
//!
//! No GitLab server can run here, so only the request URLs and the parsing of GitLab-shaped
//! answers (from GitLab's documented examples) are unit-tested; the generator logic above the
//! client is the one tested against a real Gitea.

use ferry_types::application_set::ScmProviderGitlab;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Repository, clone_url};
use crate::generators::GeneratorError;
use crate::generators::scm::{RestApi, ScmSettings, segment};

pub(crate) struct Gitlab {
    api: RestApi,
    group: String,
    all_branches: bool,
    include_subgroups: bool,
    include_shared: bool,
    include_archived: bool,
    topic: String,
}

#[derive(Debug, Deserialize)]
struct Project {
    id: i64,
    path: String,
    namespace: Namespace,
    #[serde(default)]
    default_branch: Option<String>,
    #[serde(default)]
    ssh_url_to_repo: String,
    #[serde(default)]
    http_url_to_repo: String,
    #[serde(default)]
    topics: Vec<String>,
    /// Before GitLab 14.5.
    #[serde(default)]
    tag_list: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Namespace {
    full_path: String,
}

#[derive(Debug, Deserialize)]
struct Branch {
    name: String,
    commit: Commit,
}

#[derive(Debug, Deserialize)]
struct Commit {
    id: String,
}

/// The API root as GitLab's Go client makes it: `api/v4/` appended unless already there.
pub(crate) fn base_url(api: &str) -> String {
    let mut base = if api.is_empty() {
        "https://gitlab.com/".to_string()
    } else {
        api.to_string()
    };
    if !base.ends_with('/') {
        base.push('/');
    }
    if !base.ends_with("api/v4/") {
        base.push_str("api/v4/");
    }
    base
}

/// GitLab's API with its `PRIVATE-TOKEN` header.
pub(crate) fn rest_api(
    api: &str,
    token: &str,
    insecure: bool,
    settings: &ScmSettings,
) -> Result<RestApi, GeneratorError> {
    let auth = (!token.is_empty()).then(|| ("private-token", token.to_string()));
    RestApi::new(settings.http_client(insecure)?, &base_url(api), auth)
}

impl Gitlab {
    pub fn new(
        config: &ScmProviderGitlab,
        token: &str,
        settings: &ScmSettings,
    ) -> Result<Self, GeneratorError> {
        Ok(Self {
            api: rest_api(&config.api, token, config.insecure, settings)?,
            group: config.group.clone(),
            all_branches: config.all_branches,
            include_subgroups: config.include_subgroups,
            include_shared: config.include_shared_projects.unwrap_or(true),
            include_archived: config.include_archived_repos,
            topic: config.topic.clone(),
        })
    }

    pub async fn list_repos(&self, protocol: &str) -> Result<Vec<Repository>, GeneratorError> {
        let path = format!("groups/{}/projects", segment(&self.group));
        let mut query = vec![
            ("per_page", "100"),
            ("include_subgroups", bool_text(self.include_subgroups)),
            ("with_shared", bool_text(self.include_shared)),
            ("topic", self.topic.as_str()),
        ];
        // GitLab leaves archived projects out unless asked.
        if self.include_archived {
            query.push(("archived", "true"));
        }
        let projects: Vec<Project> = self
            .api
            .get_all(self.api.url(&path, &query)?)
            .await
            .map_err(|e| {
                GeneratorError::new(format!(
                    "error listing projects for {}: {}",
                    self.group, e.message
                ))
            })?;
        projects
            .into_iter()
            .map(|p| to_repository(p, protocol))
            .collect()
    }

    pub async fn branches(&self, repo: &Repository) -> Result<Vec<Repository>, GeneratorError> {
        let id = id_text(&repo.repository_id);
        let base = format!("projects/{id}/repository/branches");
        let listed = if self.all_branches {
            self.api
                .get_all::<Branch>(self.api.url(&base, &[("per_page", "100")])?)
                .await
        } else {
            let url = self
                .api
                .url(&format!("{base}/{}", segment(&repo.branch)), &[])?;
            self.api.get::<Branch>(url).await.map(|b| vec![b])
        };
        let branches = match listed {
            Ok(branches) => branches,
            Err(err) if err.not_found() => Vec::new(),
            Err(err) => {
                return Err(GeneratorError::new(format!(
                    "error listing branches for {}/{}: {}",
                    repo.organization, repo.repository, err.message
                )));
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

    /// A file, else a directory (a tree that lists), at the branch.
    pub async fn has_path(&self, repo: &Repository, path: &str) -> Result<bool, GeneratorError> {
        let id = id_text(&repo.repository_id);
        let file = self.api.url(
            &format!("projects/{id}/repository/files/{}", segment(path)),
            &[("ref", &repo.branch)],
        )?;
        match self.api.get::<Value>(file).await {
            Ok(_) => return Ok(true),
            Err(err) if err.not_found() => {}
            Err(err) => return Err(err.into()),
        }
        let tree = self.api.url(
            &format!("projects/{id}/repository/tree"),
            &[("path", path), ("ref", &repo.branch)],
        )?;
        match self.api.get::<Value>(tree).await {
            Ok(_) => Ok(true),
            Err(err) if err.not_found() => Ok(false),
            Err(err) => Err(err.into()),
        }
    }
}

fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => segment(s),
        other => other.to_string(),
    }
}

fn to_repository(project: Project, protocol: &str) -> Result<Repository, GeneratorError> {
    let labels = if project.topics.is_empty() {
        project.tag_list
    } else {
        project.topics
    };
    Ok(Repository {
        url: clone_url(
            protocol,
            &project.ssh_url_to_repo,
            &project.http_url_to_repo,
            "Gitlab",
        )?,
        organization: project.namespace.full_path,
        repository: project.path,
        branch: project.default_branch.unwrap_or_default(),
        sha: String::new(),
        labels,
        repository_id: json!(project.id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_v4_is_appended_once() {
        assert_eq!(base_url(""), "https://gitlab.com/api/v4/");
        assert_eq!(
            base_url("https://git.example.com"),
            "https://git.example.com/api/v4/"
        );
        assert_eq!(
            base_url("https://git.example.com/api/v4"),
            "https://git.example.com/api/v4/"
        );
    }

    /// An abridged entry of GitLab's documented `GET /groups/:id/projects` answer.
    #[test]
    fn projects_are_read_from_gitlabs_answer() {
        let answer = r#"[{"id": 9, "description": "foo", "default_branch": "main",
            "tag_list": [], "topics": ["deploy"], "archived": false, "visibility": "public",
            "ssh_url_to_repo": "git@gitlab.example.com:html5-boilerplate/html5-boilerplate.git",
            "http_url_to_repo": "http://gitlab.example.com/html5-boilerplate/html5-boilerplate.git",
            "name": "Html5 Boilerplate", "path": "html5-boilerplate",
            "namespace": {"id": 5, "name": "Experimental", "path": "h5bp", "kind": "group",
                          "full_path": "h5bp"}}]"#;
        let projects: Vec<Project> = serde_json::from_str(answer).unwrap();
        let repo = to_repository(projects.into_iter().next().unwrap(), "").unwrap();
        assert_eq!(repo.organization, "h5bp");
        assert_eq!(repo.repository, "html5-boilerplate");
        assert_eq!(
            repo.url,
            "git@gitlab.example.com:html5-boilerplate/html5-boilerplate.git"
        );
        assert_eq!(repo.labels, ["deploy"]);
        assert_eq!(repo.repository_id, json!(9));
        assert_eq!(id_text(&json!("group/project")), "group%2Fproject");
    }
}
