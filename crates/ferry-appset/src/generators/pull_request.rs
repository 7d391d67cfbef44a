//! The `pullRequest` generator: one parameter set per open pull request of a repository (merge
//! request on GitLab) that carries all of `labels` and that any filter matches, as Argo CD
//! lists them.

mod gitea;
mod github;
mod gitlab;

use ferry_types::ApplicationSet;
use ferry_types::application_set::{PullRequestFilter, PullRequestGenerator};
use regex::Regex;
use serde_json::json;

use super::scm::{self, CallError, ScmSettings, short};
use super::{GeneratorError, Kube};
use crate::params::Params;

/// Argo CD's default `requeueAfterSeconds` of the pull request generator.
pub const DEFAULT_REQUEUE_AFTER: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Argo CD's limit of the `*_slug` parameters, leaving room for a suffix in a DNS label.
const SLUG_MAX_LENGTH: usize = 50;

/// A pull request as a provider lists it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PullRequest {
    pub number: i64,
    pub title: String,
    pub branch: String,
    pub target_branch: String,
    pub head_sha: String,
    pub labels: Vec<String>,
    pub author: String,
}

/// A listing that failed; `repo_not_found` when the provider does not know the repository.
pub(crate) struct ListError {
    repo_not_found: bool,
    message: String,
}

impl ListError {
    fn from_call(err: CallError, context: &str) -> Self {
        Self {
            repo_not_found: err.not_found(),
            message: format!("{context}: {}", err.message),
        }
    }
}

impl From<GeneratorError> for ListError {
    fn from(err: GeneratorError) -> Self {
        Self {
            repo_not_found: false,
            message: err.to_string(),
        }
    }
}

enum Service {
    Gitea(gitea::Gitea),
    Github(github::Github),
    Gitlab(gitlab::Gitlab),
}

impl Service {
    async fn list(&self) -> Result<Vec<PullRequest>, ListError> {
        match self {
            Service::Gitea(s) => s.list().await,
            Service::Github(s) => s.list().await,
            Service::Gitlab(s) => s.list().await,
        }
    }
}

pub async fn generate(
    generator: &PullRequestGenerator,
    appset: &ApplicationSet,
    kube: Option<&Kube>,
    settings: &ScmSettings,
) -> Result<Vec<Params>, GeneratorError> {
    let service = service(generator, appset, kube, settings)
        .await
        .map_err(|e| {
            GeneratorError::new(format!(
                "failed to select pull request service provider: {e}"
            ))
        })?;
    let filters = compile(&generator.filters)?;
    let pulls = match service.list().await {
        Ok(pulls) => pulls,
        Err(err) if err.repo_not_found && generator.continue_on_repo_not_found_error => {
            tracing::warn!(
                "skipping the pull request generator's repository, it was not found: {}",
                err.message
            );
            Vec::new()
        }
        Err(err) => {
            return Err(GeneratorError::new(format!(
                "error listing repos: {}",
                err.message
            )));
        }
    };
    let go_template = appset.spec.go_template;
    let mut out = Vec::new();
    for pull in pulls
        .into_iter()
        .filter(|p| filters.is_empty() || filters.iter().any(|f| f.matches(p)))
    {
        let mut params = Params::new();
        params.insert("number".into(), json!(pull.number.to_string()));
        params.insert("title".into(), json!(pull.title));
        params.insert("branch".into(), json!(pull.branch));
        params.insert("branch_slug".into(), json!(slug(&pull.branch)));
        params.insert("target_branch".into(), json!(pull.target_branch));
        params.insert(
            "target_branch_slug".into(),
            json!(slug(&pull.target_branch)),
        );
        params.insert("head_sha".into(), json!(pull.head_sha));
        params.insert("head_short_sha".into(), json!(short(&pull.head_sha, 8)));
        params.insert("head_short_sha_7".into(), json!(short(&pull.head_sha, 7)));
        params.insert("author".into(), json!(pull.author));
        // Argo CD gives the labels (a list) to Go templates only.
        if go_template {
            params.insert("labels".into(), json!(pull.labels));
        }
        super::append_values(&generator.values, &mut params, go_template)?;
        out.push(params);
    }
    Ok(out)
}

