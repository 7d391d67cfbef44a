//! Server-side and structural diff against a real kube-apiserver (the sandbox control plane).

use ferry_diff::{
    DEFAULT_FIELD_MANAGER, DiffError, DiffOptions, IgnoreRules, PredictionStats, Predictions,
    ResourceIgnoreDifferences, SyncStatus, server_side_diff, structural_diff,
};
use ferry_testkit::kube::TestContext;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::{Discovery, Scope};
use serde_json::{Value, json};

struct Cluster {
    // Keeps the test namespace alive for the test's duration.
    _ctx: TestContext,
    client: kube::Client,
    discovery: Discovery,
    namespace: String,
}

async fn cluster() -> Cluster {
    let ctx = TestContext::new().await.expect("test cluster");
    let client = ctx.client();
    let namespace = ctx.namespace().to_string();
    let discovery = Discovery::new(client.clone())
        .filter(&["", "apps"])
        .run()
        .await
        .expect("discovery");
    Cluster {
        _ctx: ctx,
        client,
        discovery,
        namespace,
    }
}

impl Cluster {
    fn api(&self, obj: &Value) -> Api<DynamicObject> {
        let api_version = obj["apiVersion"].as_str().unwrap();
        let kind = obj["kind"].as_str().unwrap();
        let (resource, scope) =
            ferry_diff::ResourceResolver::resolve(&self.discovery, api_version, kind).unwrap();
        match scope {
            Scope::Namespaced => {
                Api::namespaced_with(self.client.clone(), &self.namespace, &resource)
            }
            Scope::Cluster => Api::all_with(self.client.clone(), &resource),
        }
    }

    /// Applies `obj` as `manager` (server-side apply, as a sync or another tool would) and
    /// returns the settled live object.
    async fn apply(&self, obj: &Value, manager: &str) -> Value {
        let name = obj["metadata"]["name"].as_str().unwrap();
        let params = PatchParams::apply(manager).force();
        self.api(obj)
            .patch(name, &params, &Patch::Apply(obj))
            .await
            .expect("apply");
        self.settled(obj).await
    }

    /// `obj` applied as a sync applies it, its answer kept as the sync keeps it; the answer.
    async fn apply_as_sync(&self, obj: &Value, predictions: &Predictions) -> Value {
        let name = obj["metadata"]["name"].as_str().unwrap();
        let params = PatchParams::apply(DEFAULT_FIELD_MANAGER).force();
        let answer = self
            .api(obj)
            .patch(name, &params, &Patch::Apply(obj))
            .await
            .expect("apply");
        let answer = serde_json::to_value(answer).unwrap();
        predictions.remember_applied(obj, &answer, DEFAULT_FIELD_MANAGER);
        answer
    }

    /// The live object once the deployment controller has recorded its revision: comparing
    /// with an older copy would show the controller's annotation as drift.
    async fn settled(&self, obj: &Value) -> Value {
        let name = obj["metadata"]["name"].as_str().unwrap();
        for _ in 0..300 {
            let live = serde_json::to_value(self.api(obj).get(name).await.expect("get")).unwrap();
            if obj["kind"] != "Deployment"
                || live
                    .pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
                    .is_some()
            {
                return live;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the deployment controller never annotated {name}");
    }

    /// Changes live fields the way `kubectl edit` would (a merge patch by another manager).
    async fn edit(&self, obj: &Value, patch: Value) -> Value {
        let name = obj["metadata"]["name"].as_str().unwrap();
        let params = PatchParams {
            field_manager: Some("kubectl-edit".into()),
            ..Default::default()
        };
        self.api(obj)
            .patch(name, &params, &Patch::Merge(&patch))
            .await
            .expect("edit");
        self.settled(obj).await
    }

    async fn diff(
        &self,
        desired: Option<&Value>,
        live: Option<&Value>,
        opts: &DiffOptions,
    ) -> ferry_diff::DiffResult {
        server_side_diff(&self.client, &self.discovery, desired, live, opts, None)
            .await
            .expect("server-side diff")
    }

    fn deployment(&self) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": self.namespace, "labels": {"app": "web", "tier": "front"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{
                        "name": "web",
                        "image": "nginx:1.27",
                        "ports": [{"containerPort": 80}],
                        "resources": {"limits": {"cpu": 0.5, "memory": "256Mi"}}
                    }]}
                }
            }
        })
    }

    fn secret(&self, password: &str) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": self.namespace},
            "stringData": {"user": "admin", "password": password}
        })
    }
}

