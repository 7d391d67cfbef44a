//! Methods of Argo CD's gRPC API beyond the app lifecycle, against the real ferry-server (and
//! controller): the metadata of a commit an app deploys (`RevisionMetadata`, which the web UI
//! asks for, called with Argo CD's messages through tonic), and the GnuPG keys of
//! `argocd-gpg-keys-cm` through the real argocd CLI (`argocd gpg list/get/add/rm`), and a
//! repository's branches and tags (`ListRefs`, the web UI's revision choices).

use std::str::FromStr;

use anyhow::{Context, Result};
use ferry_e2e::Story;
use ferry_e2e::argocd::Argocd;
use ferry_grpc::codec::DynamicCodec;
use ferry_grpc::json::{from_message, to_message};
use ferry_testkit::gpg::GpgKey;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::PostParams;
use serde_json::{Value, json};
use tonic::transport::Channel;

/// A logged-in gRPC client of one server.
struct Client {
    channel: Channel,
    token: String,
}

impl Client {
    async fn login(story: &Story, address: &str) -> Result<Self> {
        let password =
            ferry_testkit::server::admin_password(&story.ctx.client(), story.namespace()).await?;
        let channel = Channel::from_shared(format!("http://{address}"))?
            .connect()
            .await?;
        let mut client = Self {
            channel,
            token: String::new(),
        };
        let session = client
            .call(
                "/session.SessionService/Create",
                json!({"username": "admin", "password": password}),
            )
            .await?;
        client.token = session["token"].as_str().context("a token")?.to_string();
        Ok(client)
    }

    /// The unary method at `path` with a request given as JSON; the answer as JSON.
    async fn call(&self, path: &str, request: Value) -> Result<Value, tonic::Status> {
        let method = ferry_grpc::method(path).expect("a method of Argo CD's");
        let message = to_message(&method.input(), request).expect("a valid request");
        let mut request = tonic::Request::new(message);
        if !self.token.is_empty() {
            request
                .metadata_mut()
                .insert("token", self.token.parse().expect("a token is ASCII"));
        }
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|err| tonic::Status::unavailable(err.to_string()))?;
        let path = http::uri::PathAndQuery::from_str(path).expect("a gRPC path");
        let response = grpc
            .unary(request, path, DynamicCodec::new(method.output()))
            .await?;
        Ok(from_message(response.get_ref()))
    }
}

#[tokio::test]
async fn revision_metadata_describes_the_commit_an_app_deploys() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    let server = story.start_server().await?;
    let client = Client::login(&story, &server.address()).await?;
    let app = story.app_name("metadata");
    story.create_app(&app, "guestbook", &[])?;

    story.repo.write("guestbook/note.txt", "release notes\n")?;
    let commit = story
        .repo
        .commit("Release 1.4\n\nWith a body that says why.")?;
    story.repo.annotated_tag("v1.4.0", "release 1.4.0")?;
    story.repo.tag("stable")?;
    let metadata = client
        .call(
            "/application.ApplicationService/RevisionMetadata",
            json!({"name": app, "revision": commit}),
        )
        .await?;
    let author = story
        .repo
        .git(&["show", "-s", "--format=%an <%ae>", &commit])?;
    let date: i64 = story
        .repo
        .git(&["show", "-s", "--format=%at", &commit])?
        .parse()?;
    let said: Time = serde_json::from_value(metadata["date"].clone())?;
    assert_eq!(said.0.as_second(), date, "{metadata}");
    assert_eq!(metadata["author"], author, "{metadata}");
    assert_eq!(metadata["tags"], json!(["stable", "v1.4.0"]), "{metadata}");
    assert_eq!(
        metadata["message"], "Release 1.4\n\nWith a body that says why.",
        "{metadata}"
    );

    // The app's RBAC and Argo CD's refusals apply: an unknown app is PermissionDenied (as
    // Argo CD says, so as not to tell which apps exist), a branch name (not a resolved
    // revision) an error naming it.
    let missing = client
        .call(
            "/application.ApplicationService/RevisionMetadata",
            json!({"name": "no-such-app", "revision": commit}),
        )
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::PermissionDenied, "{missing:?}");
    let branch = client
        .call(
            "/application.ApplicationService/RevisionMetadata",
            json!({"name": app, "revision": "main"}),
        )
        .await
        .unwrap_err();
    assert!(branch.message().contains("main"), "{branch:?}");
    Ok(())
}

