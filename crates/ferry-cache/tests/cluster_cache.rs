//! The cache against the sandbox control plane: real discovery, watches, controllers and kwok.
//! The sandbox is shared with tests running in parallel, so every assertion is scoped to the
//! test's own namespace, app name and CRD group.
//!
//! What is covered of the watch life cycle: the first list, live events, deletions, watches that
//! end and resume (short server-side timeouts), and an API server that goes away and comes back
//! (a proxy that drops every connection), with changes made meanwhile. The re-list after a
//! `410 Gone` cannot be provoked on demand here (the API server's watch cache keeps old
//! versions); kube-runtime's watcher answers it with a fresh `Init`/`InitApply`/`InitDone`
//! sequence, which the first list of every test exercises, and the unit tests in `watch.rs` feed
//! a second such sequence to check that objects missing from it are dropped.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use ferry_cache::{
    CacheConfig, Change, ClusterCache, GroupKind, ResourceFilter, ResourceKey, ResourceRule,
    TrackingMethod, instance_name,
};
use ferry_testkit::kube::TestContext;
use ferry_testkit::proxy::Proxy;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::{Value, json};
use support::{CrdCleanup, TIMEOUT, event_for, eventually, retry};

fn label_tracking() -> CacheConfig {
    CacheConfig {
        tracking: TrackingMethod::label(),
        ..CacheConfig::default()
    }
}

/// Only ConfigMaps, in one namespace: a small cache for tests about watch mechanics.
fn configmaps_in(namespace: &str) -> CacheConfig {
    CacheConfig {
        namespaces: vec![namespace.to_string()],
        filter: ResourceFilter::only(vec![ResourceRule::new(&[""], &["ConfigMap"])]),
        ..label_tracking()
    }
}

fn configmap(name: &str, app: &str) -> Result<ConfigMap> {
    let mut object = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name}, "data": {"color": "blue"}});
    TrackingMethod::label().mark(&mut object, app, None)?;
    Ok(serde_json::from_value(object)?)
}

fn key(group: &str, kind: &str, namespace: &str, name: &str) -> ResourceKey {
    ResourceKey::new(group, kind, namespace, name)
}

