//! The workflow controller's metrics, scraped over HTTP as Prometheus scrapes them, while it
//! runs against the shared sandbox: a workflow whose pod kwok runs and the test ends succeeds,
//! an invalid one fails, and the workflow gauge, the node gauge, the phase counter and the
//! operation histogram say so under upstream's names.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use ferry_testkit::kube::TestContext;
use ferry_testkit::kwok;
use ferry_types::Workflow;
use ferry_types::workflow::{Phase, labels};
use ferry_workflow::controller::{Settings, run_with_metrics};
use ferry_workflow::metrics::Metrics;
use ferry_workflow::pod::PodSettings;
use kube::api::PostParams;
use serde_json::json;

fn workflow(name: &str, entrypoint: &str) -> Result<Workflow> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {
            "entrypoint": entrypoint,
            "templates": [{"name": "main", "container": {"image": "busybox", "command": ["true"]}}],
        },
    }))?)
}

/// The value of the sample `series` (name and labels as rendered), if scraped.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_workflows_nodes_and_operations() -> Result<()> {
    let ctx = TestContext::new().await?;
    ferry_runtime::install_workflow_crds(&ctx.client(), "ferry-tests").await?;
    let ns = ctx.namespace().to_string();
    let metrics = Arc::new(Metrics::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/metrics", listener.local_addr()?);
    let serving = tokio::spawn(ferry_runtime::metrics::serve(metrics.clone(), listener));
    let settings = Settings {
        namespace: Some(ns.clone()),
        pods: PodSettings {
            executor_image: "ferry.local/ferry-exec:kwok".into(),
            executor_pull_policy: None,
        },
        concurrency: 4,
    };
    let client = ctx.client();
    let controller = tokio::spawn(run_with_metrics(
        client,
        settings,
        metrics,
        std::future::pending(),
    ));
    let kubelet = kwok::end_pods(ctx.api(), labels::WORKFLOW, |_| {
        Some(kwok::Ending {
            exit_code: 0,
            message: ferry_exec::Report::default().to_message(),
        })
    });
    let workflows = ctx.api::<Workflow>();
    workflows
        .create(&PostParams::default(), &workflow("fine", "main")?)
        .await?;
    workflows
        .create(&PostParams::default(), &workflow("broken", "missing")?)
        .await?;

    let namespaced =
        |phase: &str| format!(r#"argo_workflows_total_count{{namespace="{ns}",phase="{phase}"}}"#);
    let mut text = String::new();
    for _ in 0..120 {
        text = reqwest::get(&url).await?.error_for_status()?.text().await?;
        let done = sample(&text, r#"argo_workflows_gauge{phase="Succeeded"}"#) == Some(1.0)
            && sample(&text, r#"argo_workflows_gauge{phase="Failed"}"#) == Some(1.0);
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let fine = workflows.get("fine").await?.status.and_then(|s| s.phase);
    let broken = workflows.get("broken").await?.status.and_then(|s| s.phase);
    if fine != Some(Phase::Succeeded) || broken != Some(Phase::Failed) {
        bail!("the workflows did not end as expected:\n{text}");
    }
    assert_eq!(
        sample(&text, r#"argo_workflows_gauge{phase="Succeeded"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"argo_workflows_gauge{phase="Running"}"#),
        Some(0.0),
        "{text}"
    );
    assert_eq!(sample(&text, &namespaced("Succeeded")), Some(1.0), "{text}");
    assert_eq!(sample(&text, &namespaced("Failed")), Some(1.0), "{text}");
    assert_eq!(sample(&text, &namespaced("Running")), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"ferry_workflow_nodes{type="Pod",phase="Succeeded"}"#
        ),
        Some(1.0),
        "{text}"
    );
    let operations = sample(&text, "argo_workflows_operation_duration_seconds_count");
    assert!(operations.is_some_and(|n| n >= 3.0), "{text}");
    assert!(
        text.contains("# TYPE argo_workflows_operation_duration_seconds histogram"),
        "{text}"
    );

    kubelet.abort();
    controller.abort();
    serving.abort();
    Ok(())
}
