//! Applications: create, list, get, set, delete; diff against live objects; manifests.

use anyhow::Result;
use ferry_testkit::kube::TestContext;
use ferry_types::{AppProject, Application};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::support::{Ferry, app_repo, create_app, patch_app, release, texts};

#[tokio::test]
async fn apps_are_created_listed_shown_changed_and_deleted() -> Result<()> {
    let ctx = TestContext::new().await?;
    let ferry = Ferry::new(&ctx);
    let apps: Api<Application> = ctx.api();
    let repo = app_repo()?;

    // Creating an app installs what core mode needs (CRDs, the default project) and writes
    // Argo CD's spec.
    let out = create_app(
        &ferry,
        "guestbook",
        &repo,
        &[
            "--label",
            "team=web",
            "--sync-option",
            "CreateNamespace=true",
        ],
    )
    .await;
    assert_eq!(out, "application 'guestbook' created\n");
    let projects: Api<AppProject> = ctx.api();
    assert!(projects.get_opt("default").await?.is_some());
    let app = serde_json::to_value(apps.get("guestbook").await?)?;
    assert_eq!(
        app["spec"],
        json!({
            "source": {"repoURL": repo.file_url(), "path": "app"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": ctx.namespace()},
            "project": "default",
            "syncPolicy": {"syncOptions": ["CreateNamespace=true"]}
        })
    );
    assert_eq!(app["metadata"]["labels"], json!({"team": "web"}));

    // The same spec again is fine; a different one needs --upsert.
    let again = create_app(
        &ferry,
        "guestbook",
        &repo,
        &[
            "--label",
            "team=web",
            "--sync-option",
            "CreateNamespace=true",
        ],
    )
    .await;
    assert_eq!(again, "application 'guestbook' unchanged\n");
    let url = repo.file_url();
    let other_path = [
        "app",
        "create",
        "guestbook",
        "--repo",
        &url,
        "--path",
        "other",
        "--dest-server",
        "https://kubernetes.default.svc",
        "--dest-namespace",
        ctx.namespace(),
    ];
    let err = ferry.fails(&other_path).await;
    assert!(
        err.contains("app guestbook exists with a different spec; use --upsert"),
        "{err}"
    );
    let updated = ferry.ok(&[&other_path[..], &["--upsert"]].concat()).await;
    assert_eq!(updated, "application 'guestbook' updated\n");
    let app = apps.get("guestbook").await?;
    assert_eq!(app.spec.source.as_ref().unwrap().path, "other");
    assert_eq!(
        app.metadata.labels, None,
        "--upsert replaces the labels too"
    );

    // A project that does not exist is refused before anything is written.
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
            "in-cluster",
            "--project",
            "nope",
        ])
        .await;
    assert!(
        err.contains("app lost references project nope which does not exist"),
        "{err}"
    );

    // `set` changes only what it is given.
    ferry
        .ok(&[
            "app",
            "set",
            "guestbook",
            "--path",
            "app",
            "--revision",
            "main",
            "--sync-policy",
            "automated",
            "--self-heal",
            "--label",
            "tier=front",
        ])
        .await;
    let app = apps.get("guestbook").await?;
    let source = app.spec.source.as_ref().unwrap();
    assert_eq!(
        (source.path.as_str(), source.target_revision.as_str()),
        ("app", "main")
    );
    assert_eq!(source.repo_url, url);
    let automated = app
        .spec
        .sync_policy
        .as_ref()
        .unwrap()
        .automated
        .as_ref()
        .unwrap();
    assert!(automated.self_heal && !automated.prune);
    assert_eq!(app.spec.destination.namespace, ctx.namespace());

    // Listing: argocd's table, names, selectors.
    let table = ferry.ok(&["app", "list"]).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "CLUSTER",
            "NAMESPACE",
            "PROJECT",
            "STATUS",
            "HEALTH",
            "SYNCPOLICY",
            "CONDITIONS",
            "REPO",
            "PATH",
            "TARGET"
        ]
    );
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        row,
        [
            "guestbook",
            "https://kubernetes.default.svc",
            ctx.namespace(),
            "default",
            "Unknown",
            "Unknown",
            "Auto",
            "<none>",
            url.as_str(),
            "app",
            "main"
        ]
    );
    assert_eq!(
        ferry.ok(&["app", "list", "-o", "name"]).await,
        "guestbook\n"
    );
    assert_eq!(
        ferry
            .ok(&["app", "list", "-o", "name", "-l", "tier=front"])
            .await,
        "guestbook\n"
    );
    assert_eq!(
        ferry
            .ok(&["app", "list", "-o", "name", "-l", "tier=back"])
            .await,
        ""
    );
    assert_eq!(
        ferry
            .ok(&["app", "list", "-o", "name", "-p", "other"])
            .await,
        ""
    );
    let listed: Vec<Value> = serde_json::from_str(&ferry.ok(&["app", "list", "-o", "json"]).await)?;
    assert_eq!(listed[0]["metadata"]["name"], "guestbook");

    // Showing one.
    let shown = ferry.ok(&["app", "get", "guestbook"]).await;
    for line in [
        format!("Name:           {}/guestbook", ctx.namespace()),
        "Project:        default".to_string(),
        "Sync Policy:    Automated".to_string(),
        "Sync Status:    Unknown".to_string(),
    ] {
        assert!(shown.contains(&line), "{line:?} missing from:\n{shown}");
    }
    let yaml: Value =
        serde_yaml::from_str(&ferry.ok(&["app", "get", "guestbook", "-o", "yaml"]).await)?;
    assert_eq!(yaml["spec"]["source"]["path"], "app");
    let err = ferry.fails(&["app", "get", "nope"]).await;
    assert!(
        err.contains(&format!(
            "app nope not found in namespace {}",
            ctx.namespace()
        )),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn deleting_sets_the_finalizer_that_decides_the_cascade() -> Result<()> {
    let ctx = TestContext::new().await?;
    let ferry = Ferry::new(&ctx);
    let apps: Api<Application> = ctx.api();
    let repo = app_repo()?;
    create_app(&ferry, "cascading", &repo, &[]).await;
    create_app(&ferry, "background", &repo, &[]).await;
    create_app(&ferry, "orphaning", &repo, &["--set-finalizer"]).await;
    assert_eq!(
        apps.get("orphaning").await?.metadata.finalizers,
        Some(vec!["resources-finalizer.argocd.argoproj.io".to_string()])
    );

    // A cascading delete (the default; no terminal, so no question) leaves the app waiting for
    // the controller to delete its resources and remove the finalizer.
    let out = ferry.ok(&["app", "delete", "cascading"]).await;
    assert_eq!(out, "application 'cascading' deleted\n");
    let app = apps.get("cascading").await?;
    assert!(app.metadata.deletion_timestamp.is_some());
    assert_eq!(
        app.metadata.finalizers,
        Some(vec!["resources-finalizer.argocd.argoproj.io".to_string()])
    );
    ferry
        .ok(&[
            "app",
            "delete",
            "background",
            "--propagation-policy",
            "background",
            "-y",
        ])
        .await;
    assert_eq!(
        apps.get("background").await?.metadata.finalizers,
        Some(vec![
            "resources-finalizer.argocd.argoproj.io/background".to_string()
        ])
    );

    // Without cascade the finalizer goes first, so the app goes at once.
    ferry
        .ok(&[
            "app",
            "delete",
            "orphaning",
            "--cascade=false",
            "--wait",
            "--timeout",
            "30",
        ])
        .await;
    assert!(apps.get_opt("orphaning").await?.is_none());

    // The controller's part: resources deleted, finalizers removed.
    release(&apps, "cascading").await?;
    release(&apps, "background").await?;
    Ok(())
}

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: web-secret\nstringData:\n  password: git-password-123\n";

/// Applies an object the way the controller's sync does: server-side apply as ferry-controller
/// with the tracking annotation.
async fn apply_as_controller<K>(
    api: &Api<K>,
    mut obj: Value,
    app: &str,
    namespace: &str,
) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    let kind = obj["kind"].as_str().unwrap().to_string();
    obj["metadata"]["annotations"] = json!({
        "argocd.argoproj.io/tracking-id": format!("{app}:/{kind}:{namespace}/{name}")
    });
    obj["metadata"]["namespace"] = json!(namespace);
    api.patch(
        &name,
        &PatchParams::apply("ferry-controller").force(),
        &Patch::Apply(&obj),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn diff_exits_1_for_differences_0_when_live_matches_and_masks_secrets() -> Result<()> {
    let ctx = TestContext::new().await?;
    let ferry = Ferry::new(&ctx);
    let ns = ctx.namespace();
    let repo = app_repo()?;
    repo.write("app/secret.yaml", SECRET)?;
    repo.commit("a secret")?;
    create_app(&ferry, "web", &repo, &[]).await;

    // Nothing is live yet: both resources are missing.
    let out = ferry.run(&["app", "diff", "web"]).await;
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stdout.contains(&format!("===== /ConfigMap {ns}/web-config ======")),
        "{stdout}"
    );
    assert!(stdout.contains("+  color: blue"), "{stdout}");
    assert!(
        stdout.contains(&format!("===== /Secret {ns}/web-secret ======")),
        "{stdout}"
    );

    // Synced as the controller would sync it: no differences.
    let config_maps: Api<ConfigMap> = ctx.api();
    let secrets: Api<Secret> = ctx.api();
    apply_as_controller(
        &config_maps,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config"},
               "data": {"color": "blue"}}),
        "web",
        ns,
    )
    .await?;
    apply_as_controller(&secrets, serde_yaml::from_str(SECRET)?, "web", ns).await?;
    let out = ferry.run(&["app", "diff", "web"]).await;
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(stdout, "");

    // Someone edits the live objects: the diff shows it, with the Secret's values masked.
    config_maps
        .patch(
            "web-config",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"color": "red"}})),
        )
        .await?;
    secrets
        .patch(
            "web-secret",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"password": "live-password-456"}})),
        )
        .await?;
    for mode in ["--server-side-diff", "--server-side-diff=false"] {
        let out = ferry
            .run(&["app", "diff", "web", mode, "--color", "never"])
            .await;
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(1), "{mode}: {stderr}");
        assert!(
            stdout.contains("-  color: red\n+  color: blue\n"),
            "{mode}: {stdout}"
        );
        assert!(
            stdout.contains(&format!("===== /Secret {ns}/web-secret ======")),
            "{stdout}"
        );
        assert!(
            stdout.contains("++++++++"),
            "{mode}: the masked value is missing:\n{stdout}"
        );
        for secret in [
            "git-password-123",
            "live-password-456",
            "Z2l0LXBhc3N3b3JkLTEyMw",
            "bGl2ZS1wYXNzd29yZC00NTY",
        ] {
            assert!(
                !stdout.contains(secret),
                "{mode}: {secret} shown:\n{stdout}"
            );
        }
    }
    let colored = ferry
        .exits(&["app", "diff", "web", "--color", "always"], 1)
        .await;
    assert!(
        colored.contains("\x1b[31m-  color: red\x1b[0m"),
        "{colored}"
    );

    // An app that cannot be rendered is an error (2), not a difference.
    let url = repo.file_url();
    ferry
        .ok(&[
            "app",
            "create",
            "broken",
            "--repo",
            &url,
            "--path",
            "missing",
            "--dest-name",
            "in-cluster",
            "--dest-namespace",
            ns,
        ])
        .await;
    let out = ferry.run(&["app", "diff", "broken"]).await;
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("app broken: rendering its sources"),
        "{stderr}"
    );
    Ok(())
}

