//! ferry installed in a cluster as a user installs it (issue 11's proof), on the sandbox with a
//! real node: ferry's image, built from the test suite's binaries, is pushed to the sandbox
//! registry; `helm install` of charts/ferry pulls it with the registry's credentials and runs the
//! API server and two controllers (leader election) on the real node. Logged in through the
//! server's Service, an Application from a Git server syncs a workload whose pod really runs and
//! logs what Git said. The leader's process is SIGKILLed: once its Lease expires another candidate
//! (the standby, or the leader's container restarted by the kubelet) takes it and syncs the
//! commit that landed meanwhile, once. `helm upgrade` with a changed value rolls the pods and keeps the Application;
//! `helm uninstall` keeps the CRDs and the Application.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ferry_e2e::helm::{Release, adopt_crds, eventually, repo_root};
use ferry_e2e::pods::running_pod_says;
use ferry_e2e::{Story, is};
use ferry_sandbox::Sandbox;
use ferry_sandbox::default_route_address;
use ferry_sandbox::real_node::{NODE_LABEL, TAINT_KEY};
use ferry_sandbox::registry::Registry;
use ferry_testkit::git::GitDaemon;
use ferry_testkit::proxy::Proxy;
use ferry_testkit::real_node;
use ferry_testkit::server::{admin_password, workspace_binary};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

/// The Lease the controllers of shard 0 compete for.
const LEASE: &str = "ferry-application-controller-0";

