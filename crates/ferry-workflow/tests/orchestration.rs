//! The workflow controller's orchestration against the shared sandbox, on kwok's simulated
//! nodes: the controller creates real pods, kwok schedules them and marks them Running, and
//! the test plays the kubelet's last part — it ends each Running pod the way the kubelet ends a
//! pod whose main container exited: phase Succeeded or Failed, the main container terminated
//! with an exit code and, as its termination message, the report ferry-exec writes (result and
//! output parameters). What each pod reports is decided here, by its node's name.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use ferry_exec::Report;
use ferry_testkit::kube::TestContext;
use ferry_testkit::kwok;
use ferry_types::Workflow;
use ferry_types::workflow::{NodeStatus, Phase, labels};
use ferry_workflow::controller::{Settings, run};
use ferry_workflow::pod::PodSettings;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// How a pod of the story ends: exit code and report.
type Ending = (i32, Report);

/// The main container's command line of each pod, by node name.
type Commands = Arc<Mutex<BTreeMap<String, Vec<String>>>>;

/// The controller, for this test's namespace only, until the test ends; the CRDs installed
/// before (the controller installs them too, but the story may submit first).
async fn start_controller(ctx: &TestContext) -> Result<tokio::task::JoinHandle<()>> {
    ferry_runtime::install_workflow_crds(&ctx.client(), "ferry-tests").await?;
    let settings = Settings {
        namespace: Some(ctx.namespace().to_string()),
        pods: PodSettings {
            executor_image: "ferry.local/ferry-exec:kwok".into(),
            executor_pull_policy: None,
        },
        concurrency: 4,
    };
    let client = ctx.client();
    Ok(tokio::spawn(async move {
        if let Err(err) = run(client, settings, std::future::pending()).await {
            panic!("controller: {err:#}");
        }
    }))
}

/// Ends every Running pod of the namespace as `ending` says for its node name, and keeps the
/// main container's command line of each pod by node name.
fn start_kubelet(
    ctx: &TestContext,
    ending: impl Fn(&str) -> Option<Ending> + Send + 'static,
) -> (tokio::task::JoinHandle<()>, Commands) {
    let commands = Commands::default();
    let seen = commands.clone();
    let task = kwok::end_pods(ctx.api(), labels::WORKFLOW, move |pod| {
        let node = pod
            .annotations()
            .get(labels::NODE_NAME)
            .cloned()
            .unwrap_or_default();
        let main = &pod.spec.as_ref().unwrap().containers[0];
        seen.lock()
            .unwrap()
            .insert(node.clone(), main.command.clone().unwrap_or_default());
        ending(&node).map(|(exit_code, report)| kwok::Ending {
            exit_code,
            message: report.to_message(),
        })
    });
    (task, commands)
}

fn ok() -> Option<Ending> {
    Some((0, Report::default()))
}

fn result(text: &str) -> Option<Ending> {
    Some((
        0,
        Report {
            result: Some(text.into()),
            ..Report::default()
        },
    ))
}

fn failed() -> Option<Ending> {
    Some((1, Report::default()))
}

async fn submit(ctx: &TestContext, yaml: &str) -> Result<String> {
    let workflow: Workflow = serde_yaml::from_str(yaml)?;
    let created = ctx
        .api::<Workflow>()
        .create(&PostParams::default(), &workflow)
        .await?;
    Ok(created.name_any())
}