/// `argocd-cm`'s system-wide ignoreDifferences hold for `ferry app diff` as they hold for the
/// controller, which compare through the same code (ferry-appstate): a live change to a field
/// they ignore is no difference, whether the API server predicts the applied object or not.
#[tokio::test]
async fn diff_ignores_what_argocd_cm_ignores_system_wide() -> Result<()> {
    let ctx = TestContext::new().await?;
    let ferry = Ferry::new(&ctx);
    let ns = ctx.namespace();
    let repo = app_repo()?;
    create_app(&ferry, "web", &repo, &[]).await;
    let config_maps: Api<ConfigMap> = ctx.api();
    // Live, the app's ConfigMap says red; Git says blue.
    apply_as_controller(
        &config_maps,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config"},
               "data": {"color": "red"}}),
        "web",
        ns,
    )
    .await?;
    let diff = ferry
        .exits(&["app", "diff", "web", "--color", "never"], 1)
        .await;
    assert!(diff.contains("-  color: red\n+  color: blue\n"), "{diff}");

    let argocd_cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "argocd-cm"},
        "data": {"resource.customizations.ignoreDifferences.ConfigMap": "jsonPointers:\n- /data/color\n"},
    }))?;
    config_maps
        .create(&kube::api::PostParams::default(), &argocd_cm)
        .await?;
    for mode in ["--server-side-diff", "--server-side-diff=false"] {
        let diff = ferry.exits(&["app", "diff", "web", mode], 0).await;
        assert_eq!(diff, "", "{mode}");
    }
    Ok(())
}

