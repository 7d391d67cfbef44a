//! `ferry wf` and `ferry cron` as real processes against the shared sandbox, with the workflow
//! controller running in the test (for the test's namespace only). kwok schedules the pods
//! and makes them Running; the test then ends each the way the kubelet ends a pod whose main
//! container exited (phase, exit code, ferry-exec's report as the termination message), as
//! decided by its node's display name. `lint` runs without any cluster.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use ferry_testkit::cli::CliHome;
use ferry_testkit::kube::TestContext;
use ferry_testkit::kwok;
use ferry_testkit::process::{failed, succeeded, texts};
use ferry_types::Workflow;
use ferry_types::workflow::{Phase, labels};
use ferry_workflow::controller::{Settings, run};
use ferry_workflow::pod::PodSettings;
use kube::ResourceExt;

/// `ferry` with the test's kubeconfig and namespace, in a home of its own.
struct Ferry {
    home: CliHome,
    kubeconfig: std::path::PathBuf,
    namespace: String,
    dir: tempfile::TempDir,
}

impl Ferry {
    fn new(ctx: &TestContext) -> Self {
        Self {
            home: CliHome::new().unwrap(),
            kubeconfig: ctx.kubeconfig().to_path_buf(),
            namespace: ctx.namespace().to_string(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes `text` to a file of the test's directory; its path.
    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    async fn run(&self, args: &[&str]) -> std::process::Output {
        let mut command =
            tokio::process::Command::from(self.home.command(env!("CARGO_BIN_EXE_ferry")));
        command
            .args(args)
            .args(["-n", &self.namespace])
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .kill_on_drop(true);
        command.output().await.unwrap()
    }

    async fn ok(&self, args: &[&str]) -> String {
        succeeded(&format!("ferry {args:?}"), &self.run(args).await)
    }

    async fn fails(&self, args: &[&str]) -> String {
        failed(&format!("ferry {args:?}"), &self.run(args).await)
    }
}

/// The controller for this test's namespace, until the test ends.
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

/// The UIDs of every pod seen, by node name.
type Seen = Arc<Mutex<BTreeMap<String, Vec<String>>>>;

/// Ends every Running pod of the namespace with the exit code `exit` gives for its node's
/// display name (`None`: left running).
fn start_kubelet(
    ctx: &TestContext,
    exit: impl Fn(&str) -> Option<i32> + Send + 'static,
) -> (tokio::task::JoinHandle<()>, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let task = kwok::end_pods(ctx.api(), labels::WORKFLOW, move |pod| {
        let node = pod
            .annotations()
            .get(labels::NODE_NAME)
            .cloned()
            .unwrap_or_default();
        let uid = pod.uid().unwrap_or_default();
        {
            let mut record = record.lock().unwrap();
            let uids = record.entry(node.clone()).or_default();
            if !uids.contains(&uid) {
                uids.push(uid);
            }
        }
        let display = node.rsplit('.').next().unwrap_or_default();
        exit(display).map(|exit_code| kwok::Ending {
            exit_code,
            message: "{}".into(),
        })
    });
    (task, seen)
}

/// Polls `name` until `check` holds.
async fn until(
    ctx: &TestContext,
    name: &str,
    what: &str,
    check: impl Fn(&Workflow) -> bool,
) -> Result<Workflow> {
    let api = ctx.api::<Workflow>();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let workflow = api.get(name).await?;
        if check(&workflow) {
            return Ok(workflow);
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "workflow {name}: {what} did not happen: {:#?}",
                workflow.status
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn phase(workflow: &Workflow) -> Option<Phase> {
    workflow.status.as_ref().and_then(|s| s.phase)
}

const ECHO: &str = "
  - name: echo
    inputs: {parameters: [{name: msg}]}
    container: {image: busybox, command: [echo, '{{inputs.parameters.msg}}']}";

#[tokio::test]
async fn lint_checks_files_offline_with_upstreams_messages() -> Result<()> {
    let home = CliHome::new()?;
    let dir = tempfile::tempdir()?;
    let good = dir.path().join("good");
    std::fs::create_dir(&good)?;
    std::fs::write(
        good.join("template.yaml"),
        format!(
            "apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {{name: lib}}
spec:
  templates:{ECHO}
"
        ),
    )?;
    std::fs::write(
        good.join("workflow.yaml"),
        "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: hello-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps: [[{name: hi, templateRef: {name: lib, template: echo}, arguments: {parameters: [{name: msg, value: hi}]}}]]
",
    )?;
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: cyclic}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: a, template: main, depends: b}
      - {name: b, template: main, depends: a}
---
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: unknown}
spec:
  entrypoint: main
  templates: [{name: main, steps: [[{name: s, template: nowhere}]]}]
",
    )?;
    let ferry = |args: &[&std::ffi::OsStr]| {
        home.command(env!("CARGO_BIN_EXE_ferry"))
            .args(["wf", "lint"])
            .args(args)
            .output()
            .unwrap()
    };
    // No cluster is configured in the isolated home: lint needs none.
    let out = ferry(&[good.as_os_str(), "--offline".as_ref()]);
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    assert_eq!(texts(&out).0, "✔ no linting errors found!\n");

    let out = ferry(&[good.as_os_str(), bad.as_os_str()]);
    assert_eq!(out.status.code(), Some(1), "{:?}", texts(&out));
    let stdout = texts(&out).0;
    let expected = format!(
        "{}:\n   ✖ in \"cyclic\" (Workflow): templates.main: ",
        bad.display()
    );
    assert!(stdout.starts_with(&expected), "{stdout}");
    assert!(
        stdout.contains(
            "   ✖ in \"unknown\" (Workflow): templates.main.s: template \"nowhere\" not found\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("\n✖ 2 linting errors found!\n"),
        "{stdout}"
    );

    // The template alone names what it lacks.
    let out = ferry(&[good.join("workflow.yaml").as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        texts(&out).0.contains(
            "templates.main.hi.templateRef: template \"echo\" not found in WorkflowTemplate \"lib\""
        ),
        "{:?}",
        texts(&out)
    );
    Ok(())
}

#[tokio::test]
async fn submit_with_parameters_then_get_list_and_wait() -> Result<()> {
    let ctx = TestContext::new().await?;
    let controller = start_controller(&ctx).await?;
    let (kubelet, _) = start_kubelet(&ctx, |_| Some(0));
    let ferry = Ferry::new(&ctx);
    let file = ferry.file(
        "hello.yaml",
        &format!(
            "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {{generateName: hello-}}
spec:
  entrypoint: main
  arguments: {{parameters: [{{name: who, value: nobody}}]}}
  templates:
  - name: main
    steps:
    - - {{name: greet, template: echo, arguments: {{parameters: [{{name: msg, value: 'hello {{{{workflow.parameters.who}}}}'}}]}}}}
    - - {{name: again, template: echo, arguments: {{parameters: [{{name: msg, value: bye}}]}}}}{ECHO}
"
        ),
    );
    let name = ferry
        .ok(&["wf", "submit", &file, "-p", "who=ferry", "-o", "name"])
        .await;
    let name = name.trim();
    assert!(name.starts_with("hello-"), "{name}");

    let waited = ferry.ok(&["wf", "wait", name]).await;
    assert!(
        waited.starts_with(&format!("{name} Succeeded at ")),
        "{waited}"
    );

    let watched = ferry.ok(&["wf", "watch", name]).await;
    assert!(
        watched.contains("Status:              Succeeded"),
        "{watched}"
    );
    let shown = ferry.ok(&["wf", "get", name]).await;
    assert!(shown.contains("Status:              Succeeded"), "{shown}");
    assert!(shown.contains("Progress:            2/2"), "{shown}");
    assert!(shown.contains("  who:               ferry"), "{shown}");
    assert!(shown.contains(&format!(" ✔ {name}")), "{shown}");
    assert!(shown.contains(" ├─✔ greet"), "{shown}");
    assert!(shown.contains(" └─✔ again"), "{shown}");
    let workflow: Workflow =
        serde_json::from_str(&ferry.ok(&["wf", "get", name, "-o", "json"]).await)?;
    let greet = workflow
        .status
        .unwrap()
        .nodes
        .into_values()
        .find(|n| n.display_name == "greet")
        .unwrap();
    assert_eq!(
        greet.inputs.unwrap().parameters[0].value.as_deref(),
        Some("hello ferry")
    );

    let listed = ferry.ok(&["wf", "list"]).await;
    assert!(listed.starts_with("NAME"), "{listed}");
    assert!(
        listed.contains(name) && listed.contains("Succeeded"),
        "{listed}"
    );
    assert_eq!(
        ferry
            .ok(&["wf", "list", "--completed", "-o", "name"])
            .await
            .trim(),
        name
    );
    assert_eq!(
        ferry.ok(&["wf", "list", "--running", "-o", "name"]).await,
        ""
    );
    assert_eq!(
        ferry.ok(&["wf", "list", "--status", "Failed"]).await,
        "No workflows found\n"
    );

    // Invalid workflows are refused before anything is created, naming the field.
    let unknown = ferry.file(
        "unknown.yaml",
        "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: unknown}
spec:
  entrypoint: main
  templates: [{name: main, steps: [[{name: s, template: nowhere}]]}]
",
    );
    let err = ferry.fails(&["wf", "submit", &unknown]).await;
    assert!(
        err.contains("failed to submit workflow: templates.main.s: template \"nowhere\" not found"),
        "{err}"
    );
    let cycle = ferry.file(
        "cycle.yaml",
        "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: cycle}
spec:
  entrypoint: main
  templates:
  - name: main
    dag: {tasks: [{name: a, template: main, depends: b}, {name: b, template: main, depends: a}]}
",
    );
    let err = ferry.fails(&["wf", "submit", &cycle]).await;
    assert!(
        err.contains("failed to submit workflow: templates.main: "),
        "{err}"
    );
    let err = ferry
        .fails(&["wf", "submit", &file, "--entrypoint", "echo"])
        .await;
    assert!(
        err.contains("failed to submit workflow: spec.arguments.parameters.msg: required by the entrypoint \"echo\""),
        "{err}"
    );
    assert_eq!(
        ferry.ok(&["wf", "list", "-o", "name"]).await.trim(),
        name,
        "nothing else was created"
    );

    assert_eq!(
        ferry.ok(&["wf", "delete", "--older", "1h"]).await,
        "No resources found\n",
        "it finished seconds ago"
    );
    assert_eq!(
        ferry.ok(&["wf", "delete", "--completed"]).await,
        format!("Workflow '{name}' deleted\n")
    );
    assert_eq!(ferry.ok(&["wf", "list"]).await, "No workflows found\n");
    kubelet.abort();
    controller.abort();
    Ok(())
}

#[tokio::test]
async fn suspend_resume_stop_and_terminate() -> Result<()> {
    let ctx = TestContext::new().await?;
    let controller = start_controller(&ctx).await?;
    // `hold` runs until stopped; everything else succeeds.
    let (kubelet, _) = start_kubelet(&ctx, |node| (node != "hold").then_some(0));
    let ferry = Ferry::new(&ctx);
    let approval = ferry.file(
        "approval.yaml",
        &format!(
            "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {{name: approval}}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {{name: approve, template: wait}}
    - - {{name: after, template: echo, arguments: {{parameters: [{{name: msg, value: go}}]}}}}
  - name: wait
    suspend: {{}}{ECHO}
"
        ),
    );
    ferry.ok(&["wf", "submit", &approval]).await;
    until(&ctx, "approval", "waiting on approve", |w| {
        ferry_workflow::control::is_suspended(w)
    })
    .await?;
    let shown = ferry.ok(&["wf", "get", "approval"]).await;
    assert!(
        shown.contains("Status:              Running (Suspended)"),
        "{shown}"
    );
    assert!(shown.contains(" └─ǁ approve"), "{shown}");
    assert_eq!(
        ferry
            .ok(&[
                "wf",
                "resume",
                "approval",
                "--node-field-selector",
                "displayName=approve"
            ])
            .await,
        "workflow approval resumed\n"
    );
    assert!(
        ferry
            .ok(&["wf", "wait", "approval"])
            .await
            .starts_with("approval Succeeded")
    );

    let holding = |name: &str| {
        ferry.file(
            &format!("{name}.yaml"),
            &format!(
                "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {{name: {name}}}
spec:
  entrypoint: main
  onExit: bye
  templates:
  - name: main
    steps: [[{{name: hold, template: echo, arguments: {{parameters: [{{name: msg, value: x}}]}}}}], [{{name: next, template: bye}}]]
  - name: bye
    container: {{image: busybox, command: [true]}}{ECHO}
"
            ),
        )
    };
    for name in ["stopped", "terminated"] {
        ferry.ok(&["wf", "submit", &holding(name)]).await;
    }
    for name in ["stopped", "terminated"] {
        until(&ctx, name, "its pod running", |w| {
            w.status.as_ref().is_some_and(|s| {
                s.nodes
                    .values()
                    .any(|n| n.display_name == "hold" && n.phase == Phase::Running)
            })
        })
        .await?;
    }
    assert_eq!(
        ferry.ok(&["wf", "suspend", "stopped"]).await,
        "workflow stopped suspended\n"
    );
    let suspended = until(&ctx, "stopped", "suspended", |w| {
        w.spec.suspend == Some(true)
    })
    .await?;
    assert_eq!(phase(&suspended), Some(Phase::Running));
    ferry.ok(&["wf", "resume", "stopped"]).await;
    until(&ctx, "stopped", "resumed", |w| w.spec.suspend.is_none()).await?;

    assert_eq!(
        ferry.ok(&["wf", "stop", "stopped"]).await,
        "workflow stopped stopped\n"
    );
    assert_eq!(
        ferry.ok(&["wf", "terminate", "terminated"]).await,
        "workflow terminated terminated\n"
    );
    let out = ferry.run(&["wf", "wait", "stopped", "terminated"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "failed workflows: {:?}",
        texts(&out)
    );
    let stopped = ctx.api::<Workflow>().get("stopped").await?;
    let status = stopped.status.clone().unwrap();
    assert_eq!(
        status.message.as_deref(),
        Some("Stopped with strategy 'Stop'")
    );
    assert!(
        status.nodes.values().any(|n| n.name == "stopped.onExit"),
        "Stop runs the exit handler"
    );
    let terminated = ctx.api::<Workflow>().get("terminated").await?;
    let status = terminated.status.clone().unwrap();
    assert_eq!(
        status.message.as_deref(),
        Some("Stopped with strategy 'Terminate'")
    );
    assert!(!status.nodes.values().any(|n| n.name == "terminated.onExit"));
    let err = ferry.fails(&["wf", "stop", "stopped"]).await;
    assert!(
        err.contains("cannot shutdown a completed workflow"),
        "{err}"
    );
    kubelet.abort();
    controller.abort();
    Ok(())
}

#[tokio::test]
async fn retry_runs_only_the_failed_step_again_and_resubmit_starts_anew() -> Result<()> {
    let ctx = TestContext::new().await?;
    let controller = start_controller(&ctx).await?;
    let fixed = Arc::new(AtomicBool::new(false));
    let fix = fixed.clone();
    let (kubelet, seen) = start_kubelet(&ctx, move |node| {
        Some(if node == "flaky" && !fix.load(Ordering::SeqCst) {
            1
        } else {
            0
        })
    });
    let ferry = Ferry::new(&ctx);
    let file = ferry.file(
        "pipeline.yaml",
        &format!(
            "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {{name: pipeline}}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {{name: build, template: echo, arguments: {{parameters: [{{name: msg, value: build}}]}}}}
    - - {{name: flaky, template: echo, arguments: {{parameters: [{{name: msg, value: test}}]}}}}{ECHO}
"
        ),
    );
    ferry.ok(&["wf", "submit", &file]).await;
    let out = ferry.run(&["wf", "wait", "pipeline"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        texts(&out).0.starts_with("pipeline Failed at "),
        "{:?}",
        texts(&out)
    );
    let err = ferry.fails(&["wf", "retry", "nothing-here"]).await;
    assert!(err.contains("nothing-here"), "{err}");

    fixed.store(true, Ordering::SeqCst);
    let retried = ferry.ok(&["wf", "retry", "pipeline"]).await;
    assert!(
        retried.contains("Status:              Running"),
        "{retried}"
    );
    assert!(
        ferry
            .ok(&["wf", "wait", "pipeline"])
            .await
            .starts_with("pipeline Succeeded at ")
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen["pipeline[0].build"].len(),
        1,
        "build ran once: {seen:?}"
    );
    assert_eq!(
        seen["pipeline[1].flaky"].len(),
        2,
        "flaky ran again: {seen:?}"
    );
    let err = ferry.fails(&["wf", "retry", "pipeline"]).await;
    assert!(err.contains("To retry a succeeded workflow"), "{err}");

    let name = ferry
        .ok(&["wf", "resubmit", "pipeline", "-o", "name"])
        .await;
    let name = name.trim();
    assert!(name.starts_with("pipeline-"), "{name}");
    assert!(
        ferry
            .ok(&["wf", "wait", name])
            .await
            .starts_with(&format!("{name} Succeeded"))
    );
    let resubmitted = ctx.api::<Workflow>().get(name).await?;
    assert_eq!(
        resubmitted.labels()["workflows.argoproj.io/resubmitted-from-workflow"],
        "pipeline"
    );
    kubelet.abort();
    controller.abort();
    Ok(())
}

#[tokio::test]
async fn templates_and_cron_workflows_from_files() -> Result<()> {
    let ctx = TestContext::new().await?;
    let controller = start_controller(&ctx).await?;
    let (kubelet, _) = start_kubelet(&ctx, |_| Some(0));
    let ferry = Ferry::new(&ctx);
    let template = ferry.file(
        "template.yaml",
        &format!(
            "apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {{name: greeter}}
spec:
  entrypoint: echo
  templates:{ECHO}
"
        ),
    );
    let shown = ferry.ok(&["wf", "template", "create", &template]).await;
    assert!(shown.starts_with("Name:"), "{shown}");
    assert!(shown.contains("greeter"), "{shown}");
    assert_eq!(
        ferry.ok(&["wf", "template", "list", "-o", "name"]).await,
        "greeter\n"
    );
    let err = ferry
        .fails(&["wf", "submit", "--from", "workflowtemplate/greeter"])
        .await;
    assert!(
        err.contains("spec.arguments.parameters.msg: required by the entrypoint \"echo\""),
        "{err}"
    );
    let parameters = ferry.file("parameters.yaml", "msg: hi\n");
    let name = ferry
        .ok(&[
            "wf",
            "submit",
            "--from",
            "workflowtemplate/greeter",
            "--parameter-file",
            &parameters,
            "-o",
            "name",
        ])
        .await;
    let name = name.trim();
    assert!(name.starts_with("greeter-"), "{name}");
    assert!(
        ferry
            .ok(&["wf", "wait", name])
            .await
            .starts_with(&format!("{name} Succeeded"))
    );
    let from = ctx.api::<Workflow>().get(name).await?;
    assert_eq!(
        from.labels()["workflows.argoproj.io/workflow-template"],
        "greeter"
    );
    let arguments = from.spec.arguments.clone().unwrap().parameters;
    assert_eq!(
        (arguments[0].name.as_str(), arguments[0].value.as_deref()),
        ("msg", Some("hi"))
    );
    // A template may reference one that is only in the cluster; an unknown one is refused.
    let caller = ferry.file(
        "caller.yaml",
        "apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: caller}
spec:
  entrypoint: main
  templates:
  - name: main
    steps: [[{name: hi, templateRef: {name: greeter, template: echo}, arguments: {parameters: [{name: msg, value: hi}]}}]]
",
    );
    ferry.ok(&["wf", "template", "create", &caller]).await;
    let lost = ferry.file(
        "lost.yaml",
        &std::fs::read_to_string(&caller)?
            .replace("caller", "lost")
            .replace("name: greeter", "name: nowhere"),
    );
    let err = ferry.fails(&["wf", "template", "create", &lost]).await;
    assert!(
        err.contains("failed to create workflow template: in \"lost\" (WorkflowTemplate): templates.main.hi.templateRef: template \"echo\" not found in WorkflowTemplate \"nowhere\""),
        "{err}"
    );
    assert_eq!(
        ferry.ok(&["wf", "template", "list", "-o", "name"]).await,
        "caller\ngreeter\n"
    );
    assert_eq!(
        ferry.ok(&["wf", "template", "delete", "--all"]).await,
        "WorkflowTemplate 'caller' deleted\nWorkflowTemplate 'greeter' deleted\n"
    );
    assert_eq!(
        ferry.ok(&["wf", "template", "list", "-o", "name"]).await,
        ""
    );

    let cron = ferry.file(
        "cron.yaml",
        &format!(
            "apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata: {{name: nightly}}
spec:
  schedule: '0 3 * * *'
  workflowSpec:
    entrypoint: main
    templates:
    - name: main
      steps: [[{{name: s, template: echo, arguments: {{parameters: [{{name: msg, value: night}}]}}}}]]{}
",
            ECHO.replace("\n  ", "\n    ")
        ),
    );
    let bad = ferry.file(
        "bad-cron.yaml",
        "apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata: {name: broken}
spec:
  schedule: '0 3 * * *'
  workflowSpec: {entrypoint: main, templates: [{name: main, steps: [[{name: s, template: nowhere}]]}]}
",
    );
    let err = ferry.fails(&["cron", "create", &bad]).await;
    assert!(
        err.contains(
            "in \"broken\" (CronWorkflow): templates.main.s: template \"nowhere\" not found"
        ),
        "{err}"
    );
    ferry.ok(&["cron", "create", &cron]).await;
    let listed = ferry.ok(&["cron", "list"]).await;
    assert!(
        listed.contains("nightly") && listed.contains("0 3 * * *"),
        "{listed}"
    );
    assert_eq!(
        ferry.ok(&["cron", "suspend", "nightly"]).await,
        "CronWorkflow 'nightly' suspended\n"
    );
    let shown = ferry.ok(&["cron", "get", "nightly"]).await;
    assert!(
        shown.contains("Suspended:") && shown.contains("true"),
        "{shown}"
    );
    ferry.ok(&["cron", "resume", "nightly"]).await;
    let name = ferry
        .ok(&["wf", "submit", "--from", "cronwf/nightly", "-o", "name"])
        .await;
    let name = name.trim();
    assert!(name.starts_with("nightly-"), "{name}");
    assert!(
        ferry
            .ok(&["wf", "wait", name])
            .await
            .starts_with(&format!("{name} Succeeded"))
    );
    assert_eq!(
        ferry.ok(&["cron", "delete", "nightly"]).await,
        "CronWorkflow 'nightly' deleted\n"
    );
    assert_eq!(ferry.ok(&["cron", "list", "-o", "name"]).await, "");
    kubelet.abort();
    controller.abort();
    Ok(())
}
