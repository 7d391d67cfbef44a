//! Which Application an object belongs to, tracked the way Argo CD does it: by the instance label,
//! by the tracking-id annotation, or by the annotation with the label set for information only.
//!
//! Both directions live here as pure functions: `mark` writes the tracking metadata onto a desired
//! object before it is applied, `app_of` reads it back from a live one.

use std::fmt;
use std::str::FromStr;

use kube::ResourceExt;
use serde_json::{Map, Value};

use crate::group_of;

/// The label Argo CD sets by default (`application.instanceLabelKey`).
pub const DEFAULT_LABEL_KEY: &str = "app.kubernetes.io/instance";
/// The annotation carrying a tracking id.
pub const TRACKING_ID_ANNOTATION: &str = "argocd.argoproj.io/tracking-id";
/// The annotation naming the installation (argocd-cm `installationID`) that tracks an object, so
/// that several installations can manage one cluster without claiming each other's objects.
pub const INSTALLATION_ID_ANNOTATION: &str = "argocd.argoproj.io/installation-id";
/// Label values are limited to 63 characters by the API server.
const LABEL_VALUE_MAX: usize = 63;

/// Errors of the tracking helpers.
#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    #[error("cannot track an object for an empty app name")]
    EmptyAppName,
    #[error(
        "cannot track {object}: app instance name {value:?} is longer than the 63 characters a \
         label value allows (annotation tracking has no such limit)"
    )]
    LabelTooLong { object: String, value: String },
    #[error("cannot track {object}: {field} is missing or empty")]
    MissingField { object: String, field: String },
    #[error("cannot track {object}: {field} is not a map")]
    NotAMap { object: String, field: String },
    #[error("invalid tracking id {0:?}: expected <app>:<group>/<kind>:<namespace>/<name>")]
    InvalidTrackingId(String),
}

/// How objects are tied to the Application that manages them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackingMethod {
    /// `label_key: <app>`. Cheap, but copied or hand-labelled objects count as tracked and the
    /// app name must fit a label value (63 characters).
    Label { label_key: String },
    /// `argocd.argoproj.io/tracking-id: <app>:<group>/<kind>:<namespace>/<name>`; an object only
    /// counts as tracked when the id names the object itself, so copies do not. With an
    /// installation id, only objects annotated with that id count.
    Annotation { installation_id: Option<String> },
    /// Tracks by the annotation; also sets the label (truncated to 63 characters) for tools that
    /// select on it, but never reads it.
    AnnotationAndLabel {
        label_key: String,
        installation_id: Option<String>,
    },
}

impl Default for TrackingMethod {
    /// The annotation, as in Argo CD 3.
    fn default() -> Self {
        Self::annotation()
    }
}

/// The name an app is tracked under: `<app>`, or `<namespace>_<app>` for apps that live outside
/// the control-plane namespace (pass `None` for apps inside it). Neither part can contain `_`,
/// so the form is unambiguous.
pub fn instance_name(app_name: &str, app_namespace: Option<&str>) -> String {
    match app_namespace {
        Some(namespace) => format!("{namespace}_{app_name}"),
        None => app_name.to_string(),
    }
}

/// The `(namespace, name)` of the app an instance name stands for, given the control namespace
/// (the inverse of [`instance_name`]).
pub fn app_of_instance<'a>(instance: &'a str, control_namespace: &'a str) -> (&'a str, &'a str) {
    instance
        .split_once('_')
        .unwrap_or((control_namespace, instance))
}

impl crate::Application {
    /// Argo CD's `InstanceName`: the name the app's resources are tracked under, prefixed by
    /// its namespace when that is not the control namespace.
    pub fn instance_name(&self, control_namespace: &str) -> String {
        instance_name(&self.name_any(), self.foreign_namespace(control_namespace))
    }

    /// The app's namespace when it lives outside the control namespace.
    pub fn foreign_namespace(&self, control_namespace: &str) -> Option<&str> {
        self.metadata
            .namespace
            .as_deref()
            .filter(|ns| !ns.is_empty() && *ns != control_namespace)
    }
}

