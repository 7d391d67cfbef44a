//! Controllers side by side. Two replicas elect a leader on a Lease: only the leader
//! reconciles, and when it is killed in the middle of a sync the standby takes the Lease and
//! finishes that sync, each hook having run once. Two shards split the destination clusters as
//! Argo CD's round-robin does: each replica reconciles only the apps of its own clusters. And
//! API server replicas count failed logins together: guesses spread over them lock the
//! username out on all of them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ferry_e2e::{Replica, Story, TIMEOUT, is, job_hook};
use ferry_testkit::cli::CliHome;
use ferry_testkit::proxy::Proxy;
use ferry_testkit::server::{ServerProcess, admin_password, workspace_binary};
use ferry_types::application::OperationPhase;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::{Value, json};

const LEASE: &str = "ferry-application-controller-0";

fn app_manifests() -> String {
    let waves = (0..3).map(|wave| {
        format!(
            "apiVersion: v1
kind: ConfigMap
metadata:
  name: wave{wave}
  annotations: {{argocd.argoproj.io/sync-wave: \"{wave}\"}}
data: {{wave: \"{wave}\"}}
"
        )
    });
    [
        job_hook("pre", "PreSync", "HookSucceeded"),
        job_hook("post", "PostSync", "HookSucceeded"),
    ]
    .into_iter()
    .chain(waves)
    .collect::<Vec<_>>()
    .join("---\n")
}

/// The Lease's holder, if any.
async fn holder(story: &Story) -> Option<String> {
    let lease = story.ctx.api::<Lease>().get_opt(LEASE).await.ok()??;
    lease.spec?.holder_identity
}

async fn wait_for_holder(story: &Story, identity: &str) -> Result<Duration> {
    let started = Instant::now();
    while holder(story).await.as_deref() != Some(identity) {
        if started.elapsed() > TIMEOUT {
            bail!(
                "{identity} never held the Lease (holder: {:?})",
                holder(story).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(started.elapsed())
}

async fn wait_for_log(replica: &Replica, words: &[&str]) -> Result<()> {
    let started = Instant::now();
    while replica.log_lines_with(words).is_empty() {
        if started.elapsed() > TIMEOUT {
            bail!(
                "{} never logged {words:?}:\n{}",
                replica.name,
                replica.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test]
async fn a_standby_takes_over_a_killed_leaders_sync_and_runs_each_hook_once() -> Result<()> {
    let story = Story::new().await?;
    story.repo.write("hooked/all.yaml", app_manifests())?;
    story.repo.commit("an app with hooks and waves")?;

    // Every Job ever created, by name: a hook run twice shows as two uids.
    let created: Arc<Mutex<BTreeMap<String, BTreeSet<String>>>> = Arc::default();
    let seen = created.clone();
    let (hook_created, mut hook_moments) = tokio::sync::mpsc::unbounded_channel();
    let jobs = story.ctx.api::<Job>();
    let watching = tokio::spawn(async move {
        let mut events = watcher(jobs, watcher::Config::default()).boxed();
        while let Some(Ok(event)) = events.next().await {
            if let watcher::Event::Apply(job) = event
                && let (Some(name), Some(uid)) = (job.metadata.name, job.metadata.uid)
                && seen
                    .lock()
                    .unwrap()
                    .entry(name.clone())
                    .or_default()
                    .insert(uid)
            {
                let _ = hook_created.send(name);
            }
        }
    });

    let elect = |identity: &'static str| ["--leader-elect", "--leader-elect-identity", identity];
    let mut leader = story.start_replica("a", &elect("replica-a"), &[])?;
    wait_for_holder(&story, "replica-a").await?;
    let standby = story.start_replica("b", &elect("replica-b"), &[])?;
    wait_for_log(&standby, &["waiting to lead"]).await?;

    let app = story.app_name("hooked");
    story.create_app(&app, "hooked", &[])?;
    story.wait_app(&app, "OutOfSync", is::out_of_sync).await?;
    // Only the leader reconciles: the standby has not even started its controller.
    assert!(standby.log_lines_with(&["controller started"]).is_empty());
    assert_eq!(holder(&story).await.as_deref(), Some("replica-a"));

    story.ferry(&["app", "sync", &app, "--async"])?;
    // The leader dies the moment the PreSync hook exists, before it can record it.
    let hook = tokio::time::timeout(TIMEOUT, hook_moments.recv())
        .await
        .context("no hook was created")?;
    assert_eq!(hook.as_deref(), Some("pre"));
    leader.kill()?;
    let killed = Instant::now();

    let takeover = wait_for_holder(&story, "replica-b").await?;
    let done = story
        .wait_app(&app, "the operation to end", is::operation_finished)
        .await?;
    let finished = killed.elapsed();
    watching.abort();

    let status = done.status.context("no status")?;
    let state = status.operation_state.context("no operation state")?;
    // What `scripts/faults` reports.
    println!(
        "faults: leader loss: the standby held the Lease {:.1} s after the leader's SIGKILL \
         (lease duration 15 s, renew deadline 10 s, retry period 2 s); the sync it resumed ended \
         {:.1} s after the kill",
        takeover.as_secs_f64(),
        finished.as_secs_f64()
    );
    assert_eq!(state.phase, OperationPhase::Succeeded, "{}", state.message);
    assert!(
        standby
            .log_lines_with(&["resuming the operation left running"])
            .len()
            == 1,
        "the standby did not resume the sync:\n{}",
        standby.log()
    );
    let created = created.lock().unwrap().clone();
    for hook in ["pre", "post"] {
        assert_eq!(
            created.get(hook).map_or(0, BTreeSet::len),
            1,
            "hook {hook} ran other than once: {created:?}"
        );
    }
    assert_eq!(status.history.len(), 1, "{:?}", status.history);
    Ok(())
}

#[tokio::test]
async fn a_leader_cut_off_from_the_api_server_stops_before_its_standby_leads() -> Result<()> {
    let story = Story::new().await?;
    let proxy = Proxy::in_front_of(story.ctx.kubeconfig()).await?;
    let elect = |identity: &'static str| ["--leader-elect", "--leader-elect-identity", identity];
    let mut leader = story.start_replica_through("a", &elect("replica-a"), &proxy)?;
    wait_for_holder(&story, "replica-a").await?;
    // A leader cut off while still starting (reading its settings) fails its start instead:
    // this story is about a leader at work.
    wait_for_log(&leader, &["controller started"]).await?;
    let standby = story.start_replica("b", &elect("replica-b"), &[])?;
    wait_for_log(&standby, &["waiting to lead"]).await?;

    proxy.cut();
    let cut = Instant::now();
    // A leader that cannot renew must stop writing before anyone else may lead: when it
    // exits, the Lease still names it.
    let stopped = leader.wait_exit(TIMEOUT).await?;
    let exited = cut.elapsed();
    let holder_at_exit = holder(&story).await;
    assert!(stopped, "the leader kept running:\n{}", leader.log());
    assert!(
        !leader.log_lines_with(&["no longer the leader"]).is_empty(),
        "the leader exited for another reason:\n{}",
        leader.log()
    );
    assert_eq!(holder_at_exit.as_deref(), Some("replica-a"));
    let took_over = exited + wait_for_holder(&story, "replica-b").await?;
    println!(
        "leader cut off: it exited {:.1} s after losing the API server, the standby held the \
         Lease {:.1} s after",
        exited.as_secs_f64(),
        took_over.as_secs_f64()
    );
    Ok(())
}

/// The shard mapping of dynamic distribution: shard → controller name.
async fn shard_claims(story: &Story) -> Result<BTreeMap<i64, String>> {
    let Some(config_map) = story
        .ctx
        .api::<ConfigMap>()
        .get_opt("argocd-app-controller-shard-cm")
        .await?
    else {
        return Ok(BTreeMap::new());
    };
    let data = config_map.data.unwrap_or_default();
    let mapping: Vec<Value> = serde_json::from_str(&data["shardControllerMapping"])?;
    Ok(mapping
        .iter()
        .map(|claim| {
            let shard = claim["ShardNumber"].as_i64().unwrap_or(-1);
            let name = claim["ControllerName"].as_str().unwrap_or_default();
            (shard, name.to_string())
        })
        .collect())
}

#[tokio::test]
async fn dynamic_distribution_deals_the_clusters_again_when_the_deployment_scales() -> Result<()> {
    let story = Story::new().await?;
    register_sandbox_clusters(&story, &["loopback"]).await?;
    // The controller Deployment whose replicas are the shards (its pods are not these
    // controllers, and need not run).
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "ferry-application-controller"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "controller"}},
            "template": {
                "metadata": {"labels": {"app": "controller"}},
                "spec": {
                    "nodeSelector": {"ferry.dev/no-such-node": "true"},
                    "containers": [{"name": "c", "image": "registry.example/ferry:0"}],
                },
            },
        },
    }))?;
    let deployments = story.ctx.api::<Deployment>();
    deployments
        .create(&PostParams::default(), &deployment)
        .await?;

    let dynamic = |name: &'static str| {
        [
            "--dynamic-cluster-distribution-enabled",
            "--controller-hostname",
            name,
            "--sharding-method",
            "round-robin",
        ]
    };
    let ctl_a = story.start_replica("ctl-a", &dynamic("ctl-a"), &[])?;
    story
        .eventually("ctl-a to claim shard 0", || async {
            Ok(shard_claims(&story).await?.get(&0).map(String::as_str) == Some("ctl-a"))
        })
        .await?;
    let ctl_b = story.start_replica("ctl-b", &dynamic("ctl-b"), &[])?;
    story
        .eventually("ctl-b to claim shard 1", || async {
            Ok(shard_claims(&story).await?.get(&1).map(String::as_str) == Some("ctl-b"))
        })
        .await?;

    // Round robin over in-cluster (id "") and loopback: shards 0 and 1.
    let clusters = ["in-cluster", "loopback"];
    write_cluster_apps(&story, clusters.into_iter(), "one app per cluster")?;
    let apps = create_cluster_apps(&story, clusters.into_iter())?;
    for app in apps.values() {
        story.wait_app(app, "Synced", is::synced).await?;
    }
    let synced_by = |replica: &Replica, app: &str, revision: &str| {
        !replica
            .log_lines_with(&[app, revision, "automated sync"])
            .is_empty()
    };
    let first = story.app(&apps["in-cluster"]).await?;
    let first = first.status.context("no status")?.sync.revision;
    assert!(synced_by(&ctl_a, &apps["in-cluster"], &first));
    assert!(!synced_by(&ctl_b, &apps["in-cluster"], &first));
    assert!(synced_by(&ctl_b, &apps["loopback"], &first));
    assert!(!synced_by(&ctl_a, &apps["loopback"], &first));

    // One replica: the mapping starts over, one controller takes shard 0 and every cluster,
    // the other finds no shard and waits.
    let scaled = Instant::now();
    deployments
        .patch(
            "ferry-application-controller",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await?;
    for replica in [&ctl_a, &ctl_b] {
        story
            .eventually(&format!("{} to see one replica", replica.name), || async {
                Ok(!replica
                    .log_lines_with(&["this controller's shard changed"])
                    .is_empty())
            })
            .await?;
    }
    let claims = shard_claims(&story).await?;
    println!(
        "dynamic distribution: both controllers took the new replica count {:.1} s after the \
         Deployment scaled to 1; shard 0 went to {}",
        scaled.elapsed().as_secs_f64(),
        claims[&0]
    );
    let (owner, idle) = if claims[&0] == "ctl-a" {
        (&ctl_a, &ctl_b)
    } else {
        (&ctl_b, &ctl_a)
    };
    let second = write_cluster_apps(&story, clusters.into_iter(), "second commit")?;
    for app in apps.values() {
        story
            .wait_app(app, "the second commit", is::at_revision(&second))
            .await?;
        assert!(synced_by(owner, app, &second), "{}", owner.log());
        assert!(!synced_by(idle, app, &second), "{}", idle.log());
    }
    Ok(())
}

/// A copy of the story's kubeconfig with one more context per `(name, server)`, sharing its
/// credentials.
fn kubeconfig_with_servers(from: &Path, to: &Path, servers: &[(&str, &str)]) -> Result<()> {
    let mut config: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(from)?)?;
    let cluster = config["clusters"][0].clone();
    let user = config["users"][0]["name"].clone();
    for (name, server) in servers {
        let mut entry = cluster.clone();
        entry["name"] = (*name).into();
        entry["cluster"]["server"] = (*server).into();
        let context = serde_yaml::from_str::<serde_yaml::Value>(&format!(
            "{{name: {name}, context: {{cluster: {name}}}}}"
        ))?;
        let mut context = context;
        context["context"]["user"] = user.clone();
        config["clusters"]
            .as_sequence_mut()
            .context("clusters")?
            .push(entry);
        config["contexts"]
            .as_sequence_mut()
            .context("contexts")?
            .push(context);
    }
    std::fs::write(to, serde_yaml::to_string(&config)?)?;
    Ok(())
}

#[tokio::test]
async fn each_shard_reconciles_only_the_apps_of_its_own_clusters() -> Result<()> {
    let story = Story::new().await?;
    // Two registered clusters that are the sandbox under two URLs: distinct clusters to
    // ferry, as to Argo CD.
    let servers = register_sandbox_clusters(&story, &["loopback", "localhost"]).await?;
    let (loopback, localhost) = (servers["loopback"].clone(), servers["localhost"].clone());

    // Argo CD's round robin over the clusters in id order, the in-cluster cluster (id "")
    // first: it and the cluster with the smaller Secret uid land on different shards.
    let by_uid = cluster_names_by_uid(&story).await?;
    let shard_of: BTreeMap<&str, usize> = [
        ("in-cluster", 0),
        (by_uid[0].1.as_str(), 1),
        (by_uid[1].1.as_str(), 0),
    ]
    .into();

    write_cluster_apps(&story, shard_of.keys().copied(), "one app per cluster")?;
    let shard_env = |shard: &'static str| {
        [
            ("ARGOCD_CONTROLLER_REPLICAS", "2"),
            ("ARGOCD_CONTROLLER_SHARD", shard),
            ("ARGOCD_CONTROLLER_SHARDING_ALGORITHM", "round-robin"),
        ]
    };
    let replicas = [
        story.start_replica("shard0", &[], &shard_env("0"))?,
        story.start_replica("shard1", &[], &shard_env("1"))?,
    ];
    let apps = create_cluster_apps(&story, shard_of.keys().copied())?;
    for app in apps.values() {
        story.wait_app(app, "Synced", is::synced).await?;
    }

    let servers: BTreeMap<&str, &str> = [
        ("in-cluster", "https://kubernetes.default.svc"),
        ("loopback", loopback.as_str()),
        ("localhost", localhost.as_str()),
    ]
    .into();
    for (cluster, app) in &apps {
        let mine = shard_of[cluster];
        for (shard, replica) in replicas.iter().enumerate() {
            // Only the shard's replica synced the app, only it watches the cluster, and only it
            // reports the app in its metrics.
            let synced = replica.log_lines_with(&[app, "automated sync"]);
            let watched = replica.log_lines_with(&[servers[cluster], "cluster cache synced"]);
            let metrics = replica.metrics().await?;
            let reported: Vec<String> = metrics
                .lines()
                .filter(|line| line.starts_with("argocd_app_info{") && line.contains(app.as_str()))
                .map(str::to_string)
                .collect();
            for (what, lines) in [
                ("synced", synced),
                ("watched", watched),
                ("reported", reported),
            ] {
                assert_eq!(
                    !lines.is_empty(),
                    shard == mine,
                    "{what} {app} (cluster {cluster}, shard {mine}) from replica {}:\n{}",
                    replica.name,
                    replica.log()
                );
            }
        }
    }

    // An API server given both shards finds each app's views at its owner; one given a single
    // shard says that no replica it knows owns the other shard's apps.
    let both = story
        .start_server_for(&[&replicas[0], &replicas[1]])
        .await?;
    let only_shard1 = story.start_server_for(&[&replicas[1]]).await?;
    let password = admin_password(&story.ctx.client(), story.namespace()).await?;
    for (cluster, app) in &apps {
        let path = format!("/api/v1/applications/{app}/resource-tree");
        let (status, tree) = get_as_admin(&both, &password, &path).await?;
        assert_eq!(status, 200, "{app}: {tree}");
        let kinds: Vec<&str> = tree["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|node| node["kind"].as_str())
            .collect();
        assert!(kinds.contains(&"ConfigMap"), "{app}: {tree}");
        let (status, answer) = get_as_admin(&only_shard1, &password, &path).await?;
        if shard_of[cluster] == 1 {
            assert_eq!(status, 200, "{app}: {answer}");
        } else {
            assert_eq!(status, 503, "{app}: {answer}");
            let message = answer["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("owns the application's cluster"),
                "{message}"
            );
        }
    }
    Ok(())
}

/// Logs in as `admin` at `server` and GETs `path`: the status and the JSON body.
async fn get_as_admin(server: &ServerProcess, password: &str, path: &str) -> Result<(u16, Value)> {
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.address());
    let login: Value = http
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["token"].as_str().context("no token")?;
    let response = http
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await?;
    Ok((response.status().as_u16(), response.json().await?))
}

/// Cluster Secrets (`ferry cluster add`) for the sandbox under `names`: `loopback` is its
/// `https://127.0.0.1:PORT`, `localhost` its `https://localhost:PORT`; their server URLs by name.
async fn register_sandbox_clusters(
    story: &Story,
    names: &[&str],
) -> Result<BTreeMap<String, String>> {
    let kubeconfig: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(story.ctx.kubeconfig())?)?;
    let loopback = kubeconfig["clusters"][0]["cluster"]["server"]
        .as_str()
        .context("no server")?
        .to_string();
    let servers: BTreeMap<String, String> = names
        .iter()
        .map(|name| {
            let server = match *name {
                "localhost" => loopback.replace("127.0.0.1", "localhost"),
                _ => loopback.clone(),
            };
            (name.to_string(), server)
        })
        .collect();
    let work = tempfile::tempdir()?;
    let clusters_config = work.path().join("kubeconfig");
    let contexts: Vec<(&str, &str)> = servers
        .iter()
        .map(|(name, server)| (name.as_str(), server.as_str()))
        .collect();
    kubeconfig_with_servers(story.ctx.kubeconfig(), &clusters_config, &contexts)?;
    for name in names {
        let added = CliHome::new()?
            .command(workspace_binary("ferry")?)
            .args(["--namespace", story.namespace(), "--kubeconfig"])
            .arg(&clusters_config)
            .args(["cluster", "add", name, "--name", name])
            .output()?;
        assert!(added.status.success(), "{added:?}");
    }
    Ok(servers)
}

/// The registered clusters' names, in the order of their Secrets' uids (Argo CD's cluster ids).
async fn cluster_names_by_uid(story: &Story) -> Result<Vec<(String, String)>> {
    let secrets = story
        .ctx
        .api::<Secret>()
        .list(&ListParams::default().labels("argocd.argoproj.io/secret-type=cluster"))
        .await?;
    let mut by_uid: Vec<(String, String)> = secrets
        .items
        .iter()
        .map(|s| {
            let name = &s.data.as_ref().expect("cluster secret data")["name"].0;
            let uid = s.metadata.uid.clone().unwrap_or_default();
            (uid, String::from_utf8_lossy(name).into_owned())
        })
        .collect();
    by_uid.sort();
    Ok(by_uid)
}

/// A ConfigMap per cluster, each in a directory named after it, committed as `message`.
fn write_cluster_apps<'a>(
    story: &Story,
    clusters: impl Iterator<Item = &'a str>,
    message: &str,
) -> Result<String> {
    for cluster in clusters {
        story.repo.write(
            &format!("{cluster}/settings.yaml"),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings-{cluster}}}\n\
                 data: {{cluster: {cluster}, commit: {message:?}}}\n"
            ),
        )?;
    }
    story.repo.commit(message)
}