#[tokio::test]
async fn ferry_installed_by_its_chart_syncs_fails_over_upgrades_and_uninstalls() -> Result<()> {
    let story = Story::on_real_node().await?;
    let namespace = story.namespace().to_string();
    let client = story.ctx.client();

    // ferry's image, from the binaries the test suite built, in the sandbox's registry.
    let started = Instant::now();
    let image = push_image()?;
    println!(
        "image {image} built (or found up to date) and pushed in {:.1} s",
        secs(started)
    );

    remove_older_images(&image)?;

    // The chart, as a user installs it, with the image from the registry and on the real node.
    let mut release = Release::new(story.ctx.kubeconfig(), &namespace)?;
    pull_secret(&story).await?;
    adopt_crds(&client, &release.name, &namespace).await?;
    let values = release.write_values(&values(&image))?;
    let installing = Instant::now();
    release.install(&["--values", &values])?;
    let pods: Api<Pod> = story.ctx.api();
    let server = format!("{}-server", release.name);
    let controller = format!("{}-application-controller", release.name);
    let leader = eventually(
        "the server Ready and one of two controllers leading",
        || async {
            let server_ready = ready_pods(&pods, &server).await?.len() == 1;
            let controllers = component_pods(&pods, &controller).await?;
            let running = controllers.iter().filter(|p| phase(p) == "Running").count();
            let leading = ready_pods(&pods, &controller).await?;
            Ok((server_ready && running == 2 && leading.len() == 1).then(|| leading[0].clone()))
        },
    )
    .await?;
    println!(
        "helm install -> API server Ready and a leading controller Ready: {:.1} s",
        secs(installing)
    );
    let holder = lease_holder(&story).await?;
    assert!(
        holder.starts_with(&format!("{leader}_")),
        "the Ready controller {leader} holds the Lease (holder {holder})"
    );

    // Logged in through the Service (kube-proxy on this host routes its ClusterIP).
    let services: Api<Service> = story.ctx.api();
    let cluster_ip = services
        .get(&server)
        .await?
        .spec
        .and_then(|spec| spec.cluster_ip)
        .context("the server's Service has no ClusterIP")?;
    let address = format!("{cluster_ip}:80");
    let answering = Instant::now();
    eventually("the Service answering (kube-proxy's rules)", || async {
        Ok(tokio::net::TcpStream::connect(&address)
            .await
            .ok()
            .map(drop))
    })
    .await?;
    println!(
        "the server's ClusterIP answers {:.1} s after the pod was Ready",
        secs(answering)
    );
    let password = admin_password(&client, &namespace).await?;
    story.ferry_with_env(
        &["login", &address, "--plaintext", "--username", "admin"],
        &[("FERRY_PASSWORD", &password)],
    )?;

    // An app from a Git server the pods reach: git daemon on loopback, exposed on the host's
    // default-route address.
    story.repo.write(
        "hello/deployment.yaml",
        real_node::hello_deployment("hello from git"),
    )?;
    let first = story.repo.commit("hello")?;
    let daemon = GitDaemon::start(&story.repo)?;
    let (git, repo_url) = expose_to_pods(&daemon.url()).await?;
    let app = story.app_name("hello");
    let creating = Instant::now();
    story.ferry(&[
        "app",
        "create",
        &app,
        "--repo",
        &repo_url,
        "--path",
        "hello",
        "--dest-server",
        "https://kubernetes.default.svc",
        "--dest-namespace",
        &namespace,
        "--sync-policy",
        "automated",
    ])?;
    story
        .wait_app(&app, "Synced and Healthy at the first commit", |a| {
            is::synced_and_healthy(a) && is::at_revision(&first)(a)
        })
        .await?;
    let node = real_node::node_name()?;
    story
        .eventually("the workload's pod says hello", || async {
            Ok(running_pod_says(&pods, "hello", &node).await? == "hello from git")
        })
        .await?;
    println!(
        "app created through the API -> its pod running and logging: {:.1} s",
        secs(creating)
    );

    // The leader's process is SIGKILLed (a pod deletion would let it release the Lease); a
    // commit lands while no one leads. A standby takes the Lease and syncs
    // the commit once.
    let history = story
        .app(&app)
        .await?
        .status
        .unwrap_or_default()
        .history
        .len();
    story.repo.write(
        "hello/deployment.yaml",
        real_node::hello_deployment("bonjour from git"),
    )?;
    let second = story.repo.commit("bonjour")?;
    let leader_pid = container_pid(&pods.get(&leader).await?)?;
    let killed = Instant::now();
    kill(Pid::from_raw(leader_pid), Signal::SIGKILL)?;
    let new_holder = eventually("another controller holding the Lease", || async {
        let now = lease_holder(&story).await?;
        Ok((!now.is_empty() && now != holder).then_some(now))
    })
    .await?;
    let took_over = secs(killed);
    story
        .wait_app(&app, "Synced and Healthy at the second commit", |a| {
            is::synced_and_healthy(a) && is::at_revision(&second)(a)
        })
        .await?;
    let synced = secs(killed);
    story
        .eventually("the new pod says bonjour", || async {
            Ok(running_pod_says(&pods, "hello", &node).await? == "bonjour from git")
        })
        .await?;
    println!(
        "leader {leader} SIGKILLed -> Lease taken by {new_holder}: {took_over:.1} s; \
         -> the commit synced: {synced:.1} s"
    );
    // Three resync periods (3 s) for a second sync to show, if there were one.
    tokio::time::sleep(Duration::from_secs(9)).await;
    let status = story.app(&app).await?.status.unwrap_or_default();
    assert_eq!(status.history.len(), history + 1, "{:#?}", status.history);
    let synced_second = status.history.iter().filter(|h| h.revision == second);
    assert_eq!(synced_second.count(), 1, "{:#?}", status.history);

    // helm upgrade with a changed value: new pods of a new template, the Application kept.
    let uid = story.app(&app).await?.metadata.uid;
    let deployments: Api<Deployment> = story.ctx.api();
    let old_servers = component_pods(&pods, &server).await?;
    let old_hashes: Vec<String> = old_servers.iter().map(template_hash).collect();
    let upgrading = Instant::now();
    release.upgrade(&["--values", &values, "--set", "global.logging.format=json"])?;
    let sets: Api<StatefulSet> = story.ctx.api();
    eventually("every pod of the upgrade's templates, Ready", || async {
        // A standby is never Ready, so the StatefulSet's rolling update waits on it: the values
        // file tells users to delete the old controller pods, as this does.
        let update = sets
            .get(&controller)
            .await?
            .status
            .and_then(|s| s.update_revision)
            .unwrap_or_default();
        let controllers = component_pods(&pods, &controller).await?;
        for pod in &controllers {
            if revision(pod) != update && pod.metadata.deletion_timestamp.is_none() {
                pods.delete(&name(pod), &DeleteParams::default()).await?;
            }
        }
        let renewed = controllers.iter().filter(|p| revision(p) == update).count();
        let servers = ready_pods(&pods, &server).await?;
        let server_renewed =
            servers.len() == 1 && old_servers.iter().all(|old| name(old) != servers[0]);
        let leading = ready_pods(&pods, &controller).await?.len();
        Ok((renewed == 2 && server_renewed && leading == 1).then_some(()))
    })
    .await?;
    println!(
        "helm upgrade -> new API server and controllers, one leading: {:.1} s",
        secs(upgrading)
    );
    // The old pods may still be terminating: the ones staying are of the new template.
    let staying = component_pods(&pods, &server).await?.into_iter();
    let staying = staying.filter(|p| p.metadata.deletion_timestamp.is_none());
    let new_hashes: Vec<String> = staying.map(|p| template_hash(&p)).collect();
    assert!(
        new_hashes.iter().all(|new| !old_hashes.contains(new)),
        "pod templates before {old_hashes:?}, after {new_hashes:?}"
    );
    let after = deployments.get(&server).await?;
    let args = &after
        .spec
        .context("no spec")?
        .template
        .spec
        .context("no pod spec")?
        .containers[0]
        .args;
    assert!(args.iter().flatten().any(|a| a == "--log-json"), "{args:?}");
    let kept = story.app(&app).await?;
    assert_eq!(kept.metadata.uid, uid, "the Application was recreated");
    assert!(is::synced_and_healthy(&kept) && is::at_revision(&second)(&kept));

    // helm uninstall: ferry is gone, its CRDs and the Application stay.
    release.uninstall()?;
    let gone = |found: kube::Result<_>| matches!(found, Err(kube::Error::Api(e)) if e.code == 404);
    assert!(gone(deployments.get(&server).await.map(drop)));
    assert!(gone(sets.get(&controller).await.map(drop)));
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.get("applications.argoproj.io").await?;
    crds.get("appprojects.argoproj.io").await?;
    assert_eq!(story.app(&app).await?.metadata.uid, uid);
    drop(git);
    Ok(())
}