async fn service(
    generator: &PullRequestGenerator,
    appset: &ApplicationSet,
    kube: Option<&Kube>,
    settings: &ScmSettings,
) -> Result<Service, GeneratorError> {
    settings.check(generator.custom_api_url())?;
    let namespace = super::appset_namespace(appset, kube);
    let strict = settings.token_ref_strict_mode;
    let token = |token_ref| scm::token(token_ref, kube, &namespace, strict);
    let fetch_failed =
        |e: GeneratorError| GeneratorError::new(format!("error fetching Secret token: {e}"));
    if let Some(config) = &generator.github {
        scm::refuse_unknown("github pull request provider", &config.unknown)?;
        let token = token(config.token_ref.as_ref())
            .await
            .map_err(fetch_failed)?;
        return Ok(Service::Github(github::Github::new(
            config, &token, settings,
        )?));
    }
    if let Some(config) = &generator.gitlab {
        scm::refuse_unknown("gitlab pull request provider", &config.unknown)?;
        let token = token(config.token_ref.as_ref())
            .await
            .map_err(fetch_failed)?;
        return Ok(Service::Gitlab(gitlab::Gitlab::new(
            config, &token, settings,
        )?));
    }
    if let Some(config) = &generator.gitea {
        scm::refuse_unknown("gitea pull request provider", &config.unknown)?;
        let token = token(config.token_ref.as_ref())
            .await
            .map_err(fetch_failed)?;
        return Ok(Service::Gitea(gitea::Gitea::new(config, &token, settings)?));
    }
    match generator.unknown.keys().next() {
        Some(name) => Err(GeneratorError::new(format!(
            "the {name} pull request provider is not supported by ferry"
        ))),
        None => Err(GeneratorError::new(
            "no Pull Request provider implementation configured",
        )),
    }
}

struct Filter {
    branch_match: Option<Regex>,
    target_branch_match: Option<Regex>,
    title_match: Option<Regex>,
}

impl Filter {
    fn matches(&self, pull: &PullRequest) -> bool {
        let ok = |r: &Option<Regex>, text: &str| r.as_ref().is_none_or(|r| r.is_match(text));
        ok(&self.branch_match, &pull.branch)
            && ok(&self.target_branch_match, &pull.target_branch)
            && ok(&self.title_match, &pull.title)
    }
}

fn compile(filters: &[PullRequestFilter]) -> Result<Vec<Filter>, GeneratorError> {
    let regex = scm::filter_regex;
    filters
        .iter()
        .map(|f| {
            Ok(Filter {
                branch_match: regex("BranchMatch", &f.branch_match)?,
                target_branch_match: regex("TargetBranchMatch", &f.target_branch_match)?,
                title_match: regex("TitleMatch", &f.title_match)?,
            })
        })
        .collect()
}

/// gosimple/slug's `Make` as Argo CD configures it (at most 50 characters, `_` as `-`): `&` and
/// `@` spelled out, lowercase, runs of other characters than `[a-z0-9_-]` as one `-`, no
/// leading or trailing `-` or `_`, cut at the last `-` within the limit. Unlike gosimple/slug,
/// non-ASCII letters are not transliterated but replaced like other characters.
fn slug(text: &str) -> String {
    let substituted = text
        .trim()
        .replace('_', "-")
        .replace('&', "and")
        .replace('@', "at")
        .to_lowercase();
    let mut out = String::with_capacity(substituted.len());
    for c in substituted.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '-'
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    let out = out.trim_matches(|c| c == '-' || c == '_');
    if out.len() <= SLUG_MAX_LENGTH {
        return out.to_string();
    }
    match out[..=SLUG_MAX_LENGTH].rfind('-') {
        Some(i) => out[..i].to_string(),
        None => out[..SLUG_MAX_LENGTH].to_string(),
    }
}

/// Whether `got` holds every label of `wanted`.
fn has_labels(wanted: &[String], got: &[String]) -> bool {
    wanted.iter().all(|w| got.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fields_ferry_lacks_are_refused_not_ignored() {
        let appset: ApplicationSet = serde_yaml::from_str(
            "spec:
  generators:
  - pullRequest: {github: {owner: o, repo: r, appSecretName: app}}
  template: {}",
        )
        .unwrap();
        let generator = appset.spec.generators[0].pull_request.as_ref().unwrap();
        let err = generate(generator, &appset, None, &ScmSettings::default())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to select pull request service provider: the field appSecretName of the github pull request provider is not supported by ferry"
        );
    }

    #[test]
    fn slugs_follow_gosimple_slug() {
        assert_eq!(slug("feature/Add_Login"), "feature-add-login");
        assert_eq!(slug("  fix: a & b @home  "), "fix-a-and-b-athome");
        assert_eq!(slug("--x--"), "x");
        let long = format!("{}-tail", "a".repeat(48));
        assert_eq!(slug(&long), "a".repeat(48));
        assert_eq!(slug(&"b".repeat(60)), "b".repeat(50));
    }

    #[test]
    fn any_filter_may_match_and_all_its_conditions_must() {
        let filters: Vec<PullRequestFilter> = serde_yaml::from_str(
            "- {branchMatch: ^feat, targetBranchMatch: ^main$}
- {titleMatch: urgent}",
        )
        .unwrap();
        let filters = compile(&filters).unwrap();
        let pull = |branch: &str, target: &str, title: &str| PullRequest {
            branch: branch.into(),
            target_branch: target.into(),
            title: title.into(),
            ..PullRequest::default()
        };
        let kept = |p: &PullRequest| filters.iter().any(|f| f.matches(p));
        assert!(kept(&pull("feat-a", "main", "x")));
        assert!(!kept(&pull("feat-a", "release", "x")));
        assert!(kept(&pull("fix", "release", "urgent fix")));
        assert!(has_labels(&["a".into()], &["b".into(), "a".into()]));
        assert!(!has_labels(&["a".into(), "c".into()], &["a".into()]));
    }
}
