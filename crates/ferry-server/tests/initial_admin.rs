//! `ensure_initial_admin` against a real API server: a fresh install, a restart, and Argo CD's
//! password reset (delete `admin.password`, restart).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use ferry_auth::auth::{AuthSettings, LoginGuard, SessionManager, ensure_initial_admin};
use ferry_testkit::kube::TestContext;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

fn data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(key, value)| (key.clone(), value.0.clone()))
        .collect()
}

/// The plain password in `argocd-initial-admin-secret`, after checking that it logs in as admin
/// with the hash in `argocd-secret`.
async fn initial_password_that_logs_in(secrets: &Api<Secret>) -> Result<String> {
    let initial = secrets.get("argocd-initial-admin-secret").await?;
    let password = String::from_utf8(data(&initial)["password"].clone())?;
    let settings = secrets.get("argocd-secret").await?;
    let sessions =
        SessionManager::new(AuthSettings::from_data(&BTreeMap::new(), &data(&settings))?)?;
    let session = sessions
        .login(&LoginGuard::default(), "admin", &password)
        .context("logging in with the initial password")?;
    sessions.verify(session.as_str(), |_| None)?;
    Ok(password)
}

#[tokio::test]
async fn initial_admin_is_created_once_and_again_after_a_reset() -> Result<()> {
    let ctx = TestContext::new().await?;
    let secrets: Api<Secret> = ctx.api();

    // A fresh install: both Secrets are created.
    let written = ensure_initial_admin(ctx.client(), ctx.namespace()).await?;
    assert_eq!(
        written,
        ["admin.password", "admin.passwordMtime", "server.secretkey"]
    );
    let settings = secrets.get("argocd-secret").await?;
    let labels = settings.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["app.kubernetes.io/part-of"], "argocd");
    let first_password = initial_password_that_logs_in(&secrets).await?;
    assert_eq!(first_password.len(), 16);

    // A restart changes nothing.
    let initial = secrets.get("argocd-initial-admin-secret").await?;
    assert!(
        ensure_initial_admin(ctx.client(), ctx.namespace())
            .await?
            .is_empty()
    );
    assert_eq!(
        secrets
            .get("argocd-secret")
            .await?
            .metadata
            .resource_version,
        settings.metadata.resource_version
    );
    assert_eq!(
        secrets
            .get("argocd-initial-admin-secret")
            .await?
            .metadata
            .resource_version,
        initial.metadata.resource_version
    );

    // Argo CD's reset: delete the password; the next start makes a new one and keeps the rest.
    let reset = json!({"data": {
        "admin.password": null,
        "admin.passwordMtime": null,
        "webhook.github.secret": "aG9vaw==",
    }});
    secrets
        .patch(
            "argocd-secret",
            &PatchParams::default(),
            &Patch::Merge(&reset),
        )
        .await?;
    let written = ensure_initial_admin(ctx.client(), ctx.namespace()).await?;
    assert_eq!(written, ["admin.password", "admin.passwordMtime"]);
    let second_password = initial_password_that_logs_in(&secrets).await?;
    assert_ne!(second_password, first_password);
    let after_reset = data(&secrets.get("argocd-secret").await?);
    assert_eq!(
        after_reset["server.secretkey"],
        data(&settings)["server.secretkey"]
    );
    assert_eq!(after_reset["webhook.github.secret"], b"hook");
    Ok(())
}
