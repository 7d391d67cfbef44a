//! deploy/ and the chart on the sandbox: the API server's validation, a Helm release's life,
//! the API server with the rights the chart gives it, and ferry managing its own installation.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result};
use ferry_e2e::appset::AppSetController;
use ferry_e2e::helm::{Release, adopt_crds, eventually};
use ferry_e2e::{Story, is};
use ferry_testkit::kube::TestContext;
use ferry_testkit::server::admin_password;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::config::Kubeconfig;
use reqwest::Method;
use serde_json::{Value, json};

use crate::tools::{Tools, args, objects, repo_root};

/// What `kubectl apply --dry-run=server` says of the objects in `yaml`, in `namespace`.
fn server_dry_run(tools: &Tools, kubeconfig: &Path, namespace: &str, yaml: &str) -> Result<String> {
    let file = tools.write("objects.yaml", yaml)?;
    tools.run(
        "kubectl",
        &[
            "--kubeconfig",
            &kubeconfig.to_string_lossy(),
            "apply",
            "--dry-run=server",
            "--namespace",
            namespace,
            "--filename",
            &file,
        ],
    )
}

#[tokio::test]
async fn both_installs_pass_the_api_servers_validation() -> Result<()> {
    let ctx = TestContext::new().await?;
    ferry_runtime::install_crds(&ctx.client(), "ferry-e2e").await?;
    let tools = Tools::new()?;

    let kustomized = tools.kustomize_overlay(&format!("namespace: {}\n", ctx.namespace()))?;
    let applied = server_dry_run(&tools, ctx.kubeconfig(), ctx.namespace(), &kustomized)?;
    let expected = objects(&kustomized)?.len();
    assert_eq!(applied.lines().count(), expected, "{applied}");
    assert!(
        applied.contains("statefulset.apps/ferry-application-controller"),
        "{applied}"
    );

    let charted = tools.helm_template("ferry", ctx.namespace(), "")?;
    let applied = server_dry_run(&tools, ctx.kubeconfig(), ctx.namespace(), &charted)?;
    assert_eq!(
        applied.lines().count(),
        objects(&charted)?.len(),
        "{applied}"
    );
    assert!(
        applied.contains("deployment.apps/ferry-server"),
        "{applied}"
    );
    Ok(())
}

#[tokio::test]
async fn a_helm_release_upgrades_and_uninstalls_keeping_the_applications() -> Result<()> {
    let ctx = TestContext::new().await?;
    let client = ctx.client();
    let namespace = ctx.namespace();
    ferry_runtime::install_crds(&client, "ferry-e2e").await?;
    let mut release = Release::new(ctx.kubeconfig(), ctx.namespace())?;
    adopt_crds(&client, &release.name, namespace).await?;
    release.install(&[])?;
    let deployments: Api<Deployment> = ctx.api();
    let server_name = format!("{}-server", release.name);
    let pods: Api<Pod> = ctx.api();
    let selector = format!("app.kubernetes.io/instance={}", release.name);
    eventually(
        "a pod of each component: server, controllers of Applications and ApplicationSets, \
         image updater",
        || async {
            let listed = pods.list(&ListParams::default().labels(&selector)).await?;
            let components: BTreeSet<_> = listed
                .items
                .iter()
                .filter_map(|pod| {
                    pod.metadata
                        .labels
                        .as_ref()?
                        .get("app.kubernetes.io/component")
                        .cloned()
                })
                .collect();
            let all = [
                "application-controller",
                "applicationset-controller",
                "image-updater",
                "server",
            ];
            Ok((components.iter().map(String::as_str).eq(all)).then_some(()))
        },
    )
    .await?;

    // What the running API server would add to argocd-secret on its first start.
    let secrets: Api<Secret> = ctx.api();
    secrets
        .patch(
            "argocd-secret",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"server.secretkey": "generated"}})),
        )
        .await?;
    let app: ferry_types::Application = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "guestbook", "namespace": namespace},
        "spec": {
            "project": "default",
            "source": {"repoURL": "https://git.example/apps.git", "path": "guestbook"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
        },
    }))?;
    let apps: Api<ferry_types::Application> = ctx.api();
    let created = apps.create(&PostParams::default(), &app).await?;

    let before = deployments.get(&server_name).await?;
    release.upgrade(&["--set", "global.logging.format=json"])?;
    let after = deployments.get(&server_name).await?;
    assert!(args(&serde_json::to_value(&after)?).contains(&"--log-json"));
    assert!(after.metadata.generation > before.metadata.generation);
    let replica_sets: Api<ReplicaSet> = ctx.api();
    eventually("the upgrade's ReplicaSet", || async {
        let listed = replica_sets
            .list(&ListParams::default().labels(&selector))
            .await?;
        Ok(listed
            .items
            .iter()
            .any(|set| {
                set.spec
                    .as_ref()
                    .and_then(|spec| spec.template.as_ref()?.spec.as_ref())
                    .is_some_and(|pod| {
                        pod.containers[0]
                            .args
                            .iter()
                            .flatten()
                            .any(|arg| arg == "--log-json")
                    })
            })
            .then_some(()))
    })
    .await?;
    let secret = secrets.get("argocd-secret").await?;
    assert!(
        secret
            .data
            .unwrap_or_default()
            .contains_key("server.secretkey"),
        "the upgrade keeps what the server generated"
    );
    assert_eq!(
        apps.get("guestbook").await?.metadata.uid,
        created.metadata.uid
    );

    release.uninstall()?;
    assert!(deployments.get_opt(&server_name).await?.is_none());
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in ferry_types::crds()? {
        let name = crd.metadata.name.unwrap_or_default();
        assert!(crds.get_opt(&name).await?.is_some(), "{name} is kept");
    }
    assert_eq!(
        apps.get("guestbook").await?.metadata.uid,
        created.metadata.uid
    );
    Ok(())
}

