//! `ferry admin rbac can` run as a real process: on policy files, and on a cluster's
//! argocd-rbac-cm and AppProjects.

use std::path::{Path, PathBuf};
use std::process::Output;

use anyhow::Result;
use ferry_testkit::cli::CliHome;
use ferry_testkit::kube::TestContext;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::PostParams;
use tempfile::TempDir;

const POLICY: &str = "\
# Developers sync team-a's apps; nobody deletes production ones.
p, role:dev, applications, get, team-a/*, allow
p, role:dev, applications, sync, team-a/*, allow
p, role:dev, applications, delete, team-a/*, allow
p, my-org:contractors, applications, delete, */prod-*, deny
g, my-org:team-a, role:dev
g, alice, role:dev
";

fn ferry(args: &[&str]) -> Output {
    CliHome::new()
        .unwrap()
        .command(env!("CARGO_BIN_EXE_ferry"))
        .args(["admin", "rbac", "can"])
        .args(args)
        .output()
        .unwrap()
}

/// Runs `can` and checks its exit code; stdout and stderr.
fn can(args: &[&str], code: i32) -> (String, String) {
    let out = ferry(args);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
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
fn yes_and_no_from_a_policy_csv() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "policy.csv", POLICY);
    let policy = ["--policy-file", arg(&file)];
    let with = |args: &[&'static str]| [args, &policy[..]].concat();

    let (stdout, stderr) = can(&with(&["alice", "sync", "applications", "team-a/web"]), 0);
    assert_eq!((stdout.as_str(), stderr.as_str()), ("Yes\n", ""));
    let (stdout, _) = can(&with(&["alice", "sync", "app", "team-b/web"]), 1);
    assert_eq!(stdout, "No\n");
    // The built-in policy is always there.
    can(
        &with(&["admin", "delete", "clusters", "https://prod:6443"]),
        0,
    );
    can(&with(&["alice", "get", "clusters", "https://prod:6443"]), 1);

    // -v names the rule that decided, and how the subject reaches it.
    let (stdout, stderr) = can(
        &with(&[
            "bob",
            "delete",
            "applications",
            "team-a/prod-web",
            "--groups",
            "my-org:team-a,my-org:contractors",
            "-v",
        ]),
        1,
    );
    assert_eq!(stdout, "No\n");
    assert_eq!(
        stderr,
        "denied by p, my-org:contractors, applications, delete, */prod-*, deny \
         (policy.csv line 5) via my-org:contractors\n"
    );
    let (_, stderr) = can(
        &with(&[
            "bob",
            "delete",
            "applications",
            "team-a/web",
            "--groups",
            "my-org:team-a",
            "-v",
        ]),
        0,
    );
    assert_eq!(
        stderr,
        "allowed by p, role:dev, applications, delete, team-a/*, allow (policy.csv line 4) \
         via my-org:team-a -> role:dev\n"
    );
    let (_, stderr) = can(
        &with(&["bob", "get", "applications", "team-a/web", "-v"]),
        1,
    );
    assert_eq!(stderr, "no rule allows it\n");
    // ... unless everyone has the read-only role.
    can(
        &with(&[
            "bob",
            "get",
            "applications",
            "team-a/web",
            "--default-role",
            "role:readonly",
        ]),
        0,
    );
}

#[test]
fn an_argocd_rbac_cm_manifest_as_policy_file() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        &dir,
        "argocd-rbac-cm.yaml",
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-rbac-cm
  namespace: argocd
data:
  policy.default: role:readonly
  policy.matchMode: regex
  policy.csv: |
    p, role:ci, applications, sync, ^team-(a|b)/.*$, allow
  policy.ci.csv: |
    g, ci-bot, role:ci
"#,
    );
    let policy = ["--policy-file", arg(&manifest)];
    let with = |args: &[&'static str]| [args, &policy[..]].concat();
    can(&with(&["ci-bot", "sync", "applications", "team-b/web"]), 0);
    can(&with(&["ci-bot", "sync", "applications", "team-c/web"]), 1);
    // policy.default from the manifest, and built-in roles still work in regex mode.
    can(&with(&["someone", "get", "projects", "team-c"]), 0);
    can(&with(&["admin", "sync", "applications", "team-c/web"]), 0);
    // Flags win over the manifest.
    can(
        &with(&[
            "ci-bot",
            "sync",
            "applications",
            "team-b/web",
            "--match-mode",
            "glob",
        ]),
        1,
    );
}

