//! ApplicationSets through the API: generated as a preview, created (dry run, unchanged, upsert),
//! listed, read, streamed and deleted under RBAC on `applicationsets` with the set's project,
//! refused when invalid, audited as Events.

use anyhow::Result;
use ferry_testkit::kube::TestContext;
use ferry_types::ApplicationSet;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::harness::{
    Server, admin_password, create_project, event_messages, install_crds, local_accounts,
};

/// A list-generator set in `project` making `<element>-app` Applications.
fn appset(name: &str, project: &str, elements: &[&str]) -> Value {
    let elements: Vec<Value> = elements.iter().map(|e| json!({"env": e})).collect();
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": name},
        "spec": {
            "generators": [{"list": {"elements": elements}}],
            "template": {
                "metadata": {"name": "{{env}}-app"},
                "spec": {
                    "project": project,
                    "source": {"repoURL": "https://git.example/apps.git", "path": "{{env}}"},
                    "destination": {"server": "https://kubernetes.default.svc", "namespace": "{{env}}"},
                },
            },
        },
    })
}

fn names(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| item["metadata"]["name"].as_str().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn applicationsets_are_generated_created_listed_streamed_and_deleted_as_rbac_allows()
-> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    for project in ["default", "team-a"] {
        create_project(&ctx, project, json!({"sourceRepos": ["*"]})).await?;
    }
    local_accounts(
        &ctx,
        &[("dev", "dev's password"), ("reader", "reader's password")],
        "p, role:team-a, applicationsets, *, team-a/*, allow\n\
         g, dev, role:team-a\n\
         g, reader, role:readonly",
    )
    .await?;
    let server = Server::start(&ctx).await?;
    let admin = server.token("admin", &admin_password(&ctx).await?).await?;
    let dev = server.token("dev", "dev's password").await?;
    let reader = server.token("reader", "reader's password").await?;
    let mut stream = server
        .open_stream("/api/v1/stream/applicationsets", &dev)
        .await?;

    // generate: the Applications, rendered with the controller's code, nothing created.
    let generated = server
        .post(
            "/api/v1/applicationsets/generate",
            Some(&dev),
            json!({"applicationSet": appset("envs", "team-a", &["dev", "prod"])}),
        )
        .await?;
    assert_eq!(generated.status, 200, "{:?}", generated.body);
    let apps = generated.body["applications"].as_array().unwrap();
    let generated_names: Vec<_> = apps.iter().map(|a| &a["metadata"]["name"]).collect();
    assert_eq!(generated_names, ["dev-app", "prod-app"]);
    assert_eq!(apps[1]["spec"]["source"]["path"], "prod");
    assert_eq!(apps[1]["metadata"]["namespace"], ctx.namespace());

    // A dry run answers the set with the Applications it would own, and creates nothing.
    let dry = server
        .post(
            "/api/v1/applicationsets?dryRun=true",
            Some(&dev),
            appset("envs", "team-a", &["dev", "prod"]),
        )
        .await?;
    assert_eq!(dry.status, 200, "{:?}", dry.body);
    let resources: Vec<_> = dry.body["status"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        resources,
        [("Application", "dev-app"), ("Application", "prod-app")]
    );
    let missing = server
        .get("/api/v1/applicationsets/envs", Some(&admin))
        .await?;
    assert_eq!(missing.status, 403, "a missing set is a 403, as in Argo CD");

    // Created; again unchanged; another spec only with upsert.
    let created = server
        .post(
            "/api/v1/applicationsets",
            Some(&dev),
            appset("envs", "team-a", &["dev"]),
        )
        .await?;
    assert_eq!(created.status, 200, "{:?}", created.body);
    assert_eq!(created.body["metadata"]["namespace"], ctx.namespace());
    let added = stream.next().await?;
    assert_eq!(added["result"]["type"], "ADDED", "{added}");
    assert_eq!(
        added["result"]["applicationSet"]["metadata"]["name"],
        "envs"
    );
    let same = server
        .post(
            "/api/v1/applicationsets",
            Some(&dev),
            appset("envs", "team-a", &["dev"]),
        )
        .await?;
    assert_eq!(same.status, 200, "{:?}", same.body);
    let different = server
        .post(
            "/api/v1/applicationsets",
            Some(&dev),
            appset("envs", "team-a", &["dev", "prod"]),
        )
        .await?;
    assert_eq!(different.status, 400, "{:?}", different.body);
    assert_eq!(
        different.body["message"],
        "existing ApplicationSet spec is different, use upsert flag to force update"
    );
    let upserted = server
        .post(
            "/api/v1/applicationsets?upsert=true",
            Some(&dev),
            appset("envs", "team-a", &["dev", "prod"]),
        )
        .await?;
    assert_eq!(upserted.status, 200, "{:?}", upserted.body);
    assert_eq!(
        upserted.body["spec"]["generators"][0]["list"]["elements"][1]["env"],
        "prod"
    );
    let modified = stream.next().await?;
    assert_eq!(modified["result"]["type"], "MODIFIED", "{modified}");
    // Moving the set to a project the developer has no rights in is refused.
    let moved = server
        .post(
            "/api/v1/applicationsets?upsert=true",
            Some(&dev),
            appset("envs", "default", &["dev"]),
        )
        .await?;
    assert_eq!(moved.status, 403, "{:?}", moved.body);

    // Refusals: another project's set, a templated project, an unknown project, two generators
    // in one entry, another namespace.
    let refused = server
        .post(
            "/api/v1/applicationsets",
            Some(&dev),
            appset("other", "default", &["x"]),
        )
        .await?;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    let templated = server
        .post(
            "/api/v1/applicationsets",
            Some(&admin),
            appset("t", "{{env}}", &["x"]),
        )
        .await?;
    assert_eq!(templated.status, 400, "{:?}", templated.body);
    let unknown = server
        .post(
            "/api/v1/applicationsets",
            Some(&admin),
            appset("u", "nowhere", &["x"]),
        )
        .await?;
    assert_eq!(unknown.status, 400, "{:?}", unknown.body);
    assert_eq!(
        unknown.body["message"],
        "ApplicationSet references project nowhere which does not exist"
    );
    let mut elsewhere = appset("e", "default", &["x"]);
    elsewhere["metadata"]["namespace"] = "kube-system".into();
    let elsewhere = server
        .post("/api/v1/applicationsets", Some(&admin), elsewhere)
        .await?;
    assert_eq!(elsewhere.status, 403, "{:?}", elsewhere.body);

    // Lists show what each caller may see, by project and selector too.
    let other = server
        .post(
            "/api/v1/applicationsets",
            Some(&admin),
            appset("other", "default", &["x"]),
        )
        .await?;
    assert_eq!(other.status, 200, "{:?}", other.body);
    let list = |token: String, query: &'static str| {
        let server = &server;
        async move {
            let listed = server
                .get(&format!("/api/v1/applicationsets{query}"), Some(&token))
                .await?;
            anyhow::ensure!(listed.status == 200, "{:?}", listed.body);
            anyhow::Ok(listed.body)
        }
    };
    assert_eq!(names(&list(admin.clone(), "").await?), ["envs", "other"]);
    assert_eq!(names(&list(dev.clone(), "").await?), ["envs"]);
    assert_eq!(
        names(&list(reader.clone(), "?projects=default").await?),
        ["other"]
    );
    assert!(names(&list(admin.clone(), "?selector=team%3Da").await?).is_empty());

    // The resource tree: the Applications of the status, children of the set.
    let appsets = ctx.api::<ApplicationSet>();
    appsets
        .patch_status(
            "envs",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"resources": [
                {"group": "argoproj.io", "version": "v1alpha1", "kind": "Application", "name": "dev-app",
                 "status": "Synced", "health": {"status": "Healthy"}},
            ]}})),
        )
        .await?;
    let tree = server
        .get("/api/v1/applicationsets/envs/resource-tree", Some(&reader))
        .await?;
    assert_eq!(tree.status, 200, "{:?}", tree.body);
    assert_eq!(tree.body["nodes"][0]["name"], "dev-app");
    assert_eq!(tree.body["nodes"][0]["health"]["status"], "Healthy");
    assert_eq!(
        tree.body["nodes"][0]["parentRefs"][0]["kind"],
        "ApplicationSet"
    );

    // The reader deletes nothing; the developer deletes the set; every change is audited.
    let denied = server
        .delete("/api/v1/applicationsets/envs", Some(&reader))
        .await?;
    assert_eq!(denied.status, 403);
    let events = server
        .get("/api/v1/applicationsets/envs/events", Some(&dev))
        .await?;
    assert_eq!(events.status, 200, "{:?}", events.body);
    let deleted = server
        .delete("/api/v1/applicationsets/envs", Some(&dev))
        .await?;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    loop {
        let event = stream.next().await?;
        if event["result"]["type"] == "DELETED" {
            assert_eq!(
                event["result"]["applicationSet"]["metadata"]["name"],
                "envs"
            );
            break;
        }
    }
    let messages = event_messages(&ctx, "envs").await?;
    for message in [
        "dev created ApplicationSet",
        "dev updated ApplicationSets spec",
        "dev deleted ApplicationSets",
    ] {
        assert!(
            messages.iter().any(|m| m == message),
            "{message} in {messages:?}"
        );
    }
    Ok(())
}