/// `scripts/image --profile debug --push` of the test suite's own binaries into the `real`
/// sandbox's registry; the pushed reference.
fn push_image() -> Result<String> {
    // target/debug/ferry → target
    let target = workspace_binary("ferry")?
        .parent()
        .and_then(Path::parent)
        .context("locating the target directory")?
        .to_path_buf();
    for binary in [
        "ferry-controller",
        "ferry-server",
        "ferry-appset-controller",
        "ferry-image-updater",
        "ferry-jsonnet",
        "ferry-sandbox",
    ] {
        workspace_binary(binary)?;
    }
    let out = Command::new(repo_root().join("scripts/image"))
        .args(["--profile", "debug", "--no-build", "--push"])
        .args(["--sandbox", real_node::SANDBOX])
        .env("CARGO_TARGET_DIR", &target)
        .stdin(Stdio::null())
        .output()
        .context("running scripts/image")?;
    if !out.status.success() {
        bail!(
            "scripts/image failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8(out.stdout)?;
    Ok(stdout.lines().last().unwrap_or_default().to_string())
}

/// The host PID of `pod`'s container: the real node is this host.
fn container_pid(pod: &Pod) -> Result<i32> {
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    let id = status
        .and_then(|s| s.first()?.container_id.clone())
        .context("a pod without a container")?;
    let id = id.strip_prefix("containerd://").unwrap_or(&id);
    let info: serde_json::Value = serde_json::from_str(&crictl(&["inspect", id])?)?;
    let pid = info["info"]["pid"]
        .as_i64()
        .context("crictl inspect gave no pid")?;
    Ok(i32::try_from(pid)?)
}

/// Removes the debug images of ferry that earlier runs left on the real node (each build of
/// other binaries is another ~200 MB there); one still in use stays.
fn remove_older_images(image: &str) -> Result<()> {
    let (repository, _) = image.rsplit_once(':').context("an image without a tag")?;
    let listed: serde_json::Value =
        serde_json::from_str(&crictl(&["images", "--output", "json"])?)?;
    let tags = listed["images"].as_array().into_iter().flatten();
    let tags = tags.flat_map(|i| i["repoTags"].as_array().into_iter().flatten());
    for tag in tags.filter_map(|t| t.as_str()) {
        let older = tag
            .strip_prefix(repository)
            .is_some_and(|t| t.contains("-debug."));
        if older
            && tag != image
            && let Err(err) = crictl(&["rmi", tag])
        {
            eprintln!("kept {tag} on the node: {err:#}");
        }
    }
    Ok(())
}

/// crictl on the real node's containerd; its output.
fn crictl(args: &[&str]) -> Result<String> {
    let sandbox = Sandbox::named(real_node::SANDBOX)?;
    let socket = sandbox.dir().join("containerd/containerd.sock");
    let out = Command::new(ferry_sandbox::toolchain::bin_dir().join("crictl"))
        .arg("--runtime-endpoint")
        .arg(format!("unix://{}", socket.display()))
        .args(args)
        .output()
        .context("running crictl")?;
    if !out.status.success() {
        bail!(
            "crictl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// The chart's values: the image from the sandbox registry with its credentials, every pod on
/// the real node, two controllers with leader election comparing every 3 s, plain HTTP.
fn values(image: &str) -> String {
    let (repository, tag) = image.rsplit_once(':').unwrap_or((image, ""));
    format!(
        "global:
  image:
    repository: {repository}
    tag: {tag}
  imagePullSecrets: [{{name: sandbox-registry}}]
  nodeSelector: {{{NODE_LABEL}: \"true\"}}
  tolerations: [{{key: {TAINT_KEY}, operator: Exists, effect: NoSchedule}}]
configs:
  params:
    server.insecure: true
controller:
  replicas: 2
  leaderElection:
    enabled: true
  extraArgs: [--resync=3]
"
    )
}

/// The registry's credentials as the pull Secret `sandbox-registry` (its auth.json is a
/// .dockerconfigjson).
async fn pull_secret(story: &Story) -> Result<()> {
    let sandbox = Sandbox::named(real_node::SANDBOX)?;
    let info = Registry::of(&sandbox).info()?;
    let auth = std::fs::read(&info.auth_config)?;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "sandbox-registry"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": ByteString(auth)},
    }))?;
    story
        .ctx
        .api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    Ok(())
}

/// A git:// URL on loopback, reachable from pods: a proxy on the default-route address.
async fn expose_to_pods(url: &str) -> Result<(Proxy, String)> {
    let ip = default_route_address().context("this host has no default route for pods to use")?;
    let rest = url.strip_prefix("git://").context("not a git:// URL")?;
    let (authority, path) = rest.split_once('/').context("a URL without a path")?;
    let proxy = Proxy::start_on(ip, authority.parse()?).await?;
    let exposed = format!("git://{}/{path}", proxy.addr());
    Ok((proxy, exposed))
}

/// The pods of the workload `owner` (a Deployment or StatefulSet of the release), by name
/// prefix.
async fn component_pods(pods: &Api<Pod>, owner: &str) -> Result<Vec<Pod>> {
    let prefix = format!("{owner}-");
    Ok(pods
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|p| name(p).starts_with(&prefix))
        .collect())
}

/// The names of `owner`'s pods that are Ready and not being deleted.
async fn ready_pods(pods: &Api<Pod>, owner: &str) -> Result<Vec<String>> {
    Ok(component_pods(pods, owner)
        .await?
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let conditions = p.status.as_ref().and_then(|s| s.conditions.as_ref());
            conditions
                .into_iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
        .map(name)
        .collect())
}

fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

/// The Deployment template a pod was made from.
fn template_hash(pod: &Pod) -> String {
    label(pod, "pod-template-hash")
}

fn label(pod: &Pod, key: &str) -> String {
    let labels = pod.metadata.labels.as_ref();
    labels.and_then(|l| l.get(key)).cloned().unwrap_or_default()
}

/// The StatefulSet revision a controller pod runs.
fn revision(pod: &Pod) -> String {
    label(pod, "controller-revision-hash")
}

/// Who holds the controllers' Lease (`<pod>_<suffix>`), or "" when no one does.
async fn lease_holder(story: &Story) -> Result<String> {
    let lease = story.ctx.api::<Lease>().get(LEASE).await?;
    Ok(lease
        .spec
        .and_then(|s| s.holder_identity)
        .unwrap_or_default())
}

fn secs(since: Instant) -> f64 {
    since.elapsed().as_secs_f64()
}
