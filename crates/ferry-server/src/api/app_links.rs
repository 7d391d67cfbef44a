//! Deep links (`argocd-cm`'s `application.links` and `resource.links`), as Argo CD's server
//! answers them to the UI: each link's `if` an expr-lang condition and its `url` a Go template
//! (with Sprig) over `app`/`application`, `cluster` (its name, server, namespaces, project,
//! labels and annotations, never its credentials), and for a resource `resource` (Secret values
//! masked) and `project`; `project.links` of a project over `project` alone
//! ([`super::projects`]). A link whose condition or template fails is left out and logged.

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use ferry_appset::template::go;
use ferry_types::Application;
use ferry_workflow::expr_json;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::app_resources::{ResourceQuery, target};
use super::applications::authorized_app;
use super::authn::Caller;
use super::destinations::cluster_of;
use super::error::ApiError;
use super::state::AppState;
use crate::rbac::resources::GET;

const APPLICATION_LINKS: &str = "application.links";
const RESOURCE_LINKS: &str = "resource.links";

/// One link of argocd-cm, Argo CD's `DeepLink`.
#[derive(Deserialize, Debug)]
pub(super) struct DeepLink {
    url: String,
    title: String,
    description: Option<String>,
    #[serde(rename = "icon.class")]
    icon_class: Option<String>,
    #[serde(rename = "if")]
    condition: Option<String>,
}

/// `GET /api/v1/applications/{name}/links`: the app's deep links.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let app = authorized_app(&state, &caller, &name, GET).await?;
    let links = configured(&state, APPLICATION_LINKS)?;
    let mut scope = app_scope(&state, &app).await?;
    scope.remove("project");
    Ok(Json(
        json!({"items": evaluate(&links, &Value::Object(scope), &name)}),
    ))
}

/// `GET /api/v1/applications/{name}/resource/links?namespace=&resourceName=&version=&group=&kind=`:
/// the deep links of one of the app's resources (of the app itself, when it names the app).
pub async fn list_for_resource(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(query): Query<ResourceQuery>,
) -> Result<Json<Value>, ApiError> {
    let app = authorized_app(&state, &caller, &name, GET).await?;
    let links = configured(&state, RESOURCE_LINKS)?;
    let resource = if query.group == "argoproj.io"
        && query.kind == "Application"
        && app.metadata.name.as_deref() == Some(query.resource_name.as_str())
    {
        to_value(&app)?
    } else {
        let (_, target) = target(&state, &app, &query).await?;
        let object = target
            .api
            .get(&target.name)
            .await
            .map_err(|err| ApiError::kube("reading the resource", &err))?;
        let mut value = to_value(&object)?;
        ferry_diff::mask_secrets(None, Some(&mut value));
        value
    };
    let mut scope = app_scope(&state, &app).await?;
    scope.insert("resource".into(), resource);
    Ok(Json(json!({
        "items": evaluate(&links, &Value::Object(scope), &query.resource_name),
    })))
}

fn to_value(object: &impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(object).map_err(|err| ApiError::internal("reading", &err))
}

/// The links of `key` in argocd-cm (none when unset); YAML that is no list of links is an error.
pub(super) fn configured(state: &AppState, key: &str) -> Result<Vec<DeepLink>, ApiError> {
    let settings = state.settings();
    let Some(text) = settings.argocd_cm().get(key) else {
        return Ok(Vec::new());
    };
    serde_yaml::from_str(text).map_err(|err| {
        ApiError::new(
            super::error::Code::Internal,
            format!("failed to read {key} deep links from argocd-cm: {err}"),
        )
    })
}

/// `app`, `application`, `cluster` (when the destination is a registered cluster) and `project`
/// (without its status, which holds its tokens).
async fn app_scope(state: &AppState, app: &Application) -> Result<Map<String, Value>, ApiError> {
    let app_value = to_value(app)?;
    let mut scope = Map::new();
    scope.insert("app".into(), app_value.clone());
    scope.insert("application".into(), app_value);
    // As Argo CD: a destination that names no cluster leaves `cluster` out.
    if let Ok(cluster) = cluster_of(state, app).await {
        let mut data = json!({"server": cluster.server, "name": cluster.name});
        if !cluster.namespaces.is_empty() {
            data["namespaces"] = json!(cluster.namespaces);
        }
        if !cluster.project.is_empty() {
            data["project"] = json!(cluster.project);
        }
        if !cluster.labels.is_empty() {
            data["labels"] = json!(cluster.labels);
        }
        if !cluster.annotations.is_empty() {
            data["annotations"] = json!(cluster.annotations);
        }
        scope.insert("cluster".into(), data);
    }
    if let Some(project) = state.settings().project(app.spec.project.as_str()) {
        let mut project = to_value(project)?;
        if let Some(fields) = project.as_object_mut() {
            fields.remove("status");
        }
        scope.insert("project".into(), project);
    }
    Ok(scope)
}

/// Argo CD's `LinkInfo` of each link whose condition holds over `scope`.
pub(super) fn evaluate(links: &[DeepLink], scope: &Value, name: &str) -> Vec<Value> {
    let mut items = Vec::new();
    for link in links {
        if let Some(condition) = &link.condition {
            match holds(condition, scope) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(err) => {
                    tracing::warn!(condition, name, "deep link condition: {err}");
                    continue;
                }
            }
        }
        let url = match go::render(&link.url, &go::from_json(scope), go::GoOptions::default()) {
            Ok(url) => url,
            Err(err) => {
                tracing::warn!(url = link.url, name, "deep link template: {err}");
                continue;
            }
        };
        let mut item = json!({"title": link.title, "url": url});
        if let Some(description) = &link.description {
            item["description"] = json!(description);
        }
        if let Some(icon_class) = &link.icon_class {
            item["iconClass"] = json!(icon_class);
        }
        items.push(item);
    }
    items
}

/// Evaluates an expr-lang condition over `scope`; anything but a boolean is an error.
fn holds(condition: &str, scope: &Value) -> Result<bool, String> {
    match expr_json::evaluate(condition, &expr_json::context(scope))? {
        expr_json::Value::Bool(holds) => Ok(holds),
        other => Err(format!("evaluated to non-boolean value {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(yaml: &str) -> Vec<DeepLink> {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn links_are_templates_shown_when_their_condition_holds() {
        let scope = json!({
            "app": {"metadata": {"name": "guestbook", "labels": {"team": "blue"}},
                    "spec": {"project": "default"}},
            "cluster": {"name": "in-cluster", "server": "https://kubernetes.default.svc"},
        });
        let configured = links(
            r#"
- url: https://grafana.example.com/d/{{ .app.metadata.name }}?cluster={{ .cluster.name | upper }}
  title: Grafana
  description: the app's dashboard
  icon.class: fa-chart-line
- url: https://blue.example.com
  title: Blue
  if: app.metadata.labels.team == "blue"
- url: https://red.example.com
  title: Red
  if: app.metadata.labels?.team == "red"
- url: https://broken.example.com
  title: Not boolean
  if: app.metadata.name
"#,
        );
        let items = evaluate(&configured, &scope, "guestbook");
        assert_eq!(
            items,
            vec![
                json!({
                    "title": "Grafana",
                    "url": "https://grafana.example.com/d/guestbook?cluster=IN-CLUSTER",
                    "description": "the app's dashboard",
                    "iconClass": "fa-chart-line",
                }),
                json!({"title": "Blue", "url": "https://blue.example.com"}),
            ]
        );
    }
}
