//! The `argocd` write-back: a new image in the Application's own spec, as upstream writes it —
//! Helm parameters (`image.name` / `image.tag`, or the names configured, or one `image-spec`
//! parameter; `forceString: true`) or a Kustomize image override (`[name=]image:tag`) — in the
//! source that renders with Helm or Kustomize (of several, the first such).

use ferry_types::Application;
use ferry_types::source::{
    ApplicationSource, ApplicationSourceHelm, ApplicationSourceKustomize, HelmParameter, SourceType,
};

use crate::config::{HelmNames, ManagedImage};

/// How the source is rendered, for where the image goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Helm,
    Kustomize,
}

/// The source an update goes to: its index among the app's sources, and its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub index: usize,
    pub kind: Kind,
}

fn kind_of(source_type: SourceType) -> Option<Kind> {
    match source_type {
        SourceType::Helm => Some(Kind::Helm),
        SourceType::Kustomize => Some(Kind::Kustomize),
        SourceType::Directory | SourceType::Plugin => None,
    }
}

/// What the source's spec says it is (before the controller reported its type).
fn declared_kind(source: &ApplicationSource) -> Option<Kind> {
    if source.is_chart() || source.helm.is_some() {
        Some(Kind::Helm)
    } else if source.kustomize.is_some() {
        Some(Kind::Kustomize)
    } else {
        None
    }
}

/// Finds the source to update; `forced` when the write-back target says the kind (a
/// kustomization or a Helm values file).
pub fn target(app: &Application, forced: Option<Kind>) -> Result<Target, String> {
    let sources = app.sources();
    if sources.is_empty() {
        return Err("the application has no source".into());
    }
    let status = app.status.as_ref();
    let reported: Vec<SourceType> = match status {
        Some(s) if app.is_multi_source() => s.source_types.clone(),
        Some(s) => s.source_type.into_iter().collect(),
        None => Vec::new(),
    };
    let kind = forced
        .or_else(|| reported.iter().copied().find_map(kind_of))
        .or_else(|| sources.iter().find_map(declared_kind))
        .ok_or_else(|| {
            "unsupported application type: only Helm and Kustomize sources take image updates"
                .to_string()
        })?;
    if !app.is_multi_source() {
        return Ok(Target { index: 0, kind });
    }
    let index = sources
        .iter()
        .position(|s| declared_kind(s) == Some(kind))
        .or_else(|| {
            (reported.len() == sources.len())
                .then(|| reported.iter().position(|t| kind_of(*t) == Some(kind)))
                .flatten()
        })
        .or_else(|| {
            sources
                .iter()
                .position(|s| s.helm.is_some() || s.kustomize.is_some() || s.plugin.is_some())
        })
        .unwrap_or(0);
    Ok(Target { index, kind })
}

fn source_mut(app: &mut Application, index: usize) -> Option<&mut ApplicationSource> {
    if app.is_multi_source() {
        app.spec.sources.get_mut(index)
    } else {
        app.spec.source.as_mut()
    }
}

/// The tag part as upstream writes it: `tag`, `tag@digest`, or `latest@digest` for a digest
/// without tag.
pub fn tag_with_digest(tag: Option<&str>, digest: Option<&str>) -> String {
    match (tag, digest) {
        (Some(tag), None) => tag.to_string(),
        (tag, Some(digest)) => format!("{}@{digest}", tag.unwrap_or("latest")),
        (None, None) => String::new(),
    }
}

/// `name:tag[@digest]`.
pub fn full_name(name: &str, tag: Option<&str>, digest: Option<&str>) -> String {
    let mut text = name.to_string();
    if let Some(tag) = tag {
        text = format!("{text}:{tag}");
    }
    if let Some(digest) = digest {
        text = format!("{text}@{digest}");
    }
    text
}

/// Sets the image's new tag (and digest) in the app's spec; false when it was already set.
pub fn set_image(
    app: &mut Application,
    target: Target,
    image: &ManagedImage,
    tag: Option<&str>,
    digest: Option<&str>,
) -> Result<bool, String> {
    let source = source_mut(app, target.index).ok_or("the application has no such source")?;
    let name = image.image.name();
    match target.kind {
        Kind::Helm => {
            let parameters = match &image.helm {
                HelmNames::Spec(spec) => vec![(spec.clone(), full_name(name, tag, digest))],
                HelmNames::NameAndTag {
                    name: name_param,
                    tag: tag_param,
                } => {
                    let mut parameters = vec![(name_param.clone(), name.to_string())];
                    let value = tag_with_digest(tag, digest);
                    if !value.is_empty() {
                        parameters.push((tag_param.clone(), value));
                    }
                    parameters
                }
            };
            let helm = source
                .helm
                .get_or_insert_with(ApplicationSourceHelm::default);
            let mut changed = false;
            for (name, value) in parameters {
                changed |= merge_parameter(&mut helm.parameters, &name, &value);
            }
            Ok(changed)
        }
        Kind::Kustomize => {
            let new_image = full_name(name, tag, digest);
            let entry = match &image.kustomize_name {
                Some(original) => format!("{original}={new_image}"),
                None => new_image,
            };
            let key = image.kustomize_name.as_deref().unwrap_or(name);
            let kustomize = source
                .kustomize
                .get_or_insert_with(ApplicationSourceKustomize::default);
            Ok(merge_kustomize_image(&mut kustomize.images, key, &entry))
        }
    }
}

fn merge_parameter(parameters: &mut Vec<HelmParameter>, name: &str, value: &str) -> bool {
    match parameters.iter_mut().find(|p| p.name == name) {
        Some(p) if p.value == value && p.force_string => false,
        Some(p) => {
            p.value = value.to_string();
            p.force_string = true;
            true
        }
        None => {
            parameters.push(HelmParameter {
                name: name.to_string(),
                value: value.to_string(),
                force_string: true,
                ..HelmParameter::default()
            });
            true
        }
    }
}

