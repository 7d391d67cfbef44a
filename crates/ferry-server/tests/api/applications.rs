//! Applications through the API: created, changed and deleted with Argo CD's rules, watched as
//! a stream that only shows each caller what RBAC lets them see, audited as Events, and their
//! live resources read with Secret values masked.

use anyhow::Result;
use ferry_auth::auth::PasswordHash;
use ferry_testkit::kube::TestContext;
use ferry_types::Application;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::harness::{Server, admin_password, create_project, install_crds, put_config_map};

fn app(name: &str, project: &str, namespace: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name},
        "spec": {
            "project": project,
            "source": {"repoURL": "https://git.example.com/apps", "path": name, "targetRevision": "main"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
        },
    })
}

/// A project that permits any repository and destination, and a user `dev` who may only see
/// its apps.
async fn team_a_and_dev(ctx: &TestContext) -> Result<()> {
    let spec = json!({
        "sourceRepos": ["*"],
        "destinations": [{"server": "*", "namespace": "*"}],
    });
    create_project(ctx, "team-a", spec).await?;
    put_config_map(ctx, "argocd-cm", &[("accounts.dev", "login")]).await?;
    put_config_map(
        ctx,
        "argocd-rbac-cm",
        &[("policy.csv", "p, dev, applications, get, team-a/*, allow")],
    )
    .await?;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "argocd-secret"},
        "stringData": {"accounts.dev.password": PasswordHash::new("dev's password")?.as_str()},
    }))?;
    ctx.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    Ok(())
}