/// A kubeconfig for the cluster of `ctx` that authenticates as ServiceAccount `name` of its
/// namespace, with a token from the TokenRequest API.
async fn service_account_kubeconfig(ctx: &TestContext, name: &str, path: &Path) -> Result<()> {
    let accounts: Api<ServiceAccount> = ctx.api();
    let request: TokenRequest = serde_json::from_value(json!({"spec": {"audiences": []}}))?;
    let token = accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .with_context(|| format!("a token of ServiceAccount {name}"))?
        .status
        .context("TokenRequest without status")?
        .token;
    let mut kubeconfig = Kubeconfig::read_from(ctx.kubeconfig())?;
    for user in &mut kubeconfig.auth_infos {
        user.auth_info = Some(serde_json::from_value(json!({"token": token}))?);
    }
    std::fs::write(path, serde_yaml::to_string(&kubeconfig)?)?;
    Ok(())
}

/// An admin session on the API server at `base`.
struct Session {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Session {
    async fn login(story: &Story, base: String) -> Result<Self> {
        let password = admin_password(&story.ctx.client(), story.namespace()).await?;
        let http = reqwest::Client::new();
        let mut session = Self {
            http,
            base,
            token: String::new(),
        };
        let login = session
            .call(
                Method::POST,
                "/api/v1/session",
                Some(json!({"username": "admin", "password": password})),
            )
            .await?;
        session.token = login["token"].as_str().context("no token")?.to_string();
        Ok(session)
    }

    /// A call that must succeed; its JSON answer.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "{method} {path}: {status} {body}");
        Ok(body)
    }
}

