//! argocd-cm's `globalProjects`: each entry names a project (`projectName`) that is the global
//! project of every project its `labelSelector` selects, as Argo CD's `GetGlobalProjects` reads
//! it. ferry reports them (`/globalprojects`, `/detailed`); its project checks do not merge them.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use ferry_types::AppProject;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::ListParams;
use kube::core::{Selector, SelectorExt};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{fetch, projects};
use crate::api::authn::Caller;
use crate::api::authz::authorize;
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::rbac::resources::{GET, PROJECTS};

const GLOBAL_PROJECTS: &str = "globalProjects";

/// One entry of `globalProjects` (Argo CD's `GlobalProjectSettings`).
#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "camelCase", default)]
struct GlobalProject {
    project_name: String,
    label_selector: LabelSelector,
}

/// `GET /api/v1/projects/{name}/globalprojects`: the global projects of a project the caller may
/// get.
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state.settings(), &caller, PROJECTS, GET, &name)?;
    let project = fetch(&state, &name).await?;
    Ok(Json(json!({"items": of(&state, &project).await?})))
}

/// The global projects of `project`, in the order argocd-cm names them. As Argo CD, settings
/// that cannot be read give none (logged), and the walk stops at a selector it cannot use or a
/// global project that does not exist.
pub async fn of(state: &AppState, project: &AppProject) -> Result<Vec<AppProject>, ApiError> {
    let settings = match configured(state.settings().argocd_cm().get(GLOBAL_PROJECTS)) {
        Ok(settings) => settings,
        Err(err) => {
            tracing::warn!("Failed to get global project settings: {err}");
            return Ok(Vec::new());
        }
    };
    if settings.is_empty() {
        return Ok(Vec::new());
    }
    let all = projects(state)
        .list(&ListParams::default())
        .await
        .map_err(|err| ApiError::kube("listing AppProjects", &err))?
        .items;
    Ok(matching(&settings, project, &all))
}

fn configured(text: Option<&String>) -> Result<Vec<GlobalProject>, String> {
    match text.map(|text| text.trim()) {
        None | Some("") => Ok(Vec::new()),
        Some(text) => serde_yaml::from_str(text)
            .map_err(|err| format!("error unmarshalling global project settings: {err}")),
    }
}

fn matching(
    settings: &[GlobalProject],
    project: &AppProject,
    all: &[AppProject],
) -> Vec<AppProject> {
    let name = project.metadata.name.as_deref().unwrap_or_default();
    let mut found = Vec::new();
    for setting in settings {
        // A project is not its own global project.
        if setting.project_name == name {
            continue;
        }
        let Ok(selector) = Selector::try_from(setting.label_selector.clone()) else {
            break;
        };
        let labels = project.metadata.labels.clone().unwrap_or_default();
        if !selector.matches(&labels) {
            continue;
        }
        let Some(global) = all
            .iter()
            .find(|candidate| candidate.metadata.name.as_deref() == Some(&setting.project_name))
        else {
            break;
        };
        found.push(global.clone());
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(name: &str, labels: Value) -> AppProject {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {},
        }))
        .unwrap()
    }

    fn names(projects: &[AppProject]) -> Vec<&str> {
        projects
            .iter()
            .map(|project| project.metadata.name.as_deref().unwrap())
            .collect()
    }

    #[test]
    fn a_project_selected_by_a_label_selector_has_that_global_project() {
        let settings = configured(Some(
            &r"
- projectName: shared
  labelSelector:
    matchExpressions:
    - {key: tier, operator: In, values: [web, api]}
- projectName: team-a
  labelSelector:
    matchLabels: {team: a}
- projectName: platform
  labelSelector:
    matchLabels: {team: a}
"
            .to_string(),
        ))
        .unwrap();
        let web = project("web", json!({"tier": "web", "team": "a"}));
        let all = [
            project("shared", json!({})),
            project("team-a", json!({"team": "a"})),
            project("platform", json!({})),
            web.clone(),
        ];
        assert_eq!(
            names(&matching(&settings, &web, &all)),
            ["shared", "team-a", "platform"]
        );
        // Not its own global project; unselected ones have none.
        assert_eq!(names(&matching(&settings, &all[1], &all)), ["platform"]);
        assert!(matching(&settings, &all[0], &all).is_empty());
        // A missing global project ends the walk, as in Argo CD.
        assert_eq!(
            names(&matching(&settings, &web, &all[1..])),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn unreadable_settings_are_an_error_and_empty_ones_none() {
        assert!(configured(None).unwrap().is_empty());
        assert!(configured(Some(&" ".to_string())).unwrap().is_empty());
        let err = configured(Some(&"projectName: x".to_string())).unwrap_err();
        assert!(err.contains("global project settings"), "{err}");
    }
}
