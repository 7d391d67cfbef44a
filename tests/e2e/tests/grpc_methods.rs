//! Methods of Argo CD's gRPC API beyond the app lifecycle, against the real ferry-server (and
//! controller): the metadata of a commit an app deploys (`RevisionMetadata`, which the web UI
//! asks for, called with Argo CD's messages through tonic), and the GnuPG keys of
//! `argocd-gpg-keys-cm` through the real argocd CLI (`argocd gpg list/get/add/rm`), and a
//! repository's branches and tags (`ListRefs`, the web UI's revision choices), and the trusted
//! ssh hosts and TLS certificates through `argocd cert add-ssh/add-tls/list/rm`, and argocd-cm's
//! deep links of an app, its resources and a project (`ListLinks`, `ListResourceLinks`), a
//! project's global projects (`GetGlobalProjects`), and the apps a
//! repository holds and their details (`ListApps`, `GetAppDetails`), and the tags of an OCI
//! repository (`ListOCITags`), and the charts of a Helm repository (`GetHelmCharts`), and the
//! server-side parts of `argocd app diff` (`ServerSideDiff`, the client-streaming
//! `GetManifestsWithFiles`), and what the web UI shows of a chart version or an OCI artifact an
//! app deploys (`RevisionChartDetails`, `GetOCIMetadata`).

use std::str::FromStr;

use anyhow::{Context, Result};
use ferry_e2e::Story;
use ferry_e2e::argocd::Argocd;
use ferry_grpc::codec::DynamicCodec;
use ferry_grpc::json::{from_message, to_message};
use ferry_testkit::chart_repo::{ChartRepo, ChartRepoOptions};
use ferry_testkit::gpg::GpgKey;
use ferry_testkit::registry::{Registry, RegistryOptions};
use ferry_types::AppProject;
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