fn ignore(yaml: &str) -> DiffOptions {
    let rules: Vec<ResourceIgnoreDifferences> = serde_yaml::from_str(yaml).unwrap();
    DiffOptions {
        ignore_differences: IgnoreRules::new(&rules).unwrap(),
        ..DiffOptions::default()
    }
}

fn patch_paths(result: &ferry_diff::DiffResult) -> Vec<String> {
    result
        .patch
        .0
        .iter()
        .map(|op| op.path().to_string())
        .collect()
}

#[tokio::test]
async fn applied_deployment_is_synced_despite_server_defaults() {
    let c = cluster().await;
    let desired = c.deployment();
    let live = c.apply(&desired, DEFAULT_FIELD_MANAGER).await;
    // The server defaulted plenty the manifest does not mention.
    let container = &live["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    assert_eq!(container["resources"]["limits"]["cpu"], "500m");
    assert_eq!(live["spec"]["strategy"]["type"], "RollingUpdate");

    let result = c
        .diff(Some(&desired), Some(&live), &DiffOptions::default())
        .await;
    assert_eq!(result.status, SyncStatus::Synced, "{}", result.text);
    assert!(result.patch.0.is_empty());
    assert_eq!(result.text, "");

    // The offline comparison agrees on the same real objects.
    let result = structural_diff(Some(&desired), Some(&live), &DiffOptions::default()).unwrap();
    assert_eq!(result.status, SyncStatus::Synced, "{}", result.text);
}

/// The API server's answer for a manifest over a live version is reused until either changes,
/// and what it predicts is compared with the live object as it is then.
#[tokio::test]
async fn a_dry_run_answer_is_reused_while_manifest_and_live_object_stay_the_same() {
    let c = cluster().await;
    let predictions = Predictions::new(1 << 20);
    let diff = |desired: Value, live: Value| {
        let (c, predictions) = (&c, &predictions);
        async move {
            let opts = DiffOptions::default();
            server_side_diff(
                &c.client,
                &c.discovery,
                Some(&desired),
                Some(&live),
                &opts,
                Some(predictions),
            )
            .await
            .expect("server-side diff")
        }
    };
    let desired = c.deployment();
    let live = c.apply(&desired, DEFAULT_FIELD_MANAGER).await;
    assert_eq!(
        diff(desired.clone(), live.clone()).await.status,
        SyncStatus::Synced
    );
    assert_eq!(
        diff(desired.clone(), live.clone()).await.status,
        SyncStatus::Synced
    );
    assert_eq!(predictions.stats(), PredictionStats { hits: 1, misses: 1 });

    // Someone scales the live object: a new resourceVersion, so the server is asked again.
    let edited = c.edit(&desired, json!({"spec": {"replicas": 5}})).await;
    let result = diff(desired.clone(), edited.clone()).await;
    assert_eq!(patch_paths(&result), ["/spec/replicas"]);
    assert_eq!(predictions.stats(), PredictionStats { hits: 1, misses: 2 });

    // A new manifest over the same live version is asked again too.
    let mut bigger = desired.clone();
    bigger["spec"]["replicas"] = json!(5);
    assert_eq!(
        diff(bigger.clone(), edited.clone()).await.status,
        SyncStatus::Synced
    );
    assert_eq!(diff(bigger, edited).await.status, SyncStatus::Synced);
    assert_eq!(predictions.stats(), PredictionStats { hits: 2, misses: 3 });
}

/// What a sync's apply answered is the prediction for the same manifest over the object that
/// apply left: the comparison right after the sync asks the server nothing.
#[tokio::test]
async fn an_object_just_applied_is_compared_with_no_dry_run() {
    let c = cluster().await;
    let predictions = Predictions::new(1 << 20);
    let desired = json!({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "settings", "namespace": c.namespace},
                         "data": {"mode": "fast"}});
    let answer = c.apply_as_sync(&desired, &predictions).await;
    let opts = DiffOptions::default();
    let diff = |live: Value| {
        let (c, predictions, desired, opts) = (&c, &predictions, &desired, &opts);
        async move {
            server_side_diff(
                &c.client,
                &c.discovery,
                Some(desired),
                Some(&live),
                opts,
                Some(predictions),
            )
            .await
            .expect("server-side diff")
        }
    };
    assert_eq!(diff(answer).await.status, SyncStatus::Synced);
    assert_eq!(predictions.stats(), PredictionStats { hits: 1, misses: 0 });

    // Edited since: another live version, so the server is asked.
    let edited = c.edit(&desired, json!({"data": {"mode": "slow"}})).await;
    assert_eq!(patch_paths(&diff(edited).await), ["/data/mode"]);
    assert_eq!(predictions.stats(), PredictionStats { hits: 1, misses: 1 });
}

