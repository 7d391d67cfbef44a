//! `kustomize edit set image`, on the kustomization's text: the `images:` entry named by the
//! argument gets exactly the argument's `newName` / `newTag` / `digest` (fields it does not
//! give are removed, as kustomize does), or a new entry is added. Unlike kustomize, which
//! rewrites the whole file sorted, only that entry is touched: comments, order and the other
//! entries stay; a new entry goes where kustomize's sort by name would put it among entries
//! that are themselves sorted.
//!
//! Argument grammar (kustomize's): `<image>=<newimage>[:<newtag>][@<digest>]`,
//! `<image>:<newtag>[@<digest>]`, `<image>@<digest>`. kustomize's `*` (keep the file's value)
//! is not supported.

use std::path::{Path, PathBuf};

use yaml_edit::{Mapping, ScalarValue, Sequence};

use crate::edit::{Change, EditError, Edited};
use crate::reference::ImageRef;
use crate::yaml;

/// The file names kustomize looks for in a directory, in its order.
pub const FILE_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The kustomization file of `dir`, if it has one.
pub fn find(dir: &Path) -> Option<PathBuf> {
    FILE_NAMES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
}

/// One `images:` entry of a kustomization (Kustomize's `types.Image`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KustomizeImage {
    pub name: String,
    pub new_name: Option<String>,
    pub new_tag: Option<String>,
    pub digest: Option<String>,
}

impl KustomizeImage {
    /// Parse a `kustomize edit set image` argument. The new image must be a valid reference.
    pub fn parse_arg(arg: &str) -> Result<Self, EditError> {
        if arg.contains('*') {
            return Err(EditError::Invalid(format!(
                "image {arg:?}: `*` (keep the file's value) is not supported; give the value"
            )));
        }
        let (key, value) = match arg.split_once('=') {
            Some((key, value)) => (Some(key), value),
            None => (None, arg),
        };
        let image = ImageRef::parse(value)?;
        if key.is_none() && image.tag().is_none() && image.digest().is_none() {
            return Err(EditError::Invalid(format!(
                "image {arg:?} sets nothing: use <image>=<newimage>[:<newtag>][@<digest>], \
                 <image>:<newtag>[@<digest>] or <image>@<digest>"
            )));
        }
        if let Some(key) = key {
            ImageRef::parse(key)?;
        }
        Ok(KustomizeImage {
            name: key.unwrap_or(image.name()).to_owned(),
            new_name: key.map(|_| image.name().to_owned()),
            new_tag: image.tag().map(str::to_owned),
            digest: image.digest().map(str::to_owned),
        })
    }

    /// The `[name=]newname:tag@digest` form of Argo CD's `kustomize.images`.
    pub fn to_argocd_string(&self) -> String {
        let mut text = match &self.new_name {
            Some(new_name) => format!("{}={new_name}", self.name),
            None => self.name.clone(),
        };
        if let Some(tag) = &self.new_tag {
            text = format!("{text}:{tag}");
        }
        if let Some(digest) = &self.digest {
            text = format!("{text}@{digest}");
        }
        text
    }

