//! Manifest files of a directory source: `ferry_render::parse_manifest_file` (YAML streams with
//! merge keys, JSON files, `List` flattening, the "not a manifest" rules), then what ferry-diff
//! does with the objects: `structural_diff` between them (with the `ignoreDifferences` rules of
//! any Application in the stream) and Secret masking.
//!
//! jq path expressions are left out of the rules: they run on worker threads with a timeout, and
//! one that never ends would keep a core busy for the rest of the run.

#![no_main]

use ferry_diff::{DiffOptions, IgnoreRules, ResourceIgnoreDifferences, mask_secrets};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::Value;

/// Objects diffed against each other, at most (the diff is quadratic in them).
const MAX_OBJECTS: usize = 6;

/// `spec.ignoreDifferences` of the Applications among `objects`, without jq expressions.
fn ignore_rules(objects: &[Value]) -> Vec<ResourceIgnoreDifferences> {
    objects
        .iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("Application"))
        .filter_map(|o| o.pointer("/spec/ignoreDifferences"))
        .filter_map(|rules| Vec::<ResourceIgnoreDifferences>::deserialize(rules).ok())
        .flatten()
        .map(|mut rule| {
            rule.jq_path_expressions.clear();
            rule
        })
        .collect()
}

fn diff_all(objects: &[Value]) {
    let objects = &objects[..objects.len().min(MAX_OBJECTS)];
    let mut options = vec![DiffOptions::default()];
    let rules = ignore_rules(objects);
    if let Ok(compiled) = IgnoreRules::new(&rules) {
        options.push(DiffOptions {
            ignore_differences: compiled,
            ..DiffOptions::default()
        });
    }
    for opts in &options {
        for desired in objects {
            let _ = ferry_diff::structural_diff(Some(desired), None, opts);
            let _ = ferry_diff::structural_diff(None, Some(desired), opts);
            for live in objects {
                if let Ok(result) = ferry_diff::structural_diff(Some(desired), Some(live), opts) {
                    let _ = serde_json::to_string(&result);
                }
            }
        }
    }
    for pair in objects.windows(2) {
        let (mut desired, mut live) = (pair[0].clone(), pair[1].clone());
        mask_secrets(Some(&mut desired), Some(&mut live));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = ferry_fuzz::text(data) else {
        return;
    };
    for file in ["app/manifests.yaml", "app/manifest.json"] {
        match ferry_render::parse_manifest_file(text, file) {
            Ok(objects) => diff_all(&objects),
            Err(err) => {
                let _ = err.to_string();
            }
        }
    }
});
