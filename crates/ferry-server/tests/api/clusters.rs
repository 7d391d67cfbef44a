//! Clusters through the API: the implicit in-cluster destination and registered ones, whose
//! credentials go in and never come out (neither in answers nor in the log), under RBAC that
//! can confine a user to one project's clusters, audited as Events on their Secrets.

use anyhow::Result;
use ferry_testkit::kube::TestContext;
use ferry_types::secrets::ClusterSecret;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};

use crate::harness::{
    Server, admin_password, assert_no_secrets, event_messages, install_crds, local_accounts,
    segment,
};

const PROD: &str = "https://prod.example.com:6443";
const SECRETS: [&str; 3] = ["bearer-t0ken", "b4sic-pw", "S0VZLURBVEE="];

fn servers(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["server"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn clusters_take_credentials_and_never_give_them_back() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    local_accounts(
        &ctx,
        &[("reader", "reader's password"), ("dev", "dev's password")],
        "g, reader, role:readonly\n\
         p, dev, clusters, get, team-a/*, allow",
    )
    .await?;
    let server = Server::start(&ctx).await?;
    let admin = server.token("admin", &admin_password(&ctx).await?).await?;
    let reader = server.token("reader", "reader's password").await?;
    let dev = server.token("dev", "dev's password").await?;
    let mut answers = String::new();

    let listed = server.get("/api/v1/clusters", Some(&admin)).await?;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!(servers(&listed.body), ["https://kubernetes.default.svc"]);
    assert_eq!(listed.body["items"][0]["name"], "in-cluster");

    let prod = json!({
        "server": PROD, "name": "prod", "namespaces": ["web"], "project": "team-a",
        "labels": {"env": "prod"},
        "config": {
            "bearerToken": "bearer-t0ken", "username": "ops", "password": "b4sic-pw",
            "tlsClientConfig": {"caData": "Q0E=", "certData": "Q0VSVA==", "keyData": "S0VZLURBVEE="},
        },
    });
    let created = server
        .post("/api/v1/clusters", Some(&admin), prod.clone())
        .await?;
    assert_eq!(created.status, 200, "{:?}", created.body);
    answers.push_str(&created.body.to_string());
    assert_eq!(created.body["name"], "prod");
    assert_eq!(created.body["labels"]["env"], "prod");
    let stored = ClusterSecret {
        server: PROD.into(),
        ..Default::default()
    }
    .secret_name();
    let secret = ctx.api::<Secret>().get(&stored).await?;
    let cluster = ClusterSecret::from_secret(&secret).unwrap();
    assert_eq!(cluster.config.bearer_token.as_deref(), Some("bearer-t0ken"));

    let again = server
        .post("/api/v1/clusters", Some(&admin), prod.clone())
        .await?;
    assert_eq!(again.status, 200, "{:?}", again.body);
    let mut moved = prod.clone();
    moved["namespaces"] = json!(["web", "jobs"]);
    let conflict = server
        .post("/api/v1/clusters", Some(&admin), moved.clone())
        .await?;
    assert_eq!(conflict.status, 409, "{:?}", conflict.body);
    let upserted = server
        .post("/api/v1/clusters?upsert=true", Some(&admin), moved)
        .await?;
    assert_eq!(upserted.status, 200, "{:?}", upserted.body);
    answers.push_str(&upserted.body.to_string());

    // Only the fields named change: the credentials, never shown, stay.
    let path = format!("/api/v1/clusters/{}", segment(PROD));
    let updated = server
        .put(
            &format!("{path}?updatedFields=namespaces&updatedFields=labels"),
            Some(&admin),
            json!({"namespaces": ["web"], "labels": {"env": "production"}}),
        )
        .await?;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    answers.push_str(&updated.body.to_string());
    let secret = ctx.api::<Secret>().get(&stored).await?;
    let cluster = ClusterSecret::from_secret(&secret).unwrap();
    assert_eq!(cluster.namespaces, ["web"]);
    assert_eq!(cluster.labels["env"], "production");
    assert_eq!(cluster.config.password.as_deref(), Some("b4sic-pw"));

    // Reading: the readonly role sees all, the team-a role only team-a's; by server or name.
    for (token, expected) in [
        (&reader, vec!["https://kubernetes.default.svc", PROD]),
        (&dev, vec![PROD]),
    ] {
        let listed = server.get("/api/v1/clusters", Some(token)).await?;
        assert_eq!(listed.status, 200, "{:?}", listed.body);
        assert_eq!(servers(&listed.body), expected);
        answers.push_str(&listed.body.to_string());
    }
    let by_server = server.get(&path, Some(&dev)).await?;
    assert_eq!(by_server.status, 200, "{:?}", by_server.body);
    // Its API server is asked for its version now: prod.example.com cannot be reached.
    assert_eq!(by_server.body["connectionState"]["status"], "Failed");
    assert_ne!(by_server.body["connectionState"]["message"], "");
    assert!(by_server.body["connectionState"]["attemptedAt"].is_string());
    answers.push_str(&by_server.body.to_string());
    let by_name = server
        .get("/api/v1/clusters/prod?id.type=name", Some(&reader))
        .await?;
    assert_eq!(by_name.body["server"], PROD);
    let in_cluster = format!(
        "/api/v1/clusters/{}",
        segment("https://kubernetes.default.svc")
    );
    assert_eq!(server.get(&in_cluster, Some(&dev)).await?.status, 403);
    // The in-cluster destination answers the server's own credentials, with its version.
    let local = server.get(&in_cluster, Some(&reader)).await?.body;
    assert_eq!(local["connectionState"]["status"], "Successful", "{local}");
    assert!(
        local["info"]["serverVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1."))
    );
    let missing = format!("/api/v1/clusters/{}", segment("https://none.example.com"));
    assert_eq!(server.get(&missing, Some(&admin)).await?.status, 404);

    // Writing: not for the readonly role.
    let refused = server
        .post(
            "/api/v1/clusters",
            Some(&reader),
            json!({"server": "https://other.example.com"}),
        )
        .await?;
    assert_eq!(refused.status, 403);
    assert_eq!(server.delete(&path, Some(&reader)).await?.status, 403);
    let invalid = server
        .post(
            "/api/v1/clusters",
            Some(&admin),
            json!({"server": "prod", "config": {"bearerToken": ["bearer-t0ken"]}}),
        )
        .await?;
    assert_eq!(invalid.status, 400, "{:?}", invalid.body);
    answers.push_str(&invalid.body.to_string());

    assert_eq!(server.delete(&in_cluster, Some(&admin)).await?.status, 400);
    let deleted = server.delete(&path, Some(&admin)).await?;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    assert_eq!(server.get(&path, Some(&admin)).await?.status, 404);

    let messages = event_messages(&ctx, &stored).await?;
    for done in ["created", "updated", "deleted"] {
        let expected = format!("admin {done} cluster {PROD}");
        assert!(
            messages.contains(&expected),
            "{expected:?} not in {messages:?}"
        );
    }
    for secret in SECRETS {
        assert!(
            !answers.contains(secret),
            "{secret} in an answer: {answers}"
        );
    }
    let log = server.stop().await?;
    assert_no_secrets(&log, &SECRETS);
    Ok(())
}