#[tokio::test]
async fn argocd_cert_trusts_an_ssh_host_and_a_tls_server() -> Result<()> {
    let story = Story::new().await?;
    let sshd = ferry_testkit::git::SshServer::start(&story.repo)?;
    let server = story.start_server().await?;
    let password =
        ferry_testkit::server::admin_password(&story.ctx.client(), story.namespace()).await?;
    let work = tempfile::tempdir()?;
    let argocd = Argocd::new(work.path());
    argocd.login(&server.address(), &password)?;

    // A repository over ssh whose host nobody trusts yet: adding it is refused by name.
    let key = work.path().join("client_key");
    std::fs::write(&key, sshd.client_private_key())?;
    let key = key.to_string_lossy();
    let url = sshd.url();
    let add_repo = ["repo", "add", &url, "--ssh-private-key-path", &key];
    let refused = argocd.refused(&add_repo)?;
    assert!(
        refused.contains("no known_hosts entry for 127.0.0.1"),
        "{refused}"
    );

    // `cert add-ssh` from ssh-keyscan's format makes the host known; the repository is added.
    let known_hosts = work.path().join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!("# scanned\n{}\n", sshd.known_hosts_line()),
    )?;
    let added = argocd.run(&[
        "cert",
        "add-ssh",
        "--batch",
        "--from",
        &known_hosts.to_string_lossy(),
    ])?;
    assert!(
        added.contains("Successfully created 1 SSH known host entries"),
        "{added}"
    );
    let host = format!("[127.0.0.1]:{}", sshd.port());
    let config_maps = kube::Api::<ConfigMap>::namespaced(story.ctx.client(), story.namespace());
    let stored = config_maps.get("argocd-ssh-known-hosts-cm").await?;
    let stored = stored.data.unwrap_or_default()["ssh_known_hosts"].clone();
    assert!(stored.contains(&sshd.known_hosts_line()), "{stored}");
    argocd.run(&add_repo)?;
    let listed = argocd.run(&["repo", "list", "--refresh", "hard"])?;
    let row = listed
        .lines()
        .find(|line| line.contains(&url))
        .with_context(|| format!("no row of {url}: {listed}"))?;
    assert!(row.contains("Successful"), "{listed}");
    // The same key again is no change; another key for the host is refused without --upsert.
    let again = argocd.run(&[
        "cert",
        "add-ssh",
        "--batch",
        "--from",
        &known_hosts.to_string_lossy(),
    ])?;
    assert!(again.contains("created 0 SSH"), "{again}");
    let other = ferry_testkit::git::SshKey::generate()?;
    std::fs::write(&known_hosts, format!("{host} {}\n", other.public))?;
    let refused = argocd.refused(&[
        "cert",
        "add-ssh",
        "--batch",
        "--from",
        &known_hosts.to_string_lossy(),
    ])?;
    assert!(
        refused.contains("already exists, and upsert was not specified"),
        "{refused}"
    );

    // A TLS server's certificate, added from a file and listed with its subject.
    let mut params = rcgen::CertificateParams::new(vec!["git.example.com".to_string()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "git.example.com");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Example");
    let certified = params.self_signed(&rcgen::KeyPair::generate()?)?;
    let pem = work.path().join("git.pem");
    std::fs::write(&pem, certified.pem())?;
    let added = argocd.run(&[
        "cert",
        "add-tls",
        "git.example.com",
        "--from",
        &pem.to_string_lossy(),
    ])?;
    assert!(
        added.contains(
            "Created entry with 1 PEM certificates for repository server git.example.com"
        ),
        "{added}"
    );
    let tls = config_maps.get("argocd-tls-certs-cm").await?;
    assert_eq!(
        tls.data.unwrap_or_default()["git.example.com"].trim(),
        certified.pem().trim()
    );
    let refused = argocd.refused(&[
        "cert",
        "add-tls",
        "not a host",
        "--from",
        &pem.to_string_lossy(),
    ])?;
    assert!(refused.contains("invalid hostname in request"), "{refused}");

    let listed = argocd.run(&["cert", "list"])?;
    let ssh_row = listed
        .lines()
        .find(|line| line.starts_with(&host))
        .with_context(|| format!("no row of {host}: {listed}"))?;
    assert!(
        ssh_row.contains("ssh-ed25519") && ssh_row.contains("SHA256:"),
        "{listed}"
    );
    let tls_row = listed
        .lines()
        .find(|line| line.starts_with("git.example.com"))
        .with_context(|| format!("no row of git.example.com: {listed}"))?;
    let columns: Vec<&str> = tls_row.split_whitespace().collect();
    assert_eq!(
        columns[1..],
        ["https", "ecdsa", "CN=git.example.com,O=Example"],
        "{listed}"
    );
    let only_ssh = argocd.run(&["cert", "list", "--cert-type", "ssh"])?;
    assert!(
        !only_ssh.contains("git.example.com") && only_ssh.contains(&host),
        "{only_ssh}"
    );

    // Removed by host name (brackets taken literally), then by a glob and type.
    let removed = argocd.run(&["cert", "rm", &host])?;
    assert!(
        removed.contains(&format!(
            "Removed cert for '{host}' of type 'ssh' (subtype 'ssh-ed25519')"
        )),
        "{removed}"
    );
    let stored = config_maps.get("argocd-ssh-known-hosts-cm").await?;
    let stored = stored.data.unwrap_or_default()["ssh_known_hosts"].clone();
    assert_eq!(stored, "", "{stored}");
    let listed = argocd.run(&["cert", "list", "--cert-type", "https"])?;
    assert!(listed.contains("git.example.com"), "{listed}");
    let removed = argocd.run(&["cert", "rm", "git.example.*", "--cert-type", "https"])?;
    assert!(
        removed.contains("Removed cert for 'git.example.com' of type 'https'"),
        "{removed}"
    );
    let nothing = argocd.run(&["cert", "rm", "nowhere.example.com"])?;
    assert!(
        nothing.contains("No certificates were removed"),
        "{nothing}"
    );
    Ok(())
}

