//! `.argocd-source-<app>.yaml`, the parameter override file Argo CD's repo server merges into
//! an app's source and the Argo CD Image Updater's default git write-back target: Helm
//! `helm.parameters` (`name`, `value`, `forceString: true` as the Image Updater writes them) or
//! `kustomize.images` (Argo CD's `[name=]newname[:tag][@digest]` strings). Entries are matched
//! as upstream does (parameters by name; images by image name), changed in place, and new ones
//! are added (parameters where the Image Updater's sort by name puts them); other entries,
//! comments and formatting are kept.

use yaml_edit::{Mapping, ScalarValue, Sequence};

use crate::edit::{Change, EditError, Edited};
use crate::kustomization::{KustomizeImage, finish};
use crate::reference::ImageRef;
use crate::yaml;

/// The file name for an app: `.argocd-source-<app>.yaml`, or `.argocd-source-<ns>_<app>.yaml`
/// for an app outside the Argo CD namespace (as the Image Updater names it).
pub fn file_name(app: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(namespace) => format!(".argocd-source-{namespace}_{app}.yaml"),
        None => format!(".argocd-source-{app}.yaml"),
    }
}

/// One Helm parameter override.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelmParameter {
    pub name: String,
    pub value: String,
}

/// Set `helm.parameters` entries (each with `forceString: true`).
pub fn set_helm_parameters(text: &str, parameters: &[HelmParameter]) -> Result<Edited, EditError> {
    let file = yaml::parse(text)?;
    let list = section_list(&file, text, "helm", "parameters")?;
    let mut changes = Vec::new();
    for parameter in parameters {
        let location = |field: &str| format!("helm.parameters[{}].{field}", parameter.name);
        let names: Vec<Option<String>> = list
            .values()
            .map(|item| item.as_mapping().and_then(|m| yaml::get_string(m, "name")))
            .collect();
        let entry = match names
            .iter()
            .position(|n| n.as_deref() == Some(&parameter.name))
        {
            Some(at) => list.get(at).and_then(|item| item.as_mapping().cloned()),
            None => {
                let at = names
                    .iter()
                    .position(|n| n.as_deref().is_some_and(|n| n > parameter.name.as_str()))
                    .unwrap_or(names.len());
                list.insert(at, Mapping::new_pending_block());
                let entry = list.get(at).and_then(|item| item.as_mapping().cloned());
                if let Some(entry) = &entry {
                    entry.set("name", ScalarValue::string(parameter.name.as_str()));
                }
                entry
            }
        };
        let entry = entry.ok_or_else(|| {
            EditError::shape(location("name"), "a parameter entry is not a mapping")
        })?;
        if let Some(old) = yaml::set_string(&entry, "value", &parameter.value) {
            changes.push(Change {
                location: location("value"),
                old,
                new: Some(parameter.value.clone()),
            });
        }
        if entry.get("forceString").and_then(|v| v.to_bool()) != Some(true) {
            entry.set("forceString", true);
        }
    }
    Ok(finish(text, file.to_string(), changes))
}

/// Set the `kustomize.images` entry for `image.name` to `image`.
pub fn set_kustomize_image(text: &str, image: &KustomizeImage) -> Result<Edited, EditError> {
    let target = ImageRef::parse(&image.name)?;
    let new = image.to_argocd_string();
    let file = yaml::parse(text)?;
    let list = section_list(&file, text, "kustomize", "images")?;
    let position = list.values().position(|item| {
        yaml::scalar_string(&item)
            .and_then(|entry| argocd_image_name(&entry))
            .is_some_and(|name| name.same_image(&target))
    });
    let location = format!("kustomize.images[{}]", image.name);
    let change = match position {
        Some(at) => {
            let old = list.get(at).as_ref().and_then(yaml::scalar_string);
            (old.as_deref() != Some(new.as_str())).then(|| {
                list.set(at, ScalarValue::string(new.as_str()));
                old
            })
        }
        None => {
            list.push(ScalarValue::string(new.as_str()));
            Some(None)
        }
    };
    let changes = change
        .map(|old| Change {
            location,
            old,
            new: Some(new),
        })
        .into_iter()
        .collect();
    Ok(finish(text, file.to_string(), changes))
}

