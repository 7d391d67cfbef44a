//! Applications in any namespace, as Argo CD 3 has them: started with
//! `--application-namespaces`, the controller reconciles Applications in those namespaces too,
//! each only when its project (always in the control namespace) lists the app's namespace in
//! `sourceNamespaces`. An app whose project does not is refused with a condition that says why,
//! and nothing of it reaches the cluster. Resources are tracked as `<namespace>_<app>`, and an
//! ApplicationSet in the team's namespace makes an Application there that now syncs. The API
//! server started with the same flag serves those apps as `<namespace>/<name>` (the CLI) or
//! with `appNamespace` (REST), under RBAC objects `<project>/<namespace>/<name>`.

use anyhow::{Result, bail};
use ferry_e2e::appset::AppSetController;
use ferry_e2e::{Story, TIMEOUT, is};
use ferry_testkit::kube::TestContext;
use ferry_testkit::server::{ServerProcess, admin_password, workspace_binary};
use ferry_types::application::OperationPhase;
use ferry_types::{AppProject, Application, ApplicationSet};
use hmac::{Hmac, Mac};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use sha2::Sha256;
use std::time::{Duration, Instant};

/// An automated directory app of the story's guestbook in `namespace`, deploying into
/// `destination`.
fn guestbook(story: &Story, name: &str, project: &str, destination: &str) -> Result<Application> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name},
        "spec": {
            "project": project,
            "source": {"repoURL": story.repo.file_url(), "targetRevision": "HEAD", "path": "guestbook"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": destination},
            "syncPolicy": {"automated": {"prune": true}},
        },
    }))?)
}

