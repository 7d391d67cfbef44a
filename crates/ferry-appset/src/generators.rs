//! Generators: an ApplicationSet's `generators` entries turned into parameter sets, each with
//! the template that renders it (the entry's own `template` over the ApplicationSet's).

mod clusters;
mod combine;
mod duck_type;
mod git;
mod list;
mod plugin;
mod pull_request;
mod scm;
mod scm_provider;

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_types::ApplicationSet;
use ferry_types::application_set::{ApplicationSetGenerator, ApplicationSetTemplate};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};
use serde_json::Value;

pub use git::GitSource;
pub use scm::ScmSettings;

use crate::params::{Params, flatten};
use crate::template::Renderer;

/// Argo CD's default `requeueAfterSeconds` of the git generator.
pub const DEFAULT_REQUEUE_AFTER: Duration = Duration::from_secs(180);

/// Why a generator produced nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct GeneratorError(String);

impl GeneratorError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl From<crate::template::TemplateError> for GeneratorError {
    fn from(err: crate::template::TemplateError) -> Self {
        Self(err.to_string())
    }
}

/// Argo CD's default `requeueAfterSeconds` of the plugin generator.
pub const DEFAULT_PLUGIN_REQUEUE_AFTER: Duration = Duration::from_secs(30 * 60);

/// The control namespace through the Kubernetes API: the ConfigMaps and Secrets of plugins and
/// the duck-typed resources of cluster decisions.
#[derive(Clone)]
pub struct Kube {
    pub client: kube::Client,
    pub namespace: String,
}

/// What generators read: Git repositories, the control namespace's cluster Secrets, where
/// there is a cluster its objects, and SCM providers' APIs.
pub struct Sources<'a> {
    pub git: &'a GitSource,
    pub cluster_secrets: &'a [Secret],
    pub kube: Option<&'a Kube>,
    pub scm: &'a ScmSettings,
}

/// One entry's parameter sets and the template they are rendered with.
#[derive(Debug)]
pub struct Generated {
    pub params: Vec<Params>,
    pub template: ApplicationSetTemplate,
}

/// The parameter sets of one `generators` entry, with `outer` (a matrix's first generator's
/// set) substituted into the entry first, filtered by the entry's `selector`.
pub async fn transform(
    entry: &ApplicationSetGenerator,
    base_template: &ApplicationSetTemplate,
    appset: &ApplicationSet,
    outer: &Params,
    sources: &Sources<'_>,
    depth: usize,
) -> Result<Generated, GeneratorError> {
    let renderer = Renderer::new(appset.spec.go_template, &appset.spec.go_template_options)?;
    let interpolated;
    let entry = if outer.is_empty() {
        entry
    } else {
        interpolated = interpolate(entry, outer, &renderer)?;
        &interpolated
    };
    let go_template = appset.spec.go_template;
    let (params, own_template) = match which(entry)? {
        Which::List => {
            let list = entry.list.as_ref().expect("checked");
            (list::generate(list, go_template)?, &list.template)
        }
        Which::Clusters => {
            let clusters = entry.clusters.as_ref().expect("checked");
            let params = clusters::generate(clusters, sources.cluster_secrets, go_template)?;
            (params, &clusters.template)
        }
        Which::Git => {
            let git = entry.git.as_ref().expect("checked");
            let project = appset.spec.template.spec["project"]
                .as_str()
                .filter(|p| !p.contains("{{"));
            let params = git::generate(git, sources.git, project, go_template).await?;
            (params, &git.template)
        }
        Which::ClusterDecisionResource => {
            let duck = entry.cluster_decision_resource.as_ref().expect("checked");
            let params =
                duck_type::generate(duck, sources.kube, sources.cluster_secrets, go_template)
                    .await?;
            (params, &duck.template)
        }
        Which::Plugin => {
            let plugin = entry.plugin.as_ref().expect("checked");
            let name = appset.metadata.name.as_deref().unwrap_or_default();
            let params = plugin::generate(plugin, name, sources.kube, go_template).await?;
            (params, &plugin.template)
        }
        Which::ScmProvider => {
            let scm = entry.scm_provider.as_ref().expect("checked");
            let params = scm_provider::generate(scm, appset, sources.kube, sources.scm).await?;
            (params, &scm.template)
        }
        Which::PullRequest => {
            let pull = entry.pull_request.as_ref().expect("checked");
            let params = pull_request::generate(pull, appset, sources.kube, sources.scm).await?;
            (params, &pull.template)
        }
        Which::Matrix => {
            let matrix = entry.matrix.as_ref().expect("checked");
            let params = Box::pin(combine::matrix(matrix, appset, sources, depth)).await?;
            (params, &matrix.template)
        }
        Which::Merge => {
            let merge = entry.merge.as_ref().expect("checked");
            let params = Box::pin(combine::merge(merge, appset, sources, depth)).await?;
            (params, &merge.template)
        }
    };
    let params = match &entry.selector {
        Some(selector) => {
            let selector = label_selector(selector)?;
            params
                .into_iter()
                .filter(|p| selector.matches(&flatten(p)))
                .collect()
        }
        None => params,
    };
    Ok(Generated {
        params,
        template: merge_templates(own_template.as_ref(), base_template)?,
    })
}

