//! `/api/v1/applications`: the Applications of the control namespace, as far as RBAC lets the
//! caller see them, and sync requests.

use axum::extract::{Path, RawQuery, State};
use axum::{Extension, Json};
use ferry_types::Application;
use ferry_types::application::{
    Operation, OperationInitiator, SyncOperation, SyncOperationResource, SyncStrategy,
};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde::Deserialize;
use serde_json::{Value, json};

use super::authn::Caller;
use super::authz::{authorize, visible};
use super::error::ApiError;
use super::state::AppState;
use crate::rbac::resources::{APPLICATIONS, GET, SYNC};

/// Rounds of read-change-write before giving up on an Application that keeps changing.
const ATTEMPTS: usize = 5;

/// The RBAC object of an Application of the control namespace: `<project>/<name>`.
fn rbac_object(app: &Application) -> String {
    format!(
        "{}/{}",
        app.spec.project,
        app.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The filters of a list request: `projects` (or Argo CD's older `project`), repeatable, and a
/// label `selector`.
#[derive(Debug, Default, PartialEq, Eq)]
struct ListFilter {
    projects: Vec<String>,
    selector: Option<String>,
}

impl ListFilter {
    fn parse(query: Option<&str>) -> Self {
        let mut filter = Self::default();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "project" | "projects" if !value.is_empty() => {
                    filter.projects.push(value.into_owned());
                }
                "selector" if !value.is_empty() => filter.selector = Some(value.into_owned()),
                _ => {}
            }
        }
        filter
    }

    fn admits(&self, app: &Application) -> bool {
        self.projects.is_empty() || self.projects.contains(&app.spec.project)
    }
}

/// `GET /api/v1/applications?projects=…&selector=…`.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let filter = ListFilter::parse(query.as_deref());
    let apps: Api<Application> = Api::namespaced(state.client(), state.namespace());
    let mut params = ListParams::default();
    if let Some(selector) = &filter.selector {
        params = params.labels(selector);
    }
    let listed = apps.list(&params).await.map_err(|err| match err {
        kube::Error::Api(status) if status.code == 400 => {
            ApiError::invalid_argument(format!("invalid selector: {}", status.message))
        }
        err => ApiError::kube("listing Applications", &err),
    })?;
    let settings = state.settings();
    let mut items = Vec::new();
    for app in listed.items.into_iter().filter(|app| filter.admits(app)) {
        if visible(&settings, &caller, APPLICATIONS, GET, &rbac_object(&app))? {
            items.push(app);
        }
    }
    Ok(Json(json!({
        "metadata": { "resourceVersion": listed.metadata.resource_version },
        "items": items,
    })))
}

/// The Application `name` if the caller may do `action` to it. A missing one is a 403 too, as
/// in Argo CD, so callers learn nothing of the apps they may not see.
async fn authorized_app(
    state: &AppState,
    caller: &Caller,
    name: &str,
    action: &str,
) -> Result<Application, ApiError> {
    let apps: Api<Application> = Api::namespaced(state.client(), state.namespace());
    let app = apps
        .get_opt(name)
        .await
        .map_err(|err| ApiError::kube("reading the Application", &err))?;
    let Some(app) = app else {
        tracing::info!(subject = %caller.name(), application = name, action, "no such application: permission denied");
        return Err(ApiError::permission_denied());
    };
    authorize(
        &state.settings(),
        caller,
        APPLICATIONS,
        action,
        &rbac_object(&app),
    )?;
    Ok(app)
}

/// `GET /api/v1/applications/{name}`.
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Application>, ApiError> {
    authorized_app(&state, &caller, &name, GET).await.map(Json)
}

/// Argo CD's `ApplicationSyncRequest`, the part ferry acts on.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SyncRequest {
    #[serde(default)]
    revision: String,
    #[serde(default)]
    prune: bool,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    strategy: Option<SyncStrategy>,
    #[serde(default)]
    resources: Vec<SyncOperationResource>,
    #[serde(default)]
    sync_options: Option<SyncOptions>,
}

#[derive(Deserialize, Default)]
pub struct SyncOptions {
    #[serde(default)]
    items: Vec<String>,
}

