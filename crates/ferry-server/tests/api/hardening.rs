//! What a security review of the API server against Argo CD's advisories found, tried as an
//! attacker would: a logout must revoke the token everywhere, a cross-site form post riding the
//! session cookie must not change anything, `validate=false` must not skip the project, and an
//! app must not reach live objects its project does not permit.

use anyhow::Result;
use ferry_auth::auth::REVOKED_TOKENS_CONFIG_MAP;
use ferry_testkit::kube::TestContext;
use ferry_types::Application;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::harness::{Server, admin_password, create_app, create_project, install_crds};

#[tokio::test]
async fn a_logout_revokes_the_token_on_every_replica_and_across_restarts() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    let first = Server::start(&ctx).await?;
    let second = Server::start(&ctx).await?;
    let token = first.token("admin", &admin_password(&ctx).await?).await?;
    let other = first.token("admin", &admin_password(&ctx).await?).await?;
    for server in [&first, &second] {
        server
            .wait_for_status("/api/v1/applications", &token, 200)
            .await?;
    }

    let logout = first.delete("/api/v1/session", Some(&token)).await?;
    assert_eq!(logout.status, 200, "{:?}", logout.body);
    // At once where the logout happened, within moments on the other replica.
    let refused = first.get("/api/v1/applications", Some(&token)).await?;
    assert_eq!(refused.status, 401, "{:?}", refused.body);
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("revoked by a logout"),
        "{:?}",
        refused.body
    );
    second
        .wait_for_status("/api/v1/applications", &token, 401)
        .await?;
    let info = second.get("/api/v1/session/userinfo", Some(&token)).await?;
    assert_eq!(info.body["loggedIn"], false);
    // Another session of the same account is not affected.
    assert_eq!(
        second
            .get("/api/v1/applications", Some(&other))
            .await?
            .status,
        200
    );

    // The list lives in the cluster, names no token, and outlives the replicas.
    let revoked = ctx
        .api::<ConfigMap>()
        .get(REVOKED_TOKENS_CONFIG_MAP)
        .await?
        .data
        .unwrap_or_default();
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert!(!revoked.keys().any(|key| token.contains(key.as_str())));
    let log = first.stop().await?;
    assert!(!log.contains(&token));
    second.stop().await?;
    let restarted = Server::start(&ctx).await?;
    let after = restarted.get("/api/v1/applications", Some(&token)).await?;
    assert_eq!(after.status, 401, "{:?}", after.body);
    restarted.stop().await?;
    Ok(())
}

#[tokio::test]
async fn writes_riding_the_session_cookie_must_be_json() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    create_app(&ctx, "web", "default").await?;
    let server = Server::start(&ctx).await?;
    let token = server.token("admin", &admin_password(&ctx).await?).await?;
    let cookie = ("Cookie".to_string(), format!("argocd.token={token}"));
    let sync = "/api/v1/applications/web/sync";

    // What a cross-site form, or `curl -X POST -b argocd.token=...`, sends.
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let mut headers = vec![cookie.clone()];
        headers.extend(content_type.map(|value| ("Content-Type".to_string(), value.to_string())));
        let refused = server.request_as_is("POST", sync, &headers, b"").await?;
        assert_eq!(refused.status, 415, "{content_type:?}: {:?}", refused.body);
        assert_eq!(refused.body["code"], 3, "{:?}", refused.body);
    }
    let app = ctx.api::<Application>().get("web").await?;
    assert!(app.operation.is_none(), "a refused request started a sync");
    // Reads are not affected.
    let read = server
        .request_as_is(
            "GET",
            "/api/v1/applications/web",
            std::slice::from_ref(&cookie),
            b"",
        )
        .await?;
    assert_eq!(read.status, 200, "{:?}", read.body);

    // What the UI sends: JSON.
    let json_type = ("Content-Type".to_string(), "application/json".to_string());
    let started = server
        .request_as_is("POST", sync, &[cookie.clone(), json_type], b"{}")
        .await?;
    assert_eq!(started.status, 200, "{:?}", started.body);

    // A bearer token is no browser's doing: no content type is needed.
    let terminate = server
        .request_as_is(
            "DELETE",
            "/api/v1/applications/web/operation",
            &[("Authorization".to_string(), format!("Bearer {token}"))],
            b"",
        )
        .await?;
    assert_ne!(terminate.status, 415, "{:?}", terminate.body);
    server.stop().await?;
    Ok(())
}

/// A project limited to the namespace `team-a` on the in-cluster server.
async fn team_a(ctx: &TestContext) -> Result<()> {
    let spec = json!({
        "sourceRepos": ["https://git.example.com/*"],
        "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "team-a"}],
    });
    create_project(ctx, "team-a", spec).await
}

fn app(name: &str, project: &str, namespace: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name},
        "spec": {
            "project": project,
            "source": {"repoURL": "https://git.example.com/apps", "path": name},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
        },
    })
}