/// The image an Argo CD `kustomize.images` entry overrides: the part before `=`, or the image
/// name without tag and digest.
fn kustomize_entry_key(entry: &str) -> Option<ferry_image::ImageRef> {
    let key = entry.split_once('=').map_or(entry, |(key, _)| key);
    let parsed = ferry_image::ImageRef::parse(key).ok()?;
    ferry_image::ImageRef::parse(parsed.name()).ok()
}

fn merge_kustomize_image(images: &mut Vec<String>, key: &str, entry: &str) -> bool {
    let Ok(wanted) = ferry_image::ImageRef::parse(key) else {
        return false;
    };
    let position = images.iter().position(|existing| {
        kustomize_entry_key(existing).is_some_and(|found| found.same_image(&wanted))
    });
    match position {
        Some(at) if images[at] == entry => false,
        Some(at) => {
            images[at] = entry.to_string();
            true
        }
        None => {
            images.push(entry.to_string());
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_annotations;

    fn app(yaml: &str) -> Application {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn image(pairs: &[(&str, &str)]) -> ManagedImage {
        let annotations = pairs
            .iter()
            .map(|(k, v)| {
                (
                    format!("argocd-image-updater.argoproj.io/{k}"),
                    v.to_string(),
                )
            })
            .collect();
        from_annotations(&annotations)
            .unwrap()
            .unwrap()
            .images
            .remove(0)
    }

    #[test]
    fn helm_parameters_default_names_and_spec() {
        let mut helm = app("metadata: {name: a}
spec:
  source:
    repoURL: https://example.com/charts
    chart: app
    helm:
      parameters:
      - {name: image.tag, value: 1.0.0}
      - {name: replicas, value: '2'}
");
        let target = target(&helm, None).unwrap();
        assert_eq!(
            target,
            Target {
                index: 0,
                kind: Kind::Helm
            }
        );
        let nginx = image(&[("image-list", "nginx=nginx:1.x")]);
        assert!(set_image(&mut helm, target, &nginx, Some("1.27.3"), None).unwrap());
        let params = &helm
            .spec
            .source
            .as_ref()
            .unwrap()
            .helm
            .as_ref()
            .unwrap()
            .parameters;
        let pairs: Vec<_> = params
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str(), p.force_string))
            .collect();
        assert_eq!(
            pairs,
            [
                ("image.tag", "1.27.3", true),
                ("replicas", "2", false),
                ("image.name", "nginx", true)
            ]
        );
        // Again: nothing to change.
        assert!(!set_image(&mut helm, target, &nginx, Some("1.27.3"), None).unwrap());

        let spec = image(&[
            ("image-list", "web=ghcr.io/org/web"),
            ("web.helm.image-spec", "web.image"),
        ]);
        assert!(set_image(&mut helm, target, &spec, Some("latest"), Some("sha256:abc")).unwrap());
        let params = &helm
            .spec
            .source
            .as_ref()
            .unwrap()
            .helm
            .as_ref()
            .unwrap()
            .parameters;
        assert_eq!(params[3].name, "web.image");
        assert_eq!(params[3].value, "ghcr.io/org/web:latest@sha256:abc");
    }

    #[test]
    fn kustomize_images_are_replaced_or_added() {
        let mut kustomize = app("metadata: {name: a}
spec:
  source:
    repoURL: https://example.com/config.git
    path: overlays/prod
    kustomize:
      images: [other:1, docker.io/library/nginx:1.25.0]
status: {sourceType: Kustomize}
");
        let target = target(&kustomize, None).unwrap();
        let nginx = image(&[("image-list", "nginx=nginx")]);
        assert!(set_image(&mut kustomize, target, &nginx, Some("1.27.3"), None).unwrap());
        let images = |app: &Application| {
            app.spec
                .source
                .as_ref()
                .unwrap()
                .kustomize
                .as_ref()
                .unwrap()
                .images
                .clone()
        };
        assert_eq!(images(&kustomize), ["other:1", "nginx:1.27.3"]);
        // kustomize.image-name: the original name overridden by another image.
        let renamed = image(&[
            ("image-list", "argocd=ghcr.io/argoproj/argocd:latest"),
            ("argocd.kustomize.image-name", "quay.io/argoproj/argocd"),
            ("argocd.update-strategy", "digest"),
        ]);
        assert!(
            set_image(
                &mut kustomize,
                target,
                &renamed,
                Some("latest"),
                Some("sha256:1")
            )
            .unwrap()
        );
        assert_eq!(
            images(&kustomize)[2],
            "quay.io/argoproj/argocd=ghcr.io/argoproj/argocd:latest@sha256:1"
        );
    }

    #[test]
    fn multi_source_apps_update_their_helm_or_kustomize_source() {
        let multi = app("metadata: {name: a}
spec:
  sources:
  - {repoURL: https://example.com/values.git, ref: values}
  - repoURL: https://example.com/charts
    chart: app
    helm: {valueFiles: [$values/prod.yaml]}
status: {sourceTypes: [Directory, Helm]}
");
        assert_eq!(
            target(&multi, None).unwrap(),
            Target {
                index: 1,
                kind: Kind::Helm
            }
        );
        let directory = app("metadata: {name: a}
spec: {source: {repoURL: r, path: p}}
status: {sourceType: Directory}
");
        let err = target(&directory, None).unwrap_err();
        assert!(err.contains("only Helm and Kustomize"), "{err}");
        // A kustomization write-back target says the kind.
        assert_eq!(
            target(&directory, Some(Kind::Kustomize)).unwrap().kind,
            Kind::Kustomize
        );
    }
}