enum Which {
    List,
    Clusters,
    Git,
    ClusterDecisionResource,
    Plugin,
    ScmProvider,
    PullRequest,
    Matrix,
    Merge,
}

/// The one generator an entry holds; generators ferry lacks are named in the error.
fn which(entry: &ApplicationSetGenerator) -> Result<Which, GeneratorError> {
    if let Some(name) = entry.unknown.keys().next() {
        return Err(GeneratorError::new(format!(
            "the {name} generator is not supported by ferry yet"
        )));
    }
    let set = [
        (entry.list.is_some(), Which::List),
        (entry.clusters.is_some(), Which::Clusters),
        (entry.git.is_some(), Which::Git),
        (
            entry.cluster_decision_resource.is_some(),
            Which::ClusterDecisionResource,
        ),
        (entry.plugin.is_some(), Which::Plugin),
        (entry.scm_provider.is_some(), Which::ScmProvider),
        (entry.pull_request.is_some(), Which::PullRequest),
        (entry.matrix.is_some(), Which::Matrix),
        (entry.merge.is_some(), Which::Merge),
    ];
    let mut found = set.into_iter().filter(|(present, _)| *present);
    match (found.next(), found.next()) {
        (Some((_, which)), None) => Ok(which),
        (None, _) => Err(GeneratorError::new("a generators entry holds no generator")),
        (Some(_), Some(_)) => Err(GeneratorError::new(
            "a generators entry holds more than one generator",
        )),
    }
}

/// Refuses an ApplicationSet with an entry that holds no generator ferry knows, or a matrix's or
/// merge's entry that holds more than one (a top-level entry may hold several, each run on its
/// own as upstream does).
pub fn check_entries(entries: &[ApplicationSetGenerator]) -> Result<(), GeneratorError> {
    entries
        .iter()
        .flat_map(crate::generate::split)
        .try_for_each(|entry| check_entry(&entry))
}

fn check_entry(entry: &ApplicationSetGenerator) -> Result<(), GeneratorError> {
    which(entry)?;
    let nested = entry
        .matrix
        .iter()
        .flat_map(|m| &m.generators)
        .chain(entry.merge.iter().flat_map(|m| &m.generators));
    for child in nested {
        check_entry(child)?;
    }
    Ok(())
}

/// How long until the entry should be generated again (`None`: only on changes): the git and
/// cluster-decision-resource generators' `requeueAfterSeconds` (3 minutes by default), the
/// plugin's, SCM provider's and pull request's (30 minutes by default), the shortest of a
/// matrix's or merge's.
pub fn requeue_after(entry: &ApplicationSetGenerator) -> Option<Duration> {
    let seconds = |s: Option<i64>, default: Duration| {
        s.map_or(default, |s| Duration::from_secs(s.max(0) as u64))
    };
    if let Some(duck) = &entry.cluster_decision_resource {
        return Some(seconds(duck.requeue_after_seconds, DEFAULT_REQUEUE_AFTER));
    }
    if let Some(plugin) = &entry.plugin {
        return Some(seconds(
            plugin.requeue_after_seconds,
            DEFAULT_PLUGIN_REQUEUE_AFTER,
        ));
    }
    if let Some(scm) = &entry.scm_provider {
        return Some(seconds(
            scm.requeue_after_seconds,
            scm_provider::DEFAULT_REQUEUE_AFTER,
        ));
    }
    if let Some(pull) = &entry.pull_request {
        return Some(seconds(
            pull.requeue_after_seconds,
            pull_request::DEFAULT_REQUEUE_AFTER,
        ));
    }
    if let Some(git) = &entry.git {
        return Some(match git.requeue_after_seconds {
            Some(seconds) => Duration::from_secs(seconds.max(0) as u64),
            None => DEFAULT_REQUEUE_AFTER,
        });
    }
    let children = match (&entry.matrix, &entry.merge) {
        (Some(matrix), _) => &matrix.generators,
        (_, Some(merge)) => &merge.generators,
        _ => return None,
    };
    children
        .iter()
        .filter_map(requeue_after)
        .filter(|d| !d.is_zero())
        .min()
}