/// The workflow once it finished (or the last seen, with its nodes, on a timeout).
async fn finished(ctx: &TestContext, name: &str) -> Result<Workflow> {
    let api = ctx.api::<Workflow>();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let workflow = api.get(name).await?;
        let status = workflow.status.clone().unwrap_or_default();
        if status.phase.is_some_and(|p| p.is_completed()) {
            return Ok(workflow);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("workflow {name} did not finish: {status:#?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The node whose display name is `display`.
fn node<'a>(workflow: &'a Workflow, display: &str) -> &'a NodeStatus {
    let nodes = &workflow.status.as_ref().unwrap().nodes;
    nodes
        .values()
        .find(|n| n.display_name == display)
        .unwrap_or_else(|| panic!("no node {display}: {nodes:#?}"))
}

#[tokio::test]
async fn steps_pass_a_result_to_when_conditions_and_fan_out_over_items() -> Result<()> {
    let ctx = TestContext::new().await?;
    let controller = start_controller(&ctx).await?;
    let (kubelet, commands) = start_kubelet(&ctx, |node| {
        if node.ends_with(".flip") {
            result("heads")
        } else {
            ok()
        }
    });
    let name = submit(
        &ctx,
        "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: coin}
spec:
  entrypoint: main
  arguments: {parameters: [{name: greeting, value: hello}]}
  templates:
  - name: main
    steps:
    - - name: flip
        template: flip
    - - name: heads
        template: echo
        when: '{{steps.flip.outputs.result}} == heads'
        arguments: {parameters: [{name: msg, value: '{{workflow.parameters.greeting}} {{steps.flip.outputs.result}}'}]}
      - name: tails
        template: echo
        when: '{{steps.flip.outputs.result}} == tails'
        arguments: {parameters: [{name: msg, value: tails}]}
    - - name: fan
        template: echo
        withItems: [a, b, c]
        arguments: {parameters: [{name: msg, value: 'item {{item}}'}]}
  - name: flip
    script: {image: busybox, command: [sh], source: 'echo heads'}
  - name: echo
    inputs: {parameters: [{name: msg}]}
    container: {image: busybox, command: [echo, '{{inputs.parameters.msg}}']}
",
    )
    .await?;
    let wf = finished(&ctx, &name).await?;
    let status = wf.status.clone().unwrap();
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    assert_eq!(status.progress.as_deref(), Some("5/5"));
    assert!(status.started_at.is_some() && status.finished_at.is_some());

    let root = &status.nodes["coin"];
    assert_eq!(
        (root.type_.as_str(), root.phase),
        ("Steps", Phase::Succeeded)
    );
    let flip = node(&wf, "flip");
    assert_eq!(
        flip.outputs.as_ref().unwrap().result.as_deref(),
        Some("heads")
    );
    assert_eq!(flip.boundary_id.as_deref(), Some("coin"));
    let tails = node(&wf, "tails");
    assert_eq!(
        (tails.type_.as_str(), tails.phase),
        ("Skipped", Phase::Skipped)
    );
    assert_eq!(
        tails.message.as_deref(),
        Some("when '{{steps.flip.outputs.result}} == tails' evaluated false")
    );
    assert_eq!(node(&wf, "heads").phase, Phase::Succeeded);
    for (i, item) in ["a", "b", "c"].iter().enumerate() {
        assert_eq!(
            node(&wf, &format!("fan({i}:{item})")).phase,
            Phase::Succeeded
        );
    }
    let group = node(&wf, "[1]");
    assert_eq!(group.type_, "StepGroup");
    assert_eq!(group.children.len(), 2);

    // Substitution reached the pods: the heads step echoed the workflow's argument and the
    // first step's result, wrapped by the executor.
    let commands = commands.lock().unwrap().clone();
    let heads = &commands["coin[1].heads"];
    assert_eq!(heads[..2], [ferry_exec::BINARY, "run"]);
    assert_eq!(heads[heads.len() - 2..], ["echo", "hello heads"]);
    assert_eq!(commands["coin[2].fan(1:b)"].last().unwrap(), "item b");
    assert!(commands["coin[0].flip"].contains(&"--result".to_string()));
    kubelet.abort();
    controller.abort();
    Ok(())
}

#[tokio::test]
async fn a_dag_fans_out_over_a_result_retries_and_runs_its_exit_handler() -> Result<()> {
    let ctx = TestContext::new().await?;
    let controller = start_controller(&ctx).await?;
    let (kubelet, commands) = start_kubelet(&ctx, |node| {
        if node.ends_with(".gen") {
            result(r#"["x", "y"]"#)
        } else if node.contains(".flaky(") {
            // Fails twice, then succeeds: within its limit of 2 retries.
            if node.ends_with("(2)") {
                ok()
            } else {
                failed()
            }
        } else if node.contains(".broken(") {
            failed()
        } else {
            ok()
        }
    });
    let name = submit(
        &ctx,
        "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: pipeline}
spec:
  entrypoint: main
  onExit: report
  templates:
  - name: main
    dag:
      tasks:
      - {name: gen, template: gen}
      - name: each
        depends: gen
        template: echo
        withParam: '{{tasks.gen.outputs.result}}'
        arguments: {parameters: [{name: msg, value: '{{item}}'}]}
      - {name: flaky, depends: gen, template: flaky}
      - {name: broken, depends: gen && flaky, template: broken}
      - name: on-failure
        depends: broken.Failed
        template: echo
        arguments: {parameters: [{name: msg, value: 'broken: {{tasks.broken.status}}'}]}
      - {name: after-broken, dependencies: [broken], template: echo, arguments: {parameters: [{name: msg, value: never}]}}
  - name: gen
    script: {image: busybox, command: [sh], source: 'echo x y'}
  - name: flaky
    retryStrategy: {limit: 2}
    container: {image: busybox, command: [sh, -c, 'exit 1']}
  - name: broken
    retryStrategy: {limit: '1'}
    container: {image: busybox, command: [sh, -c, 'exit 1']}
  - name: echo
    inputs: {parameters: [{name: msg}]}
    container: {image: busybox, command: [echo, '{{inputs.parameters.msg}}']}
  - name: report
    container: {image: busybox, command: [echo, 'workflow {{workflow.status}}']}
",
    )
    .await?;
    let wf = finished(&ctx, &name).await?;
    let status = wf.status.clone().unwrap();
    // after-broken, a leaf, was omitted below a failed task: the DAG fails, as upstream's.
    assert_eq!(status.phase, Some(Phase::Failed), "{status:#?}");
    let dag = &status.nodes["pipeline"];
    assert_eq!((dag.type_.as_str(), dag.phase), ("DAG", Phase::Failed));

    let each = node(&wf, "each");
    assert_eq!(
        (each.type_.as_str(), each.phase),
        ("TaskGroup", Phase::Succeeded)
    );
    assert_eq!(each.children.len(), 2);
    assert_eq!(node(&wf, "each(1:y)").phase, Phase::Succeeded);

    let flaky = node(&wf, "flaky");
    assert_eq!(
        (flaky.type_.as_str(), flaky.phase),
        ("Retry", Phase::Succeeded)
    );
    let attempts = |node: &NodeStatus| {
        let nodes = &wf.status.as_ref().unwrap().nodes;
        let attempt = format!("{}(", node.display_name);
        node.children
            .iter()
            .filter(|c| nodes[*c].display_name.starts_with(&attempt))
            .count()
    };
    assert_eq!(attempts(flaky), 3);
    assert_eq!(
        node(&wf, "flaky(0)").message.as_deref(),
        Some("Error (exit code 1)")
    );

    let broken = node(&wf, "broken");
    assert_eq!(broken.phase, Phase::Failed);
    assert_eq!(attempts(broken), 2);
    assert_eq!(broken.message.as_deref(), Some("No more retries left"));

    assert_eq!(node(&wf, "on-failure").phase, Phase::Succeeded);
    let omitted = node(&wf, "after-broken");
    assert_eq!(omitted.phase, Phase::Omitted);

    let exit = node(&wf, "pipeline.onExit");
    assert_eq!(exit.phase, Phase::Succeeded);
    let commands = commands.lock().unwrap().clone();
    assert_eq!(
        commands["pipeline.on-failure"].last().unwrap(),
        "broken: Failed"
    );
    assert_eq!(
        commands["pipeline.onExit"].last().unwrap(),
        "workflow Failed"
    );
    assert_eq!(commands["pipeline.each(0:x)"].last().unwrap(), "x");
    kubelet.abort();
    controller.abort();
    Ok(())
}

#[tokio::test]
async fn the_deadline_fails_running_steps_and_bad_specs_fail_with_the_field() -> Result<()> {
    let ctx = TestContext::new().await?;
    let controller = start_controller(&ctx).await?;
    // The pods never end by themselves.
    let (kubelet, _) = start_kubelet(&ctx, |_| None);
    let slow = submit(
        &ctx,
        "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: slow}
spec:
  entrypoint: sleep
  activeDeadlineSeconds: 3
  templates:
  - name: sleep
    container: {image: busybox, command: [sleep, '3600']}
",
    )
    .await?;
    let invalid = submit(
        &ctx,
        "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: invalid}
spec:
  entrypoint: main
  templates:
  - name: main
    steps: [[{name: a, template: nowhere}]]
",
    )
    .await?;

    let wf = finished(&ctx, &invalid).await?;
    let status = wf.status.unwrap();
    assert_eq!(status.phase, Some(Phase::Failed));
    assert_eq!(
        status.message.as_deref(),
        Some("invalid spec: templates.main.a: template \"nowhere\" not found")
    );

    let wf = finished(&ctx, &slow).await?;
    let status = wf.status.clone().unwrap();
    assert_eq!(status.phase, Some(Phase::Failed));
    let pod_node = &status.nodes["slow"];
    assert_eq!(
        pod_node.message.as_deref(),
        Some("Step exceeded its deadline")
    );
    let pods: Api<Pod> = ctx.api();
    let remaining = pods
        .list(&ListParams::default().labels(labels::WORKFLOW))
        .await?;
    assert!(
        remaining
            .items
            .iter()
            .all(|p| p.metadata.deletion_timestamp.is_some()),
        "the deadline deletes the running pod"
    );
    kubelet.abort();
    controller.abort();
    Ok(())
}

/// Waits until `name` satisfies `ready` (the last seen on a timeout).
async fn wait_for(
    ctx: &TestContext,
    name: &str,
    what: &str,
    ready: impl Fn(&Workflow) -> bool,
) -> Result<Workflow> {
    let api = ctx.api::<Workflow>();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let workflow = api.get(name).await?;
        if ready(&workflow) {
            return Ok(workflow);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("workflow {name}: {what}: {:#?}", workflow.status);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn has_node(workflow: &Workflow, display: &str, phase: Phase) -> bool {
    workflow
        .status
        .iter()
        .flat_map(|s| s.nodes.values())
        .any(|n| n.display_name == display && n.phase == phase)
}

#[tokio::test]
async fn suspend_templates_wait_for_resume_or_their_duration_and_spec_suspend_holds_new_steps()
-> Result<()> {
    let ctx = TestContext::new().await?;
    let controller = start_controller(&ctx).await?;
    let (kubelet, _) = start_kubelet(&ctx, |_| ok());
    let gate = submit(
        &ctx,
        "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: gate}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: build, template: work}
    - - {name: approve, template: approve}
    - - {name: pause, template: pause}
    - - {name: deploy, template: work}
  - name: approve
    suspend: {}
  - name: pause
    suspend: {duration: '2s'}
  - name: work
    container: {image: busybox, command: ['true']}
",
    )
    .await?;
    let api = ctx.api::<Workflow>();
    let waiting = wait_for(&ctx, &gate, "approve waits", |wf| {
        has_node(wf, "approve", Phase::Running)
    })
    .await?;
    assert_eq!(node(&waiting, "approve").type_, "Suspend");
    assert!(ferry_workflow::control::is_suspended(&waiting));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = api.get(&gate).await?;
    assert!(has_node(&still, "approve", Phase::Running), "{still:#?}");
    assert!(!has_node(&still, "pause", Phase::Running));

    let selector = ferry_workflow::control::NodeSelector::parse("displayName=approve")
        .map_err(anyhow::Error::msg)?;
    ferry_workflow::control::update(&api, &gate, |wf| {
        ferry_workflow::control::resume(wf, Some(&selector), jiff::Timestamp::now())
    })
    .await?;
    let wf = finished(&ctx, &gate).await?;
    let status = wf.status.clone().unwrap();
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    let pause = node(&wf, "pause");
    let waited = pause.finished_at.as_ref().unwrap().0 - pause.started_at.as_ref().unwrap().0;
    assert!(
        waited.get_seconds() >= 2,
        "the 2s suspension ended by itself after {waited:?}"
    );
    assert_eq!(node(&wf, "deploy").phase, Phase::Succeeded);

    // spec.suspend from the start: nothing runs until resumed.
    let held = submit(
        &ctx,
        "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: held}
spec:
  entrypoint: work
  suspend: true
  templates:
  - name: work
    container: {image: busybox, command: ['true']}
",
    )
    .await?;
    let running = wait_for(&ctx, &held, "running", |wf| {
        wf.status.as_ref().and_then(|s| s.phase) == Some(Phase::Running)
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pods: Api<Pod> = ctx.api();
    let selector = format!("{}={held}", labels::WORKFLOW);
    assert!(
        pods.list(&ListParams::default().labels(&selector))
            .await?
            .items
            .is_empty(),
        "a suspended workflow starts no pod: {running:#?}"
    );
    ferry_workflow::control::update(&api, &held, |wf| {
        ferry_workflow::control::resume(wf, None, jiff::Timestamp::now())
    })
    .await?;
    let wf = finished(&ctx, &held).await?;
    assert_eq!(wf.status.unwrap().phase, Some(Phase::Succeeded));
    assert_eq!(wf.spec.suspend, None);
    kubelet.abort();
    controller.abort();
    Ok(())
}

#[tokio::test]
async fn stop_runs_the_exit_handler_and_terminate_does_not() -> Result<()> {
    let ctx = TestContext::new().await?;
    let controller = start_controller(&ctx).await?;
    // The long step never ends by itself; the rest do.
    let (kubelet, _) = start_kubelet(
        &ctx,
        |node| {
            if node.ends_with(".long") { None } else { ok() }
        },
    );
    let spec = |name: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {{name: {name}}}
spec:
  entrypoint: main
  onExit: cleanup
  templates:
  - name: main
    steps:
    - - {{name: long, template: work}}
      - {{name: wait, template: wait}}
    - - {{name: after, template: work}}
  - name: wait
    suspend: {{}}
  - name: work
    container: {{image: busybox, command: [sleep, '3600']}}
  - name: cleanup
    container: {{image: busybox, command: ['true']}}
"
        )
    };
    let api = ctx.api::<Workflow>();
    let pods: Api<Pod> = ctx.api();
    for (name, strategy) in [
        ("stopped", ferry_workflow::control::Shutdown::Stop),
        ("terminated", ferry_workflow::control::Shutdown::Terminate),
    ] {
        submit(&ctx, &spec(name)).await?;
        wait_for(&ctx, name, "long runs", |wf| {
            has_node(wf, "long", Phase::Running) && has_node(wf, "wait", Phase::Running)
        })
        .await?;
        ferry_workflow::control::update(&api, name, |wf| {
            ferry_workflow::control::shutdown(wf, strategy)
        })
        .await?;
        let wf = finished(&ctx, name).await?;
        let status = wf.status.clone().unwrap();
        let strategy = strategy.as_str();
        assert_eq!(status.phase, Some(Phase::Failed), "{status:#?}");
        assert_eq!(
            status.message,
            Some(format!("Stopped with strategy '{strategy}'"))
        );
        assert_eq!(
            node(&wf, "long").message,
            Some(format!("workflow shutdown with strategy: {strategy}"))
        );
        assert_eq!(
            node(&wf, "wait").message,
            Some(format!("Stopped with strategy '{strategy}'"))
        );
        assert!(
            !has_node(&wf, "after", Phase::Pending) && !has_node(&wf, "after", Phase::Succeeded)
        );
        let exit = status
            .nodes
            .values()
            .find(|n| n.display_name == format!("{name}.onExit"));
        match strategy {
            "Stop" => assert_eq!(exit.map(|n| n.phase), Some(Phase::Succeeded), "{exit:#?}"),
            _ => assert!(exit.is_none(), "terminate runs no exit handler: {exit:#?}"),
        }
        let long = pod_name_of(&wf, "long");
        let pod = pods.get_opt(&long).await?;
        assert!(
            pod.is_none_or(|p| p.metadata.deletion_timestamp.is_some()),
            "the running pod is deleted"
        );
        assert!(
            ferry_workflow::control::update(&api, name, |wf| {
                ferry_workflow::control::shutdown(wf, ferry_workflow::control::Shutdown::Stop)
            })
            .await
            .unwrap_err()
            .to_string()
            .starts_with("cannot shutdown a completed workflow")
        );
    }
    kubelet.abort();
    controller.abort();
    Ok(())
}

/// The pod name of the node shown as `display`.
fn pod_name_of(workflow: &Workflow, display: &str) -> String {
    let n = node(workflow, display);
    ferry_workflow::names::pod_name(
        &workflow.metadata.name.clone().unwrap(),
        &n.name,
        n.template_name.as_deref().unwrap_or_default(),
    )
}

#[tokio::test]
async fn template_refs_run_workflow_templates_and_cluster_workflow_templates() -> Result<()> {
    let ctx = TestContext::new().await?;
    let controller = start_controller(&ctx).await?;
    let (kubelet, commands) = start_kubelet(&ctx, |_| ok());
    let client = ctx.client();
    let templates: Api<ferry_types::WorkflowTemplate> = ctx.api();
    let lib: ferry_types::WorkflowTemplate = serde_yaml::from_str(
        "apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: lib}
spec:
  entrypoint: inner
  arguments: {parameters: [{name: greeting, value: hi}, {name: who, value: world}]}
  templates:
  - name: hello
    inputs: {parameters: [{name: msg}]}
    container: {image: busybox, command: [echo, '{{inputs.parameters.msg}}']}
  - name: inner
    steps: [[{name: say, template: hello, arguments: {parameters: [{name: msg, value: '{{workflow.parameters.greeting}} {{workflow.parameters.who}}'}]}}]]
",
    )?;
    templates.create(&PostParams::default(), &lib).await?;
    // Cluster-scoped: named after the test's namespace, deleted at the end.
    let cluster_name = format!("{}-bye", ctx.namespace());
    let clusters: Api<ferry_types::ClusterWorkflowTemplate> = Api::all(client.clone());
    let cluster: ferry_types::ClusterWorkflowTemplate = serde_yaml::from_str(&format!(
        "apiVersion: argoproj.io/v1alpha1
kind: ClusterWorkflowTemplate
metadata: {{name: {cluster_name}}}
spec:
  templates:
  - name: bye
    container: {{image: busybox, command: [echo, bye]}}
"
    ))?;
    clusters.create(&PostParams::default(), &cluster).await?;

    let refs = submit(
        &ctx,
        &format!(
            "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {{name: refs}}
spec:
  entrypoint: main
  arguments: {{parameters: [{{name: greeting, value: hey}}, {{name: who, value: you}}]}}
  templates:
  - name: main
    steps:
    - - {{name: a, templateRef: {{name: lib, template: hello}}, arguments: {{parameters: [{{name: msg, value: direct}}]}}}}
    - - {{name: b, templateRef: {{name: lib, template: inner}}}}
    - - {{name: c, templateRef: {{name: {cluster_name}, template: bye, clusterScope: true}}}}
"
        ),
    )
    .await?;
    let from_template = submit(
        &ctx,
        "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: from-template}
spec:
  workflowTemplateRef: {name: lib}
  arguments: {parameters: [{name: greeting, value: hello}]}
",
    )
    .await?;
    let broken = submit(
        &ctx,
        "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: broken-ref}
spec:
  entrypoint: main
  templates:
  - name: main
    steps: [[{name: x, templateRef: {name: nowhere, template: t}}]]
",
    )
    .await?;

    let wf = finished(&ctx, &refs).await?;
    let status = wf.status.clone().unwrap();
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    assert!(status.stored_templates.contains_key("namespaced/lib/hello"));
    assert!(
        status
            .stored_templates
            .contains_key(&format!("cluster/{cluster_name}/bye"))
    );
    let say = node(&wf, "say");
    assert_eq!(say.template_scope.as_deref(), Some("namespaced/lib"));
    assert_eq!(say.template_ref.as_ref().unwrap().template, "hello");
    let seen = commands.lock().unwrap().clone();
    assert_eq!(seen["refs[0].a"].last().unwrap(), "direct");
    // Inside lib's `inner`, `template: hello` is lib's hello.
    assert_eq!(seen["refs[1].b[0].say"].last().unwrap(), "hey you");
    assert_eq!(seen["refs[2].c"].last().unwrap(), "bye");

    let wf = finished(&ctx, &from_template).await?;
    let status = wf.status.clone().unwrap();
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    assert!(status.stored_workflow_template_spec.is_some());
    let commands_now = commands_of(&commands.lock().unwrap(), "from-template[0].say");
    // The workflow's argument wins over the template's; the template's other one stays.
    assert_eq!(commands_now.last().unwrap(), "hello world");

    let wf = finished(&ctx, &broken).await?;
    let status = wf.status.unwrap();
    assert_eq!(status.phase, Some(Phase::Failed));
    assert_eq!(
        status.message.as_deref(),
        Some(
            "invalid spec: templates.main.x.templateRef: template \"t\" not found in WorkflowTemplate \"nowhere\""
        )
    );
    clusters.delete(&cluster_name, &Default::default()).await?;
    kubelet.abort();
    controller.abort();
    Ok(())
}

fn commands_of(commands: &BTreeMap<String, Vec<String>>, node: &str) -> Vec<String> {
    commands
        .get(node)
        .cloned()
        .unwrap_or_else(|| panic!("no pod for {node}: {:?}", commands.keys()))
}

#[tokio::test]
async fn sequences_fan_out_under_parallelism_and_retries_back_off() -> Result<()> {
    let ctx = TestContext::new().await?;
    let controller = start_controller(&ctx).await?;
    let (kubelet, commands) = start_kubelet(&ctx, |node| {
        if node.ends_with(".flaky(0)") {
            failed()
        } else {
            ok()
        }
    });
    let (watcher, most) = count_unfinished_pods(&ctx);
    let name = submit(
        &ctx,
        "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: seq}
spec:
  entrypoint: main
  parallelism: 2
  templates:
  - name: main
    steps:
    - - name: n
        template: echo
        withSequence: {count: '4', start: '9', format: 'user%02X'}
        arguments: {parameters: [{name: msg, value: '{{item}}'}]}
    - - {name: flaky, template: flaky}
  - name: echo
    inputs: {parameters: [{name: msg}]}
    container: {image: busybox, command: [echo, '{{inputs.parameters.msg}}']}
  - name: flaky
    retryStrategy: {limit: 3, backoff: {duration: '2s', factor: 2, maxDuration: '1m'}}
    container: {image: busybox, command: [sh, -c, 'exit 1']}
",
    )
    .await?;
    let wf = finished(&ctx, &name).await?;
    watcher.abort();
    let status = wf.status.clone().unwrap();
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    for (i, item) in ["user09", "user0A", "user0B", "user0C"].iter().enumerate() {
        assert_eq!(node(&wf, &format!("n({i}:{item})")).phase, Phase::Succeeded);
    }
    assert_eq!(
        commands.lock().unwrap()["seq[0].n(1:user0A)"]
            .last()
            .unwrap(),
        "user0A"
    );
    let most = *most.lock().unwrap();
    assert!(most <= 2, "parallelism 2, yet {most} pods ran at once");
    let failed_at = node(&wf, "flaky(0)").finished_at.clone().unwrap().0;
    let retried_at = node(&wf, "flaky(1)").started_at.clone().unwrap().0;
    assert!(
        retried_at.duration_since(failed_at).as_secs_f64() >= 2.0,
        "the retry waited its backoff: {failed_at} → {retried_at}"
    );
    assert_eq!(node(&wf, "flaky").message, None);
    kubelet.abort();
    controller.abort();
    Ok(())
}

/// Whether pod `name` is gone (or going).
async fn pod_gone(pods: &Api<Pod>, name: &str) -> Result<bool> {
    Ok(pods
        .get_opt(name)
        .await?
        .is_none_or(|p| p.metadata.deletion_timestamp.is_some()))
}

#[tokio::test]
async fn pod_gc_deletes_pods_and_ttl_strategy_the_finished_workflow() -> Result<()> {
    let ctx = TestContext::new().await?;
    let controller = start_controller(&ctx).await?;
    let (kubelet, _) = start_kubelet(&ctx, |node| {
        if node.ends_with(".bad") {
            failed()
        } else {
            ok()
        }
    });
    let per_pod = submit(
        &ctx,
        "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: gc-pods}
spec:
  entrypoint: main
  podGC: {strategy: OnPodSuccess}
  templates:
  - name: main
    steps: [[{name: good, template: work}, {name: bad, template: work}]]
  - name: work
    container: {image: busybox, command: ['true']}
",
    )
    .await?;
    let whole = submit(
        &ctx,
        "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: gc-all}
spec:
  entrypoint: work
  podGC: {strategy: OnWorkflowCompletion, deleteDelayDuration: 2s}
  ttlStrategy: {secondsAfterSuccess: 4, secondsAfterFailure: 600}
  templates:
  - name: work
    container: {image: busybox, command: ['true']}
",
    )
    .await?;
    let pods: Api<Pod> = ctx.api();
    let wf = finished(&ctx, &per_pod).await?;
    assert_eq!(wf.status.as_ref().unwrap().phase, Some(Phase::Failed));
    let (good, bad) = (pod_name_of(&wf, "good"), pod_name_of(&wf, "bad"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !pod_gone(&pods, &good).await? {
        assert!(
            tokio::time::Instant::now() < deadline,
            "OnPodSuccess deletes the succeeded pod"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(!pod_gone(&pods, &bad).await?, "the failed pod stays");

    let wf = finished(&ctx, &whole).await?;
    let pod = pod_name_of(&wf, &whole);
    let finished_at = wf.status.as_ref().unwrap().finished_at.clone().unwrap().0;
    let api = ctx.api::<Workflow>();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let gone = pod_gone(&pods, &pod).await?;
        let since = jiff::Timestamp::now()
            .duration_since(finished_at)
            .as_secs_f64();
        if gone {
            assert!(
                since >= 2.0,
                "deleteDelayDuration 2s, deleted after {since}s"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "OnWorkflowCompletion deletes the pod"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while api
        .get_opt(&whole)
        .await?
        .is_some_and(|w| w.metadata.deletion_timestamp.is_none())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "ttlStrategy deletes the workflow"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let since = jiff::Timestamp::now()
        .duration_since(finished_at)
        .as_secs_f64();
    assert!(
        since >= 4.0,
        "secondsAfterSuccess 4, deleted after {since}s"
    );
    assert!(
        api.get_opt(&per_pod).await?.is_some(),
        "no ttlStrategy, kept"
    );
    kubelet.abort();
    controller.abort();
    Ok(())
}

#[tokio::test]
async fn cron_workflows_run_when_due_unless_missed_or_suspended() -> Result<()> {
    let ctx = TestContext::new().await?;
    let controller = start_controller(&ctx).await?;
    let (kubelet, _) = start_kubelet(&ctx, |_| ok());
    let crons: Api<ferry_types::CronWorkflow> = ctx.api();
    // Yearly on January 1st, last run long ago: this year's run is due now.
    let cron = |name: &str, extra: &str| -> Result<ferry_types::CronWorkflow> {
        Ok(serde_yaml::from_str(&format!(
            "apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata: {{name: {name}}}
spec:
  schedule: '0 0 1 1 *'
{extra}  workflowSpec:
    entrypoint: work
    templates:
    - name: work
      container: {{image: busybox, command: ['true']}}
status: {{lastScheduledTime: '2020-01-01T00:00:00Z'}}
"
        ))?)
    };
    for (name, extra) in [
        ("yearly", ""),
        ("missed", "  startingDeadlineSeconds: 60\n"),
        ("paused", "  suspend: true\n"),
    ] {
        crons
            .create(&PostParams::default(), &cron(name, extra)?)
            .await?;
    }
    let year = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .year();
    let due: jiff::Timestamp = format!("{year}-01-01T00:00:00Z").parse()?;
    let run = format!("yearly-{}", due.as_second());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while ctx.api::<Workflow>().get_opt(&run).await?.is_none() {
        assert!(tokio::time::Instant::now() < deadline, "no run {run}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let wf = finished(&ctx, &run).await?;
    assert_eq!(wf.status.as_ref().unwrap().phase, Some(Phase::Succeeded));
    assert_eq!(wf.labels()[ferry_workflow::cron::LABEL], "yearly");
    assert_eq!(wf.owner_references()[0].kind, "CronWorkflow");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = crons.get("yearly").await?.status.unwrap_or_default();
        if status["lastScheduledTime"] == json!(due.to_string()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let missed = crons.get("missed").await?.status.unwrap_or_default();
    assert_eq!(
        missed["lastScheduledTime"],
        json!(due.to_string()),
        "consumed, not run"
    );
    let all = ctx.api::<Workflow>().list(&ListParams::default()).await?;
    let names: Vec<String> = all.items.iter().map(|w| w.name_any()).collect();
    assert_eq!(
        names,
        [run],
        "the missed and the suspended ones did not run"
    );
    kubelet.abort();
    controller.abort();
    Ok(())
}

/// Counts the namespace's unfinished pods as often as it can; the most seen at once.
fn count_unfinished_pods(ctx: &TestContext) -> (tokio::task::JoinHandle<()>, Arc<Mutex<usize>>) {
    let pods: Api<Pod> = ctx.api();
    let most = Arc::new(Mutex::new(0usize));
    let seen = most.clone();
    let watcher = tokio::spawn(async move {
        loop {
            if let Ok(list) = pods
                .list(&ListParams::default().labels(labels::WORKFLOW))
                .await
            {
                let unfinished = list
                    .items
                    .iter()
                    .filter(|p| {
                        let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                        !matches!(phase, Some("Succeeded" | "Failed"))
                    })
                    .count();
                let mut most = seen.lock().unwrap();
                *most = (*most).max(unfinished);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (watcher, most)
}

#[tokio::test]
async fn a_templates_parallelism_holds_its_steps() -> Result<()> {
    let ctx = TestContext::new().await?;
    let controller = start_controller(&ctx).await?;
    let (kubelet, _) = start_kubelet(&ctx, |_| ok());
    let (watcher, most) = count_unfinished_pods(&ctx);
    let name = submit(
        &ctx,
        "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: one-at-a-time}
spec:
  entrypoint: main
  templates:
  - name: main
    parallelism: 1
    steps: [[{name: each, template: work, withItems: [a, b, c]}]]
  - name: work
    container: {image: busybox, command: ['true']}
",
    )
    .await?;
    let wf = finished(&ctx, &name).await?;
    watcher.abort();
    let status = wf.status.clone().unwrap();
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    assert_eq!(status.progress.as_deref(), Some("3/3"));
    let most = *most.lock().unwrap();
    assert!(most <= 1, "parallelism 1, yet {most} pods ran at once");
    kubelet.abort();
    controller.abort();
    Ok(())
}

/// A PersistentVolume bound ahead to claim `claim` of the test's namespace, so that kwok's
/// scheduler places the pods mounting it (no provisioner runs in the sandbox).
async fn volume_for(ctx: &TestContext, claim: &str) -> Result<String> {
    let name = format!("{}-{claim}", ctx.namespace());
    let volume: k8s_openapi::api::core::v1::PersistentVolume = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "1Mi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/tmp/unused"},
            "claimRef": {"namespace": ctx.namespace(), "name": claim},
        },
    }))?;
    Api::<k8s_openapi::api::core::v1::PersistentVolume>::all(ctx.client())
        .create(&PostParams::default(), &volume)
        .await?;
    Ok(name)
}

/// Whether the claim `name` is gone (or going, with no finalizer left to hold it).
async fn claim_gone(ctx: &TestContext, name: &str) -> Result<bool> {
    let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> = ctx.api();
    Ok(claims.get_opt(name).await?.is_none_or(|c| {
        c.metadata.deletion_timestamp.is_some()
            && c.metadata.finalizers.unwrap_or_default().is_empty()
    }))
}

#[tokio::test]
async fn volumes_sidecars_and_claims_reach_the_pod_and_claims_follow_volume_claim_gc() -> Result<()>
{
    let ctx = TestContext::new().await?;
    let controller = start_controller(&ctx).await?;
    let (kubelet, _) = start_kubelet(&ctx, |node| {
        if node.starts_with("keep") {
            failed()
        } else {
            ok()
        }
    });
    let mut volumes = Vec::new();
    for claim in ["done-work", "keep-work"] {
        volumes.push(volume_for(&ctx, claim).await?);
    }
    let workflow = |name: &str, gc: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {{name: {name}}}
spec:
  entrypoint: main
  volumeClaimGC: {{strategy: {gc}}}
  volumeClaimTemplates:
  - metadata: {{name: work, labels: {{size: small}}}}
    spec: {{accessModes: [ReadWriteOnce], storageClassName: '', resources: {{requests: {{storage: 1Mi}}}}}}
  volumes:
  - {{name: settings, configMap: {{name: '{{{{workflow.name}}}}-settings', optional: true}}}}
  - {{name: unused, emptyDir: {{}}}}
  templates:
  - name: main
    volumes: [{{name: scratch, emptyDir: {{}}}}]
    container:
      image: busybox
      command: [sh, -c, 'wget -qO- localhost:8080 > /work/page']
      volumeMounts: [{{name: work, mountPath: /work}}, {{name: settings, mountPath: /etc/settings}}]
    sidecars:
    - name: web
      image: busybox
      command: [httpd, -f, -p, '8080']
      mirrorVolumeMounts: true
"
        )
    };
    let done = submit(&ctx, &workflow("done", "OnWorkflowCompletion")).await?;
    let kept = submit(&ctx, &workflow("keep", "OnWorkflowSuccess")).await?;

    // The claim, as upstream names, labels and owns it, exists before the pod. Looked at on the
    // workflow that keeps it: the other one may finish and delete its claim between two looks.
    let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> = ctx.api();
    wait_for(&ctx, &kept, "the claim recorded", |w| {
        w.status
            .as_ref()
            .is_some_and(|s| !s.persistent_volume_claims.is_empty())
    })
    .await?;
    let claim = claims.get("keep-work").await?;
    let labels = claim.labels();
    assert_eq!(
        labels.get(labels::WORKFLOW).map(String::as_str),
        Some("keep")
    );
    assert_eq!(labels.get("size").map(String::as_str), Some("small"));
    let owner = &claim.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Workflow", "keep")
    );
    assert_eq!(owner.controller, Some(true));

    let wf = finished(&ctx, &done).await?;
    assert_eq!(wf.status.as_ref().unwrap().phase, Some(Phase::Succeeded));
    let pods: Api<Pod> = ctx.api();
    let pod = serde_json::to_value(pods.get(&pod_name_of(&wf, &done)).await?)?;
    let spec = &pod["spec"];
    let volume_names: Vec<&str> = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .filter(|name| !name.starts_with("kube-api-access-"))
        .collect();
    assert_eq!(
        volume_names,
        ["var-run-ferry", "scratch", "work", "settings"]
    );
    assert_eq!(
        spec["volumes"][2]["persistentVolumeClaim"]["claimName"],
        "done-work"
    );
    assert_eq!(spec["volumes"][3]["configMap"]["name"], "done-settings");
    // The sidecar: a native one, after the executor's init container, with main's mounts.
    let web = &spec["initContainers"][1];
    assert_eq!(web["name"], "web");
    assert_eq!(web["restartPolicy"], "Always");
    let mounts: Vec<&str> = web["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["mountPath"].as_str())
        .collect();
    assert_eq!(mounts[..2], ["/work", "/etc/settings"]);
    assert!(!mounts.contains(&"/var/run/ferry"), "{mounts:?}");

    // OnWorkflowCompletion: deleted once the workflow finished, and gone from the status.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !claim_gone(&ctx, "done-work").await? {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the claim is deleted"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let status = ctx.api::<Workflow>().get(&done).await?.status.unwrap();
    assert!(status.persistent_volume_claims.is_empty(), "{status:#?}");

    // OnWorkflowSuccess keeps a failed workflow's claim.
    let wf = finished(&ctx, &kept).await?;
    let status = wf.status.as_ref().unwrap();
    assert_eq!(status.phase, Some(Phase::Failed));
    assert_eq!(
        status.persistent_volume_claims,
        [json!({"name": "work", "persistentVolumeClaim": {"claimName": "keep-work"}})]
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!claim_gone(&ctx, "keep-work").await?);

    // A claim template without a name, and a mount of no volume.
    let nameless = submit(
        &ctx,
        "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: nameless}
spec:
  entrypoint: main
  volumeClaimTemplates: [{spec: {accessModes: [ReadWriteOnce]}}]
  templates:
  - name: main
    container: {image: busybox, command: ['true']}
",
    )
    .await?;
    let wf = finished(&ctx, &nameless).await?;
    let status = wf.status.as_ref().unwrap();
    assert_eq!(status.phase, Some(Phase::Error));
    assert_eq!(
        status.message.as_deref(),
        Some("pvc create error: volumeClaimTemplates[0].metadata.name is required")
    );
    let unmounted = submit(
        &ctx,
        "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: unmounted}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: busybox, command: ['true'], volumeMounts: [{name: nowhere, mountPath: /x}]}
",
    )
    .await?;
    let wf = finished(&ctx, &unmounted).await?;
    let node = node(&wf, &unmounted);
    assert_eq!(node.phase, Phase::Error, "{node:#?}");
    assert!(
        node.message
            .as_deref()
            .is_some_and(|m| m.contains("volume 'nowhere' not found in workflow spec")),
        "{node:#?}"
    );

    kubelet.abort();
    controller.abort();
    let persistent: Api<k8s_openapi::api::core::v1::PersistentVolume> = Api::all(ctx.client());
    for volume in volumes {
        persistent.delete(&volume, &Default::default()).await?;
    }
    Ok(())
}

/// A ConfigMap of the test's namespace, if it exists.
async fn config_map(
    ctx: &TestContext,
    name: &str,
) -> Result<Option<k8s_openapi::api::core::v1::ConfigMap>> {
    Ok(ctx.api().get_opt(name).await?)
}

#[tokio::test]
async fn resource_templates_create_wait_for_conditions_pass_outputs_and_delete() -> Result<()> {
    let ctx = TestContext::new().await?;
    let controller = start_controller(&ctx).await?;
    let name = submit(
        &ctx,
        r#"apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: resources}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: make
        template: make
    - - name: copy
        template: copy
        arguments:
          parameters:
          - {name: greeting, value: '{{steps.make.outputs.parameters.greeting}}'}
          - {name: source, value: '{{steps.make.outputs.parameters.source}}'}
    - - name: tweak
        template: tweak
    - - name: read
        template: read
    - - name: remove
        template: remove
  - name: make
    resource:
      action: create
      setOwnerReference: true
      successCondition: data.ready == yes
      manifest: |
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: '{{workflow.name}}-made'}
        data: {greeting: hello}
    outputs:
      parameters:
      - name: greeting
        valueFrom: {jsonPath: '{.data.greeting}'}
      - name: source
        valueFrom: {jqFilter: '.metadata.name'}
  - name: copy
    inputs: {parameters: [{name: greeting}, {name: source}]}
    resource:
      action: apply
      manifest: |
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: copied}
        data: {greeting: '{{inputs.parameters.greeting}}', from: '{{inputs.parameters.source}}'}
  - name: tweak
    resource:
      action: patch
      mergeStrategy: merge
      manifest: |
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: copied}
        data: {patched: 'yes'}
  - name: read
    resource:
      action: get
      manifest: |
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: copied}
    outputs:
      parameters:
      - name: seen
        valueFrom: {jsonPath: '{.data.patched}/{.data.greeting}'}
  - name: remove
    resource:
      action: delete
      manifest: |
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: '{{workflow.name}}-made'}
"#,
    )
    .await?;
    // The controller creates the ConfigMap and waits for its success condition.
    let made = loop {
        if let Some(made) = config_map(&ctx, "resources-made").await? {
            break made;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let workflow = ctx.api::<Workflow>().get(&name).await?;
    let owner = &made.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Workflow", "resources")
    );
    assert_eq!(Some(&owner.uid), workflow.metadata.uid.as_ref());
    assert_eq!(owner.controller, Some(true));
    let waiting = wait_for(&ctx, &name, "make waits", |w| {
        has_node(w, "make", Phase::Running)
    })
    .await?;
    assert!(node(&waiting, "make").outputs.is_none());
    assert!(config_map(&ctx, "copied").await?.is_none());

    let ready = json!({"data": {"ready": "yes"}});
    ctx.api::<k8s_openapi::api::core::v1::ConfigMap>()
        .patch(
            "resources-made",
            &PatchParams::default(),
            &Patch::Merge(&ready),
        )
        .await?;
    let done = finished(&ctx, &name).await?;
    assert_eq!(done.status.as_ref().unwrap().phase, Some(Phase::Succeeded));
    let outputs = node(&done, "make").outputs.clone().unwrap();
    let values: Vec<_> = outputs
        .parameters
        .iter()
        .map(|p| (p.name.as_str(), p.value.as_deref()))
        .collect();
    assert_eq!(
        values,
        [
            ("greeting", Some("hello")),
            ("source", Some("resources-made"))
        ]
    );
    assert_eq!(node(&done, "make").type_, "Pod");
    let copied = config_map(&ctx, "copied")
        .await?
        .expect("the copy was applied");
    let data = copied.data.unwrap_or_default();
    assert_eq!(data["greeting"], "hello");
    assert_eq!(data["from"], "resources-made");
    assert_eq!(data["patched"], "yes");
    let read = node(&done, "read").outputs.clone().unwrap();
    assert_eq!(read.parameters[0].value.as_deref(), Some("yes/hello"));
    assert!(
        config_map(&ctx, "resources-made").await?.is_none(),
        "the delete step deleted the first ConfigMap"
    );
    assert_eq!(node(&done, "remove").phase, Phase::Succeeded);

    // A failure condition fails the node with upstream's message.
    let broken = submit(
        &ctx,
        r#"apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: broken}
spec:
  entrypoint: make
  arguments: {parameters: [{name: bad, value: broken}]}
  templates:
  - name: make
    resource:
      action: create
      successCondition: data.state == fine
      failureCondition: data.state in ({{workflow.parameters.bad}}, lost)
      manifest: |
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: broken}
        data: {state: broken}
"#,
    )
    .await?;
    let done = finished(&ctx, &broken).await?;
    let status = done.status.clone().unwrap();
    assert_eq!(status.phase, Some(Phase::Failed));
    assert_eq!(
        node(&done, "broken").message.as_deref(),
        Some("failure condition 'data.state in (broken,lost)' evaluated true")
    );

    // A bad resource template fails the workflow naming the field.
    let invalid = submit(
        &ctx,
        "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: bad-action}
spec:
  entrypoint: make
  templates:
  - name: make
    resource: {action: bake, manifest: 'kind: ConfigMap'}
",
    )
    .await?;
    let done = finished(&ctx, &invalid).await?;
    assert_eq!(
        done.status.unwrap().message.as_deref(),
        Some(
            "invalid spec: templates.make.resource.action must be one of: get, create, apply, delete, replace, patch"
        )
    );
    controller.abort();
    Ok(())
}

/// A real HTTP server on loopback for the http templates: `/greet` answers `hello ferry` to a
/// request carrying the token (401 `no token` otherwise), `POST /items` answers 201 with the
/// body it got, `/broken` answers 500.
async fn start_http_server() -> Result<(tokio::task::JoinHandle<()>, String)> {
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, post};
    let app = axum::Router::new()
        .route(
            "/greet",
            get(|headers: HeaderMap| async move {
                match headers.get("x-token").and_then(|v| v.to_str().ok()) {
                    Some("s3cret") => (StatusCode::OK, "hello ferry"),
                    _ => (StatusCode::UNAUTHORIZED, "no token"),
                }
            }),
        )
        .route(
            "/items",
            post(|body: String| async move { (StatusCode::CREATED, format!("created {body}")) }),
        )
        .route(
            "/broken",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "down") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((server, url))
}

#[tokio::test]
async fn http_templates_send_requests_judge_responses_and_pass_the_body_on() -> Result<()> {
    let ctx = TestContext::new().await?;
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "api"},
        "stringData": {"token": "s3cret"},
    }))?;
    ctx.api::<k8s_openapi::api::core::v1::Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    let (server, url) = start_http_server().await?;
    let controller = start_controller(&ctx).await?;
    let calls = submit(
        &ctx,
        &format!(
            r#"apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {{name: calls}}
spec:
  entrypoint: main
  arguments: {{parameters: [{{name: base, value: '{url}'}}]}}
  templates:
  - name: main
    steps:
    - - name: greet
        template: greet
    - - name: post
        template: post
        arguments: {{parameters: [{{name: what, value: '{{{{steps.greet.outputs.result}}}}'}}]}}
    - - name: keep
        template: keep
        arguments: {{parameters: [{{name: answer, value: '{{{{steps.post.outputs.result}}}}'}}]}}
  - name: greet
    http:
      url: '{{{{workflow.parameters.base}}}}/greet'
      headers:
      - name: x-token
        valueFrom: {{secretKeyRef: {{name: api, key: token}}}}
  - name: post
    inputs: {{parameters: [{{name: what}}]}}
    http:
      method: POST
      url: '{{{{workflow.parameters.base}}}}/items'
      body: '{{{{inputs.parameters.what}}}}'
      timeoutSeconds: 10
      successCondition: 'response.statusCode == 201 && response.body contains "hello"'
  - name: keep
    inputs: {{parameters: [{{name: answer}}]}}
    resource:
      action: create
      manifest: |
        apiVersion: v1
        kind: ConfigMap
        metadata: {{name: answer}}
        data: {{answer: '{{{{inputs.parameters.answer}}}}'}}
"#
        ),
    )
    .await?;
    let failing = |name: &str, path: &str, condition: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {{name: {name}}}
spec:
  entrypoint: call
  templates:
  - name: call
    http: {{url: '{url}{path}'{condition}}}
"
        )
    };
    let broken = submit(&ctx, &failing("broken", "/broken", "")).await?;
    let picky = submit(
        &ctx,
        &failing(
            "picky",
            "/greet",
            ", successCondition: 'response.statusCode == 200'",
        ),
    )
    .await?;

    let done = finished(&ctx, &calls).await?;
    assert_eq!(done.status.as_ref().unwrap().phase, Some(Phase::Succeeded));
    // Two HTTP nodes and a resource node, counted as upstream counts them.
    assert_eq!(
        done.status.as_ref().unwrap().progress.as_deref(),
        Some("3/3")
    );
    let result = |display: &str| {
        node(&done, display)
            .outputs
            .as_ref()
            .and_then(|o| o.result.clone())
    };
    assert_eq!(result("greet").as_deref(), Some("hello ferry"));
    assert_eq!(result("post").as_deref(), Some("created hello ferry"));
    assert_eq!(node(&done, "greet").type_, "HTTP");
    let kept = config_map(&ctx, "answer")
        .await?
        .expect("the body reached the next step");
    assert_eq!(
        kept.data.unwrap_or_default()["answer"],
        "created hello ferry"
    );

    let done = finished(&ctx, &broken).await?;
    assert_eq!(done.status.as_ref().unwrap().phase, Some(Phase::Failed));
    assert_eq!(
        node(&done, "broken").message.as_deref(),
        Some("received non-2xx response code: 500")
    );
    let done = finished(&ctx, &picky).await?;
    assert_eq!(done.status.as_ref().unwrap().phase, Some(Phase::Failed));
    let picky_node = node(&done, "picky");
    assert_eq!(
        picky_node.message.as_deref(),
        Some("successCondition 'response.statusCode == 200' evaluated false")
    );
    let body = picky_node
        .outputs
        .as_ref()
        .and_then(|o| o.result.as_deref());
    assert_eq!(body, Some("no token"));
    controller.abort();
    server.abort();
    Ok(())
}