/// `POST /api/v1/applications/{name}/sync`: requests a sync the way `ferry app sync --async`
/// and Argo CD's API server do, by writing the Application's `operation` (and clearing the last
/// operation's state); the controller runs it. An empty revision is the target revision.
pub async fn sync(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Option<Json<SyncRequest>>,
) -> Result<Json<Application>, ApiError> {
    let request = body.map(|Json(body)| body).unwrap_or_default();
    let mut app = authorized_app(&state, &caller, &name, SYNC).await?;
    let operation = Operation {
        sync: Some(SyncOperation {
            revision: request.revision.clone(),
            prune: request.prune,
            dry_run: request.dry_run,
            sync_strategy: request.strategy,
            resources: request.resources,
            sync_options: request.sync_options.map(|o| o.items).unwrap_or_default(),
            ..SyncOperation::default()
        }),
        initiated_by: OperationInitiator {
            username: caller.name(),
            ..OperationInitiator::default()
        },
        ..Operation::default()
    };
    let apps: Api<Application> = Api::namespaced(state.client(), state.namespace());
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            // Re-read after a conflict; the project may have changed, so check RBAC again.
            app = authorized_app(&state, &caller, &name, SYNC).await?;
        }
        let mut next = app.clone();
        request_operation(&mut next, &operation)?;
        let mut patch = ferry_types::merge_patch(
            &serde_json::to_value(&app).map_err(|err| ApiError::internal("syncing", &err))?,
            &serde_json::to_value(&next).map_err(|err| ApiError::internal("syncing", &err))?,
        )
        .unwrap_or_else(|| json!({}));
        patch["metadata"]["resourceVersion"] = app.metadata.resource_version.clone().into();
        match apps
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(written) => {
                tracing::info!(application = name, by = %caller.name(), "sync requested");
                return Ok(Json(written));
            }
            Err(kube::Error::Api(status)) if status.is_conflict() => continue,
            Err(err) => return Err(ApiError::kube("requesting the sync", &err)),
        }
    }
    Err(ApiError::new(
        super::error::Code::Aborted,
        format!("application {name} kept changing; try again"),
    ))
}

/// Sets `operation` on `app`, unless one is requested or running, or auto-sync would sync to
/// another revision than the one requested.
fn request_operation(app: &mut Application, operation: &Operation) -> Result<(), ApiError> {
    let name = app.metadata.name.clone().unwrap_or_default();
    let running = app
        .status
        .as_ref()
        .and_then(|status| status.operation_state.as_ref())
        .is_some_and(|state| !state.phase.is_completed());
    if app.operation.is_some() || running {
        return Err(ApiError::failed_precondition(format!(
            "application {name}: another operation is already in progress"
        )));
    }
    let sync = operation.sync.as_ref();
    let requested = sync.map(|s| s.revision.as_str()).unwrap_or_default();
    let automated = app
        .spec
        .sync_policy
        .as_ref()
        .is_some_and(|policy| policy.is_automated());
    let target = app
        .sources()
        .first()
        .map(|source| source.target_revision.clone())
        .unwrap_or_default();
    if automated && !sync.is_some_and(|s| s.dry_run) && !requested.is_empty() && requested != target
    {
        return Err(ApiError::failed_precondition(format!(
            "cannot sync application {name} to {requested}: auto-sync is enabled and syncs to {target:?}"
        )));
    }
    app.operation = Some(operation.clone());
    // As Argo CD's API server does: the last operation's state goes, so the state that appears
    // next is this operation's.
    if let Some(status) = app.status.as_mut() {
        status.operation_state = None;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_filters_read_repeated_projects_and_a_selector() {
        let filter = ListFilter::parse(Some(
            "projects=team-a&project=team-b&selector=app%3Dguestbook&other=x&projects=",
        ));
        assert_eq!(
            filter,
            ListFilter {
                projects: vec!["team-a".into(), "team-b".into()],
                selector: Some("app=guestbook".into()),
            }
        );
        assert_eq!(ListFilter::parse(None), ListFilter::default());
    }

    fn app(yaml: &str) -> Application {
        serde_yaml::from_str(yaml).unwrap()
    }

    const APP: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: guestbook}
spec:
  project: team-a
  source: {repoURL: "https://git.example.com/apps", path: guestbook, targetRevision: main}
  destination: {server: "https://kubernetes.default.svc", namespace: guestbook}
"#;

    fn sync_to(revision: &str) -> Operation {
        Operation {
            sync: Some(SyncOperation {
                revision: revision.into(),
                ..SyncOperation::default()
            }),
            ..Operation::default()
        }
    }

    #[test]
    fn a_sync_is_requested_once() {
        let mut guestbook = app(APP);
        assert_eq!(rbac_object(&guestbook), "team-a/guestbook");
        request_operation(&mut guestbook, &sync_to("")).unwrap();
        assert_eq!(guestbook.operation, Some(sync_to("")));
        let err = request_operation(&mut guestbook, &sync_to("")).unwrap_err();
        assert_eq!(err.code, super::super::error::Code::FailedPrecondition);
    }

    #[test]
    fn auto_synced_apps_only_sync_to_their_target() {
        let mut automated = app(&format!(
            "{APP}  syncPolicy: {{automated: {{prune: true}}}}\n"
        ));
        let err = request_operation(&mut automated.clone(), &sync_to("v2")).unwrap_err();
        assert!(err.message.contains("auto-sync is enabled"), "{err:?}");
        request_operation(&mut automated, &sync_to("main")).unwrap();
    }
}