#[tokio::test]
async fn manifests_come_from_git_or_from_the_cluster_with_secrets_masked() -> Result<()> {
    let ctx = TestContext::new().await?;
    let ferry = Ferry::new(&ctx);
    let ns = ctx.namespace();
    let repo = app_repo()?;
    repo.write("app/secret.yaml", SECRET)?;
    let first = repo.commit("a secret")?;
    create_app(&ferry, "web", &repo, &[]).await;

    let from_git = yaml_stream(&ferry.ok(&["app", "manifests", "web"]).await);
    let kinds: Vec<&str> = from_git
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ConfigMap", "Secret"]);
    assert_eq!(from_git[0]["data"]["color"], "blue");

    // Another revision renders what that revision holds.
    repo.write(
        "app/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  color: green\n",
    )?;
    repo.commit("green")?;
    let at_first = yaml_stream(
        &ferry
            .ok(&["app", "manifests", "web", "--revision", &first])
            .await,
    );
    assert_eq!(at_first[0]["data"]["color"], "blue");
    let at_head = yaml_stream(
        &ferry
            .ok(&["app", "manifests", "web", "--source", "git"])
            .await,
    );
    assert_eq!(at_head[0]["data"]["color"], "green");

    // Live: the objects the app's status lists, as they are in the cluster.
    let secrets: Api<Secret> = ctx.api();
    apply_as_controller(&secrets, serde_yaml::from_str(SECRET)?, "web", ns).await?;
    let apps: Api<Application> = ctx.api();
    patch_app(&apps, "web", json!({"status": {"resources": [
        {"version": "v1", "kind": "Secret", "namespace": ns, "name": "web-secret", "status": "Synced"},
        {"version": "v1", "kind": "ConfigMap", "namespace": ns, "name": "web-config", "status": "OutOfSync"}
    ]}}))
    .await?;
    let live_text = ferry
        .ok(&["app", "manifests", "web", "--source", "live"])
        .await;
    let live = yaml_stream(&live_text);
    assert_eq!(live.len(), 1, "the ConfigMap is not live:\n{live_text}");
    assert_eq!(live[0]["kind"], "Secret");
    assert_eq!(live[0]["data"]["password"], "++++++++");
    assert!(live[0]["metadata"].get("managedFields").is_none());
    assert!(!live_text.contains("Z2l0LXBhc3N3b3JkLTEyMw"), "{live_text}");
    Ok(())
}

