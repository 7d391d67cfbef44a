//! Health on a real control plane: workloads move from Progressing to Healthy as the controllers
//! and kwok act on them, and into Degraded when they fail for real.

use std::time::{Duration, Instant};

use ferry_health::{HealthChecks, HealthCode, assess};
use ferry_testkit::kube::TestContext;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(90);

struct Watched {
    api: Api<DynamicObject>,
    name: String,
}

impl Watched {
    /// Creates `object` in the test namespace (or cluster-wide when `namespaced` is false).
    async fn create(ctx: &TestContext, object: Value, namespaced: bool) -> anyhow::Result<Self> {
        let api_version = object["apiVersion"].as_str().unwrap();
        let (group, version) = ferry_types::split_api_version(api_version);
        let gvk = GroupVersionKind::gvk(group, version, object["kind"].as_str().unwrap());
        let resource = ApiResource::from_gvk(&gvk);
        let api = if namespaced {
            Api::namespaced_with(ctx.client(), ctx.namespace(), &resource)
        } else {
            Api::all_with(ctx.client(), &resource)
        };
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        api.create(&PostParams::default(), &serde_json::from_value(object)?)
            .await?;
        Ok(Self { api, name })
    }

    async fn health(&self) -> anyhow::Result<(HealthCode, String)> {
        let live = serde_json::to_value(self.api.get(&self.name).await?)?;
        let status = assess(&live, &HealthChecks::new()).expect("kind has a health check");
        Ok((status.status, status.message))
    }

    /// Polls until the health is `want`; returns every distinct status seen on the way.
    async fn until(&self, want: HealthCode) -> anyhow::Result<Vec<HealthCode>> {
        let started = Instant::now();
        let mut seen: Vec<HealthCode> = Vec::new();
        loop {
            let (status, message) = self.health().await?;
            if seen.last() != Some(&status) {
                seen.push(status);
            }
            if status == want {
                return Ok(seen);
            }
            if started.elapsed() > TIMEOUT {
                anyhow::bail!("{} stayed {status:?} ({message}); seen {seen:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn patch_status(&self, status: Value) -> anyhow::Result<()> {
        let patch = json!({"status": status});
        self.api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }
}

fn pod_template(app: &str) -> Value {
    json!({"metadata": {"labels": {"app": app}},
           "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
}

fn unschedulable(mut template: Value) -> Value {
    template["spec"]["nodeSelector"] = json!({"no-such-node": "x"});
    template
}

#[tokio::test]
async fn workloads_progress_to_healthy_through_kwok() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let deployment = Watched::create(&ctx, json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": pod_template("web")}}), true).await?;
    let statefulset = Watched::create(&ctx, json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": pod_template("db")}}), true).await?;
    let daemonset = Watched::create(&ctx, json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": pod_template("agent")}}), true).await?;
    let replicaset = Watched::create(&ctx, json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "rs"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "rs"}}, "template": pod_template("rs")}}), true).await?;
    let job = Watched::create(&ctx, json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "once"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}), true).await?;

    for workload in [&deployment, &statefulset, &daemonset, &replicaset, &job] {
        let seen = workload.until(HealthCode::Healthy).await?;
        assert_eq!(
            seen.last(),
            Some(&HealthCode::Healthy),
            "{}: {seen:?}",
            workload.name
        );
    }
    // A Deployment starts out Progressing: its first status has no available replicas.
    let seen_first = Watched::create(&ctx, json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "slow"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "slow"}}, "template": unschedulable(pod_template("slow"))}}), true).await?;
    assert_eq!(
        seen_first.until(HealthCode::Progressing).await?.last(),
        Some(&HealthCode::Progressing)
    );

    // Scaling up moves a healthy Deployment back through Progressing.
    deployment
        .api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await?;
    let seen = deployment.until(HealthCode::Healthy).await?;
    assert_eq!(seen.last(), Some(&HealthCode::Healthy));
    Ok(())
}

