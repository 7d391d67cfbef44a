//! The GitOps loop, told from a user's seat: create an app with the CLI, watch the controller
//! bring it to Synced/Healthy, then change Git, change the cluster, and remove a file.

use anyhow::Result;
use ferry_e2e::{Story, is};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};

#[tokio::test]
async fn create_then_git_change_then_drift_then_prune() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    let app = story.app_name("guestbook");
    story.create_app(
        &app,
        "guestbook",
        &["--sync-policy", "automated", "--self-heal", "--auto-prune"],
    )?;

    // Created: the controller syncs it and the Deployment's pods become ready through kwok.
    let first = story.repo.head()?;
    let synced = story
        .wait_app(&app, "Synced and Healthy at the first commit", |a| {
            is::synced_and_healthy(a) && is::at_revision(&first)(a) && is::operation_finished(a)
        })
        .await?;
    let status = synced.status.unwrap();
    assert_eq!(status.resources.len(), 3, "{:?}", status.resources);
    assert_eq!(status.history.len(), 1);
    assert_eq!(status.history[0].revision, first);
    assert_eq!(status.summary.images, ["registry.example/guestbook:1.0"]);
    let configmaps = story.ctx.api::<ConfigMap>();
    let deployments = story.ctx.api::<Deployment>();
    assert_eq!(
        configmaps.get("guestbook-config").await?.data.unwrap()["greeting"],
        "hello"
    );

    // A commit: automated sync moves the app to the new revision.
    story.repo.write(
        "guestbook/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: guestbook-config\ndata:\n  greeting: bonjour\n",
    )?;
    let second = story.repo.commit("French greeting")?;
    story
        .wait_app(&app, "synced to the second commit", |a| {
            is::synced(a) && is::at_revision(&second)(a)
        })
        .await?;
    assert_eq!(
        configmaps.get("guestbook-config").await?.data.unwrap()["greeting"],
        "bonjour"
    );

    // Someone scales the Deployment by hand: self-heal puts Git's replica count back.
    let params = PatchParams::default();
    deployments
        .patch(
            "guestbook",
            &params,
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 5}})),
        )
        .await?;
    story
        .eventually("self-heal to 2 replicas", || async {
            let d = deployments.get("guestbook").await?;
            Ok(d.spec.and_then(|s| s.replicas) == Some(2))
        })
        .await?;
    story
        .wait_app(&app, "Synced after self-heal", is::synced)
        .await?;

    // A file leaves Git: with automated prune the Service is deleted, the rest stays.
    story.repo.remove("guestbook/service.yaml")?;
    let third = story.repo.commit("no service")?;
    let pruned = story
        .wait_app(&app, "synced without the Service", |a| {
            is::synced(a) && is::at_revision(&third)(a)
        })
        .await?;
    let services = story.ctx.api::<k8s_openapi::api::core::v1::Service>();
    story
        .eventually("the Service is gone", || async {
            Ok(services.get_opt("guestbook").await?.is_none())
        })
        .await?;
    assert!(deployments.get_opt("guestbook").await?.is_some());
    assert_eq!(pruned.status.unwrap().resources.len(), 2);
    Ok(())
}

#[tokio::test]
async fn without_prune_a_removed_file_is_only_reported() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    let app = story.app_name("keeper");
    story.create_app(&app, "guestbook", &["--sync-policy", "automated"])?;
    story
        .wait_app(&app, "Synced", is::synced_and_healthy)
        .await?;

    story.repo.remove("guestbook/service.yaml")?;
    let second = story.repo.commit("no service")?;
    let app_state = story
        .wait_app(&app, "OutOfSync at the second commit", |a| {
            is::out_of_sync(a) && is::at_revision(&second)(a)
        })
        .await?;
    let service = app_state
        .status
        .unwrap()
        .resources
        .into_iter()
        .find(|r| r.kind == "Service")
        .expect("the Service is still listed");
    assert!(service.requires_pruning);
    // Give automation a few resyncs: it must not delete anything.
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    let services = story.ctx.api::<k8s_openapi::api::core::v1::Service>();
    assert!(services.get_opt("guestbook").await?.is_some());

    // A person asks for the prune.
    story.ferry(&["app", "sync", &app, "--prune", "--timeout", "120"])?;
    assert!(services.get_opt("guestbook").await?.is_none());
    story
        .wait_app(&app, "Synced after the prune", is::synced)
        .await?;
    Ok(())
}

#[tokio::test]
async fn helm_charts_see_the_destination_capabilities() -> Result<()> {
    let mut story = Story::new().await?;
    // A kind only this cluster serves: the chart renders its extra object only where it exists.
    let group = format!("{}.ferry.example.com", story.namespace());
    let crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("widgets.{group}")},
            "spec": {"group": group, "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object",
                        "x-kubernetes-preserve-unknown-fields": true}}}]}
        }))?;
    let crds: kube::Api<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    > = kube::Api::all(story.ctx.client());
    crds.create(&Default::default(), &crd).await?;
    story.repo.write(
        "chart/Chart.yaml",
        "apiVersion: v2\nname: capable\nversion: 0.1.0\n",
    )?;
    story.repo.write(
        "chart/templates/support.yaml",
        format!(
            "{{{{- if .Capabilities.APIVersions.Has \"{group}/v1/Widget\" }}}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: widget-support
data:
  kube: \"{{{{ .Capabilities.KubeVersion.Version }}}}\"
{{{{- end }}}}
"
        ),
    )?;
    story.repo.commit("capable chart")?;
    story.start_controller()?;
    let app = story.app_name("capable");
    story.create_app(&app, "chart", &["--sync-policy", "automated"])?;
    story
        .wait_app(&app, "Synced", |a| {
            is::synced(a) && is::operation_finished(a)
        })
        .await?;
    let support = story.ctx.api::<ConfigMap>().get("widget-support").await?;
    let version = story.ctx.client().apiserver_version().await?.git_version;
    assert_eq!(support.data.unwrap()["kube"], version);
    // The CLI renders against the same capabilities.
    let manifests = story.ferry(&["app", "manifests", &app, "--source", "git"])?;
    assert!(manifests.contains("widget-support"), "{manifests}");
    crds.delete(&format!("widgets.{group}"), &Default::default())
        .await?;
    Ok(())
}
