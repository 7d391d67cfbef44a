//! Argo Workflows' API on ferry-server: alice, who may do everything to the workflow kinds of
//! her namespace, creates templates, workflows and CronWorkflows, submits, suspends, resumes,
//! stops, resubmits and deletes them, watches them and sends an event a WorkflowEventBinding
//! turns into a workflow; bob, a read-only user, may look but is refused every change; nobody
//! reaches another namespace's workflows without a rule for it. Invalid objects are refused
//! with the field named. No workflow controller runs here: the API writes what the controller
//! would then act on.

use anyhow::Result;
use ferry_testkit::kube::TestContext;
use ferry_types::{Workflow, WorkflowEventBinding};
use kube::api::PostParams;
use serde_json::{Value, json};

use crate::harness::{Server, event_messages, install_crds, local_accounts};

fn workflow(generate_name: &str, entrypoint: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": generate_name},
        "spec": {
            "entrypoint": entrypoint,
            "templates": [{"name": "main", "container": {"image": "busybox", "command": ["true"]}}],
        },
    })
}

fn build_template() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "build"},
        "spec": {
            "entrypoint": "main",
            "arguments": {"parameters": [{"name": "revision"}]},
            "templates": [{"name": "main", "container": {
                "image": "busybox",
                "command": ["echo", "{{workflow.parameters.revision}}"],
            }}],
        },
    })
}

