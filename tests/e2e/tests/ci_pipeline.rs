//! The pipeline's CI half on the real node (issue 15): a signed Git push to ferry-server's
//! webhook submits the `ci` WorkflowTemplate through a WorkflowEventBinding, with the commit and
//! the repository from the payload. ferry-workflow-controller runs the workflow's pods on the
//! real node under the ferry-exec executor: each step clones the app repository at the pushed
//! commit (a Git input artifact), the first runs the app's tests in a script, the second builds
//! the image inside its pod without any daemon — `crane` appends a layer of the app's files to a
//! base image in the sandbox registry (TLS from the sandbox CA, htpasswd login) and pushes it —
//! and the third bumps the config repository with `ferry ci set-image`, which commits and pushes
//! the new tag. ferry-controller syncs that commit and the real node pulls and runs the built
//! image: the pod says the pushed version and runs the digest the build step reported. A later
//! push whose tests fail ends the workflow Failed at its first step: nothing is built or bumped
//! and the pod keeps running the release.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use ferry_e2e::ci::{CiImages, WorkflowController, pipeline_deployment, registry_pull_secret};
use ferry_e2e::pods::running_pod_says;
use ferry_e2e::{Story, is};
use ferry_sandbox::Sandbox;
use ferry_sandbox::registry::{Registry, RegistryInfo};
use ferry_testkit::git::{GitRepo, HttpServer};
use ferry_testkit::real_node;
use ferry_testkit::server::ServerProcess;
use ferry_types::secrets::{RepoSecret, RepoSecretKind};
use ferry_types::workflow::{NodeStatus, Phase};
use ferry_types::{Application, Workflow, WorkflowEventBinding, WorkflowTemplate};
use hmac::{Hmac, Mac};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::Sha256;

const WEBHOOK_SECRET: &str = "the CI story's webhook secret";
/// The config repository's login, which the bump step pushes with.
const CONFIG_LOGIN: (&str, &str) = ("ci-bot", "config-s3cret");
const KUSTOMIZATION: &str = "pipeline/kustomization.yaml";

