//! Repositories, credential templates, clusters and projects, stored as Argo CD stores them.

use anyhow::Result;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_testkit::kube::TestContext;
use ferry_types::AppProject;
use ferry_types::secrets::{ClusterSecret, RepoSecret, RepoSecretKind, SECRET_TYPE_LABEL};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use kube::config::Kubeconfig;
use serde_json::Value;

use crate::support::{Ferry, app_repo, create_app};

async fn secrets_of_type(ctx: &TestContext, secret_type: &str) -> Result<Vec<Secret>> {
    let secrets: Api<Secret> = ctx.api();
    let selector = format!("{SECRET_TYPE_LABEL}={secret_type}");
    Ok(secrets
        .list(&ListParams::default().labels(&selector))
        .await?
        .items)
}

#[tokio::test]
async fn repositories_are_argo_cd_secrets_and_listings_hide_credentials() -> Result<()> {
    let ctx = TestContext::new().await?;
    let ferry = Ferry::new(&ctx);
    let repo = app_repo()?;
    let url = repo.file_url();

    let out = ferry
        .ok(&[
            "repo",
            "add",
            &url,
            "--name",
            "apps",
            "--username",
            "alice",
            "--password",
            "s3cret-pw",
        ])
        .await;
    assert_eq!(out, format!("repository '{url}' added\n"));
    let secrets = secrets_of_type(&ctx, "repository").await?;
    assert_eq!(secrets.len(), 1);
    let expected = RepoSecret {
        name: "apps".into(),
        username: Some("alice".into()),
        password: Some("s3cret-pw".into()),
        ..RepoSecret::new(RepoSecretKind::Repository, &url)
    };
    assert_eq!(secrets[0].metadata.name, Some(expected.secret_name()));
    assert_eq!(RepoSecret::from_secret(&secrets[0]).unwrap(), expected);

    for format in ["wide", "json", "yaml"] {
        let listed = ferry.ok(&["repo", "list", "-o", format]).await;
        assert!(listed.contains(&url), "{listed}");
        assert!(
            !listed.contains("s3cret-pw") && !listed.contains("alice"),
            "{listed}"
        );
    }
    let table = ferry.ok(&["repo", "list"]).await;
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row, ["git", "apps", url.as_str(), "false", "false", "true"]);

    // Adding again: unchanged; different settings need --upsert.
    let add = [
        "repo",
        "add",
        &url,
        "--name",
        "apps",
        "--username",
        "alice",
        "--password",
    ];
    assert_eq!(
        ferry.ok(&[&add[..], &["s3cret-pw"]].concat()).await,
        format!("repository '{url}' unchanged\n")
    );
    let err = ferry.fails(&[&add[..], &["n3w-pw"]].concat()).await;
    assert!(
        err.contains("exists with different settings; use --upsert"),
        "{err}"
    );
    ferry
        .ok(&[&add[..], &["n3w-pw", "--upsert"]].concat())
        .await;
    let secrets = secrets_of_type(&ctx, "repository").await?;
    assert_eq!(secrets.len(), 1);
    assert_eq!(
        RepoSecret::from_secret(&secrets[0])
            .unwrap()
            .password
            .as_deref(),
        Some("n3w-pw")
    );

    // An OCI Helm repository over plain HTTP, as argocd's `--insecure-oci-force-http` stores it.
    let registry = "127.0.0.1:5000/charts";
    ferry
        .ok(&[
            "repo",
            "add",
            registry,
            "--type",
            "helm",
            "--enable-oci",
            "--insecure-oci-force-http",
        ])
        .await;
    let oci = RepoSecret::from_secret(
        secrets_of_type(&ctx, "repository")
            .await?
            .iter()
            .find(|s| {
                s.data
                    .as_ref()
                    .is_some_and(|d| d["url"].0 == registry.as_bytes())
            })
            .unwrap(),
    )
    .unwrap();
    assert!(oci.enable_oci && oci.insecure_oci_force_http());
    ferry.ok(&["repo", "rm", registry]).await;

    // The connection is tested before anything is stored.
    let err = ferry
        .fails(&["repo", "add", "file:///nonexistent/repo.git"])
        .await;
    assert!(
        err.contains("cannot connect to repository file:///nonexistent/repo.git"),
        "{err}"
    );

    // Credential templates.
    ferry
        .ok(&[
            "repocreds",
            "add",
            "https://git.example.com/team/",
            "--username",
            "bot",
            "--password",
            "t0ken",
        ])
        .await;
    let creds = secrets_of_type(&ctx, "repo-creds").await?;
    let template = RepoSecret::from_secret(&creds[0]).unwrap();
    assert_eq!(template.kind, RepoSecretKind::RepoCreds);
    assert_eq!(template.url, "https://git.example.com/team/");
    let listed = ferry.ok(&["repocreds", "list"]).await;
    assert!(
        listed.contains("https://git.example.com/team/  git   false  true"),
        "{listed}"
    );
    assert!(!listed.contains("t0ken"), "{listed}");
    ferry
        .ok(&["repocreds", "rm", "https://git.example.com/team/"])
        .await;
    assert!(secrets_of_type(&ctx, "repo-creds").await?.is_empty());

    assert_eq!(
        ferry.ok(&["repo", "rm", &url]).await,
        format!("repository '{url}' removed\n")
    );
    assert!(secrets_of_type(&ctx, "repository").await?.is_empty());
    let err = ferry.fails(&["repo", "rm", &url]).await;
    assert!(
        err.contains(&format!("repository {url} not found")),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn a_kubeconfig_context_becomes_a_cluster_apps_can_deploy_to() -> Result<()> {
    let ctx = TestContext::new().await?;
    let ferry = Ferry::new(&ctx);
    let kubeconfig = Kubeconfig::read_from(ctx.kubeconfig())?;
    let context = kubeconfig.current_context.clone().unwrap();
    let server = kubeconfig.clusters[0]
        .cluster
        .as_ref()
        .unwrap()
        .server
        .clone()
        .unwrap();

    let out = ferry
        .ok(&[
            "cluster",
            "add",
            &context,
            "--name",
            "sandbox",
            "--namespace-scope",
            "web,jobs",
        ])
        .await;
    assert_eq!(out, format!("cluster '{server}' added\n"));
    let secrets = secrets_of_type(&ctx, "cluster").await?;
    let cluster = ClusterSecret::from_secret(&secrets[0]).unwrap();
    assert_eq!(secrets[0].metadata.name, Some(cluster.secret_name()));
    assert_eq!(
        (cluster.name.as_str(), cluster.server.as_str()),
        ("sandbox", server.as_str())
    );
    assert_eq!(cluster.namespaces, ["web", "jobs"]);
    // The sandbox's kubeconfig names files; their contents went into the Secret.
    let tls = &cluster.config.tls_client_config;
    let key_file = kubeconfig.auth_infos[0]
        .auth_info
        .as_ref()
        .unwrap()
        .client_key
        .clone()
        .unwrap();
    let key = STANDARD.encode(std::fs::read(key_file)?);
    assert_eq!(tls.key_data.as_deref(), Some(key.as_str()));
    assert!(tls.ca_data.is_some() && tls.cert_data.is_some());

    let table = ferry.ok(&["cluster", "list"]).await;
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(
        rows[0],
        ["SERVER", "NAME", "NAMESPACES", "PROJECT", "CREDENTIALS"]
    );
    assert_eq!(
        rows[1],
        [
            "https://kubernetes.default.svc",
            "in-cluster",
            "all",
            "in-cluster service account"
        ]
    );
    assert_eq!(
        rows[2],
        [server.as_str(), "sandbox", "web,jobs", "client certificate"]
    );
    let json = ferry.ok(&["cluster", "list", "-o", "json"]).await;
    let key_part = &key[key.len() / 2..key.len() / 2 + 32];
    for shown in [&table, &json] {
        assert!(!shown.contains(key_part), "key material shown:\n{shown}");
    }

    // An app deploying to it by name: validated against the registered cluster and compared
    // through a client made from the Secret alone.
    let repo = app_repo()?;
    let url = repo.file_url();
    ferry.allow_fixture_repos().await;
    ferry
        .ok(&[
            "app",
            "create",
            "remote",
            "--repo",
            &url,
            "--path",
            "app",
            "--dest-name",
            "sandbox",
            "--dest-namespace",
            ctx.namespace(),
        ])
        .await;
    let diff = ferry.exits(&["app", "diff", "remote"], 1).await;
    assert!(
        diff.contains(&format!(
            "===== /ConfigMap {}/web-config ======",
            ctx.namespace()
        )),
        "{diff}"
    );
    let err = ferry
        .fails(&[
            "app",
            "create",
            "lost",
            "--repo",
            &url,
            "--path",
            "app",
            "--dest-name",
            "elsewhere",
        ])
        .await;
    assert!(
        err.contains("no cluster named \"elsewhere\" is registered"),
        "{err}"
    );

    assert_eq!(
        ferry.ok(&["cluster", "rm", "sandbox"]).await,
        format!("cluster '{server}' removed\n")
    );
    assert!(secrets_of_type(&ctx, "cluster").await?.is_empty());
    let err = ferry.fails(&["cluster", "rm", "in-cluster"]).await;
    assert!(
        err.contains("the in-cluster cluster is implicit and cannot be removed"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn projects_are_created_listed_shown_and_enforced() -> Result<()> {
    let ctx = TestContext::new().await?;
    let ferry = Ferry::new(&ctx);
    let repo = app_repo()?;
    let url = repo.file_url();
    let ns = ctx.namespace();
    let dest = format!("https://kubernetes.default.svc,{ns}");

    let out = ferry
        .ok(&[
            "proj",
            "create",
            "team",
            "--description",
            "the team",
            "--src",
            &url,
            "--dest",
            &dest,
            "--allow-cluster-resource",
            "/Namespace",
            "--orphaned-resources",
        ])
        .await;
    assert_eq!(out, "project 'team' created\n");
    let projects: Api<AppProject> = ctx.api();
    let project = serde_json::to_value(projects.get("team").await?.spec)?;
    assert_eq!(
        project,
        serde_json::json!({
            "description": "the team",
            "sourceRepos": [url],
            "destinations": [{"server": "https://kubernetes.default.svc", "namespace": ns}],
            "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
            "orphanedResources": {"warn": false}
        })
    );
    let err = ferry
        .fails(&["proj", "create", "team", "--description", "changed"])
        .await;
    assert!(
        err.contains("project team exists with a different spec; use --upsert"),
        "{err}"
    );

    let table = ferry.ok(&["proj", "list"]).await;
    let team = table.lines().find(|l| l.starts_with("team")).unwrap();
    assert!(
        team.contains(&format!("https://kubernetes.default.svc,{ns}")),
        "{table}"
    );
    assert!(
        team.contains("/Namespace") && team.contains("enabled (warn=false)"),
        "{table}"
    );
    assert!(table.lines().any(|l| l.starts_with("default ")), "{table}");
    let shown = ferry.ok(&["proj", "get", "team"]).await;
    assert!(
        shown.contains(&format!("Repositories:                  {url}\n")),
        "{shown}"
    );
    let listed: Vec<Value> =
        serde_json::from_str(&ferry.ok(&["proj", "list", "-o", "json"]).await)?;
    assert_eq!(listed.len(), 2);

    // The project's rules apply to apps created in it.
    create_app(&ferry, "allowed", &repo, &["--project", "team"]).await;
    let err = ferry
        .fails(&[
            "app",
            "create",
            "elsewhere",
            "--repo",
            &url,
            "--path",
            "app",
            "--dest-server",
            "https://kubernetes.default.svc",
            "--dest-namespace",
            "kube-system",
            "--project",
            "team",
        ])
        .await;
    assert!(
        err.contains("do not match any of the allowed destinations in project 'team'"),
        "{err}"
    );
    let err = ferry
        .fails(&[
            "app",
            "create",
            "foreign",
            "--repo",
            "https://github.com/other/repo",
            "--path",
            "app",
            "--dest-server",
            "https://kubernetes.default.svc",
            "--dest-namespace",
            ns,
            "--project",
            "team",
        ])
        .await;
    assert!(
        err.contains(
            "application repo https://github.com/other/repo is not permitted in project 'team'"
        ),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn writing_commands_create_a_missing_control_namespace() -> Result<()> {
    let ctx = TestContext::new().await?;
    let control = format!("{}-control", ctx.namespace());
    let ferry = Ferry::in_namespace(&ctx, &control);
    let out = ferry.run(&["proj", "create", "team", "--src", "*"]).await;
    let projects: Api<AppProject> = Api::namespaced(ctx.client(), &control);
    let (team, default) = (
        projects.get_opt("team").await,
        projects.get_opt("default").await,
    );
    // The test's context only removes its own namespace.
    let namespaces: Api<Namespace> = Api::all(ctx.client());
    if namespaces.get_opt(&control).await?.is_some() {
        namespaces
            .delete(&control, &DeleteParams::background())
            .await?;
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("created namespace {control}")),
        "{stderr}"
    );
    assert!(team?.is_some() && default?.is_some());
    Ok(())
}