#[tokio::test]
async fn expression_tags_fan_out_decide_and_fill_in_arguments_inputs_and_commands() -> Result<()> {
    let ctx = TestContext::new().await?;
    let controller = start_controller(&ctx).await?;
    let (kubelet, commands) = start_kubelet(&ctx, |_| ok());
    let name = submit(
        &ctx,
        r#"apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: expressions}
spec:
  entrypoint: main
  arguments: {parameters: [{name: config, value: '{"name": "ferry", "n": "4"}'}]}
  templates:
  - name: main
    steps:
    - - name: fan
        template: echo
        withParam: '{{=toJson(filter([1, 3], {# > 1}))}}'
        arguments: {parameters: [{name: msg, value: '{{=asInt(item) * 10}}'}]}
    - - name: named
        template: named
      - name: odd
        template: echo
        when: '{{=asInt(jsonpath(workflow.parameters.config, ''$.n'')) % 2 == 1}}'
        arguments: {parameters: [{name: msg, value: odd}]}
    - - name: broken
        template: echo
        arguments: {parameters: [{name: msg, value: '{{=asInt(workflow.parameters.config)}}'}]}
  - name: named
    inputs:
      parameters:
      - name: who
        value: "{{=sprig.upper(jsonpath(workflow.parameters.config, '$.name'))}}"
    container:
      image: busybox
      command: [echo, '{{inputs.parameters.who}} {{=asFloat(inputs.parameters.who == "FERRY" ? "2.5" : "0") * 2}}']
  - name: echo
    inputs: {parameters: [{name: msg}]}
    container: {image: busybox, command: [echo, '{{inputs.parameters.msg}}']}
"#,
    )
    .await?;
    let wf = finished(&ctx, &name).await?;
    let status = wf.status.clone().unwrap();
    assert_eq!(status.phase, Some(Phase::Failed), "{status:#?}");

    // withParam's expression gave [3], the argument's asInt(item) * 10.
    assert_eq!(node(&wf, "fan(0:3)").phase, Phase::Succeeded);
    let commands = commands.lock().unwrap().clone();
    let tail = |node: &str| commands_of(&commands, node).split_off(2);
    assert_eq!(tail("expressions[0].fan(0:3)").last().unwrap(), "30");
    // The input's own value took the workflow's parameter through jsonpath and Sprig.
    assert_eq!(tail("expressions[1].named").last().unwrap(), "FERRY 5");
    let named = node(&wf, "named");
    let inputs = &named.inputs.as_ref().unwrap().parameters;
    assert_eq!(inputs[0].value.as_deref(), Some("FERRY"));
    let odd = node(&wf, "odd");
    assert_eq!((odd.type_.as_str(), odd.phase), ("Skipped", Phase::Skipped));
    // An expression that fails is the node's error, naming the argument.
    let broken = node(&wf, "broken");
    assert_eq!(broken.phase, Phase::Error);
    let message = broken.message.as_deref().unwrap_or_default();
    assert!(
        message.starts_with("arguments.parameters.msg: failed to evaluate expression: "),
        "{message}"
    );
    kubelet.abort();
    controller.abort();
    Ok(())
}

