//! JSON merge patches (RFC 7386) computed from two versions of a document, so a writer sends
//! only what it changed and a concurrent change to another part is not overwritten.

use serde_json::{Map, Value};

/// The RFC 7386 merge patch turning `old` into `new`: changed and added keys, `null` for
/// removed ones, arrays and scalars replaced whole. `None` when they are equal.
pub fn merge_patch(old: &Value, new: &Value) -> Option<Value> {
    if old == new {
        return None;
    }
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for (key, old_value) in old {
                match new.get(key) {
                    None => {
                        patch.insert(key.clone(), Value::Null);
                    }
                    Some(new_value) => {
                        if let Some(change) = merge_patch(old_value, new_value) {
                            patch.insert(key.clone(), change);
                        }
                    }
                }
            }
            for (key, new_value) in new {
                if !old.contains_key(key) {
                    patch.insert(key.clone(), without_nulls(new_value));
                }
            }
            Some(Value::Object(patch))
        }
        _ => Some(without_nulls(new)),
    }
}

/// The merge patch turning whichever of `bases` the server holds into `new`: a writer whose own
/// view may trail its last write patches from both, so a field the view already shows as `new`
/// is still sent when the last write left it otherwise (and the other way round).
pub fn merge_patch_from_any(bases: &[&Value], new: &Value) -> Option<Value> {
    bases
        .iter()
        .filter_map(|base| merge_patch(base, new))
        .reduce(|mut union, patch| {
            overlay(&mut union, patch);
            union
        })
}

/// Adds `patch`'s keys to `union`. Both patches lead to the same `new`, so where either holds a
/// value that is not an object to recurse into, it is `new`'s value there.
fn overlay(union: &mut Value, patch: Value) {
    match (union, patch) {
        (Value::Object(union), Value::Object(patch)) => {
            for (key, value) in patch {
                match union.get_mut(&key) {
                    Some(existing) => overlay(existing, value),
                    None => {
                        union.insert(key, value);
                    }
                }
            }
        }
        (union, patch) => *union = patch,
    }
}

/// A merge patch cannot set a `null` inside an added object (it would mean "remove").
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_values_need_no_patch() {
        let v = json!({"a": [1, 2], "b": {"c": "d"}});
        assert_eq!(merge_patch(&v, &v), None);
    }

    #[test]
    fn changes_additions_and_removals() {
        let old = json!({"sync": {"status": "Synced", "revision": "a"}, "conditions": [{"type": "X"}],
            "health": {"status": "Healthy"}});
        let new = json!({"sync": {"status": "OutOfSync", "revision": "a"},
            "health": {"status": "Healthy"}, "history": [{"id": 0}]});
        assert_eq!(
            merge_patch(&old, &new),
            Some(json!({"sync": {"status": "OutOfSync"}, "conditions": null,
                "history": [{"id": 0}]}))
        );
    }

    #[test]
    fn patch_applied_gives_the_new_value() {
        let old = json!({"a": {"b": 1, "c": 2}, "d": [1], "e": "x"});
        let new = json!({"a": {"b": 3}, "d": [1, 2], "f": {"g": true}});
        let mut applied = old.clone();
        json_patch::merge(&mut applied, &merge_patch(&old, &new).unwrap());
        assert_eq!(applied, new);
    }

    #[test]
    fn a_patch_from_two_bases_turns_either_into_the_new_value() {
        // The view still shows the old health; the last write already set the new resources.
        let view = json!({"health": {"status": "Healthy"}, "resources": [{"n": "a"}]});
        let written =
            json!({"health": {"status": "Progressing"}, "resources": [{"n": "a"}, {"n": "b"}]});
        let new =
            json!({"health": {"status": "Healthy"}, "resources": [{"n": "a"}, {"n": "b", "h": 1}]});
        let patch = merge_patch_from_any(&[&view, &written], &new).unwrap();
        for base in [view, written] {
            let mut applied = base.clone();
            json_patch::merge(&mut applied, &patch);
            assert_eq!(applied, new);
        }
        assert_eq!(merge_patch_from_any(&[&new, &new], &new), None);
    }
}