/// argocd-cm's deep links, as the web UI asks for them (`ListLinks`, `ListResourceLinks`): Go
/// templates over the app, its cluster and project, shown when their expr-lang condition holds;
/// a project's links and global projects.
#[tokio::test]
async fn deep_links_of_an_app_and_its_resources() -> Result<()> {
    let story = Story::new().await?;
    let argocd_cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "argocd-cm"},
        "data": {
            "application.links": r#"
- url: https://dash.example.com/{{ .app.metadata.name }}?cluster={{ .cluster.name }}
  title: Dashboard
  icon.class: fa-gauge
- url: https://other.example.com
  title: Other projects only
  if: app.spec.project != "default"
"#,
            "resource.links": r#"
- url: https://docs.example.com/{{ .resource.kind | lower }}/{{ .resource.metadata.name }}?project={{ .project.metadata.name }}
  title: Docs
  description: what this kind is
  if: resource.kind == "Application" && project.metadata.name == "default"
"#,
            "project.links": r#"
- url: https://wiki.example.com/teams/{{ .project.metadata.labels.team }}
  title: Team wiki
  if: project.metadata.labels?.team != nil
"#,
            "globalProjects": r#"
- projectName: shared
  labelSelector:
    matchLabels: {team: blue}
"#,
        },
    }))?;
    story
        .ctx
        .api::<ConfigMap>()
        .create(&PostParams::default(), &argocd_cm)
        .await?;
    let server = story.start_server().await?;
    let client = Client::login(&story, &server.address()).await?;
    let app = story.app_name("links");
    story.create_app(&app, "guestbook", &[])?;

    let links = client
        .call(
            "/application.ApplicationService/ListLinks",
            json!({"name": app}),
        )
        .await?;
    assert_eq!(
        links["items"],
        json!([{
            "title": "Dashboard",
            "url": format!("https://dash.example.com/{app}?cluster=in-cluster"),
            "iconClass": "fa-gauge",
        }]),
        "{links}"
    );
    let links = client
        .call(
            "/application.ApplicationService/ListResourceLinks",
            json!({
                "name": app,
                "namespace": story.namespace(),
                "resourceName": app,
                "group": "argoproj.io",
                "version": "v1alpha1",
                "kind": "Application",
            }),
        )
        .await?;
    assert_eq!(
        links["items"],
        json!([{
            "title": "Docs",
            "url": format!("https://docs.example.com/application/{app}?project=default"),
            "description": "what this kind is",
        }]),
        "{links}"
    );
    let missing = client
        .call(
            "/application.ApplicationService/ListLinks",
            json!({"name": "no-such-app"}),
        )
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::PermissionDenied, "{missing:?}");

    // A project's own links (`project.links`, over the project) and its global projects
    // (argocd-cm's `globalProjects`, by label selector).
    let projects = story.ctx.api::<AppProject>();
    for (name, labels) in [("blue", json!({"team": "blue"})), ("shared", json!({}))] {
        let project = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"sourceRepos": ["*"]},
        }))?;
        projects.create(&PostParams::default(), &project).await?;
    }
    let links = client
        .call("/project.ProjectService/ListLinks", json!({"name": "blue"}))
        .await?;
    assert_eq!(
        links["items"],
        json!([{"title": "Team wiki", "url": "https://wiki.example.com/teams/blue"}]),
        "{links}"
    );
    let none = client
        .call(
            "/project.ProjectService/ListLinks",
            json!({"name": "shared"}),
        )
        .await?;
    assert_eq!(none["items"], Value::Null, "{none}");
    let global = client
        .call(
            "/project.ProjectService/GetGlobalProjects",
            json!({"name": "blue"}),
        )
        .await?;
    let names: Vec<&Value> = global["items"]
        .as_array()
        .context("items")?
        .iter()
        .map(|project| &project["metadata"]["name"])
        .collect();
    assert_eq!(names, [&json!("shared")], "{global}");
    let missing = client
        .call(
            "/project.ProjectService/GetGlobalProjects",
            json!({"name": "no-such-project"}),
        )
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");
    Ok(())
}

