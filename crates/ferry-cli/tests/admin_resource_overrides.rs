//! `ferry admin resource-overrides list-actions | run-action` run as a real process on object
//! files: the built-in actions, argocd-cm's Lua ones from a file and from the cluster.

use std::path::{Path, PathBuf};
use std::process::Output;

use anyhow::Result;
use ferry_testkit::cli::CliHome;
use ferry_testkit::kube::TestContext;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::PostParams;
use tempfile::TempDir;

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 1
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
";

const CRON_JOB: &str = "\
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: shop, uid: u1}
spec:
  schedule: '0 3 * * *'
  jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}}}
";

/// argocd-cm with a Lua `label` action for Deployments (replacing the built-in ones).
const ARGOCD_CM: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: argocd-cm}
data:
  resource.customizations.actions.apps_Deployment: |
    discovery.lua: |
      local actions = {}
      actions["label"] = {["params"] = {{["name"] = "team"}}}
      return actions
    definitions:
    - name: label
      action.lua: |
        obj.metadata.labels = {team = actionParams["team"]}
        return obj
"#;

fn ferry(args: &[&str]) -> Output {
    CliHome::new()
        .unwrap()
        .command(env!("CARGO_BIN_EXE_ferry"))
        .args(["admin", "resource-overrides"])
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = ferry(args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn write(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn built_in_actions_list_and_run_on_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let deployment = write(&dir, "deployment.yaml", DEPLOYMENT);
    let empty_cm = write(&dir, "argocd-cm.yaml", "kind: ConfigMap\ndata: {}\n");
    let cm = ["--argocd-cm-path", arg(&empty_cm)];

    let listed = ok(&[&["list-actions", arg(&deployment)], &cm[..]].concat());
    assert_eq!(
        listed,
        "NAME     DISABLED\nrestart  false\nresume   true\nscale    false\n"
    );

    let scaled = ok(&[
        &[
            "run-action",
            arg(&deployment),
            "scale",
            "--param",
            "replicas=3",
        ],
        &cm[..],
    ]
    .concat());
    assert!(
        scaled.starts_with("Following fields have been changed:\n"),
        "{scaled}"
    );
    assert!(
        scaled.contains("-  replicas: 1\n+  replicas: 3\n"),
        "{scaled}"
    );

    let restarted = ok(&[&["run-action", arg(&deployment), "restart"], &cm[..]].concat());
    assert!(
        restarted.contains("+        kubectl.kubernetes.io/restartedAt:"),
        "{restarted}"
    );

    let cron_job = write(&dir, "cronjob.yaml", CRON_JOB);
    let created = ok(&[&["run-action", arg(&cron_job), "create-job"], &cm[..]].concat());
    assert!(
        created.starts_with("Following resource was created:\nap"),
        "{created}"
    );
    assert!(created.contains("kind: Job\n"), "{created}");

    // Bad input: a clear error, nothing printed as if it had run.
    let out = ferry(
        &[
            &[
                "run-action",
                arg(&deployment),
                "scale",
                "--param",
                "replicas=many",
            ],
            &cm[..],
        ]
        .concat(),
    );
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("invalid number: many"), "{stderr}");
    let out = ferry(&[&["run-action", arg(&deployment), "explode"], &cm[..]].concat());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("action \"explode\" is not available for apps/Deployment"),
        "{stderr}"
    );
    let out = ferry(
        &[
            &[
                "run-action",
                arg(&deployment),
                "scale",
                "--param",
                "replicas",
            ],
            &cm[..],
        ]
        .concat(),
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("expected name=value"), "{stderr}");
}

#[test]
fn argocd_cm_lua_actions_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let deployment = write(&dir, "deployment.yaml", DEPLOYMENT);
    let cm_file = write(&dir, "argocd-cm.yaml", ARGOCD_CM);
    let cm = ["--argocd-cm-path", arg(&cm_file)];

    let listed = ok(&[&["list-actions", arg(&deployment)], &cm[..]].concat());
    assert_eq!(listed, "NAME   DISABLED\nlabel  false\n");
    let labelled = ok(&[
        &[
            "run-action",
            arg(&deployment),
            "label",
            "--param",
            "team=blue",
        ],
        &cm[..],
    ]
    .concat());
    assert!(
        labelled.contains("+  labels:\n+    team: blue\n"),
        "{labelled}"
    );
}

/// Without `--argocd-cm-path`, the cluster's argocd-cm in the control namespace applies.
#[tokio::test]
async fn argocd_cm_lua_actions_from_the_cluster() -> Result<()> {
    let ctx = TestContext::new().await?;
    let config_map: ConfigMap = serde_yaml::from_str(ARGOCD_CM)?;
    ctx.api::<ConfigMap>()
        .create(&PostParams::default(), &config_map)
        .await?;
    let dir = tempfile::tempdir()?;
    let deployment = write(&dir, "deployment.yaml", DEPLOYMENT);
    let kubeconfig = ctx.kubeconfig().to_str().unwrap();
    let listed = ok(&[
        "list-actions",
        arg(&deployment),
        "-N",
        ctx.namespace(),
        "--kubeconfig",
        kubeconfig,
    ]);
    assert_eq!(listed, "NAME   DISABLED\nlabel  false\n");
    Ok(())
}
