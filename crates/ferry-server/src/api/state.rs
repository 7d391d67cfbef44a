//! What every request shares: the Kubernetes client, the control namespace, the login guard and
//! the current settings snapshot, which a watcher replaces whenever `argocd-cm`, `argocd-secret`,
//! `argocd-rbac-cm` or an AppProject changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_types::AppProject;
use tokio::sync::watch;

use super::error::ApiError;
use crate::auth::{AuthSettings, LoginGuard, SessionManager};
use crate::rbac::Policy;
use crate::webhook::WebhookSecrets;

/// One consistent view of the settings. A part that cannot be read is kept as its error, so
/// requests needing it fail (closed) with the reason instead of running on older settings.
pub struct Snapshot {
    sessions: Result<Arc<SessionManager>, String>,
    policy: Result<Policy, String>,
    projects: Vec<AppProject>,
    webhook_secrets: WebhookSecrets,
}

impl Snapshot {
    /// The snapshot the data of `argocd-cm`, `argocd-secret` and `argocd-rbac-cm` and these
    /// AppProjects describe.
    pub fn build(
        config_map: &BTreeMap<String, String>,
        secret: &BTreeMap<String, Vec<u8>>,
        rbac_config_map: &BTreeMap<String, String>,
        projects: Vec<AppProject>,
    ) -> Self {
        let sessions = AuthSettings::from_data(config_map, secret)
            .and_then(SessionManager::new)
            .map(Arc::new)
            .map_err(|err| err.to_string());
        let policy = Policy::from_config_map_data(rbac_config_map)
            .map(|policy| policy.with_projects(&projects))
            .map_err(|err| err.to_string());
        Self {
            sessions,
            policy,
            projects,
            webhook_secrets: WebhookSecrets::from_secret_data(secret),
        }
    }

    /// Whatever is wrong with the settings, for the log.
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> =
            [&self.sessions.as_ref().err(), &self.policy.as_ref().err()]
                .into_iter()
                .flatten()
                .map(|problem| problem.to_string())
                .collect();
        if let Ok(policy) = &self.policy {
            problems.extend(
                policy
                    .rejected_project_policies()
                    .iter()
                    .map(|rejected| rejected.to_string()),
            );
        }
        problems
    }

    pub fn sessions(&self) -> Result<&Arc<SessionManager>, ApiError> {
        self.sessions
            .as_ref()
            .map_err(|err| ApiError::unavailable(format!("authentication is unavailable: {err}")))
    }

    pub fn policy(&self) -> Result<&Policy, ApiError> {
        self.policy
            .as_ref()
            .map_err(|err| ApiError::unavailable(format!("authorization is unavailable: {err}")))
    }

    /// The Git providers' webhook secrets from `argocd-secret`.
    pub fn webhook_secrets(&self) -> &WebhookSecrets {
        &self.webhook_secrets
    }

    pub fn project(&self, name: &str) -> Option<&AppProject> {
        self.projects
            .iter()
            .find(|project| project.metadata.name.as_deref() == Some(name))
    }
}

/// Shared by all requests; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    client: kube::Client,
    namespace: String,
    settings: watch::Receiver<Arc<Snapshot>>,
    login_guard: Arc<LoginGuard>,
}

impl AppState {
    /// `settings` follows the current snapshot (see [`crate::settings_watch`]).
    pub fn new(
        client: kube::Client,
        namespace: impl Into<String>,
        settings: watch::Receiver<Arc<Snapshot>>,
        login_guard: LoginGuard,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                namespace: namespace.into(),
                settings,
                login_guard: Arc::new(login_guard),
            }),
        }
    }

    pub fn client(&self) -> kube::Client {
        self.inner.client.clone()
    }

    /// Where Argo CD's settings, Applications and AppProjects are.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The settings as they are now; a request keeps using the snapshot it took.
    pub fn settings(&self) -> Arc<Snapshot> {
        self.inner.settings.borrow().clone()
    }

    pub fn login_guard(&self) -> &Arc<LoginGuard> {
        &self.inner.login_guard
    }
}