impl TrackingMethod {
    /// Label tracking with the default label key.
    pub fn label() -> Self {
        Self::Label {
            label_key: DEFAULT_LABEL_KEY.to_string(),
        }
    }

    /// Annotation tracking without an installation id.
    pub fn annotation() -> Self {
        Self::Annotation {
            installation_id: None,
        }
    }

    /// Annotation tracking that also sets the default label key.
    pub fn annotation_and_label() -> Self {
        Self::AnnotationAndLabel {
            label_key: DEFAULT_LABEL_KEY.to_string(),
            installation_id: None,
        }
    }

    /// The method Argo CD's `argocd-cm` settings name: `application.resourceTrackingMethod`
    /// (`annotation`, the default; `label`; `annotation+label`), `application.instanceLabelKey`
    /// and `installationID` (which, as in Argo CD, label tracking ignores).
    pub fn from_settings(
        method: Option<&str>,
        label_key: Option<&str>,
        installation_id: Option<&str>,
    ) -> Result<Self, String> {
        let label_key = label_key
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .unwrap_or(DEFAULT_LABEL_KEY)
            .to_string();
        let installation_id = installation_id
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_string);
        match method.map(str::trim).unwrap_or_default() {
            "" | "annotation" => Ok(Self::Annotation { installation_id }),
            "label" => Ok(Self::Label { label_key }),
            "annotation+label" => Ok(Self::AnnotationAndLabel {
                label_key,
                installation_id,
            }),
            other => Err(format!(
                "application.resourceTrackingMethod {other:?} is not label, annotation or annotation+label"
            )),
        }
    }

    /// Writes the tracking metadata for `app_name` onto a desired object. Call it after the
    /// object's namespace has been defaulted: the tracking id records the namespace it names.
    pub fn mark(
        &self,
        obj: &mut Value,
        app_name: &str,
        app_namespace: Option<&str>,
    ) -> Result<(), TrackingError> {
        if app_name.is_empty() {
            return Err(TrackingError::EmptyAppName);
        }
        let instance = instance_name(app_name, app_namespace);
        match self {
            Self::Label { label_key } => {
                if instance.len() > LABEL_VALUE_MAX {
                    return Err(TrackingError::LabelTooLong {
                        object: describe(obj),
                        value: instance,
                    });
                }
                set_metadata_entry(obj, "labels", label_key, instance)
            }
            Self::Annotation { installation_id } => {
                let id = TrackingId::of(obj, instance)?;
                mark_installation(obj, installation_id.as_deref())?;
                set_metadata_entry(obj, "annotations", TRACKING_ID_ANNOTATION, id.to_string())
            }
            Self::AnnotationAndLabel {
                label_key,
                installation_id,
            } => {
                let id = TrackingId::of(obj, instance.clone())?;
                mark_installation(obj, installation_id.as_deref())?;
                set_metadata_entry(obj, "annotations", TRACKING_ID_ANNOTATION, id.to_string())?;
                set_metadata_entry(obj, "labels", label_key, truncate_label_value(&instance))
            }
        }
    }

    /// The instance name of the app a live object is tracked to, if any.
    pub fn app_of(&self, obj: &Value) -> Option<String> {
        match self {
            Self::Label { label_key } => metadata_entry(obj, "labels", label_key)
                .filter(|value| !value.is_empty())
                .map(str::to_string),
            Self::Annotation { installation_id }
            | Self::AnnotationAndLabel {
                installation_id, ..
            } => {
                if let Some(installation) = installation_id
                    && metadata_entry(obj, "annotations", INSTALLATION_ID_ANNOTATION)
                        != Some(installation.as_str())
                {
                    return None;
                }
                let id: TrackingId = metadata_entry(obj, "annotations", TRACKING_ID_ANNOTATION)?
                    .parse()
                    .ok()?;
                id.names(obj).then_some(id.app)
            }
        }
    }
}

