//! Turning a template and a parameter set into an Application: every string of the template
//! (map keys too) is rendered with fasttemplate or, with `goTemplate: true`, as a Go template;
//! then `templatePatch` is rendered and merged in.

mod fast;
pub mod go;
mod sprig;

use ferry_types::Application;
use ferry_types::application::finalizer;
use ferry_types::application_set::ApplicationSetTemplate;
use serde_json::{Map, Value, json};

pub use go::GoOptions;

use crate::params::Params;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("invalid template {template:?}: {reason}")]
    Invalid { template: String, reason: String },
    #[error("failed to parse template {template:?}: {reason}")]
    Parse { template: String, reason: String },
    #[error("failed to execute go template {template:?}: {reason}")]
    Execute { template: String, reason: String },
    #[error("invalid templatePatch: {0}")]
    Patch(String),
    #[error("the rendered template is not a valid Application: {0}")]
    Application(String),
}

/// How strings are rendered: the ApplicationSet's `goTemplate` and `goTemplateOptions`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Renderer {
    pub go_template: bool,
    pub go_options: GoOptions,
}

impl Renderer {
    pub fn new(go_template: bool, go_template_options: &[String]) -> Result<Self, TemplateError> {
        Ok(Self {
            go_template,
            go_options: GoOptions::parse(go_template_options)?,
        })
    }

    /// One string, rendered.
    pub fn replace(&self, text: &str, params: &Params) -> Result<String, TemplateError> {
        if self.go_template {
            go::render(
                text,
                &go::from_json(&Value::Object(params.clone())),
                self.go_options,
            )
        } else {
            fast::replace(text, params)
        }
    }

    /// Every string in `value` (map keys included) rendered; other values as they are.
    pub fn render_value(&self, value: &Value, params: &Params) -> Result<Value, TemplateError> {
        // The Go-template form of the parameters is built once per value, not per string.
        let go_params = self
            .go_template
            .then(|| go::from_json(&Value::Object(params.clone())));
        self.render_with(value, params, go_params.as_ref())
    }