fn name_of(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn workflows_are_run_through_the_api_as_rbac_allows() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    ferry_runtime::install_workflow_crds(&ctx.client(), "ferry-tests").await?;
    let ns = ctx.namespace().to_string();
    let policy = format!(
        "p, alice, workflows, *, {ns}/*, allow\n\
         p, alice, workflowtemplates, *, {ns}/*, allow\n\
         p, alice, clusterworkflowtemplates, *, {ns}-*, allow\n\
         p, alice, cronworkflows, *, {ns}/*, allow\n\
         p, alice, workflowevents, *, {ns}/*, allow\n\
         g, bob, role:readonly\n"
    );
    local_accounts(
        &ctx,
        &[("alice", "alice's password"), ("bob", "bob's password")],
        &policy,
    )
    .await?;
    let server = Server::start(&ctx).await?;
    let alice = server.token("alice", "alice's password").await?;
    let bob = server.token("bob", "bob's password").await?;
    let workflows = format!("/api/v1/workflows/{ns}");
    let templates = format!("/api/v1/workflow-templates/{ns}");

    // Templates: an invalid one is refused naming what is wrong, a valid one is created.
    let mut broken = build_template();
    broken["metadata"]["name"] = json!("broken");
    broken["spec"]["templates"] =
        json!([{"name": "main", "steps": [[{"name": "a", "template": "nowhere"}]]}]);
    let refused = server
        .post(&templates, Some(&alice), json!({"template": broken}))
        .await?;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("nowhere"),
        "{:?}",
        refused.body
    );
    let linted = server
        .post(
            &format!("{templates}/lint"),
            Some(&alice),
            json!({"template": build_template()}),
        )
        .await?;
    assert_eq!(linted.status, 200, "{:?}", linted.body);
    let by_bob = server
        .post(
            &templates,
            Some(&bob),
            json!({"template": build_template()}),
        )
        .await?;
    assert_eq!(by_bob.status, 403, "{:?}", by_bob.body);
    let created = server
        .post(
            &templates,
            Some(&alice),
            json!({"template": build_template()}),
        )
        .await?;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let listed = server.get(&templates, Some(&bob)).await?;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!(listed.body["items"][0]["metadata"]["name"], "build");

    // Workflows: lint and create refuse an unknown entrypoint; a valid one is created.
    let lint = server
        .post(
            &format!("{workflows}/lint"),
            Some(&alice),
            json!({"workflow": workflow("hello-", "missing")}),
        )
        .await?;
    assert_eq!(lint.status, 400, "{:?}", lint.body);
    assert!(
        lint.body["message"].as_str().unwrap().contains("missing"),
        "{:?}",
        lint.body
    );
    let refused = server
        .post(
            &workflows,
            Some(&alice),
            json!({"workflow": workflow("hello-", "missing")}),
        )
        .await?;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    let by_bob = server
        .post(
            &workflows,
            Some(&bob),
            json!({"workflow": workflow("hello-", "main")}),
        )
        .await?;
    assert_eq!(by_bob.status, 403, "{:?}", by_bob.body);
    assert_eq!(by_bob.body["message"], "permission denied");
    let created = server
        .post(
            &workflows,
            Some(&alice),
            json!({"workflow": workflow("hello-", "main")}),
        )
        .await?;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let hello = name_of(&created.body);
    assert!(hello.starts_with("hello-"), "{hello}");
    let one = format!("{workflows}/{hello}");

    // Bob reads what alice made, and the watch shows it, then its changes.
    let got = server.get(&one, Some(&bob)).await?;
    assert_eq!(got.status, 200, "{:?}", got.body);
    assert_eq!(got.body["kind"], "Workflow");
    let listed = server.get(&workflows, Some(&bob)).await?;
    let names: Vec<String> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(name_of)
        .collect();
    assert_eq!(names, [hello.as_str()]);

    // Its pods' logs need `logs, get` as well: alice has none; bob's read-only role has it (no
    // pod has started, so no entry), a bad `grep` is named, and a missing workflow is NotFound.
    let auth = |token: &str| [("Authorization".to_string(), format!("Bearer {token}"))];
    let log = format!("{one}/log?logOptions.container=main");
    let (status, _, body) = server.raw("GET", &log, &auth(&alice), b"").await?;
    assert_eq!(status, 403, "{body}");
    let (status, _, body) = server.raw("GET", &log, &auth(&bob), b"").await?;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("data:"), "{body}");
    let bad = server.get(&format!("{log}&grep=%28"), Some(&bob)).await?;
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    assert!(
        bad.body["message"]
            .as_str()
            .unwrap()
            .starts_with("failed to compile \"(\""),
        "{:?}",
        bad.body
    );
    let missing = server
        .get(&format!("{workflows}/nowhere/log"), Some(&bob))
        .await?;
    assert_eq!(missing.status, 404, "{:?}", missing.body);
    let mut watch = server
        .open_stream(
            &format!(
                "/api/v1/workflow-events/{ns}?listOptions.fieldSelector=metadata.name%3D{hello}"
            ),
            &bob,
        )
        .await?;
    let first = watch.next().await?;
    assert_eq!(first["result"]["type"], "ADDED", "{first}");
    assert_eq!(first["result"]["object"]["metadata"]["name"], hello);

    // Lifecycle actions: bob is refused, alice's are written for the controller to act on.
    for action in ["suspend", "resume", "stop", "terminate", "retry"] {
        let refused = server
            .put(&format!("{one}/{action}"), Some(&bob), json!({}))
            .await?;
        assert_eq!(refused.status, 403, "{action}: {:?}", refused.body);
    }
    let suspended = server
        .put(&format!("{one}/suspend"), Some(&alice), json!({}))
        .await?;
    assert_eq!(suspended.status, 200, "{:?}", suspended.body);
    assert_eq!(suspended.body["spec"]["suspend"], true);
    let modified = watch.next().await?;
    assert_eq!(modified["result"]["type"], "MODIFIED", "{modified}");
    assert_eq!(modified["result"]["object"]["spec"]["suspend"], true);
    let resumed = server
        .put(&format!("{one}/resume"), Some(&alice), json!({}))
        .await?;
    assert_eq!(resumed.status, 200, "{:?}", resumed.body);
    assert_eq!(resumed.body["spec"].get("suspend"), None);
    let stopped = server
        .put(&format!("{one}/stop"), Some(&alice), json!({}))
        .await?;
    assert_eq!(stopped.status, 200, "{:?}", stopped.body);
    assert_eq!(stopped.body["spec"]["shutdown"], "Stop");
    // Nothing has failed: there is nothing to retry.
    let retry = server
        .put(&format!("{one}/retry"), Some(&alice), json!({}))
        .await?;
    assert_eq!(retry.status, 400, "{:?}", retry.body);
    assert!(
        retry.body["message"]
            .as_str()
            .unwrap()
            .starts_with("Cannot retry a workflow in phase"),
        "{:?}",
        retry.body
    );
    let resubmitted = server
        .put(
            &format!("{one}/resubmit"),
            Some(&alice),
            json!({"memoized": false}),
        )
        .await?;
    assert_eq!(resubmitted.status, 200, "{:?}", resubmitted.body);
    assert_eq!(
        resubmitted.body["metadata"]["labels"]["workflows.argoproj.io/resubmitted-from-workflow"],
        hello
    );
    assert_eq!(resubmitted.body["spec"].get("shutdown"), None);

    // Submitting from the template, with a parameter and a label.
    let submitted = server
        .post(
            &format!("{workflows}/submit"),
            Some(&alice),
            json!({
                "resourceKind": "WorkflowTemplate",
                "resourceName": "build",
                "submitOptions": {"parameters": ["revision=r1"], "labels": "team=a"},
            }),
        )
        .await?;
    assert_eq!(submitted.status, 200, "{:?}", submitted.body);
    assert_eq!(
        submitted.body["spec"]["workflowTemplateRef"]["name"],
        "build"
    );
    assert_eq!(submitted.body["metadata"]["labels"]["team"], "a");
    assert_eq!(
        submitted.body["spec"]["arguments"]["parameters"][0],
        json!({"name": "revision", "value": "r1"})
    );

    // An event: the binding whose selector holds submits the template.
    let binding: WorkflowEventBinding = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowEventBinding",
        "metadata": {"name": "on-ci"},
        "spec": {
            "event": {"selector": r#"discriminator == "ci" && payload.ref == "main""#},
            "submit": {
                "workflowTemplateRef": {"name": "build"},
                "arguments": {"parameters": [
                    {"name": "revision", "valueFrom": {"event": "payload.revision"}},
                ]},
            },
        },
    }))?;
    ctx.api::<WorkflowEventBinding>()
        .create(&PostParams::default(), &binding)
        .await?;
    let event = json!({"ref": "main", "revision": "0d1a26e"});
    let refused = server
        .post(
            &format!("/api/v1/events/{ns}/ci"),
            Some(&bob),
            event.clone(),
        )
        .await?;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    let received = server
        .post(
            &format!("/api/v1/events/{ns}/ci"),
            Some(&alice),
            event.clone(),
        )
        .await?;
    assert_eq!(received.status, 200, "{:?}", received.body);
    let reported = &received.body["workflows"][0];
    assert_eq!(reported["binding"], "on-ci", "{:?}", received.body);
    let from_event: Workflow = ctx
        .api::<Workflow>()
        .get(reported["workflow"].as_str().unwrap())
        .await?;
    let parameters = from_event.spec.arguments.unwrap().parameters;
    assert_eq!(parameters[0].value.as_deref(), Some("0d1a26e"));
    let other = server
        .post(&format!("/api/v1/events/{ns}/other"), Some(&alice), event)
        .await?;
    assert_eq!(other.body["workflows"], json!([]), "{:?}", other.body);
    let bindings = server
        .get(&format!("/api/v1/workflow-event-bindings/{ns}"), Some(&bob))
        .await?;
    assert_eq!(bindings.body["items"][0]["metadata"]["name"], "on-ci");

    // CronWorkflows: created, suspended, resumed, deleted.
    let crons = format!("/api/v1/cron-workflows/{ns}");
    let cron = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedules": ["0 3 * * *"],
            "workflowSpec": workflow("x-", "main")["spec"],
        },
    });
    let created = server
        .post(&crons, Some(&alice), json!({"cronWorkflow": cron}))
        .await?;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let suspended = server
        .put(&format!("{crons}/nightly/suspend"), Some(&alice), json!({}))
        .await?;
    assert_eq!(
        suspended.body["spec"]["suspend"], true,
        "{:?}",
        suspended.body
    );
    let refused = server
        .put(&format!("{crons}/nightly/resume"), Some(&bob), json!({}))
        .await?;
    assert_eq!(refused.status, 403);
    let resumed = server
        .put(&format!("{crons}/nightly/resume"), Some(&alice), json!({}))
        .await?;
    assert_eq!(resumed.body["spec"]["suspend"], false, "{:?}", resumed.body);
    let deleted = server
        .delete(&format!("{crons}/nightly"), Some(&alice))
        .await?;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);

    // ClusterWorkflowTemplates are named in policies without a namespace.
    let shared = format!("{ns}-shared");
    let mut cluster_template = build_template();
    cluster_template["kind"] = json!("ClusterWorkflowTemplate");
    cluster_template["metadata"]["name"] = json!(shared);
    let by_bob = server
        .post(
            "/api/v1/cluster-workflow-templates",
            Some(&bob),
            json!({"template": cluster_template}),
        )
        .await?;
    assert_eq!(by_bob.status, 403);
    let created = server
        .post(
            "/api/v1/cluster-workflow-templates",
            Some(&alice),
            json!({"template": cluster_template}),
        )
        .await?;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let got = server
        .get(
            &format!("/api/v1/cluster-workflow-templates/{shared}"),
            Some(&bob),
        )
        .await?;
    assert_eq!(got.status, 200, "{:?}", got.body);
    let deleted = server
        .delete(
            &format!("/api/v1/cluster-workflow-templates/{shared}"),
            Some(&alice),
        )
        .await?;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);

    // Another namespace is refused before the cluster is asked.
    let elsewhere = server
        .get("/api/v1/workflows/default/anything", Some(&alice))
        .await?;
    assert_eq!(elsewhere.status, 403, "{:?}", elsewhere.body);

    // Deletion, audited with the caller's name.
    assert_eq!(server.delete(&one, Some(&bob)).await?.status, 403);
    let deleted = server.delete(&one, Some(&alice)).await?;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    assert_eq!(server.get(&one, Some(&alice)).await?.status, 404);
    let messages = event_messages(&ctx, &hello).await?;
    for expected in [
        "alice created workflow",
        "alice suspended workflow",
        "alice deleted workflow",
    ] {
        assert!(
            messages.iter().any(|m| m == expected),
            "{expected}: {messages:?}"
        );
    }

    let log = server.stop().await?;
    assert!(log.contains("permission denied"), "{log}");
    assert!(log.contains("subject=bob"), "{log}");
    Ok(())
}