#[tokio::test]
async fn list_refs_names_a_repositorys_branches_and_tags() -> Result<()> {
    let story = Story::new().await?;
    let server = story.start_server().await?;
    let client = Client::login(&story, &server.address()).await?;
    story.repo.annotated_tag("v2.0.0", "release 2.0.0")?;
    story.repo.tag("v1.0.0")?;
    story.repo.switch("feature/x")?;
    let refs = client
        .call(
            "/repository.RepositoryService/ListRefs",
            json!({"repo": story.repo.file_url()}),
        )
        .await?;
    let branches = refs["branches"].as_array().context("branches")?;
    assert!(branches.contains(&json!("main")), "{refs}");
    assert!(branches.contains(&json!("feature/x")), "{refs}");
    assert_eq!(refs["tags"], json!(["v1.0.0", "v2.0.0"]), "{refs}");

    let unreachable = client
        .call(
            "/repository.RepositoryService/ListRefs",
            json!({"repo": "file:///nowhere/at/all.git"}),
        )
        .await
        .unwrap_err();
    assert!(
        unreachable.message().contains("nowhere/at/all.git"),
        "{unreachable:?}"
    );
    Ok(())
}

#[tokio::test]
async fn argocd_gpg_lists_gets_adds_and_removes_the_configured_keys() -> Result<()> {
    let story = Story::new().await?;
    let key = GpgKey::generate("release-signer")?;
    let config_map: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "argocd-gpg-keys-cm", "namespace": story.namespace()},
        "data": {key.key_id.clone(): key.armored_public_key()?},
    }))?;
    kube::Api::<ConfigMap>::namespaced(story.ctx.client(), story.namespace())
        .create(&PostParams::default(), &config_map)
        .await?;
    let server = story.start_server().await?;
    let password =
        ferry_testkit::server::admin_password(&story.ctx.client(), story.namespace()).await?;
    let work = tempfile::tempdir()?;
    let argocd = Argocd::new(work.path());
    argocd.login(&server.address(), &password)?;

    let listed = argocd.run(&["gpg", "list"])?;
    let row = listed
        .lines()
        .find(|line| line.starts_with(&key.key_id))
        .with_context(|| format!("no row of {} in {listed}", key.key_id))?;
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(columns[1], "ED25519", "{listed}");
    assert_eq!(
        columns[2..].join(" "),
        "release-signer <release-signer@example.invalid>",
        "{listed}"
    );
    let got = argocd.run(&["gpg", "get", &key.fingerprint, "-o", "json"])?;
    let got: Value = serde_json::from_str(&got)?;
    assert_eq!(got["keyID"], key.key_id, "{got}");
    assert_eq!(got["fingerprint"], key.fingerprint, "{got}");
    assert_eq!(got["trust"], "unknown", "{got}");
    assert!(
        got["keyData"]
            .as_str()
            .is_some_and(|data| data.contains("BEGIN PGP PUBLIC KEY BLOCK")),
        "{got}"
    );
    let missing = argocd.refused(&["gpg", "get", "0123456789ABCDEF"])?;
    assert!(missing.contains("no such key"), "{missing}");

    // A second key added from a file; the first one again is skipped, not written twice.
    let second = GpgKey::generate("second-signer")?;
    let file = work.path().join("keys.asc");
    std::fs::write(
        &file,
        format!(
            "{}\n{}",
            second.armored_public_key()?,
            key.armored_public_key()?
        ),
    )?;
    let file = file.to_string_lossy();
    let added = argocd.run(&["gpg", "add", "--from", &file])?;
    assert!(
        added.contains("Created 1 key(s) from input file, and 1 key(s) were skipped"),
        "{added}"
    );
    let listed = argocd.run(&["gpg", "list"])?;
    assert!(
        listed.contains(&key.key_id) && listed.contains(&second.key_id),
        "{listed}"
    );
    let config_maps = kube::Api::<ConfigMap>::namespaced(story.ctx.client(), story.namespace());
    let stored = config_maps
        .get("argocd-gpg-keys-cm")
        .await?
        .data
        .unwrap_or_default();
    assert!(stored.contains_key(&second.key_id), "{stored:?}");

    // Removed again; a key that is not configured is refused by name.
    let removed = argocd.run(&["gpg", "rm", &key.key_id])?;
    assert!(removed.contains("Deleted key with key ID"), "{removed}");
    let listed = argocd.run(&["gpg", "list"])?;
    assert!(
        !listed.contains(&key.key_id) && listed.contains(&second.key_id),
        "{listed}"
    );
    let again = argocd.refused(&["gpg", "rm", &key.key_id])?;
    assert!(again.contains("no such key configured"), "{again}");
    Ok(())
}