#[tokio::test]
async fn pods_services_ingresses_and_claims_follow_their_status() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let pod = Watched::create(
        &ctx,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
        true,
    )
    .await?;
    assert_eq!(
        pod.until(HealthCode::Healthy).await?.last(),
        Some(&HealthCode::Healthy)
    );

    let pending_pod = Watched::create(&ctx, json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stuck"},
        "spec": {"nodeSelector": {"no-such-node": "x"}, "containers": [{"name": "c", "image": "nginx"}]}}), true).await?;
    assert_eq!(pending_pod.health().await?.0, HealthCode::Progressing);

    // No load-balancer controller runs in the sandbox: the Service waits for an address, and gets
    // one when a controller (here: the test) publishes it in status.
    let lb = Watched::create(
        &ctx,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}], "selector": {"app": "x"}}}),
        true,
    )
    .await?;
    assert_eq!(lb.health().await?.0, HealthCode::Progressing);
    lb.patch_status(json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}))
        .await?;
    assert_eq!(
        lb.until(HealthCode::Healthy).await?.last(),
        Some(&HealthCode::Healthy)
    );

    let cluster_ip = Watched::create(
        &ctx,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "plain"},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}}}),
        true,
    )
    .await?;
    assert_eq!(cluster_ip.health().await?.0, HealthCode::Healthy);

    let ingress = Watched::create(
        &ctx,
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
        "spec": {"defaultBackend": {"service": {"name": "plain", "port": {"number": 80}}}}}),
        true,
    )
    .await?;
    assert_eq!(ingress.health().await?.0, HealthCode::Progressing);
    ingress
        .patch_status(json!({"loadBalancer": {"ingress": [{"hostname": "web.example.test"}]}}))
        .await?;
    assert_eq!(
        ingress.until(HealthCode::Healthy).await?.last(),
        Some(&HealthCode::Healthy)
    );

    // The persistent-volume controller binds a claim to a matching volume for real, and marks it
    // Lost when that volume disappears.
    let class = format!("{}-manual", ctx.namespace());
    let claim = Watched::create(
        &ctx,
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class,
                 "resources": {"requests": {"storage": "1Gi"}}}}),
        true,
    )
    .await?;
    assert_eq!(
        claim.until(HealthCode::Progressing).await?.last(),
        Some(&HealthCode::Progressing)
    );
    let volume = Watched::create(&ctx, json!({"apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": format!("{}-pv", ctx.namespace())},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": class,
                 "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": "/tmp/ferry-pv"}}}), false).await?;
    assert_eq!(
        claim.until(HealthCode::Healthy).await?.last(),
        Some(&HealthCode::Healthy)
    );
    volume.api.delete(&volume.name, &Default::default()).await?;
    // pv-protection holds a bound volume back; take the finalizer off as an operator forcing it would.
    volume
        .api
        .patch(
            &volume.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await?;
    assert_eq!(
        claim.until(HealthCode::Degraded).await?.last(),
        Some(&HealthCode::Degraded)
    );
    Ok(())
}

#[tokio::test]
async fn failures_are_degraded() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    // A rollout that cannot make progress exceeds its deadline.
    let deployment = Watched::create(&ctx, json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "never"},
        "spec": {"replicas": 1, "progressDeadlineSeconds": 1, "selector": {"matchLabels": {"app": "never"}},
                 "template": unschedulable(pod_template("never"))}}), true).await?;
    let seen = deployment.until(HealthCode::Degraded).await?;
    assert_eq!(seen, [HealthCode::Progressing, HealthCode::Degraded]);

    // A Job that runs out of time fails.
    let job = Watched::create(
        &ctx,
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "late"},
        "spec": {"activeDeadlineSeconds": 1, "backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never", "nodeSelector": {"no-such-node": "x"},
            "containers": [{"name": "c", "image": "busybox"}]}}}}),
        true,
    )
    .await?;
    assert_eq!(
        job.until(HealthCode::Degraded).await?.last(),
        Some(&HealthCode::Degraded)
    );
    Ok(())
}

#[tokio::test]
async fn cluster_kinds_crds_namespaces_apiservices_cronjobs_and_hpas() -> anyhow::Result<()> {
    let ctx = TestContext::new().await?;
    let group = format!("{}.health.ferry.dev", ctx.namespace());
    let crd = Watched::create(&ctx, json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("gadgets.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                     "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}), false).await?;
    assert_eq!(
        crd.until(HealthCode::Healthy).await?.last(),
        Some(&HealthCode::Healthy)
    );
    crd.api.delete(&crd.name, &Default::default()).await?;

    let namespace = Watched::create(
        &ctx,
        json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": format!("{}-extra", ctx.namespace())}}),
        false,
    )
    .await?;
    assert_eq!(
        namespace.until(HealthCode::Healthy).await?.last(),
        Some(&HealthCode::Healthy)
    );
    namespace
        .api
        .delete(&namespace.name, &Default::default())
        .await?;

    // The API server's own local APIServices are Available.
    let apiservices: Api<DynamicObject> = Api::all_with(
        ctx.client(),
        &ApiResource::from_gvk(&GroupVersionKind::gvk(
            "apiregistration.k8s.io",
            "v1",
            "APIService",
        )),
    );
    let local = Watched {
        api: apiservices,
        name: "v1.apps".into(),
    };
    assert_eq!(local.health().await?.0, HealthCode::Healthy);

    let cron = Watched::create(&ctx, json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
        "spec": {"schedule": "0 3 * * *", "suspend": true, "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}}), true).await?;
    assert_eq!(cron.health().await?.0, HealthCode::Suspended);

    // Without a metrics server the HPA controller cannot read metrics: the HPA reports it.
    Watched::create(&ctx, json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "scaled"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "scaled"}}, "template": pod_template("scaled")}}), true).await?;
    let hpa = Watched::create(&ctx, json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "scaled"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "scaled"},
                 "minReplicas": 1, "maxReplicas": 3,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}}), true).await?;
    assert_eq!(
        hpa.until(HealthCode::Degraded).await?.last(),
        Some(&HealthCode::Degraded)
    );
    Ok(())
}