/// What Argo CD's app forms ask of a repository (`ListApps`, the paths holding a Helm chart or a
/// kustomization, and `GetAppDetails`, a source's type with its Helm value files and
/// parameters or its Kustomize images), under Argo CD's rules: the project must permit the
/// repository, and an existing app shows only its own sources.
#[tokio::test]
async fn list_apps_and_app_details_describe_what_a_repository_holds() -> Result<()> {
    let story = Story::new().await?;
    story.repo.write(
        "charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    )?;
    story.repo.write(
        "charts/web/values.yaml",
        "replicas: 2\nimage:\n  tag: '1.0'\n",
    )?;
    story
        .repo
        .write("charts/web/values-prod.yaml", "replicas: 3\n")?;
    story.repo.write(
        "overlays/prod/kustomization.yaml",
        "resources:\n- deployment.yaml\nimages:\n- name: registry.example/guestbook\n  newTag: '2.0'\n",
    )?;
    let (_, deployment) = ferry_e2e::GUESTBOOK
        .iter()
        .find(|(path, _)| path.ends_with("deployment.yaml"))
        .context("the guestbook's Deployment")?;
    story
        .repo
        .write("overlays/prod/deployment.yaml", deployment)?;
    let commit = story.repo.commit("a chart and an overlay")?;
    let closed: AppProject = serde_json::from_value(json!({
        "metadata": {"name": "closed", "namespace": story.namespace()},
        "spec": {"sourceRepos": ["https://git.example.com/*"],
                 "destinations": [{"server": "*", "namespace": "*"}]},
    }))?;
    story
        .ctx
        .api::<AppProject>()
        .create(&PostParams::default(), &closed)
        .await?;
    story.create_app("deployed", "guestbook", &[])?;
    let server = story.start_server().await?;
    let client = Client::login(&story, &server.address()).await?;
    let url = story.repo.file_url();

    let apps = client
        .call(
            "/repository.RepositoryService/ListApps",
            json!({"repo": url, "revision": commit, "appName": "new-app", "appProject": "default"}),
        )
        .await?;
    let mut items = apps["items"].as_array().context("items")?.clone();
    items.sort_by_key(|item| item["path"].to_string());
    assert_eq!(
        items,
        [
            json!({"type": "Helm", "path": "charts/web"}),
            json!({"type": "Kustomize", "path": "overlays/prod"}),
        ],
        "{apps}"
    );
    let unknown = client
        .call(
            "/repository.RepositoryService/ListApps",
            json!({"repo": url, "revision": "no-such-branch", "appName": "new-app", "appProject": "default"}),
        )
        .await
        .unwrap_err();
    assert!(unknown.message().contains("no-such-branch"), "{unknown:?}");
    let refused = client
        .call(
            "/repository.RepositoryService/ListApps",
            json!({"repo": url, "appName": "new-app", "appProject": "closed"}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("not permitted in project 'closed'"),
        "{refused:?}"
    );

    let details = |source: Value, app: &str| {
        client.call(
            "/repository.RepositoryService/GetAppDetails",
            json!({"source": source, "appName": app, "appProject": "default"}),
        )
    };
    let helm = details(
        json!({"repoURL": url, "path": "charts/web", "targetRevision": commit,
               "helm": {"valueFiles": ["values-prod.yaml"]}}),
        "new-app",
    )
    .await?;
    assert_eq!(helm["type"], "Helm", "{helm}");
    assert_eq!(
        helm["helm"]["valueFiles"],
        json!(["values-prod.yaml", "values.yaml"]),
        "{helm}"
    );
    assert_eq!(
        helm["helm"]["values"],
        "replicas: 2\nimage:\n  tag: '1.0'\n"
    );
    assert_eq!(
        helm["helm"]["parameters"],
        json!([{"name": "image.tag", "value": "1.0"}, {"name": "replicas", "value": "3"}]),
        "{helm}"
    );
    let kustomize = details(
        json!({"repoURL": url, "path": "overlays/prod", "targetRevision": commit}),
        "new-app",
    )
    .await?;
    assert_eq!(kustomize["type"], "Kustomize", "{kustomize}");
    assert_eq!(
        kustomize["kustomize"]["images"],
        json!(["registry.example/guestbook:2.0"]),
        "{kustomize}"
    );

    // An existing app shows its own source, and no other.
    let deployed = story.app("deployed").await?;
    let own = serde_json::to_value(deployed.spec.source.context("a source")?)?;
    let directory = details(own.clone(), "deployed").await?;
    assert_eq!(directory["type"], "Directory", "{directory}");
    let mut other = own;
    other["path"] = json!("charts/web");
    let denied = details(other, "deployed").await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    Ok(())
}

/// The tags of an OCI repository (`ListOCITags`), listed with its saved credentials: the
/// repository is added over gRPC as `argocd repo add --type oci` adds it.
#[tokio::test]
async fn list_oci_tags_names_the_tags_of_a_private_registry_repository() -> Result<()> {
    let registry = Registry::start(RegistryOptions {
        auth: Some(("ci", "registry-Pa55")),
        ..Default::default()
    })?;
    let pusher = registry.pusher();
    let files = [(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    )];
    for tag in ["1.0.0", "1.1.0_build.5"] {
        pusher.push_manifests("manifests/web", tag, &files).await?;
    }
    let story = Story::new().await?;
    let server = story.start_server().await?;
    let client = Client::login(&story, &server.address()).await?;
    let url = format!("oci://{}/manifests/web", registry.host());
    let list = |url: String| {
        client.call(
            "/repository.RepositoryService/ListOCITags",
            json!({"repo": url}),
        )
    };
    let anonymous = list(url.clone()).await.unwrap_err();
    assert_eq!(
        anonymous.code(),
        tonic::Code::FailedPrecondition,
        "{anonymous:?}"
    );
    client
        .call(
            "/repository.RepositoryService/CreateRepository",
            json!({"repo": {"repo": url, "type": "oci", "username": "ci",
                            "password": "registry-Pa55", "insecureOCIForceHttp": true}}),
        )
        .await?;
    let tags = list(url).await?;
    let mut tags: Vec<&str> = tags["tags"]
        .as_array()
        .context("tags")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    tags.sort_unstable();
    assert_eq!(tags, ["1.0.0", "1.1.0+build.5"]);
    Ok(())
}

/// The charts of a Helm repository (`GetHelmCharts`, the web UI's chart choices): its
/// `index.yaml` fetched with the saved credentials once the repository is added over gRPC.
#[tokio::test]
async fn get_helm_charts_lists_a_private_repositorys_charts_and_versions() -> Result<()> {
    let charts = ChartRepo::start(ChartRepoOptions {
        auth: Some(("charts", "helm-Pa55")),
        ..Default::default()
    })?;
    let work = tempfile::tempdir()?;
    for version in ["1.0.0", "1.1.0"] {
        let dir = work.path().join(version);
        ferry_e2e::write_chart(&dir, version, "hello")?;
        charts.add_chart(&dir)?;
    }
    let story = Story::new().await?;
    let server = story.start_server().await?;
    let client = Client::login(&story, &server.address()).await?;
    let list = || {
        client.call(
            "/repository.RepositoryService/GetHelmCharts",
            json!({"repo": charts.url()}),
        )
    };
    let anonymous = list().await.unwrap_err();
    assert!(anonymous.message().contains("401"), "{anonymous:?}");
    client
        .call(
            "/repository.RepositoryService/CreateRepository",
            json!({"repo": {"repo": charts.url(), "type": "helm", "name": "charts",
                            "username": "charts", "password": "helm-Pa55"}}),
        )
        .await?;
    let listed = list().await?;
    assert_eq!(
        listed["items"],
        json!([{"name": "web", "versions": ["1.1.0", "1.0.0"]}]),
        "{listed}"
    );
    Ok(())
}

impl Client {
    /// The client-streaming method at `path` fed `messages`; the answer as JSON.
    async fn stream(
        &self,
        path: &str,
        messages: Vec<prost_reflect::DynamicMessage>,
    ) -> Result<Value, tonic::Status> {
        let method = ferry_grpc::method(path).expect("a method of Argo CD's");
        let mut request = tonic::Request::new(futures::stream::iter(messages));
        request
            .metadata_mut()
            .insert("token", self.token.parse().expect("a token is ASCII"));
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|err| tonic::Status::unavailable(err.to_string()))?;
        let path = http::uri::PathAndQuery::from_str(path).expect("a gRPC path");
        let response = grpc
            .client_streaming(request, path, DynamicCodec::new(method.output()))
            .await?;
        Ok(from_message(response.get_ref()))
    }
}

/// A gzip'd tar, made by GNU tar, of `files` (path, content) written under `dir`; `-P` keeps
/// the paths as given, `..` included.
fn tar_gz(dir: &std::path::Path, files: &[(&str, &str)]) -> Result<Vec<u8>> {
    let root = dir.join("a/b");
    for (path, content) in files {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().context("a parent")?)?;
        std::fs::write(file, content)?;
    }
    let archive = dir.join("upload.tgz");
    let status = std::process::Command::new("tar")
        .arg("-czPf")
        .arg(&archive)
        .arg("-C")
        .arg(&root)
        .args(files.iter().map(|(path, _)| path))
        .status()?;
    anyhow::ensure!(status.success(), "tar failed");
    Ok(std::fs::read(archive)?)
}