#[tokio::test]
async fn pod_spec_patches_of_the_workflow_and_template_reach_the_pod_and_bad_ones_fail_the_node()
-> Result<()> {
    let ctx = TestContext::new().await?;
    let controller = start_controller(&ctx).await?;
    let (kubelet, _) = start_kubelet(&ctx, |_| ok());
    let name = submit(
        &ctx,
        r#"apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: patched}
spec:
  entrypoint: main
  arguments: {parameters: [{name: mem, value: 100Mi}]}
  podSpecPatch: |
    containers:
    - name: main
      resources: {limits: {memory: "{{workflow.parameters.mem}}"}}
  templates:
  - name: main
    steps:
    - - name: sized
        template: sized
        arguments: {parameters: [{name: cpu, value: 200m}]}
    - - name: broken
        template: broken
  - name: sized
    inputs: {parameters: [{name: cpu}]}
    podSpecPatch: '{"containers":[{"name":"main","resources":{"limits":{"cpu":"{{inputs.parameters.cpu}}"}},"args":["patched"]}], "terminationGracePeriodSeconds": 7}'
    container: {image: busybox, command: [echo], args: [hello]}
  - name: broken
    podSpecPatch: '{"activeDeadlineSeconds": "soon"}'
    container: {image: busybox, command: [echo]}
"#,
    )
    .await?;
    let wf = finished(&ctx, &name).await?;
    let status = wf.status.clone().unwrap();
    assert_eq!(status.phase, Some(Phase::Failed), "{status:#?}");

    let pod = ctx.api::<Pod>().get(&pod_name_of(&wf, "sized")).await?;
    let spec = pod.spec.unwrap();
    assert_eq!(spec.termination_grace_period_seconds, Some(7));
    let main = spec.containers.iter().find(|c| c.name == "main").unwrap();
    let limits = main.resources.as_ref().unwrap().limits.clone().unwrap();
    assert_eq!(limits["cpu"].0, "200m", "the template's patch");
    assert_eq!(limits["memory"].0, "100Mi", "the workflow's patch");
    // The patched args are still run by the executor.
    let command = main.command.clone().unwrap();
    assert_eq!(command[0], ferry_exec::BINARY);
    assert_eq!(command[command.len() - 2..], ["echo", "patched"]);
    assert!(main.args.is_none());

    let broken = node(&wf, "broken");
    assert_eq!(broken.phase, Phase::Error);
    let message = broken.message.as_deref().unwrap_or_default();
    assert!(
        message.starts_with(
            r#"Error applying PodSpecPatch: invalid podSpecPatch "{\"activeDeadlineSeconds\": \"soon\"}": "#
        ),
        "{message}"
    );
    kubelet.abort();
    controller.abort();
    Ok(())
}