/// The namespace of the ApplicationSet, where its generators' Secrets are read (the control
/// namespace for one not yet stored).
pub(crate) fn appset_namespace(appset: &ApplicationSet, kube: Option<&Kube>) -> String {
    appset
        .metadata
        .namespace
        .clone()
        .or_else(|| kube.map(|k| k.namespace.clone()))
        .unwrap_or_default()
}

pub(crate) fn label_selector(selector: &LabelSelector) -> Result<Selector, GeneratorError> {
    Selector::try_from(selector.clone())
        .map_err(|e| GeneratorError::new(format!("error parsing label selector: {e}")))
}

/// The entry with `outer` substituted into its strings. A `values` entry naming a parameter
/// `outer` lacks is kept for the entry's own parameters to fill in, as in Argo CD.
fn interpolate(
    entry: &ApplicationSetGenerator,
    outer: &Params,
    renderer: &Renderer,
) -> Result<ApplicationSetGenerator, GeneratorError> {
    let json = serde_json::to_value(entry).map_err(|e| GeneratorError::new(e.to_string()))?;
    let mut strict = *renderer;
    strict.go_options.missing_key_error = true;
    let rendered = interpolate_value(&json, outer, renderer, &strict)?;
    serde_json::from_value(rendered)
        .map_err(|e| GeneratorError::new(format!("failed to replace parameters in generator: {e}")))
}

fn interpolate_value(
    value: &Value,
    outer: &Params,
    renderer: &Renderer,
    strict: &Renderer,
) -> Result<Value, GeneratorError> {
    let Value::Object(map) = value else {
        return Ok(renderer.render_value(value, outer)?);
    };
    let mut out = serde_json::Map::new();
    for (key, item) in map {
        let rendered = match (key.as_str(), item) {
            ("values", Value::Object(values)) => {
                let mut resolved = serde_json::Map::new();
                for (k, v) in values {
                    let text = v.as_str().unwrap_or_default();
                    let value = match strict.replace(text, outer) {
                        Ok(value) => value,
                        Err(_) if renderer.go_template => text.to_string(),
                        Err(e) => return Err(e.into()),
                    };
                    resolved.insert(k.clone(), Value::String(value));
                }
                Value::Object(resolved)
            }
            _ => interpolate_value(item, outer, renderer, strict)?,
        };
        out.insert(renderer.replace(key, outer)?, rendered);
    }
    Ok(Value::Object(out))
}

/// `values` rendered with the set's parameters and added as `values.KEY` (fasttemplate) or the
/// `values` map (Go templates).
pub(crate) fn append_values(
    values: &BTreeMap<String, String>,
    params: &mut Params,
    go_template: bool,
) -> Result<(), GeneratorError> {
    if values.is_empty() {
        return Ok(());
    }
    let renderer = Renderer {
        go_template,
        ..Default::default()
    };
    let mut rendered = serde_json::Map::new();
    for (key, value) in values {
        rendered.insert(key.clone(), Value::String(renderer.replace(value, params)?));
    }
    if go_template {
        params.insert("values".into(), Value::Object(rendered));
    } else {
        for (key, value) in rendered {
            params.insert(format!("values.{key}"), value);
        }
    }
    Ok(())
}

