//! The matrix and merge generators, over two levels: a matrix or merge inside one may hold
//! only plain generators, as in Argo CD.

use std::collections::HashMap;

use ferry_types::ApplicationSet;
use ferry_types::application_set::{
    ApplicationSetGenerator, ApplicationSetTemplate, MatrixGenerator, MergeGenerator,
};
use serde_json::Value;

use super::{GeneratorError, Sources, transform};
use crate::params::{Params, go_format};

/// The parameter sets of a child generator, `outer` substituted into it.
async fn child(
    entry: &ApplicationSetGenerator,
    appset: &ApplicationSet,
    outer: &Params,
    sources: &Sources<'_>,
    depth: usize,
) -> Result<Vec<Params>, GeneratorError> {
    if depth >= 1 && (entry.matrix.is_some() || entry.merge.is_some()) {
        return Err(GeneratorError::new(
            "a matrix or merge generator nested in another may only hold plain generators",
        ));
    }
    let empty = ApplicationSetTemplate::default();
    let generated = transform(entry, &empty, appset, outer, sources, depth + 1)
        .await
        .map_err(|e| {
            GeneratorError::new(format!(
                "child generator returned an error on parameter generation: {e}"
            ))
        })?;
    Ok(generated.params)
}

/// Every set of the first generator combined with every set of the second; the second is
/// generated once per set of the first, with that set's parameters substituted into it.
pub async fn matrix(
    matrix: &MatrixGenerator,
    appset: &ApplicationSet,
    sources: &Sources<'_>,
    depth: usize,
) -> Result<Vec<Params>, GeneratorError> {
    let [first, second] = matrix.generators.as_slice() else {
        return Err(GeneratorError::new(format!(
            "the matrix generator needs exactly two child generators, found {}",
            matrix.generators.len()
        )));
    };
    let mut out = Vec::new();
    for a in child(first, appset, &Params::new(), sources, depth).await? {
        for b in child(second, appset, &a, sources, depth).await? {
            out.push(if appset.spec.go_template {
                let mut combined = b;
                deep_override(&mut combined, &a);
                combined
            } else {
                combine_strings(&a, &b)?
            });
        }
    }
    Ok(out)
}

/// `src` merged over `dest`, maps key by key (mergo.WithOverride).
fn deep_override(dest: &mut Params, src: &Params) {
    for (key, value) in src {
        match (dest.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                deep_override(existing, incoming)
            }
            _ => {
                dest.insert(key.clone(), value.clone());
            }
        }
    }
}

/// fasttemplate sets combined: the same key with two values is an error.
fn combine_strings(a: &Params, b: &Params) -> Result<Params, GeneratorError> {
    let mut out: Params = a
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(go_format(v))))
        .collect();
    for (key, value) in b {
        let value = go_format(value);
        match out.get(key) {
            Some(Value::String(current)) if *current != value => {
                return Err(GeneratorError::new(format!(
                    "found duplicate key {key} with different value, a: {current} ,b: {value}"
                )));
            }
            _ => {
                out.insert(key.clone(), Value::String(value));
            }
        }
    }
    Ok(out)
}

/// The first generator's sets, each overridden by the sets of the later generators that have
/// the same values for every merge key.
pub async fn merge(
    merge: &MergeGenerator,
    appset: &ApplicationSet,
    sources: &Sources<'_>,
    depth: usize,
) -> Result<Vec<Params>, GeneratorError> {
    if merge.generators.len() < 2 {
        return Err(GeneratorError::new(
            "the merge generator needs at least two child generators",
        ));
    }
    let mut sets = Vec::new();
    for (i, entry) in merge.generators.iter().enumerate() {
        let params = child(entry, appset, &Params::new(), sources, depth)
            .await
            .map_err(|e| {
                GeneratorError::new(format!(
                    "error getting params from generator {} of {}: {e}",
                    i + 1,
                    merge.generators.len()
                ))
            })?;
        sets.push(params);
    }
    let mut base = by_merge_key(&merge.merge_keys, sets.remove(0))?;
    for later in sets {
        let later: HashMap<_, _> = by_merge_key(&merge.merge_keys, later)?
            .into_iter()
            .collect();
        for (key, params) in &mut base {
            if let Some(override_with) = later.get(key) {
                if appset.spec.go_template {
                    deep_override(params, override_with);
                } else {
                    params.extend(override_with.clone());
                }
            }
        }
    }
    Ok(base.into_iter().map(|(_, params)| params).collect())
}

