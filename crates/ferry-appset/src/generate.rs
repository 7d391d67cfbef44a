//! An ApplicationSet's Applications: every generator's parameter sets rendered with their
//! template. Used by the controller and by `generate` previews alike.

use ferry_types::application_set::{ApplicationSetGenerator, reason};
use ferry_types::{Application, ApplicationSet};
use kube::ResourceExt;

use crate::generators::{Sources, transform};
use crate::params::Params;
use crate::template::Renderer;

/// Why no Applications could be generated, with the reason of Argo CD's condition.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateError {
    pub reason: &'static str,
    pub message: String,
}

impl std::fmt::Display for GenerateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The Applications the ApplicationSet asks for, in its namespace, in generator order. Any
/// generator or template error fails the whole generation, so a partial result can never
/// be mistaken for the complete one (and lead to deletions).
pub async fn applications(
    appset: &ApplicationSet,
    sources: &Sources<'_>,
) -> Result<Vec<Application>, GenerateError> {
    let render_error = |message: String| GenerateError {
        reason: reason::RENDER_TEMPLATE_PARAMS_ERROR,
        message,
    };
    let renderer = Renderer::new(appset.spec.go_template, &appset.spec.go_template_options)
        .map_err(|e| render_error(e.to_string()))?;
    let namespace = appset.namespace().unwrap_or_default();
    let mut out = Vec::new();
    for entry in appset.spec.generators.iter().flat_map(split) {
        let generated = transform(
            &entry,
            &appset.spec.template,
            appset,
            &Params::new(),
            sources,
            0,
        )
        .await
        .map_err(|e| GenerateError {
            reason: reason::APPLICATION_PARAMS_GENERATION_ERROR,
            message: e.to_string(),
        })?;
        for params in &generated.params {
            let app = renderer
                .application(
                    &generated.template,
                    params,
                    appset.spec.template_patch.as_deref(),
                    appset.preserve_resources_on_deletion(),
                    &namespace,
                )
                .map_err(|e| render_error(e.to_string()))?;
            out.push(app);
        }
    }
    Ok(out)
}

/// The generators an entry holds in upstream's order, as one entry each with the entry's
/// `selector`: upstream runs them all (an entry with one generator, or none, is itself).
pub fn split(entry: &ApplicationSetGenerator) -> Vec<ApplicationSetGenerator> {
    const ORDER: [&str; 9] = [
        "list",
        "clusters",
        "git",
        "scmProvider",
        "clusterDecisionResource",
        "pullRequest",
        "matrix",
        "merge",
        "plugin",
    ];
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(entry) else {
        return vec![entry.clone()];
    };
    let mut names: Vec<&String> = fields.keys().filter(|k| *k != "selector").collect();
    if names.len() < 2 {
        return vec![entry.clone()];
    }
    // Known generators in upstream's order, then any other key as written.
    names.sort_by_key(|name| ORDER.iter().position(|o| o == name).unwrap_or(ORDER.len()));
    names
        .into_iter()
        .filter_map(|name| {
            let mut one = serde_json::Map::new();
            one.insert(name.clone(), fields[name].clone());
            if let Some(selector) = fields.get("selector") {
                one.insert("selector".into(), selector.clone());
            }
            serde_json::from_value(serde_json::Value::Object(one)).ok()
        })
        .collect()
}

