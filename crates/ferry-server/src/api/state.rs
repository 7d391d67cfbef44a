//! What every request shares: the Kubernetes client, the control namespace, the login guard and
//! the current settings snapshot, which a watcher replaces whenever `argocd-cm`, `argocd-secret`,
//! `argocd-rbac-cm` or an AppProject changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_types::AppProject;
use ferry_types::secrets::{SERVER_SECRET_KEY, controller_view_token};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::app_views::ControllerClient;
use super::app_watch::AppWatch;
use super::audit::Audit;
use super::error::ApiError;
use crate::auth::{AuthSettings, LoginGuard, SessionManager};
use crate::metrics::ApiMetrics;
use crate::oidc::{LabelledSecrets, Providers, SsoSettings};
use crate::rbac::Policy;
use crate::webhook::WebhookSecrets;

/// One consistent view of the settings. A part that cannot be read is kept as its error, so
/// requests needing it fail (closed) with the reason instead of running on older settings.
pub struct Snapshot {
    sessions: Result<Arc<SessionManager>, String>,
    policy: Result<Policy, String>,
    projects: Vec<AppProject>,
    webhook_secrets: WebhookSecrets,
    sso: Result<SsoSettings, String>,
    config_map: Arc<BTreeMap<String, String>>,
    /// What the controller's view endpoints want to see, derived from the server key.
    controller_token: Option<String>,
}

impl Snapshot {
    /// The snapshot the data of `argocd-cm`, `argocd-secret` and `argocd-rbac-cm`, these
    /// AppProjects and the Secrets `oidc.config` may refer to describe.
    pub fn build(
        config_map: &BTreeMap<String, String>,
        secret: &BTreeMap<String, Vec<u8>>,
        rbac_config_map: &BTreeMap<String, String>,
        projects: Vec<AppProject>,
        labelled_secrets: &LabelledSecrets,
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
            sso: SsoSettings::from_data(config_map, secret, labelled_secrets),
            config_map: Arc::new(config_map.clone()),
            controller_token: secret
                .get(SERVER_SECRET_KEY)
                .filter(|key| !key.is_empty())
                .map(|key| controller_view_token(key)),
        }
    }

    /// Whatever is wrong with the settings, for the log.
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = [
            self.sessions.as_ref().err(),
            self.policy.as_ref().err(),
            self.sso.as_ref().err(),
        ]
        .into_iter()
        .flatten()
        .cloned()
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

    /// `url` and `oidc.config`; an error only for the requests that need SSO.
    pub fn sso(&self) -> Result<&SsoSettings, ApiError> {
        self.sso
            .as_ref()
            .map_err(|err| ApiError::unavailable(format!("SSO is unavailable: {err}")))
    }

    /// The data of `argocd-cm`, for settings read as they are.
    pub fn argocd_cm(&self) -> &BTreeMap<String, String> {
        &self.config_map
    }

    /// The token for the controller's view endpoints; `None` until `argocd-secret` has a
    /// server key.
    pub fn controller_token(&self) -> Option<&str> {
        self.controller_token.as_deref()
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
    oidc_providers: Providers,
    audit: Audit,
    apps: AppWatch,
    metrics: Arc<ApiMetrics>,
    stopping: CancellationToken,
    controller: Option<ControllerClient>,
}

impl AppState {
    /// `settings` follows the current snapshot (see [`crate::settings_watch`]).
    pub fn new(
        client: kube::Client,
        namespace: impl Into<String>,
        settings: watch::Receiver<Arc<Snapshot>>,
        login_guard: LoginGuard,
    ) -> Self {
        let namespace = namespace.into();
        Self {
            inner: Arc::new(Inner {
                audit: Audit::new(client.clone()),
                apps: AppWatch::start(client.clone(), &namespace),
                stopping: CancellationToken::new(),
                controller: None,
                client,
                namespace,
                settings,
                login_guard: Arc::new(login_guard),
                oidc_providers: Providers::default(),
                metrics: Arc::default(),
            }),
        }
    }

    /// Asks the application controller at `url` for what only it knows (managed resources,
    /// resource trees, manifests). Call before cloning the state.
    pub fn with_controller(mut self, url: url::Url) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("with_controller is called before the state is shared")
            .controller = Some(ControllerClient::new(url));
        self
    }

    pub fn controller(&self) -> Option<&ControllerClient> {
        self.inner.controller.as_ref()
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

    /// The OpenID providers SSO uses, with what they fetched kept across settings snapshots.
    pub fn oidc_providers(&self) -> &Providers {
        &self.inner.oidc_providers
    }

    /// The Applications of the control namespace, watched.
    pub fn apps(&self) -> &AppWatch {
        &self.inner.apps
    }

    /// The metrics requests, logins and webhook deliveries are recorded in.
    pub fn metrics(&self) -> &Arc<ApiMetrics> {
        &self.inner.metrics
    }

    /// Cancelled when the server shuts down, so endless responses (event streams, followed
    /// logs) end and graceful shutdown does not wait for them forever.
    pub fn stopping(&self) -> &CancellationToken {
        &self.inner.stopping
    }

    /// Where mutating calls are recorded, as Events naming the caller.
    pub fn audit(&self) -> &Audit {
        &self.inner.audit
    }
}
