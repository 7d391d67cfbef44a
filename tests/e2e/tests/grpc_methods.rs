//! Methods of Argo CD's gRPC API that the argocd CLI does not call but its web UI and other
//! clients do, called with Argo CD's messages through tonic against the real ferry-server and
//! controller: the metadata of a commit an app deploys (`RevisionMetadata`).

use std::str::FromStr;

use anyhow::{Context, Result};
use ferry_e2e::Story;
use ferry_grpc::codec::DynamicCodec;
use ferry_grpc::json::{from_message, to_message};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
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