    fn render_with(
        &self,
        value: &Value,
        params: &Params,
        go_params: Option<&gtmpl::Value>,
    ) -> Result<Value, TemplateError> {
        let string = |text: &str| match go_params {
            Some(dot) => go::render(text, dot, self.go_options),
            None => fast::replace(text, params),
        };
        Ok(match value {
            Value::String(text) => Value::String(string(text)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.render_with(item, params, go_params))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => {
                let mut out = Map::new();
                for (key, item) in map {
                    out.insert(string(key)?, self.render_with(item, params, go_params)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    /// The Application `template` makes of `params`, in `namespace`, patched by
    /// `template_patch`. Without `preserve_resources` (`preserveResourcesOnDeletion`) and
    /// without finalizers of its own it gets the resources finalizer, so deleting it deletes
    /// its resources, as in Argo CD.
    pub fn application(
        &self,
        template: &ApplicationSetTemplate,
        params: &Params,
        template_patch: Option<&str>,
        preserve_resources: bool,
        namespace: &str,
    ) -> Result<Application, TemplateError> {
        let meta = &template.metadata;
        let skeleton = json!({
            "metadata": {
                "name": meta.name,
                "namespace": meta.namespace,
                "labels": meta.labels,
                "annotations": meta.annotations,
                "finalizers": meta.finalizers,
            },
            "spec": template.spec,
        });
        // Argo CD leaves the template as it is when the generator gave no parameters.
        let mut app = if params.is_empty() {
            skeleton
        } else {
            self.render_value(&skeleton, params)?
        };
        let finalizers = &mut app["metadata"]["finalizers"];
        if !preserve_resources && finalizers.as_array().is_none_or(Vec::is_empty) {
            *finalizers = json!([finalizer::RESOURCES]);
        }
        if let Some(patch) = template_patch {
            let project = app["spec"]["project"].clone();
            let patch = self.replace(patch, params)?;
            let patch: Value = serde_yaml::from_str(&patch)
                .map_err(|e| TemplateError::Patch(format!("{e} in {patch:?}")))?;
            if !patch.is_object() {
                return Err(TemplateError::Patch(format!(
                    "{patch} is not a map of Application fields"
                )));
            }
            // Application fields carry no strategic-merge keys, so Argo CD's strategic merge
            // patch is a JSON merge patch here. A patch cannot move the app to another project.
            json_patch::merge(&mut app, &patch);
            app["spec"]["project"] = project;
        }
        app["metadata"]["namespace"] = Value::String(namespace.to_string());
        drop_empty_metadata(&mut app["metadata"]);
        serde_json::from_value(app).map_err(|e| TemplateError::Application(e.to_string()))
    }
}

/// Empty labels, annotations and finalizers are absent, as in objects Argo CD writes.
fn drop_empty_metadata(metadata: &mut Value) {
    if let Some(map) = metadata.as_object_mut() {
        map.retain(|_, v| match v {
            Value::Object(m) => !m.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Null => false,
            _ => true,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(yaml: &str) -> ApplicationSetTemplate {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn params(value: Value) -> Params {
        value.as_object().unwrap().clone()
    }

    const GUESTBOOK: &str = "
metadata:
  name: '{{cluster}}-guestbook'
  labels: {env: '{{cluster}}'}
spec:
  project: default
  source:
    repoURL: https://github.com/argoproj/argo-cd.git
    targetRevision: HEAD
    path: applicationset/examples/list-generator/guestbook/{{cluster}}
  destination:
    server: '{{url}}'
    namespace: guestbook
";

    /// Upstream's list-generator example (fasttemplate).
    #[test]
    fn list_example_renders_an_application() {
        let renderer = Renderer::default();
        let p = params(json!({"cluster": "engineering-dev", "url": "https://1.2.3.4"}));
        let app = renderer
            .application(&template(GUESTBOOK), &p, None, false, "argocd")
            .unwrap();
        assert_eq!(
            app.metadata.name.as_deref(),
            Some("engineering-dev-guestbook")
        );
        assert_eq!(app.metadata.namespace.as_deref(), Some("argocd"));
        assert_eq!(app.metadata.labels.unwrap()["env"], "engineering-dev");
        assert_eq!(
            app.metadata.finalizers.unwrap(),
            ["resources-finalizer.argocd.argoproj.io"]
        );
        let source = app.spec.source.unwrap();
        assert_eq!(
            source.path,
            "applicationset/examples/list-generator/guestbook/engineering-dev"
        );
        assert_eq!(app.spec.destination.server, "https://1.2.3.4");
    }

    #[test]
    fn preserve_resources_means_no_finalizer() {
        let p = params(json!({"cluster": "c", "url": "u"}));
        let app = Renderer::default()
            .application(&template(GUESTBOOK), &p, None, true, "argocd")
            .unwrap();
        assert!(app.metadata.finalizers.is_none());
    }

    /// Upstream's templatePatch documentation: non-string fields from parameters.
    #[test]
    fn template_patch_sets_non_string_fields_but_not_the_project() {
        let renderer = Renderer::new(true, &[]).unwrap();
        let t = template(
            "
metadata: {name: '{{.cluster}}'}
spec:
  project: default
  destination: {server: '{{.url}}', namespace: guestbook}
",
        );
        let patch = "
spec:
  project: other
  {{- if .autoSync }}
  syncPolicy:
    automated:
      prune: {{ .prune }}
  {{- end }}
";
        let p = params(json!({"cluster": "c1", "url": "u", "autoSync": true, "prune": true}));
        let app = renderer
            .application(&t, &p, Some(patch), false, "argocd")
            .unwrap();
        assert_eq!(app.spec.project, "default");
        let automated = app.spec.sync_policy.unwrap().automated.unwrap();
        assert!(automated.prune);
        let p = params(json!({"cluster": "c2", "url": "u", "autoSync": false}));
        let app = renderer
            .application(&t, &p, Some(patch), false, "argocd")
            .unwrap();
        assert!(app.spec.sync_policy.is_none());
        let err = renderer
            .application(&t, &p, Some("[1, 2]"), false, "argocd")
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid templatePatch"), "{err}");
    }

    #[test]
    fn map_keys_are_rendered_too() {
        let renderer = Renderer::new(true, &[]).unwrap();
        let out = renderer
            .render_value(
                &json!({"{{.key}}": ["{{.value}}", 3]}),
                &params(json!({"key": "k", "value": "v"})),
            )
            .unwrap();
        assert_eq!(out, json!({"k": ["v", 3]}));
    }
}