/// The API server run as the ServiceAccount the chart makes for it, with the Role and
/// ClusterRole the chart grants: the first start (argocd-secret, the default project), a login,
/// an app created and synced through the API, the controller's views of it, a live Deployment
/// read, patched and deleted, the app's audit Events and a logout all work with those rights.
#[tokio::test]
async fn the_api_server_works_with_the_rights_the_chart_gives_it() -> Result<()> {
    let mut story = Story::new().await?;
    let namespace = story.namespace().to_string();
    let mut release = Release::new(story.ctx.kubeconfig(), story.namespace())?;
    release.install(&["--set", "crds.install=false"])?;
    let kubeconfig = release.scratch("server-kubeconfig");
    let account = format!("{}-server", release.name);
    service_account_kubeconfig(&story.ctx, &account, &kubeconfig).await?;

    story.start_controller()?;
    let server = story.start_server_as(&kubeconfig).await?;
    let api = Session::login(&story, format!("http://{}", server.address())).await?;
    let app = story.app_name("guestbook");
    api.call(
        Method::POST,
        "/api/v1/applications",
        Some(json!({
            "metadata": {"name": app},
            "spec": {
                "project": "default",
                "source": {"repoURL": story.repo.file_url(), "path": "guestbook"},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
            },
        })),
    )
    .await?;
    api.call(
        Method::POST,
        &format!("/api/v1/applications/{app}/sync"),
        Some(json!({})),
    )
    .await?;
    story
        .wait_app(&app, "Synced and Healthy", is::synced_and_healthy)
        .await?;

    let tree = api
        .call(
            Method::GET,
            &format!("/api/v1/applications/{app}/resource-tree"),
            None,
        )
        .await?;
    assert!(
        tree["nodes"]
            .as_array()
            .is_some_and(|nodes| !nodes.is_empty()),
        "{tree}"
    );
    // A Deployment: no Role of the namespace covers it, only the server's ClusterRole.
    let resource = format!(
        "/api/v1/applications/{app}/resource?namespace={namespace}&resourceName=guestbook&group=apps&version=v1&kind=Deployment"
    );
    let live = api.call(Method::GET, &resource, None).await?;
    assert!(
        live.to_string().contains("registry.example/guestbook"),
        "{live}"
    );
    api.call(
        Method::POST,
        &format!("{resource}&patchType=application/merge-patch%2Bjson"),
        Some(json!(r#"{"metadata": {"labels": {"patched": "yes"}}}"#)),
    )
    .await?;
    let deployments: Api<Deployment> = story.ctx.api();
    let patched = deployments.get("guestbook").await?;
    assert_eq!(
        patched
            .metadata
            .labels
            .unwrap_or_default()
            .get("patched")
            .map(String::as_str),
        Some("yes")
    );
    api.call(Method::DELETE, &resource, None).await?;
    let events = api
        .call(
            Method::GET,
            &format!("/api/v1/applications/{app}/events"),
            None,
        )
        .await?;
    assert!(
        events.to_string().contains("admin"),
        "audit events name the caller: {events}"
    );
    // ApplicationSets: a preview, a create and a delete.
    let appset = json!({
        "metadata": {"name": "envs"},
        "spec": {
            "generators": [{"list": {"elements": [{"env": "dev"}]}}],
            "template": {
                "metadata": {"name": "{{env}}-envs"},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": story.repo.file_url(), "path": "guestbook"},
                    "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
                },
            },
        },
    });
    let generated = api
        .call(
            Method::POST,
            "/api/v1/applicationsets/generate",
            Some(json!({"applicationSet": appset})),
        )
        .await?;
    assert_eq!(generated["applications"][0]["metadata"]["name"], "dev-envs");
    api.call(Method::POST, "/api/v1/applicationsets", Some(appset))
        .await?;
    let listed = api
        .call(Method::GET, "/api/v1/applicationsets", None)
        .await?;
    assert_eq!(listed["items"][0]["metadata"]["name"], "envs");
    api.call(Method::DELETE, "/api/v1/applicationsets/envs", None)
        .await?;
    api.call(Method::DELETE, "/api/v1/session", None).await?;

    let log = server.stop().await?;
    assert!(!log.to_lowercase().contains("forbidden"), "{log}");
    Ok(())
}

/// The ApplicationSet controller run as the ServiceAccount the chart makes for it, with the
/// Role the chart grants and the flags the chart gives two replicas: one leads (the Lease), it
/// generates an Application and writes the ApplicationSet's status; SIGKILLed, the standby takes
/// the Lease and generates the Application of a new element.
#[tokio::test]
async fn the_applicationset_controller_works_with_the_rights_the_chart_gives_it() -> Result<()> {
    let story = Story::new().await?;
    let mut release = Release::new(story.ctx.kubeconfig(), story.namespace())?;
    release.install(&[
        "--set",
        "crds.install=false",
        "--set",
        "applicationSet.replicas=2",
    ])?;
    let account = format!("{}-applicationset-controller", release.name);
    let deployments: Api<Deployment> = story.ctx.api();
    let deployment = serde_json::to_value(deployments.get(&account).await?)?;
    let mut flags: Vec<&str> = args(&deployment);
    assert_eq!(flags, ["--enable-leader-election"]);
    let kubeconfig = release.scratch("appset-kubeconfig");
    service_account_kubeconfig(&story.ctx, &account, &kubeconfig).await?;

    let leases: Api<Lease> = story.ctx.api();
    let holder = || async {
        let lease = leases.get_opt("ferry-applicationset-controller").await?;
        anyhow::Ok(lease.and_then(|l| l.spec?.holder_identity))
    };
    flags.extend(["--leader-elect-identity", "replica-a"]);
    let mut first = AppSetController::start_as(&story, &kubeconfig, &flags)?;
    eventually("replica-a leading", || async {
        Ok((holder().await?.as_deref() == Some("replica-a")).then_some(()))
    })
    .await?;
    flags.truncate(1);
    flags.extend(["--leader-elect-identity", "replica-b"]);
    let second = AppSetController::start_as(&story, &kubeconfig, &flags)?;

    let app = |element: &str| story.app_name(element);
    let appset = |elements: &[&str]| {
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "ApplicationSet",
            "metadata": {"name": "elements"},
            "spec": {
                "generators": [{"list": {"elements": elements.iter().map(|e| json!({"name": app(e)})).collect::<Vec<_>>()}}],
                "template": {
                    "metadata": {"name": "{{name}}"},
                    "spec": {
                        "project": "default",
                        "source": {"repoURL": story.repo.file_url(), "path": "guestbook"},
                        "destination": {"server": "https://kubernetes.default.svc", "namespace": story.namespace()},
                    },
                },
            },
        })
    };
    let appsets: Api<ferry_types::ApplicationSet> = story.ctx.api();
    appsets
        .create(
            &PostParams::default(),
            &serde_json::from_value(appset(&["one"]))?,
        )
        .await?;
    let apps: Api<ferry_types::Application> = story.ctx.api();
    eventually("the first element's Application and the status", || async {
        let status = appsets.get("elements").await?.status.unwrap_or_default();
        let up_to_date = status
            .conditions
            .iter()
            .any(|c| c.type_ == "ResourcesUpToDate" && c.status == "True");
        let created = apps.get_opt(&app("one")).await?.is_some();
        Ok((up_to_date && created && status.resources.len() == 1).then_some(()))
    })
    .await?;

    // An Event on the set for the Application it created.
    let events: Api<k8s_openapi::api::core::v1::Event> = story.ctx.api();
    let created = format!("Created Application {:?}", app("one"));
    eventually("the Created Event", || async {
        let listed = events
            .list(&ListParams::default().fields("involvedObject.name=elements"))
            .await?;
        Ok(listed
            .items
            .iter()
            .any(|e| e.message.as_deref() == Some(created.as_str()))
            .then_some(()))
    })
    .await?;
    // A destination no cluster has: nothing created, the condition says why.
    let mut unknown = appset(&["three"]);
    unknown["metadata"]["name"] = "unknown-destination".into();
    unknown["spec"]["template"]["spec"]["destination"]["server"] = "https://gone.example".into();
    appsets
        .create(&PostParams::default(), &serde_json::from_value(unknown)?)
        .await?;
    eventually("the unknown destination's condition", || async {
        let status = appsets
            .get("unknown-destination")
            .await?
            .status
            .unwrap_or_default();
        Ok(status
            .conditions
            .iter()
            .any(|c| {
                c.type_ == "ErrorOccurred"
                    && c.status == "True"
                    && c.message
                        .contains("there are no clusters with this URL: https://gone.example")
            })
            .then_some(()))
    })
    .await?;
    assert!(apps.get_opt(&app("three")).await?.is_none());

    first.kill()?;
    appsets
        .patch(
            "elements",
            &PatchParams::default(),
            &Patch::Merge(appset(&["one", "two"])),
        )
        .await?;
    eventually(
        "replica-b leading and the new element's Application",
        || async {
            let leading = holder().await?.as_deref() == Some("replica-b");
            Ok((leading && apps.get_opt(&app("two")).await?.is_some()).then_some(()))
        },
    )
    .await?;
    for log in [first.log(), second.log()] {
        assert!(!log.to_lowercase().contains("forbidden"), "{log}");
    }
    Ok(())
}

