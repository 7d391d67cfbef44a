//! The generators that read the cluster, against the sandbox: a plugin generator asking a real
//! HTTP plugin service started here (Argo CD's contract: `POST /api/v1/getparams.execute`, a
//! bearer token from a Secret, `requestTimeout`), and a cluster-decision-resource generator
//! reading a duck-typed resource of a CRD defined here.

use std::time::Duration;

use anyhow::Result;
use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use ferry_appset::generators::{GitSource, Kube, Sources};
use ferry_git::{Credentials, RepoCache};
use ferry_testkit::kube::TestContext;
use ferry_types::{Application, ApplicationSet};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

const TOKEN: &str = "plugin token of the story";

/// The plugin service: one parameter set per `envs` input, naming the set that asked; `slow`
/// answers after 5 s; a wrong token is a 401.
async fn start_plugin() -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let route = post(
        |headers: HeaderMap, Json(request): Json<Value>| async move {
            let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
            if authorization != Some(&format!("Bearer {TOKEN}")) {
                return Err((StatusCode::UNAUTHORIZED, "wrong token"));
            }
            let input = &request["input"]["parameters"];
            if input["slow"] == true {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            let parameters: Vec<Value> = input["envs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|env| json!({"env": env, "asker": request["applicationSetName"], "replicas": 2}))
            .collect();
            Ok(Json(json!({"output": {"parameters": parameters}})))
        },
    );
    let app = axum::Router::new().route("/api/v1/getparams.execute", route);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{address}"))
}

async fn generate(
    ctx: &TestContext,
    appset: Value,
    clusters: &[Secret],
) -> Result<Vec<Application>, String> {
    let appset: ApplicationSet = serde_json::from_value(appset).map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let git = GitSource {
        cache: RepoCache::new(dir.path(), Credentials::new()),
        max_checkout_bytes: None,
    };
    let kube = Kube {
        client: ctx.client(),
        namespace: ctx.namespace().to_string(),
    };
    let sources = Sources {
        git: &git,
        cluster_secrets: clusters,
        kube: Some(&kube),
        scm: &ferry_appset::generators::ScmSettings::default(),
    };
    ferry_appset::generate::applications(&appset, &sources)
        .await
        .map_err(|e| e.message)
}

fn appset(go_template: bool, name: &str, generator: Value) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": "story", "namespace": "argocd"},
        "spec": {
            "goTemplate": go_template,
            "generators": [generator],
            "template": {"metadata": {"name": name}, "spec": {"project": "default"}},
        },
    })
}

fn names(apps: &[Application]) -> Vec<String> {
    apps.iter().map(|a| a.name_any()).collect()
}

async fn create<K>(ctx: &TestContext, object: Value) -> Result<()>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    ctx.api::<K>()
        .create(&PostParams::default(), &serde_json::from_value(object)?)
        .await?;
    Ok(())
}

#[tokio::test]
async fn the_plugin_generator_asks_its_service_with_the_token_and_the_input() -> Result<()> {
    let ctx = TestContext::new().await?;
    let base_url = start_plugin().await?;
    create::<Secret>(
        &ctx,
        json!({"metadata": {"name": "argocd-secret"}, "stringData": {"plugin.token": TOKEN}}),
    )
    .await?;
    create::<Secret>(
        &ctx,
        json!({"metadata": {"name": "other-secret"}, "stringData": {"key": "not the token"}}),
    )
    .await?;
    for (name, token) in [
        ("plugin", "$plugin.token"),
        ("wrong-token", "$other-secret:key"),
    ] {
        create::<ConfigMap>(
            &ctx,
            json!({"metadata": {"name": name},
                   "data": {"baseUrl": base_url, "token": token, "requestTimeout": "2"}}),
        )
        .await?;
    }
    let plugin = |config_map: &str, input: Value| {
        json!({"plugin": {
            "configMapRef": {"name": config_map},
            "input": {"parameters": input},
            "values": {"team": "blue"},
        }})
    };

    // Go templates: the service's objects as they are, the input under generator.input.
    let apps = generate(
        &ctx,
        appset(
            true,
            "{{.env}}-{{.asker}}-{{.generator.input.parameters.team}}-{{.values.team}}",
            plugin("plugin", json!({"envs": ["dev", "prod"], "team": "red"})),
        ),
        &[],
    )
    .await
    .map_err(anyhow::Error::msg)?;
    assert_eq!(names(&apps), ["dev-story-red-blue", "prod-story-red-blue"]);

    // fasttemplate: flattened, as strings.
    let apps = generate(
        &ctx,
        appset(
            false,
            "{{env}}-{{replicas}}-{{generator.input.parameters.team}}",
            plugin("plugin", json!({"envs": ["qa"], "team": "red"})),
        ),
        &[],
    )
    .await
    .map_err(anyhow::Error::msg)?;
    assert_eq!(names(&apps), ["qa-2-red"]);

    // A token the service refuses, a service slower than requestTimeout, a missing ConfigMap.
    let refused = generate(
        &ctx,
        appset(
            true,
            "{{.env}}",
            plugin("wrong-token", json!({"envs": ["dev"]})),
        ),
        &[],
    )
    .await
    .unwrap_err();
    assert!(
        refused.contains("API error with status code 401"),
        "{refused}"
    );
    let slow = generate(
        &ctx,
        appset(
            true,
            "{{.env}}",
            plugin("plugin", json!({"envs": ["dev"], "slow": true})),
        ),
        &[],
    )
    .await
    .unwrap_err();
    assert!(
        slow.contains("no answer within 2 s (requestTimeout)"),
        "{slow}"
    );
    let missing = generate(
        &ctx,
        appset(true, "{{.env}}", plugin("nothing", json!({}))),
        &[],
    )
    .await
    .unwrap_err();
    assert!(
        missing.contains("error fetching ConfigMap nothing"),
        "{missing}"
    );
    Ok(())
}