/// The sets keyed by their merge-key values (a JSON object of them); two sets with the same
/// key are an error.
fn by_merge_key(
    keys: &[String],
    sets: Vec<Params>,
) -> Result<Vec<(String, Params)>, GeneratorError> {
    if keys.is_empty() {
        return Err(GeneratorError::new("no merge keys were specified"));
    }
    let mut keys = keys.to_vec();
    keys.sort();
    keys.dedup();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(sets.len());
    for params in sets {
        let key: serde_json::Map<_, _> = keys
            .iter()
            .map(|k| (k.clone(), params.get(k).cloned().unwrap_or(Value::Null)))
            .collect();
        let key = Value::Object(key).to_string();
        if !seen.insert(key.clone()) {
            return Err(GeneratorError::new(format!(
                "merge generator: non-unique param sets. Duplicate key was {key}"
            )));
        }
        out.push((key, params));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{appset, generate};
    use serde_json::json;

    /// Upstream's list-and-list matrix example.
    #[tokio::test]
    async fn matrix_of_two_lists() {
        let set = appset(
            "spec:
  generators:
  - matrix:
      generators:
      - list: {elements: [{cluster: dev}, {cluster: prod}]}
      - list: {elements: [{app: web, path: '{{cluster}}/web'}, {app: db, path: '{{cluster}}/db'}]}
  template: {}
",
        );
        let params = generate(&set).await.unwrap();
        let pairs: Vec<_> = params
            .iter()
            .map(|p| format!("{}:{}:{}", p["cluster"], p["app"], p["path"]))
            .collect();
        assert_eq!(
            pairs,
            [
                r#""dev":"web":"dev/web""#,
                r#""dev":"db":"dev/db""#,
                r#""prod":"web":"prod/web""#,
                r#""prod":"db":"prod/db""#,
            ]
        );
    }

    #[tokio::test]
    async fn matrix_conflicts_and_shapes() {
        let conflict = appset(
            "spec:
  generators:
  - matrix:
      generators:
      - list: {elements: [{a: '1'}]}
      - list: {elements: [{a: '2'}]}
  template: {}
",
        );
        let err = generate(&conflict).await.unwrap_err().to_string();
        assert!(err.contains("duplicate key a"), "{err}");
        let three = appset(
            "spec: {generators: [{matrix: {generators: [{list: {elements: []}}]}}], template: {}}",
        );
        let err = generate(&three).await.unwrap_err().to_string();
        assert!(err.contains("exactly two"), "{err}");
        let deep = appset(
            "spec:
  generators:
  - matrix:
      generators:
      - list: {elements: [{a: '1'}]}
      - matrix:
          generators:
          - list: {elements: [{b: '1'}]}
          - matrix: {generators: []}
  template: {}
",
        );
        let err = generate(&deep).await.unwrap_err().to_string();
        assert!(err.contains("only hold plain generators"), "{err}");
    }

    /// Two levels: a matrix of a list and a (nested) matrix, Go templates.
    #[tokio::test]
    async fn nested_matrix_with_go_templates() {
        let set = appset(
            "spec:
  goTemplate: true
  generators:
  - matrix:
      generators:
      - list: {elements: [{env: dev, meta: {tier: a}}]}
      - matrix:
          generators:
          - list: {elements: [{app: web, meta: {team: x}}]}
          - list: {elements: [{region: eu}, {region: us}]}
  template: {}
",
        );
        let params = generate(&set).await.unwrap();
        assert_eq!(params.len(), 2);
        assert_eq!(
            serde_json::Value::Object(params[1].clone()),
            json!({"env": "dev", "app": "web", "region": "us", "meta": {"tier": "a", "team": "x"}})
        );
    }

    /// Upstream's merge example: clusters × overrides by `server`.
    #[tokio::test]
    async fn merge_by_keys() {
        let set = appset(
            "spec:
  generators:
  - merge:
      mergeKeys: [server]
      generators:
      - list:
          elements:
          - {server: a, kafka: 'true', redis: 'false'}
          - {server: b, kafka: 'true', redis: 'false'}
      - list:
          elements:
          - {server: b, redis: 'true'}
          - {server: c, redis: 'true'}
  template: {}
",
        );
        let params = generate(&set).await.unwrap();
        assert_eq!(params.len(), 2);
        assert_eq!(params[0]["redis"], "false");
        assert_eq!(params[1]["server"], "b");
        assert_eq!(params[1]["redis"], "true");
        assert_eq!(params[1]["kafka"], "true");

        let duplicate = appset(
            "spec:
  generators:
  - merge:
      mergeKeys: [server]
      generators:
      - list: {elements: [{server: a}, {server: a}]}
      - list: {elements: []}
  template: {}
",
        );
        let err = generate(&duplicate).await.unwrap_err().to_string();
        assert!(
            err.contains("Duplicate key was {\"server\":\"a\"}"),
            "{err}"
        );
    }
}