/// A parsed `<app>:<group>/<kind>:<namespace>/<name>` tracking id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackingId {
    pub app: String,
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl TrackingId {
    /// The id tying `obj` to the app instance.
    fn of(obj: &Value, app: String) -> Result<Self, TrackingError> {
        let field = |path: &[&str]| -> Result<String, TrackingError> {
            let mut value = obj;
            for part in path {
                value = value.get(part).unwrap_or(&Value::Null);
            }
            match value.as_str() {
                Some(text) if !text.is_empty() => Ok(text.to_string()),
                _ => Err(TrackingError::MissingField {
                    object: describe(obj),
                    field: path.join("."),
                }),
            }
        };
        let api_version = field(&["apiVersion"])?;
        Ok(Self {
            app,
            group: group_of(&api_version).to_string(),
            kind: field(&["kind"])?,
            namespace: field(&["metadata", "namespace"]).unwrap_or_default(),
            name: field(&["metadata", "name"])?,
        })
    }

    /// Whether the id names `obj` itself. Objects copied by other tools keep the annotation of
    /// their source and must not count as tracked. A cluster-scoped object has no namespace of
    /// its own, so the id's namespace is not compared then (Argo CD accepts either form).
    fn names(&self, obj: &Value) -> bool {
        fn text(value: Option<&Value>) -> &str {
            value.and_then(Value::as_str).unwrap_or("")
        }
        let metadata = obj.get("metadata");
        let namespace = text(metadata.and_then(|m| m.get("namespace")));
        group_of(text(obj.get("apiVersion"))) == self.group
            && text(obj.get("kind")) == self.kind
            && text(metadata.and_then(|m| m.get("name"))) == self.name
            && (namespace.is_empty() || namespace == self.namespace)
    }
}

impl fmt::Display for TrackingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}/{}:{}/{}",
            self.app, self.group, self.kind, self.namespace, self.name
        )
    }
}

impl FromStr for TrackingId {
    type Err = TrackingError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || TrackingError::InvalidTrackingId(text.to_string());
        let mut parts = text.split(':');
        let (Some(app), Some(group_kind), Some(namespace_name), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let (group, kind) = group_kind.split_once('/').ok_or_else(invalid)?;
        let (namespace, name) = namespace_name.split_once('/').ok_or_else(invalid)?;
        if app.is_empty() || kind.is_empty() || name.is_empty() || name.contains('/') {
            return Err(invalid());
        }
        Ok(Self {
            app: app.to_string(),
            group: group.to_string(),
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }
}

/// A label value of at most 63 characters that still ends in an alphanumeric character.
fn truncate_label_value(value: &str) -> String {
    let mut end = value.len().min(LABEL_VALUE_MAX);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end]
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// The installation id annotation as the installation's setting says: set to it, or removed when
/// there is none (an object adopted from an installation with an id).
fn mark_installation(obj: &mut Value, installation_id: Option<&str>) -> Result<(), TrackingError> {
    match installation_id {
        Some(id) => set_metadata_entry(obj, "annotations", INSTALLATION_ID_ANNOTATION, id.into()),
        None => {
            if let Some(annotations) = obj
                .pointer_mut("/metadata/annotations")
                .and_then(Value::as_object_mut)
            {
                annotations.remove(INSTALLATION_ID_ANNOTATION);
            }
            Ok(())
        }
    }
}

fn metadata_entry<'a>(obj: &'a Value, map: &str, key: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(map)?.get(key)?.as_str()
}

fn set_metadata_entry(
    obj: &mut Value,
    map: &str,
    key: &str,
    value: String,
) -> Result<(), TrackingError> {
    let object = describe(obj);
    let not_a_map = |field: String| TrackingError::NotAMap {
        object: object.clone(),
        field,
    };
    let root = obj
        .as_object_mut()
        .ok_or_else(|| not_a_map("the document".into()))?;
    let metadata = object_entry(root, "metadata").ok_or_else(|| not_a_map("metadata".into()))?;
    let entries =
        object_entry(metadata, map).ok_or_else(|| not_a_map(format!("metadata.{map}")))?;
    entries.insert(key.to_string(), Value::String(value));
    Ok(())
}

/// The map under `key`, created when absent or null; `None` when something else is there.
fn object_entry<'a>(
    parent: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    let entry = parent
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()));
    if entry.is_null() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut()
}

