//! Repositories and credential templates through the API: kept in Argo CD's Secrets, with
//! credentials that go in and never come out (neither in answers nor in the log), under RBAC
//! that can confine a user to one project's repositories, audited as Events on the Secrets.

use anyhow::Result;
use ferry_testkit::kube::TestContext;
use ferry_types::secrets::{RepoSecret, RepoSecretKind};
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};

use crate::harness::{
    Response, Server, admin_password, assert_no_secrets, event_messages, install_crds,
    local_accounts, segment,
};

const APPS: &str = "https://git.example.com/org/apps.git";
const SECRETS: [&str; 5] = [
    "s3cret-pw",
    "n3w-pw",
    "-----BEGIN KEY-----",
    "client-key-data",
    "t3mplate-pw",
];

/// Every answer of a test, to check none holds a credential.
#[derive(Default)]
struct Seen(String);

impl Seen {
    fn saw(&mut self, response: Response) -> Response {
        self.0.push_str(&response.body.to_string());
        response
    }
}

fn urls(list: &Value, field: &str) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[field].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn repositories_take_credentials_and_never_give_them_back() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    local_accounts(
        &ctx,
        &[("reader", "reader's password"), ("dev", "dev's password")],
        "g, reader, role:readonly\n\
         p, dev, repositories, *, team-a/*, allow",
    )
    .await?;
    let server = Server::start(&ctx).await?;
    let admin = server.token("admin", &admin_password(&ctx).await?).await?;
    let reader = server.token("reader", "reader's password").await?;
    let dev = server.token("dev", "dev's password").await?;
    let mut seen = Seen::default();

    let apps = json!({
        "repo": APPS, "name": "apps", "username": "alice", "password": "s3cret-pw",
        "sshPrivateKey": "-----BEGIN KEY-----", "tlsClientCertData": "cert",
        "tlsClientCertKey": "client-key-data", "insecure": true,
    });
    let created = seen.saw(
        server
            .post("/api/v1/repositories", Some(&admin), apps.clone())
            .await?,
    );
    assert_eq!(created.status, 200, "{:?}", created.body);
    assert_eq!(created.body["repo"], APPS);
    assert_eq!(created.body["username"], "alice");
    assert_eq!(created.body["connectionState"]["status"], "Unknown");
    let stored = RepoSecret::new(RepoSecretKind::Repository, APPS).secret_name();
    let secret = ctx.api::<Secret>().get(&stored).await?;
    let repo = RepoSecret::from_secret(&secret).unwrap();
    assert_eq!(repo.password.as_deref(), Some("s3cret-pw"));
    assert_eq!(repo.unknown["tlsClientCertKey"], "client-key-data");

    // The same again is fine; other settings need upsert.
    let again = seen.saw(
        server
            .post("/api/v1/repositories", Some(&admin), apps.clone())
            .await?,
    );
    assert_eq!(again.status, 200, "{:?}", again.body);
    let mut changed = apps.clone();
    changed["password"] = "n3w-pw".into();
    let conflict = seen.saw(
        server
            .post("/api/v1/repositories", Some(&admin), changed.clone())
            .await?,
    );
    assert_eq!(conflict.status, 409, "{:?}", conflict.body);
    let upserted = seen.saw(
        server
            .post("/api/v1/repositories?upsert=true", Some(&admin), changed)
            .await?,
    );
    assert_eq!(upserted.status, 200, "{:?}", upserted.body);
    let secret = ctx.api::<Secret>().get(&stored).await?;
    let repo = RepoSecret::from_secret(&secret).unwrap();
    assert_eq!(repo.password.as_deref(), Some("n3w-pw"));
    let invalid = server
        .post(
            "/api/v1/repositories",
            Some(&admin),
            json!({"repo": "https://x", "type": "svn"}),
        )
        .await?;
    assert_eq!(invalid.status, 400, "{:?}", invalid.body);

    // A template lends its credentials to the repositories under it.
    let template = json!({"url": "https://git.example.com/org/", "username": "bot", "password": "t3mplate-pw"});
    let created = seen.saw(
        server
            .post("/api/v1/repocreds", Some(&admin), template)
            .await?,
    );
    assert_eq!(created.status, 200, "{:?}", created.body);
    let bare = json!({"repo": "https://git.example.com/org/other", "project": "team-a"});
    let created = seen.saw(
        server
            .post("/api/v1/repositories", Some(&admin), bare)
            .await?,
    );
    assert_eq!(created.status, 200, "{:?}", created.body);
    assert_eq!(created.body["inheritedCreds"], true);

    // Reading: the readonly role sees all, the team-a role only team-a's.
    let listed = seen.saw(server.get("/api/v1/repositories", Some(&reader)).await?);
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!(
        urls(&listed.body, "repo"),
        [APPS, "https://git.example.com/org/other"]
    );
    let theirs = seen.saw(server.get("/api/v1/repositories", Some(&dev)).await?);
    assert_eq!(
        urls(&theirs.body, "repo"),
        ["https://git.example.com/org/other"]
    );
    let templates = seen.saw(server.get("/api/v1/repocreds", Some(&reader)).await?);
    assert_eq!(
        urls(&templates.body, "url"),
        ["https://git.example.com/org/"]
    );
    let one = seen.saw(
        server
            .get(
                &format!("/api/v1/repositories/{}", segment(APPS)),
                Some(&reader),
            )
            .await?,
    );
    assert_eq!(one.status, 200, "{:?}", one.body);
    assert_eq!(one.body["name"], "apps");
    assert_eq!(
        server
            .get(
                &format!("/api/v1/repositories/{}", segment(APPS)),
                Some(&dev)
            )
            .await?
            .status,
        403
    );
    let missing = format!(
        "/api/v1/repositories/{}",
        segment("https://git.example.com/none")
    );
    assert_eq!(server.get(&missing, Some(&admin)).await?.status, 404);

    // Writing: not for the readonly role; the team-a role only in team-a.
    let refused = server
        .post(
            "/api/v1/repositories",
            Some(&reader),
            json!({"repo": "https://git.example.com/x"}),
        )
        .await?;
    assert_eq!(refused.status, 403);
    let repo_path = format!("/api/v1/repositories/{}", segment(APPS));
    assert_eq!(server.delete(&repo_path, Some(&reader)).await?.status, 403);
    let elsewhere = server
        .post(
            "/api/v1/repositories",
            Some(&dev),
            json!({"repo": "https://git.example.com/y", "project": "team-b"}),
        )
        .await?;
    assert_eq!(elsewhere.status, 403);
    let own = seen.saw(
        server
            .post(
                "/api/v1/repositories",
                Some(&dev),
                json!({"repo": "https://git.example.com/y", "project": "team-a"}),
            )
            .await?,
    );
    assert_eq!(own.status, 200, "{:?}", own.body);

    // An update replaces the settings, credentials included.
    let mut renamed = apps.clone();
    renamed["name"] = "renamed".into();
    renamed["password"] = "s3cret-pw".into();
    let updated = seen.saw(server.put(&repo_path, Some(&admin), renamed).await?);
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert_eq!(updated.body["name"], "renamed");

    let deleted = server.delete(&repo_path, Some(&admin)).await?;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    assert_eq!(server.get(&repo_path, Some(&admin)).await?.status, 404);
    assert_eq!(server.delete(&repo_path, Some(&admin)).await?.status, 404);
    let creds_path = format!(
        "/api/v1/repocreds/{}",
        segment("https://git.example.com/org/")
    );
    assert_eq!(server.delete(&creds_path, Some(&admin)).await?.status, 200);

    let messages = event_messages(&ctx, &stored).await?;
    let prefix = "admin ";
    for done in ["created", "updated", "deleted"] {
        let expected = format!("{prefix}{done} repository {APPS}");
        assert!(
            messages.contains(&expected),
            "{expected:?} not in {messages:?}"
        );
    }
    for secret in SECRETS {
        assert!(
            !seen.0.contains(secret),
            "{secret} in an answer: {}",
            seen.0
        );
    }
    let log = server.stop().await?;
    assert_no_secrets(&log, &SECRETS);
    Ok(())
}

