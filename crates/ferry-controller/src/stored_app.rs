//! The controller's view of one Application, as its watch keeps it for as long as the app
//! exists: the metadata (without `managedFields` and the last-applied annotation, which no
//! reader looks at), the few fields read on every look at all apps (sharding, triggers, metrics)
//! extracted once, and the rest of the object as compact JSON text, parsed into an
//! [`Application`] when a reconcile reads it. A `serde_json::Value` tree of an app costs several
//! times its text (every map is a B-tree node of about 630 bytes, even with one entry); 1,000
//! apps of 10 resources took about 45 MB as trees.
//!
//! An app whose spec does not read as an [`Application`] is kept all the same (its reconcile
//! says why in its status): the watch takes any JSON object.

use std::borrow::Cow;

use ferry_types::Application;
use ferry_types::application::ApplicationDestination;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ApiResource;
use kube::core::DynamicResourceScope;
use serde::Deserialize;
use serde_json::{Map, Value};

/// One Application as the controller's watch keeps it.
#[derive(Clone, Debug)]
pub struct StoredApp {
    pub metadata: ObjectMeta,
    /// Read from the JSON without requiring it to be a valid Application.
    pub facts: AppFacts,
    /// Everything but `metadata` (apiVersion, kind, spec, status, operation and any other
    /// top-level field), as compact JSON.
    body: Box<str>,
}

/// What the controller reads of every app without reconciling it, each field as the JSON has
/// it (empty or false when absent or of another type).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppFacts {
    /// `spec.project` (empty when unset: the default project).
    pub project: String,
    /// `spec.destination` (the default when it does not read).
    pub destination: ApplicationDestination,
    /// The `repoURL` of the first of `spec.sources`, or of `spec.source` without sources.
    pub repo_url: String,
    /// `spec.syncPolicy.automated` set and not `enabled: false`.
    pub automated: bool,
    /// `status.sync.status` and `status.health.status`.
    pub sync_status: String,
    pub health_status: String,
    /// A sync operation is requested (`operation.sync`).
    pub sync_requested: bool,
}

impl AppFacts {
    fn of(object: &Map<String, Value>) -> Self {
        let null = Value::Null;
        let field = |name: &str| object.get(name).unwrap_or(&null);
        let (spec, status) = (field("spec"), field("status"));
        let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
        // `sources` wins over `source`, as everywhere else.
        let source = match &spec["sources"] {
            Value::Array(sources) if !sources.is_empty() => &sources[0],
            _ => &spec["source"],
        };
        let automated = &spec["syncPolicy"]["automated"];
        Self {
            project: text(&spec["project"]),
            destination: ApplicationDestination::deserialize(&spec["destination"])
                .unwrap_or_default(),
            repo_url: text(&source["repoURL"]),
            automated: automated.is_object() && automated["enabled"] != false,
            sync_status: text(&status["sync"]["status"]),
            health_status: text(&status["health"]["status"]),
            sync_requested: field("operation")["sync"].is_object(),
        }
    }
}

impl StoredApp {
    /// The app as an [`Application`]; the error says why its JSON does not read as one.
    pub fn application(&self) -> Result<Application, serde_json::Error> {
        let parsed = serde_json::from_str::<Application>(&self.body).or_else(|_| {
            // The error as a `Value` gives it, without the position in this text (which
            // users never see).
            serde_json::from_str::<Value>(&self.body).and_then(serde_json::from_value)
        });
        parsed.map(|mut app| {
            app.metadata = self.metadata.clone();
            app
        })
    }

    /// `status`, as JSON (null when absent).
    pub fn status(&self) -> Value {
        serde_json::from_str::<Map<String, Value>>(&self.body)
            .ok()
            .and_then(|mut object| object.remove("status"))
            .unwrap_or_default()
    }
}

impl<'de> Deserialize<'de> for StoredApp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut object = Value::deserialize(deserializer)?;
        ferry_types::bookkeeping::strip(&mut object);
        let Value::Object(mut object) = object else {
            return Err(serde::de::Error::custom("an Application is a JSON object"));
        };
        let metadata = match object.remove("metadata") {
            Some(metadata) => {
                ObjectMeta::deserialize(metadata).map_err(serde::de::Error::custom)?
            }
            None => ObjectMeta::default(),
        };
        Ok(Self {
            metadata,
            facts: AppFacts::of(&object),
            body: Value::Object(object).to_string().into_boxed_str(),
        })
    }
}

impl kube::Resource for StoredApp {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(value: Value) -> StoredApp {
        serde_json::from_str(&value.to_string()).unwrap()
    }

    #[test]
    fn an_app_reads_back_as_it_was_less_what_no_reader_looks_at() {
        let mut written = json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {
                "name": "guestbook", "namespace": "argocd", "uid": "u-1",
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"spec\":{}}",
                    "team": "a",
                },
                "managedFields": [{"manager": "ferry", "operation": "Update"}],
            },
            "spec": {
                "project": "team-a",
                "source": {"repoURL": "https://git.example.com/apps", "path": "web"},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"},
            },
            "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}},
        });
        let app = stored(written.clone());
        written["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        written["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove("kubectl.kubernetes.io/last-applied-configuration");
        let expected: Application = serde_json::from_value(written).unwrap();
        assert_eq!(app.application().unwrap(), expected);
        assert_eq!(app.status()["sync"]["status"], "Synced");
        assert_eq!(
            app.facts,
            AppFacts {
                project: "team-a".into(),
                destination: expected.spec.destination.clone(),
                repo_url: "https://git.example.com/apps".into(),
                automated: false,
                sync_status: "Synced".into(),
                health_status: "Healthy".into(),
                sync_requested: false,
            }
        );
    }

    #[test]
    fn an_invalid_app_is_kept_and_its_error_is_the_one_a_value_gives() {
        let written = json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "broken", "namespace": "argocd"},
            "spec": {"destination": "nowhere", "source": {"repoURL": 7}},
            "status": {"sync": {"status": "Unknown"}},
            "operation": {"sync": {}},
        });
        let app = stored(written.clone());
        let expected = serde_json::from_value::<Application>(written)
            .unwrap_err()
            .to_string();
        assert_eq!(app.application().unwrap_err().to_string(), expected);
        assert!(!expected.contains("line"), "{expected}");
        assert_eq!(app.status(), json!({"sync": {"status": "Unknown"}}));
        assert_eq!(app.facts.destination, ApplicationDestination::default());
        assert_eq!(app.facts.repo_url, "");
        assert!(app.facts.sync_requested);
    }
}
