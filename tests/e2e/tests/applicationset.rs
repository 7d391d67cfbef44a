//! ApplicationSets, told from a user's seat: a git-directories ApplicationSet makes one
//! Application per directory, which the application controller syncs; a new directory adds
//! one, a removed one deletes it under `create-delete` but not under `create-only`; a broken
//! generator, a template error or duplicate names are an ErrorOccurred condition that deletes
//! and changes nothing.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ferry_e2e::appset::AppSetController;
use ferry_e2e::{Story, TIMEOUT, is};
use ferry_types::ApplicationSet;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

/// A directory app: one ConfigMap named after the directory.
fn write_dir(story: &Story, dir: &str) -> Result<()> {
    let name = dir.rsplit('/').next().unwrap_or(dir);
    story.repo.write(
        &format!("{dir}/configmap.yaml"),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{name}\ndata:\n  dir: {dir}\n"
        ),
    )
}

/// An ApplicationSet over the directories matching `pattern`, generating `<basename>-<ns>`
/// apps (Go templates) that sync automatically into the story's namespace.
fn appset(story: &Story, name: &str, pattern: &str, policy: &str) -> Result<ApplicationSet> {
    let ns = story.namespace();
    Ok(serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": name},
        "spec": {
            "goTemplate": true,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [{"git": {
                "repoURL": story.repo.file_url(),
                "revision": "HEAD",
                "requeueAfterSeconds": 2,
                "directories": [{"path": pattern}, {"path": "apps/ignored", "exclude": true}],
            }}],
            "template": {
                "metadata": {
                    "name": format!("{{{{.path.basename}}}}-{ns}"),
                    "labels": {"dir": "{{.path.basename}}"},
                },
                "spec": {
                    "project": "default",
                    "source": {"repoURL": story.repo.file_url(), "targetRevision": "HEAD", "path": "{{.path.path}}"},
                    "destination": {"server": "https://kubernetes.default.svc", "namespace": ns},
                    "syncPolicy": {"automated": {"prune": true}},
                },
            },
            "syncPolicy": {"applicationsSync": policy},
        },
    }))?)
}

async fn app_names(story: &Story, appset: &str) -> Result<Vec<String>> {
    let mut names: Vec<_> = story
        .apps()
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter(|app| {
            app.metadata.deletion_timestamp.is_none()
                && app.owner_references().iter().any(|o| {
                    o.kind == "ApplicationSet" && o.name == appset && o.controller == Some(true)
                })
        })
        .map(|app| app.name_any())
        .collect();
    names.sort();
    Ok(names)
}

