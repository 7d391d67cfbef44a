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

/// The sandbox's API server URL and its CA (base64 PEM, as a cluster's `caData`).
fn sandbox_server(ctx: &TestContext) -> Result<(String, String)> {
    use base64::Engine as _;
    let kubeconfig = kube::config::Kubeconfig::read_from(ctx.kubeconfig())?;
    let cluster = kubeconfig.clusters[0].cluster.clone().unwrap();
    let ca = match (
        cluster.certificate_authority_data,
        cluster.certificate_authority,
    ) {
        (Some(data), _) => data,
        (None, Some(file)) => {
            base64::engine::general_purpose::STANDARD.encode(std::fs::read(file)?)
        }
        (None, None) => anyhow::bail!("the sandbox's kubeconfig names no CA"),
    };
    Ok((cluster.server.unwrap(), ca))
}

/// What `argocd cluster add --namespace` makes on a cluster: the `argocd-manager`
/// ServiceAccount, allowed everything in the namespace, and its long-lived token Secret; the
/// token once the token controller filled it.
async fn argocd_manager(ctx: &TestContext) -> Result<String> {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    use kube::api::PostParams;
    let ns = ctx.namespace();
    let create = PostParams::default();
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "argocd-manager"}}))?;
    ctx.api::<ServiceAccount>()
        .create(&create, &account)
        .await?;
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "argocd-manager-role"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
    }))?;
    ctx.api::<Role>().create(&create, &role).await?;
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "argocd-manager-role-binding"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "argocd-manager-role"},
        "subjects": [{"kind": "ServiceAccount", "name": "argocd-manager", "namespace": ns}],
    }))?;
    ctx.api::<RoleBinding>().create(&create, &binding).await?;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {
            "name": "argocd-manager-long-lived-token",
            "annotations": {"kubernetes.io/service-account.name": "argocd-manager"},
        },
        "type": "kubernetes.io/service-account-token",
    }))?;
    ctx.api::<Secret>().create(&create, &secret).await?;
    for _ in 0..120 {
        let secret = ctx
            .api::<Secret>()
            .get("argocd-manager-long-lived-token")
            .await?;
        if let Some(token) = secret.data.and_then(|mut data| data.remove("token")) {
            return Ok(String::from_utf8(token.0)?);
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    anyhow::bail!("the token controller never filled argocd-manager's token")
}

/// Whether the sandbox's API server takes `token`.
async fn accepted(server: &str, ca: &str, token: &str) -> Result<bool> {
    let cluster = ClusterSecret::from_api(&json!({
        "server": server,
        "config": {"bearerToken": token, "tlsClientConfig": {"caData": ca}},
    }))
    .map_err(anyhow::Error::msg)?;
    let config = kube::Config::from_custom_kubeconfig(
        cluster.to_kubeconfig().map_err(anyhow::Error::msg)?,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    match kube::Client::try_from(config)?.apiserver_version().await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 401 => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// Argo CD's `RotateAuth`: the token of a cluster `argocd cluster add` registered is replaced by
/// a new ServiceAccount token, tried and saved; the old token Secret is deleted and its token
/// refused. Argo CD's `InvalidateCache`: the refresh annotation on the cluster's Secret (the
/// in-cluster destination gets one).
#[tokio::test]
async fn rotate_auth_replaces_the_token_and_invalidate_cache_marks_the_secret() -> Result<()> {
    use k8s_openapi::api::core::v1::ServiceAccount;
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    local_accounts(
        &ctx,
        &[("reader", "reader's password")],
        "g, reader, role:readonly",
    )
    .await?;
    let old_token = argocd_manager(&ctx).await?;
    let (sandbox, ca) = sandbox_server(&ctx)?;
    let server = Server::start(&ctx).await?;
    let admin = server.token("admin", &admin_password(&ctx).await?).await?;
    let reader = server.token("reader", "reader's password").await?;
    let registered = server
        .post(
            "/api/v1/clusters",
            Some(&admin),
            json!({"server": sandbox, "name": "sandbox",
                   "config": {"bearerToken": old_token, "tlsClientConfig": {"caData": ca}}}),
        )
        .await?;
    assert_eq!(registered.status, 200, "{:?}", registered.body);
    let stored = ClusterSecret {
        server: sandbox.clone(),
        ..Default::default()
    }
    .secret_name();

    let rotate = "/api/v1/clusters/sandbox/rotate-auth?id.type=name";
    assert_eq!(
        server.post(rotate, Some(&reader), json!({})).await?.status,
        403
    );
    let rotated = server.post(rotate, Some(&admin), json!({})).await?;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let saved = ClusterSecret::from_secret(&ctx.api::<Secret>().get(&stored).await?)
        .map_err(anyhow::Error::msg)?;
    let new_token = saved.config.bearer_token.clone().unwrap();
    assert_ne!(new_token, old_token);
    assert!(accepted(&sandbox, &ca, &new_token).await?);
    let account = ctx.api::<ServiceAccount>().get("argocd-manager").await?;
    let listed: Vec<String> = account
        .secrets
        .unwrap_or_default()
        .into_iter()
        .filter_map(|reference| reference.name)
        .collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(
        listed[0].starts_with("argocd-manager-long-lived-"),
        "{listed:?}"
    );
    assert!(
        ctx.api::<Secret>()
            .get_opt("argocd-manager-long-lived-token")
            .await?
            .is_none()
    );
    let mut refused = false;
    for _ in 0..40 {
        if !accepted(&sandbox, &ca, &old_token).await? {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(refused, "the old token still works");
    let got = server
        .get("/api/v1/clusters/sandbox?id.type=name", Some(&admin))
        .await?;
    assert_eq!(
        got.body["connectionState"]["status"], "Successful",
        "{:?}",
        got.body
    );
    // The in-cluster destination uses the server's own credentials: no token to rotate.
    let in_cluster = segment("https://kubernetes.default.svc");
    let no_token = server
        .post(
            &format!("/api/v1/clusters/{in_cluster}/rotate-auth"),
            Some(&admin),
            json!({}),
        )
        .await?;
    assert_eq!(no_token.status, 400, "{:?}", no_token.body);
    assert!(
        no_token.body["message"]
            .as_str()
            .unwrap()
            .contains("does not use bearer token authentication"),
        "{:?}",
        no_token.body
    );

    // Invalidating the cache marks the cluster's Secret with the time asked.
    let invalidate = format!("/api/v1/clusters/{}/invalidate-cache", segment(&sandbox));
    assert_eq!(
        server
            .post(&invalidate, Some(&reader), json!({}))
            .await?
            .status,
        403
    );
    let invalidated = server.post(&invalidate, Some(&admin), json!({})).await?;
    assert_eq!(invalidated.status, 200, "{:?}", invalidated.body);
    let at = invalidated.body["refreshRequestedAt"].as_str().unwrap();
    assert!(at.parse::<jiff::Timestamp>().is_ok(), "{at}");
    let secret = ctx.api::<Secret>().get(&stored).await?;
    assert_eq!(
        secret.metadata.annotations.unwrap()["argocd.argoproj.io/refresh"],
        at
    );
    // The token is kept.
    let saved = ClusterSecret::from_secret(&ctx.api::<Secret>().get(&stored).await?)
        .map_err(anyhow::Error::msg)?;
    assert_eq!(
        saved.config.bearer_token.as_deref(),
        Some(new_token.as_str())
    );
    let local = server
        .post(
            &format!("/api/v1/clusters/{in_cluster}/invalidate-cache"),
            Some(&admin),
            json!({}),
        )
        .await?;
    assert_eq!(local.status, 200, "{:?}", local.body);
    let local_secret = ClusterSecret::in_cluster().secret_name();
    let secret = ctx.api::<Secret>().get(&local_secret).await?;
    assert!(
        secret.metadata.annotations.unwrap()["argocd.argoproj.io/refresh"].len() == 20,
        "RFC 3339 to the second"
    );

    let messages = event_messages(&ctx, &stored).await?;
    assert!(
        messages
            .iter()
            .filter(|m| *m == &format!("admin updated cluster {sandbox}"))
            .count()
            >= 2,
        "{messages:?}"
    );
    let log = server.stop().await?;
    assert_no_secrets(&log, &[&old_token, &new_token]);
    Ok(())
}