fn yaml_stream(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// argocd-cm's `kustomize.buildOptions` holds for `ferry app manifests` as for the controller:
/// a kustomization inflating a Helm chart renders only with `--enable-helm`.
#[tokio::test]
async fn manifests_render_with_argocd_cm_kustomize_build_options() -> Result<()> {
    let ctx = TestContext::new().await?;
    let ferry = Ferry::new(&ctx);
    let repo = app_repo()?;
    create_app(&ferry, "web", &repo, &[]).await;
    for (path, text) in [
        (
            "app/kustomization.yaml",
            "helmGlobals:\n  chartHome: charts\nhelmCharts:\n- name: greeter\n  releaseName: hello\n",
        ),
        (
            "app/charts/greeter/Chart.yaml",
            "apiVersion: v2\nname: greeter\nversion: 0.1.0\n",
        ),
        ("app/charts/greeter/values.yaml", "greeting: hi\n"),
        (
            "app/charts/greeter/templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeter\n",
        ),
    ] {
        repo.write(path, text)?;
    }
    repo.commit("kustomize with a helm chart")?;
    let err = ferry.fails(&["app", "manifests", "web"]).await;
    assert!(err.contains("enable-helm"), "{err}");

    let argocd_cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "argocd-cm"},
        "data": {"kustomize.buildOptions": "--enable-helm"},
    }))?;
    ctx.api::<ConfigMap>()
        .create(&kube::api::PostParams::default(), &argocd_cm)
        .await?;
    let manifests = ferry.ok(&["app", "manifests", "web"]).await;
    assert!(manifests.contains("name: hello-greeter"), "{manifests}");
    Ok(())
}