async fn wait_names(
    story: &Story,
    controller: &AppSetController,
    appset: &str,
    expected: &[String],
) -> Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let names = app_names(story, appset).await?;
        if names == expected {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "ApplicationSet {appset} owns {names:?}, not {expected:?}\n--- appset controller log:\n{}",
                controller.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn git_directories_make_one_app_each_and_follow_the_repository() -> Result<()> {
    let mut story = Story::new().await?;
    for dir in [
        "apps/alpha",
        "apps/beta",
        "apps/ignored",
        "kept/one",
        "kept/two",
    ] {
        write_dir(&story, dir)?;
    }
    story.repo.commit("directories")?;
    story.start_controller()?;
    let controller = AppSetController::start(&story)?;
    let ns = story.namespace().to_string();
    let app = |base: &str| format!("{base}-{ns}");
    let appsets: Api<ApplicationSet> = story.ctx.api();
    appsets
        .create(
            &PostParams::default(),
            &appset(&story, "apps", "apps/*", "create-delete")?,
        )
        .await?;
    appsets
        .create(
            &PostParams::default(),
            &appset(&story, "kept", "kept/*", "create-only")?,
        )
        .await?;

    // One Application per directory (apps/ignored excluded), owned by its ApplicationSet and
    // synced by the application controller.
    wait_names(&story, &controller, "apps", &[app("alpha"), app("beta")]).await?;
    wait_names(&story, &controller, "kept", &[app("one"), app("two")]).await?;
    let alpha = story
        .wait_app(&app("alpha"), "Synced and Healthy", is::synced_and_healthy)
        .await?;
    assert_eq!(alpha.labels()["dir"], "alpha");
    assert_eq!(alpha.spec.source.as_ref().unwrap().path, "apps/alpha");
    assert_eq!(
        alpha.finalizers(),
        ["resources-finalizer.argocd.argoproj.io"],
        "generated apps delete their resources with them"
    );
    let configmaps: Api<ConfigMap> = story.ctx.api();
    assert_eq!(
        configmaps.get("cm-alpha").await?.data.unwrap()["dir"],
        "apps/alpha"
    );
    story
        .wait_app(&app("one"), "Synced and Healthy", is::synced_and_healthy)
        .await?;

    // The status lists the generated Applications and says all is well.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let set = appsets.get("apps").await?;
        let status = set.status.clone().unwrap_or_default();
        let up_to_date = status
            .conditions
            .iter()
            .any(|c| c.type_ == "ResourcesUpToDate" && c.status == "True");
        let names: Vec<_> = status.resources.iter().map(|r| r.name.clone()).collect();
        if up_to_date && names == [app("alpha"), app("beta")] {
            break;
        }
        if Instant::now() > deadline {
            bail!("status of ApplicationSet apps: {status:?}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // A new directory in Git: a new Application, under either policy.
    write_dir(&story, "apps/gamma")?;
    write_dir(&story, "kept/three")?;
    story.repo.commit("gamma and three")?;
    wait_names(
        &story,
        &controller,
        "apps",
        &[app("alpha"), app("beta"), app("gamma")],
    )
    .await?;
    wait_names(
        &story,
        &controller,
        "kept",
        &[app("one"), app("three"), app("two")],
    )
    .await?;
    story
        .wait_app(&app("gamma"), "Synced and Healthy", is::synced_and_healthy)
        .await?;

    // A directory leaves Git: create-delete deletes its Application (and, through the
    // resources finalizer, its ConfigMap); create-only keeps it.
    story.repo.remove("apps/beta/configmap.yaml")?;
    story.repo.remove("kept/two/configmap.yaml")?;
    story.repo.commit("no beta, no two")?;
    wait_names(&story, &controller, "apps", &[app("alpha"), app("gamma")]).await?;
    story
        .eventually("beta's ConfigMap deleted with its app", || async {
            Ok(configmaps.get_opt("cm-beta").await?.is_none())
        })
        .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        app_names(&story, "kept").await?,
        [app("one"), app("three"), app("two")],
        "create-only never deletes"
    );

    // A generator that fails (a revision Git does not have) is an ErrorOccurred condition
    // naming the cause, and every Application stays.
    appsets
        .patch(
            "apps",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"generators": [{"git": {
                "repoURL": story.repo.file_url(),
                "revision": "no-such-branch",
                "requeueAfterSeconds": 2,
                "directories": [{"path": "apps/*"}],
            }}]}})),
        )
        .await?;
    let deadline = Instant::now() + TIMEOUT;
    let message = loop {
        let status = appsets.get("apps").await?.status.unwrap_or_default();
        if let Some(c) = status
            .conditions
            .iter()
            .find(|c| c.type_ == "ErrorOccurred" && c.status == "True")
        {
            break c.message.clone();
        }
        if Instant::now() > deadline {
            bail!(
                "no ErrorOccurred condition: {status:?}\n{}",
                controller.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(message.contains("no-such-branch"), "{message}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        app_names(&story, "apps").await?,
        [app("alpha"), app("gamma")]
    );
    assert!(configmaps.get_opt("cm-alpha").await?.is_some());

    // The generator fixed, but every directory named alike: duplicate names, nothing applied.
    let alpha_before = story.app(&app("alpha")).await?;
    appsets
        .patch(
            "apps",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {
                "generators": appset(&story, "apps", "apps/*", "create-delete")?.spec.generators,
                "template": {"metadata": {"name": format!("same-{ns}")}},
            }})),
        )
        .await?;
    let message = wait_error(&appsets, "apps", &controller, "duplicate name").await?;
    assert_eq!(
        message,
        format!("ApplicationSet apps contains applications with duplicate name: same-{ns}")
    );
    // A template naming a parameter no generator gives (missingkey=error).
    appsets
        .patch(
            "apps",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {
                "template": {"metadata": {"name": "{{.path.nosuchkey}}"}},
            }})),
        )
        .await?;
    let message = wait_error(&appsets, "apps", &controller, "nosuchkey").await?;
    assert!(message.contains("{{.path.nosuchkey}}"), "{message}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        app_names(&story, "apps").await?,
        [app("alpha"), app("gamma")],
        "nothing deleted or added"
    );
    assert_eq!(
        story.app(&app("alpha")).await?.spec,
        alpha_before.spec,
        "nothing changed"
    );
    assert!(configmaps.get_opt("cm-alpha").await?.is_some());
    Ok(())
}