/// A change of the live object's status alone (a controller reporting on it, a Deployment
/// rolling out) keeps the answer: its comparison asks the server nothing.
#[tokio::test]
async fn a_status_change_alone_is_compared_with_no_dry_run() {
    let c = cluster().await;
    let predictions = Predictions::new(1 << 20);
    let desired = json!({"apiVersion": "v1", "kind": "Service",
                         "metadata": {"name": "web", "namespace": c.namespace},
                         "spec": {"ports": [{"port": 80}]}});
    let answer = c.apply_as_sync(&desired, &predictions).await;
    let condition = json!({"type": "Ready", "status": "True", "reason": "Reported",
                           "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"});
    let restated = c
        .api(&desired)
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [condition]}})),
        )
        .await
        .expect("status");
    let restated = serde_json::to_value(restated).unwrap();
    assert_ne!(
        restated["metadata"]["resourceVersion"],
        answer["metadata"]["resourceVersion"]
    );
    let result = server_side_diff(
        &c.client,
        &c.discovery,
        Some(&desired),
        Some(&restated),
        &DiffOptions::default(),
        Some(&predictions),
    )
    .await
    .expect("server-side diff");
    assert_eq!(result.status, SyncStatus::Synced);
    assert_eq!(predictions.stats(), PredictionStats { hits: 1, misses: 0 });
}

#[tokio::test]
async fn edited_replicas_are_drift_unless_ignored() {
    let c = cluster().await;
    let desired = c.deployment();
    c.apply(&desired, DEFAULT_FIELD_MANAGER).await;
    let live = c.edit(&desired, json!({"spec": {"replicas": 5}})).await;

    let result = c
        .diff(Some(&desired), Some(&live), &DiffOptions::default())
        .await;
    assert_eq!(result.status, SyncStatus::OutOfSync);
    assert_eq!(patch_paths(&result), ["/spec/replicas"]);
    assert_eq!(
        serde_json::to_value(&result.patch).unwrap(),
        json!([{"op": "replace", "path": "/spec/replicas", "value": 2}])
    );
    assert!(
        result.text.contains("-  replicas: 5\n+  replicas: 2\n"),
        "{}",
        result.text
    );
    assert!(
        result.text.starts_with(&format!(
            "--- live apps/Deployment {ns}/web\n+++ desired apps/Deployment {ns}/web\n",
            ns = c.namespace
        )),
        "{}",
        result.text
    );

    for rules in [
        "- group: apps\n  kind: Deployment\n  jsonPointers: [/spec/replicas]\n",
        "- group: '*'\n  kind: '*'\n  jqPathExpressions: ['.spec.replicas']\n",
        // The real managedFields the API server recorded for the edit.
        "- group: apps\n  kind: Deployment\n  managedFieldsManagers: [kubectl-edit]\n",
    ] {
        let result = c.diff(Some(&desired), Some(&live), &ignore(rules)).await;
        assert_eq!(
            result.status,
            SyncStatus::Synced,
            "{rules}: {}",
            result.text
        );
    }

    let result = structural_diff(Some(&desired), Some(&live), &DiffOptions::default()).unwrap();
    assert_eq!(patch_paths(&result), ["/spec/replicas"]);
}

