//! Plain manifests (one or more YAML documents): set the image of every container and init
//! container whose image is the named one (compared by normalized name, so `nginx` matches
//! `docker.io/library/nginx:1.25`), wherever the pod template sits (Pod, Deployment, CronJob,
//! custom resources embedding pod specs...). As kustomize's image transformer: a new name
//! replaces the name; a new tag and/or digest replace both tag and digest; neither keeps them.

use yaml_edit::{Mapping, YamlNode};

use crate::edit::{Change, EditError, Edited};
use crate::kustomization::{KustomizeImage, finish};
use crate::reference::ImageRef;
use crate::yaml;

/// The lists whose items are containers.
const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// The images of the containers `update` applies to, as written (for reading a current tag).
pub fn images(text: &str, name: &str) -> Result<Vec<ImageRef>, EditError> {
    let target = ImageRef::parse(name)?;
    let file = yaml::parse(text)?;
    let mut found = Vec::new();
    for document in file.documents() {
        if let Some(root) = document.as_mapping() {
            visit_containers(&root, &mut |_, container| {
                if let Some(image) = container_image(container)
                    && image.same_image(&target)
                {
                    found.push(image);
                }
            });
        }
    }
    Ok(found)
}

/// Set the image of the matching containers of every document (see the module's documentation).
pub fn set_image(text: &str, update: &KustomizeImage) -> Result<Edited, EditError> {
    let target = ImageRef::parse(&update.name)?;
    let file = yaml::parse(text)?;
    let mut changes = Vec::new();
    let mut failure = None;
    for document in file.documents() {
        let Some(root) = document.as_mapping() else {
            continue;
        };
        let object = object_name(&root);
        visit_containers(&root, &mut |list, container| {
            let Some(current) = container_image(container) else {
                return;
            };
            if !current.same_image(&target) || failure.is_some() {
                return;
            }
            let name = update.new_name.as_deref().unwrap_or(current.name());
            let (tag, digest) = if update.new_tag.is_some() || update.digest.is_some() {
                (update.new_tag.as_deref(), update.digest.as_deref())
            } else {
                (current.tag(), current.digest())
            };
            let new = match ImageRef::with_parts(name, tag, digest) {
                Ok(new) => new.to_string(),
                Err(e) => return failure = Some(e.into()),
            };
            if let Some(old) = yaml::set_string(container, "image", &new) {
                let container_name = yaml::get_string(container, "name").unwrap_or_default();
                changes.push(Change {
                    location: format!("{object}: {list}[{container_name}].image"),
                    old,
                    new: Some(new),
                });
            }
        });
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(finish(text, file.to_string(), changes))
}

/// `Kind/name` of a document, for messages.
fn object_name(root: &Mapping) -> String {
    let kind = yaml::get_string(root, "kind").unwrap_or_else(|| "object".to_owned());
    let name = root
        .get_mapping("metadata")
        .and_then(|m| yaml::get_string(&m, "name"))
        .unwrap_or_default();
    format!("{kind}/{name}")
}

fn container_image(container: &Mapping) -> Option<ImageRef> {
    ImageRef::parse(&yaml::get_string(container, "image")?).ok()
}

/// Call `f` with every container mapping under `mapping`, at any depth.
fn visit_containers(mapping: &Mapping, f: &mut impl FnMut(&str, &Mapping)) {
    for (key, value) in mapping.iter() {
        let key = key.as_scalar().map(|k| k.as_string()).unwrap_or_default();
        match (&value, CONTAINER_LISTS.contains(&key.as_str())) {
            (YamlNode::Sequence(list), true) => {
                for item in list.values() {
                    if let Some(container) = item.as_mapping() {
                        f(&key, container);
                    }
                }
            }
            _ => visit(&value, f),
        }
    }
}

fn visit(node: &YamlNode, f: &mut impl FnMut(&str, &Mapping)) {
    match node {
        YamlNode::Mapping(mapping) => visit_containers(mapping, f),
        YamlNode::Sequence(list) => list.values().for_each(|item| visit(&item, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFESTS: &str = "\
# web and its job
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      initContainers:
        - name: migrate
          image: registry.example.com/web:1.0.0 # same image
      containers:
        - name: web
          image: \"registry.example.com/web:1.0.0\"
        - name: proxy
          image: nginx:1.25
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: report
            image: registry.example.com/web@sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3
";

    fn update(arg: &str) -> KustomizeImage {
        KustomizeImage::parse_arg(arg).unwrap()
    }

    #[test]
    fn every_matching_container_of_every_document_changes_and_nothing_else() {
        let edited = set_image(MANIFESTS, &update("registry.example.com/web:1.1.0")).unwrap();
        let expected = MANIFESTS.replace("web:1.0.0", "web:1.1.0").replace(
            "web@sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3",
            "web:1.1.0",
        );
        assert_eq!(edited.text, expected);
        let changes: Vec<String> = edited.changes.iter().map(|c| c.location.clone()).collect();
        assert_eq!(
            changes,
            [
                "Deployment/web: initContainers[migrate].image",
                "Deployment/web: containers[web].image",
                "CronJob/report: containers[report].image"
            ]
        );
        assert!(
            !set_image(&edited.text, &update("registry.example.com/web:1.1.0"))
                .unwrap()
                .changed()
        );
    }

    #[test]
    fn names_match_after_normalization_and_may_be_replaced() {
        let edited = set_image(MANIFESTS, &update("docker.io/library/nginx:1.27")).unwrap();
        assert!(edited.text.contains("image: nginx:1.27\n"));
        assert_eq!(edited.changes.len(), 1);
        let edited = set_image(MANIFESTS, &update("nginx=ghcr.io/me/nginx")).unwrap();
        assert!(edited.text.contains("image: ghcr.io/me/nginx:1.25\n"));
        assert!(!set_image(MANIFESTS, &update("redis:7")).unwrap().changed());
        assert_eq!(images(MANIFESTS, "nginx").unwrap()[0].tag(), Some("1.25"));
    }
}