/// The entry's template over the ApplicationSet's, as Argo CD merges them (mergo): the entry's
/// non-empty fields win, maps are merged key by key.
fn merge_templates(
    own: Option<&ApplicationSetTemplate>,
    base: &ApplicationSetTemplate,
) -> Result<ApplicationSetTemplate, GeneratorError> {
    let Some(own) = own else {
        return Ok(base.clone());
    };
    let to_json = |t: &ApplicationSetTemplate| {
        serde_json::to_value(t).map_err(|e| GeneratorError::new(e.to_string()))
    };
    let mut merged = to_json(own)?;
    fill_empty(&mut merged, &to_json(base)?);
    serde_json::from_value(merged).map_err(|e| GeneratorError::new(e.to_string()))
}

fn fill_empty(dest: &mut Value, src: &Value) {
    match (dest, src) {
        (Value::Object(dest), Value::Object(src)) => {
            for (key, value) in src {
                match dest.get_mut(key) {
                    Some(existing) if !is_empty(existing) => fill_empty(existing, value),
                    _ => {
                        dest.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (dest, src) if is_empty(dest) => *dest = src.clone(),
        _ => {}
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_git::{Credentials, RepoCache};

    pub(super) fn appset(yaml: &str) -> ApplicationSet {
        serde_yaml::from_str(yaml).unwrap()
    }

    pub(super) async fn generate(set: &ApplicationSet) -> Result<Vec<Params>, GeneratorError> {
        let dir = tempfile::tempdir().unwrap();
        let git = GitSource {
            cache: RepoCache::new(dir.path(), Credentials::new()),
            max_checkout_bytes: None,
        };
        let sources = Sources {
            git: &git,
            cluster_secrets: &[],
            kube: None,
            scm: &ScmSettings::default(),
        };
        let mut out = Vec::new();
        for entry in &set.spec.generators {
            let generated =
                transform(entry, &set.spec.template, set, &Params::new(), &sources, 0).await?;
            out.extend(generated.params);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn selectors_filter_parameter_sets() {
        let set = appset(
            "spec:
  generators:
  - list:
      elements:
      - {cluster: dev, env: staging}
      - {cluster: prod, env: production}
    selector:
      matchLabels: {env: production}
  template: {metadata: {name: '{{cluster}}'}, spec: {}}
",
        );
        let params = generate(&set).await.unwrap();
        assert_eq!(params.len(), 1);
        assert_eq!(params[0]["cluster"], "prod");
    }

    #[tokio::test]
    async fn unsupported_generators_are_named() {
        let set = appset("spec: {generators: [{scmProviderX: {}}], template: {}}");
        assert!(check_entries(&set.spec.generators).is_err());
        let err = generate(&set).await.unwrap_err().to_string();
        assert_eq!(
            err,
            "the scmProviderX generator is not supported by ferry yet"
        );
        let set = appset("spec: {generators: [{}], template: {}}");
        assert!(generate(&set).await.is_err());
    }

    #[test]
    fn generator_templates_override_the_appsets() {
        let base: ApplicationSetTemplate = serde_yaml::from_str(
            "metadata: {name: base, labels: {a: '1'}}
spec: {project: default, source: {path: x, repoURL: r}}",
        )
        .unwrap();
        let own: ApplicationSetTemplate = serde_yaml::from_str(
            "metadata: {labels: {b: '2'}}
spec: {source: {path: override}}",
        )
        .unwrap();
        let merged = merge_templates(Some(&own), &base).unwrap();
        assert_eq!(merged.metadata.name, "base");
        assert_eq!(merged.metadata.labels.len(), 2);
        assert_eq!(merged.spec["source"]["path"], "override");
        assert_eq!(merged.spec["source"]["repoURL"], "r");
        assert_eq!(merged.spec["project"], "default");
    }

    #[test]
    fn requeue_after_is_the_shortest_git_interval() {
        let set = appset(
            "spec:
  generators:
  - list: {elements: []}
  - git: {repoURL: r, revision: HEAD, directories: [{path: '*'}]}
  - matrix:
      generators:
      - git: {repoURL: r, revision: HEAD, requeueAfterSeconds: 30, directories: [{path: '*'}]}
      - list: {elements: []}
  template: {}
",
        );
        let intervals: Vec<_> = set.spec.generators.iter().map(requeue_after).collect();
        assert_eq!(
            intervals,
            [
                None,
                Some(DEFAULT_REQUEUE_AFTER),
                Some(Duration::from_secs(30))
            ]
        );
    }
}