/// The duck-typed resource's CRD (cluster-wide, shared by every run; made once).
async fn placement_decisions(ctx: &TestContext) -> Result<ApiResource> {
    let crds: Api<CustomResourceDefinition> = Api::all(ctx.client());
    let name = "placementdecisions.ferry-test.example";
    if crds.get_opt(name).await?.is_none() {
        let crd: CustomResourceDefinition = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "group": "ferry-test.example",
                "names": {"kind": "PlacementDecision", "plural": "placementdecisions", "singular": "placementdecision"},
                "scope": "Namespaced",
                "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                    "type": "object", "x-kubernetes-preserve-unknown-fields": true,
                }}}],
            },
        }))?;
        match crds.create(&PostParams::default(), &crd).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(err) => return Err(err.into()),
        }
    }
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("ferry-test.example", "v1", "PlacementDecision"),
        "placementdecisions",
    );
    // Served once established.
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client(), ctx.namespace(), &resource);
    for _ in 0..100 {
        if api.list(&Default::default()).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(resource)
}

fn cluster_secret(name: &str) -> Result<Secret> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": format!("cluster-{name}")},
        "data": {
            "name": base64(name),
            "server": base64(&format!("https://{name}.example:6443")),
        },
    }))?)
}

fn base64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn the_cluster_decision_resource_generator_reads_the_listed_clusters() -> Result<()> {
    let ctx = TestContext::new().await?;
    let resource = placement_decisions(&ctx).await?;
    let decisions: Api<DynamicObject> =
        Api::namespaced_with(ctx.client(), ctx.namespace(), &resource);
    let mut decision = DynamicObject::new("placement-a", &resource);
    decision.metadata.labels = Some([("env".to_string(), "prod".to_string())].into());
    decision.data = json!({"status": {"decisions": [
        {"clusterName": "east", "reason": "closest"},
        {"clusterName": "unknown-cluster", "reason": "skipped"},
    ]}});
    decisions.create(&PostParams::default(), &decision).await?;
    create::<ConfigMap>(
        &ctx,
        json!({"metadata": {"name": "ocm-placement"}, "data": {
            "apiVersion": "ferry-test.example/v1", "kind": "placementdecisions",
            "statusListKey": "decisions", "matchKey": "clusterName",
        }}),
    )
    .await?;
    let clusters = [cluster_secret("east")?, cluster_secret("west")?];
    let duck = |selection: Value| {
        let mut generator = json!({"configMapRef": "ocm-placement", "values": {"tier": "gold"}});
        generator
            .as_object_mut()
            .unwrap()
            .extend(selection.as_object().unwrap().clone());
        json!({"clusterDecisionResource": generator})
    };

    for selection in [
        json!({"labelSelector": {"matchLabels": {"env": "prod"}}}),
        json!({"name": "placement-a"}),
    ] {
        let apps = generate(
            &ctx,
            appset(
                false,
                "{{name}}-{{reason}}-{{values.tier}}",
                duck(selection),
            ),
            &clusters,
        )
        .await
        .map_err(anyhow::Error::msg)?;
        assert_eq!(names(&apps), ["east-closest-gold"]);
    }
    let apps = generate(
        &ctx,
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "ApplicationSet",
            "metadata": {"name": "story", "namespace": "argocd"},
            "spec": {
                "goTemplate": true,
                "generators": [duck(json!({"name": "placement-a"}))],
                "template": {"metadata": {"name": "{{.name}}"}, "spec": {
                    "project": "default", "destination": {"server": "{{.server}}"},
                }},
            },
        }),
        &clusters,
    )
    .await
    .map_err(anyhow::Error::msg)?;
    assert_eq!(apps[0].spec.destination.server, "https://east.example:6443");

    let neither = generate(&ctx, appset(false, "{{name}}", duck(json!({}))), &clusters)
        .await
        .unwrap_err();
    assert!(
        neither.contains("set either name or labelSelector"),
        "{neither}"
    );
    let none = generate(
        &ctx,
        appset(false, "{{name}}", duck(json!({"name": "placement-z"}))),
        &clusters,
    )
    .await
    .unwrap_err();
    assert_eq!(none, "no clusterDecisionResources found");
    Ok(())
}
