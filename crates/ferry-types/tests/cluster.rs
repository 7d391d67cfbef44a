//! The CRDs on a real API server: Applications and AppProjects go in and come back through
//! kube's typed `Api`, unknown fields and the top-level `operation` included.

use anyhow::Result;
use ferry_testkit::kube::TestContext;
use ferry_types::application::{HealthStatusCode, SyncStatusCode};
use ferry_types::{AppProject, Application};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::de::DeserializeOwned;

const AUTOMATED: &str = include_str!("manifests/automated-retry.yaml");
const NEWER_FIELDS: &str = include_str!("manifests/newer-argo-fields.yaml");
const SYNCED_STATUS: &str = include_str!("manifests/synced-status.yaml");
const PROJECT: &str = include_str!("manifests/project-windows.yaml");

/// The CRDs, installed unless present (other tests share the cluster) and established.
async fn install_crds(client: kube::Client) -> Result<()> {
    ferry_runtime::install_crds(&client, "ferry-tests").await?;
    Ok(())
}

/// A manifest moved into the test's namespace, without finalizers (no controller runs here to
/// remove them, and the namespace must be deletable).
fn manifest<T: DeserializeOwned + kube::Resource>(yaml: &str, namespace: &str) -> T {
    let mut object: T = serde_yaml::from_str(yaml).unwrap();
    let meta = object.meta_mut();
    meta.namespace = Some(namespace.to_string());
    meta.finalizers = None;
    meta.resource_version = None;
    object
}

#[tokio::test]
async fn applications_keep_unknown_fields_and_operation_on_the_server() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    let apps: Api<Application> = ctx.api();

    let sent: Application = manifest(NEWER_FIELDS, ctx.namespace());
    apps.create(&PostParams::default(), &sent).await?;
    let stored = apps.get("hydrated").await?;
    assert_eq!(stored.spec, sent.spec);
    assert_eq!(stored.operation, sent.operation);
    assert_eq!(stored.unknown_fields(), sent.unknown_fields());
    assert!(
        stored
            .unknown_fields()
            .contains(&"spec.sourceHydrator".to_string())
    );

    // The controller clears `operation` once it starts the sync.
    let cleared = apps
        .patch(
            "hydrated",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"operation": null})),
        )
        .await?;
    assert_eq!(cleared.operation, None);
    assert_eq!(cleared.spec, sent.spec);

    let sent: Application = manifest(AUTOMATED, ctx.namespace());
    apps.create(&PostParams::default(), &sent).await?;
    let stored = apps.get("guestbook").await?;
    assert_eq!(stored.spec, sent.spec);
    assert_eq!(stored.operation, sent.operation);
    Ok(())
}

#[tokio::test]
async fn status_is_written_through_the_main_resource_as_in_argo_cd() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    let apps: Api<Application> = ctx.api();

    let mut app: Application = manifest(SYNCED_STATUS, ctx.namespace());
    let status = app.status.take().expect("the manifest has a status");
    let created = apps.create(&PostParams::default(), &app).await?;
    assert_eq!(created.status, None);

    let mut update = created.clone();
    update.status = Some(status.clone());
    let replaced = apps
        .replace("guestbook", &PostParams::default(), &update)
        .await?;
    assert_eq!(replaced.status.as_ref(), Some(&status));
    let stored = apps.get("guestbook").await?;
    let stored_status = stored.status.as_ref().unwrap();
    assert_eq!(stored_status.sync.status, SyncStatusCode::Synced);
    assert_eq!(stored_status.health.status, HealthStatusCode::Healthy);
    assert_eq!(stored_status, &status);

    // No status subresource, like Argo CD's CRD: a status-only write has nowhere to go.
    let err = apps
        .replace_status("guestbook", &PostParams::default(), &stored)
        .await
        .expect_err("the CRD has no status subresource");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 404),
        "unexpected error: {err}"
    );

    // A merge patch of one status field leaves the rest alone.
    let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_715_342_400)?);
    let patched = apps
        .patch(
            "guestbook",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"reconciledAt": now}})),
        )
        .await?;
    let patched_status = patched.status.unwrap();
    assert_eq!(patched_status.reconciled_at, Some(now));
    assert_eq!(patched_status.resources, status.resources);
    Ok(())
}

#[tokio::test]
async fn projects_round_trip_and_enforce_after_reading_back() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    let projects: Api<AppProject> = ctx.api();

    let sent: AppProject = manifest(PROJECT, ctx.namespace());
    projects.create(&PostParams::default(), &sent).await?;
    let stored = projects.get("web").await?;
    assert_eq!(stored.spec, sent.spec);
    assert_eq!(stored.status, sent.status);
    let policy = stored.policy()?;
    assert!(policy.is_source_permitted("https://git.example.com/web/shop"));
    assert!(!policy.is_source_permitted("https://git.example.com/web/legacy-shop"));

    let default = AppProject::default_project(ctx.namespace());
    projects.create(&PostParams::default(), &default).await?;
    let stored = projects.get("default").await?;
    assert_eq!(stored.spec, default.spec);
    Ok(())
}
