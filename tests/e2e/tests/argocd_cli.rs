//! The real `argocd` CLI (Argo CD's own, at the release pinned in tools/versions.env, built by
//! scripts/toolchain) against ferry-server's gRPC API and a running controller: log in, see the
//! versions, create an app, list and get it, sync and wait for it, read its history, roll it back,
//! read its manifests and diff (computed by the CLI, by server-side dry runs, and from local
//! files the server renders), change its spec, create and list projects, add and list
//! repositories, ask RBAC, add, list and get clusters and rotate a cluster's token, talk
//! grpc-web and TLS, and delete the app —
//! every call over gRPC, through the same REST handlers, RBAC and audit as the REST API.

use anyhow::{Context, Result};
use ferry_e2e::argocd::Argocd;
use ferry_e2e::{Story, is};
use ferry_testkit::server::{ServerProcess, workspace_binary};

#[tokio::test]
async fn the_argocd_cli_manages_apps_through_ferry_server() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    let server = story.start_server().await?;
    let address = server.address();
    let password =
        ferry_testkit::server::admin_password(&story.ctx.client(), story.namespace()).await?;
    let work = tempfile::tempdir()?;
    let argocd = Argocd::new(work.path());

    // A wrong password is refused as Argo CD refuses it; the right one logs in over plain gRPC.
    let refused = argocd.refused(&[
        "login",
        &address,
        "--plaintext",
        "--username",
        "admin",
        "--password",
        "wrong",
    ])?;
    assert!(
        refused.contains("Invalid username or password"),
        "{refused}"
    );
    let login = argocd.run(&[
        "login",
        &address,
        "--plaintext",
        "--username",
        "admin",
        "--password",
        &password,
    ])?;
    assert!(
        login.contains("'admin:login' logged in successfully"),
        "{login}"
    );

    let version = argocd.run(&["version"])?;
    assert!(version.contains("argocd-server: v"), "{version}");
    let user = argocd.run(&["account", "get-user-info"])?;
    assert!(
        user.contains("Logged In: true") && user.contains("admin"),
        "{user}"
    );

    // An app created by the CLI, listed, got, synced and waited for.
    let app = story.app_name("cli");
    let repo = story.repo.file_url();
    argocd.run(&[
        "app",
        "create",
        &app,
        "--repo",
        &repo,
        "--path",
        "guestbook",
        "--dest-server",
        "https://kubernetes.default.svc",
        "--dest-namespace",
        story.namespace(),
    ])?;
    let listed = argocd.run(&["app", "list", "-o", "name"])?;
    assert!(listed.lines().any(|line| line.ends_with(&app)), "{listed}");
    story
        .wait_app(&app, "OutOfSync before any sync", is::out_of_sync)
        .await?;
    let got = argocd.run(&["app", "get", &app])?;
    assert!(got.contains("OutOfSync") && got.contains(&repo), "{got}");

    let first = story.repo.head()?;
    argocd.run(&["app", "sync", &app, "--timeout", "120"])?;
    argocd.run(&[
        "app",
        "wait",
        &app,
        "--sync",
        "--health",
        "--timeout",
        "120",
    ])?;
    story
        .wait_app(&app, "Synced at the first commit", is::at_revision(&first))
        .await?;
    // The same audit trail as a REST sync: an Event on the app naming the user.
    let events: kube::Api<k8s_openapi::api::core::v1::Event> =
        kube::Api::namespaced(story.ctx.client(), story.namespace());
    let audited = events
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter(|event| event.involved_object.name.as_deref() == Some(app.as_str()))
        .filter_map(|event| event.message)
        .collect::<Vec<_>>();
    assert!(
        audited
            .iter()
            .any(|message| message.starts_with("admin initiated sync")),
        "{audited:?}"
    );

    // A second commit synced, then a rollback to the first history entry.
    story.repo.write("guestbook/extra.yaml", EXTRA_CONFIG_MAP)?;
    let second = story.repo.commit("an extra ConfigMap")?;
    argocd.run(&["app", "sync", &app, "--timeout", "120"])?;
    story
        .wait_app(
            &app,
            "Synced at the second commit",
            is::at_revision(&second),
        )
        .await?;
    // History shows abbreviated commits.
    let history = argocd.run(&["app", "history", &app])?;
    let first_short = format!("({})", &first[..7]);
    let second_short = format!("({})", &second[..7]);
    assert!(
        history.contains(&first_short) && history.contains(&second_short),
        "{history}"
    );
    let first_id = history
        .lines()
        .find(|line| line.contains(&first_short))
        .and_then(|line| line.split_whitespace().next())
        .context("no history entry of the first commit")?
        .to_string();
    argocd.run(&["app", "rollback", &app, &first_id, "--timeout", "120"])?;
    story
        .eventually(
            "a history entry of the rollback to the first commit",
            || async {
                let app = story.app(&app).await?;
                let history = app.status.as_ref().map(|status| status.history.as_slice());
                Ok(history.is_some_and(|history| {
                    history.len() == 3
                        && history.last().is_some_and(|entry| entry.revision == first)
                }))
            },
        )
        .await?;

    // Manifests and diff (the controller's views), and a spec change.
    let manifests = argocd.run(&["app", "manifests", &app])?;
    assert!(manifests.contains("kind: Deployment"), "{manifests}");
    story.repo.write(
        "guestbook/extra.yaml",
        EXTRA_CONFIG_MAP.replace("a: b", "a: changed"),
    )?;
    story.repo.commit("the extra ConfigMap changed")?;
    let diff = argocd.output(&["app", "diff", &app, "--refresh"])?;
    let said = String::from_utf8_lossy(&diff.stdout);
    assert!(
        said.contains("a: changed"),
        "no diff of the new commit: {said}"
    );
    assert_eq!(
        diff.status.code(),
        Some(1),
        "argocd app diff exits 1 on a diff"
    );
    // The same diff predicted by the API server's server-side apply dry runs
    // (ServerSideDiff, one call per resource), and against local files the server renders
    // (GetManifestsWithFiles: the directory streamed as a tar.gz, `--local` the repository's
    // root with the app's path inside), alone and with server-side diff.
    let server_side = argocd.output(&["app", "diff", &app, "--server-side-diff"])?;
    let said = String::from_utf8_lossy(&server_side.stdout);
    let stderr = String::from_utf8_lossy(&server_side.stderr);
    assert!(
        said.contains("a: changed"),
        "no server-side diff of the new commit: {said}{stderr}"
    );
    assert_eq!(server_side.status.code(), Some(1), "{said}{stderr}");
    let local = tempfile::tempdir()?;
    let copied = std::process::Command::new("cp")
        .arg("-r")
        .arg(story.repo.work_path().join("guestbook"))
        .arg(local.path())
        .status()?;
    assert!(copied.success(), "copying the app's files");
    std::fs::write(
        local.path().join("guestbook/extra.yaml"),
        EXTRA_CONFIG_MAP.replace("a: b", "a: edited-locally"),
    )?;
    let root = local.path().display().to_string();
    for extra in [&[][..], &["--server-side-diff"][..]] {
        let mut args = vec![
            "app",
            "diff",
            &app,
            "--local",
            &root,
            "--server-side-generate",
        ];
        args.extend_from_slice(extra);
        let uploaded = argocd.output(&args)?;
        let said = String::from_utf8_lossy(&uploaded.stdout);
        let stderr = String::from_utf8_lossy(&uploaded.stderr);
        assert!(
            said.contains("a: edited-locally") && !said.contains("a: changed"),
            "no diff of the local files ({extra:?}): {said}{stderr}"
        );
        assert_eq!(uploaded.status.code(), Some(1), "{said}{stderr}");
    }
    argocd.run(&["app", "set", &app, "--revision", &second])?;
    story
        .eventually("the spec change written", || async {
            let app = story.app(&app).await?;
            Ok(app
                .spec
                .source
                .is_some_and(|source| source.target_revision == second))
        })
        .await?;

    // Projects, repositories, RBAC and clusters.
    argocd.run(&[
        "proj",
        "create",
        "team-a",
        "--description",
        "made by argocd",
    ])?;
    let projects = argocd.run(&["proj", "list"])?;
    assert!(
        projects.lines().any(|line| line.starts_with("team-a ")),
        "{projects}"
    );
    assert!(
        projects.lines().any(|line| line.starts_with("default ")),
        "{projects}"
    );
    // `argocd repo add` has the server test the connection first: a repository that is not there
    // is refused and not saved, a real one is added and listed.
    let missing = argocd.refused(&["repo", "add", "file:///nonexistent/repo.git"])?;
    assert!(
        missing.contains("cannot connect to repository"),
        "{missing}"
    );
    let extra_repo = ferry_testkit::git::GitRepo::new()?;
    extra_repo.write("README", "an extra repository")?;
    extra_repo.commit("init")?;
    let extra_url = extra_repo.file_url();
    argocd.run(&["repo", "add", &extra_url])?;
    let repos = argocd.run(&["repo", "list"])?;
    assert!(repos.contains(&extra_url), "{repos}");
    assert!(!repos.contains("nonexistent"), "{repos}");
    let can = argocd.run(&["account", "can-i", "sync", "applications", "default/*"])?;
    assert_eq!(can.trim(), "yes");
    // A cluster added from a kubeconfig context: argocd makes its ServiceAccount and Role (in the
    // story's namespace only) and hands the server its token.
    let kubeconfig = story.ctx.kubeconfig().display().to_string();
    let context = kube::config::Kubeconfig::read_from(story.ctx.kubeconfig())?
        .current_context
        .context("the sandbox's kubeconfig has a current context")?;
    argocd.run(&[
        "cluster",
        "add",
        &context,
        "--kubeconfig",
        &kubeconfig,
        "--system-namespace",
        story.namespace(),
        "--namespace",
        story.namespace(),
        "--name",
        "sandbox",
        "--yes",
    ])?;
    let clusters = argocd.run(&["cluster", "list"])?;
    assert!(clusters.contains("sandbox"), "{clusters}");
    assert!(
        clusters.contains("https://kubernetes.default.svc"),
        "{clusters}"
    );

    // `argocd cluster rotate-auth`: a new token Secret of argocd-manager, tried and saved by
    // the server, the old one deleted; the cluster answers with the new token.
    let tokens = story.ctx.api::<k8s_openapi::api::core::v1::Secret>();
    assert!(
        tokens
            .get_opt("argocd-manager-long-lived-token")
            .await?
            .is_some()
    );
    // Added with the context's client certificate, the cluster keeps it and no token, as
    // argocd saves it: nothing to rotate, as Argo CD answers.
    let refused = argocd.refused(&["cluster", "rotate-auth", "sandbox"])?;
    assert!(
        refused.contains("does not use bearer token authentication"),
        "{refused}"
    );
    // Added again through a context whose user is argocd-manager's token, it keeps the token.
    let token = tokens
        .get("argocd-manager-long-lived-token")
        .await?
        .data
        .and_then(|mut data| data.remove("token"))
        .context("argocd-manager's token")?;
    let mut with_token = kube::config::Kubeconfig::read_from(story.ctx.kubeconfig())?;
    for user in &mut with_token.auth_infos {
        user.auth_info = Some(kube::config::AuthInfo {
            token: Some(String::from_utf8(token.0.clone())?.into()),
            ..Default::default()
        });
    }
    let token_kubeconfig = work.path().join("token-kubeconfig");
    std::fs::write(&token_kubeconfig, serde_yaml::to_string(&with_token)?)?;
    argocd.run(&[
        "cluster",
        "add",
        &context,
        "--kubeconfig",
        &token_kubeconfig.display().to_string(),
        "--system-namespace",
        story.namespace(),
        "--namespace",
        story.namespace(),
        "--service-account",
        "argocd-manager",
        "--name",
        "sandbox",
        "--upsert",
        "--yes",
    ])?;
    let rotated = argocd.run(&["cluster", "rotate-auth", "sandbox"])?;
    assert!(
        rotated.contains("Cluster 'sandbox' rotated auth"),
        "{rotated}"
    );
    assert!(
        tokens
            .get_opt("argocd-manager-long-lived-token")
            .await?
            .is_none()
    );
    let sandbox = argocd.run(&["cluster", "get", "sandbox", "-o", "json"])?;
    let sandbox: serde_json::Value = serde_json::from_str(&sandbox)?;
    assert_eq!(
        sandbox["connectionState"]["status"], "Successful",
        "{sandbox}"
    );

    // grpc-web, as behind a proxy that speaks HTTP/1.1 only.
    let web = argocd.run(&["app", "get", &app, "--grpc-web", "-o", "json"])?;
    let web: serde_json::Value = serde_json::from_str(&web)?;
    assert_eq!(web["metadata"]["name"], app.as_str());

    // Over TLS, as a production install serves it: `--insecure` trusts the self-signed certificate.
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    let (cert, key) = (work.path().join("tls.crt"), work.path().join("tls.key"));
    std::fs::write(&cert, certified.cert.pem())?;
    std::fs::write(&key, certified.signing_key.serialize_pem())?;
    let tls_server = ServerProcess::start_with(
        &workspace_binary("ferry-server")?,
        story.namespace(),
        story.ctx.kubeconfig(),
        &[
            "--tls-cert".into(),
            cert.display().to_string(),
            "--tls-key".into(),
            key.display().to_string(),
        ],
    )
    .await?;
    let over_tls = Argocd::new(&work.path().join("tls"));
    std::fs::create_dir_all(work.path().join("tls"))?;
    let tls_address = tls_server.address();
    over_tls.run(&[
        "login",
        &tls_address,
        "--insecure",
        "--username",
        "admin",
        "--password",
        &password,
    ])?;
    let listed = over_tls.run(&["app", "list", "-o", "name"])?;
    assert!(listed.lines().any(|line| line.ends_with(&app)), "{listed}");
    let listed = over_tls.run(&["app", "list", "-o", "name", "--grpc-web"])?;
    assert!(listed.lines().any(|line| line.ends_with(&app)), "{listed}");

    // Errors carry Argo CD's codes.
    let missing = argocd.refused(&["app", "get", "no-such-app"])?;
    assert!(
        missing.contains("NotFound") || missing.contains("PermissionDenied"),
        "{missing}"
    );

    argocd.run(&["app", "delete", &app, "--yes"])?;
    story
        .eventually("the app deleted", || async {
            Ok(story.apps().get_opt(&app).await?.is_none())
        })
        .await?;
    argocd.run(&["logout", &address])?;
    let after = argocd.refused(&["app", "list"])?;
    assert!(after.contains("Unauthenticated"), "{after}");
    Ok(())
}

const EXTRA_CONFIG_MAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: extra
data:
  a: b
";
