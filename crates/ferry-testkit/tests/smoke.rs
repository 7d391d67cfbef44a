//! The ground is real: a sandbox API server persists objects, controllers act on them, kwok makes
//! pods Ready, CRDs serve custom resources, and server-side apply records field managers.

use std::time::Duration;

use ferry_testkit::kube::TestContext;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{
    ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn deployment_pods_become_ready_through_kwok() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let deployments: Api<Deployment> = ctx.api();
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}
            }
        }
    }))?;
    deployments
        .create(&PostParams::default(), &deployment)
        .await?;

    let ready = await_condition(deployments.clone(), "web", |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref())
            .is_some_and(|s| s.ready_replicas == Some(2) && s.available_replicas == Some(2))
    });
    tokio::time::timeout(TIMEOUT, ready).await??;

    let pods: Api<Pod> = ctx.api();
    let pods = pods.list(&ListParams::default().labels("app=web")).await?;
    assert_eq!(pods.items.len(), 2);
    for pod in &pods.items {
        let status = pod.status.as_ref().expect("pod status");
        assert_eq!(status.phase.as_deref(), Some("Running"));
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        assert!(ready, "pod {:?} is not Ready", pod.metadata.name);
        assert!(
            pod.spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_some(),
            "pod was scheduled"
        );
    }
    Ok(())
}

#[tokio::test]
async fn crd_serves_custom_resources() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let crds: Api<CustomResourceDefinition> = Api::all(ctx.client());
    // Each test gets its own group so parallel tests and reruns never collide.
    let group = format!("{}.smoke.ferry.dev", ctx.namespace());
    let name = format!("widgets.{group}");
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                }}}
            }]
        }
    }))?;
    crds.create(&PostParams::default(), &crd).await?;
    tokio::time::timeout(
        TIMEOUT,
        await_condition(crds.clone(), &name, conditions::is_crd_established()),
    )
    .await??;

    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(&group, "v1", "Widget"));
    let widgets: Api<DynamicObject> =
        Api::namespaced_with(ctx.client(), ctx.namespace(), &resource);
    let widget: DynamicObject = serde_json::from_value(json!({
        "apiVersion": format!("{group}/v1"), "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"size": 3}
    }))?;
    // A freshly established CRD can take a moment to be served by every handler.
    let mut created = widgets.create(&PostParams::default(), &widget).await;
    for _ in 0..50 {
        if created.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        created = widgets.create(&PostParams::default(), &widget).await;
    }
    created?;
    let fetched = widgets.get("w1").await?;
    assert_eq!(fetched.data["spec"]["size"], 3);

    crds.delete(&name, &Default::default()).await?;
    Ok(())
}

#[tokio::test]
async fn server_side_apply_records_the_field_manager() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> = ctx.api();
    let patch = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings"},
        "data": {"color": "blue"}
    });
    let params = PatchParams::apply("ferry-smoke").force();
    let applied = configmaps
        .patch("settings", &params, &Patch::Apply(&patch))
        .await?;
    let managers = applied.metadata.managed_fields.unwrap_or_default();
    let entry = managers
        .iter()
        .find(|m| m.manager.as_deref() == Some("ferry-smoke"))
        .expect("ferry-smoke manages fields");
    assert_eq!(entry.operation.as_deref(), Some("Apply"));
    let fields = entry.fields_v1.as_ref().expect("fieldsV1").0.to_string();
    assert!(
        fields.contains("f:color"),
        "managed fields name data.color: {fields}"
    );
    Ok(())
}