/// Argo CD's `forceRefresh`: the list checks each git repository's connection with the saved
/// credentials and says why one failed; a list without it checks nothing.
#[tokio::test]
async fn a_forced_refresh_checks_each_repositorys_connection() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    let server = Server::start(&ctx).await?;
    let admin = server.token("admin", &admin_password(&ctx).await?).await?;
    let repo = ferry_testkit::git::GitRepo::new()?;
    repo.write("README", "hello")?;
    repo.commit("hello")?;
    let git = ferry_testkit::git::HttpServer::start(&repo, Some(("alice", "right-pw")))?;
    let other = ferry_testkit::git::HttpServer::start(&repo, Some(("alice", "right-pw")))?;
    for body in [
        json!({"repo": git.url(), "username": "alice", "password": "right-pw"}),
        json!({"repo": other.url(), "username": "alice", "password": "wrong-pw"}),
        json!({"repo": "https://charts.example.com", "type": "helm", "name": "charts"}),
    ] {
        let created = server
            .post("/api/v1/repositories", Some(&admin), body)
            .await?;
        assert_eq!(created.status, 200, "{:?}", created.body);
    }
    let state_of = |list: &Value, url: &str| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|item| item["repo"] == url)
            .map(|item| item["connectionState"].clone())
            .unwrap()
    };

    let unchecked = server.get("/api/v1/repositories", Some(&admin)).await?.body;
    assert_eq!(state_of(&unchecked, &git.url())["status"], "Unknown");
    assert_eq!(git.requests(), 0);

    let checked = server
        .get("/api/v1/repositories?forceRefresh=true", Some(&admin))
        .await?
        .body;
    assert_eq!(state_of(&checked, &git.url())["status"], "Successful");
    let failed = state_of(&checked, &other.url());
    assert_eq!(failed["status"], "Failed");
    assert!(
        failed["message"].as_str().unwrap().contains(&other.url()),
        "{failed}"
    );
    let helm = state_of(&checked, "https://charts.example.com");
    assert_eq!(helm["status"], "Unknown");
    assert_no_secrets(&checked.to_string(), &["right-pw", "wrong-pw"]);
    server.stop().await?;
    Ok(())
}