/// Deletes the ClusterRoles and ClusterRoleBindings of release `instance` when dropped: they
/// outlive the test's namespace.
struct ClusterRbacCleanup {
    tools: Tools,
    kubeconfig: String,
    instance: String,
}

impl Drop for ClusterRbacCleanup {
    fn drop(&mut self) {
        let selector = format!("app.kubernetes.io/instance={}", self.instance);
        let args = [
            "--kubeconfig",
            &self.kubeconfig,
            "delete",
            "clusterrole,clusterrolebinding",
            "--selector",
            &selector,
            "--ignore-not-found",
        ];
        if let Err(err) = self.tools.run("kubectl", &args) {
            eprintln!("warning: {err:#}");
        }
    }
}

/// Writes the directory `from` of this repository into `repo` at `to`.
fn copy_into_repo(repo: &ferry_testkit::git::GitRepo, from: &Path, to: &str) -> Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = format!("{to}/{}", entry.file_name().to_string_lossy());
        if entry.file_type()?.is_dir() {
            copy_into_repo(repo, &entry.path(), &target)?;
        } else {
            repo.write(&target, std::fs::read(entry.path())?)?;
        }
    }
    Ok(())
}

/// ferry managing its own installation: an Application of the chart, from Git, syncs all of it
/// (ClusterRoles, the StatefulSet, the settings) and is Healthy; a value changed in Git rolls
/// the API server's Deployment; deleting the app deletes what it installed.
#[tokio::test]
async fn ferry_manages_its_own_installation_through_an_application() -> Result<()> {
    let mut story = Story::new().await?;
    let namespace = story.namespace().to_string();
    let app = story.app_name("ferry");
    let _cleanup = ClusterRbacCleanup {
        tools: Tools::new()?,
        kubeconfig: story.ctx.kubeconfig().to_string_lossy().into_owned(),
        instance: app.clone(),
    };
    copy_into_repo(&story.repo, &repo_root().join("charts/ferry"), "ferry")?;
    let first = story.repo.commit("ferry's chart")?;
    story.start_controller()?;
    // The CRDs stay out: they are the sandbox's, shared with every other test.
    story.create_app(
        &app,
        "ferry",
        &[
            "--helm-set",
            "crds.install=false",
            "--sync-policy",
            "automated",
            "--auto-prune",
        ],
    )?;
    story
        .wait_app(&app, "Synced and Healthy", |a| {
            is::synced_and_healthy(a) && is::at_revision(&first)(a) && is::operation_finished(a)
        })
        .await?;
    // The release is the app: its name holds the chart's, so it is the objects' base name.
    let server = format!("{app}-server");
    let deployments: Api<Deployment> = story.ctx.api();
    assert_eq!(
        deployments.get(&server).await?.spec.unwrap().replicas,
        Some(1)
    );
    let cluster_roles: Api<ClusterRole> = Api::all(story.ctx.client());
    assert!(cluster_roles.get_opt(&server).await?.is_some());

    let values = std::fs::read_to_string(story.repo.work_path().join("ferry/values.yaml"))?;
    let scaled = values.replacen("  replicas: 1\n", "  replicas: 2\n", 2);
    story.repo.write("ferry/values.yaml", scaled)?;
    let second = story.repo.commit("two controllers and two API servers")?;
    story
        .wait_app(&app, "Synced at the second commit", |a| {
            is::synced(a) && is::at_revision(&second)(a) && is::operation_finished(a)
        })
        .await?;
    assert_eq!(
        deployments.get(&server).await?.spec.unwrap().replicas,
        Some(2)
    );

    story.ferry(&["app", "delete", &app, "--yes", "--wait"])?;
    assert!(deployments.get_opt(&server).await?.is_none());
    assert!(cluster_roles.get_opt(&server).await?.is_none());
    assert!(
        Api::<Secret>::namespaced(story.ctx.client(), &namespace)
            .get_opt("argocd-secret")
            .await?
            .is_none()
    );
    Ok(())
}

