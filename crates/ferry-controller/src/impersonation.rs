//! Syncs as a service account: with `application.sync.impersonation.enabled: "true"` in
//! `argocd-cm`, what a sync does to the destination cluster (applies, prunes, hooks) and what a
//! cascade deletion deletes is sent with `Impersonate-User: system:serviceaccount:<ns>:<name>`,
//! the account the project's `destinationServiceAccounts` name for the destination, so the
//! cluster's RBAC for that account bounds what the app can do. The flags are read from the
//! `argocd-cm` the controller follows live, so turning them on needs no restart and a sync
//! sends no request for them.

use std::task::Poll;

use ferry_types::Application;
use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use kube::client::Body;
use tracing::info;

use crate::appstate::Setup;
use crate::context::Context;

const ENABLED_KEY: &str = "application.sync.impersonation.enabled";
/// Argo CD's: on unless `"false"`; off lets a destination without an entry sync as the
/// controller.
const ENFORCED_KEY: &str = "application.sync.impersonation.enforced";

/// The user `app`'s sync acts as: `None` for the controller itself (impersonation off, or not
/// enforced and no entry matches). Errors are the operation's message, as Argo CD words them.
pub fn sync_identity(
    ctx: &Context,
    app: &Application,
    setup: &Setup,
) -> Result<Option<String>, String> {
    // Trimmed, as `/api/v1/settings` reads it: what the server advertises is what is enforced.
    let flag = |key: &str| ctx.argo_cm.value(key);
    if flag(ENABLED_KEY).as_deref() != Some("true") {
        return Ok(None);
    }
    let namespace = &app.spec.destination.namespace;
    let account = setup
        .project
        .service_account_to_impersonate(
            &setup.cluster.server,
            namespace,
            app.metadata.namespace.as_deref().unwrap_or_default(),
        )
        .map_err(|err| format!("failed to derive service account to impersonate: {err}"))?;
    match account {
        Some(account) => Ok(Some(account)),
        None if flag(ENFORCED_KEY).as_deref() == Some("false") => {
            info!(app = %app.metadata.name.as_deref().unwrap_or_default(),
                "no destinationServiceAccounts entry matches; syncing as the controller (impersonation not enforced)");
            Ok(None)
        }
        None => Err(format!(
            "no matching service account found for destination server {} and namespace {namespace}",
            setup.cluster.server
        )),
    }
}

/// `client` acting as `user`: every request carries `Impersonate-User`, so the API server
/// authorizes it as that user (and the groups it gives a service account), not as the
/// controller, which needs only the `impersonate` verb for it.
pub fn client_as(client: &kube::Client, user: &str) -> anyhow::Result<kube::Client> {
    let service = Impersonating {
        inner: client.clone(),
        user: HeaderValue::from_str(user)?,
    };
    Ok(kube::Client::new(service, client.default_namespace()))
}

/// Adds the header and sends the request through the controller's own client (its
/// credentials, metrics and connection pool).
#[derive(Clone)]
struct Impersonating {
    inner: kube::Client,
    user: HeaderValue,
}

impl tower::Service<Request<Body>> for Impersonating {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, kube::Error>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), kube::Error>> {
        // The inner client buffers requests; it waits for readiness itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        request
            .headers_mut()
            .insert("impersonate-user", self.user.clone());
        let inner = self.inner.clone();
        Box::pin(async move { inner.send(request).await })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[tokio::test]
    async fn every_request_carries_the_impersonated_user() {
        let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let record = seen.clone();
        let api_server = tower::service_fn(move |request: Request<Body>| {
            let user = request
                .headers()
                .get("impersonate-user")
                .map(|v| v.to_str().unwrap().to_string());
            record.lock().unwrap().push(user);
            let version = br#"{"major":"1","minor":"34","gitVersion":"v1.34.0","gitCommit":"",
                "gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":""}"#;
            async move {
                Ok::<_, std::convert::Infallible>(
                    Response::builder()
                        .status(200)
                        .body(Body::from(version.to_vec()))
                        .unwrap(),
                )
            }
        });
        let controller = kube::Client::new(api_server, "default");
        let deployer = client_as(&controller, "system:serviceaccount:web:deployer").unwrap();
        deployer.apiserver_version().await.unwrap();
        controller.apiserver_version().await.unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            [Some("system:serviceaccount:web:deployer".to_string()), None]
        );
        assert!(client_as(&controller, "bad\nuser").is_err());
    }
}
