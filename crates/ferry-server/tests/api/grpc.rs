//! Argo CD's gRPC API on the server's port, with a tonic client speaking Argo CD's messages:
//! the same logins, RBAC answers and errors as REST, since the gRPC calls go through the REST
//! handlers; Argo CD's codes for refusals; methods ferry lacks named as unimplemented.

use std::str::FromStr;

use anyhow::Result;
use ferry_grpc::codec::DynamicCodec;
use ferry_grpc::json::{from_message, to_message};
use ferry_testkit::kube::TestContext;
use futures::StreamExt;
use serde_json::{Value, json};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::harness::{Server, admin_password, create_app, install_crds};

/// A gRPC client of one server, logged in or not.
struct Client {
    channel: Channel,
    token: Option<String>,
}

impl Client {
    async fn connect(server: &Server) -> Result<Self> {
        let channel = Channel::from_shared(server.url())?.connect().await?;
        Ok(Self {
            channel,
            token: None,
        })
    }

    fn request(
        &self,
        path: &str,
        request: Value,
    ) -> (
        http::uri::PathAndQuery,
        DynamicCodec,
        tonic::Request<prost_reflect::DynamicMessage>,
    ) {
        let method = ferry_grpc::method(path).unwrap_or_else(|| panic!("no method {path}"));
        let message = to_message(&method.input(), request).expect("a valid request");
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token {
            request
                .metadata_mut()
                .insert("token", token.parse().expect("a token is ASCII"));
        }
        let path = http::uri::PathAndQuery::from_str(path).expect("a gRPC path");
        (path, DynamicCodec::new(method.output()), request)
    }

    /// Calls the unary method at `path` (`/service/Method`) with a request given as JSON.
    async fn call(&self, path: &str, request: Value) -> Result<Value, Status> {
        let (path, codec, request) = self.request(path, request);
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|err| Status::unavailable(err.to_string()))?;
        let response = grpc.unary(request, path, codec).await?;
        Ok(from_message(response.get_ref()))
    }

    /// The first message of the server stream at `path`.
    async fn first_of_stream(&self, path: &str, request: Value) -> Result<Value, Status> {
        let (path, codec, request) = self.request(path, request);
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|err| Status::unavailable(err.to_string()))?;
        let mut stream = grpc
            .server_streaming(request, path, codec)
            .await?
            .into_inner();
        let first = stream
            .next()
            .await
            .ok_or_else(|| Status::aborted("no message"))??;
        Ok(from_message(&first))
    }
}