#[tokio::test]
async fn validate_false_never_skips_the_project() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    team_a(&ctx).await?;
    let server = Server::start(&ctx).await?;
    let token = server.token("admin", &admin_password(&ctx).await?).await?;
    let token = Some(token.as_str());

    let create = "/api/v1/applications?validate=false";
    let missing = server
        .post(create, token, app("a", "nope", "team-a"))
        .await?;
    assert_eq!(missing.status, 400, "{:?}", missing.body);
    assert!(
        missing.body["message"]
            .as_str()
            .unwrap()
            .contains("project nope which does not exist"),
        "{:?}",
        missing.body
    );
    let denied = server
        .post(create, token, app("b", "team-a", "kube-system"))
        .await?;
    assert_eq!(denied.status, 400, "{:?}", denied.body);
    let repo = app("c", "team-a", "team-a");
    let mut elsewhere = repo.clone();
    elsewhere["spec"]["source"]["repoURL"] = json!("https://evil.example.com/apps");
    let denied = server.post(create, token, elsewhere).await?;
    assert_eq!(denied.status, 400, "{:?}", denied.body);
    let apps = ctx.api::<Application>().list(&Default::default()).await?;
    assert!(apps.items.is_empty(), "created: {:?}", apps.items);

    // A permitted app, then updates that would leave the project's bounds.
    let created = server.post(create, token, repo.clone()).await?;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let mut moved = repo.clone();
    moved["spec"]["destination"]["namespace"] = json!("kube-system");
    let update = server
        .put(
            "/api/v1/applications/c?validate=false",
            token,
            moved.clone(),
        )
        .await?;
    assert_eq!(update.status, 400, "{:?}", update.body);
    let update_spec = server
        .put(
            "/api/v1/applications/c/spec?validate=false",
            token,
            moved["spec"].clone(),
        )
        .await?;
    assert_eq!(update_spec.status, 400, "{:?}", update_spec.body);
    let app = ctx.api::<Application>().get("c").await?;
    assert_eq!(app.spec.destination.namespace, "team-a");
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn live_objects_are_only_reached_in_destinations_the_project_permits() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    team_a(&ctx).await?;
    let namespace = format!("{}-other", ctx.namespace());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace}}))?;
    Api::<Namespace>::all(ctx.client())
        .create(&PostParams::default(), &ns)
        .await?;
    let config_map: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "settings"}, "data": {"token": "other-team"}}),
    )?;
    Api::<ConfigMap>::namespaced(ctx.client(), &namespace)
        .create(&PostParams::default(), &config_map)
        .await?;
    // An app written straight to the cluster (or before its project was narrowed) whose status
    // claims an object outside the project's destinations.
    let written: Application = serde_json::from_value(app("sneaky", "team-a", &namespace))?;
    ctx.api::<Application>()
        .create(&PostParams::default(), &written)
        .await?;
    let status = json!({"status": {"resources": [
        {"version": "v1", "kind": "ConfigMap", "namespace": namespace, "name": "settings"},
    ]}});
    ctx.api::<Application>()
        .patch("sneaky", &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    let server = Server::start(&ctx).await?;
    let token = server.token("admin", &admin_password(&ctx).await?).await?;

    let resource = format!(
        "/api/v1/applications/sneaky/resource?namespace={namespace}&resourceName=settings&version=v1&kind=ConfigMap"
    );
    let read = server.get(&resource, Some(&token)).await?;
    assert_eq!(read.status, 403, "{:?}", read.body);
    assert!(!read.body.to_string().contains("other-team"));
    let patch = server
        .post(
            &format!("{resource}&patchType=merge"),
            Some(&token),
            json!(r#"{"data": {"token": "taken"}}"#),
        )
        .await?;
    assert_eq!(patch.status, 403, "{:?}", patch.body);
    let delete = server.delete(&resource, Some(&token)).await?;
    assert_eq!(delete.status, 403, "{:?}", delete.body);
    let events = server
        .get(
            &format!(
                "/api/v1/applications/sneaky/events?resourceNamespace={namespace}&resourceName=settings"
            ),
            Some(&token),
        )
        .await?;
    assert_eq!(events.status, 403, "{:?}", events.body);
    let logs = server
        .get(
            &format!("/api/v1/applications/sneaky/pods/anything/logs?namespace={namespace}"),
            Some(&token),
        )
        .await?;
    assert_eq!(logs.status, 403, "{:?}", logs.body);
    let still = Api::<ConfigMap>::namespaced(ctx.client(), &namespace)
        .get("settings")
        .await?;
    assert_eq!(still.data.unwrap()["token"], "other-team");
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn guesses_spread_over_usernames_lock_out_the_address() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    let server = Server::start(&ctx).await?;
    // Four guesses for each of five usernames: no username reaches its own limit of five.
    for round in 0..4 {
        for user in ["alice", "bob", "carol", "dave", "erin"] {
            let guess = server.login(user, &format!("guess {round}")).await?;
            assert_eq!(guess.status, 401, "{user}: {:?}", guess.body);
        }
    }
    // Twenty failures from this address: even the right password waits.
    let locked = server.login("admin", &admin_password(&ctx).await?).await?;
    assert_eq!(locked.status, 429, "{:?}", locked.body);
    assert!(
        locked.body["message"]
            .as_str()
            .unwrap()
            .contains("from this address"),
        "{:?}",
        locked.body
    );
    server.stop().await?;
    Ok(())
}
