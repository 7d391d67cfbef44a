//! The real `argocd` CLI against an app whose container really runs (the sandbox with a real
//! node): `argocd app logs` reads the app's pods — all of them, those under a resource, the last
//! lines, filtered, followed — and `argocd app actions list/run` lists a Deployment's built-in
//! actions and restarts it, the run an audit Event on the app naming the user.

use std::time::Duration;

use anyhow::{Context, Result};
use ferry_e2e::argocd::Argocd;
use ferry_e2e::{Story, is};
use ferry_testkit::git::GitDaemon;
use ferry_testkit::real_node;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Event;
use serde_json::{Value, json};

const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// The Pods of an `ApplicationTree`, by name.
fn pods_of(tree: &Value) -> Vec<String> {
    tree["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|node| node["kind"] == "Pod")
        .filter_map(|node| node["name"].as_str().map(str::to_string))
        .collect()
}

/// A stream of Server-Sent Events whose data are `{"result": …}`.
struct TreeStream {
    body: futures::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buffer: String,
}

impl TreeStream {
    async fn open(http: &reqwest::Client, url: &str, token: &str) -> Result<Self> {
        let response = http.get(url).bearer_auth(token).send().await?;
        anyhow::ensure!(response.status().is_success(), "{}", response.text().await?);
        Ok(Self {
            body: response
                .bytes_stream()
                .map(|chunk| chunk.map(|bytes| bytes.to_vec()))
                .boxed(),
            buffer: String::new(),
        })
    }

    /// The next event's `result`.
    async fn next(&mut self) -> Result<Value> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                if let Some(data) = event.lines().find_map(|line| line.strip_prefix("data:")) {
                    let data: Value = serde_json::from_str(data.trim())?;
                    return Ok(data["result"].clone());
                }
                continue;
            }
            let chunk = self.body.next().await.context("the stream ended")??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[tokio::test]
async fn the_argocd_cli_reads_an_apps_logs_and_runs_its_actions() -> Result<()> {
    let mut story = Story::on_real_node().await?;
    story.repo.write(
        "hello/deployment.yaml",
        real_node::hello_deployment("hello from git"),
    )?;
    story.repo.commit("hello")?;
    let git = GitDaemon::start(&story.repo)?;
    story.start_controller()?;
    let server = story.start_server().await?;
    let password =
        ferry_testkit::server::admin_password(&story.ctx.client(), story.namespace()).await?;
    let work = tempfile::tempdir()?;
    let argocd = Argocd::new(work.path());
    argocd.login(&server.address(), &password)?;

    let app = story.app_name("workload");
    argocd.run(&[
        "app",
        "create",
        &app,
        "--repo",
        &git.url(),
        "--path",
        "hello",
        "--dest-server",
        "https://kubernetes.default.svc",
        "--dest-namespace",
        story.namespace(),
        "--sync-policy",
        "automated",
    ])?;
    story
        .wait_app(&app, "Synced and Healthy", is::synced_and_healthy)
        .await?;

    // The logs of all the app's pods, with no pod named.
    story
        .eventually("argocd app logs shows what the pod said", || async {
            Ok(argocd
                .run(&["app", "logs", &app])?
                .contains("hello from git"))
        })
        .await?;
    // Those under one resource, the last line; none under a kind the app does not have.
    let by_resource = argocd.run(&[
        "app",
        "logs",
        &app,
        "--kind",
        "Deployment",
        "--name",
        "hello",
        "--tail",
        "1",
    ])?;
    assert_eq!(by_resource.trim(), "hello from git");
    let none = argocd.run(&["app", "logs", &app, "--kind", "StatefulSet"])?;
    assert_eq!(none.trim(), "");
    let filtered_out = argocd.run(&["app", "logs", &app, "--filter", "!hello"])?;
    assert_eq!(filtered_out.trim(), "");
    // Followed: the line comes, and the stream stays open until the CLI is stopped.
    argocd.until_line(
        &["app", "logs", &app, "--follow", "-c", "hello"],
        Duration::from_secs(60),
        |line| line == "hello from git",
    )?;

    // The app's resource tree as a stream (Argo CD's WatchResourceTree, REST side): first as it is.
    let base = format!("http://{}", server.address());
    let http = reqwest::Client::new();
    let session: Value = http
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await?
        .json()
        .await?;
    let token = session["token"].as_str().context("a session token")?;
    let mut trees = TreeStream::open(
        &http,
        &format!("{base}/api/v1/stream/applications/{app}/resource-tree"),
        token,
    )
    .await?;
    let first_pods = pods_of(&trees.next().await?);
    assert_eq!(first_pods.len(), 1, "{first_pods:?}");

    // The Deployment's built-in actions, then a restart.
    let listed = argocd.run(&["app", "actions", "list", &app])?;
    let rows: Vec<Vec<&str>> = listed
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    for (action, disabled) in [("restart", "false"), ("resume", "true"), ("scale", "false")] {
        assert!(
            rows.contains(&vec!["apps", "Deployment", "hello", action, disabled]),
            "{listed}"
        );
    }
    argocd.run(&[
        "app",
        "actions",
        "run",
        &app,
        "restart",
        "--kind",
        "Deployment",
    ])?;
    let deployments: kube::Api<Deployment> = story.ctx.api();
    let restarted = deployments.get("hello").await?;
    let annotations = restarted
        .spec
        .and_then(|spec| spec.template.metadata)
        .and_then(|metadata| metadata.annotations)
        .unwrap_or_default();
    assert!(annotations.contains_key(RESTARTED_AT), "{annotations:?}");
    // The restart rolled out a new pod, whose log the CLI reads in turn.
    story
        .eventually("the restarted pod says hello", || async {
            let deployment = deployments.get("hello").await?;
            let rolled_out = deployment.status.is_some_and(|status| {
                status.updated_replicas == Some(1)
                    && status.ready_replicas == Some(1)
                    && status.replicas == Some(1)
            });
            Ok(rolled_out
                && argocd.run(&["app", "logs", &app, "--tail", "1"])?.trim() == "hello from git")
        })
        .await?;
    // The tree stream has sent the new pod too.
    tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            if pods_of(&trees.next().await?)
                .iter()
                .any(|pod| !first_pods.contains(pod))
            {
                return anyhow::Ok(());
            }
        }
    })
    .await
    .context("the resource tree stream sent no tree with the restarted pod")??;

    let events: kube::Api<Event> = story.ctx.api();
    let audited: Vec<String> = events
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter(|event| event.involved_object.name.as_deref() == Some(app.as_str()))
        .filter(|event| event.reason.as_deref() == Some("ResourceActionRan"))
        .filter_map(|event| event.message)
        .collect();
    assert!(
        audited
            .iter()
            .any(|message| message.contains("ran action restart on resource apps/Deployment/hello")),
        "{audited:?}"
    );

    // An action the Deployment does not have is refused with the reason.
    let refused = argocd.refused(&[
        "app",
        "actions",
        "run",
        &app,
        "explode",
        "--kind",
        "Deployment",
    ])?;
    assert!(
        refused.contains("explode") && refused.contains("is not available for apps/Deployment"),
        "{refused}"
    );
    argocd.run(&["app", "delete", &app, "--yes"])?;
    Ok(())
}