/// `GetManifestsWithFiles`' messages: the query, then the archive in chunks of 1 KiB as the
/// argocd CLI sends it.
fn upload(app: &str, archive: &[u8], checksum: Option<&str>) -> Vec<prost_reflect::DynamicMessage> {
    use prost_reflect::Value as Field;
    use sha2::Digest;
    let method = ferry_grpc::method("/application.ApplicationService/GetManifestsWithFiles")
        .expect("a method of Argo CD's");
    let wrapper = method.input();
    let checksum = checksum.map_or_else(
        || hex::encode(sha2::Sha256::digest(archive)),
        str::to_string,
    );
    let query = json!({"query": {"name": app, "checksum": checksum}});
    let mut messages = vec![to_message(&wrapper, query).expect("a valid query")];
    let chunk_message = wrapper
        .get_field_by_name("chunk")
        .and_then(|field| field.kind().as_message().cloned())
        .expect("a FileChunk");
    for chunk in archive.chunks(1024) {
        let mut part = prost_reflect::DynamicMessage::new(chunk_message.clone());
        part.set_field_by_name("chunk", Field::Bytes(bytes::Bytes::copy_from_slice(chunk)));
        let mut message = prost_reflect::DynamicMessage::new(wrapper.clone());
        message.set_field_by_name("chunk", Field::Message(part));
        messages.push(message);
    }
    messages
}