#[tokio::test]
async fn a_push_is_tested_built_in_a_pod_bumped_in_git_and_deployed_on_the_real_node() -> Result<()>
{
    let started = Instant::now();
    let mut story = Story::on_real_node().await?;
    let namespace = story.namespace().to_string();
    let registry = Registry::of(&Sandbox::named(real_node::SANDBOX)?).up()?;
    let images = tokio::task::spawn_blocking({
        let registry = registry.clone();
        move || CiImages::push(&registry)
    })
    .await??;
    let prepared = started.elapsed();
    let image = format!("{}/pipeline-{namespace}", registry.address);

    // The application repository: a program that says its version, and its tests.
    let app_repo = GitRepo::new()?;
    app_repo.write("run.sh", PROGRAM)?;
    app_repo.write("test.sh", TESTS)?;
    app_repo.write("VERSION", "1.0.0\n")?;
    let commit = app_repo.commit("pipeline 1.0.0")?;
    let app_git = HttpServer::start_for_pods(&app_repo, None)?;

    // The configuration repository (Kustomize): nothing released yet. Argo CD's repository
    // Secret gives ferry its login; the bump step gets it from a Secret of its own.
    let config = GitRepo::new()?;
    config.write(KUSTOMIZATION, kustomization(&image))?;
    config.write("pipeline/deployment.yaml", pipeline_deployment(&image))?;
    let unreleased = config.commit("pipeline, before its first release")?;
    let config_git = HttpServer::start_for_pods(&config, Some(CONFIG_LOGIN))?;
    let mut repo = RepoSecret::new(RepoSecretKind::Repository, &config_git.url());
    repo.username = Some(CONFIG_LOGIN.0.into());
    repo.password = Some(CONFIG_LOGIN.1.into());
    create(&story, repo.to_secret(&namespace)).await?;
    create(&story, registry_pull_secret(&registry)?).await?;
    create(&story, ci_secret(&registry)?).await?;

    // ferry deploys the config repository; the workflow controller runs the CI workflows, the
    // API server takes the webhooks.
    let app = story.app_name("pipeline");
    create(&story, application(&story, &app, &config_git.url())?).await?;
    story.start_controller()?;
    story
        .wait_app(&app, "Synced before any release", |a| {
            is::synced(a) && is::at_revision(&unreleased)(a)
        })
        .await?;
    let workflows = WorkflowController::start(&story, &images.executor)?;
    // The controller installs the workflow CRDs as it starts.
    let template = ci_template(&images, &image, &config_git.pod_url()?)?;
    story
        .eventually("the WorkflowTemplate created", || async {
            Ok(create(&story, template.clone()).await.is_ok())
        })
        .await?;
    create(&story, binding()?).await?;
    create(&story, webhook_secret()?).await?;
    let server = story.start_server().await?;

    // The push: GitHub's signed webhook, the repository as the pods reach it.
    let pushed = Instant::now();
    let name = push(&server, &app_git.pod_url()?, &commit).await?;

    // The workflow runs its three steps on the real node and succeeds.
    let wf = finished(&story, &name, &workflows).await?;
    let ran = pushed.elapsed();
    let status = wf.status.clone().context("no status")?;
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    let step = |display: &str| -> Result<NodeStatus> {
        status
            .nodes
            .values()
            .find(|n| n.display_name == display)
            .cloned()
            .with_context(|| format!("no step {display}"))
    };
    let node = real_node::node_name()?;
    for display in ["test", "build", "deploy"] {
        assert_eq!(
            step(display)?.host_node_name.as_deref(),
            Some(node.as_str())
        );
    }
    assert_eq!(
        result(&step("test")?).as_deref(),
        Some("ok: run.sh says pipeline 1.0.0")
    );
    let digest = result(&step("build")?).context("the build reported no digest")?;
    assert!(digest.starts_with("sha256:"), "{digest}");

    // The bump: one commit on the config repository, the kustomization's tag only.
    let head = bare_git(&config, &["rev-parse", "main"])?;
    assert_ne!(head, unreleased, "the deploy step pushed nothing");
    assert_eq!(
        bare_git(
            &config,
            &["show", "--name-only", "--format=%an <%ae>%n%s", &head]
        )?,
        format!(
            "ferry ci <ci@ferry.invalid>\ndeploy {image}:1.0.0 (built from {commit})\n\n{KUSTOMIZATION}"
        )
    );
    let written = bare_git(&config, &["show", &format!("main:{KUSTOMIZATION}")])?;
    assert!(written.contains("newTag: 1.0.0"), "{written}");

    // ferry syncs the bump; the real node pulls the image built in the pod and runs it.
    story
        .wait_app(&app, "Synced and Healthy at the bump", |a| {
            is::synced_and_healthy(a) && is::at_revision(&head)(a)
        })
        .await?;
    let synced = pushed.elapsed();
    story
        .eventually("the pod says 1.0.0", || async {
            Ok(running_pod_says(&story.ctx.api(), "pipeline", &node).await? == "pipeline 1.0.0")
        })
        .await?;
    let running = pushed.elapsed();
    let pods: Api<Pod> = story.ctx.api();
    let pod = pods
        .list(&ListParams::default().labels("app=pipeline"))
        .await?
        .items
        .into_iter()
        .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .context("no running pipeline pod")?;
    let container = pod
        .status
        .and_then(|s| s.container_statuses)
        .and_then(|c| c.into_iter().next())
        .context("no container status")?;
    assert_eq!(container.image, format!("{image}:1.0.0"));
    assert!(
        container.image_id.ends_with(&format!("@{digest}")),
        "the pod runs {}, the build pushed {digest}",
        container.image_id
    );

    let took = |n: &NodeStatus| -> i64 {
        match (&n.started_at, &n.finished_at) {
            (Some(s), Some(f)) => f.0.as_second() - s.0.as_second(),
            _ => -1,
        }
    };
    println!(
        "images ready in {:.1} s; push -> the new image running on the real node: {:.1} s \
         (workflow {:.1} s: test {} s, build {} s, deploy {} s; bump synced {:.1} s later; \
         rollout until the pod logs {:.1} s)",
        prepared.as_secs_f64(),
        running.as_secs_f64(),
        ran.as_secs_f64(),
        took(&step("test")?),
        took(&step("build")?),
        took(&step("deploy")?),
        (synced - ran).as_secs_f64(),
        (running - synced).as_secs_f64(),
    );

    // A commit that breaks the program: its tests fail, so nothing is built or bumped and the
    // pod keeps running 1.0.0.
    app_repo.write("run.sh", PROGRAM.replace("pipeline $(", "pipeline v$("))?;
    app_repo.write("VERSION", "1.1.0\n")?;
    let broken = app_repo.commit("pipeline 1.1.0, saying its version wrong")?;
    let name = push(&server, &app_git.pod_url()?, &broken).await?;
    let wf = finished(&story, &name, &workflows).await?;
    let status = wf.status.context("no status")?;
    assert_eq!(status.phase, Some(Phase::Failed), "{status:#?}");
    let steps: Vec<(&str, Phase)> = status
        .nodes
        .values()
        .filter(|n| n.type_ == "Pod")
        .map(|n| (n.display_name.as_str(), n.phase))
        .collect();
    assert_eq!(steps, [("test", Phase::Failed)], "only the tests ran");
    // Why, in the failed step's log as ferry-server's WorkflowLogs serves it (Argo Workflows'
    // route), narrowed by `grep` as `argo logs --grep` asks.
    let said = workflow_log(&story, &server, &name, "said").await?;
    assert_eq!(
        said.iter()
            .map(|e| e["content"].as_str())
            .collect::<Vec<_>>(),
        [Some("run.sh said: pipeline v1.1.0")],
        "{said:?}"
    );
    assert!(
        said[0]["podName"]
            .as_str()
            .is_some_and(|pod| pod.starts_with(&name)),
        "{said:?}"
    );
    assert_eq!(bare_git(&config, &["rev-parse", "main"])?, head);
    assert_eq!(
        running_pod_says(&story.ctx.api(), "pipeline", &node).await?,
        "pipeline 1.0.0"
    );
    server.stop().await?;
    Ok(())
}