fn pod_ready(object: &Value) -> bool {
    object["status"]["conditions"]
        .as_array()
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

#[tokio::test]
async fn deployment_tree_live_edits_and_deletion() -> Result<()> {
    let ctx = TestContext::new().await?;
    let ns = ctx.namespace().to_string();
    let app = ns.clone();
    let cache = ClusterCache::start(ctx.client(), label_tracking()).await?;
    let stats = cache.stats();
    assert!(stats.synced && stats.failing.is_empty(), "{stats:?}");
    for kind in [("apps", "Deployment"), ("", "Pod"), ("", "Namespace")] {
        assert!(
            stats.kinds.contains_key(&GroupKind::new(kind.0, kind.1)),
            "{kind:?} is cached"
        );
    }
    for kind in [("", "Event"), ("coordination.k8s.io", "Lease")] {
        assert!(
            !stats.kinds.contains_key(&GroupKind::new(kind.0, kind.1)),
            "{kind:?} is excluded by default"
        );
    }
    let mut events = cache.subscribe();

    let mut deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}
            }
        }
    });
    cache.tracking().mark(&mut deployment, &app, None)?;
    let deployments: Api<Deployment> = ctx.api();
    deployments
        .create(&PostParams::default(), &serde_json::from_value(deployment)?)
        .await?;
    let deploy_key = key("apps", "Deployment", &ns, "web");

    // Deployment → ReplicaSet → two Pods, made Ready by kwok.
    let tree = eventually("the deployment's tree with two ready pods", || {
        let tree = cache.tree(&app);
        let ready = tree
            .iter()
            .filter(|n| n.object.key.kind == "Pod" && pod_ready(&n.object.object()))
            .count();
        (tree.len() == 4 && ready == 2).then_some(tree)
    })
    .await?;
    assert_eq!(tree[0].object.key, deploy_key);
    assert!(tree[0].parents.is_empty());
    let replica_set = &tree[1];
    assert_eq!(replica_set.object.key.kind, "ReplicaSet");
    assert_eq!(replica_set.parents, std::slice::from_ref(&deploy_key));
    for pod in &tree[2..] {
        assert_eq!(pod.object.key.kind, "Pod");
        assert_eq!(pod.parents, std::slice::from_ref(&replica_set.object.key));
    }
    let resources = cache.app_resources(&app);
    assert_eq!(resources.len(), 1, "only the Deployment is the app's own");
    assert_eq!(resources[0].key, deploy_key);
    let children = cache.children(&resources[0].uid);
    assert_eq!(children.len(), 1);
    assert_eq!(children[0].key, replica_set.object.key);
    // Live objects come with managedFields; the cache keeps none.
    assert!(
        tree.iter()
            .all(|n| n.object.object()["metadata"].get("managedFields").is_none())
    );
    assert!(cache.stats().approx_bytes > 0);

    // A live edit of the Deployment names its app.
    let edit = json!({"metadata": {"annotations": {"example.com/edited": "yes"}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(&edit))
        .await?;
    let event = event_for(&mut events, &deploy_key, Change::Applied).await?;
    assert!(event.apps.contains(&app), "{event:?}");
    eventually("the edit in the cache", || {
        let live = cache.get(&deploy_key)?;
        (live.object()["metadata"]["annotations"]["example.com/edited"] == "yes").then_some(())
    })
    .await?;

    // So does an edit of a Pod, through its owners.
    let pod_key = tree[2].object.key.clone();
    let pods: Api<Pod> = ctx.api();
    pods.patch(&pod_key.name, &PatchParams::default(), &Patch::Merge(&edit))
        .await?;
    let event = event_for(&mut events, &pod_key, Change::Applied).await?;
    assert_eq!(event.apps, std::slice::from_ref(&app));

    // Deleting the Deployment removes it, and garbage collection takes the rest of the tree.
    deployments
        .delete("web", &DeleteParams::background())
        .await?;
    let event = event_for(&mut events, &deploy_key, Change::Deleted).await?;
    assert_eq!(event.apps, std::slice::from_ref(&app));
    assert!(cache.get(&deploy_key).is_none());
    eventually("the tree to be collected", || {
        let leftovers = cache.children(&replica_set.object.uid).len()
            + usize::from(cache.get(&replica_set.object.key).is_some());
        (leftovers == 0).then_some(())
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn annotation_tracking_ignores_copies_and_knows_app_namespaces() -> Result<()> {
    let ctx = TestContext::new().await?;
    let ns = ctx.namespace().to_string();
    let app = ns.clone();
    let tracking = TrackingMethod::annotation();
    let config = CacheConfig {
        tracking: tracking.clone(),
        ..configmaps_in(&ns)
    };
    let cache = ClusterCache::start(ctx.client(), config).await?;
    let configmaps: Api<ConfigMap> = ctx.api();

    let mut original = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": ns}, "data": {"a": "1"}});
    tracking.mark(&mut original, &app, None)?;
    // A tool copies it, annotations and all, under another name.
    let mut copy = original.clone();
    copy["metadata"]["name"] = json!("settings-copy");
    // An app defined outside the control namespace: tracked as `<namespace>_<app>`.
    let mut foreign = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "foreign", "namespace": ns}});
    tracking.mark(&mut foreign, &app, Some("team-a"))?;
    for object in [original, copy, foreign] {
        configmaps
            .create(&PostParams::default(), &serde_json::from_value(object)?)
            .await?;
    }

    eventually("all three configmaps", || {
        ["settings", "settings-copy", "foreign"]
            .iter()
            .all(|name| cache.get(&key("", "ConfigMap", &ns, name)).is_some())
            .then_some(())
    })
    .await?;
    let names = |app: &str| -> Vec<String> {
        cache
            .app_resources(app)
            .iter()
            .map(|o| o.key.name.clone())
            .collect()
    };
    assert_eq!(names(&app), ["settings"]);
    assert_eq!(names(&instance_name(&app, Some("team-a"))), ["foreign"]);
    let copy = cache
        .get(&key("", "ConfigMap", &ns, "settings-copy"))
        .unwrap();
    assert_eq!(copy.app, None);
    Ok(())
}

#[tokio::test]
async fn crds_added_later_are_watched_and_removed_ones_dropped() -> Result<()> {
    let ctx = TestContext::new().await?;
    let ns = ctx.namespace().to_string();
    let app = ns.clone();
    let group = format!("{ns}.cache.ferry.dev");
    let crd_name = format!("widgets.{group}");
    let cache = ClusterCache::start(ctx.client(), label_tracking()).await?;
    assert!(cache.resolve(&group, "Widget").is_none());
    let mut events = cache.subscribe();

    let crds: Api<CustomResourceDefinition> = Api::all(ctx.client());
    let _cleanup = CrdCleanup::new(&crd_name, ctx.kubeconfig());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": crd_name},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}
            }]
        }
    }))?;
    crds.create(&PostParams::default(), &crd).await?;
    tokio::time::timeout(
        TIMEOUT,
        await_condition(crds.clone(), &crd_name, conditions::is_crd_established()),
    )
    .await??;

    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(&group, "v1", "Widget"));
    let widgets: Api<DynamicObject> = Api::namespaced_with(ctx.client(), &ns, &resource);
    let mut widget = json!({"apiVersion": format!("{group}/v1"), "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"size": 3}});
    cache.tracking().mark(&mut widget, &app, None)?;
    let widget: DynamicObject = serde_json::from_value(widget)?;
    let post = PostParams::default();
    retry("creating a widget", || widgets.create(&post, &widget)).await?;

    let widget_key = key(&group, "Widget", &ns, "w1");
    let event = event_for(&mut events, &widget_key, Change::Applied).await?;
    assert_eq!(event.apps, std::slice::from_ref(&app));
    let cached = cache.get(&widget_key).context("widget cached")?;
    assert_eq!(cached.object()["spec"]["size"], 3);
    assert_eq!(cache.app_resources(&app).len(), 1);
    let (resolved, namespaced) = cache.resolve(&group, "Widget").context("resolves")?;
    assert_eq!((resolved.plural.as_str(), namespaced), ("widgets", true));
    assert!(
        cache
            .resolve_api_version(&format!("{group}/v1"), "Widget")
            .is_some()
    );
    assert!(
        cache
            .resolve_api_version(&format!("{group}/v2"), "Widget")
            .is_none()
    );

    // Deleting the CRD deletes its objects and ends the watch.
    crds.delete(&crd_name, &DeleteParams::default()).await?;
    event_for(&mut events, &widget_key, Change::Deleted).await?;
    eventually("the kind to be forgotten", || {
        let gone = cache.resolve(&group, "Widget").is_none()
            && !cache
                .stats()
                .kinds
                .contains_key(&GroupKind::new(&group, "Widget"));
        gone.then_some(())
    })
    .await?;
    assert!(cache.get(&widget_key).is_none());
    Ok(())
}

#[tokio::test]
async fn namespace_scoped_mode_sees_only_its_namespaces() -> Result<()> {
    let ctx = TestContext::new().await?;
    let other = TestContext::new().await?;
    let ns = ctx.namespace().to_string();
    let app = ns.clone();
    let theirs: Api<ConfigMap> = other.api();
    theirs
        .create(&PostParams::default(), &configmap("theirs", &app)?)
        .await?;

    let config = CacheConfig {
        namespaces: vec![ns.clone()],
        ..label_tracking()
    };
    let cache = ClusterCache::start(ctx.client(), config).await?;
    let mine: Api<ConfigMap> = ctx.api();
    mine.create(&PostParams::default(), &configmap("mine", &app)?)
        .await?;
    eventually("my configmap", || {
        cache.get(&key("", "ConfigMap", &ns, "mine"))
    })
    .await?;
    assert!(
        cache
            .get(&key("", "ConfigMap", other.namespace(), "theirs"))
            .is_none()
    );
    assert_eq!(cache.app_resources(&app).len(), 1);
    let kinds: BTreeSet<GroupKind> = cache.stats().kinds.into_keys().collect();
    assert!(kinds.contains(&GroupKind::new("", "ConfigMap")));
    for cluster_scoped in [
        ("", "Namespace"),
        ("", "Node"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ] {
        let kind = GroupKind::new(cluster_scoped.0, cluster_scoped.1);
        assert!(
            !kinds.contains(&kind),
            "{kind} is cluster-scoped: not watched"
        );
    }

    // Argo CD's clusterResources: cluster-scoped kinds are watched too.
    let config = CacheConfig {
        namespaces: vec![ns.clone()],
        cluster_resources: true,
        filter: ResourceFilter::only(vec![ResourceRule::new(&[""], &["ConfigMap", "Namespace"])]),
        ..label_tracking()
    };
    let cache = ClusterCache::start(ctx.client(), config).await?;
    assert!(cache.get(&key("", "Namespace", "", &ns)).is_some());
    assert!(cache.get(&key("", "ConfigMap", &ns, "mine")).is_some());
    assert_eq!(cache.stats().watches, 2);
    Ok(())
}

#[tokio::test]
async fn watches_that_end_resume_without_losing_changes() -> Result<()> {
    let ctx = TestContext::new().await?;
    let ns = ctx.namespace().to_string();
    let app = ns.clone();
    // The API server ends every watch after a second; the watcher resumes from its last version.
    let config = CacheConfig {
        watch_timeout: Some(1),
        ..configmaps_in(&ns)
    };
    let cache = ClusterCache::start(ctx.client(), config).await?;
    let configmaps: Api<ConfigMap> = ctx.api();
    for i in 0..5 {
        configmaps
            .create(
                &PostParams::default(),
                &configmap(&format!("cm-{i}"), &app)?,
            )
            .await?;
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    configmaps.delete("cm-0", &DeleteParams::default()).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let patch = json!({"data": {"color": "green"}});
    configmaps
        .patch("cm-4", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    eventually("every change", || {
        let names: Vec<String> = cache
            .app_resources(&app)
            .iter()
            .map(|o| o.key.name.clone())
            .collect();
        let green = cache
            .get(&key("", "ConfigMap", &ns, "cm-4"))
            .is_some_and(|cm| cm.object()["data"]["color"] == "green");
        (names == ["cm-1", "cm-2", "cm-3", "cm-4"] && green).then_some(())
    })
    .await?;
    assert!(cache.stats().failing.is_empty());
    Ok(())
}

/// A client for the test cluster that connects through `proxy`.
async fn client_via(ctx: &TestContext, proxy: &Proxy) -> Result<kube::Client> {
    let kubeconfig = Kubeconfig::read_from(ctx.kubeconfig())?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let url = format!("https://{}", proxy.addr()).parse()?;
    config.cluster_url = url;
    Ok(kube::Client::try_from(config)?)
}

async fn api_server_addr(ctx: &TestContext) -> Result<SocketAddr> {
    let kubeconfig = Kubeconfig::read_from(ctx.kubeconfig())?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let host = config.cluster_url.host().context("API server host")?;
    let port = config.cluster_url.port_u16().context("API server port")?;
    Ok(format!("{host}:{port}").parse()?)
}

#[tokio::test]
async fn an_api_server_outage_serves_the_last_state_then_catches_up() -> Result<()> {
    let ctx = TestContext::new().await?;
    let ns = ctx.namespace().to_string();
    let app = ns.clone();
    let proxy = Proxy::start(api_server_addr(&ctx).await?).await?;
    let cache = ClusterCache::start(client_via(&ctx, &proxy).await?, configmaps_in(&ns)).await?;
    let mut events = cache.subscribe();
    let configmaps: Api<ConfigMap> = ctx.api();
    for name in ["kept", "changed", "deleted"] {
        configmaps
            .create(&PostParams::default(), &configmap(name, &app)?)
            .await?;
    }
    eventually("the first three configmaps", || {
        (cache.app_resources(&app).len() == 3).then_some(())
    })
    .await?;

    proxy.cut();
    let failing = eventually("the watch to notice the outage", || {
        let failing = cache.stats().failing;
        (!failing.is_empty()).then_some(failing)
    })
    .await?;
    assert!(
        failing
            .iter()
            .any(|f| f.starts_with("ConfigMap in namespace")),
        "{failing:?}"
    );

    // Meanwhile, the cluster moves on.
    configmaps
        .create(&PostParams::default(), &configmap("created", &app)?)
        .await?;
    configmaps
        .delete("deleted", &DeleteParams::default())
        .await?;
    let patch = json!({"data": {"color": "green"}});
    configmaps
        .patch("changed", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    // The cache keeps answering with what it last knew.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let names: Vec<String> = cache
        .app_resources(&app)
        .iter()
        .map(|o| o.key.name.clone())
        .collect();
    assert_eq!(names, ["changed", "deleted", "kept"]);

    proxy.restore();
    let deleted = event_for(
        &mut events,
        &key("", "ConfigMap", &ns, "deleted"),
        Change::Deleted,
    )
    .await?;
    assert_eq!(deleted.apps, std::slice::from_ref(&app));
    eventually("the cache to catch up", || {
        let names: Vec<String> = cache
            .app_resources(&app)
            .iter()
            .map(|o| o.key.name.clone())
            .collect();
        let green = cache
            .get(&key("", "ConfigMap", &ns, "changed"))
            .is_some_and(|cm| cm.object()["data"]["color"] == "green");
        (names == ["changed", "created", "kept"] && green).then_some(())
    })
    .await?;
    eventually("the watch to report healthy", || {
        cache.stats().failing.is_empty().then_some(())
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn an_unreachable_api_server_fails_start_with_a_clear_error() -> Result<()> {
    let ctx = TestContext::new().await?;
    let proxy = Proxy::start(api_server_addr(&ctx).await?).await?;
    let client = client_via(&ctx, &proxy).await?;
    proxy.cut();
    let config = CacheConfig {
        sync_timeout: Duration::from_secs(3),
        ..configmaps_in(ctx.namespace())
    };
    let err = ClusterCache::start(client, config)
        .await
        .err()
        .context("start must fail while the API server is unreachable")?;
    let message = err.to_string();
    assert!(message.contains("not synced after 3s"), "{message}");
    assert!(message.contains("API discovery"), "{message}");
    Ok(())
}
