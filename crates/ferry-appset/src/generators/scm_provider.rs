//! The `scmProvider` generator: one parameter set per repository of an organization (per branch
//! with `allBranches`), kept when any filter matches, as Argo CD lists them. Repository filters
//! (`repositoryMatch`, `labelMatch`) are applied before branches are listed; branch filters
//! (`branchMatch`, `pathsExist`, `pathsDoNotExist`) to each branch.

pub(super) mod gitea;
pub(super) mod github;
pub(super) mod gitlab;

use ferry_types::ApplicationSet;
use ferry_types::application_set::{ScmProviderFilter, ScmProviderGenerator};
use regex::Regex;
use serde_json::{Value, json};

use super::scm::{self, ScmSettings, short};
use super::{GeneratorError, Kube};
use crate::params::Params;

/// Argo CD's default `requeueAfterSeconds` of the SCM provider generator.
pub const DEFAULT_REQUEUE_AFTER: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// A repository at one branch, as a provider lists it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Repository {
    pub organization: String,
    pub repository: String,
    pub url: String,
    pub branch: String,
    pub sha: String,
    pub labels: Vec<String>,
    pub repository_id: Value,
}

/// The provider an entry names.
enum Provider {
    Gitea(gitea::Gitea),
    Github(github::Github),
    Gitlab(gitlab::Gitlab),
}

impl Provider {
    async fn list_repos(&self, clone_protocol: &str) -> Result<Vec<Repository>, GeneratorError> {
        match self {
            Provider::Gitea(p) => p.list_repos(clone_protocol).await,
            Provider::Github(p) => p.list_repos(clone_protocol).await,
            Provider::Gitlab(p) => p.list_repos(clone_protocol).await,
        }
    }

    async fn branches(&self, repo: &Repository) -> Result<Vec<Repository>, GeneratorError> {
        match self {
            Provider::Gitea(p) => p.branches(repo).await,
            Provider::Github(p) => p.branches(repo).await,
            Provider::Gitlab(p) => p.branches(repo).await,
        }
    }

    async fn has_path(&self, repo: &Repository, path: &str) -> Result<bool, GeneratorError> {
        match self {
            Provider::Gitea(p) => p.has_path(repo, path).await,
            Provider::Github(p) => p.has_path(repo, path).await,
            Provider::Gitlab(p) => p.has_path(repo, path).await,
        }
    }
}

pub async fn generate(
    generator: &ScmProviderGenerator,
    appset: &ApplicationSet,
    kube: Option<&Kube>,
    settings: &ScmSettings,
) -> Result<Vec<Params>, GeneratorError> {
    settings.check(generator.custom_api_url())?;
    let provider = provider(generator, appset, kube, settings).await?;
    let repos = list(&provider, &generator.filters, &generator.clone_protocol).await?;
    let go_template = appset.spec.go_template;
    let mut out = Vec::with_capacity(repos.len());
    for repo in repos {
        let mut params = Params::new();
        params.insert("organization".into(), json!(repo.organization));
        params.insert("repository".into(), json!(repo.repository));
        params.insert("repository_id".into(), repo.repository_id.clone());
        params.insert("url".into(), json!(repo.url));
        params.insert("branch".into(), json!(repo.branch));
        params.insert("sha".into(), json!(repo.sha));
        params.insert("short_sha".into(), json!(short(&repo.sha, 8)));
        params.insert("short_sha_7".into(), json!(short(&repo.sha, 7)));
        params.insert("labels".into(), json!(repo.labels.join(",")));
        params.insert(
            "branchNormalized".into(),
            json!(sanitize_name(&repo.branch)),
        );
        super::append_values(&generator.values, &mut params, go_template)?;
        out.push(params);
    }
    Ok(out)
}

async fn provider(
    generator: &ScmProviderGenerator,
    appset: &ApplicationSet,
    kube: Option<&Kube>,
    settings: &ScmSettings,
) -> Result<Provider, GeneratorError> {
    let namespace = super::appset_namespace(appset, kube);
    let strict = settings.token_ref_strict_mode;
    if let Some(config) = &generator.github {
        scm::refuse_unknown("github SCM provider", &config.unknown)?;
        let token = scm::token(config.token_ref.as_ref(), kube, &namespace, strict)
            .await
            .map_err(|e| {
                GeneratorError::new(format!("scm provider: error fetching Github token: {e}"))
            })?;
        return Ok(Provider::Github(github::Github::new(
            config, &token, settings,
        )?));
    }
    if let Some(config) = &generator.gitlab {
        scm::refuse_unknown("gitlab SCM provider", &config.unknown)?;
        let token = scm::token(config.token_ref.as_ref(), kube, &namespace, strict)
            .await
            .map_err(|e| GeneratorError::new(format!("error fetching Gitlab token: {e}")))?;
        return Ok(Provider::Gitlab(gitlab::Gitlab::new(
            config, &token, settings,
        )?));
    }
    if let Some(config) = &generator.gitea {
        scm::refuse_unknown("gitea SCM provider", &config.unknown)?;
        let token = scm::token(config.token_ref.as_ref(), kube, &namespace, strict)
            .await
            .map_err(|e| GeneratorError::new(format!("error fetching Gitea token: {e}")))?;
        return Ok(Provider::Gitea(gitea::Gitea::new(
            config, &token, settings,
        )?));
    }
    match generator.unknown.keys().next() {
        Some(name) => Err(GeneratorError::new(format!(
            "the {name} SCM provider is not supported by ferry"
        ))),
        None => Err(GeneratorError::new(
            "no SCM provider implementation configured",
        )),
    }
}

