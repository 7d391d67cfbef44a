//! Creating, changing and deleting Applications, with Argo CD's rules: the caller needs
//! `create`/`update`/`delete` on `<project>/<name>` (and `update` on both projects when an app
//! moves), the app is always validated against its project, a create of an existing app only
//! succeeds unchanged or with `upsert`, and a delete cascades unless `cascade=false`.
//!
//! `validate=false` is accepted and skips nothing: in Argo CD it skips only the repository and
//! render checks, which ferry's server does not make, while the project's existence and its
//! source and destination permissions are checked whatever the caller asks.

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use ferry_types::Application;
use ferry_types::application::{ApplicationSpec, finalizer};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde::Deserialize;
use serde_json::{Value, json};

use super::app_namespace::locate;
use super::applications::{authorized_app, modify_app, rbac_object};
use super::authn::Caller;
use super::authz::authorize;
use super::destinations::validate;
use super::error::ApiError;
use super::state::AppState;
use crate::rbac::resources::{APPLICATIONS, CREATE, DELETE, UPDATE};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct WriteQuery {
    upsert: bool,
}

/// What an update may change: the spec, labels, annotations and finalizers (as in Argo CD).
fn same_definition(a: &Application, b: &Application) -> bool {
    a.spec == b.spec
        && a.metadata.labels == b.metadata.labels
        && a.metadata.annotations == b.metadata.annotations
        && a.metadata.finalizers == b.metadata.finalizers
}

fn take_definition(into: &mut Application, from: &Application) {
    into.spec = from.spec.clone();
    into.metadata.labels = from.metadata.labels.clone();
    into.metadata.annotations = from.metadata.annotations.clone();
    into.metadata.finalizers = from.metadata.finalizers.clone();
}

fn name_of(app: &Application) -> Result<String, ApiError> {
    app.metadata
        .name
        .clone()
        .filter(|name| !name.is_empty())
        .ok_or_else(|| ApiError::invalid_argument("the application has no metadata.name"))
}

/// `POST /api/v1/applications?upsert=`.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<WriteQuery>,
    Json(mut app): Json<Application>,
) -> Result<Json<Application>, ApiError> {
    default_project(&mut app.spec);
    let namespace = match app.metadata.namespace.as_deref() {
        None | Some("") => state.namespace().to_string(),
        Some(namespace) => namespace.to_string(),
    };
    // The app's whole name, as the app routes take it.
    let name = match name_of(&app)? {
        name if namespace == state.namespace() => name,
        name => format!("{namespace}/{name}"),
    };
    locate(&state, &name)?;
    app.metadata.namespace = Some(namespace.clone());
    authorize(
        &state.settings(),
        &caller,
        APPLICATIONS,
        CREATE,
        &rbac_object(&app, state.namespace()),
    )?;
    validate(&state, &app).await?;
    app.metadata.resource_version = None;
    app.status = None;
    app.operation = None;
    let apps: Api<Application> = Api::namespaced(state.client(), &namespace);
    match apps.create(&PostParams::default(), &app).await {
        Ok(created) => {
            state
                .audit()
                .record(&caller, &created, "ResourceCreated", "created application")
                .await;
            Ok(Json(created))
        }
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = authorized_app(&state, &caller, &name, CREATE).await?;
            if same_definition(&existing, &app) {
                return Ok(Json(existing));
            }
            if !query.upsert {
                return Err(ApiError::invalid_argument(format!(
                    "existing application spec is different, use upsert flag to force update (application {name})"
                )));
            }
            update_definition(&state, &caller, &name, &app)
                .await
                .map(Json)
        }
        Err(err) => Err(ApiError::kube("creating the Application", &err)),
    }
}

/// Writes `app`'s definition over the existing app `name`; the caller needs `update` on the
/// project it is in and on the project it moves to.
async fn update_definition(
    state: &AppState,
    caller: &Caller,
    name: &str,
    app: &Application,
) -> Result<Application, ApiError> {
    authorize(
        &state.settings(),
        caller,
        APPLICATIONS,
        UPDATE,
        &rbac_object(app, state.namespace()),
    )?;
    let written = modify_app(state, caller, name, UPDATE, |existing| {
        take_definition(existing, app);
        Ok(())
    })
    .await?;
    state
        .audit()
        .record(caller, &written, "ResourceUpdated", "updated application")
        .await;
    Ok(written)
}

/// `PUT /api/v1/applications/{name}`: the app's spec, labels, annotations and
/// finalizers become the body's.
pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Json(mut app): Json<Application>,
) -> Result<Json<Application>, ApiError> {
    if name_of(&app)? != name {
        return Err(ApiError::invalid_argument(format!(
            "the body names application {:?}, the path {name:?}",
            app.metadata.name.unwrap_or_default()
        )));
    }
    app.metadata.namespace = Some(state.namespace().to_string());
    default_project(&mut app.spec);
    validate(&state, &app).await?;
    update_definition(&state, &caller, &name, &app)
        .await
        .map(Json)
}

/// `PUT /api/v1/applications/{name}/spec`: the body is the new spec; answers it.
pub async fn update_spec(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Json(spec): Json<ApplicationSpec>,
) -> Result<Json<ApplicationSpec>, ApiError> {
    let mut app = authorized_app(&state, &caller, &name, UPDATE).await?;
    app.spec = spec;
    default_project(&mut app.spec);
    validate(&state, &app).await?;
    update_definition(&state, &caller, &name, &app)
        .await
        .map(|written| Json(written.spec))
}

/// An app that names no project is in `default`, as Argo CD's server writes it (the `argocd` CLI
/// sends no project unless told one).
fn default_project(spec: &mut ApplicationSpec) {
    if spec.project.is_empty() {
        spec.project = ferry_types::application::DEFAULT_PROJECT.to_string();
    }
}

