//! `POST /api/v1/repositories/{url}/appdetails` (Argo CD's `GetAppDetails`, what the app forms
//! show of a source before and after it is saved): the source's type and, for Helm, its value
//! files, `values.yaml` and the parameters they set; for Kustomize, the images of its build;
//! for a plugin, the parameters the plugin announces. Read from a checkout of the request's
//! own; the type is found and Kustomize built by ferry-render, as the controller does.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use ferry_render::{AppContext, KustomizeOptions, RenderConfig, Renderer};
use ferry_types::Application;
use ferry_types::source::{ApplicationSource, SourceType};
use kube::Api;
use serde::Deserialize;
use serde_json::{Value, json};

use super::app_namespace::locate;
use super::argo_secrets::rbac_object;
use super::authn::Caller;
use super::authz::authorize;
use super::error::ApiError;
use super::repo_apps::{RequestCheckout, checkout, require_permitted};
use super::repositories::repo_object;
use super::state::AppState;
use crate::rbac::resources::{APPLICATIONS, CREATE, GET, REPOSITORIES};

/// Argo CD's `RepoAppDetailsQuery`.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct DetailsQuery {
    source: Option<ApplicationSource>,
    app_name: String,
    app_project: String,
    source_index: i32,
    version_id: i32,
}

/// As Argo CD: the caller may get the repository and the app; an app that does not exist yet
/// the caller must be allowed to create, and an existing one only shows sources it has (or had
/// in its history), so nobody reads a repository through an app they cannot change.
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(url): Path<String>,
    Json(query): Json<DetailsQuery>,
) -> Result<Json<Value>, ApiError> {
    let mut source = query
        .source
        .ok_or_else(|| ApiError::invalid_argument("missing payload in request"))?;
    if source.repo_url.is_empty() {
        source.repo_url = url;
    }
    let settings = state.settings();
    let project = query.app_project.as_str();
    let object = repo_object(&state, &source.repo_url, project).await?;
    authorize(&settings, &caller, REPOSITORIES, GET, &object)?;
    let app_object = rbac_object(project, &query.app_name);
    authorize(&settings, &caller, APPLICATIONS, GET, &app_object)?;
    match existing_app(&state, &query.app_name).await? {
        None => authorize(&settings, &caller, APPLICATIONS, CREATE, &app_object)?,
        Some(app) => {
            if app.spec.project != project
                || !in_history(&app, &source, query.source_index, query.version_id)
            {
                return Err(ApiError::permission_denied());
            }
        }
    }
    require_permitted(&settings, project, &source.repo_url)?;
    if source.is_chart() || source.repo_url.starts_with("oci://") {
        return Err(ApiError::failed_precondition(
            "ferry answers app details of Git sources only",
        ));
    }
    let checkout = checkout(&state, &source.repo_url, &source.target_revision, project).await?;
    let root = canonical(checkout.checkout.path())?;
    let app_dir = within(&root, &source.path)?;
    source.explicit_type().map_err(ApiError::invalid_argument)?;
    let (_work_dir, renderer) = renderer(&state, &checkout)?;
    let app = app_context(&state, &query.app_name, project)?;
    let found = renderer
        .inspect_checkout(
            &app,
            &source,
            checkout.checkout.path(),
            checkout.checkout.sha(),
        )
        .await
        .map_err(|err| ApiError::failed_precondition(err.to_string()))?;
    let mut details = match found.kind {
        SourceType::Helm => json!({"helm": helm_details(&root, &app_dir, &source)?}),
        SourceType::Kustomize => {
            let images = kustomize_images(&renderer, &app, &source, &checkout).await?;
            json!({"kustomize": {"images": images}})
        }
        SourceType::Directory => json!({"directory": {}}),
        SourceType::Plugin => {
            let announced = found
                .plugin
                .map(|plugin| plugin.parameters)
                .unwrap_or_default();
            json!({"plugin": {"parametersAnnouncement": announced}})
        }
    };
    details["type"] = found.kind.to_string().into();
    Ok(Json(details))
}

/// The app the details are for, if it exists.
async fn existing_app(state: &AppState, name: &str) -> Result<Option<Application>, ApiError> {
    if name.is_empty() {
        return Ok(None);
    }
    let (namespace, name) = locate(state, name)?;
    Api::<Application>::namespaced(state.client(), namespace)
        .get_opt(name)
        .await
        .map_err(|err| ApiError::kube("reading the Application", &err))
}

