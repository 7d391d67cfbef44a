//! What the API server and `kubectl apply` record in an object about how it was written rather
//! than what it is: `metadata.managedFields` and the last-applied annotation. Together they are
//! often larger than the rest of the object, and neither comparison nor health reads them, so
//! whatever keeps objects for long drops them.

use serde_json::Value;

/// The annotation `kubectl apply` leaves behind: a full second copy of the object.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops `metadata.managedFields` and the last-applied annotation (and the annotation map if that
/// leaves it empty).
pub fn strip(object: &mut Value) {
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    metadata.remove("managedFields");
    if let Some(annotations) = metadata
        .get_mut("annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED_ANNOTATION);
        if annotations.is_empty() {
            metadata.remove("annotations");
        }
    }
}
