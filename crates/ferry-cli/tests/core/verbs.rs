//! The verbs core mode gained with the server's: `app terminate-op`, `app resources`,
//! `repo get`, `cluster get`, `proj delete`.

use anyhow::Result;
use ferry_testkit::kube::TestContext;
use ferry_types::{AppProject, Application};
use kube::Api;
use serde_json::{Value, json};

use crate::support::{Ferry, app_repo, create_app, patch_app};

#[tokio::test]
async fn terminate_resources_and_single_gets() -> Result<()> {
    let ctx = TestContext::new().await?;
    let ferry = Ferry::new(&ctx);
    let apps: Api<Application> = ctx.api();
    let repo = app_repo()?;
    create_app(&ferry, "web", &repo, &[]).await;

    let err = ferry.fails(&["app", "terminate-op", "web"]).await;
    assert!(err.contains("app web: no operation is running"), "{err}");
    patch_app(
        &apps,
        "web",
        json!({"status": {
            "operationState": {"phase": "Running", "operation": {"sync": {}}},
            "resources": [{"version": "v1", "kind": "ConfigMap", "namespace": ctx.namespace(),
                           "name": "web-config", "status": "Synced"}],
        }}),
    )
    .await?;
    assert_eq!(
        ferry.ok(&["app", "terminate-op", "web"]).await,
        "Application 'web' operation terminating\n"
    );
    let state = apps
        .get("web")
        .await?
        .status
        .unwrap()
        .operation_state
        .unwrap();
    assert_eq!(format!("{:?}", state.phase), "Terminating");

    let resources = ferry.ok(&["app", "resources", "web"]).await;
    let row: Vec<&str> = resources
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row, ["ConfigMap", ctx.namespace(), "web-config", "No"]);

    let url = repo.file_url();
    ferry.ok(&["repo", "add", &url]).await;
    let shown: Value = serde_json::from_str(&ferry.ok(&["repo", "get", &url, "-o", "json"]).await)?;
    assert_eq!(shown[0]["repo"], url.as_str());
    let err = ferry
        .fails(&["repo", "get", "https://nowhere.example.com/x"])
        .await;
    assert!(err.contains("not found"), "{err}");

    let cluster = ferry.ok(&["cluster", "get", "in-cluster"]).await;
    assert!(
        cluster.contains("https://kubernetes.default.svc  in-cluster  all"),
        "{cluster}"
    );

    ferry.ok(&["proj", "create", "team"]).await;
    assert_eq!(
        ferry.ok(&["proj", "delete", "team"]).await,
        "project 'team' deleted\n"
    );
    assert!(ctx.api::<AppProject>().get_opt("team").await?.is_none());
    let err = ferry
        .fails(&["proj", "role", "create-token", "default", "ci"])
        .await;
    assert!(err.contains("ferry login"), "{err}");
    Ok(())
}
