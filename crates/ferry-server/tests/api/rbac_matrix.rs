//! The RBAC matrix through the real server: per user, role and project, which application
//! calls are allowed and which are refused, with globs over projects and names, a deny rule that
//! beats an allow, the built-in read-only role, and a user nothing applies to.

use anyhow::Result;
use ferry_testkit::kube::TestContext;
use ferry_types::AppProject;
use kube::api::PostParams;
use serde_json::{Value, json};

use crate::harness::{Server, create_app, install_crds, local_accounts};

const POLICY: &str = "\
p, role:team-a-dev, applications, get, team-a/*, allow
p, role:team-a-dev, applications, sync, team-a/*, allow
p, role:team-a-dev, applications, sync, team-a/*-db, deny
g, alice, role:team-a-dev
g, bob, role:readonly
p, carol, applications, *, */*-web, allow
p, carol, applications, delete, team-b/*, deny
";

async fn project(ctx: &TestContext, name: &str) -> Result<()> {
    let project: AppProject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": name},
        "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}]},
    }))?;
    ctx.api::<AppProject>()
        .create(&PostParams::default(), &project)
        .await?;
    Ok(())
}

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|app| app["metadata"]["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn each_user_may_do_exactly_what_the_policy_says() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    project(&ctx, "team-a").await?;
    project(&ctx, "team-b").await?;
    for (app, project) in [("a-web", "team-a"), ("a-db", "team-a"), ("b-web", "team-b")] {
        create_app(&ctx, app, project).await?;
    }
    let users = [
        ("alice", "alice's password"),
        ("bob", "bob's password"),
        ("carol", "carol's password"),
        ("dave", "dave's password"),
    ];
    local_accounts(&ctx, &users, POLICY).await?;
    let server = Server::start(&ctx).await?;
    let mut tokens = std::collections::HashMap::new();
    for (user, password) in users {
        tokens.insert(user, server.token(user, password).await?);
    }

    let apps = |name: &str| format!("/api/v1/applications/{name}");
    let cases: &[(&str, &str, &str, u16)] = &[
        // alice: team-a's apps, sync except the database (deny wins over the glob allow).
        ("alice", "GET", "a-web", 200),
        ("alice", "GET", "a-db", 200),
        ("alice", "GET", "b-web", 403),
        ("alice", "SYNC", "a-db", 403),
        ("alice", "SYNC", "a-web", 200),
        ("alice", "DELETE", "a-web", 403),
        // bob: role:readonly sees everything and changes nothing.
        ("bob", "GET", "b-web", 200),
        ("bob", "SYNC", "b-web", 403),
        ("bob", "DELETE", "a-db", 403),
        // carol: anything on *-web apps of any project, but no deletes in team-b.
        ("carol", "GET", "a-db", 403),
        ("carol", "SYNC", "b-web", 200),
        ("carol", "DELETE", "b-web", 403),
        // dave: no rule, no default role.
        ("dave", "GET", "a-web", 403),
        ("dave", "SYNC", "a-web", 403),
        // A missing app is refused like a forbidden one, so nothing leaks.
        ("alice", "GET", "nothing", 403),
        // Last, as it deletes: carol may delete team-a's web app.
        ("carol", "DELETE", "a-web", 200),
    ];
    for (user, action, app, expected) in cases {
        let token = Some(tokens[user].as_str());
        let response = match *action {
            "GET" => server.get(&apps(app), token).await?,
            "SYNC" => {
                server
                    .post(&format!("{}/sync", apps(app)), token, json!({}))
                    .await?
            }
            _ => {
                server
                    .delete(&format!("{}?cascade=false", apps(app)), token)
                    .await?
            }
        };
        assert_eq!(
            response.status, *expected,
            "{user} {action} {app}: {:?}",
            response.body
        );
    }

    let listed = |user: &'static str| {
        let server = &server;
        let token = tokens[user].clone();
        async move { server.get("/api/v1/applications", Some(&token)).await }
    };
    assert_eq!(names(&listed("alice").await?.body), ["a-db"]);
    assert_eq!(names(&listed("bob").await?.body), ["a-db", "b-web"]);
    assert_eq!(names(&listed("carol").await?.body), ["b-web"]);
    assert!(names(&listed("dave").await?.body).is_empty());

    let can = |user: &'static str, path: &'static str| {
        let server = &server;
        let token = tokens[user].clone();
        async move {
            let answer = server
                .get(&format!("/api/v1/account/can-i/{path}"), Some(&token))
                .await?;
            anyhow::Ok(
                answer.body["value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        }
    };
    assert_eq!(
        can("carol", "applications/delete/team-b/b-web").await?,
        "no"
    );
    assert_eq!(
        can("carol", "applications/update/team-b/b-web").await?,
        "yes"
    );
    assert_eq!(can("alice", "applications/sync/team-a/a-db").await?, "no");
    let log = server.stop().await?;
    assert!(
        log.contains("permission denied") || log.contains("denied"),
        "denials are logged"
    );
    Ok(())
}
