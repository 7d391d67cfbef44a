//! A signed Git push to `/api/webhook` offered to Argo Workflows' WorkflowEventBindings: the
//! binding whose selector holds submits its WorkflowTemplate with the commit and the repository
//! from the payload; a forged push, another branch and a broken expression create nothing.

use anyhow::Result;
use ferry_testkit::kube::TestContext;
use ferry_types::workflow::labels::WORKFLOW_EVENT_BINDING;
use ferry_types::{Workflow, WorkflowEventBinding, WorkflowTemplate};
use hmac::{Hmac, Mac};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::harness::{Server, install_crds};

const SECRET: &str = "webhook secret of the CI story";

fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn binding(name: &str, selector: &str) -> Result<WorkflowEventBinding> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowEventBinding",
        "metadata": {"name": name},
        "spec": {
            "event": {"selector": selector},
            "submit": {
                "workflowTemplateRef": {"name": "build"},
                "arguments": {"parameters": [
                    {"name": "revision", "valueFrom": {"event": "payload.after"}},
                    {"name": "repo", "valueFrom": {"event": "payload.repository.clone_url"}},
                ]},
            },
        },
    }))?)
}

async fn workflows(ctx: &TestContext) -> Result<Vec<Workflow>> {
    Ok(ctx
        .api::<Workflow>()
        .list(&ListParams::default())
        .await?
        .items)
}

#[tokio::test]
async fn a_signed_push_submits_the_bound_template_with_the_commit_and_repository() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    ferry_runtime::install_workflow_crds(&ctx.client(), "ferry-tests").await?;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "argocd-secret"},
        "stringData": {"webhook.github.secret": SECRET},
    }))?;
    ctx.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    let template: WorkflowTemplate = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "build"},
        "spec": {
            "entrypoint": "main",
            "arguments": {"parameters": [{"name": "revision"}, {"name": "repo"}]},
            "templates": [{"name": "main", "container": {
                "image": "busybox",
                "command": ["echo", "{{workflow.parameters.repo}}@{{workflow.parameters.revision}}"],
            }}],
        },
    }))?;
    ctx.api::<WorkflowTemplate>()
        .create(&PostParams::default(), &template)
        .await?;
    let bindings = ctx.api::<WorkflowEventBinding>();
    for binding in [
        binding(
            "on-main",
            r#"payload.ref == "refs/heads/main" && metadata["x-github-event"] == ["push"] && payload.repository.full_name startsWith "octo-org/""#,
        )?,
        binding("on-release", r#"payload.ref == "refs/heads/release""#)?,
        binding("broken", "payload.ref ==")?,
    ] {
        bindings.create(&PostParams::default(), &binding).await?;
    }
    let server = Server::start(&ctx).await?;
    let push = std::fs::read(format!(
        "{}/tests/fixtures/webhook/github-push.json",
        env!("CARGO_MANIFEST_DIR")
    ))?;
    let deliver = |signature: String| {
        let server = &server;
        let push = &push;
        async move {
            let headers = [
                ("X-GitHub-Event", "push"),
                ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
                ("X-Hub-Signature-256", signature.as_str()),
            ];
            server.post_raw("/api/webhook", &headers, push).await
        }
    };

    let forged = deliver(github_signature("guess", &push)).await?;
    assert_eq!(forged.status, 401, "{:?}", forged.body);
    let unsigned = server
        .post_raw("/api/webhook", &[("X-GitHub-Event", "push")], &push)
        .await?;
    assert_eq!(unsigned.status, 401, "{:?}", unsigned.body);
    assert!(workflows(&ctx).await?.is_empty());

    let genuine = deliver(github_signature(SECRET, &push)).await?;
    assert_eq!(genuine.status, 200, "{:?}", genuine.body);
    let reported = genuine.body["workflows"].as_array().unwrap();
    assert_eq!(reported.len(), 2, "{reported:?}");
    let broken = reported.iter().find(|r| r["binding"] == "broken").unwrap();
    assert!(
        broken["error"]
            .as_str()
            .unwrap()
            .starts_with(r#"spec.event.selector: failed to evaluate "payload.ref ==""#),
        "{broken:?}"
    );
    let submitted = reported.iter().find(|r| r["binding"] == "on-main").unwrap();

    let created = workflows(&ctx).await?;
    assert_eq!(created.len(), 1, "only on-main submits");
    let workflow = &created[0];
    assert_eq!(
        Value::from(workflow.metadata.name.clone()),
        submitted["workflow"]
    );
    assert!(
        workflow
            .metadata
            .name
            .as_ref()
            .unwrap()
            .starts_with("build-")
    );
    let labels = workflow.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels[WORKFLOW_EVENT_BINDING], "on-main");
    assert_eq!(labels["workflows.argoproj.io/workflow-template"], "build");
    assert_eq!(
        workflow.spec.workflow_template_ref.as_ref().unwrap().name,
        "build"
    );
    let parameters: Vec<(String, Option<String>)> = workflow
        .spec
        .arguments
        .clone()
        .unwrap()
        .parameters
        .into_iter()
        .map(|p| (p.name, p.value))
        .collect();
    assert_eq!(
        parameters,
        [
            (
                "revision".to_string(),
                Some("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c".to_string())
            ),
            (
                "repo".to_string(),
                Some("https://github.com/octo-org/guestbook.git".to_string())
            ),
        ]
    );

    let log = server.stop().await?;
    assert!(log.contains("WorkflowEventBinding failed"), "{log}");
    assert!(log.contains("binding=broken"), "{log}");
    assert!(!log.contains(SECRET), "{log}");
    Ok(())
}