/// Polls an Application of another namespace until `check` holds.
async fn wait(
    apps: &Api<Application>,
    name: &str,
    what: &str,
    check: impl Fn(&Application) -> bool,
    story: &Story,
) -> Result<Application> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let app = apps.get_opt(name).await?;
        if let Some(app) = &app
            && check(app)
        {
            return Ok(app.clone());
        }
        if Instant::now() > deadline {
            let status = app.and_then(|a| serde_json::to_string_pretty(&a.status).ok());
            bail!(
                "timed out waiting for {name}: {what}\nstatus: {}\ncontroller log:\n{}",
                status.unwrap_or_default(),
                story.controller_log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn apps_outside_the_control_namespace_sync_when_their_project_lets_them() -> Result<()> {
    let mut story = Story::new().await?;
    let team = TestContext::new().await?;
    let locked_dest = TestContext::new().await?;
    let generated_dest = TestContext::new().await?;
    let team_ns = team.namespace().to_string();

    // The default project takes apps from the team's namespace; `locked` from none but its own.
    let projects: Api<AppProject> = story.ctx.api();
    projects
        .patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"sourceNamespaces": [team_ns]}})),
        )
        .await?;
    let mut locked = AppProject::default_project(story.namespace());
    locked.metadata.name = Some("locked".into());
    locked
        .spec
        .source_repos
        .push(ferry_testkit::git::fixture_source_repos());
    projects.create(&PostParams::default(), &locked).await?;

    story.set_controller_flags(&["--application-namespaces", &format!("/^{team_ns}$/")]);
    story.start_controller()?;

    let team_apps: Api<Application> = team.api();
    team_apps
        .create(
            &PostParams::default(),
            &guestbook(&story, "web", "default", story.namespace())?,
        )
        .await?;
    let web = wait(
        &team_apps,
        "web",
        "synced and healthy",
        is::synced_and_healthy,
        &story,
    )
    .await?;
    assert_eq!(
        web.status.as_ref().map(|s| s.controller_namespace.as_str()),
        Some(story.namespace())
    );
    // Tracked as Argo CD tracks an app outside its namespace: `<namespace>_<name>`.
    let deployment = story.ctx.api::<Deployment>().get("guestbook").await?;
    assert_eq!(
        deployment
            .annotations()
            .get("argocd.argoproj.io/tracking-id")
            .map(String::as_str),
        Some(
            format!(
                "{team_ns}_web:apps/Deployment:{}/guestbook",
                story.namespace()
            )
            .as_str()
        )
    );

    // A project that does not list the namespace: refused, and nothing is applied.
    team_apps
        .create(
            &PostParams::default(),
            &guestbook(&story, "sneaky", "locked", locked_dest.namespace())?,
        )
        .await?;
    let sneaky = wait(
        &team_apps,
        "sneaky",
        "refused",
        is::condition("UnknownError"),
        &story,
    )
    .await?;
    let message = sneaky.status.as_ref().unwrap().conditions[0]
        .message
        .clone();
    assert_eq!(
        message,
        format!(
            "application 'sneaky' in namespace '{team_ns}' is not permitted to use project 'locked'"
        )
    );
    // A sync asked for by hand ends in an error saying the same, and applies nothing.
    team_apps
        .patch(
            "sneaky",
            &PatchParams::default(),
            &Patch::Merge(json!({"operation": {"sync": {"revision": "HEAD"}}})),
        )
        .await?;
    let sneaky = wait(
        &team_apps,
        "sneaky",
        "the sync refused",
        is::operation_finished,
        &story,
    )
    .await?;
    let state = sneaky.status.unwrap().operation_state.unwrap();
    assert_eq!(
        (state.phase, &state.message),
        (OperationPhase::Error, &message)
    );
    let untouched = locked_dest.api::<ConfigMap>();
    assert!(untouched.get_opt("guestbook-config").await?.is_none());

    // An ApplicationSet in the team's namespace makes its Application there, which now syncs.
    let kubeconfig = story.ctx.kubeconfig().to_path_buf();
    let _appsets = AppSetController::start_as(
        &story,
        &kubeconfig,
        &[
            "--enable-scm-providers",
            "false",
            "--applicationset-namespaces",
            &team_ns,
        ],
    )?;
    let set: ApplicationSet = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
        "metadata": {"name": "guestbooks"},
        "spec": {
            "generators": [{"list": {"elements": [{"env": "qa"}]}}],
            "template": {
                "metadata": {"name": "{{env}}-guestbook"},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": story.repo.file_url(), "targetRevision": "HEAD", "path": "guestbook"},
                    "destination": {"server": "https://kubernetes.default.svc", "namespace": generated_dest.namespace()},
                    "syncPolicy": {"automated": {}},
                },
            },
        },
    }))?;
    team.api::<ApplicationSet>()
        .create(&PostParams::default(), &set)
        .await?;
    wait(
        &team_apps,
        "qa-guestbook",
        "generated and synced",
        is::synced_and_healthy,
        &story,
    )
    .await?;
    assert!(
        generated_dest
            .api::<ConfigMap>()
            .get_opt("guestbook-config")
            .await?
            .is_some()
    );

    // An operator whose policy names only an app of the control namespace, and one app of the
    // team's by its three-part object.
    let ops_policy = format!(
        "p, ops, applications, *, default/web, allow\n\
         p, ops, applications, get, default/{team_ns}/qa-guestbook, allow"
    );
    for (name, data) in [
        ("argocd-cm", json!({"accounts.ops": "login"})),
        ("argocd-rbac-cm", json!({"policy.csv": ops_policy})),
    ] {
        story
            .ctx
            .api::<ConfigMap>()
            .patch(
                name,
                &PatchParams::apply("apps-in-any-namespace"),
                &Patch::Apply(json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name}, "data": data,
                })),
            )
            .await?;
    }
    let server = ServerProcess::start_with(
        &workspace_binary("ferry-server")?,
        story.namespace(),
        &kubeconfig,
        &["--application-namespaces".into(), team_ns.clone()],
    )
    .await?;
    story
        .ctx
        .api::<Secret>()
        .patch(
            "argocd-secret",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"stringData": {"accounts.ops.password": bcrypt::hash("ops-password", 4)?}}),
            ),
        )
        .await?;
    let base = format!("http://{}", server.address());

    // The CLI names the team's app `<namespace>/<name>`: get it, sync it.
    let password = admin_password(&story.ctx.client(), story.namespace()).await?;
    story.ferry(&[
        "login",
        &server.address(),
        "--plaintext",
        "--username",
        "admin",
        "--password",
        &password,
    ])?;
    let qualified = format!("{team_ns}/web");
    let shown = story.ferry(&["app", "get", &qualified])?;
    assert!(
        shown.contains("Synced") && shown.contains("Healthy"),
        "{shown}"
    );
    let listed = story.ferry(&["app", "list"])?;
    assert!(listed.contains("qa-guestbook"), "{listed}");
    story.ferry(&["app", "sync", &qualified])?;
    let web = team_apps.get("web").await?;
    let state = web.status.unwrap().operation_state.unwrap();
    assert_eq!(
        (state.phase, state.operation.initiated_by.username.as_str()),
        (OperationPhase::Succeeded, "admin")
    );

    // REST takes `appNamespace`; the operator is refused the app its policy does not name.
    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"username": "ops", "password": "ops-password"}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["token"].as_str().unwrap_or_default().to_string();
    let get = |name: &str| {
        http.get(format!(
            "{base}/api/v1/applications/{name}?appNamespace={team_ns}"
        ))
        .bearer_auth(&token)
        .send()
    };
    assert_eq!(get("web").await?.status(), reqwest::StatusCode::FORBIDDEN);
    let allowed = get("qa-guestbook").await?;
    assert_eq!(allowed.status(), reqwest::StatusCode::OK);
    let allowed: serde_json::Value = allowed.json().await?;
    assert_eq!(allowed["metadata"]["namespace"], team_ns.as_str());
    let list: serde_json::Value = http
        .get(format!("{base}/api/v1/applications"))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let names: Vec<_> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|app| app["metadata"]["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["qa-guestbook"]);

    // A signed push refreshes the apps of the repository in every namespace served.
    story
        .ctx
        .api::<Secret>()
        .patch(
            "argocd-secret",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"webhook.github.secret": "push-secret"}})),
        )
        .await?;
    let url = story.repo.file_url();
    let head = story.repo.head()?;
    let payload = json!({
        "ref": "refs/heads/main", "before": head, "after": head,
        "repository": {"html_url": url, "clone_url": url, "default_branch": "main"},
        "commits": [{"id": head, "modified": ["guestbook/deployment.yaml"]}],
    })
    .to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"push-secret")?;
    mac.update(payload.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let mut refreshed = Vec::new();
    // The settings watch takes the secret in a moment: until then deliveries are refused.
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        let answer = http
            .post(format!("{base}/api/webhook"))
            .header("X-GitHub-Event", "push")
            .header("X-GitHub-Delivery", "apps-in-any-namespace")
            .header("X-Hub-Signature-256", &signature)
            .header("Content-Type", "application/json")
            .body(payload.clone())
            .send()
            .await?;
        if answer.status().is_success() {
            let body: serde_json::Value = answer.json().await?;
            refreshed = body["refreshed"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|name| name.as_str().map(str::to_string))
                .collect();
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    refreshed.sort();
    assert_eq!(
        refreshed,
        [
            format!("{team_ns}/qa-guestbook"),
            format!("{team_ns}/sneaky"),
            format!("{team_ns}/web"),
        ]
    );
    server.stop().await?;
    Ok(())
}