/// Argo CD's `isSourceInHistory`: one of the app's sources now, or the source of a deployment
/// in its history with the revision it deployed (of a multi-source one, the entry `version_id`'s
/// source `index`).
fn in_history(app: &Application, source: &ApplicationSource, index: i32, version_id: i32) -> bool {
    if app.sources().contains(source) {
        return true;
    }
    let history = app.status.as_ref().map(|status| status.history.as_slice());
    history.unwrap_or_default().iter().any(|deployed| {
        if deployed.sources.is_empty() {
            deployed.source.as_ref().is_some_and(|past| {
                let mut past = past.clone();
                past.target_revision.clone_from(&deployed.revision);
                &past == source
            })
        } else {
            let Ok(index) = usize::try_from(index) else {
                return false;
            };
            deployed.id == i64::from(version_id)
                && deployed
                    .sources
                    .get(index)
                    .zip(deployed.revisions.get(index))
                    .is_some_and(|(past, revision)| {
                        let mut past = past.clone();
                        past.target_revision.clone_from(revision);
                        &past == source
                    })
        }
    })
}

fn canonical(path: &FsPath) -> Result<PathBuf, ApiError> {
    path.canonicalize()
        .map_err(|err| ApiError::internal("reading the checkout", &err))
}

/// `path` of the checkout at `root`, which it may not leave (symbolic links included).
fn within(root: &FsPath, path: &str) -> Result<PathBuf, ApiError> {
    let outside =
        || ApiError::invalid_argument(format!("{path:?} is not a directory of the repository"));
    let dir = root.join(path).canonicalize().map_err(|_| outside())?;
    if dir.starts_with(root) && dir.is_dir() {
        Ok(dir)
    } else {
        Err(outside())
    }
}

/// Argo CD's `HelmAppSpec` of a chart in Git: every values file under the chart, its
/// `values.yaml`, the parameters that and the source's value files set (flattened as
/// `a.b[0].c`), and the source's file parameters. Value files outside the checkout, missing
/// ones and those of other sources (`$ref/...`) are left out.
fn helm_details(
    root: &FsPath,
    app_dir: &FsPath,
    source: &ApplicationSource,
) -> Result<Value, ApiError> {
    let read = |path: &FsPath| -> Option<String> {
        let path = path.canonicalize().ok()?;
        (path.starts_with(root) && path.is_file())
            .then(|| std::fs::read_to_string(path).ok())
            .flatten()
    };
    let values = read(&app_dir.join("values.yaml"));
    let helm = source.helm.as_ref();
    let selected = helm
        .map(|helm| helm.value_files.as_slice())
        .unwrap_or_default();
    let mut parameters = BTreeMap::new();
    let files = values
        .iter()
        .cloned()
        .chain(selected.iter().filter_map(|file| read(&app_dir.join(file))));
    for file in files {
        let parsed: serde_yaml::Value = serde_yaml::from_str(&file).map_err(|err| {
            ApiError::failed_precondition(format!("failed to parse values: {err}"))
        })?;
        flatten(&parsed, String::new(), &mut parameters);
    }
    let parameters: Vec<Value> = parameters
        .into_iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    let file_parameters: Vec<Value> = helm
        .map(|helm| helm.file_parameters.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|file| json!({"name": file.name, "path": file.path}))
        .collect();
    Ok(json!({
        "valueFiles": value_files(app_dir),
        "values": values.unwrap_or_default(),
        "parameters": parameters,
        "fileParameters": file_parameters,
    }))
}