#[test]
fn errors_exit_2_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "bad.csv",
        "p, alice, applications, get, */*, allow\ng, bob\n",
    );
    let (stdout, stderr) = can(
        &[
            "alice",
            "get",
            "applications",
            "a/b",
            "--policy-file",
            arg(&file),
        ],
        2,
    );
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!(
            "error: policy file {}: policy.csv line 2: `g` lines have 3 fields (g, \
             user-or-group, role), this one has 2\n",
            file.display()
        )
    );
    let (_, stderr) = can(
        &[
            "alice",
            "get",
            "widgets",
            "a/b",
            "--policy-file",
            arg(&file),
        ],
        2,
    );
    assert!(
        stderr.starts_with("error: unknown resource \"widgets\": use one of applications,"),
        "{stderr}"
    );
    let missing = dir.path().join("missing.csv");
    let (_, stderr) = can(
        &[
            "alice",
            "get",
            "apps",
            "a/b",
            "--policy-file",
            arg(&missing),
        ],
        2,
    );
    assert!(
        stderr.starts_with(&format!("error: reading policy file {}", missing.display())),
        "{stderr}"
    );
}

/// Without a policy file, the control namespace's argocd-rbac-cm and AppProject roles decide.
#[tokio::test]
async fn the_clusters_config_map_and_project_roles() -> Result<()> {
    let ctx = TestContext::new().await?;
    let config_map: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "argocd-rbac-cm"},
        "data": {
            "policy.csv": "p, role:dev, applications, get, team-a/*, allow\ng, alice, role:dev\n",
        },
    }))?;
    ctx.api::<ConfigMap>()
        .create(&PostParams::default(), &config_map)
        .await?;
    let dir = tempfile::tempdir()?;
    let project = write(
        &dir,
        "team-a.yaml",
        r#"apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: team-a
spec:
  sourceRepos: ['*']
  destinations: [{server: '*', namespace: '*'}]
  roles:
    - name: deployer
      policies:
        - p, proj:team-a:deployer, applications, sync, team-a/*, allow
        - p, proj:team-a:deployer, applications, sync, team-b/*, allow
      groups: [my-org:team-a]
"#,
    );
    let cluster = |args: &[&str]| {
        CliHome::new()
            .unwrap()
            .command(env!("CARGO_BIN_EXE_ferry"))
            .args(args)
            .args(["-N", ctx.namespace()])
            .arg("--kubeconfig")
            .arg(ctx.kubeconfig())
            .output()
            .unwrap()
    };
    let out = cluster(&["proj", "create", "-f", arg(&project)]);
    assert!(out.status.success(), "{out:?}");

    let can_in_cluster = |args: &[&str]| {
        let out = cluster(&[&["admin", "rbac", "can"], args].concat());
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
        (out.status.code(), text(out.stdout), text(out.stderr))
    };
    let (code, stdout, stderr) = can_in_cluster(&["alice", "get", "applications", "team-a/web"]);
    assert_eq!((code, stdout.as_str()), (Some(0), "Yes\n"), "{stderr}");
    let rejected = "warning: AppProject team-a role \"deployer\": ignoring \"p, \
                    proj:team-a:deployer, applications, sync, team-b/*, allow\": the object must \
                    be team-a/*, team-a/<name> or team-a/<namespace>/<name>: a project role \
                    cannot reach other projects\n";
    assert_eq!(stderr, rejected);
    let (code, stdout, _) = can_in_cluster(&["alice", "sync", "applications", "team-a/web"]);
    assert_eq!((code, stdout.as_str()), (Some(1), "No\n"));
    let team_member = ["--groups", "my-org:team-a", "-v"];
    let (code, stdout, stderr) = can_in_cluster(
        &[
            &["carol", "sync", "applications", "team-a/web"],
            &team_member[..],
        ]
        .concat(),
    );
    assert_eq!((code, stdout.as_str()), (Some(0), "Yes\n"), "{stderr}");
    assert!(
        stderr.ends_with(
            "allowed by p, proj:team-a:deployer, applications, sync, team-a/*, allow \
             (AppProject team-a role deployer policies[0]) via my-org:team-a -> \
             proj:team-a:deployer\n"
        ),
        "{stderr}"
    );
    let (code, _, _) = can_in_cluster(
        &[
            &["carol", "sync", "applications", "team-b/web"],
            &team_member[..],
        ]
        .concat(),
    );
    assert_eq!(code, Some(1));
    Ok(())
}
