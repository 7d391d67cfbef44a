//! The `scmProvider` and `pullRequest` generators: repositories of an organization, and open
//! pull requests of a repository, as Gitea, GitHub and GitLab list them. Providers ferry does not
//! implement (Bitbucket, Azure DevOps, AWS CodeCommit) stay in the `unknown` maps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ApplicationSetTemplate;
use crate::object::is_false;
use crate::source::UnknownFields;

/// A key of a Secret in the ApplicationSet's namespace (`tokenRef`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    #[serde(default)]
    pub secret_name: String,
    #[serde(default)]
    pub key: String,
}

/// `scmProvider`: one parameter set per repository (and branch) of an organization.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScmProviderGenerator {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<ScmProviderGithub>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab: Option<ScmProviderGitlab>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitea: Option<ScmProviderGitea>,
    /// Any filter may match; all conditions of one filter must.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<ScmProviderFilter>,
    /// `ssh` (the default) or `https`: which clone URL `url` is.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub clone_protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requeue_after_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ApplicationSetTemplate>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl ScmProviderGenerator {
    /// The custom API URL the allowed-providers list is checked against (Argo CD's
    /// `CustomApiUrl`).
    pub fn custom_api_url(&self) -> &str {
        match (&self.github, &self.gitlab, &self.gitea) {
            (Some(github), _, _) => &github.api,
            (_, Some(gitlab), _) => &gitlab.api,
            (_, _, Some(gitea)) => &gitea.api,
            _ => "",
        }
    }
}

/// `scmProvider.gitea`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScmProviderGitea {
    /// The organization to scan.
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub api: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ref: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub all_branches: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub exclude_archived_repos: bool,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `scmProvider.github`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScmProviderGithub {
    #[serde(default)]
    pub organization: String,
    /// GitHub Enterprise's URL; api.github.com when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ref: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub all_branches: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub exclude_archived_repos: bool,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `scmProvider.gitlab`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScmProviderGitlab {
    /// The group's id or full path.
    #[serde(default)]
    pub group: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub include_subgroups: bool,
    /// gitlab.com when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ref: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub all_branches: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,
    /// True when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_shared_projects: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub topic: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub include_archived_repos: bool,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// One entry of `scmProvider.filters`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScmProviderFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_match: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths_exist: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths_do_not_exist: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_match: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_match: Option<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `pullRequest`: one parameter set per open pull request of a repository.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestGenerator {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<PullRequestGithub>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab: Option<PullRequestGitlab>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitea: Option<PullRequestGitea>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<PullRequestFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requeue_after_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ApplicationSetTemplate>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    /// A repository that does not exist generates nothing instead of an error.
    #[serde(default, skip_serializing_if = "is_false")]
    pub continue_on_repo_not_found_error: bool,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl PullRequestGenerator {
    /// The custom API URL the allowed-providers list is checked against.
    pub fn custom_api_url(&self) -> &str {
        match (&self.github, &self.gitlab, &self.gitea) {
            (Some(github), _, _) => &github.api,
            (_, Some(gitlab), _) => &gitlab.api,
            (_, _, Some(gitea)) => &gitea.api,
            _ => "",
        }
    }
}

/// `pullRequest.gitea`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestGitea {
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub repo: String,
    #[serde(default)]
    pub api: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ref: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,
    /// Only pull requests carrying all these labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `pullRequest.github`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestGithub {
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub repo: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ref: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `pullRequest.gitlab`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestGitlab {
    /// The project's id or full path.
    #[serde(default)]
    pub project: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ref: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// `opened`, `closed`, `merged` or `locked`; all states when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pull_request_state: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// One entry of `pullRequest.filters`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_match: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_branch_match: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_match: Option<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}