#[tokio::test]
async fn argo_cds_grpc_api_answers_on_the_rest_port() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    create_app(&ctx, "guestbook", "default").await?;
    // One config-management plugin, as the controller would be given it.
    let plugins = tempfile::tempdir()?;
    std::fs::write(
        plugins.path().join("envsubst.yaml"),
        "apiVersion: argoproj.io/v1alpha1\nkind: ConfigManagementPlugin\n\
         metadata: {name: envsubst}\nspec: {version: v1.0, generate: {command: [envsubst]}}\n",
    )?;
    let plugin_dir = format!("--plugin-config-dir={}", plugins.path().display());
    let server = Server::start_with(&ctx, &[plugin_dir]).await?;
    let mut client = Client::connect(&server).await?;

    // Every method of Argo CD's services, called anonymously, is refused as unauthenticated
    // (or answered, the public ones) — except those ferry has no route for, named here.
    assert_eq!(
        unimplemented_methods(&client).await,
        UNIMPLEMENTED,
        "the methods answering Unimplemented"
    );

    let version = client
        .call("/version.VersionService/Version", json!({}))
        .await?;
    assert!(
        version["Version"].as_str().unwrap().starts_with('v'),
        "{version}"
    );
    let settings = client
        .call("/cluster.SettingsService/Get", json!({}))
        .await?;
    assert_eq!(
        settings["appLabelKey"], "app.kubernetes.io/instance",
        "{settings}"
    );

    // Nothing without a session; a wrong password is Unauthenticated, as from Argo CD.
    let anonymous = client
        .call("/application.ApplicationService/List", json!({}))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let wrong = client
        .call(
            "/session.SessionService/Create",
            json!({"username": "admin", "password": "wrong"}),
        )
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(wrong.message(), "Invalid username or password");
    let password = admin_password(&ctx).await?;
    let session = client
        .call(
            "/session.SessionService/Create",
            json!({"username": "admin", "password": password}),
        )
        .await?;
    client.token = Some(session["token"].as_str().unwrap().to_string());
    let info = client
        .call("/session.SessionService/GetUserInfo", json!({}))
        .await?;
    assert_eq!(info["loggedIn"], true);
    assert_eq!(info["username"], "admin");
    let plugins = client
        .call("/cluster.SettingsService/GetPlugins", json!({}))
        .await?;
    assert_eq!(plugins, json!({"plugins": [{"name": "envsubst-v1.0"}]}));

    // Applications: listed, got with Kubernetes' times and shapes, created, refused.
    let apps = client
        .call("/application.ApplicationService/List", json!({}))
        .await?;
    let names: Vec<&str> = apps["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|app| app["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["guestbook"]);
    let app = client
        .call(
            "/application.ApplicationService/Get",
            json!({"name": "guestbook"}),
        )
        .await?;
    assert_eq!(app["spec"]["project"], "default", "{app}");
    assert_eq!(app["spec"]["source"]["path"], "guestbook");
    assert!(
        jiff::Timestamp::from_str(app["metadata"]["creationTimestamp"].as_str().unwrap()).is_ok(),
        "{app}"
    );
    let created = client
        .call(
            "/application.ApplicationService/Create",
            json!({"application": {
                "metadata": {"name": "second"},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": "https://git.example.com/apps", "path": "second"},
                    "destination": {"server": "https://kubernetes.default.svc", "namespace": "second"},
                },
            }}),
        )
        .await?;
    assert_eq!(created["metadata"]["name"], "second");
    let again = client
        .call(
            "/application.ApplicationService/Create",
            json!({"application": {
                "metadata": {"name": "second"},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": "https://git.example.com/other", "path": "x"},
                    "destination": {"server": "https://kubernetes.default.svc", "namespace": "x"},
                },
            }}),
        )
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::InvalidArgument, "{again:?}");
    let missing = client
        .call(
            "/application.ApplicationService/Get",
            json!({"name": "nothing-here"}),
        )
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::PermissionDenied);
    let nameless = client
        .call("/application.ApplicationService/Get", json!({}))
        .await
        .unwrap_err();
    assert_eq!(nameless.code(), Code::InvalidArgument);

    let can = client
        .call(
            "/account.AccountService/CanI",
            json!({"resource": "applications", "action": "sync", "subresource": "default/guestbook"}),
        )
        .await?;
    assert_eq!(can["value"], "yes");

    let windows = client
        .call(
            "/application.ApplicationService/GetApplicationSyncWindows",
            json!({"name": "guestbook"}),
        )
        .await?;
    assert_eq!(
        windows,
        json!({"canSync": true}),
        "no windows: syncs may start"
    );

    // The watch stream starts with the apps as they are.
    let event = client
        .first_of_stream(
            "/application.ApplicationService/Watch",
            json!({"name": "guestbook"}),
        )
        .await?;
    assert_eq!(event["type"], "ADDED", "{event}");
    assert_eq!(event["application"]["metadata"]["name"], "guestbook");

    // ServerSideDiff's live resources (which a query cannot carry) reach its route, whose RBAC
    // answers an app nobody has as Argo CD does, before the controller is asked.
    let missing = client
        .call(
            "/application.ApplicationService/ServerSideDiff",
            json!({"appName": "no-such-app",
                   "liveResources": [{"kind": "ConfigMap", "name": "x", "liveState": ""}],
                   "targetManifests": ["{}"]}),
        )
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::PermissionDenied, "{missing:?}");

    // Logging out over gRPC revokes the token for REST as well.
    client
        .call("/session.SessionService/Delete", json!({}))
        .await?;
    let token = client.token.clone().unwrap();
    server
        .wait_for_status("/api/v1/applications", &token, 401)
        .await?;
    server.stop().await?;
    Ok(())
}