fn event_of(event: &Value) -> (String, String) {
    (
        event["result"]["type"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        event["result"]["application"]["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

fn pair(kind: &str, name: &str) -> (String, String) {
    (kind.to_string(), name.to_string())
}

#[tokio::test]
async fn apps_are_created_changed_streamed_audited_and_deleted() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    team_a_and_dev(&ctx).await?;
    let server = Server::start(&ctx).await?;
    let admin = server.login("admin", &admin_password(&ctx).await?).await?;
    let admin = admin.body["token"].as_str().unwrap().to_string();
    let dev = server.login("dev", "dev's password").await?;
    let dev = dev.body["token"].as_str().unwrap().to_string();
    // Projects reach the server through its settings watch.
    server
        .wait_for_status("/api/v1/applications", &admin, 200)
        .await?;

    let mut everything = server
        .open_stream("/api/v1/stream/applications", &admin)
        .await?;
    let mut devs = server
        .open_stream("/api/v1/stream/applications", &dev)
        .await?;

    // Create: validated against the project, idempotent, and only changed with upsert.
    let missing_project = server
        .post(
            "/api/v1/applications",
            Some(&admin),
            app("web", "nope", "web"),
        )
        .await?;
    assert_eq!(missing_project.status, 400, "{:?}", missing_project.body);
    assert!(
        missing_project.body["message"]
            .as_str()
            .unwrap()
            .contains("nope")
    );
    for _ in 0..2 {
        let created = server
            .post(
                "/api/v1/applications",
                Some(&admin),
                app("web", "team-a", "web"),
            )
            .await?;
        assert_eq!(created.status, 200, "{:?}", created.body);
    }
    let changed = app("web", "team-a", "web-2");
    let refused = server
        .post("/api/v1/applications", Some(&admin), changed.clone())
        .await?;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert!(refused.body["message"].as_str().unwrap().contains("upsert"));
    let upserted = server
        .post("/api/v1/applications?upsert=true", Some(&admin), changed)
        .await?;
    assert_eq!(upserted.status, 200, "{:?}", upserted.body);
    assert_eq!(upserted.body["spec"]["destination"]["namespace"], "web-2");
    let ops = server
        .post(
            "/api/v1/applications",
            Some(&admin),
            app("ops", "default", "ops"),
        )
        .await?;
    assert_eq!(ops.status, 200, "{:?}", ops.body);

    // The stream shows the admin both apps and the developer only team-a's.
    assert_eq!(event_of(&everything.next().await?), pair("ADDED", "web"));
    assert_eq!(event_of(&devs.next().await?), pair("ADDED", "web"));
    assert_eq!(event_of(&everything.next().await?), pair("MODIFIED", "web"));
    assert_eq!(event_of(&devs.next().await?), pair("MODIFIED", "web"));
    assert_eq!(event_of(&everything.next().await?), pair("ADDED", "ops"));

    // Changes: a merge patch, a spec update; the developer may do neither.
    let patched = server
        .patch(
            "/api/v1/applications/web",
            Some(&admin),
            json!({"patch": r#"{"metadata": {"labels": {"tier": "frontend"}}}"#, "patchType": "merge"}),
        )
        .await?;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.body["metadata"]["labels"]["tier"], "frontend");
    let event = devs.next().await?;
    assert_eq!(event_of(&event), pair("MODIFIED", "web"));
    assert_eq!(
        event["result"]["application"]["metadata"]["labels"]["tier"],
        "frontend"
    );
    let mut spec = upserted.body["spec"].clone();
    spec["source"]["targetRevision"] = "v2".into();
    let updated = server
        .put("/api/v1/applications/web/spec", Some(&admin), spec.clone())
        .await?;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert_eq!(updated.body["source"]["targetRevision"], "v2");
    let denied = server
        .put("/api/v1/applications/web/spec", Some(&dev), spec)
        .await?;
    assert_eq!(denied.status, 403);
    let denied = server
        .delete("/api/v1/applications/web", Some(&dev))
        .await?;
    assert_eq!(denied.status, 403);
    let selected = server
        .get(
            "/api/v1/applications?selector=tier%3Dfrontend",
            Some(&admin),
        )
        .await?;
    let names: Vec<&str> = selected.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|app| app["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web"]);

    // Operations: one at a time; nothing to terminate or roll back to yet.
    let sync = server
        .post(
            "/api/v1/applications/web/sync",
            Some(&admin),
            json!({"prune": true}),
        )
        .await?;
    assert_eq!(sync.status, 200, "{:?}", sync.body);
    assert_eq!(sync.body["operation"]["initiatedBy"]["username"], "admin");
    let again = server
        .post("/api/v1/applications/web/sync", Some(&admin), json!({}))
        .await?;
    assert_eq!(again.status, 400);
    let terminate = server
        .delete("/api/v1/applications/ops/operation", Some(&admin))
        .await?;
    assert_eq!(terminate.status, 400, "{:?}", terminate.body);
    let rollback = server
        .post(
            "/api/v1/applications/ops/rollback",
            Some(&admin),
            json!({"id": 3}),
        )
        .await?;
    assert_eq!(rollback.status, 400, "{:?}", rollback.body);

    // Every change is an Event on the app naming who made it.
    let events = server
        .get("/api/v1/applications/web/events", Some(&admin))
        .await?;
    assert_eq!(events.status, 200, "{:?}", events.body);
    let notes: Vec<&str> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|event| event["message"].as_str())
        .collect();
    for expected in [
        "admin created application",
        "admin updated application",
        "admin initiated sync to HEAD",
    ] {
        assert!(notes.contains(&expected), "{expected:?} not in {notes:?}");
    }

    // Delete: without cascade the app goes at once; with it, it waits for the controller.
    let deleted = server
        .delete("/api/v1/applications/web?cascade=false", Some(&admin))
        .await?;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    loop {
        let (kind, name) = event_of(&devs.next().await?);
        if kind == "DELETED" {
            assert_eq!(name, "web");
            break;
        }
    }
    let cascading = server
        .delete(
            "/api/v1/applications/ops?propagationPolicy=background",
            Some(&admin),
        )
        .await?;
    assert_eq!(cascading.status, 200, "{:?}", cascading.body);
    let ops = ctx.api::<Application>().get("ops").await?;
    assert!(ops.metadata.deletion_timestamp.is_some());
    assert_eq!(
        ops.metadata.finalizers.unwrap_or_default(),
        ["resources-finalizer.argocd.argoproj.io/background"]
    );
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn an_apps_live_resources_are_read_with_secrets_masked_and_nothing_else_is() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    let namespace = format!("{}-live", ctx.namespace());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace}}))?;
    Api::<Namespace>::all(ctx.client())
        .create(&PostParams::default(), &ns)
        .await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client(), &namespace);
    for name in ["settings", "bystander"] {
        let config_map: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name}, "data": {"mode": "fast"}}))?;
        config_maps
            .create(&PostParams::default(), &config_map)
            .await?;
    }
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "creds"}, "stringData": {"password": "hunter2-live"}}),
    )?;
    Api::<Secret>::namespaced(ctx.client(), &namespace)
        .create(&PostParams::default(), &secret)
        .await?;
    let server = Server::start(&ctx).await?;
    let admin = server.login("admin", &admin_password(&ctx).await?).await?;
    let admin = admin.body["token"].as_str().unwrap().to_string();
    let created = server
        .post(
            "/api/v1/applications",
            Some(&admin),
            app("live", "default", &namespace),
        )
        .await?;
    assert_eq!(created.status, 200, "{:?}", created.body);
    // What the controller would report it manages.
    let status = json!({"status": {"resources": [
        {"version": "v1", "kind": "ConfigMap", "namespace": namespace, "name": "settings"},
        {"version": "v1", "kind": "Secret", "namespace": namespace, "name": "creds"},
    ]}});
    ctx.api::<Application>()
        .patch("live", &PatchParams::default(), &Patch::Merge(&status))
        .await?;

    let resource = |kind: &str, name: &str| {
        format!(
            "/api/v1/applications/live/resource?namespace={namespace}&resourceName={name}&version=v1&kind={kind}"
        )
    };
    let settings = server
        .get(&resource("ConfigMap", "settings"), Some(&admin))
        .await?;
    assert_eq!(settings.status, 200, "{:?}", settings.body);
    let manifest: Value = serde_json::from_str(settings.body["manifest"].as_str().unwrap())?;
    assert_eq!(manifest["data"]["mode"], "fast");
    assert!(manifest["metadata"].get("managedFields").is_none());

    let creds = server
        .get(&resource("Secret", "creds"), Some(&admin))
        .await?;
    assert_eq!(creds.status, 200, "{:?}", creds.body);
    let text = creds.body.to_string();
    assert!(!text.contains("hunter2-live"), "{text}");
    assert!(!text.contains(&base64_of("hunter2-live")), "{text}");
    assert!(text.contains("++++++++"), "{text}");

    let bystander = server
        .get(&resource("ConfigMap", "bystander"), Some(&admin))
        .await?;
    assert_eq!(bystander.status, 404, "{:?}", bystander.body);

    let patched = server
        .post(
            &format!("{}&patchType=merge", resource("ConfigMap", "settings")),
            Some(&admin),
            json!(r#"{"data": {"mode": "safe"}}"#),
        )
        .await?;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(
        config_maps.get("settings").await?.data.unwrap()["mode"],
        "safe"
    );
    let untouched = server
        .delete(&resource("ConfigMap", "bystander"), Some(&admin))
        .await?;
    assert_eq!(untouched.status, 404);
    let removed = server
        .delete(&resource("ConfigMap", "settings"), Some(&admin))
        .await?;
    assert_eq!(removed.status, 200, "{:?}", removed.body);
    assert!(config_maps.get_opt("bystander").await?.is_some());

    let log = server.stop().await?;
    assert!(!log.contains("hunter2-live"));
    Api::<Namespace>::all(ctx.client())
        .delete(&namespace, &Default::default())
        .await?;
    Ok(())
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn every_refusal_is_json_in_one_shape() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    let server = Server::start(&ctx).await?;
    let admin = server.login("admin", &admin_password(&ctx).await?).await?;
    let admin = admin.body["token"].as_str().unwrap().to_string();
    let healthz = server.get("/healthz", None).await?;
    assert_eq!(
        (healthz.status, &healthz.body["status"]),
        (200, &json!("ok"))
    );
    let cases = [
        (
            server.get("/api/v1/nothing-here", Some(&admin)).await?,
            404,
            5,
        ),
        (server.delete("/api/version", None).await?, 405, 12),
        (
            server
                .post("/api/v1/applications", Some(&admin), json!("not an app"))
                .await?,
            422,
            3,
        ),
        (
            server
                .post(
                    "/api/v1/applications/x/rollback",
                    Some(&admin),
                    json!({"prune": true}),
                )
                .await?,
            422,
            3,
        ),
    ];
    for (response, status, code) in cases {
        assert_eq!(response.status, status, "{:?}", response.body);
        assert_eq!(response.body["code"], code, "{:?}", response.body);
        assert!(
            response.body["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    server.stop().await?;
    Ok(())
}