/// The server-side ones of `argocd app diff` over gRPC: `GetManifestsWithFiles` renders files a
/// client uploads with the app's settings (and refuses archives that would leave their
/// directory, or whose checksum is wrong), `ServerSideDiff` predicts a managed resource through
/// a dry run and refuses to dry-run anything the app does not manage.
#[tokio::test]
async fn server_side_diff_and_manifests_of_uploaded_files() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    let server = story.start_server().await?;
    let client = Client::login(&story, &server.address()).await?;
    let app = story.app_name("upload");
    story.create_app(&app, "guestbook", &[])?;
    story
        .wait_app(
            &app,
            "OutOfSync before any sync",
            ferry_e2e::is::out_of_sync,
        )
        .await?;

    const UPLOAD: &str = "/application.ApplicationService/GetManifestsWithFiles";
    let local = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: guestbook-config\ndata:\n  from: upload\n";
    let files = tempfile::tempdir()?;
    let archive = tar_gz(
        &files.path().join("good"),
        &[
            ("guestbook/configmap.yaml", local),
            ("elsewhere/other.yaml", "kind: Nothing\n"),
        ],
    )?;
    let rendered = client.stream(UPLOAD, upload(&app, &archive, None)).await?;
    let manifests: Vec<Value> = rendered["manifests"]
        .as_array()
        .context("manifests")?
        .iter()
        .map(|text| serde_json::from_str(text.as_str().unwrap_or_default()))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        manifests.len(),
        1,
        "only the app's path is rendered: {rendered}"
    );
    assert_eq!(manifests[0]["data"]["from"], "upload", "{rendered}");
    assert_eq!(rendered["sourceType"], "Directory", "{rendered}");

    let escape = tar_gz(
        &files.path().join("bad"),
        &[("guestbook/../../escape.yaml", local)],
    )?;
    let refused = client
        .stream(UPLOAD, upload(&app, &escape, None))
        .await
        .unwrap_err();
    assert!(
        refused.message().contains("escape.yaml"),
        "the escaping entry named: {refused:?}"
    );
    let forged = client
        .stream(UPLOAD, upload(&app, &archive, Some(&"0".repeat(64))))
        .await
        .unwrap_err();
    assert!(
        forged.message().contains("checksum"),
        "a wrong checksum refused: {forged:?}"
    );
    let stranger = client
        .stream(UPLOAD, upload("no-such-app", &archive, None))
        .await
        .unwrap_err();
    assert_eq!(
        stranger.code(),
        tonic::Code::PermissionDenied,
        "{stranger:?}"
    );

    // ServerSideDiff: the app's ConfigMap, live with other data, predicted by a dry run of its
    // target (the live object untouched); a ConfigMap of nobody's refused before the cluster is
    // asked.
    const DIFF: &str = "/application.ApplicationService/ServerSideDiff";
    let namespace = story.namespace().to_string();
    let live: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "guestbook-config", "namespace": namespace},
        "data": {"from": "live"},
    }))?;
    let live = story
        .ctx
        .api::<ConfigMap>()
        .create(&PostParams::default(), &live)
        .await?;
    let mut live_state = serde_json::to_value(&live)?;
    live_state["apiVersion"] = json!("v1");
    live_state["kind"] = json!("ConfigMap");
    let target = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "guestbook-config", "namespace": namespace},
        "data": {"from": "server-side"}});
    let diff = client
        .call(
            DIFF,
            json!({
                "appName": app,
                "liveResources": [{"kind": "ConfigMap", "namespace": namespace,
                                   "name": "guestbook-config",
                                   "liveState": live_state.to_string()}],
                "targetManifests": [target.to_string()],
            }),
        )
        .await?;
    assert_eq!(diff["modified"], true, "{diff}");
    let item = &diff["items"][0];
    assert_eq!(item["name"], "guestbook-config", "{diff}");
    let state = |field: &str| -> Result<Value> {
        Ok(serde_json::from_str(item[field].as_str().unwrap_or("{}"))?)
    };
    let predicted = state("targetState")?;
    assert_eq!(predicted["data"]["from"], "server-side", "{diff}");
    assert_eq!(state("liveState")?["data"]["from"], "live", "{diff}");
    let still = story.ctx.api::<ConfigMap>().get("guestbook-config").await?;
    assert_eq!(
        still.data.unwrap_or_default()["from"],
        "live",
        "a dry run only"
    );

    let mut foreign = target.clone();
    foreign["metadata"]["name"] = json!("not-the-apps");
    let refused = client
        .call(
            DIFF,
            json!({
                "appName": app,
                "liveResources": [{"kind": "ConfigMap", "namespace": namespace,
                                   "name": "not-the-apps", "liveState": ""}],
                "targetManifests": [foreign.to_string()],
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("not-the-apps not found as part of application"),
        "{refused:?}"
    );
    Ok(())
}

/// What the web UI shows of a chart version (`RevisionChartDetails`: its Chart.yaml's
/// description, home and maintainers, from a private chart repository) and of an OCI artifact
/// (`GetOCIMetadata`: its manifest's annotations, from a private registry), for apps deploying
/// them.
#[tokio::test]
async fn chart_details_and_oci_metadata_describe_revisions_of_an_apps_source() -> Result<()> {
    let charts = ChartRepo::start(ChartRepoOptions {
        auth: Some(("charts", "helm-Pa55")),
        ..Default::default()
    })?;
    let work = tempfile::tempdir()?;
    for (version, description) in [("1.0.0", "The first web"), ("1.1.0", "A better web")] {
        let dir = work.path().join(version);
        ferry_e2e::write_chart(&dir, version, "hello")?;
        std::fs::write(
            dir.join("Chart.yaml"),
            format!(
                "apiVersion: v2\nname: web\nversion: {version}\ndescription: {description}\n\
                 home: https://web.example.com\nmaintainers:\n- name: Ada\n  email: ada@example.com\n- name: Bob\n"
            ),
        )?;
        charts.add_chart(&dir)?;
    }
    let registry = Registry::start(RegistryOptions {
        auth: Some(("ci", "registry-Pa55")),
        ..Default::default()
    })?;
    let digest = registry
        .pusher()
        .push_annotated_manifests(
            "manifests/web",
            "2.0.0",
            &[(
                "web/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
            )],
            &[
                ("org.opencontainers.image.created", "2026-12-01T10:00:00Z"),
                ("org.opencontainers.image.authors", "Web Team"),
                (
                    "org.opencontainers.image.documentation",
                    "https://docs.example.com",
                ),
                (
                    "org.opencontainers.image.source",
                    "https://git.example.com/web",
                ),
                ("org.opencontainers.image.version", "2.0.0"),
                ("org.opencontainers.image.description", "Web manifests"),
            ],
        )
        .await?;
    let mut story = Story::new().await?;
    story.start_controller()?;
    let server = story.start_server().await?;
    let client = Client::login(&story, &server.address()).await?;
    let oci = format!("oci://{}/manifests/web", registry.host());
    for repo in [
        json!({"repo": charts.url(), "type": "helm", "name": "charts",
               "username": "charts", "password": "helm-Pa55"}),
        json!({"repo": oci, "type": "oci", "username": "ci", "password": "registry-Pa55",
               "insecureOCIForceHttp": true}),
    ] {
        client
            .call(
                "/repository.RepositoryService/CreateRepository",
                json!({"repo": repo}),
            )
            .await?;
    }
    let chart_app = story.app_name("chart");
    story.ferry(&[
        "app",
        "create",
        &chart_app,
        "--repo",
        &charts.url(),
        "--helm-chart",
        "web",
        "--revision",
        "1.*",
        "--dest-server",
        "https://kubernetes.default.svc",
        "--dest-namespace",
        story.namespace(),
    ])?;
    let oci_app = story.app_name("oci");
    story.create_app_from(&oci, &oci_app, "web", &["--revision", "2.0.0"])?;

    const CHART: &str = "/application.ApplicationService/RevisionChartDetails";
    let details =
        |revision: &str| client.call(CHART, json!({"name": chart_app, "revision": revision}));
    assert_eq!(
        details("1.0.0").await?,
        json!({"description": "The first web", "home": "https://web.example.com",
               "maintainers": ["Ada <ada@example.com>", "Bob"]})
    );
    // A constraint is resolved against the repository's index, as the app's own is.
    assert_eq!(details("1.*").await?["description"], "A better web");
    let missing = details("9.9.9").await.unwrap_err();
    assert!(missing.message().contains("9.9.9"), "{missing:?}");
    let no_chart = client
        .call(CHART, json!({"name": oci_app, "revision": "2.0.0"}))
        .await
        .unwrap_err();
    assert!(
        no_chart
            .message()
            .contains("no chart found for application"),
        "{no_chart:?}"
    );

    const OCI: &str = "/application.ApplicationService/GetOCIMetadata";
    let expected = json!({
        "createdAt": "2026-12-01T10:00:00Z", "authors": "Web Team",
        "docsUrl": "https://docs.example.com", "sourceUrl": "https://git.example.com/web",
        "version": "2.0.0", "description": "Web manifests",
    });
    for revision in ["2.0.0", digest.as_str()] {
        let metadata = client
            .call(OCI, json!({"name": oci_app, "revision": revision}))
            .await?;
        assert_eq!(metadata, expected, "{revision}");
    }
    let stranger = client
        .call(OCI, json!({"name": "no-such-app", "revision": "2.0.0"}))
        .await
        .unwrap_err();
    assert_eq!(
        stranger.code(),
        tonic::Code::PermissionDenied,
        "{stranger:?}"
    );
    Ok(())
}
