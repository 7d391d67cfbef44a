//! Concrete locations inside a JSON document, and RFC 6901 JSON pointers.

use serde_json::Value;

/// One step into a JSON document.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

pub(crate) type Path = Vec<Step>;

pub(crate) fn child<'a>(node: &'a Value, step: &Step) -> Option<&'a Value> {
    match (node, step) {
        (Value::Object(map), Step::Key(key)) => map.get(key),
        (Value::Array(items), Step::Index(i)) => items.get(*i),
        _ => None,
    }
}

fn get_mut<'a>(doc: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(doc, |node, step| match (node, step) {
        (Value::Object(map), Step::Key(key)) => map.get_mut(key),
        (Value::Array(items), Step::Index(i)) => items.get_mut(*i),
        _ => None,
    })
}

/// Removes the value at `path`; a path that does not exist is not an error.
pub(crate) fn remove(doc: &mut Value, path: &[Step]) -> Option<Value> {
    let (last, parent) = path.split_last()?;
    match (get_mut(doc, parent)?, last) {
        (Value::Object(map), Step::Key(key)) => map.remove(key),
        (Value::Array(items), Step::Index(i)) if *i < items.len() => Some(items.remove(*i)),
        _ => None,
    }
}

/// Removes every path. Deepest and highest indices go first so earlier removals don't shift
/// the array positions later ones refer to.
pub(crate) fn remove_all(doc: &mut Value, mut paths: Vec<Path>) {
    paths.sort();
    paths.dedup();
    for path in paths.iter().rev() {
        remove(doc, path);
    }
}

/// Renders a path as an RFC 6901 JSON pointer.
#[cfg(test)]
pub(crate) fn to_pointer(path: &[Step]) -> String {
    path.iter()
        .map(|step| match step {
            Step::Key(key) => format!("/{}", key.replace('~', "~0").replace('/', "~1")),
            Step::Index(i) => format!("/{i}"),
        })
        .collect()
}

/// Splits an RFC 6901 JSON pointer into its unescaped reference tokens.
pub(crate) fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!("JSON pointer `{pointer}` must start with `/`"));
    };
    rest.split('/')
        .map(|token| {
            let mut out = String::with_capacity(token.len());
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                if c != '~' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => out.push('~'),
                    Some('1') => out.push('/'),
                    _ => {
                        return Err(format!(
                            "JSON pointer `{pointer}` has an invalid `~` escape"
                        ));
                    }
                }
            }
            Ok(out)
        })
        .collect()
}

/// Resolves pointer tokens against `doc`: the concrete path if every step exists.
pub(crate) fn resolve_tokens(doc: &Value, tokens: &[String]) -> Option<Path> {
    let mut node = doc;
    let mut path = Vec::with_capacity(tokens.len());
    for token in tokens {
        let step = match node {
            Value::Object(_) => Step::Key(token.clone()),
            // RFC 6901: array indices are decimal without leading zeros.
            Value::Array(_) if token == "0" || !token.starts_with('0') => {
                Step::Index(token.parse().ok()?)
            }
            _ => return None,
        };
        node = child(node, &step)?;
        path.push(step);
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointer_round_trip_with_escapes() {
        let tokens = parse_pointer("/metadata/annotations/a~1b~0c").unwrap();
        assert_eq!(tokens, ["metadata", "annotations", "a/b~c"]);
        let doc = json!({"metadata": {"annotations": {"a/b~c": "x"}}});
        let path = resolve_tokens(&doc, &tokens).unwrap();
        assert_eq!(to_pointer(&path), "/metadata/annotations/a~1b~0c");
    }

    #[test]
    fn pointer_errors() {
        assert!(parse_pointer("spec").is_err());
        assert!(parse_pointer("/a~2").is_err());
        assert_eq!(parse_pointer("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn resolve_requires_existing_steps() {
        let doc = json!({"a": [{"b": 1}, {"b": 2}]});
        assert_eq!(
            resolve_tokens(&doc, &["a".into(), "1".into(), "b".into()]),
            Some(vec![
                Step::Key("a".into()),
                Step::Index(1),
                Step::Key("b".into())
            ])
        );
        assert_eq!(resolve_tokens(&doc, &["a".into(), "2".into()]), None);
        assert_eq!(resolve_tokens(&doc, &["a".into(), "01".into()]), None);
        assert_eq!(resolve_tokens(&doc, &["a".into(), "-".into()]), None);
    }

    #[test]
    fn remove_all_keeps_indices_valid() {
        let mut doc = json!({"a": [0, 1, 2, 3], "b": {"c": 1, "d": 2}});
        remove_all(
            &mut doc,
            vec![
                vec![Step::Key("a".into()), Step::Index(1)],
                vec![Step::Key("a".into()), Step::Index(3)],
                vec![Step::Key("b".into()), Step::Key("c".into())],
                vec![Step::Key("missing".into())],
            ],
        );
        assert_eq!(doc, json!({"a": [0, 2], "b": {"d": 2}}));
    }
}