/// The workflow controller run as the ServiceAccount the chart makes for it (workflows.enabled),
/// with the ClusterRole the chart grants and the chart's flags (limited to the test's namespace,
/// as the sandbox is shared): a workflow with a volumeClaimTemplate runs — its claim and pod
/// created, the pod ended here as the kubelet would, the workflow Succeeded and the claim
/// deleted — and nothing was forbidden.
#[tokio::test]
async fn the_workflow_controller_works_with_the_rights_the_chart_gives_it() -> Result<()> {
    let story = Story::new().await?;
    let mut release = Release::new(story.ctx.kubeconfig(), story.namespace())?;
    let _cleanup = ClusterRbacCleanup {
        tools: Tools::new()?,
        kubeconfig: story.ctx.kubeconfig().to_string_lossy().into_owned(),
        instance: release.name.clone(),
    };
    // The release leaves the CRDs to the cluster's admin (crds.install=false), and the
    // controller's ClusterRole grants no create of CRDs.
    ferry_runtime::install_workflow_crds(&story.ctx.client(), "ferry-tests").await?;
    release.install(&[
        "--set",
        "crds.install=false",
        "--set",
        "workflows.enabled=true",
        "--set",
        "workflows.executor.image.tag=kwok",
    ])?;
    let account = format!("{}-workflow-controller", release.name);
    let deployments: Api<Deployment> = story.ctx.api();
    let deployment = serde_json::to_value(deployments.get(&account).await?)?;
    let flags: Vec<&str> = args(&deployment);
    assert_eq!(
        flags,
        [
            "--executor-image=ghcr.io/ferry-cd/ferry-exec:kwok",
            "--metrics-listen=0.0.0.0:9090"
        ]
    );
    let kubeconfig = release.scratch("workflows-kubeconfig");
    service_account_kubeconfig(&story.ctx, &account, &kubeconfig).await?;
    let log = release.scratch("workflow-controller.log");
    let out = std::fs::File::create(&log)?;
    let mut controller = std::process::Command::new(ferry_testkit::server::workspace_binary(
        "ferry-workflow-controller",
    )?)
    .arg("--kubeconfig")
    .arg(&kubeconfig)
    .args(["--namespace", story.namespace()])
    .arg(flags[0])
    // Here, beside other tests' processes, on a port of its own.
    .arg("--metrics-listen=127.0.0.1:0")
    .env("FERRY_LOG", "info,kube=warn")
    .stdin(std::process::Stdio::null())
    .stdout(out.try_clone()?)
    .stderr(out)
    .spawn()
    .context("starting ferry-workflow-controller")?;

    // A PersistentVolume bound ahead to the claim, so that kwok's scheduler places the pod.
    let volume_name = format!("{}-work", story.namespace());
    let volumes: Api<k8s_openapi::api::core::v1::PersistentVolume> = Api::all(story.ctx.client());
    volumes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": volume_name},
                "spec": {
                    "capacity": {"storage": "1Mi"},
                    "accessModes": ["ReadWriteOnce"],
                    "hostPath": {"path": "/tmp/unused"},
                    "claimRef": {"namespace": story.namespace(), "name": "hello-work"},
                },
            }))?,
        )
        .await?;
    let workflows: Api<ferry_types::Workflow> = story.ctx.api();
    let hello: ferry_types::Workflow = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "hello"},
        "spec": {
            "entrypoint": "main",
            "volumeClaimTemplates": [{"metadata": {"name": "work"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "storageClassName": "",
                "resources": {"requests": {"storage": "1Mi"}}}}],
            "templates": [{"name": "main", "container": {
                "image": "busybox", "command": ["true"],
                "volumeMounts": [{"name": "work", "mountPath": "/work"}]}}],
        },
    }))?;
    workflows.create(&PostParams::default(), &hello).await?;
    let pods: Api<Pod> = story.ctx.api();
    let ended = eventually("the step's pod running, then ended", || async {
        let listed = pods
            .list(&ListParams::default().labels("workflows.argoproj.io/workflow=hello"))
            .await?;
        let Some(pod) = listed.items.first() else {
            return Ok(None);
        };
        let status = pod.status.clone().unwrap_or_default();
        if status.phase.as_deref() != Some("Running") || status.pod_ip.is_none() {
            return Ok(None);
        }
        let terminated = json!({"exitCode": 0, "reason": "Completed", "message": "{}",
            "startedAt": status.start_time, "finishedAt": status.start_time});
        let patch = json!({"status": {"phase": "Succeeded", "containerStatuses": [{
            "name": "main", "image": "busybox", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"terminated": terminated}}]}});
        let name = pod.metadata.name.clone().unwrap_or_default();
        pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(Some(name))
    })
    .await?;
    let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> = story.ctx.api();
    eventually("the workflow Succeeded and its claim deleted", || async {
        let workflow = workflows.get("hello").await?;
        let phase = workflow.status.and_then(|s| s.phase);
        let claim = claims.get_opt("hello-work").await?;
        let gone = claim.is_none_or(|c| c.metadata.deletion_timestamp.is_some());
        Ok((phase == Some(ferry_types::workflow::Phase::Succeeded) && gone).then_some(()))
    })
    .await?;
    controller.kill()?;
    controller.wait()?; // reaped, so no zombie outlives the test
    volumes.delete(&volume_name, &Default::default()).await?;
    let log = std::fs::read_to_string(&log)?;
    assert!(!log.to_lowercase().contains("forbidden"), "{log}");
    assert!(log.contains("created claim"), "{ended}: {log}");
    Ok(())
}