/// The `LogEntry`s of workflow `name`'s main containers whose content matches `grep`, read
/// through ferry-server's REST API as the admin.
async fn workflow_log(
    story: &Story,
    server: &ServerProcess,
    name: &str,
    grep: &str,
) -> Result<Vec<Value>> {
    let token = story.admin_token(server).await?;
    let events = reqwest::Client::new()
        .get(format!(
            "http://{}/api/v1/workflows/{}/{name}/log?logOptions.container=main&grep={grep}",
            server.address(),
            story.namespace()
        ))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    events
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|data| Ok(serde_json::from_str::<Value>(data.trim())?["result"].take()))
        .collect()
}

/// Delivers GitHub's signed push webhook of `commit` to the app repository at `clone_url` (as
/// the pods reach it); the name of the workflow the binding submitted.
async fn push(server: &ServerProcess, clone_url: &str, commit: &str) -> Result<String> {
    let payload = json!({
        "ref": "refs/heads/main",
        "after": commit,
        "repository": {
            "full_name": "ferry-e2e/pipeline",
            "clone_url": clone_url,
            "html_url": clone_url,
            "default_branch": "main",
        },
        "commits": [{"id": commit}],
    })
    .to_string();
    let answer: Value = reqwest::Client::new()
        .post(format!("http://{}/api/webhook", server.address()))
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", commit)
        .header("X-Hub-Signature-256", signature(payload.as_bytes()))
        .header("Content-Type", "application/json")
        .body(payload)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let submitted = answer["workflows"]
        .as_array()
        .and_then(|w| w.first())
        .with_context(|| format!("the push submitted no workflow: {answer}"))?;
    Ok(submitted["workflow"]
        .as_str()
        .with_context(|| format!("the binding failed: {submitted}"))?
        .to_string())
}