/// Waits for the set's ErrorOccurred condition to be true with a message containing `needle`;
/// the message.
async fn wait_error(
    appsets: &Api<ApplicationSet>,
    name: &str,
    controller: &AppSetController,
    needle: &str,
) -> Result<String> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let status = appsets.get(name).await?.status.unwrap_or_default();
        if let Some(c) = status.conditions.iter().find(|c| {
            c.type_ == "ErrorOccurred" && c.status == "True" && c.message.contains(needle)
        }) {
            return Ok(c.message.clone());
        }
        if Instant::now() > deadline {
            bail!(
                "no ErrorOccurred condition naming {needle:?} on {name}: {:?}\n{}",
                status.conditions,
                controller.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// `ferry appset`: generate previews without creating, create (a dry run, then for real, and
/// upsert), list, get, and delete, which takes the generated Applications with it (without their
/// resources: `preserveResourcesOnDeletion`).
#[tokio::test]
async fn the_cli_previews_creates_shows_and_deletes_appsets() -> Result<()> {
    cli_story(false).await
}

/// The same through ferry's API server after `ferry login`.
#[tokio::test]
async fn the_cli_does_the_same_through_the_api_server() -> Result<()> {
    cli_story(true).await
}

async fn cli_story(through_server: bool) -> Result<()> {
    let story = Story::new().await?;
    let server = match through_server {
        true => Some(story.start_server().await?),
        false => None,
    };
    if let Some(server) = &server {
        let password =
            ferry_testkit::server::admin_password(&story.ctx.client(), story.namespace()).await?;
        story.ferry_with_env(
            &[
                "login",
                &server.address(),
                "--plaintext",
                "--username",
                "admin",
            ],
            &[("FERRY_PASSWORD", &password)],
        )?;
    }
    let ns = story.namespace().to_string();
    let manifest = |suffix: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: envs
spec:
  generators:
  - list:
      elements:
      - env: dev
      - env: prod
  template:
    metadata:
      name: '{{{{env}}}}-{ns}{suffix}'
    spec:
      project: default
      source: {{repoURL: '{repo}', targetRevision: HEAD, path: guestbook}}
      destination: {{server: 'https://kubernetes.default.svc', namespace: '{ns}'}}
  syncPolicy:
    preserveResourcesOnDeletion: true
",
            repo = story.repo.file_url()
        )
    };
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("appset.yaml");
    std::fs::write(&file, manifest(""))?;
    let file = file.to_str().context("path")?;

    let preview: Vec<serde_json::Value> =
        serde_json::from_str(&story.ferry(&["appset", "generate", file, "-o", "json"])?)?;
    let names: Vec<_> = preview
        .iter()
        .map(|a| a["metadata"]["name"].clone())
        .collect();
    assert_eq!(
        names,
        [json!(format!("dev-{ns}")), json!(format!("prod-{ns}"))]
    );
    let table = story.ferry(&["appset", "generate", file])?;
    assert!(
        table.starts_with("NAME") && table.contains(&format!("prod-{ns}")),
        "{table}"
    );
    assert!(
        story
            .apps()
            .list(&Default::default())
            .await?
            .items
            .is_empty(),
        "generate creates nothing"
    );

    let dry_run = story.ferry(&["appset", "create", file, "--dry-run"])?;
    assert!(
        dry_run.contains("(dry-run)") && dry_run.contains(&format!("prod-{ns}")),
        "{dry_run}"
    );
    let listed = story.ferry(&["appset", "list", "-o", "name"])?;
    assert!(listed.is_empty(), "a dry run creates nothing: {listed}");
    assert!(
        story
            .ferry(&["appset", "create", file])?
            .contains("ApplicationSet 'envs' created")
    );
    assert!(
        story
            .ferry(&["appset", "create", file])?
            .contains("unchanged")
    );
    std::fs::write(file, manifest("-v2"))?;
    let refused = story.ferry_output(&["appset", "create", file])?;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("use upsert flag"));

    // --wait returns once the controller has made the set's Applications. The controller starts
    // only once the update is written: ResourcesUpToDate (as in Argo CD) does not say which spec
    // it is about, so a controller already at work on the first spec could answer the wait.
    let waiting = story.ferry_spawn(&["appset", "create", file, "--upsert", "--wait"])?;
    let appsets: Api<ApplicationSet> = story.ctx.api();
    let expected = [format!("dev-{ns}-v2"), format!("prod-{ns}-v2")];
    let deadline = Instant::now() + TIMEOUT;
    while !serde_json::to_string(&appsets.get("envs").await?.spec)?.contains("-v2") {
        if Instant::now() > deadline {
            bail!("ferry appset create --upsert did not update the set");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let controller = AppSetController::start(&story)?;
    let waited = tokio::time::timeout(
        TIMEOUT,
        tokio::task::spawn_blocking(move || waiting.wait_with_output()),
    )
    .await
    .context("ferry appset create --wait did not return")???;
    assert!(waited.status.success(), "{waited:?}");
    assert!(String::from_utf8_lossy(&waited.stdout).contains("updated"));
    let conditions = appsets
        .get("envs")
        .await?
        .status
        .unwrap_or_default()
        .conditions;
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "ResourcesUpToDate" && c.status == "True"),
        "{conditions:?}"
    );
    assert_eq!(app_names(&story, "envs").await?, expected);
    wait_names(&story, &controller, "envs", &expected).await?;
    let dev = story.app(&expected[0]).await?;
    assert!(
        dev.finalizers().is_empty(),
        "preserveResourcesOnDeletion: no resources finalizer"
    );
    let list = story.ferry(&["appset", "list"])?;
    assert!(list.starts_with("NAME") && list.contains("envs"), "{list}");
    assert_eq!(story.ferry(&["appset", "list", "-o", "name"])?, "envs\n");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let shown = story.ferry(&["appset", "get", "envs"])?;
        let up_to_date = shown.lines().any(|line| {
            line.split_whitespace()
                .take(2)
                .eq(["ResourcesUpToDate", "True"])
        });
        if up_to_date && shown.contains("Health Status:  Healthy") {
            break;
        }
        if Instant::now() > deadline {
            bail!("ferry appset get envs:\n{shown}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Deleting the set deletes its Applications (Kubernetes' garbage collector, through the
    // owner references).
    assert!(
        story
            .ferry(&["appset", "delete", "envs", "--yes", "--wait"])?
            .contains("'envs' deleted")
    );
    assert!(
        appsets.get_opt("envs").await?.is_none(),
        "--wait returns once the set is gone"
    );
    story
        .eventually("the generated Applications deleted", || async {
            Ok(app_names(&story, "envs").await?.is_empty()
                && story
                    .apps()
                    .list(&Default::default())
                    .await?
                    .items
                    .is_empty())
        })
        .await?;
    Ok(())
}

/// A cluster Secret as `ferry cluster add` writes it, labelled `env`.
fn cluster_secret(name: &str, env: &str) -> Result<k8s_openapi::api::core::v1::Secret> {
    Ok(serde_json::from_value(json!({
        "metadata": {
            "name": format!("cluster-{name}"),
            "labels": {"argocd.argoproj.io/secret-type": "cluster", "env": env},
        },
        "stringData": {"name": name, "server": format!("https://{name}.example:6443"), "config": "{}"},
    }))?)
}

/// A matrix of the cluster Secrets labelled `env: staging` × the Git directories: one
/// Application per pair, and one more cluster Secret adds a row at once.
#[tokio::test]
async fn a_matrix_of_clusters_and_directories() -> Result<()> {
    let story = Story::new().await?;
    for dir in ["apps/web", "apps/db"] {
        write_dir(&story, dir)?;
    }
    story.repo.commit("two apps")?;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = story.ctx.api();
    for (name, env) in [
        ("east", "staging"),
        ("west", "staging"),
        ("prod", "production"),
    ] {
        secrets
            .create(&PostParams::default(), &cluster_secret(name, env)?)
            .await?;
    }
    let controller = AppSetController::start(&story)?;
    let ns = story.namespace().to_string();
    let appset: ApplicationSet = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": "matrix"},
        "spec": {
            "generators": [{"matrix": {"generators": [
                {"clusters": {"selector": {"matchLabels": {"env": "staging"}}}},
                {"git": {
                    "repoURL": story.repo.file_url(),
                    "revision": "HEAD",
                    "directories": [{"path": "apps/*"}],
                }},
            ]}}],
            "template": {
                "metadata": {"name": format!("{{{{name}}}}-{{{{path.basename}}}}-{ns}")},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": story.repo.file_url(), "targetRevision": "HEAD", "path": "{{path}}"},
                    "destination": {"server": "{{server}}", "namespace": "{{metadata.labels.env}}"},
                },
            },
        },
    }))?;
    let appsets: Api<ApplicationSet> = story.ctx.api();
    appsets.create(&PostParams::default(), &appset).await?;
    let names = |pairs: &[&str]| -> Vec<String> {
        let mut names: Vec<_> = pairs.iter().map(|p| format!("{p}-{ns}")).collect();
        names.sort();
        names
    };
    wait_names(
        &story,
        &controller,
        "matrix",
        &names(&["east-db", "east-web", "west-db", "west-web"]),
    )
    .await?;
    let east_web = story.app(&format!("east-web-{ns}")).await?;
    assert_eq!(
        east_web.spec.destination.server,
        "https://east.example:6443"
    );
    assert_eq!(east_web.spec.destination.namespace, "staging");
    assert_eq!(east_web.spec.source.as_ref().unwrap().path, "apps/web");

    secrets
        .create(&PostParams::default(), &cluster_secret("north", "staging")?)
        .await?;
    wait_names(
        &story,
        &controller,
        "matrix",
        &names(&[
            "east-db",
            "east-web",
            "north-db",
            "north-web",
            "west-db",
            "west-web",
        ]),
    )
    .await?;
    Ok(())
}