/// The image an Argo CD kustomize image string overrides: the part before `=`, else its name.
fn argocd_image_name(entry: &str) -> Option<ImageRef> {
    let name = match entry.split_once('=') {
        Some((name, _)) => name,
        None => entry,
    };
    ImageRef::parse(name).ok()
}

/// The list at `section.key`, made (block style) when missing.
fn section_list(
    file: &yaml_edit::YamlFile,
    text: &str,
    section: &str,
    key: &str,
) -> Result<Sequence, EditError> {
    let document = file.ensure_document();
    let root = match document.as_mapping() {
        Some(root) => root,
        None if text.trim().is_empty() => {
            document.set(section, Mapping::new_pending_block());
            document.as_mapping().expect("a mapping was just made")
        }
        None => return Err(EditError::shape(section, "the file is not a mapping")),
    };
    let path = format!("{section}.{key}");
    let section_map = match root.get(section) {
        Some(node) => node
            .as_mapping()
            .cloned()
            .ok_or_else(|| EditError::shape(section, "is not a mapping"))?,
        None => {
            root.set(section, Mapping::new_pending_block());
            root.get_mapping(section).expect("a mapping was just set")
        }
    };
    match section_map.get(key) {
        Some(node) => node
            .as_sequence()
            .cloned()
            .ok_or_else(|| EditError::shape(path, "is not a list")),
        None => {
            section_map.set(key, Sequence::new_pending_block());
            Ok(section_map
                .get_sequence(key)
                .expect("a sequence was just set"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(name: &str, value: &str) -> HelmParameter {
        HelmParameter {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn helm_parameters_are_set_in_place_or_added_in_name_order() {
        let edited = set_helm_parameters("", &[param("image.tag", "1.0.0")]).unwrap();
        let reread: serde_yaml::Value = serde_yaml::from_str(&edited.text).unwrap();
        assert_eq!(reread["helm"]["parameters"][0]["name"], "image.tag");
        assert_eq!(reread["helm"]["parameters"][0]["value"], "1.0.0");
        assert_eq!(reread["helm"]["parameters"][0]["forceString"], true);

        let text = "# written by the image updater\nhelm:\n  parameters:\n  - name: image.name\n    value: r.io/web\n    forceString: true\n  - name: z\n    value: \"1\"\n";
        let edited = set_helm_parameters(
            text,
            &[param("image.name", "r.io/web"), param("image.tag", "1.2")],
        )
        .unwrap();
        assert_eq!(
            edited.text,
            "# written by the image updater\nhelm:\n  parameters:\n  - name: image.name\n    value: r.io/web\n    forceString: true\n  - name: image.tag\n    value: '1.2'\n    forceString: true\n  - name: z\n    value: \"1\"\n"
        );
        assert_eq!(edited.changes.len(), 1);
        let again = set_helm_parameters(&edited.text, &[param("image.tag", "1.2")]).unwrap();
        assert!(!again.changed());
    }

    #[test]
    fn kustomize_images_are_matched_by_image_name() {
        let image = KustomizeImage::parse_arg("nginx:1.27").unwrap();
        let edited = set_kustomize_image("", &image).unwrap();
        let reread: serde_yaml::Value = serde_yaml::from_str(&edited.text).unwrap();
        assert_eq!(reread["kustomize"]["images"][0], "nginx:1.27");

        let text =
            "kustomize:\n  images:\n  - docker.io/library/nginx:1.25 # proxy\n  - web=r.io/web:1\n";
        let edited = set_kustomize_image(text, &image).unwrap();
        assert_eq!(
            edited.text,
            "kustomize:\n  images:\n  - nginx:1.27 # proxy\n  - web=r.io/web:1\n"
        );
        let web = KustomizeImage::parse_arg("web=r.io/web:2").unwrap();
        let edited = set_kustomize_image(&edited.text, &web).unwrap();
        assert!(edited.text.ends_with("  - web=r.io/web:2\n"));
        assert!(!set_kustomize_image(&edited.text, &web).unwrap().changed());
        assert!(set_kustomize_image("kustomize: 1\n", &web).is_err());
    }

    #[test]
    fn file_names_follow_the_image_updater() {
        assert_eq!(file_name("web", None), ".argocd-source-web.yaml");
        assert_eq!(
            file_name("web", Some("team")),
            ".argocd-source-team_web.yaml"
        );
    }
}