/// The application's program: says which version runs, again and again (`--once`: once).
const PROGRAM: &str = "#!/bin/sh
dir=${APP_DIR:-/app}
while true; do
  echo \"pipeline $(cat \"$dir/VERSION\")\"
  [ \"$1\" = --once ] && exit 0
  sleep 5
done
";

/// The application's tests.
const TESTS: &str = "#!/bin/sh
set -e
said=$(APP_DIR=. sh run.sh --once)
[ \"$said\" = \"pipeline $(cat VERSION)\" ] || { echo \"run.sh said: $said\"; exit 1; }
echo \"ok: run.sh says $said\"
";

fn kustomization(image: &str) -> String {
    format!(
        "resources:
  - deployment.yaml
images:
  - name: {image} # CI sets the tag it built
    newTag: unreleased
"
    )
}

/// The automated Application of the configuration repository.
fn application(story: &Story, name: &str, repo: &str) -> Result<Application> {
    parse(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo, "path": "pipeline", "targetRevision": "main"},
            "destination": {
                "server": "https://kubernetes.default.svc",
                "namespace": story.namespace(),
            },
            "syncPolicy": {"automated": {}},
        },
    }))
}

/// What the CI pods are given: crane's registry login (`config.json`) and the sandbox CA, the
/// config repository's login for `ferry ci set-image`.
fn ci_secret(registry: &RegistryInfo) -> Result<Secret> {
    parse(json!({
        "metadata": {"name": "ci"},
        "stringData": {
            "config.json": std::fs::read_to_string(&registry.auth_config)?,
            "ca.crt": std::fs::read_to_string(&registry.ca)?,
            "git-username": CONFIG_LOGIN.0,
            "git-password": CONFIG_LOGIN.1,
        },
    }))
}

/// The CI workflow: test, build, deploy, each step in its pod on the real node, the first two
/// cloning the pushed commit.
fn ci_template(images: &CiImages, image: &str, config_url: &str) -> Result<WorkflowTemplate> {
    let placement = real_node::placement();
    let source = json!({"name": "source", "git": {
        "repo": "{{workflow.parameters.repo}}",
        "revision": "{{workflow.parameters.revision}}",
        "depth": 1,
    }});
    let build = format!(
        "set -e
version=$(cat /src/VERSION)
mkdir -p /tmp/layer/app
cp /src/run.sh /src/VERSION /tmp/layer/app/
tar -cf /tmp/layer.tar -C /tmp/layer app
crane append --base {base} --new_layer /tmp/layer.tar --new_tag {image}:$version >&2
crane mutate {image}:$version --entrypoint /bin/sh,/app/run.sh \\
  --label org.opencontainers.image.revision={{{{workflow.parameters.revision}}}} >&2
echo -n $version > /tmp/version
crane digest {image}:$version
",
        base = images.base,
    );
    parse(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "ci"},
        "spec": {
            "entrypoint": "ci",
            "arguments": {"parameters": [{"name": "repo"}, {"name": "revision"}]},
            "nodeSelector": placement["nodeSelector"],
            "tolerations": placement["tolerations"],
            "imagePullSecrets": [{"name": "sandbox-registry"}],
            "volumes": [{"name": "ci", "secret": {"secretName": "ci"}}],
            "templates": [
                {"name": "ci", "steps": [
                    [{"name": "test", "template": "test", "arguments": {"artifacts": [source]}}],
                    [{"name": "build", "template": "build", "arguments": {"artifacts": [source]}}],
                    [{"name": "deploy", "template": "deploy", "arguments": {"parameters": [
                        {"name": "version", "value": "{{steps.build.outputs.parameters.version}}"},
                    ]}}],
                ]},
                {"name": "test",
                 "inputs": {"artifacts": [{"name": "source", "path": "/src"}]},
                 "script": {"image": images.tools, "command": ["sh"],
                            "workingDir": "/src", "source": "sh test.sh\n"}},
                {"name": "build",
                 "inputs": {"artifacts": [{"name": "source", "path": "/src"}]},
                 "outputs": {"parameters": [{"name": "version", "valueFrom": {"path": "/tmp/version"}}]},
                 "script": {"image": images.tools, "command": ["sh"], "source": build,
                            "env": [{"name": "DOCKER_CONFIG", "value": "/ci"},
                                    {"name": "SSL_CERT_FILE", "value": "/ci/ca.crt"}],
                            "volumeMounts": [{"name": "ci", "mountPath": "/ci", "readOnly": true}]}},
                {"name": "deploy",
                 "inputs": {"parameters": [{"name": "version"}]},
                 "container": {"image": images.tools,
                               "command": ["ferry", "ci", "set-image", "--repo", config_url, "--push",
                                           "--kustomization", "pipeline",
                                           "--image", format!("{image}:{{{{inputs.parameters.version}}}}"),
                                           "--message", "deploy {image} (built from {{workflow.parameters.revision}})"],
                               "env": [
                                   {"name": "FERRY_GIT_AUTHOR", "value": "ferry ci <ci@ferry.invalid>"},
                                   {"name": "FERRY_GIT_USERNAME", "valueFrom": {"secretKeyRef": {"name": "ci", "key": "git-username"}}},
                                   {"name": "FERRY_GIT_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "ci", "key": "git-password"}}},
                               ]}},
            ],
        },
    }))
}

