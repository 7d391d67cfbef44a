//! A workflow's containers really run: on the sandbox with a real node, a two-step workflow
//! runs busybox pods under the real executor — ferry-exec built statically from this workspace,
//! packed into an image with buildah and pulled by the node from the sandbox registry — the
//! first step's output parameter (a file it wrote) reaches the second step's command, and the
//! workflow ends Succeeded with both outputs in its status. A second workflow passes an
//! artifact between its steps through MinIO (the `artifact-repositories` ConfigMap naming it,
//! its credentials in a Secret) and reads a raw input artifact. A third clones Git input
//! artifacts in the init container: over smart HTTP with basic auth and over ssh with a key,
//! both from Secrets, and over HTTPS without verifying its self-signed certificate, from Git
//! servers of ferry-testkit listening for pods. All share one executor image.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ferry_sandbox::Sandbox;
use ferry_sandbox::registry::{Registry, RegistryInfo};
use ferry_testkit::git::{GitRepo, HttpServer, SshServer};
use ferry_testkit::kube::TestContext;
use ferry_testkit::minio::Minio;
use ferry_testkit::real_node::{self, BUSYBOX_IMAGE};
use ferry_types::Workflow;
use ferry_types::workflow::Phase;
use ferry_workflow::controller::{Settings, run};
use ferry_workflow::pod::PodSettings;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::PostParams;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

fn sh(command: &mut Command) -> Result<String> {
    let output = command.output().with_context(|| format!("{command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// ferry-exec, linked statically (the images it is copied into may have no libc).
fn build_executor() -> Result<std::path::PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    sh(Command::new(env!("CARGO"))
        .current_dir(&workspace)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env("OPENSSL_STATIC", "1")
        .env("LIBZ_SYS_STATIC", "1")
        .args(["build", "-q", "-p", "ferry-exec", "--bin", "ferry-exec"])
        .args(["--target", "x86_64-unknown-linux-gnu"]))?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), Into::into);
    Ok(target.join("x86_64-unknown-linux-gnu/debug/ferry-exec"))
}

/// The executor image (`/ferry-exec` alone, from scratch), pushed to the sandbox registry.
fn push_executor_image(registry: &RegistryInfo, binary: &Path, image: &str) -> Result<()> {
    let work = tempfile::Builder::new()
        .prefix("ferry-exec-image-")
        .tempdir()?;
    let certs = work.path().join("certs");
    fs::create_dir(&certs)?;
    fs::copy(&registry.ca, certs.join("ca.crt"))?;
    let buildah = || {
        let mut command = Command::new("buildah");
        command
            .arg("--root")
            .arg(work.path().join("storage"))
            .arg("--runroot")
            .arg(work.path().join("run"))
            .args(["--storage-driver", "vfs"]);
        command
    };
    let container = sh(buildah().args(["from", "scratch"]))?;
    let container = container.trim();
    sh(buildah()
        .arg("copy")
        .arg(container)
        .arg(binary)
        .arg("/ferry-exec"))?;
    sh(buildah().args(["commit", "-q", "--rm", container, "ferry-exec:story"]))?;
    sh(buildah()
        .args(["push", "-q", "--authfile"])
        .arg(&registry.auth_config)
        .arg("--cert-dir")
        .arg(&certs)
        .arg("ferry-exec:story")
        .arg(format!("docker://{image}")))?;
    Ok(())
}

/// The executor image, built and pushed once for this test binary.
static IMAGE: OnceCell<String> = OnceCell::const_new();

/// Runs the workflow controller over the test's namespace, with the executor image and the
/// Secret that pulls it.
async fn start_controller(ctx: &TestContext) -> Result<tokio::task::JoinHandle<Result<()>>> {
    let registry = Registry::of(&Sandbox::named(real_node::SANDBOX)?).up()?;
    let image = IMAGE
        .get_or_try_init(|| async {
            let image = format!(
                "{}/ferry-exec-{}:story",
                registry.address,
                std::process::id()
            );
            let binary = tokio::task::spawn_blocking(build_executor).await??;
            push_executor_image(&registry, &binary, &image)?;
            anyhow::Ok(image)
        })
        .await?
        .clone();
    let auth = fs::read(&registry.auth_config)?;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "sandbox-registry"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": ByteString(auth)},
    }))?;
    ctx.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;

    ferry_runtime::install_workflow_crds(&ctx.client(), "ferry-tests").await?;
    let settings = Settings {
        namespace: Some(ctx.namespace().to_string()),
        pods: PodSettings {
            executor_image: image,
            executor_pull_policy: None,
        },
        concurrency: 2,
    };
    Ok(tokio::spawn(run(
        ctx.client(),
        settings,
        std::future::pending(),
    )))
}

