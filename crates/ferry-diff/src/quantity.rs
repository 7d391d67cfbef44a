//! Semantic comparison of resource quantities (`cpu: 0.5` is `500m`, `1Gi` is `1024Mi`).

use kube_quantity::ParsedQuantity;
use serde_json::Value;

/// Keys of maps whose values are quantities (resources, quotas, limit ranges, capacities).
const QUANTITY_MAPS: &[&str] = &[
    "limits",
    "requests",
    "hard",
    "capacity",
    "allocatable",
    "overhead",
    "max",
    "min",
    "default",
    "defaultRequest",
    "maxLimitRequestRatio",
];

/// Fields that are quantities themselves.
const QUANTITY_FIELDS: &[&str] = &["sizeLimit"];

/// Whether the value at `.../parent/key` holds a quantity.
pub(crate) fn is_quantity_field(parent: Option<&str>, key: &str) -> bool {
    QUANTITY_FIELDS.contains(&key) || parent.is_some_and(|p| QUANTITY_MAPS.contains(&p))
}

/// True when both values are quantities of the same amount.
pub(crate) fn same_quantity(a: &Value, b: &Value) -> bool {
    match (parse(a), parse(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn parse(value: &Value) -> Option<ParsedQuantity> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    // The parser reads a bare suffix ("m", "Ki") as zero; a quantity starts with its number.
    let starts_numeric = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.'));
    if !starts_numeric {
        return None;
    }
    ParsedQuantity::try_from(text.as_str()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_amounts_in_different_notations() {
        assert!(same_quantity(&json!(0.5), &json!("500m")));
        assert!(same_quantity(&json!("1"), &json!(1)));
        assert!(same_quantity(&json!("1Gi"), &json!("1024Mi")));
        assert!(same_quantity(&json!("1k"), &json!("1000")));
        assert!(same_quantity(&json!("1e3"), &json!("1k")));
        assert!(same_quantity(&json!("0.1"), &json!("100m")));
    }

    #[test]
    fn different_amounts_and_non_quantities() {
        assert!(!same_quantity(&json!("1Gi"), &json!("1G")));
        assert!(!same_quantity(&json!("250m"), &json!("0.5")));
        assert!(!same_quantity(&json!("m"), &json!("0")));
        assert!(!same_quantity(&json!("abc"), &json!("abc")));
        assert!(!same_quantity(&json!(true), &json!(true)));
    }

    #[test]
    fn quantity_fields() {
        assert!(is_quantity_field(Some("limits"), "cpu"));
        assert!(is_quantity_field(Some("emptyDir"), "sizeLimit"));
        assert!(!is_quantity_field(Some("spec"), "replicas"));
        assert!(!is_quantity_field(None, "cpu"));
    }
}