    fn fields(&self) -> [(&'static str, Option<&str>); 3] {
        [
            ("newName", self.new_name.as_deref()),
            ("newTag", self.new_tag.as_deref()),
            ("digest", self.digest.as_deref()),
        ]
    }
}

/// The `images:` entries of a kustomization.
pub fn images(text: &str) -> Result<Vec<KustomizeImage>, EditError> {
    let file = yaml::parse(text)?;
    let Some(root) = file.document().and_then(|d| d.as_mapping()) else {
        return Ok(Vec::new());
    };
    let Some(list) = root.get_sequence("images") else {
        return Ok(Vec::new());
    };
    Ok(list
        .values()
        .filter_map(|item| item.as_mapping().cloned())
        .map(|entry| KustomizeImage {
            name: yaml::get_string(&entry, "name").unwrap_or_default(),
            new_name: yaml::get_string(&entry, "newName"),
            new_tag: yaml::get_string(&entry, "newTag"),
            digest: yaml::get_string(&entry, "digest"),
        })
        .collect())
}

/// `kustomize edit set image` with `image` (see the module's documentation).
pub fn set_image(text: &str, image: &KustomizeImage) -> Result<Edited, EditError> {
    let file = yaml::parse(text)?;
    let document = file.ensure_document();
    let root = match document.as_mapping() {
        Some(root) => root,
        None if text.trim().is_empty() => {
            document.set("images", Sequence::new_pending_block());
            document.as_mapping().expect("a mapping was just made")
        }
        None => return Err(EditError::shape("kustomization", "is not a mapping")),
    };
    let list = match root.get("images") {
        Some(node) => match node.as_sequence() {
            Some(list) => list.clone(),
            None if yaml::scalar_string(&node).is_none() && node.is_scalar() => {
                root.set("images", Sequence::new_pending_block());
                root.get_sequence("images")
                    .expect("a sequence was just set")
            }
            None => return Err(EditError::shape("images", "is not a list")),
        },
        None => {
            root.set("images", Sequence::new_pending_block());
            root.get_sequence("images")
                .expect("a sequence was just set")
        }
    };
    let location = |field: &str| format!("images[{}].{field}", image.name);
    let mut changes = Vec::new();
    let existing = list
        .values()
        .filter_map(|item| item.as_mapping().cloned())
        .find(|entry| yaml::get_string(entry, "name").as_deref() == Some(image.name.as_str()));
    let entry = match existing {
        Some(entry) => entry,
        None => {
            let names: Vec<String> = list
                .values()
                .map(|item| {
                    item.as_mapping()
                        .and_then(|m| yaml::get_string(m, "name"))
                        .unwrap_or_default()
                })
                .collect();
            let at = names
                .iter()
                .position(|name| name.as_str() > image.name.as_str())
                .unwrap_or(names.len());
            list.insert(at, Mapping::new_pending_block());
            let entry = list
                .get(at)
                .and_then(|item| item.as_mapping().cloned())
                .expect("a mapping was just inserted");
            entry.set("name", ScalarValue::string(image.name.as_str()));
            changes.push(Change {
                location: location("name"),
                old: None,
                new: Some(image.name.clone()),
            });
            entry
        }
    };
    for (field, value) in image.fields() {
        let old = match value {
            Some(value) => yaml::set_string(&entry, field, value),
            None => yaml::remove(&entry, field),
        };
        if let Some(old) = old {
            changes.push(Change {
                location: location(field),
                old,
                new: value.map(str::to_owned),
            });
        }
    }
    Ok(finish(text, file.to_string(), changes))
}

/// The edited text, or the input itself when nothing changed (not even a re-serialization).
pub(crate) fn finish(input: &str, output: String, changes: Vec<Change>) -> Edited {
    if changes.is_empty() {
        Edited {
            text: input.to_owned(),
            changes,
        }
    } else {
        Edited {
            text: output,
            changes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(text: &str) -> KustomizeImage {
        KustomizeImage::parse_arg(text).unwrap()
    }

    #[test]
    fn arguments_follow_kustomize_grammar() {
        assert_eq!(
            arg("postgres=eu.gcr.io/p/postgres:15"),
            KustomizeImage {
                name: "postgres".into(),
                new_name: Some("eu.gcr.io/p/postgres".into()),
                new_tag: Some("15".into()),
                digest: None,
            }
        );
        assert_eq!(arg("node:8.15.0").new_tag.as_deref(), Some("8.15.0"));
        assert_eq!(arg("mysql=mariadb").new_name.as_deref(), Some("mariadb"));
        let d = "sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3";
        assert_eq!(arg(&format!("alpine@{d}")).digest.as_deref(), Some(d));
        assert_eq!(
            arg(&format!("a=r.io/b:1@{d}")).to_argocd_string(),
            format!("a=r.io/b:1@{d}")
        );
        for bad in ["nginx", "nginx:*", "Bad=x:1", "x=Bad:1", "nginx:"] {
            assert!(KustomizeImage::parse_arg(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_existing_entry_is_replaced_in_place_keeping_comments() {
        let text = "\
# app overlay
resources:
  - deployment.yaml # the app
images:
  - name: web # front end
    newName: old.io/web
    newTag: \"1.0.0\" # pinned
  - name: worker
    newTag: '2'
";
        let edited = set_image(text, &arg("web:1.1.0")).unwrap();
        assert_eq!(
            edited.text,
            "\
# app overlay
resources:
  - deployment.yaml # the app
images:
  - name: web # front end
    newTag: \"1.1.0\" # pinned
  - name: worker
    newTag: '2'
"
        );
        assert_eq!(
            edited
                .changes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "images[web].newName: old.io/web -> (none)",
                "images[web].newTag: 1.0.0 -> 1.1.0"
            ]
        );
        // Again: nothing to change, the text untouched.
        let again = set_image(&edited.text, &arg("web:1.1.0")).unwrap();
        assert!(!again.changed());
        assert_eq!(again.text, edited.text);
    }

    #[test]
    fn new_entries_go_in_name_order_and_a_missing_list_is_made() {
        let text = "images:\n- name: a\n  newTag: \"1\"\n- name: c\n  newTag: \"3\"\n";
        let edited = set_image(text, &arg("b=r.io/b:2")).unwrap();
        assert_eq!(
            edited.text,
            "images:\n- name: a\n  newTag: \"1\"\n- name: b\n  newName: r.io/b\n  newTag: '2'\n- name: c\n  newTag: \"3\"\n"
        );
        let edited = set_image("resources:\n- a.yaml\n", &arg("web:1.2")).unwrap();
        assert_eq!(
            images(&edited.text).unwrap(),
            [KustomizeImage {
                name: "web".into(),
                new_tag: Some("1.2".into()),
                ..Default::default()
            }]
        );
        assert!(edited.text.starts_with("resources:\n- a.yaml\n"));
        let edited = set_image("", &arg("web:1")).unwrap();
        assert_eq!(images(&edited.text).unwrap().len(), 1);
    }

    #[test]
    fn flow_style_empty_lists_and_crlf_files_keep_their_style() {
        let web = arg("web:1");
        let cases = [
            ("images: []\n", "images: [{name: web, newTag: '1'}]\n"),
            ("images:\n", "images:\n  - name: web\n    newTag: '1'\n"),
            (
                "images: [{name: a, newTag: '2'}]\n",
                "images: [{name: a, newTag: '2'}, {name: web, newTag: '1'}]\n",
            ),
            (
                "images:\r\n- name: web # w\r\n  newTag: \"0\"\r\n",
                "images:\r\n- name: web # w\r\n  newTag: \"1\"\r\n",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(set_image(text, &web).unwrap().text, expected, "{text:?}");
        }
    }

    #[test]
    fn bad_files_are_errors() {
        assert!(set_image("images: {a: 1}\n", &arg("a:1")).is_err());
        assert!(set_image("- a\n", &arg("a:1")).is_err());
        assert!(set_image("images: [\n", &arg("a:1")).is_err());
    }
}