/// The methods of Argo CD's API ferry does not serve (yet), in the order of the protos.
const UNIMPLEMENTED: &[&str] = &[];

/// The methods of Argo CD's services that answer `Unimplemented`, each called with its path
/// variables set (to `1`, a string or a number) by a client without a session: a routed one is refused before it
/// does anything.
async fn unimplemented_methods(client: &Client) -> Vec<String> {
    assert!(client.token.is_none(), "the walk calls anonymously");
    let mut found = Vec::new();
    for service in ferry_grpc::descriptors().services() {
        // Argo CD's API, not the repo server's internal service nor Google's.
        let package = service.package_name();
        if package.starts_with("google") || service.name() == "RepoServerService" {
            continue;
        }
        for method in service.methods() {
            let path = format!("/{}/{}", service.full_name(), method.name());
            let mut request = json!({});
            for binding in ferry_grpc::binding::bindings(&method).into_iter().take(1) {
                for variable in binding.path.split('{').skip(1) {
                    let field = variable.split(['}', '=']).next().unwrap();
                    let mut at = &mut request;
                    for part in field.split('.') {
                        at = at
                            .as_object_mut()
                            .unwrap()
                            .entry(part)
                            .or_insert_with(|| json!({}));
                    }
                    *at = json!("1");
                }
            }
            let answer = if method.is_server_streaming() {
                client.first_of_stream(&path, request).await.err()
            } else {
                client.call(&path, request).await.err()
            };
            if answer.is_some_and(|status| status.code() == Code::Unimplemented) {
                found.push(path);
            }
        }
    }
    found
}