/// Apps in any namespace: `<namespace>/<name>` names an app outside the control namespace.
/// Core mode serves such apps only where argocd-cmd-params-cm's `application.namespaces`
/// allows, and creates one only for a project whose `sourceNamespaces` takes it, as the
/// controller would; then every verb takes the qualified name.
#[tokio::test]
async fn apps_in_other_namespaces_go_by_namespace_and_name() -> Result<()> {
    let ctx = TestContext::new().await?;
    let team = TestContext::new().await?;
    let ferry = Ferry::new(&ctx);
    let repo = app_repo()?;
    let qualified = format!("{}/web", team.namespace());
    ferry.allow_fixture_repos().await;
    let url = repo.file_url();
    let create = [
        "app",
        "create",
        &qualified,
        "--repo",
        &url,
        "--path",
        "app",
        "--dest-server",
        "https://kubernetes.default.svc",
        "--dest-namespace",
        team.namespace(),
    ];
    let team_apps: Api<Application> = team.api();

    let err = ferry.fails(&create).await;
    assert!(
        err.contains(&format!(
            "namespace '{}' is not permitted (not in argocd-cmd-params-cm's application.namespaces)",
            team.namespace()
        )),
        "{err}"
    );
    let params: Api<ConfigMap> = ctx.api();
    params
        .create(
            &Default::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "argocd-cmd-params-cm"},
                "data": {"application.namespaces": format!("other, {}", team.namespace())},
            }))?,
        )
        .await?;
    let err = ferry.fails(&create).await;
    assert!(
        err.contains(&format!(
            "application 'web' in namespace '{}' is not permitted to use project 'default'",
            team.namespace()
        )),
        "{err}"
    );
    assert!(team_apps.get_opt("web").await?.is_none());

    let projects: Api<AppProject> = ctx.api();
    projects
        .patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"sourceNamespaces": [team.namespace()]}})),
        )
        .await?;
    assert_eq!(
        ferry.ok(&create).await,
        format!("application '{qualified}' created\n")
    );
    let web = team_apps.get("web").await?;
    assert_eq!(web.spec.source.as_ref().unwrap().path, "app");

    let shown: Application = serde_json::from_str(
        &ferry
            .ok(&["app", "get", &qualified, "--output", "json"])
            .await,
    )?;
    assert_eq!(shown.metadata.namespace.as_deref(), Some(team.namespace()));
    let names = ferry.ok(&["app", "list", "--output", "name"]).await;
    assert!(names.lines().any(|l| l == qualified), "{names}");
    ferry
        .ok(&["app", "set", &qualified, "--revision", "main"])
        .await;
    let web = team_apps.get("web").await?;
    assert_eq!(web.spec.source.as_ref().unwrap().target_revision, "main");

    ferry.ok(&["app", "delete", &qualified, "--yes"]).await;
    release(&team_apps, "web").await?;
    assert!(team_apps.get_opt("web").await?.is_none());
    Ok(())
}