#[tokio::test]
async fn resource_patches_name_their_object_in_flags_json_patches_included() -> Result<()> {
    let ctx = TestContext::new().await?;
    let controller = start_controller(&ctx).await?;
    let name = submit(
        &ctx,
        r#"apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: flagged}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: make, template: make}
    - - {name: json, template: json}
    - - {name: merge, template: merge}
    - - {name: read, template: read}
    - - {name: from-artifact, template: from-artifact}
    - - {name: drop, template: drop}
    - - {name: unknown-type, template: unknown-type}
  - name: make
    resource:
      action: create
      manifest: |
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: '{{workflow.name}}-cm'}
        data: {a: '1'}
  - name: json
    resource:
      action: patch
      mergeStrategy: json
      flags: [configmap, '{{workflow.name}}-cm']
      manifest: |
        - op: add
          path: /data/b
          value: '2'
  - name: merge
    outputs: {parameters: [{name: keys, valueFrom: {jsonPath: '{.data.b}{.data.c}'}}]}
    resource:
      action: patch
      mergeStrategy: merge
      flags: ['configmaps/{{workflow.name}}-cm', -n, '{{workflow.namespace}}']
      manifest: '{data: {c: "3"}}'
  - name: read
    outputs: {parameters: [{name: a, valueFrom: {jsonPath: '{.data.a}'}}]}
    resource: {action: get, flags: [ConfigMap, '{{workflow.name}}-cm']}
  - name: from-artifact
    inputs:
      artifacts:
      - name: manifest
        raw:
          data: |
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: flagged-made}
            data: {from: artifact}
    resource:
      action: create
      manifestFrom: {artifact: {name: manifest}}
  - name: drop
    resource: {action: delete, flags: [configmaps/flagged-made]}
  - name: unknown-type
    resource:
      action: patch
      mergeStrategy: json
      flags: [nosuchthing, x]
      manifest: '[]'