/// Argo CD's write repositories and write credential templates over gRPC, with Argo CD's
/// messages (`RepoCreateRequest`'s `repo`, `RepoCredsCreateRequest`'s `creds`), and a cluster's
/// cache invalidated by name (a `ClusterQuery` without `id`, as argocd sends it).
#[tokio::test]
async fn write_repositories_and_cluster_cache_invalidation_over_grpc() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    let server = Server::start(&ctx).await?;
    let mut client = Client::connect(&server).await?;
    let session = client
        .call(
            "/session.SessionService/Create",
            json!({"username": "admin", "password": admin_password(&ctx).await?}),
        )
        .await?;
    client.token = Some(session["token"].as_str().unwrap().to_string());
    let repo = ferry_testkit::git::GitRepo::new()?;
    repo.write("README", "hello")?;
    repo.commit("hello")?;
    let git = ferry_testkit::git::HttpServer::start(&repo, Some(("bot", "push-pw")))?;
    let url = git.url();

    let wrong = client
        .call(
            "/repository.RepositoryService/ValidateWriteAccess",
            json!({"repo": url, "username": "bot", "password": "wrong-pw"}),
        )
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::InvalidArgument, "{wrong:?}");
    client
        .call(
            "/repository.RepositoryService/ValidateWriteAccess",
            json!({"repo": url, "username": "bot", "password": "push-pw"}),
        )
        .await?;
    let created = client
        .call(
            "/repository.RepositoryService/CreateWriteRepository",
            json!({"repo": {"repo": url, "username": "bot", "password": "push-pw", "name": "push"}}),
        )
        .await?;
    assert_eq!(created["repo"], url.as_str(), "{created}");
    let listed = client
        .call(
            "/repository.RepositoryService/ListWriteRepositories",
            json!({}),
        )
        .await?;
    assert_eq!(listed["items"][0]["repo"], url.as_str(), "{listed}");
    assert!(!listed.to_string().contains("push-pw"), "{listed}");
    let read = client
        .call("/repository.RepositoryService/ListRepositories", json!({}))
        .await?;
    assert!(
        read.get("items").is_none_or(|items| items == &json!([])),
        "{read}"
    );
    let updated = client
        .call(
            "/repository.RepositoryService/UpdateWriteRepository",
            json!({"repo": {"repo": url, "username": "bot", "password": "push-pw", "name": "renamed"}}),
        )
        .await?;
    assert_eq!(updated["name"], "renamed", "{updated}");
    let got = client
        .call(
            "/repository.RepositoryService/GetWrite",
            json!({"repo": url}),
        )
        .await?;
    assert_eq!(got["name"], "renamed", "{got}");
    client
        .call(
            "/repository.RepositoryService/DeleteWriteRepository",
            json!({"repo": url}),
        )
        .await?;
    let gone = client
        .call(
            "/repository.RepositoryService/GetWrite",
            json!({"repo": url}),
        )
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound, "{gone:?}");

    let prefix = "https://git.example.com/org/";
    client
        .call(
            "/repocreds.RepoCredsService/CreateWriteRepositoryCredentials",
            json!({"creds": {"url": prefix, "username": "bot", "password": "t3mplate-pw"}}),
        )
        .await?;
    client
        .call(
            "/repocreds.RepoCredsService/UpdateWriteRepositoryCredentials",
            json!({"creds": {"url": prefix, "username": "bot2", "password": "t3mplate-pw"}}),
        )
        .await?;
    let templates = client
        .call(
            "/repocreds.RepoCredsService/ListWriteRepositoryCredentials",
            json!({}),
        )
        .await?;
    assert_eq!(templates["items"][0]["url"], prefix, "{templates}");
    assert_eq!(templates["items"][0]["username"], "bot2", "{templates}");
    let read_templates = client
        .call(
            "/repocreds.RepoCredsService/ListRepositoryCredentials",
            json!({}),
        )
        .await?;
    assert!(
        read_templates
            .get("items")
            .is_none_or(|items| items == &json!([])),
        "{read_templates}"
    );
    client
        .call(
            "/repocreds.RepoCredsService/DeleteWriteRepositoryCredentials",
            json!({"url": prefix}),
        )
        .await?;
    let templates = client
        .call(
            "/repocreds.RepoCredsService/ListWriteRepositoryCredentials",
            json!({}),
        )
        .await?;
    assert!(
        templates
            .get("items")
            .is_none_or(|items| items == &json!([])),
        "{templates}"
    );

    // A cluster named as argocd names it, without an id.
    client
        .call(
            "/cluster.ClusterService/Create",
            json!({"cluster": {"server": "https://prod.example.com:6443", "name": "prod"}}),
        )
        .await?;
    let invalidated = client
        .call(
            "/cluster.ClusterService/InvalidateCache",
            json!({"name": "prod"}),
        )
        .await?;
    assert_eq!(invalidated["server"], "https://prod.example.com:6443");
    assert!(
        invalidated["refreshRequestedAt"].as_str().is_some(),
        "{invalidated}"
    );
    let by_name = client
        .call("/cluster.ClusterService/Get", json!({"name": "prod"}))
        .await?;
    assert_eq!(
        by_name["refreshRequestedAt"], invalidated["refreshRequestedAt"],
        "{by_name}"
    );
    let not_token = client
        .call(
            "/cluster.ClusterService/RotateAuth",
            json!({"name": "prod"}),
        )
        .await
        .unwrap_err();
    assert_eq!(not_token.code(), Code::InvalidArgument, "{not_token:?}");
    let log = server.stop().await?;
    crate::harness::assert_no_secrets(&log, &["push-pw", "t3mplate-pw", "wrong-pw"]);
    Ok(())
}
