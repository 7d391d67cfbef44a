//! Repositories, credential templates, clusters and projects through the server.

use anyhow::Result;
use ferry_testkit::git::GitRepo;
use ferry_testkit::kube::TestContext;
use ferry_types::AppProject;
use k8s_openapi::api::core::v1::Secret;
use kube::config::Kubeconfig;
use serde_json::Value;

use crate::support::{Ferry, admin_password, assert_no_secrets, start_server};

#[tokio::test]
async fn repositories_clusters_and_projects_through_the_server() -> Result<()> {
    let ctx = TestContext::new().await?;
    let server = start_server(&ctx, &[]).await?;
    let password = admin_password(&ctx).await?;
    let admin = Ferry::new();
    admin.login(&server, "admin", &password).await;

    // Repositories: added (the server lists the refs first), listed without credentials, removed.
    let repo = GitRepo::new()?;
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
    )?;
    repo.commit("app")?;
    let url = repo.file_url();
    let secret_password = "repo-password-42";
    let out = admin
        .ok(&[
            "repo",
            "add",
            &url,
            "--name",
            "apps",
            "--username",
            "bot",
            "--password",
            secret_password,
        ])
        .await;
    assert_eq!(out, format!("repository '{url}' added\n"));
    let list = admin.ok(&["repo", "list"]).await;
    let row: Vec<&str> = list.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        row[..6],
        ["git", "apps", url.as_str(), "false", "false", "true"]
    );
    let one = admin.ok(&["repo", "get", &url, "-o", "json"]).await;
    let shown: Value = serde_json::from_str(&one)?;
    assert_eq!(shown[0]["name"], "apps");
    assert_no_secrets(&format!("{list}{one}"), &[secret_password]);
    let secrets = ctx.api::<Secret>().list(&Default::default()).await?;
    assert!(
        secrets
            .items
            .iter()
            .any(|s| s.metadata.labels.as_ref().is_some_and(|l| l
                .get("argocd.argoproj.io/secret-type")
                .map(String::as_str)
                == Some("repository"))),
        "the server keeps Argo CD's repository Secret"
    );
    assert_eq!(
        admin.ok(&["repo", "rm", &url]).await,
        format!("repository '{url}' removed\n")
    );
    assert_eq!(admin.ok(&["repo", "list", "-o", "name"]).await, "");

    let prefix = "https://git.example.com/org/";
    admin
        .ok(&[
            "repocreds",
            "add",
            prefix,
            "--username",
            "bot",
            "--password",
            secret_password,
        ])
        .await;
    let creds = admin.ok(&["repocreds", "list", "-o", "name"]).await;
    assert_eq!(creds, format!("{prefix}\n"));
    admin.ok(&["repocreds", "rm", prefix]).await;
    assert_eq!(admin.ok(&["repocreds", "list", "-o", "name"]).await, "");

    // Clusters: the local kubeconfig context's credentials go to the server.
    let kubeconfig = Kubeconfig::read_from(ctx.kubeconfig())?;
    let context = kubeconfig.current_context.clone().unwrap();
    let server_url = kubeconfig.clusters[0]
        .cluster
        .as_ref()
        .unwrap()
        .server
        .clone()
        .unwrap();
    let server_url = server_url.trim_end_matches('/');
    let added = admin
        .command(&["cluster", "add", &context, "--name", "sandbox"])
        .env("KUBECONFIG", ctx.kubeconfig())
        .output()
        .await?;
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let clusters = admin.ok(&["cluster", "list", "-o", "name"]).await;
    assert!(clusters.lines().any(|l| l == "sandbox"), "{clusters}");
    let by_name = admin.ok(&["cluster", "get", "sandbox", "-o", "json"]).await;
    let by_name: Value = serde_json::from_str(&by_name)?;
    assert_eq!(by_name[0]["server"], server_url);
    let by_server = admin.ok(&["cluster", "get", server_url]).await;
    assert!(by_server.contains("sandbox"), "{by_server}");
    admin.ok(&["cluster", "rm", server_url]).await;
    let clusters = admin.ok(&["cluster", "list", "-o", "name"]).await;
    assert!(!clusters.contains("sandbox"), "{clusters}");

    // Projects, and a token for one of their roles.
    admin
        .ok(&[
            "proj",
            "create",
            "team",
            "--description",
            "the team's apps",
            "--src",
            "https://git.example.com/team/*",
            "--dest",
            "https://kubernetes.default.svc,team-*",
        ])
        .await;
    let project: AppProject = ctx.api().get("team").await?;
    assert_eq!(project.spec.description, "the team's apps");
    let list = admin.ok(&["proj", "list", "-o", "name"]).await;
    assert!(list.lines().any(|l| l == "team"), "{list}");
    let shown = admin.ok(&["proj", "get", "team"]).await;
    assert!(
        shown.contains("Destinations:                  https://kubernetes.default.svc,team-*\n"),
        "{shown}"
    );
    let mut with_role = project.clone();
    with_role.spec.roles = serde_json::from_value(serde_json::json!([
        {"name": "ci", "policies": ["p, proj:team:ci, applications, get, team/*, allow"]}
    ]))?;
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), serde_yaml::to_string(&with_role)?)?;
    admin
        .ok(&[
            "proj",
            "create",
            "-f",
            file.path().to_str().unwrap(),
            "--upsert",
        ])
        .await;
    let token = admin
        .ok(&[
            "proj",
            "role",
            "create-token",
            "team",
            "ci",
            "--expires-in",
            "600",
        ])
        .await;
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let info = Ferry::new()
        .ok(&[
            "account",
            "get-user-info",
            "--server",
            &server.address(),
            "--plaintext",
            "--auth-token",
            token,
        ])
        .await;
    assert!(info.contains("Username:   proj:team:ci\n"), "{info}");
    assert_eq!(
        admin.ok(&["proj", "delete", "team"]).await,
        "project 'team' deleted\n"
    );

    let log = server.stop().await?;
    assert_no_secrets(&log, &[&password, secret_password, token]);
    Ok(())
}