/// `Kind name` (or what is known of it) for error messages.
fn describe(obj: &Value) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("object");
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>");
    format!("{kind} {name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_the_method() {
        assert_eq!(
            TrackingMethod::from_settings(None, None, None),
            Ok(TrackingMethod::annotation())
        );
        assert_eq!(
            TrackingMethod::from_settings(Some("label"), Some("team.io/app"), Some("ignored")),
            Ok(TrackingMethod::Label {
                label_key: "team.io/app".into()
            })
        );
        assert_eq!(
            TrackingMethod::from_settings(Some("annotation+label"), None, Some(" ")),
            Ok(TrackingMethod::annotation_and_label())
        );
        assert!(TrackingMethod::from_settings(Some("uid"), None, None).is_err());
    }
    use serde_json::json;

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "prod", "labels": {"tier": "front"}}})
    }

    #[test]
    fn label_tracking_sets_and_reads_the_label() {
        let tracking = TrackingMethod::label();
        let mut obj = deployment();
        tracking.mark(&mut obj, "shop", None).unwrap();
        assert_eq!(obj["metadata"]["labels"][DEFAULT_LABEL_KEY], "shop");
        assert_eq!(
            obj["metadata"]["labels"]["tier"], "front",
            "other labels stay"
        );
        assert_eq!(tracking.app_of(&obj).as_deref(), Some("shop"));
        assert!(obj["metadata"].get("annotations").is_none());
    }

    #[test]
    fn label_key_is_configurable() {
        let tracking = TrackingMethod::Label {
            label_key: "example.com/app".into(),
        };
        let mut obj = deployment();
        tracking.mark(&mut obj, "shop", None).unwrap();
        assert_eq!(obj["metadata"]["labels"]["example.com/app"], "shop");
        assert_eq!(tracking.app_of(&obj).as_deref(), Some("shop"));
        assert_eq!(TrackingMethod::label().app_of(&obj), None);
    }

    #[test]
    fn label_tracking_refuses_names_that_do_not_fit_a_label() {
        let long = "a".repeat(64);
        let err = TrackingMethod::label()
            .mark(&mut deployment(), &long, None)
            .unwrap_err();
        assert!(err.to_string().contains("Deployment web"), "{err}");
        assert!(err.to_string().contains("63"), "{err}");
    }

    #[test]
    fn annotation_tracking_writes_an_id_naming_the_object() {
        let tracking = TrackingMethod::annotation();
        let mut obj = deployment();
        tracking.mark(&mut obj, "shop", None).unwrap();
        assert_eq!(
            obj["metadata"]["annotations"][TRACKING_ID_ANNOTATION],
            "shop:apps/Deployment:prod/web"
        );
        assert!(obj["metadata"]["labels"].get(DEFAULT_LABEL_KEY).is_none());
        assert_eq!(tracking.app_of(&obj).as_deref(), Some("shop"));
    }

    #[test]
    fn annotation_tracking_of_core_and_cluster_scoped_objects() {
        let tracking = TrackingMethod::annotation();
        let mut ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}});
        tracking.mark(&mut ns, "shop", None).unwrap();
        assert_eq!(
            ns["metadata"]["annotations"][TRACKING_ID_ANNOTATION],
            "shop:/Namespace:/prod"
        );
        assert_eq!(tracking.app_of(&ns).as_deref(), Some("shop"));

        // An id recorded with the app's destination namespace still names a cluster-scoped object.
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "reader", "annotations": {
                TRACKING_ID_ANNOTATION: "shop:rbac.authorization.k8s.io/ClusterRole:prod/reader"}}});
        assert_eq!(tracking.app_of(&role).as_deref(), Some("shop"));
    }

    #[test]
    fn copied_objects_are_not_tracked_by_annotation() {
        let tracking = TrackingMethod::annotation();
        let mut original = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "tls", "namespace": "prod"}});
        tracking.mark(&mut original, "shop", None).unwrap();
        for (field, value) in [("name", "tls-copy"), ("namespace", "staging")] {
            let mut copy = original.clone();
            copy["metadata"][field] = json!(value);
            assert_eq!(tracking.app_of(&copy), None, "copy with another {field}");
        }
        let mut other_kind = original.clone();
        other_kind["kind"] = json!("ConfigMap");
        assert_eq!(tracking.app_of(&other_kind), None);
        let mut other_group = original.clone();
        other_group["apiVersion"] = json!("example.com/v1");
        assert_eq!(tracking.app_of(&other_group), None);
        // A label alone does not track an object under annotation tracking.
        let labelled = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "tls", "namespace": "prod", "labels": {DEFAULT_LABEL_KEY: "shop"}}});
        assert_eq!(tracking.app_of(&labelled), None);
    }

    #[test]
    fn annotation_and_label_sets_both_and_reads_the_annotation() {
        let tracking = TrackingMethod::annotation_and_label();
        let mut obj = deployment();
        tracking.mark(&mut obj, "shop", Some("team-a")).unwrap();
        assert_eq!(
            obj["metadata"]["annotations"][TRACKING_ID_ANNOTATION],
            "team-a_shop:apps/Deployment:prod/web"
        );
        assert_eq!(obj["metadata"]["labels"][DEFAULT_LABEL_KEY], "team-a_shop");
        assert_eq!(tracking.app_of(&obj).as_deref(), Some("team-a_shop"));

        // The label is informational: without the annotation nothing is tracked.
        obj["metadata"]["annotations"] = json!({});
        assert_eq!(tracking.app_of(&obj), None);
    }

    #[test]
    fn annotation_and_label_truncates_the_label_only() {
        let tracking = TrackingMethod::annotation_and_label();
        // "ns_" + 59 letters + "-" is where the 63 characters end; the dash must go too.
        let app = format!("{}-tail", "a".repeat(59));
        let mut obj = deployment();
        tracking.mark(&mut obj, &app, Some("ns")).unwrap();
        let label = obj["metadata"]["labels"][DEFAULT_LABEL_KEY]
            .as_str()
            .unwrap();
        assert_eq!(label, format!("ns_{}", "a".repeat(59)));
        assert_eq!(tracking.app_of(&obj), Some(format!("ns_{app}")));
    }

    #[test]
    fn app_namespace_prefixes_the_instance_name() {
        assert_eq!(instance_name("shop", None), "shop");
        assert_eq!(instance_name("shop", Some("team-a")), "team-a_shop");
        assert_eq!(app_of_instance("team-a_shop", "argocd"), ("team-a", "shop"));
        assert_eq!(app_of_instance("shop", "argocd"), ("argocd", "shop"));
        let app: crate::Application = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "shop", "namespace": "team-a"}, "spec": {}}),
        )
        .unwrap();
        assert_eq!(app.instance_name("argocd"), "team-a_shop");
        assert_eq!(app.instance_name("team-a"), "shop");
        let mut obj = deployment();
        TrackingMethod::label()
            .mark(&mut obj, "shop", Some("team-a"))
            .unwrap();
        assert_eq!(obj["metadata"]["labels"][DEFAULT_LABEL_KEY], "team-a_shop");
    }

    #[test]
    fn marking_needs_an_identifiable_object() {
        let tracking = TrackingMethod::annotation();
        let mut nameless = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}});
        let err = tracking.mark(&mut nameless, "shop", None).unwrap_err();
        assert!(err.to_string().contains("metadata.name"), "{err}");
        let mut bad_labels = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": "oops"}});
        let err = TrackingMethod::label()
            .mark(&mut bad_labels, "shop", None)
            .unwrap_err();
        assert!(err.to_string().contains("metadata.labels"), "{err}");
        assert!(err.to_string().contains("ConfigMap c"), "{err}");
        assert!(matches!(
            tracking.mark(&mut deployment(), "", None),
            Err(TrackingError::EmptyAppName)
        ));
        // Null metadata maps are replaced rather than refused.
        let mut null_labels = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": null}});
        TrackingMethod::label()
            .mark(&mut null_labels, "shop", None)
            .unwrap();
        assert_eq!(null_labels["metadata"]["labels"][DEFAULT_LABEL_KEY], "shop");
    }

    #[test]
    fn tracking_ids_parse_and_print() {
        let id: TrackingId = "shop:apps/Deployment:prod/web".parse().unwrap();
        assert_eq!(
            id,
            TrackingId {
                app: "shop".into(),
                group: "apps".into(),
                kind: "Deployment".into(),
                namespace: "prod".into(),
                name: "web".into(),
            }
        );
        assert_eq!(id.to_string(), "shop:apps/Deployment:prod/web");
        let core: TrackingId = "shop:/Namespace:/prod".parse().unwrap();
        assert_eq!((core.group.as_str(), core.namespace.as_str()), ("", ""));
        for bad in [
            "",
            "shop",
            "shop:apps/Deployment",
            "shop:Deployment:prod/web",
            "shop:apps/Deployment:web",
            ":apps/Deployment:prod/web",
            "shop:apps/Deployment:prod/web:extra",
            "shop:apps/Deployment:prod/a/b",
        ] {
            assert!(
                bad.parse::<TrackingId>().is_err(),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn malformed_annotations_track_nothing() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "n",
                         "annotations": {TRACKING_ID_ANNOTATION: "shop"}}});
        assert_eq!(TrackingMethod::annotation().app_of(&obj), None);
        let empty_label = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {DEFAULT_LABEL_KEY: ""}}});
        assert_eq!(TrackingMethod::label().app_of(&empty_label), None);
    }

    #[test]
    fn an_installation_id_claims_only_its_own_objects() {
        let ours = TrackingMethod::from_settings(None, None, Some("blue")).unwrap();
        let mut obj = deployment();
        ours.mark(&mut obj, "shop", None).unwrap();
        assert_eq!(
            obj["metadata"]["annotations"][INSTALLATION_ID_ANNOTATION],
            "blue"
        );
        assert_eq!(ours.app_of(&obj).as_deref(), Some("shop"));

        // Another installation's object, or one of an installation without id, is not ours.
        let theirs = TrackingMethod::from_settings(None, None, Some("green")).unwrap();
        assert_eq!(theirs.app_of(&obj), None);
        let mut unmarked = deployment();
        TrackingMethod::annotation()
            .mark(&mut unmarked, "shop", None)
            .unwrap();
        assert_eq!(ours.app_of(&unmarked), None);
        // An installation without id reads the tracking id alone, and marking drops a stale id.
        assert_eq!(
            TrackingMethod::annotation().app_of(&obj).as_deref(),
            Some("shop")
        );
        TrackingMethod::annotation()
            .mark(&mut obj, "shop", None)
            .unwrap();
        assert!(
            obj["metadata"]["annotations"]
                .get(INSTALLATION_ID_ANNOTATION)
                .is_none()
        );

        let both =
            TrackingMethod::from_settings(Some("annotation+label"), None, Some("blue")).unwrap();
        let mut obj = deployment();
        both.mark(&mut obj, "shop", None).unwrap();
        assert_eq!(
            obj["metadata"]["annotations"][INSTALLATION_ID_ANNOTATION],
            "blue"
        );
        assert_eq!(both.app_of(&obj).as_deref(), Some("shop"));
        assert_eq!(theirs.app_of(&obj), None);
    }
}