/// Files under `dir` whose name holds `values` and ends in `.yaml` or `.yml`, by their paths
/// relative to it, in the order Go's `filepath.Walk` visits them (lexical, depth first,
/// symbolic links not followed).
fn value_files(dir: &FsPath) -> Vec<String> {
    fn walk(root: &FsPath, current: &FsPath, found: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(current) else {
            return;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                walk(root, &path, found);
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let extension = path
                .extension()
                .map(|ext| ext.to_string_lossy().to_lowercase());
            if name.contains("values")
                && matches!(extension.as_deref(), Some("yaml" | "yml"))
                && let Ok(relative) = path.strip_prefix(root)
            {
                found.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    let mut found = Vec::new();
    walk(dir, dir, &mut found);
    found
}

/// Helm values as Argo CD's `flatVals`: maps by `.`, lists by `[i]`, scalars as Go prints them.
fn flatten(value: &serde_yaml::Value, prefix: String, out: &mut BTreeMap<String, String>) {
    use serde_yaml::Value as Y;
    match value {
        Y::Mapping(map) => {
            for (key, value) in map {
                let key = match key {
                    Y::String(key) => key.clone(),
                    other => scalar(other),
                };
                let name = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(value, name, out);
            }
        }
        Y::Sequence(items) => {
            for (index, item) in items.iter().enumerate() {
                flatten(item, format!("{prefix}[{index}]"), out);
            }
        }
        Y::Tagged(tagged) => flatten(&tagged.value, prefix, out),
        scalar_value => {
            out.insert(prefix, scalar(scalar_value));
        }
    }
}

fn scalar(value: &serde_yaml::Value) -> String {
    match value {
        serde_yaml::Value::Null => "<nil>".into(),
        serde_yaml::Value::Bool(flag) => flag.to_string(),
        serde_yaml::Value::Number(number) => number.to_string(),
        serde_yaml::Value::String(text) => text.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim_end()
            .to_string(),
    }
}

/// A renderer over the request's checkout, with the server's plugins, working in a directory
/// of its own (removed when the first value is dropped).
fn renderer(
    state: &AppState,
    checkout: &RequestCheckout,
) -> Result<(tempfile::TempDir, Renderer), ApiError> {
    let work_dir = tempfile::Builder::new()
        .prefix("ferry-server-app-details-")
        .tempdir()
        .map_err(|err| ApiError::internal("making a work directory", &err))?;
    let config = RenderConfig {
        work_dir: work_dir.path().to_path_buf(),
        plugins: state.plugins().to_vec(),
        ..RenderConfig::default()
    };
    let renderer = Renderer::new(Arc::new(checkout.cache.clone()), config);
    Ok((work_dir, renderer))
}

fn app_context(state: &AppState, app_name: &str, project: &str) -> Result<AppContext, ApiError> {
    Ok(AppContext {
        name: app_name.to_string(),
        project: project.to_string(),
        kustomize: KustomizeOptions::from_argocd_cm(state.settings().argocd_cm())
            .map_err(|err| ApiError::failed_precondition(format!("argocd-cm: {err}")))?,
        ..AppContext::default()
    })
}

/// Argo CD's Kustomize images: every `image` of the `containers` and `initContainers` of the
/// build's objects, sorted (repeats kept).
async fn kustomize_images(
    renderer: &Renderer,
    app: &AppContext,
    source: &ApplicationSource,
    checkout: &RequestCheckout,
) -> Result<Vec<String>, ApiError> {
    let (_, objects) = renderer
        .render_checkout(
            app,
            source,
            checkout.checkout.path(),
            checkout.checkout.sha(),
            &BTreeMap::new(),
        )
        .await
        .map_err(|err| ApiError::failed_precondition(err.to_string()))?;
    let mut images = Vec::new();
    for object in objects.iter() {
        collect_images(object, &mut images);
    }
    images.sort();
    Ok(images)
}

fn collect_images(value: &Value, images: &mut Vec<String>) {
    let Some(fields) = value.as_object() else {
        return;
    };
    for (key, value) in fields {
        match value {
            Value::Array(items) if key == "containers" || key == "initContainers" => {
                images.extend(items.iter().filter_map(|item| match item.get("image")? {
                    Value::String(image) => Some(image.clone()),
                    other => Some(other.to_string()),
                }));
            }
            Value::Array(items) => items.iter().for_each(|item| collect_images(item, images)),
            Value::Object(_) => collect_images(value, images),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_flatten_as_argo_cds_parameters() {
        let values: serde_yaml::Value = serde_yaml::from_str(
            "replicas: 2\nimage:\n  tag: '1.0'\n  pull: true\nports:\n- 80\n- name: web\nnothing: null\nempty: {}\n",
        )
        .unwrap();
        let mut out = BTreeMap::new();
        flatten(&values, String::new(), &mut out);
        assert_eq!(
            out,
            BTreeMap::from(
                [
                    ("replicas", "2"),
                    ("image.tag", "1.0"),
                    ("image.pull", "true"),
                    ("ports[0]", "80"),
                    ("ports[1].name", "web"),
                    ("nothing", "<nil>"),
                ]
                .map(|(k, v)| (k.to_string(), v.to_string()))
            )
        );
    }

    #[test]
    fn value_files_are_listed_in_walk_order() {
        let dir = tempfile::tempdir().unwrap();
        for file in [
            "values.yaml",
            "values-prod.yml",
            "Chart.yaml",
            "envs/a/values.yaml",
            "envs/b-values.YAML",
            "templates/deployment.yaml",
            "values.json",
        ] {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x: 1\n").unwrap();
        }
        assert_eq!(
            value_files(dir.path()),
            [
                "envs/a/values.yaml",
                "envs/b-values.YAML",
                "values-prod.yml",
                "values.yaml"
            ]
        );
    }

    #[test]
    fn images_come_from_containers_and_init_containers_anywhere() {
        let objects = json!([
            {"kind": "Deployment", "spec": {"template": {"spec": {
                "initContainers": [{"image": "busybox:1"}],
                "containers": [{"image": "nginx:1.25"}, {"name": "no-image"}]}}}},
            {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"image": "alpine:3"}]}}}}}},
            {"kind": "ConfigMap", "data": {"image": "not-a-container"}},
        ]);
        let mut images = Vec::new();
        for object in objects.as_array().unwrap() {
            collect_images(object, &mut images);
        }
        images.sort();
        assert_eq!(images, ["alpine:3", "busybox:1", "nginx:1.25"]);
    }
}