/// Waits for the workflow to finish.
async fn finished(ctx: &TestContext, name: &str) -> Result<Workflow> {
    let api = ctx.api::<Workflow>();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let wf = api.get(name).await?;
        if wf
            .status
            .as_ref()
            .and_then(|s| s.phase)
            .is_some_and(|p| p.is_completed())
        {
            return Ok(wf);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the workflow did not finish: {:#?}", wf.status);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn a_two_step_workflow_runs_real_containers_and_passes_a_parameter() -> Result<()> {
    let ctx = TestContext::on_real_node().await?;
    let controller = start_controller(&ctx).await?;

    let placement = real_node::placement();
    let workflow: Workflow = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "hello-real"},
        "spec": {
            "entrypoint": "main",
            "nodeSelector": placement["nodeSelector"],
            "tolerations": placement["tolerations"],
            "imagePullSecrets": [{"name": "sandbox-registry"}],
            "arguments": {"parameters": [{"name": "who", "value": "ferry"}]},
            "templates": [
                {"name": "main", "steps": [
                    [{"name": "write", "template": "write",
                      "arguments": {"parameters": [{"name": "who", "value": "{{workflow.parameters.who}}"}]}}],
                    [{"name": "read", "template": "read",
                      "arguments": {"parameters": [
                          {"name": "message", "value": "{{steps.write.outputs.parameters.message}}"},
                          {"name": "said", "value": "{{steps.write.outputs.result}}"}]}}],
                ]},
                {"name": "write",
                 "inputs": {"parameters": [{"name": "who"}]},
                 "outputs": {"parameters": [{"name": "message", "valueFrom": {"path": "/tmp/message"}}]},
                 "script": {"image": BUSYBOX_IMAGE, "command": ["sh"],
                            "source": "echo -n \"hello from {{inputs.parameters.who}}\" > /tmp/message\necho wrote it\n"}},
                {"name": "read",
                 "inputs": {"parameters": [{"name": "message"}, {"name": "said"}]},
                 "outputs": {"parameters": [{"name": "heard", "valueFrom": {"path": "/tmp/heard"}}]},
                 "container": {"image": BUSYBOX_IMAGE, "command": ["sh", "-c"],
                               "args": ["echo \"{{inputs.parameters.message}} ({{inputs.parameters.said}})\" | tee /tmp/heard"]}},
            ],
        },
    }))?;
    let api = ctx.api::<Workflow>();
    api.create(&PostParams::default(), &workflow).await?;
    let wf = finished(&ctx, "hello-real").await?;
    controller.abort();
    let status = wf.status.unwrap();
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    assert_eq!(status.progress.as_deref(), Some("2/2"));
    let by_display = |display: &str| {
        status
            .nodes
            .values()
            .find(|n| n.display_name == display)
            .unwrap_or_else(|| panic!("no node {display}"))
            .clone()
    };
    let write = by_display("write");
    let outputs = write.outputs.unwrap();
    assert_eq!(
        outputs.parameters[0].value.as_deref(),
        Some("hello from ferry")
    );
    assert_eq!(outputs.result.as_deref(), Some("wrote it"));
    assert_eq!(outputs.exit_code.as_deref(), Some("0"));
    assert_eq!(write.host_node_name, Some(real_node::node_name()?));
    let read = by_display("read");
    assert_eq!(
        read.outputs.unwrap().parameters[0].value.as_deref(),
        Some("hello from ferry (wrote it)")
    );
    Ok(())
}

