//! What every request shares: the Kubernetes client, the control namespace, the login guard and
//! the current settings snapshot, which a watcher replaces whenever `argocd-cm`, `argocd-secret`,
//! `argocd-rbac-cm` or an AppProject changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_types::AppProject;
use ferry_types::allowed_namespaces::AllowedNamespaces;
use ferry_types::secrets::{SERVER_SECRET_KEY, controller_view_token};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

use super::app_views::ControllerClient;
use super::app_watch::AppWatch;
use super::audit::Audit;
use super::error::{ApiError, Code};
use super::static_assets::StaticAssets;
use crate::auth::{
    AuthSettings, LoginGuard, LoginGuardConfig, Revocations, SessionManager, SystemClock,
};
use crate::metrics::ApiMetrics;
use crate::oidc::{LabelledSecrets, Providers, SsoSettings};
use crate::rbac::Policy;
use crate::webhook::WebhookSecrets;

/// How long a login waits for a bcrypt slot before it is refused.
const BCRYPT_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

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
    /// The control namespace and `--application-namespaces`.
    app_namespaces: AllowedNamespaces,
    settings: watch::Receiver<Arc<Snapshot>>,
    login_guard: Arc<LoginGuard>,
    client_guard: Arc<LoginGuard>,
    /// Bounds the bcrypt work running at once (each check takes tens of milliseconds of CPU).
    bcrypt_slots: Arc<Semaphore>,
    revocations: Revocations,
    oidc_providers: Providers,
    audit: Audit,
    apps: AppWatch,
    metrics: Arc<ApiMetrics>,
    stopping: CancellationToken,
    controller: Option<ControllerClient>,
    /// Whether clients reach this server over TLS (its own, or a proxy's in front).
    tls: bool,
    /// The web UI's files, when this server serves them.
    static_assets: Option<StaticAssets>,
    /// Config-management plugins, to tell plugin sources and what they announce.
    plugins: Arc<Vec<ferry_render::PluginConfig>>,
}

impl AppState {
    /// `settings` follows the current snapshot (see [`crate::settings_watch`]).
    /// Applications are served from the namespaces `app_namespaces` allows, everything else
    /// from its control namespace.
    pub fn new(
        client: kube::Client,
        app_namespaces: AllowedNamespaces,
        settings: watch::Receiver<Arc<Snapshot>>,
        login_guard: LoginGuard,
    ) -> Self {
        let namespace = app_namespaces.control().to_string();
        Self {
            inner: Arc::new(Inner {
                audit: Audit::new(client.clone()),
                apps: AppWatch::start(client.clone(), &app_namespaces),
                app_namespaces,
                stopping: CancellationToken::new(),
                controller: None,
                tls: false,
                static_assets: None,
                plugins: Arc::default(),
                client,
                namespace,
                settings,
                login_guard: Arc::new(login_guard),
                client_guard: Arc::new(LoginGuard::for_clients(
                    LoginGuardConfig::per_client(),
                    Arc::new(SystemClock),
                )),
                bcrypt_slots: Arc::new(Semaphore::new(
                    std::thread::available_parallelism().map_or(2, usize::from),
                )),
                revocations: Revocations::default(),
                oidc_providers: Providers::default(),
                metrics: Arc::default(),
            }),
        }
    }

    /// Asks the application controller at `urls` (one per shard when it is sharded) for what
    /// only it knows (managed resources, resource trees, manifests). Call before cloning the
    /// state.
    pub fn with_controller(mut self, urls: Vec<url::Url>) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("with_controller is called before the state is shared")
            .controller = Some(ControllerClient::new(urls));
        self
    }

    /// Says that clients reach the server over TLS, so its cookies are `Secure`. Call before
    /// cloning the state.
    pub fn with_tls(mut self) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("with_tls is called before the state is shared")
            .tls = true;
        self
    }

    /// Serves the web UI's files besides the API. Call before cloning the state.
    pub fn with_static_assets(mut self, assets: StaticAssets) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("with_static_assets is called before the state is shared")
            .static_assets = Some(assets);
        self
    }

    /// Knows the controller's config-management plugins (its `--plugin-config-dir`), so that
    /// app details tell plugin sources and the parameters their plugins announce. Call before
    /// cloning the state.
    pub fn with_plugins(mut self, plugins: Vec<ferry_render::PluginConfig>) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("with_plugins is called before the state is shared")
            .plugins = Arc::new(plugins);
        self
    }

    pub fn plugins(&self) -> &[ferry_render::PluginConfig] {
        &self.inner.plugins
    }

    pub fn static_assets(&self) -> Option<&StaticAssets> {
        self.inner.static_assets.as_ref()
    }

    /// `"; Secure"` for cookies when the server is reached over TLS (its own listener, or an
    /// `https` `url` in argocd-cm for a proxy that terminates TLS), else nothing.
    pub fn secure_cookie_attribute(&self) -> &'static str {
        let https_url = self.settings().sso().is_ok_and(|sso| sso.secure_cookies());
        if self.inner.tls || https_url {
            "; Secure"
        } else {
            ""
        }
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

    /// The namespaces whose Applications are served.
    pub fn app_namespaces(&self) -> &AllowedNamespaces {
        &self.inner.app_namespaces
    }

    /// The settings as they are now; a request keeps using the snapshot it took.
    pub fn settings(&self) -> Arc<Snapshot> {
        self.inner.settings.borrow().clone()
    }

    pub fn login_guard(&self) -> &Arc<LoginGuard> {
        &self.inner.login_guard
    }

    /// Failed logins per client address.
    pub fn client_guard(&self) -> &Arc<LoginGuard> {
        &self.inner.client_guard
    }

    /// Runs `work` (password hashing or checking) on a blocking thread once one of the bcrypt
    /// slots is free: a flood of logins queues instead of taking every core, and one that waits
    /// too long is refused.
    pub async fn bcrypt<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let busy = || {
            ApiError::new(
                Code::ResourceExhausted,
                "too many password checks are in progress; try again",
            )
        };
        let permit = tokio::time::timeout(
            BCRYPT_QUEUE_WAIT,
            self.inner.bcrypt_slots.clone().acquire_owned(),
        )
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await
        .map_err(|err| ApiError::internal("checking a password", &err))
    }

    /// Tokens revoked by logouts (of any replica, once [`Revocations::follow`] runs).
    pub fn revocations(&self) -> &Revocations {
        &self.inner.revocations
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
