//! The filters of Application lists and of the event stream, from the query string: `name`
//! (`<namespace>/<name>` names an app outside the control namespace), `appNamespace`,
//! `projects` (or Argo CD's older `project`, repeatable), a label `selector`, `repo`, and
//! ferry's `sync` and `health` (status codes such as `OutOfSync`, `Degraded`).

use ferry_types::Application;
use kube::core::{Selector, SelectorExt};

use super::error::ApiError;
use super::selector;
use crate::webhook::same_repository;

#[derive(Debug, Default)]
pub struct AppFilter {
    name: Option<String>,
    namespace: Option<String>,
    projects: Vec<String>,
    selector: Option<Selector>,
    repo: Option<String>,
    sync: Option<String>,
    health: Option<String>,
}

impl AppFilter {
    /// A `name` without a namespace names an app of the control namespace `control`.
    pub fn parse(query: Option<&str>, control: &str) -> Result<Self, ApiError> {
        let mut filter = Self::default();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if value.is_empty() {
                continue;
            }
            let value = value.into_owned();
            match key.as_ref() {
                "name" => match value.split_once('/') {
                    Some((namespace, name)) => {
                        filter.namespace = Some(namespace.to_string());
                        filter.name = Some(name.to_string());
                    }
                    None => filter.name = Some(value),
                },
                "appNamespace" => filter.namespace = Some(value),
                "project" | "projects" => filter.projects.push(value),
                "selector" => {
                    filter.selector = Some(selector::parse(&value).map_err(|err| {
                        ApiError::invalid_argument(format!("invalid selector: {err}"))
                    })?);
                }
                "repo" => filter.repo = Some(value),
                "sync" => filter.sync = Some(value),
                "health" => filter.health = Some(value),
                _ => {}
            }
        }
        if filter.name.is_some() && filter.namespace.is_none() {
            filter.namespace = Some(control.to_string());
        }
        Ok(filter)
    }

    /// Whether `app` passes every filter; runs per app on every list and stream event, so
    /// nothing is computed for a filter that is not set.
    pub fn admits(&self, app: &Application) -> bool {
        let status = app.status.as_ref();
        // Status codes compare case-insensitively, as `sync=outofsync` is meant.
        let code_is = |wanted: &Option<String>, actual: &dyn Fn() -> Option<String>| {
            wanted.as_deref().is_none_or(|wanted| {
                actual().is_some_and(|actual| actual.eq_ignore_ascii_case(wanted))
            })
        };
        self.name
            .as_deref()
            .is_none_or(|name| app.metadata.name.as_deref() == Some(name))
            && self
                .namespace
                .as_deref()
                .is_none_or(|namespace| app.metadata.namespace.as_deref() == Some(namespace))
            && (self.projects.is_empty() || self.projects.contains(&app.spec.project))
            && self.selector.as_ref().is_none_or(|selector| {
                selector.matches(app.metadata.labels.as_ref().unwrap_or(&Default::default()))
            })
            && self.repo.as_deref().is_none_or(|repo| {
                app.sources()
                    .iter()
                    .any(|source| same_repository(&source.repo_url, repo))
            })
            && code_is(&self.sync, &|| status.map(|s| s.sync.status.to_string()))
            && code_is(&self.health, &|| {
                status.map(|s| s.health.status.to_string())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: guestbook, namespace: argocd, labels: {team: a, tier: web}}
spec:
  project: team-a
  source: {repoURL: "https://git.example.com/apps.git", path: guestbook, targetRevision: main}
  destination: {server: "https://kubernetes.default.svc", namespace: guestbook}
status:
  sync: {status: OutOfSync}
  health: {status: Healthy}
"#;

    #[test]
    fn every_filter_must_admit_the_app() {
        let app: Application = serde_yaml::from_str(APP).unwrap();
        let admits = |query: &str| {
            AppFilter::parse(Some(query), "argocd")
                .unwrap()
                .admits(&app)
        };
        assert!(admits(""));
        assert!(admits("projects=team-b&project=team-a&selector=team%3Da"));
        assert!(admits("name=guestbook&sync=OutOfSync&health=healthy"));
        assert!(admits("repo=https://git.example.com/apps"));
        assert!(!admits("projects=team-b"));
        assert!(!admits("selector=tier+in+(db)"));
        assert!(!admits("name=other"));
        assert!(admits("name=argocd/guestbook") && admits("appNamespace=argocd"));
        assert!(!admits("name=team-a/guestbook") && !admits("appNamespace=team-a"));
        assert!(!admits("sync=Synced"));
        assert!(!admits("repo=https://git.example.com/other"));
        assert!(AppFilter::parse(Some("selector=a+in+(b"), "argocd").is_err());
    }
}
