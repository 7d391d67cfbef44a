//! Which Applications are managed, and by what: every `ImageUpdater` application reference
//! selects the Applications of its own namespace whose name matches its glob `namePattern` and
//! its `labelSelectors` (the first reference to select an app configures it); an Application
//! no reference selects is managed by its own `image-list` annotation, as before 1.x.

use std::collections::BTreeMap;

use ferry_types::Application;
use ferry_types::image_updater::ImageUpdater;
use globset::GlobBuilder;
use kube::core::{Selector, SelectorExt};

use crate::config::{AppConfig, ConfigError, from_annotations, from_image_updater};

/// Where an app's configuration comes from (for metrics and status).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    Annotations,
    /// `namespace/name` of the ImageUpdater.
    ImageUpdater {
        namespace: String,
        name: String,
    },
}

/// One managed app: what to do, or why its configuration is unusable.
#[derive(Debug)]
pub struct Managed {
    pub origin: Origin,
    pub config: Result<AppConfig, ConfigError>,
}

fn key(app: &Application) -> (String, String) {
    (
        app.metadata.namespace.clone().unwrap_or_default(),
        app.metadata.name.clone().unwrap_or_default(),
    )
}

/// The managed apps of `apps`, by (namespace, name).
pub fn managed(
    apps: &[Application],
    updaters: &[ImageUpdater],
) -> BTreeMap<(String, String), Managed> {
    let mut out = BTreeMap::new();
    for updater in updaters {
        let namespace = updater.metadata.namespace.clone().unwrap_or_default();
        let name = updater.metadata.name.clone().unwrap_or_default();
        let origin = Origin::ImageUpdater {
            namespace: namespace.clone(),
            name: name.clone(),
        };
        for (index, reference) in updater.spec.application_refs.iter().enumerate() {
            let path = format!("ImageUpdater {namespace}/{name} spec.applicationRefs[{index}]");
            let pattern = GlobBuilder::new(&reference.name_pattern)
                .literal_separator(false)
                .build()
                .map(|g| g.compile_matcher());
            let selector = reference
                .label_selectors
                .clone()
                .map(Selector::try_from)
                .transpose();
            let (pattern, selector) = match (pattern, selector) {
                (Ok(p), Ok(s)) => (p, s),
                (Err(err), _) => {
                    tracing::warn!("{path}.namePattern: {err}");
                    continue;
                }
                (_, Err(err)) => {
                    tracing::warn!("{path}.labelSelectors: {err}");
                    continue;
                }
            };
            for app in apps {
                let (app_ns, app_name) = key(app);
                if app_ns != namespace || !pattern.is_match(&app_name) {
                    continue;
                }
                let labels = app.metadata.labels.clone().unwrap_or_default();
                if selector.as_ref().is_some_and(|s| !s.matches(&labels)) {
                    continue;
                }
                if out.contains_key(&(app_ns.clone(), app_name.clone())) {
                    continue;
                }
                let config = if reference.use_annotations == Some(true) {
                    let annotations = app.metadata.annotations.clone().unwrap_or_default();
                    from_annotations(&annotations).unwrap_or_else(|| {
                        Err(ConfigError {
                            origin: format!("{path}.useAnnotations"),
                            message: format!(
                                "Application {app_name} has no {} annotation",
                                crate::config::IMAGE_LIST
                            ),
                        })
                    })
                } else {
                    from_image_updater(updater, index)
                };
                out.insert(
                    (app_ns, app_name),
                    Managed {
                        origin: origin.clone(),
                        config,
                    },
                );
            }
        }
    }
    for app in apps {
        let k = key(app);
        if out.contains_key(&k) {
            continue;
        }
        let annotations = app.metadata.annotations.clone().unwrap_or_default();
        if let Some(config) = from_annotations(&annotations) {
            out.insert(
                k,
                Managed {
                    origin: Origin::Annotations,
                    config,
                },
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(yaml: &str) -> Application {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn image_updaters_select_by_pattern_and_labels_then_annotations() {
        let apps = vec![
            app("metadata: {name: web-prod, namespace: argocd, labels: {env: prod}}\nspec: {}"),
            app("metadata: {name: web-dev, namespace: argocd, labels: {env: dev}}\nspec: {}"),
            app(
                "metadata: {name: legacy, namespace: argocd, annotations: {argocd-image-updater.argoproj.io/image-list: nginx}}\nspec: {}",
            ),
            app("metadata: {name: web-other, namespace: team}\nspec: {}"),
            app("metadata: {name: plain, namespace: argocd}\nspec: {}"),
        ];
        let updater: ImageUpdater = serde_yaml::from_str(
            r#"apiVersion: argocd-image-updater.argoproj.io/v1alpha1
kind: ImageUpdater
metadata: {name: iu, namespace: argocd}
spec:
  applicationRefs:
    - namePattern: "web-*"
      labelSelectors: {matchLabels: {env: prod}}
      images: [{alias: web, imageName: "ghcr.io/org/web:1.x"}]
"#,
        )
        .unwrap();
        let managed = managed(&apps, &[updater]);
        let names: Vec<_> = managed.keys().map(|(ns, n)| format!("{ns}/{n}")).collect();
        assert_eq!(names, ["argocd/legacy", "argocd/web-prod"]);
        assert_eq!(
            managed[&("argocd".into(), "web-prod".into())].origin,
            Origin::ImageUpdater {
                namespace: "argocd".into(),
                name: "iu".into()
            }
        );
        assert_eq!(
            managed[&("argocd".into(), "legacy".into())].origin,
            Origin::Annotations
        );
    }
}