/// An automatically synced app per cluster, deploying its directory to it; by cluster.
fn create_cluster_apps<'a>(
    story: &Story,
    clusters: impl Iterator<Item = &'a str>,
) -> Result<BTreeMap<&'a str, String>> {
    let url = story.repo.file_url();
    let mut apps = BTreeMap::new();
    for cluster in clusters {
        let app = story.app_name(cluster);
        story.ferry(&[
            "app",
            "create",
            &app,
            "--repo",
            &url,
            "--path",
            cluster,
            "--dest-name",
            cluster,
            "--dest-namespace",
            story.namespace(),
            "--sync-policy",
            "automated",
        ])?;
        apps.insert(cluster, app);
    }
    Ok(apps)
}

/// The HTTP status of a password login as `admin` at `server`.
async fn login(server: &ServerProcess, password: &str) -> Result<u16> {
    let response = reqwest::Client::new()
        .post(format!("http://{}/api/v1/session", server.address()))
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await?;
    Ok(response.status().as_u16())
}

/// The failures and lockouts of `admin` the replicas published: (failures, locked).
async fn shared_admin_failures(story: &Story) -> Result<(usize, bool)> {
    let Some(config_map) = story
        .ctx
        .api::<ConfigMap>()
        .get_opt("ferry-login-failures")
        .await?
    else {
        return Ok((0, false));
    };
    let (mut failures, mut locked) = (0, false);
    for (key, value) in config_map.data.unwrap_or_default() {
        if key.starts_with("users.") {
            let admin = &serde_json::from_str::<Value>(&value)?["admin"];
            failures += admin["f"].as_array().map_or(0, Vec::len);
            locked |= admin["l"].is_i64();
        }
    }
    Ok((failures, locked))
}

#[tokio::test]
async fn guesses_spread_over_api_server_replicas_lock_the_username_out_on_all() -> Result<()> {
    let story = Story::new().await?;
    let (first, second) = (story.start_server().await?, story.start_server().await?);
    let password = admin_password(&story.ctx.client(), story.namespace()).await?;

    // Three wrong guesses at the first replica, two at the second: Argo CD's five in all.
    for _ in 0..3 {
        assert_eq!(login(&first, "wrong").await?, 401);
    }
    story
        .eventually("the first replica to share its failures", || async {
            Ok(shared_admin_failures(&story).await? == (3, false))
        })
        .await?;
    // The second replica follows the ConfigMap through a watch: give it a moment.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for _ in 0..2 {
        assert_eq!(login(&second, "wrong").await?, 401);
    }
    // The fifth guess locked admin out, even for the right password: at the second replica
    // at once, and at the first once it read the lockout.
    assert_eq!(login(&second, &password).await?, 429);
    story
        .eventually("the second replica to share the lockout", || async {
            Ok(shared_admin_failures(&story).await?.1)
        })
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(login(&first, &password).await?, 429);
    Ok(())
}