/// Names that are empty or repeated: the ApplicationSet is in error and nothing is applied.
pub fn validate_names(appset: &ApplicationSet, apps: &[Application]) -> Result<(), GenerateError> {
    let mut seen = std::collections::HashSet::new();
    for app in apps {
        let name = app.name_any();
        let message = if name.is_empty() {
            format!(
                "ApplicationSet {} contains an application with no name; a name must be set in \
                 the template's metadata.name or via a templatePatch",
                appset.name_any()
            )
        } else if !seen.insert(name.clone()) {
            format!(
                "ApplicationSet {} contains applications with duplicate name: {name}",
                appset.name_any()
            )
        } else {
            continue;
        };
        return Err(GenerateError {
            reason: reason::APPLICATION_VALIDATION_ERROR,
            message,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generators::GitSource;
    use ferry_git::{Credentials, RepoCache};

    async fn generate(yaml: &str) -> Result<Vec<Application>, GenerateError> {
        let appset: ApplicationSet = serde_yaml::from_str(yaml).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let git = GitSource {
            cache: RepoCache::new(dir.path(), Credentials::new()),
            max_checkout_bytes: None,
        };
        let sources = Sources {
            git: &git,
            cluster_secrets: &[],
            kube: None,
            scm: &crate::generators::ScmSettings::default(),
        };
        let apps = applications(&appset, &sources).await?;
        validate_names(&appset, &apps)?;
        Ok(apps)
    }

    /// Upstream's cluster example (Go template flavour): the local cluster only.
    #[tokio::test]
    async fn cluster_example_makes_one_app_per_cluster() {
        let apps = generate(
            "metadata: {name: guestbook, namespace: argocd}
spec:
  goTemplate: true
  goTemplateOptions: [missingkey=error]
  generators:
  - clusters: {}
  template:
    metadata: {name: '{{.name}}-guestbook'}
    spec:
      project: default
      source:
        repoURL: https://github.com/argoproj/argo-cd.git
        targetRevision: HEAD
        path: applicationset/examples/cluster/guestbook
      destination: {server: '{{.server}}', namespace: guestbook}
",
        )
        .await
        .unwrap();
        assert_eq!(apps.len(), 1);
        assert_eq!(apps[0].name_any(), "in-cluster-guestbook");
        assert_eq!(apps[0].namespace().as_deref(), Some("argocd"));
        assert_eq!(
            apps[0].spec.destination.server,
            "https://kubernetes.default.svc"
        );
    }

    /// An entry with two generators runs both, in upstream's order (list before clusters),
    /// each filtered by the entry's selector.
    #[tokio::test]
    async fn an_entry_with_two_generators_runs_both() {
        let apps = generate(
            "metadata: {name: s, namespace: argocd}
spec:
  generators:
  - clusters: {}
    list: {elements: [{name: a}, {name: b}]}
    selector: {matchExpressions: [{key: name, operator: NotIn, values: [b]}]}
  template:
    metadata: {name: 'app-{{name}}'}
    spec: {project: default, destination: {server: 'https://kubernetes.default.svc'}}
",
        )
        .await
        .unwrap();
        let names: Vec<_> = apps.iter().map(|a| a.name_any()).collect();
        assert_eq!(names, ["app-a", "app-in-cluster"]);
        let set: ApplicationSet = serde_yaml::from_str(
            "spec:
  generators:
  - {clusters: {}, list: {elements: []}}
  - matrix:
      generators:
      - {clusters: {}, list: {elements: []}}
      - list: {elements: []}
",
        )
        .unwrap();
        assert_eq!(
            crate::generators::check_entries(&set.spec.generators[..1]),
            Ok(())
        );
        let nested = crate::generators::check_entries(&set.spec.generators).unwrap_err();
        assert!(nested.to_string().contains("more than one"), "{nested}");
    }

    #[tokio::test]
    async fn template_errors_and_duplicates_name_their_cause() {
        let err = generate(
            "metadata: {name: s, namespace: argocd}
spec:
  goTemplate: true
  goTemplateOptions: [missingkey=error]
  generators: [{list: {elements: [{cluster: a}]}}]
  template: {metadata: {name: '{{.clster}}'}, spec: {}}
",
        )
        .await
        .unwrap_err();
        assert_eq!(err.reason, "RenderTemplateParamsError");
        assert!(err.message.contains("{{.clster}}"), "{}", err.message);

        let err = generate(
            "metadata: {name: s, namespace: argocd}
spec:
  generators: [{list: {elements: [{cluster: a}, {cluster: a}]}}]
  template: {metadata: {name: 'app-{{cluster}}'}, spec: {}}
",
        )
        .await
        .unwrap_err();
        assert_eq!(err.reason, "ApplicationValidationError");
        assert_eq!(
            err.message,
            "ApplicationSet s contains applications with duplicate name: app-a"
        );
    }
}