/// A compiled filter; `repository_level` when it holds only repository conditions.
struct Filter {
    repository_match: Option<Regex>,
    label_match: Option<Regex>,
    branch_match: Option<Regex>,
    paths_exist: Vec<String>,
    paths_do_not_exist: Vec<String>,
    branch_level: bool,
}

fn compile(filters: &[ScmProviderFilter]) -> Result<Vec<Filter>, GeneratorError> {
    let regex = scm::filter_regex;
    filters
        .iter()
        .map(|f| {
            Ok(Filter {
                repository_match: regex("RepositoryMatch", &f.repository_match)?,
                label_match: regex("LabelMatch", &f.label_match)?,
                branch_match: regex("BranchMatch", &f.branch_match)?,
                paths_exist: f.paths_exist.clone().unwrap_or_default(),
                paths_do_not_exist: f.paths_do_not_exist.clone().unwrap_or_default(),
                // As upstream: a filter with any branch condition is applied per branch (all its
                // conditions), otherwise per repository.
                branch_level: f.paths_exist.is_some()
                    || f.paths_do_not_exist.is_some()
                    || f.branch_match.is_some(),
            })
        })
        .collect()
}

impl Filter {
    fn repository_level(&self) -> bool {
        !self.branch_level && (self.repository_match.is_some() || self.label_match.is_some())
    }

    async fn matches(
        &self,
        provider: &Provider,
        repo: &Repository,
    ) -> Result<bool, GeneratorError> {
        if self
            .repository_match
            .as_ref()
            .is_some_and(|r| !r.is_match(&repo.repository))
        {
            return Ok(false);
        }
        if self
            .branch_match
            .as_ref()
            .is_some_and(|r| !r.is_match(&repo.branch))
        {
            return Ok(false);
        }
        if let Some(label) = &self.label_match
            && !repo.labels.iter().any(|l| label.is_match(l))
        {
            return Ok(false);
        }
        for path in &self.paths_exist {
            if !provider.has_path(repo, path.trim_end_matches('/')).await? {
                return Ok(false);
            }
        }
        for path in &self.paths_do_not_exist {
            if provider.has_path(repo, path.trim_end_matches('/')).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

async fn any_matches(
    filters: &[&Filter],
    provider: &Provider,
    repo: &Repository,
) -> Result<bool, GeneratorError> {
    for filter in filters {
        if filter.matches(provider, repo).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The repositories (per branch) the filters keep; all when there are none.
async fn list(
    provider: &Provider,
    filters: &[ScmProviderFilter],
    clone_protocol: &str,
) -> Result<Vec<Repository>, GeneratorError> {
    let filters = compile(filters)?;
    let repo_filters: Vec<_> = filters.iter().filter(|f| f.repository_level()).collect();
    let branch_filters: Vec<_> = filters.iter().filter(|f| f.branch_level).collect();
    let mut repos = Vec::new();
    for repo in provider.list_repos(clone_protocol).await? {
        if repo_filters.is_empty() || any_matches(&repo_filters, provider, &repo).await? {
            repos.push(repo);
        }
    }
    let mut out = Vec::new();
    for repo in &repos {
        for branch in provider.branches(repo).await? {
            if branch_filters.is_empty() || any_matches(&branch_filters, provider, &branch).await? {
                out.push(branch);
            }
        }
    }
    Ok(out)
}

/// Argo CD's `SanitizeName`: lowercase, characters other than `[-a-z0-9.]` as `-`, at most 253
/// characters, without leading or trailing `-` and `.`.
fn sanitize_name(name: &str) -> String {
    let lower: String = name
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '.' => c,
            _ => '-',
        })
        .collect();
    let cut: String = lower.chars().take(253).collect();
    cut.trim_matches(|c| c == '-' || c == '.').to_string()
}

/// The clone URL `protocol` asks for (`ssh` by default).
fn clone_url(
    protocol: &str,
    ssh: &str,
    https: &str,
    provider: &str,
) -> Result<String, GeneratorError> {
    match protocol {
        "" | "ssh" => Ok(ssh.to_string()),
        "https" => Ok(https.to_string()),
        other => Err(GeneratorError::new(format!(
            "unknown clone protocol for {provider} {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names_are_normalized_as_upstream() {
        assert_eq!(sanitize_name("feature/Add_Thing"), "feature-add-thing");
        assert_eq!(sanitize_name("-release.1.0."), "release.1.0");
    }

    #[test]
    fn filters_are_split_by_what_they_look_at() {
        let filters: Vec<ScmProviderFilter> = serde_yaml::from_str(
            "- {repositoryMatch: ^app}
- {labelMatch: deploy}
- {repositoryMatch: ^other, pathsExist: [helm]}
- {branchMatch: ^main$}",
        )
        .unwrap();
        let compiled = compile(&filters).unwrap();
        let repo_level: Vec<_> = compiled.iter().map(|f| f.repository_level()).collect();
        let branch_level: Vec<_> = compiled.iter().map(|f| f.branch_level).collect();
        assert_eq!(repo_level, [true, true, false, false]);
        assert_eq!(branch_level, [false, false, true, true]);
        let bad: Vec<ScmProviderFilter> = serde_yaml::from_str("- {branchMatch: '('}").unwrap();
        let err = compile(&bad).err().unwrap().to_string();
        assert!(
            err.starts_with("error compiling BranchMatch regexp \"(\""),
            "{err}"
        );
    }
}