#[tokio::test]
async fn an_artifact_passes_between_steps_through_the_s3_server() -> Result<()> {
    let ctx = TestContext::on_real_node().await?;
    let minio = Minio::start("artifacts")?;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "minio-creds"},
        "stringData": {"accesskey": minio.access_key(), "secretkey": minio.secret_key()},
    }))?;
    ctx.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    let repository = format!(
        "s3:\n  endpoint: {}\n  bucket: {}\n  insecure: true\n  accessKeySecret: {{name: minio-creds, key: accesskey}}\n  secretKeySecret: {{name: minio-creds, key: secretkey}}\n",
        minio.pod_endpoint()?,
        minio.bucket()
    );
    let repositories: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "artifact-repositories",
                     "annotations": {"workflows.argoproj.io/default-artifact-repository": "minio"}},
        "data": {"minio": repository},
    }))?;
    ctx.api::<ConfigMap>()
        .create(&PostParams::default(), &repositories)
        .await?;
    let controller = start_controller(&ctx).await?;

    let placement = real_node::placement();
    let workflow: Workflow = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "art-real"},
        "spec": {
            "entrypoint": "main",
            "nodeSelector": placement["nodeSelector"],
            "tolerations": placement["tolerations"],
            "imagePullSecrets": [{"name": "sandbox-registry"}],
            "templates": [
                {"name": "main", "steps": [
                    [{"name": "generate", "template": "generate"}],
                    [{"name": "consume", "template": "consume",
                      "arguments": {"artifacts": [
                          {"name": "site", "from": "{{steps.generate.outputs.artifacts.site}}"}]}}],
                ]},
                {"name": "generate",
                 "outputs": {"artifacts": [{"name": "site", "path": "/tmp/site"}]},
                 "container": {"image": BUSYBOX_IMAGE, "command": ["sh", "-c"],
                               "args": ["mkdir -p /tmp/site/docs && echo hello > /tmp/site/index.txt && echo deep > /tmp/site/docs/a.txt"]}},
                {"name": "consume",
                 "inputs": {"artifacts": [
                     {"name": "site", "path": "/work/site"},
                     {"name": "note", "path": "/work/note.txt", "raw": {"data": "from raw"}}]},
                 "script": {"image": BUSYBOX_IMAGE, "command": ["sh"],
                            "source": "cat /work/site/index.txt /work/site/docs/a.txt /work/note.txt\nenv | grep -c FERRY_CREDENTIAL || true\n"}},
            ],
        },
    }))?;
    ctx.api::<Workflow>()
        .create(&PostParams::default(), &workflow)
        .await?;
    let wf = finished(&ctx, "art-real").await?;
    controller.abort();
    let status = wf.status.unwrap();
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    let node = |display: &str| {
        status
            .nodes
            .values()
            .find(|n| n.display_name == display)
            .unwrap_or_else(|| panic!("no node {display}"))
            .clone()
    };

    // Upstream's shape and key: <workflow>/<pod>/<artifact>.tgz.
    let generated = serde_json::to_value(node("generate").outputs.unwrap().artifacts)?;
    let key = generated[0]["s3"]["key"].as_str().unwrap().to_string();
    assert_eq!(generated[0]["name"], "site");
    assert_eq!(generated[0]["path"], "/tmp/site");
    assert!(
        key.starts_with("art-real/art-real-generate-") && key.ends_with("/site.tgz"),
        "{key}"
    );
    let work = tempfile::tempdir()?;
    fs::write(work.path().join("site.tgz"), minio.get(&key)?)?;
    ferry_exec::archive::unpack(&work.path().join("site.tgz"), &work.path().join("site"))
        .map_err(anyhow::Error::msg)?;
    assert_eq!(
        fs::read_to_string(work.path().join("site/docs/a.txt"))?,
        "deep\n"
    );

    let consume = node("consume");
    let inputs: Value = serde_json::to_value(consume.inputs.unwrap().artifacts)?;
    assert_eq!(inputs[0]["s3"]["key"], key.as_str());
    assert_eq!(inputs[1]["raw"]["data"], "from raw");
    assert_eq!(
        consume.outputs.unwrap().result.as_deref(),
        Some("hello\ndeep\nfrom raw0"),
        "the step read both inputs, and saw no credential variable"
    );
    let repository = status.artifact_repository_ref.unwrap();
    assert_eq!(
        repository.config_map.as_deref(),
        Some("artifact-repositories")
    );
    assert_eq!(repository.key.as_deref(), Some("minio"));
    Ok(())
}