#[tokio::test]
async fn field_removed_from_git_is_drift() {
    let c = cluster().await;
    let mut desired = c.deployment();
    let live = c.apply(&desired, DEFAULT_FIELD_MANAGER).await;
    desired["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("tier");

    // The apply would remove the label ferry owns: the dry-run shows it.
    let result = c
        .diff(Some(&desired), Some(&live), &DiffOptions::default())
        .await;
    assert_eq!(result.status, SyncStatus::OutOfSync);
    assert_eq!(patch_paths(&result), ["/metadata/labels/tier"]);
}

#[tokio::test]
async fn secret_diff_is_masked() {
    let c = cluster().await;
    let live = c
        .apply(&c.secret("old-pa55word"), DEFAULT_FIELD_MANAGER)
        .await;

    let result = c
        .diff(
            Some(&c.secret("old-pa55word")),
            Some(&live),
            &DiffOptions::default(),
        )
        .await;
    assert_eq!(result.status, SyncStatus::Synced, "{}", result.text);

    let result = c
        .diff(
            Some(&c.secret("new-pa55word")),
            Some(&live),
            &DiffOptions::default(),
        )
        .await;
    assert_eq!(result.status, SyncStatus::OutOfSync);
    assert_eq!(patch_paths(&result), ["/data/password"]);
    let shown = format!(
        "{}{}{:?}{:?}",
        result.text,
        serde_json::to_string(&result.patch).unwrap(),
        result.normalized_live,
        result.normalized_desired
    );
    for secret in [
        "old-pa55word",
        "new-pa55word",
        "b2xkLXBhNTV3b3Jk",
        "bmV3LXBhNTV3b3Jk",
        "YWRtaW4=",
    ] {
        assert!(!shown.contains(secret), "{secret} shown: {shown}");
    }
    assert!(
        result
            .text
            .contains("-  password: ++++++++++++\n+  password: ++++++++\n"),
        "{}",
        result.text
    );
    assert!(
        result.text.contains("   user: ++++++++\n"),
        "{}",
        result.text
    );
}

#[tokio::test]
async fn missing_extra_and_rejected_objects() {
    let c = cluster().await;
    let desired = c.deployment();
    let result = c.diff(Some(&desired), None, &DiffOptions::default()).await;
    assert_eq!(result.status, SyncStatus::Missing);
    assert!(
        result.text.contains("+kind: Deployment\n"),
        "{}",
        result.text
    );

    // A missing object needs no server: it is its manifest, even one the server would refuse
    // (the sync's own dry run catches that before anything is applied).
    let mut invalid = c.deployment();
    invalid["spec"]["template"]["metadata"]["labels"]["app"] = json!("other");
    let result = c.diff(Some(&invalid), None, &DiffOptions::default()).await;
    assert_eq!(result.status, SyncStatus::Missing);
    assert!(result.text.contains("app: other"), "{}", result.text);

    // So is one in a namespace the sync has yet to create.
    let mut elsewhere = c.deployment();
    elsewhere["metadata"]["namespace"] = json!(format!("{}-later", c.namespace));
    let result = c
        .diff(Some(&elsewhere), None, &DiffOptions::default())
        .await;
    assert_eq!(result.status, SyncStatus::Missing);

    // An object the server refuses over a live one is an error: the prediction is the server's.
    let live = c.apply(&desired, DEFAULT_FIELD_MANAGER).await;
    let err = server_side_diff(
        &c.client,
        &c.discovery,
        Some(&invalid),
        Some(&live),
        &DiffOptions::default(),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DiffError::DryRun { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&format!("apps/Deployment {}/web", c.namespace)),
        "{message}"
    );

    let result = c.diff(None, Some(&live), &DiffOptions::default()).await;
    assert_eq!(result.status, SyncStatus::Extra);
    assert!(
        result.text.contains("-kind: Deployment\n"),
        "{}",
        result.text
    );

    let mut unknown = c.deployment();
    unknown["apiVersion"] = json!("example.com/v1");
    unknown["kind"] = json!("Widget");
    let err = server_side_diff(
        &c.client,
        &c.discovery,
        Some(&unknown),
        None,
        &DiffOptions::default(),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DiffError::UnknownKind { .. }), "{err}");
}
