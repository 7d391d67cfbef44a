//! The API server in front of a running controller, told from a UI's or CI's seat: log in,
//! watch the app's stream while requesting a sync, see the controller's view of the app (its
//! managed resources and their diff, its resource tree, its manifests at any revision), and
//! find the sync in the app's audit events under the user who asked for it.

use std::time::Duration;

use anyhow::{Context, Result};
use ferry_e2e::{Story, is};
use ferry_testkit::server::ServerProcess;
use futures::StreamExt;
use serde_json::{Value, json};

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

async fn admin_password(story: &Story) -> Result<String> {
    ferry_testkit::server::admin_password(&story.ctx.client(), story.namespace()).await
}

impl Api {
    async fn login(story: &Story, server: &ServerProcess) -> Result<Self> {
        Ok(Self {
            http: reqwest::Client::new(),
            base: format!("http://{}", server.address()),
            token: story.admin_token(server).await?,
        })
    }

    async fn get(&self, path: &str) -> Result<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "GET {path}: {status} {body}");
        Ok(body)
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "POST {path}: {status} {body}");
        Ok(body)
    }
}

fn find<'a>(items: &'a Value, kind: &str, name: &str) -> Option<&'a Value> {
    items
        .as_array()?
        .iter()
        .find(|item| item["kind"] == kind && item["name"] == name)
}

#[tokio::test]
async fn a_client_syncs_through_the_server_and_sees_the_controllers_view() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    let app = story.app_name("guestbook");
    story.create_app(&app, "guestbook", &[])?;
    let first = story.repo.head()?;
    story
        .wait_app(&app, "OutOfSync before any sync", is::out_of_sync)
        .await?;
    let server = story.start_server().await?;
    let api = Api::login(&story, &server).await?;

    // The stream shows the sync the server was asked for, through to its end.
    let stream = api
        .http
        .get(format!(
            "{}/api/v1/stream/applications?name={app}",
            api.base
        ))
        .bearer_auth(&api.token)
        .send()
        .await?;
    anyhow::ensure!(stream.status().is_success(), "{}", stream.status());
    let mut stream = stream.bytes_stream();
    api.post(&format!("/api/v1/applications/{app}/sync"), json!({}))
        .await?;
    let mut buffer = String::new();
    let succeeded = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(chunk) = stream.next().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk?));
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                let Some(data) = event.trim().strip_prefix("data: ") else {
                    continue;
                };
                let event: Value = serde_json::from_str(data)?;
                let status = &event["result"]["application"]["status"];
                if status["operationState"]["phase"] == "Succeeded"
                    && status["sync"]["status"] == "Synced"
                {
                    return anyhow::Ok(());
                }
            }
        }
        anyhow::bail!("the stream ended")
    })
    .await;
    succeeded.context("no Succeeded sync on the stream within 120 s")??;

    // The controller's view: managed resources with live and target states and no diff.
    let managed = api
        .get(&format!("/api/v1/applications/{app}/managed-resources"))
        .await?;
    let deployment = find(&managed["items"], "Deployment", "guestbook")
        .with_context(|| format!("no Deployment in {managed}"))?;
    let target: Value = serde_json::from_str(deployment["targetState"].as_str().unwrap())?;
    let live: Value = serde_json::from_str(deployment["liveState"].as_str().unwrap())?;
    assert_eq!(target["spec"]["replicas"], 2);
    assert_eq!(live["spec"]["replicas"], 2);
    assert_eq!(deployment["diff"], "", "{deployment}");

    // The tree: the Deployment's ReplicaSet and Pods hang under it, with health.
    story
        .eventually("a tree with the Deployment's pods", || async {
            let tree = api
                .get(&format!("/api/v1/applications/{app}/resource-tree"))
                .await?;
            let nodes = tree["nodes"].as_array().cloned().unwrap_or_default();
            let deployment = find(&tree["nodes"], "Deployment", "guestbook");
            let replica_set = nodes.iter().find(|node| {
                node["kind"] == "ReplicaSet" && node["parentRefs"][0]["kind"] == "Deployment"
            });
            let pods = nodes
                .iter()
                .filter(|node| {
                    node["kind"] == "Pod" && node["parentRefs"][0]["kind"] == "ReplicaSet"
                })
                .count();
            Ok(
                deployment.is_some_and(|d| d["health"]["status"] == "Healthy")
                    && replica_set.is_some()
                    && pods == 2,
            )
        })
        .await?;

    // A commit: after a refresh the app is OutOfSync and the diff shows the new replica count;
    // the manifests of either revision can be read.
    let deployment_yaml =
        std::fs::read_to_string(story.repo.work_path().join("guestbook/deployment.yaml"))?;
    story.repo.write(
        "guestbook/deployment.yaml",
        deployment_yaml.replace("replicas: 2", "replicas: 3"),
    )?;
    story.repo.commit("three replicas")?;
    let refreshed = api
        .get(&format!("/api/v1/applications/{app}?refresh=normal"))
        .await?;
    assert_eq!(
        refreshed["status"]["sync"]["status"], "OutOfSync",
        "{refreshed}"
    );
    let managed = api
        .get(&format!("/api/v1/applications/{app}/managed-resources"))
        .await?;
    let deployment = find(&managed["items"], "Deployment", "guestbook").unwrap();
    assert!(
        deployment["diff"].as_str().unwrap().contains("replicas: 3"),
        "{deployment}"
    );
    let replicas = |manifests: &Value| -> Option<Value> {
        manifests["manifests"].as_array()?.iter().find_map(|m| {
            let object: Value = serde_json::from_str(m.as_str()?).ok()?;
            (object["kind"] == "Deployment").then(|| object["spec"]["replicas"].clone())
        })
    };
    let now = api
        .get(&format!("/api/v1/applications/{app}/manifests"))
        .await?;
    assert_eq!(replicas(&now), Some(json!(3)));
    let then = api
        .get(&format!(
            "/api/v1/applications/{app}/manifests?revision={first}"
        ))
        .await?;
    assert_eq!(replicas(&then), Some(json!(2)));
    assert_eq!(then["revision"], first.as_str());

    // The CLI, logged in, shows the same through the server.
    let password = admin_password(&story).await?;
    story.ferry(&[
        "login",
        &server.address(),
        "--plaintext",
        "--username",
        "admin",
        "--password",
        &password,
    ])?;
    let diff = story.ferry_output(&["app", "diff", &app])?;
    assert_eq!(diff.status.code(), Some(1), "{diff:?}");
    assert!(
        String::from_utf8_lossy(&diff.stdout).contains("replicas: 3"),
        "{diff:?}"
    );
    let resources = story.ferry(&["app", "resources", &app])?;
    assert!(resources.contains("Deployment"), "{resources}");
    let manifests = story.ferry(&["app", "manifests", &app])?;
    assert!(manifests.contains("replicas: 3"), "{manifests}");

    // The audit trail names who asked for the sync.
    let events = api
        .get(&format!("/api/v1/applications/{app}/events"))
        .await?;
    let messages: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|event| event["message"].as_str())
        .collect();
    assert!(
        messages.contains(&"admin initiated sync to HEAD"),
        "{messages:?}"
    );
    server.stop().await?;
    Ok(())
}