/// Argo CD's write repositories and write credential templates (credentials to push with):
/// Secrets of their own types, never listed or used as repositories to read from, under the
/// `write-repositories` RBAC resource, masked and audited as repositories are. A write
/// repository needs credentials that answer, as Argo CD's.
#[tokio::test]
async fn write_repositories_are_kept_apart_from_those_to_read() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    local_accounts(
        &ctx,
        &[
            ("reader", "reader's password"),
            ("dev", "dev's password"),
            ("pusher", "pusher's password"),
        ],
        "g, reader, role:readonly\n\
         p, dev, repositories, *, *, allow\n\
         p, pusher, write-repositories, *, team-a/*, allow",
    )
    .await?;
    let server = Server::start(&ctx).await?;
    let admin = server.token("admin", &admin_password(&ctx).await?).await?;
    let reader = server.token("reader", "reader's password").await?;
    let dev = server.token("dev", "dev's password").await?;
    let pusher = server.token("pusher", "pusher's password").await?;
    let mut seen = Seen::default();
    let repo = ferry_testkit::git::GitRepo::new()?;
    repo.write("README", "hello")?;
    repo.commit("hello")?;
    let git = ferry_testkit::git::HttpServer::start(&repo, Some(("bot", "push-pw")))?;
    let url = git.url();
    let path = format!("/api/v1/write-repositories/{}", segment(&url));

    // Credentials are required, and must answer; nothing is saved otherwise.
    let bare = server
        .post(
            "/api/v1/write-repositories",
            Some(&admin),
            json!({"repo": url}),
        )
        .await?;
    assert_eq!(bare.status, 400, "{:?}", bare.body);
    assert_eq!(bare.body["message"], "missing credentials in request");
    let wrong = json!({"repo": url, "username": "bot", "password": "wrong-pw"});
    let refused = server
        .post("/api/v1/write-repositories", Some(&admin), wrong.clone())
        .await?;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    let validate = format!("{path}/validate");
    let invalid = server.post(&validate, Some(&admin), wrong).await?;
    assert_eq!(invalid.status, 400, "{:?}", invalid.body);
    let right = json!({"repo": url, "username": "bot", "password": "push-pw", "name": "push"});
    let valid = server.post(&validate, Some(&admin), right.clone()).await?;
    assert_eq!(valid.status, 200, "{:?}", valid.body);
    // Testing a write repository needs the right to create one.
    assert_eq!(
        server
            .post(&validate, Some(&dev), right.clone())
            .await?
            .status,
        403
    );

    let created = seen.saw(
        server
            .post("/api/v1/write-repositories", Some(&admin), right.clone())
            .await?,
    );
    assert_eq!(created.status, 200, "{:?}", created.body);
    assert_eq!(created.body["repo"], url.as_str());
    assert_eq!(created.body["username"], "bot");
    let write = RepoSecret {
        write: true,
        ..RepoSecret::new(RepoSecretKind::Repository, &url)
    };
    let stored = write.secret_name();
    assert!(stored.starts_with("repo-write-"), "{stored}");
    let secret = ctx.api::<Secret>().get(&stored).await?;
    assert_eq!(
        secret.metadata.labels.as_ref().unwrap()["argocd.argoproj.io/secret-type"],
        "repository-write"
    );
    let saved = RepoSecret::from_secret(&secret).unwrap();
    assert!(saved.write);
    assert_eq!(saved.password.as_deref(), Some("push-pw"));

    // Listed as a write repository only, to those who may get write repositories.
    let read = server.get("/api/v1/repositories", Some(&admin)).await?;
    assert_eq!(urls(&read.body, "repo"), Vec::<String>::new());
    let listed = seen.saw(
        server
            .get("/api/v1/write-repositories", Some(&reader))
            .await?,
    );
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!(urls(&listed.body, "repo"), std::slice::from_ref(&url));
    let theirs = server.get("/api/v1/write-repositories", Some(&dev)).await?;
    assert_eq!(urls(&theirs.body, "repo"), Vec::<String>::new());
    assert_eq!(server.get(&path, Some(&dev)).await?.status, 403);
    let checked = seen.saw(
        server
            .get("/api/v1/write-repositories?forceRefresh=true", Some(&admin))
            .await?,
    );
    assert_eq!(
        checked.body["items"][0]["connectionState"]["status"], "Successful",
        "{:?}",
        checked.body
    );
    let one = seen.saw(server.get(&path, Some(&reader)).await?);
    assert_eq!(one.status, 200, "{:?}", one.body);
    assert_eq!(one.body["name"], "push");
    // A repository to read from of the same URL is another entry.
    assert_eq!(
        server
            .get(
                &format!("/api/v1/repositories/{}", segment(&url)),
                Some(&admin)
            )
            .await?
            .status,
        404
    );

    // Writing needs write-repositories: repositories' rights are not enough, a project's are
    // for that project's.
    let scoped =
        json!({"repo": url, "username": "bot", "password": "push-pw", "project": "team-a"});
    assert_eq!(
        server
            .post("/api/v1/write-repositories", Some(&dev), scoped.clone())
            .await?
            .status,
        403
    );
    let mut elsewhere = scoped.clone();
    elsewhere["project"] = "team-b".into();
    assert_eq!(
        server
            .post("/api/v1/write-repositories", Some(&pusher), elsewhere)
            .await?
            .status,
        403
    );
    let own = seen.saw(
        server
            .post("/api/v1/write-repositories", Some(&pusher), scoped)
            .await?,
    );
    assert_eq!(own.status, 200, "{:?}", own.body);

    // Write templates: apart from the templates to read with.
    let template = json!({"url": "https://git.example.com/org/", "username": "bot", "password": "t3mplate-pw"});
    let created = seen.saw(
        server
            .post("/api/v1/write-repocreds", Some(&admin), template)
            .await?,
    );
    assert_eq!(created.status, 200, "{:?}", created.body);
    let templates = server.get("/api/v1/repocreds", Some(&admin)).await?;
    assert_eq!(urls(&templates.body, "url"), Vec::<String>::new());
    let write_templates = seen.saw(server.get("/api/v1/write-repocreds", Some(&reader)).await?);
    assert_eq!(
        urls(&write_templates.body, "url"),
        ["https://git.example.com/org/"]
    );
    let creds_path = format!(
        "/api/v1/write-repocreds/{}",
        segment("https://git.example.com/org/")
    );
    let updated = seen.saw(
        server
            .put(
                &creds_path,
                Some(&admin),
                json!({"username": "bot2", "password": "t3mplate-pw"}),
            )
            .await?,
    );
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert_eq!(updated.body["username"], "bot2");
    assert_eq!(server.delete(&creds_path, Some(&dev)).await?.status, 403);
    assert_eq!(server.delete(&creds_path, Some(&admin)).await?.status, 200);

    // Update and delete.
    let mut renamed = right.clone();
    renamed["name"] = "renamed".into();
    let updated = seen.saw(server.put(&path, Some(&admin), renamed).await?);
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert_eq!(updated.body["name"], "renamed");
    assert_eq!(server.delete(&path, Some(&reader)).await?.status, 403);
    let deleted = server.delete(&path, Some(&admin)).await?;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    // Left: team-a's, the only one of that URL, which its project's writer may remove.
    let left = server.get(&path, Some(&admin)).await?;
    assert_eq!(left.body["project"], "team-a", "{:?}", left.body);
    let team_a = format!("{path}?appProject=team-a");
    assert_eq!(server.delete(&team_a, Some(&pusher)).await?.status, 200);
    assert_eq!(server.get(&path, Some(&admin)).await?.status, 404);

    let messages = event_messages(&ctx, &stored).await?;
    for done in ["created", "updated", "deleted"] {
        let expected = format!("admin {done} repository-write {url}");
        assert!(
            messages.contains(&expected),
            "{expected:?} not in {messages:?}"
        );
    }
    for secret in ["push-pw", "t3mplate-pw"] {
        assert!(
            !seen.0.contains(secret),
            "{secret} in an answer: {}",
            seen.0
        );
    }
    let log = server.stop().await?;
    assert_no_secrets(&log, &["push-pw", "t3mplate-pw", "wrong-pw"]);
    Ok(())
}
