//! The three-way JSON merge patch of client-side apply: set what the desired object says,
//! delete what the last applied configuration had and the desired one dropped, leave everything
//! else (fields other writers own) alone. Lists are replaced whole, as JSON merge patch does.

use serde_json::{Map, Value};

pub fn three_way_merge_patch(last_applied: &Value, desired: &Value, live: &Value) -> Value {
    match (desired, live) {
        (Value::Object(desired_map), Value::Object(live_map)) => {
            let empty = Map::new();
            let last_map = last_applied.as_object().unwrap_or(&empty);
            let mut patch = Map::new();
            for (key, want) in desired_map {
                match live_map.get(key) {
                    Some(have) if have == want => {}
                    Some(have) if want.is_object() && have.is_object() => {
                        let sub = three_way_merge_patch(
                            last_map.get(key).unwrap_or(&Value::Null),
                            want,
                            have,
                        );
                        if sub.as_object().is_some_and(|m| !m.is_empty()) {
                            patch.insert(key.clone(), sub);
                        }
                    }
                    _ => {
                        patch.insert(key.clone(), want.clone());
                    }
                }
            }
            for key in last_map.keys() {
                if !desired_map.contains_key(key) && live_map.contains_key(key) {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            Value::Object(patch)
        }
        _ => desired.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sets_changes_deletes_dropped_fields_and_keeps_others() {
        let last = json!({"data": {"a": "1", "gone": "x"}});
        let desired = json!({"data": {"a": "2", "new": "y"}});
        let live =
            json!({"data": {"a": "1", "gone": "x", "theirs": "z"}, "metadata": {"uid": "u"}});
        assert_eq!(
            three_way_merge_patch(&last, &desired, &live),
            json!({"data": {"a": "2", "new": "y", "gone": null}})
        );
    }

    #[test]
    fn no_changes_no_patch() {
        let desired = json!({"spec": {"replicas": 2}});
        let live = json!({"spec": {"replicas": 2, "paused": false}});
        assert_eq!(three_way_merge_patch(&desired, &desired, &live), json!({}));
    }
}