#[tokio::test]
async fn git_input_artifacts_are_cloned_over_http_and_ssh_with_credentials() -> Result<()> {
    let ctx = TestContext::on_real_node().await?;
    let app = GitRepo::new()?;
    app.write("app.txt", "version one\n")?;
    let first = app.commit("first")?;
    app.tag("v1")?;
    app.write("app.txt", "version two\n")?;
    let second = app.commit("second")?;
    let http = HttpServer::start_for_pods(&app, Some(("bot", "t0ken")))?;
    let https = HttpServer::start_tls_for_pods(&app, None)?;
    let ssh = SshServer::start_for_pods(&app)?;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "git-creds"},
        "stringData": {"user": "bot", "token": "t0ken", "key": ssh.client_private_key()},
    }))?;
    ctx.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    let controller = start_controller(&ctx).await?;

    let placement = real_node::placement();
    let show = "cat /src/app.txt; cat /src/.git/HEAD";
    let workflow: Workflow = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "git-real"},
        "spec": {
            "entrypoint": "main",
            "nodeSelector": placement["nodeSelector"],
            "tolerations": placement["tolerations"],
            "imagePullSecrets": [{"name": "sandbox-registry"}],
            "templates": [
                {"name": "main", "steps": [[
                    {"name": "http", "template": "show", "arguments": {"artifacts": [
                        {"name": "src", "git": {"repo": http.pod_url()?, "revision": "v1",
                          "usernameSecret": {"name": "git-creds", "key": "user"},
                          "passwordSecret": {"name": "git-creds", "key": "token"}}}]}},
                    {"name": "ssh", "template": "show", "arguments": {"artifacts": [
                        {"name": "src", "git": {"repo": ssh.pod_url()?, "depth": 1,
                          "sshPrivateKeySecret": {"name": "git-creds", "key": "key"},
                          "insecureIgnoreHostKey": true}}]}},
                    {"name": "https", "template": "show", "arguments": {"artifacts": [
                        {"name": "src", "git": {"repo": https.pod_url()?, "revision": "main",
                          "insecureSkipTLS": true}}]}},
                ]]},
                {"name": "show",
                 "inputs": {"artifacts": [{"name": "src", "path": "/src"}]},
                 "script": {"image": BUSYBOX_IMAGE, "command": ["sh"], "source": show}},
            ],
        },
    }))?;
    ctx.api::<Workflow>()
        .create(&PostParams::default(), &workflow)
        .await?;
    let wf = finished(&ctx, "git-real").await?;
    controller.abort();
    let status = wf.status.unwrap();
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    let result = |display: &str| {
        let node = status
            .nodes
            .values()
            .find(|n| n.display_name == display)
            .unwrap_or_else(|| panic!("no node {display}"));
        node.outputs.as_ref().and_then(|o| o.result.clone())
    };
    // A tag is checked out detached; the remote's HEAD as its branch, as `git clone` does.
    assert_eq!(
        result("http").as_deref(),
        Some(format!("version one\n{first}").as_str())
    );
    assert_eq!(
        result("ssh").as_deref(),
        Some("version two\nref: refs/heads/main"),
        "{second} over ssh"
    );
    assert_eq!(
        result("https").as_deref(),
        Some("version two\nref: refs/heads/main")
    );
    assert!(http.requests() > 0);
    Ok(())
}

#[tokio::test]
async fn a_sidecar_serves_the_main_container_and_stops_when_it_is_done() -> Result<()> {
    let ctx = TestContext::on_real_node().await?;
    let controller = start_controller(&ctx).await?;
    let placement = real_node::placement();
    // The sidecar's shell traps SIGTERM: as PID 1 it would otherwise ignore the kubelet's stop.
    let serve = "mkdir -p /www && echo -n hello from the sidecar > /www/index.html && \
                 trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait";
    let workflow: Workflow = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "sidecar-real"},
        "spec": {
            "entrypoint": "fetch",
            "nodeSelector": placement["nodeSelector"],
            "tolerations": placement["tolerations"],
            "imagePullSecrets": [{"name": "sandbox-registry"}],
            "templates": [{
                "name": "fetch",
                "volumes": [{"name": "www", "emptyDir": {}}],
                "script": {"image": BUSYBOX_IMAGE, "command": ["sh"],
                           "volumeMounts": [{"name": "www", "mountPath": "/www"}],
                           "source": "until wget -qO- localhost:8080/index.html; do sleep 0.2; done\n"},
                "sidecars": [{"name": "web", "image": BUSYBOX_IMAGE, "command": ["sh", "-c", serve],
                              "mirrorVolumeMounts": true}],
            }],
        },
    }))?;
    ctx.api::<Workflow>()
        .create(&PostParams::default(), &workflow)
        .await?;
    let wf = finished(&ctx, "sidecar-real").await?;
    controller.abort();
    let status = wf.status.unwrap();
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    let node = status.nodes.values().next().unwrap();
    assert_eq!(
        node.outputs.as_ref().unwrap().result.as_deref(),
        Some("hello from the sidecar")
    );
    // The pod completed: the kubelet stopped the sidecar once the main container exited.
    let pod_name = ferry_workflow::names::pod_name("sidecar-real", &node.name, "fetch");
    let pod = ctx
        .api::<k8s_openapi::api::core::v1::Pod>()
        .get(&pod_name)
        .await?;
    let pod_status = pod.status.unwrap();
    assert_eq!(pod_status.phase.as_deref(), Some("Succeeded"));
    let web = pod_status
        .init_container_statuses
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.name == "web")
        .context("no status of the sidecar")?;
    assert!(
        web.state.and_then(|s| s.terminated).is_some(),
        "the sidecar was stopped"
    );
    Ok(())
}