/// Argo Workflows' WorkflowEventBinding: a push to main submits `ci` with the commit and the
/// repository of the payload.
fn binding() -> Result<WorkflowEventBinding> {
    parse(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowEventBinding",
        "metadata": {"name": "ci-on-push"},
        "spec": {
            "event": {"selector": r#"payload.ref == "refs/heads/main" && metadata["x-github-event"] == ["push"]"#},
            "submit": {
                "workflowTemplateRef": {"name": "ci"},
                "arguments": {"parameters": [
                    {"name": "repo", "valueFrom": {"event": "payload.repository.clone_url"}},
                    {"name": "revision", "valueFrom": {"event": "payload.after"}},
                ]},
            },
        },
    }))
}

/// argocd-secret with the GitHub webhook's secret, before the API server starts.
fn webhook_secret() -> Result<Secret> {
    parse(json!({
        "metadata": {"name": "argocd-secret"},
        "stringData": {"webhook.github.secret": WEBHOOK_SECRET},
    }))
}

/// GitHub's `X-Hub-Signature-256` of `body`.
fn signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).expect("any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Waits for the workflow to finish, failing with its status and the controller's log.
async fn finished(story: &Story, name: &str, controller: &WorkflowController) -> Result<Workflow> {
    let api = story.ctx.api::<Workflow>();
    let deadline = Instant::now() + 2 * ferry_e2e::TIMEOUT;
    loop {
        let wf = api.get(name).await?;
        let phase = wf.status.as_ref().and_then(|s| s.phase);
        if phase.is_some_and(|p| p.is_completed()) {
            return Ok(wf);
        }
        if Instant::now() > deadline {
            bail!(
                "workflow {name} did not finish: {:#?}\nworkflow controller log:\n{}",
                wf.status,
                controller.log()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// A script step's result (its stdout).
fn result(node: &NodeStatus) -> Option<String> {
    node.outputs.as_ref().and_then(|o| o.result.clone())
}

async fn create<K>(story: &Story, object: K) -> Result<()>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + DeserializeOwned,
    K::DynamicType: Default,
{
    story
        .ctx
        .api::<K>()
        .create(&PostParams::default(), &object)
        .await?;
    Ok(())
}

fn parse<T: DeserializeOwned>(value: Value) -> Result<T> {
    Ok(serde_json::from_value(value)?)
}

/// git in the configuration repository's bare repository, where the deploy step pushed.
fn bare_git(repo: &GitRepo, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(repo.bare_path())
        .args(args)
        .output()?;
    if !out.status.success() {
        bail!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}