/// Argo CD's `ApplicationPatchRequest`: a JSON patch or a merge patch, as a string.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchRequest {
    patch: String,
    #[serde(default)]
    patch_type: String,
}

/// `PATCH /api/v1/applications/{name}`: the patch applies to the whole app; what it changes of
/// the definition is written (validated) like an update.
pub async fn patch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Json(request): Json<PatchRequest>,
) -> Result<Json<Application>, ApiError> {
    let app = authorized_app(&state, &caller, &name, UPDATE).await?;
    let patched = apply_patch(&app, &request)?;
    validate(&state, &patched).await?;
    update_definition(&state, &caller, &name, &patched)
        .await
        .map(Json)
}

fn apply_patch(app: &Application, request: &PatchRequest) -> Result<Application, ApiError> {
    let invalid = |what: &str, err: &dyn std::fmt::Display| {
        ApiError::invalid_argument(format!("invalid {what} patch: {err}"))
    };
    let mut value =
        serde_json::to_value(app).map_err(|err| ApiError::internal("patching", &err))?;
    let patch: Value = serde_json::from_str(&request.patch).map_err(|err| invalid("JSON", &err))?;
    match request.patch_type.as_str() {
        "json" | "" => {
            let patch: json_patch::Patch =
                serde_json::from_value(patch).map_err(|err| invalid("JSON", &err))?;
            json_patch::patch(&mut value, &patch).map_err(|err| invalid("JSON", &err))?;
        }
        "merge" => json_patch::merge(&mut value, &patch),
        other => {
            return Err(ApiError::invalid_argument(format!(
                "unknown patch type {other:?}: use json or merge"
            )));
        }
    }
    let patched: Application =
        serde_json::from_value(value).map_err(|err| invalid("resulting", &err))?;
    if patched.metadata.name != app.metadata.name {
        return Err(ApiError::invalid_argument(
            "a patch cannot rename an application",
        ));
    }
    Ok(patched)
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct DeleteQuery {
    cascade: Option<bool>,
    propagation_policy: Option<String>,
}

/// `DELETE /api/v1/applications/{name}?cascade=&propagationPolicy=foreground|background`:
/// cascading (the default) puts the resources finalizer of the chosen propagation on the app
/// first, so the controller deletes its resources; `cascade=false` takes it off, so they stay.
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(query): Query<DeleteQuery>,
) -> Result<Json<Value>, ApiError> {
    let cascade = query.cascade.unwrap_or(true);
    let wanted = match query.propagation_policy.as_deref() {
        None | Some("") | Some("foreground") => finalizer::RESOURCES,
        Some("background") => finalizer::RESOURCES_BACKGROUND,
        Some(other) => {
            return Err(ApiError::invalid_argument(format!(
                "unknown propagation policy {other:?}: use foreground or background"
            )));
        }
    };
    let app = modify_app(&state, &caller, &name, DELETE, |app| {
        let finalizers = app.metadata.finalizers.get_or_insert_default();
        finalizers.retain(|f| {
            ![
                finalizer::RESOURCES,
                finalizer::RESOURCES_FOREGROUND,
                finalizer::RESOURCES_BACKGROUND,
            ]
            .contains(&f.as_str())
        });
        if cascade {
            finalizers.push(wanted.to_string());
        }
        Ok(())
    })
    .await?;
    let (namespace, app_name) = locate(&state, &name)?;
    let apps: Api<Application> = Api::namespaced(state.client(), namespace);
    apps.delete(app_name, &DeleteParams::default())
        .await
        .map_err(|err| ApiError::kube("deleting the Application", &err))?;
    let how = if cascade {
        "with its resources"
    } else {
        "keeping its resources"
    };
    state
        .audit()
        .record(
            &caller,
            &app,
            "ResourceDeleted",
            &format!("deleted application {how}"),
        )
        .await;
    Ok(Json(json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: guestbook, labels: {team: a}}
spec:
  project: default
  source: {repoURL: "https://git.example.com/apps", path: guestbook, targetRevision: main}
  destination: {server: "https://kubernetes.default.svc", namespace: guestbook}
"#;

    fn patch(patch: &str, patch_type: &str) -> Result<Application, ApiError> {
        let app: Application = serde_yaml::from_str(APP).unwrap();
        apply_patch(
            &app,
            &PatchRequest {
                patch: patch.into(),
                patch_type: patch_type.into(),
            },
        )
    }

    #[test]
    fn json_and_merge_patches_change_the_app() {
        let patched = patch(
            r#"[{"op": "replace", "path": "/spec/source/targetRevision", "value": "v2"}]"#,
            "json",
        )
        .unwrap();
        assert_eq!(patched.spec.source.unwrap().target_revision, "v2");
        let patched = patch(
            r#"{"metadata": {"labels": {"team": null, "tier": "web"}}}"#,
            "merge",
        )
        .unwrap();
        assert_eq!(
            patched
                .metadata
                .labels
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            vec![("tier".to_string(), "web".to_string())]
        );
    }

    #[test]
    fn bad_patches_are_invalid_arguments() {
        for (body, kind) in [
            ("not json", "merge"),
            (r#"[{"op": "remove", "path": "/spec/nothing"}]"#, "json"),
            (r#"{"metadata": {"name": "other"}}"#, "merge"),
            (r#"{"spec": {"project": 7}}"#, "merge"),
            ("{}", "strategic"),
        ] {
            let err = patch(body, kind).unwrap_err();
            assert_eq!(
                err.code,
                super::super::error::Code::InvalidArgument,
                "{body}"
            );
        }
    }
}