/// Progressive syncs (`--enable-progressive-syncs`): a RollingSync strategy of two steps, `dev`
/// then `prod`. The generated Applications lose automated sync; the ApplicationSet controller
/// syncs `dev` first and `prod` only once `dev` is Healthy, `status.applicationStatus` says
/// where each one is and the RolloutProgressing condition when it is done. With
/// `deletionOrder: Reverse`, deleting the set deletes `prod` first and `dev` only once `prod` is
/// gone; the set goes last.
#[tokio::test]
async fn a_rolling_sync_syncs_step_by_step() -> Result<()> {
    let mut story = Story::new().await?;
    for dir in ["apps/dev", "apps/prod"] {
        write_dir(&story, dir)?;
    }
    story.repo.commit("two environments")?;
    story.start_controller()?;
    let kubeconfig = story.ctx.kubeconfig().to_path_buf();
    let controller =
        AppSetController::start_as(&story, &kubeconfig, &["--enable-progressive-syncs"])?;
    let ns = story.namespace().to_string();
    let mut set = serde_json::to_value(appset(&story, "rollout", "apps/*", "sync")?)?;
    set["spec"]["strategy"] = json!({"type": "RollingSync", "deletionOrder": "Reverse", "rollingSync": {"steps": [
        {"matchExpressions": [{"key": "dir", "operator": "In", "values": ["dev"]}]},
        {"matchExpressions": [{"key": "dir", "operator": "In", "values": ["prod"]}], "maxUpdate": 1},
    ]}});
    let appsets: Api<ApplicationSet> = story.ctx.api();
    appsets
        .create(&PostParams::default(), &serde_json::from_value(set)?)
        .await?;

    let (dev, prod) = (format!("dev-{ns}"), format!("prod-{ns}"));
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let status = appsets.get("rollout").await?.status.unwrap_or_default();
        let state = |name: &str| {
            status
                .application_status
                .iter()
                .find(|s| s.application == name)
                .map(|s| (s.status.clone(), s.step.clone()))
        };
        if let Some((prod_state, _)) = state(&prod)
            && prod_state != "Waiting"
        {
            assert_eq!(
                state(&dev).map(|s| s.0).as_deref(),
                Some("Healthy"),
                "prod moved on before dev was Healthy: {:?}",
                status.application_status
            );
        }
        if state(&dev) == Some(("Healthy".into(), "1".into()))
            && state(&prod) == Some(("Healthy".into(), "2".into()))
        {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "the rollout did not finish: {:?}\n{}",
                status.application_status,
                controller.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for name in [&dev, &prod] {
        let app = story.app(name).await?;
        let automated = app
            .spec
            .sync_policy
            .as_ref()
            .and_then(|p| p.automated.as_ref());
        assert_eq!(automated.and_then(|a| a.enabled), Some(false), "{name}");
        let synced = story
            .wait_app(name, "Synced and Healthy", is::synced_and_healthy)
            .await?;
        let started_by = synced
            .status
            .as_ref()
            .and_then(|s| s.operation_state.as_ref())
            .map(|s| s.operation.initiated_by.username.clone());
        assert_eq!(started_by.as_deref(), Some("applicationset-controller"));
    }
    let condition = |set: &ApplicationSet, type_: &str| {
        set.status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_).cloned())
            .map(|c| (c.status, c.reason, c.message))
    };
    let deadline = Instant::now() + TIMEOUT;
    let set = loop {
        let set = appsets.get("rollout").await?;
        if condition(&set, "RolloutProgressing").is_some_and(|c| c.0 == "False") {
            break set;
        }
        if Instant::now() > deadline {
            bail!("rollout not complete: {:?}", set.status);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        condition(&set, "RolloutProgressing"),
        Some((
            "False".into(),
            "ApplicationSetRolloutComplete".into(),
            "ApplicationSet Rollout has completed".into()
        ))
    );
    assert_eq!(
        condition(&set, "InvalidRolloutConfig"),
        Some((
            "False".into(),
            "ApplicationSetValidRolloutConfig".into(),
            "Rolling Sync Configured correctly".into()
        ))
    );
    assert_eq!(
        set.finalizers(),
        ["resources-finalizer.argocd.argoproj.io"],
        "a reverse deletion keeps the set until its Applications are gone"
    );

    // Deleting the set: prod (step 2) goes first, dev only once prod is gone, the set last.
    appsets.delete("rollout", &Default::default()).await?;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let apps: Api<ferry_types::Application> = story.ctx.api();
        let state = |app: Option<ferry_types::Application>| match app {
            None => "gone",
            Some(app) if app.metadata.deletion_timestamp.is_some() => "deleting",
            Some(_) => "present",
        };
        let dev_state = state(apps.get_opt(&dev).await?);
        let prod_state = state(apps.get_opt(&prod).await?);
        let set_left = appsets.get_opt("rollout").await?.is_some();
        if dev_state != "present" {
            assert_eq!(prod_state, "gone", "dev deleted before prod was gone");
        }
        if set_left {
            assert!(
                dev_state != "gone" || prod_state == "gone",
                "{dev_state} {prod_state}"
            );
        } else {
            assert_eq!(
                (dev_state, prod_state),
                ("gone", "gone"),
                "the set went first"
            );
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "reverse deletion did not finish: dev {dev_state}, prod {prod_state}\n{}",
                controller.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// ApplicationSets in another namespace (`--applicationset-namespaces`, here a regular
/// expression) make their Applications there; projects still come from the control namespace and
/// must list that namespace in `sourceNamespaces`, or the Applications are not created and the set
/// says why. Sets in namespaces not listed are left alone. The SCM generators must be off (or
/// limited to listed providers) for that. The admin's `--policy create-update` overrides the
/// sets' own `sync`: an element removed keeps its Application.
#[tokio::test]
async fn appsets_in_other_namespaces_under_the_admins_policy() -> Result<()> {
    let story = Story::new().await?;
    let team = ferry_testkit::kube::TestContext::new().await?;
    let outsider = ferry_testkit::kube::TestContext::new().await?;
    let (ns, team_ns) = (story.namespace().to_string(), team.namespace().to_string());
    let projects: Api<ferry_types::AppProject> = story.ctx.api();
    for (name, source_namespaces) in [("team", json!([team_ns])), ("locked", json!([]))] {
        let project = json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
            "metadata": {"name": name},
            "spec": {
                "sourceRepos": ["*"],
                "destinations": [{"server": "*", "namespace": "*"}],
                "sourceNamespaces": source_namespaces,
            },
        });
        projects
            .create(&PostParams::default(), &serde_json::from_value(project)?)
            .await?;
    }
    let allowed = format!("/^{team_ns}$/");
    // SCM generators open to other namespaces could send a Secret's token anywhere: refused
    // unless they are off or limited to listed providers.
    let refused = std::process::Command::new(ferry_testkit::server::workspace_binary(
        "ferry-appset-controller",
    )?)
    .args(["--applicationset-namespaces", &allowed])
    .output()?;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--allowed-scm-providers"),
        "{refused:?}"
    );
    let kubeconfig = story.ctx.kubeconfig().to_path_buf();
    let controller = AppSetController::start_as(
        &story,
        &kubeconfig,
        &[
            "--enable-scm-providers",
            "false",
            "--applicationset-namespaces",
            &allowed,
            "--policy",
            "create-update",
        ],
    )?;
    let list_set = |name: &str,
                    project: &str,
                    envs: &[&str],
                    label: &str|
     -> Result<ApplicationSet> {
        let elements: Vec<_> = envs.iter().map(|e| json!({"env": e})).collect();
        Ok(serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
            "metadata": {"name": name},
            "spec": {
                "generators": [{"list": {"elements": elements}}],
                "template": {
                    "metadata": {"name": format!("{{{{env}}}}-{name}"), "labels": {"rev": label}},
                    "spec": {
                        "project": project,
                        "source": {"repoURL": story.repo.file_url(), "targetRevision": "HEAD", "path": "apps"},
                        "destination": {"server": "https://kubernetes.default.svc", "namespace": ns},
                    },
                },
                "syncPolicy": {"applicationsSync": "sync"},
            },
        }))?)
    };
    let team_sets: Api<ApplicationSet> = team.api();
    let outsider_sets: Api<ApplicationSet> = outsider.api();
    team_sets
        .create(
            &PostParams::default(),
            &list_set("web", "team", &["dev", "prod"], "1")?,
        )
        .await?;
    team_sets
        .create(
            &PostParams::default(),
            &list_set("sneaky", "locked", &["dev"], "1")?,
        )
        .await?;
    outsider_sets
        .create(
            &PostParams::default(),
            &list_set("web", "team", &["dev"], "1")?,
        )
        .await?;

    let team_apps: Api<ferry_types::Application> = team.api();
    let owned_by = |set: &'static str| {
        let team_apps = team_apps.clone();
        async move {
            let mut names: Vec<_> = team_apps
                .list(&Default::default())
                .await?
                .items
                .into_iter()
                .filter(|a| a.owner_references().iter().any(|o| o.name == set))
                .map(|a| a.name_any())
                .collect();
            names.sort();
            anyhow::Ok(names)
        }
    };
    story
        .eventually("web's Applications in the team namespace", || async {
            Ok(owned_by("web").await? == ["dev-web", "prod-web"])
        })
        .await?;
    let message = wait_error(&team_sets, "sneaky", &controller, "sourceNamespaces").await?;
    assert_eq!(
        message,
        format!(
            "application references project locked whose sourceNamespaces do not permit namespace {team_ns}"
        )
    );
    assert!(owned_by("sneaky").await?.is_empty());
    assert!(
        story
            .apps()
            .list(&Default::default())
            .await?
            .items
            .is_empty(),
        "nothing in the control namespace"
    );

    // create-update, whatever the set says: prod's element removed, its Application stays; the
    // label change reaches dev's.
    // Read-change-write, tried again when the controller's status write came between.
    let spec = list_set("web", "team", &["dev"], "2")?.spec;
    ferry_runtime::update(&team_sets, "web", |set: &mut ApplicationSet| {
        set.spec = spec.clone();
        Ok::<_, std::convert::Infallible>(())
    })
    .await
    .map_err(|err| anyhow::anyhow!("updating the ApplicationSet web: {err:?}"))?;
    story
        .eventually("dev-web relabelled", || async {
            Ok(team_apps
                .get("dev-web")
                .await?
                .labels()
                .get("rev")
                .map(String::as_str)
                == Some("2"))
        })
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        owned_by("web").await?,
        ["dev-web", "prod-web"],
        "create-update keeps prod-web"
    );

    // The namespace not listed: untouched.
    let ignored = outsider_sets.get("web").await?;
    assert!(ignored.status.is_none(), "{:?}", ignored.status);
    let outsider_apps: Api<ferry_types::Application> = outsider.api();
    assert!(
        outsider_apps
            .list(&Default::default())
            .await?
            .items
            .is_empty()
    );
    Ok(())
}
