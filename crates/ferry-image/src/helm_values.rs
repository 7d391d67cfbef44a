//! Helm values files: set the string at a dotted path, as `yq -i '.image.tag = "1.2.3"'` does.
//! Missing mappings on the way are created (block style, after the existing keys); a path
//! that runs into a list or a scalar is an error naming it.

use yaml_edit::Mapping;

use crate::edit::{Change, EditError, Edited};
use crate::kustomization::finish;
use crate::yaml;

/// The keys of a dotted path (`image.tag` → `image`, `tag`).
fn keys(path: &str) -> Result<Vec<&str>, EditError> {
    let keys: Vec<&str> = path.split('.').collect();
    if path.is_empty() || keys.iter().any(|k| k.is_empty()) {
        return Err(EditError::Invalid(format!(
            "invalid values path {path:?}: expected dotted keys such as image.tag"
        )));
    }
    Ok(keys)
}

/// The string at `path`, if there is one.
pub fn get(text: &str, path: &str) -> Result<Option<String>, EditError> {
    let keys = keys(path)?;
    let file = yaml::parse(text)?;
    let Some(mut mapping) = file.document().and_then(|d| d.as_mapping()) else {
        return Ok(None);
    };
    let (last, parents) = keys.split_last().expect("at least one key");
    for key in parents {
        match mapping.get_mapping(key) {
            Some(next) => mapping = next,
            None => return Ok(None),
        }
    }
    Ok(yaml::get_string(&mapping, last))
}

/// Set the string at `path` to `value`.
pub fn set(text: &str, path: &str, value: &str) -> Result<Edited, EditError> {
    let keys = keys(path)?;
    let file = yaml::parse(text)?;
    let document = file.ensure_document();
    let mut mapping = match document.as_mapping() {
        Some(mapping) => mapping,
        None if text.trim().is_empty() => {
            document.set(keys[0], Mapping::new_pending_block());
            document.as_mapping().expect("a mapping was just made")
        }
        None => return Err(EditError::shape(path, "the values file is not a mapping")),
    };
    let (last, parents) = keys.split_last().expect("at least one key");
    for (depth, key) in parents.iter().enumerate() {
        let here = keys[..=depth].join(".");
        mapping = match mapping.get(key) {
            Some(node) => match node.as_mapping() {
                Some(next) => next.clone(),
                None if node.is_scalar() && yaml::scalar_string(&node).is_none() => {
                    mapping.set(*key, Mapping::new_pending_block());
                    mapping.get_mapping(key).expect("a mapping was just set")
                }
                None => return Err(EditError::shape(here, "is not a mapping")),
            },
            None => {
                mapping.set(*key, Mapping::new_pending_block());
                mapping.get_mapping(key).expect("a mapping was just set")
            }
        };
    }
    if let Some(node) = mapping.get(last)
        && !node.is_scalar()
    {
        return Err(EditError::shape(path, "is not a scalar"));
    }
    let changes = yaml::set_string(&mapping, last, value)
        .map(|old| Change {
            location: path.to_owned(),
            old,
            new: Some(value.to_owned()),
        })
        .into_iter()
        .collect();
    Ok(finish(text, file.to_string(), changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: &str = "\
# Default values for web.
replicaCount: 2

image:
  repository: registry.example.com/web # where
  # the tag, set by CI
  tag: \"1.4.2\"
  pullPolicy: IfNotPresent

service: {type: ClusterIP, port: 80}
";

    #[test]
    fn sets_a_value_keeping_everything_else() {
        let edited = set(VALUES, "image.tag", "1.5.0").unwrap();
        assert_eq!(edited.text, VALUES.replace("\"1.4.2\"", "\"1.5.0\""));
        assert_eq!(edited.changes[0].to_string(), "image.tag: 1.4.2 -> 1.5.0");
        assert_eq!(
            get(&edited.text, "image.tag").unwrap().as_deref(),
            Some("1.5.0")
        );
        assert!(!set(&edited.text, "image.tag", "1.5.0").unwrap().changed());
    }

    #[test]
    fn creates_missing_keys_and_quotes_what_would_not_read_as_a_string() {
        let edited = set(VALUES, "image.digest", "sha256:abc").unwrap();
        assert!(
            edited
                .text
                .contains("  pullPolicy: IfNotPresent\n  digest: sha256:abc\n")
        );
        let edited = set(VALUES, "sidecar.image.tag", "1.10").unwrap();
        assert!(
            edited
                .text
                .ends_with("sidecar:\n  image:\n    tag: '1.10'\n"),
            "{}",
            edited.text
        );
        let reread: serde_yaml::Value = serde_yaml::from_str(&edited.text).unwrap();
        assert_eq!(reread["sidecar"]["image"]["tag"], "1.10");
        assert_eq!(reread["service"]["port"], 80);
        let edited = set("", "image.tag", "2").unwrap();
        let reread: serde_yaml::Value = serde_yaml::from_str(&edited.text).unwrap();
        assert_eq!(reread["image"]["tag"], "2");
    }

    #[test]
    fn flow_mappings_comment_only_files_and_anchors() {
        let cases = [
            (
                "image: {repository: x, tag: \"1\"}\n",
                "image: {repository: x, tag: \"2\"}\n",
            ),
            (
                "# only a comment\n",
                "# only a comment\nimage:\n  tag: '2'\n",
            ),
            // An anchored value changes where it is aliased too, as with yq.
            (
                "image:\n  tag: &t \"1\"\nother: *t\n",
                "image:\n  tag: &t \"2\"\nother: *t\n",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                set(text, "image.tag", "2").unwrap().text,
                expected,
                "{text:?}"
            );
        }
    }

    #[test]
    fn paths_through_non_mappings_are_errors() {
        let e = set(VALUES, "replicaCount.tag", "1").unwrap_err();
        assert_eq!(e.to_string(), "replicaCount: is not a mapping");
        let e = set(VALUES, "image", "1").unwrap_err();
        assert_eq!(e.to_string(), "image: is not a scalar");
        assert!(set(VALUES, "image..tag", "1").is_err());
    }
}
