//! App verbs through the server, as an admin and as a read-only local user.

use std::time::Duration;

use anyhow::Result;
use ferry_testkit::git::GitRepo;
use ferry_testkit::kube::TestContext;
use ferry_types::{AppProject, Application};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::support::{Ferry, admin_password, start_server, texts};

/// An app the server can show; no controller runs here, the test plays its part.
async fn create_app(ctx: &TestContext, name: &str) -> Result<()> {
    let app: Application = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name},
        "spec": {
            "project": "default",
            "source": {"repoURL": "https://git.example.com/apps", "path": name, "targetRevision": "main"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": name},
        },
    }))?;
    ctx.api::<Application>()
        .create(&PostParams::default(), &app)
        .await?;
    Ok(())
}

#[tokio::test]
async fn apps_through_the_server_with_rbac() -> Result<()> {
    let ctx = TestContext::new().await?;
    let server = start_server(&ctx, &[("accounts.alice", "login")]).await?;
    let rbac: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "argocd-rbac-cm"},
        "data": {"policy.csv": "g, alice, role:readonly\n"},
    }))?;
    ctx.api::<ConfigMap>()
        .create(&PostParams::default(), &rbac)
        .await?;
    create_app(&ctx, "guestbook").await?;
    let apps: Api<Application> = ctx.api();
    let password = admin_password(&ctx).await?;
    let admin = Ferry::new();
    admin.login(&server, "admin", &password).await;

    // The admin sets alice's password with their own as proof.
    let alice_password = "alice's password 1";
    let out = admin
        .ok(&[
            "account",
            "update-password",
            "--account",
            "alice",
            "--current-password",
            &password,
            "--new-password",
            alice_password,
        ])
        .await;
    assert_eq!(out, "Password updated\n", "admin's own session is kept");

    let list = admin.ok(&["app", "list"]).await;
    let row: Vec<&str> = list.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        row[..6],
        [
            "guestbook",
            "https://kubernetes.default.svc",
            "guestbook",
            "default",
            "Unknown",
            "Unknown"
        ]
    );
    assert_eq!(
        admin
            .ok(&["app", "list", "-p", "other", "-o", "name"])
            .await,
        ""
    );
    let shown = admin.ok(&["app", "get", "guestbook"]).await;
    assert!(
        shown.contains(&format!("Name:           {}/guestbook\n", ctx.namespace())),
        "{shown}"
    );

    // A sync through the server, waited for; the test stands in for the controller.
    let mut sync = admin.command(&["app", "sync", "guestbook", "--prune", "--timeout", "60"]);
    let sync = sync.output();
    let controller = async {
        let requested = wait_for(&apps, "guestbook", |app| app.operation.is_some()).await?;
        let operation = requested.operation.clone().unwrap();
        assert_eq!(operation.initiated_by.username, "admin");
        assert!(operation.sync.as_ref().unwrap().prune);
        apps.patch(
            "guestbook",
            &PatchParams::default(),
            &Patch::Merge(json!({
                "operation": null,
                "status": {
                    "sync": {"status": "Synced", "revision": "0123456789abcdef0123456789abcdef01234567"},
                    "health": {"status": "Healthy"},
                    "operationState": {
                        "phase": "Succeeded",
                        "message": "successfully synced (all tasks run)",
                        "operation": serde_json::to_value(&operation)?,
                        "startedAt": "2024-05-01T10:00:00Z",
                        "finishedAt": "2024-05-01T10:00:02Z",
                    },
                },
            })),
        )
        .await?;
        anyhow::Ok(())
    };
    let (out, played) = tokio::join!(sync, controller);
    played?;
    let (stdout, stderr) = texts(&out?);
    assert!(
        stdout.contains("Phase:          Succeeded\n"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("Sync Status:    Synced to main (0123456)\n"),
        "{stdout}"
    );

    // alice reads but may not sync.
    let alice = Ferry::new();
    alice.login(&server, "alice", alice_password).await;
    let names = alice.ok(&["app", "list", "-o", "name"]).await;
    assert_eq!(names, "guestbook\n");
    let history = alice.ok(&["app", "history", "guestbook"]).await;
    assert!(history.starts_with("ID  DATE  REVISION"), "{history}");
    let err = alice.fails(&["app", "sync", "guestbook", "--async"]).await;
    assert!(
        err.contains("requesting a sync of app guestbook: permission denied"),
        "{err}"
    );
    assert_eq!(
        alice
            .ok(&[
                "account",
                "can-i",
                "sync",
                "applications",
                "default/guestbook"
            ])
            .await,
        "no\n"
    );
    let err = alice.fails(&["app", "get", "nothing-here"]).await;
    assert!(err.contains("permission denied"), "{err}");

    // --core still talks to Kubernetes directly, logged in or not.
    let core = alice
        .command(&["--core", "app", "list", "-o", "name", "-N", ctx.namespace()])
        .env("KUBECONFIG", ctx.kubeconfig())
        .output()
        .await?;
    assert_eq!(String::from_utf8_lossy(&core.stdout), "guestbook\n");

    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn app_lifecycle_through_the_server() -> Result<()> {
    let ctx = TestContext::new().await?;
    let server = start_server(&ctx, &[]).await?;
    let apps: Api<Application> = ctx.api();
    let admin = Ferry::new();
    admin
        .login(&server, "admin", &admin_password(&ctx).await?)
        .await;
    // For the end: the server learns of projects through its watch.
    ctx.api::<AppProject>()
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "remote-only"},
                "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}]}
            }))?,
        )
        .await?;
    let repo = GitRepo::new()?;
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
    )?;
    repo.commit("app")?;
    let url = repo.file_url();

    let out = admin
        .ok(&[
            "app",
            "create",
            "web",
            "--repo",
            &url,
            "--path",
            "app",
            "--dest-server",
            "https://kubernetes.default.svc",
            "--dest-namespace",
            ctx.namespace(),
            "--label",
            "team=web",
        ])
        .await;
    assert_eq!(out, "application 'web' created\n");
    let app = apps.get("web").await?;
    assert_eq!(app.spec.source.as_ref().unwrap().repo_url, url);
    assert_eq!(app.metadata.labels.unwrap()["team"], "web");

    assert_eq!(
        admin.ok(&["app", "set", "web", "--revision", "v2"]).await,
        "application 'web' updated\n"
    );
    assert_eq!(
        admin.ok(&["app", "set", "web", "--revision", "v2"]).await,
        "application 'web' unchanged\n"
    );
    let app = apps.get("web").await?;
    assert_eq!(app.spec.source.as_ref().unwrap().target_revision, "v2");

    // Two deployments in the history (the controller's record); roll back to the first.
    let first = "1111111111111111111111111111111111111111";
    apps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {
            "health": {"status": "Healthy"},
            "sync": {"status": "Synced"},
            "history": [
                {"id": 1, "revision": first, "deployedAt": "2024-05-01T10:00:00Z",
                 "source": {"repoURL": url, "path": "app", "targetRevision": "main"}},
                {"id": 2, "revision": "2222222222222222222222222222222222222222",
                 "deployedAt": "2024-05-02T10:00:00Z",
                 "source": {"repoURL": url, "path": "app", "targetRevision": "v2"}},
            ],
        }})),
    )
    .await?;
    let history = admin.ok(&["app", "history", "web"]).await;
    assert!(history.contains("main (1111111)"), "{history}");
    let out = admin.ok(&["app", "rollback", "web", "--async"]).await;
    assert_eq!(out, "rollback of app web to deployment 1 requested\n");
    let operation = apps.get("web").await?.operation.unwrap();
    assert_eq!(operation.sync.unwrap().revision, first);

    // The controller started it; terminate-op asks it to stop.
    apps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"operationState": {
            "phase": "Running", "operation": {"sync": {"revision": first}},
            "startedAt": "2024-05-03T10:00:00Z",
        }}})),
    )
    .await?;
    assert_eq!(
        admin.ok(&["app", "terminate-op", "web"]).await,
        "Application 'web' operation terminating\n"
    );
    let state = apps
        .get("web")
        .await?
        .status
        .unwrap()
        .operation_state
        .unwrap();
    assert_eq!(format!("{:?}", state.phase), "Terminating");

    let waited = admin
        .ok(&[
            "app",
            "wait",
            "web",
            "--health",
            "--sync",
            "--timeout",
            "30",
        ])
        .await;
    assert!(waited.contains("Health Status:  Healthy\n"), "{waited}");

    let out = admin
        .ok(&[
            "app",
            "delete",
            "web",
            "--yes",
            "--cascade=false",
            "--wait",
            "--timeout",
            "60",
        ])
        .await;
    assert_eq!(out, "application 'web' deleted\n");
    assert!(apps.get_opt("web").await?.is_none());

    // A project of `*` (created at the start) permits any remote repository but no file://
    // one; the server says why.
    let err = admin
        .fails(&[
            "app",
            "create",
            "local",
            "--repo",
            &url,
            "--path",
            "app",
            "--dest-server",
            "https://kubernetes.default.svc",
            "--dest-namespace",
            ctx.namespace(),
            "--project",
            "remote-only",
        ])
        .await;
    assert!(
        err.contains(&format!(
            "application repo {url} is not permitted in project 'remote-only': file:// \
             repositories must be listed explicitly in sourceRepos"
        )),
        "{err}"
    );

    server.stop().await?;
    Ok(())
}

/// Polls the app until `done` holds for it.
async fn wait_for(
    apps: &Api<Application>,
    name: &str,
    done: impl Fn(&Application) -> bool,
) -> Result<Application> {
    for _ in 0..300 {
        let app = apps.get(name).await?;
        if done(&app) {
            return Ok(app);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("app {name} never reached the state waited for")
}
