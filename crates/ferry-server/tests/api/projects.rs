//! AppProjects through the API: created, listed, changed and deleted under RBAC, refused while
//! Applications use them, audited as Events; and project role tokens, valid until deleted.

use anyhow::Result;
use ferry_testkit::kube::TestContext;
use ferry_types::Application;
use kube::api::DeleteParams;
use serde_json::{Value, json};

use crate::harness::{
    Server, admin_password, create_app, event_messages, install_crds, local_accounts,
};

fn project(name: &str, spec: Value) -> Value {
    json!({"metadata": {"name": name}, "spec": spec})
}

fn names(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["metadata"]["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn projects_are_created_changed_and_deleted_as_rbac_allows() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    local_accounts(
        &ctx,
        &[("reader", "reader's password")],
        "g, reader, role:readonly",
    )
    .await?;
    let server = Server::start(&ctx).await?;
    let admin = server.token("admin", &admin_password(&ctx).await?).await?;
    let reader = server.token("reader", "reader's password").await?;

    let spec = json!({"description": "team A", "sourceRepos": ["*"],
                      "destinations": [{"server": "*", "namespace": "team-a-*"}]});
    let created = server
        .post(
            "/api/v1/projects",
            Some(&admin),
            json!({"project": project("team-a", spec.clone())}),
        )
        .await?;
    assert_eq!(created.status, 200, "{:?}", created.body);
    assert_eq!(created.body["spec"]["description"], "team A");
    assert_eq!(created.body["metadata"]["namespace"], ctx.namespace());
    // The project's Events (Argo CD's ListEvents): its audit trail, for whoever may get it.
    let events = server
        .get("/api/v1/projects/team-a/events", Some(&reader))
        .await?;
    assert_eq!(events.status, 200, "{:?}", events.body);
    let messages: Vec<&str> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|event| event["message"].as_str())
        .collect();
    assert_eq!(messages, ["admin created project"]);
    let missing = server
        .get("/api/v1/projects/nope/events", Some(&admin))
        .await?;
    assert_eq!(missing.status, 404, "{:?}", missing.body);

    // Again: the same spec is fine; another one needs upsert.
    let same = json!({"project": project("team-a", spec.clone())});
    assert_eq!(
        server
            .post("/api/v1/projects", Some(&admin), same)
            .await?
            .status,
        200
    );
    let other = project(
        "team-a",
        json!({"description": "team A!", "sourceRepos": ["*"]}),
    );
    let conflict = server
        .post("/api/v1/projects", Some(&admin), json!({"project": other}))
        .await?;
    assert_eq!(conflict.status, 409, "{:?}", conflict.body);
    assert_eq!(conflict.body["code"], 6);
    let upserted = server
        .post(
            "/api/v1/projects",
            Some(&admin),
            json!({"project": other, "upsert": true}),
        )
        .await?;
    assert_eq!(upserted.status, 200, "{:?}", upserted.body);
    assert_eq!(upserted.body["spec"]["description"], "team A!");

    // Invalid projects are refused, whoever asks.
    let stray = project(
        "team-b",
        json!({"roles": [{"name": "ci", "policies": ["p, proj:team-b:ci, applications, get, team-a/*, allow"]}]}),
    );
    let invalid = server
        .post("/api/v1/projects", Some(&admin), json!({"project": stray}))
        .await?;
    assert_eq!(invalid.status, 400, "{:?}", invalid.body);

    // The readonly role sees projects and changes none.
    let listed = server.get("/api/v1/projects", Some(&reader)).await?;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert!(names(&listed.body).contains(&"team-a"), "{:?}", listed.body);
    let refused = server
        .post(
            "/api/v1/projects",
            Some(&reader),
            json!({"project": project("team-c", json!({}))}),
        )
        .await?;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body["message"], "permission denied");
    assert_eq!(
        server
            .delete("/api/v1/projects/team-a", Some(&reader))
            .await?
            .status,
        403
    );
    assert_eq!(
        server
            .get("/api/v1/projects/nothing", Some(&admin))
            .await?
            .status,
        404
    );

    // An update with the version it read; a stale version is a conflict.
    let mut current = server
        .get("/api/v1/projects/team-a", Some(&admin))
        .await?
        .body;
    let stale_version = current["metadata"]["resourceVersion"].clone();
    current["spec"]["syncWindows"] =
        json!([{"kind": "deny", "schedule": "* * * * *", "duration": "1h", "applications": ["*"]}]);
    let updated = server
        .put(
            "/api/v1/projects/team-a",
            Some(&admin),
            json!({"project": current}),
        )
        .await?;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    let mut stale = updated.body.clone();
    stale["metadata"]["resourceVersion"] = stale_version;
    stale["spec"]["description"] = "stale".into();
    let conflict = server
        .put(
            "/api/v1/projects/team-a",
            Some(&admin),
            json!({"project": stale}),
        )
        .await?;
    assert_eq!(conflict.status, 409, "{:?}", conflict.body);
    let windows = server
        .get("/api/v1/projects/team-a/syncwindows", Some(&reader))
        .await?;
    assert_eq!(windows.status, 200, "{:?}", windows.body);
    assert_eq!(windows.body["windows"][0]["kind"], "deny");
    let detailed = server
        .get("/api/v1/projects/team-a/detailed", Some(&reader))
        .await?;
    assert_eq!(detailed.body["project"]["metadata"]["name"], "team-a");

    // Its deny window refuses a sync asked for by hand, as Argo CD's API server does, and
    // writes no operation.
    create_app(&ctx, "web", "team-a").await?;
    let blocked = server
        .post("/api/v1/applications/web/sync", Some(&admin), json!({}))
        .await?;
    assert_eq!(blocked.status, 403, "{:?}", blocked.body);
    assert_eq!(
        blocked.body["message"],
        "cannot sync: blocked by sync window"
    );
    assert!(
        ctx.api::<Application>()
            .get("web")
            .await?
            .operation
            .is_none()
    );
    let app_windows = server
        .get("/api/v1/applications/web/syncwindows", Some(&reader))
        .await?;
    assert_eq!(app_windows.body["canSync"], false, "{:?}", app_windows.body);

    // Not while an Application uses it; `default` never.
    let in_use = server
        .delete("/api/v1/projects/team-a", Some(&admin))
        .await?;
    assert_eq!(in_use.status, 400, "{:?}", in_use.body);
    assert_eq!(
        in_use.body["message"],
        "project is referenced by 1 applications"
    );
    ctx.api::<Application>()
        .delete("web", &DeleteParams::default())
        .await?;
    let deleted = server
        .delete("/api/v1/projects/team-a", Some(&admin))
        .await?;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    assert_eq!(
        server
            .get("/api/v1/projects/team-a", Some(&admin))
            .await?
            .status,
        404
    );
    assert_eq!(
        server
            .delete("/api/v1/projects/default", Some(&admin))
            .await?
            .status,
        400
    );

    let messages = event_messages(&ctx, "team-a").await?;
    for expected in [
        "admin created project",
        "admin updated project",
        "admin deleted project",
    ] {
        assert!(
            messages.iter().any(|m| m == expected),
            "{expected:?} not in {messages:?}"
        );
    }
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn project_role_tokens_work_until_they_are_deleted() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    create_app(&ctx, "web", "team-a").await?;
    let server = Server::start(&ctx).await?;
    let admin = server.token("admin", &admin_password(&ctx).await?).await?;
    let team_a = project(
        "team-a",
        json!({
            "sourceRepos": ["*"],
            "destinations": [{"server": "*", "namespace": "*"}],
            "roles": [{"name": "ci", "policies": ["p, proj:team-a:ci, applications, get, team-a/*, allow"]}],
        }),
    );
    let created = server
        .post("/api/v1/projects", Some(&admin), json!({"project": team_a}))
        .await?;
    assert_eq!(created.status, 200, "{:?}", created.body);

    let issued = server
        .post(
            "/api/v1/projects/team-a/roles/ci/token",
            Some(&admin),
            json!({"expiresIn": 3600, "id": "ci-1"}),
        )
        .await?;
    assert_eq!(issued.status, 200, "{:?}", issued.body);
    let token = issued.body["token"].as_str().unwrap().to_string();
    server
        .wait_for_status("/api/v1/applications/web", &token, 200)
        .await?;
    let apps = server.get("/api/v1/applications", Some(&token)).await?;
    assert_eq!(names(&apps.body), ["web"]);
    // The role may read its project (and see the record), not change it.
    let record = server.get("/api/v1/projects/team-a", Some(&token)).await?;
    assert_eq!(record.status, 200, "{:?}", record.body);
    let items = &record.body["status"]["jwtTokensByRole"]["ci"]["items"];
    assert_eq!(items[0]["id"], "ci-1");
    assert!(items[0]["exp"].as_i64().unwrap() > items[0]["iat"].as_i64().unwrap());
    assert!(!record.body.to_string().contains(&token));
    assert_eq!(
        server
            .post(
                "/api/v1/projects/team-a/roles/ci/token",
                Some(&token),
                json!({})
            )
            .await?
            .status,
        403
    );

    let reused = server
        .post(
            "/api/v1/projects/team-a/roles/ci/token",
            Some(&admin),
            json!({"id": "ci-1"}),
        )
        .await?;
    assert_eq!(reused.status, 400, "{:?}", reused.body);
    let no_role = server
        .post(
            "/api/v1/projects/team-a/roles/deployer/token",
            Some(&admin),
            json!({}),
        )
        .await?;
    assert_eq!(no_role.status, 404, "{:?}", no_role.body);

    let iat = items[0]["iat"].as_i64().unwrap();
    let path = format!("/api/v1/projects/team-a/roles/ci/token/{iat}?id=ci-1");
    let deleted = server.delete(&path, Some(&admin)).await?;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    server
        .wait_for_status("/api/v1/applications", &token, 401)
        .await?;
    assert_eq!(server.delete(&path, Some(&admin)).await?.status, 404);

    let messages = event_messages(&ctx, "team-a").await?;
    for expected in [
        "admin created a token of role ci",
        "admin deleted a token of role ci",
    ] {
        assert!(
            messages.iter().any(|m| m == expected),
            "{expected:?} not in {messages:?}"
        );
    }
    let log = server.stop().await?;
    crate::harness::assert_no_secrets(&log, &[&token, &admin]);
    Ok(())
}