"#,
    )
    .await?;
    let wf = finished(&ctx, &name).await?;
    let status = wf.status.clone().unwrap();
    assert_eq!(status.phase, Some(Phase::Failed), "{status:#?}");
    let data = config_map(&ctx, "flagged-cm").await?.unwrap().data.unwrap();
    assert_eq!(
        data.into_iter().collect::<Vec<_>>(),
        [("a", "1"), ("b", "2"), ("c", "3")].map(|(k, v)| (k.to_string(), v.to_string()))
    );
    let merge = node(&wf, "merge");
    assert_eq!(merge.phase, Phase::Succeeded);
    let keys = &merge.outputs.as_ref().unwrap().parameters[0];
    assert_eq!(keys.value.as_deref(), Some("23"));
    let read = node(&wf, "read");
    let a = &read.outputs.as_ref().unwrap().parameters[0];
    assert_eq!(a.value.as_deref(), Some("1"), "get through flags");
    // Created from the raw artifact's manifest, then deleted through flags.
    assert_eq!(node(&wf, "from-artifact").phase, Phase::Succeeded);
    assert_eq!(node(&wf, "drop").phase, Phase::Succeeded);
    assert!(config_map(&ctx, "flagged-made").await?.is_none());
    let unknown = node(&wf, "unknown-type");
    assert_eq!(unknown.phase, Phase::Failed);
    assert_eq!(
        unknown.message.as_deref(),
        Some("the server doesn't have a resource type \"nosuchthing\"")
    );
    controller.abort();
    Ok(())
}
