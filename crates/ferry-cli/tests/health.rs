//! `ferry health` run as a real process, on the recorded objects and scripts of ferry-health.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Output, Stdio};

use ferry_testkit::cli::CliHome;

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ferry-health/tests/fixtures")
        .join(path)
}

fn ferry(args: &[&str], stdin: Option<&str>) -> Output {
    let home = CliHome::new().unwrap();
    let mut child = home
        .command(env!("CARGO_BIN_EXE_ferry"))
        .arg("health")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let output = ferry(args, None);
    assert!(output.status.success(), "{args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

fn fails(args: &[&str], stdin: Option<&str>) -> String {
    let output = ferry(args, stdin);
    assert!(!output.status.success(), "{args:?} should fail: {output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn prints_status_then_message() {
    let deployment = fixture("builtin/deployment-unavailable.yaml");
    assert_eq!(
        ok(&["--object", deployment.to_str().unwrap()]),
        "Progressing\nWaiting for rollout to finish: 1 of 2 updated replicas are available...\n"
    );
    let healthy = fixture("builtin/deployment-healthy.yaml");
    assert_eq!(ok(&["--object", healthy.to_str().unwrap()]), "Healthy\n");
}

#[test]
fn prints_json() {
    let crashloop = fixture("builtin/pod-crashloop.yaml");
    let out = ok(&["--object", crashloop.to_str().unwrap(), "-o", "json"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["status"], "Degraded");
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .starts_with("back-off 2m40s restarting failed container=app")
    );

    let healthy = fixture("builtin/service-clusterip.yaml");
    assert_eq!(
        ok(&["--object", healthy.to_str().unwrap(), "--output", "json"]),
        "{\"status\":\"Healthy\",\"message\":\"\"}\n"
    );
}

#[test]
fn kinds_without_health_print_nothing_or_null() {
    let cm = fixture("builtin/configmap-no-health.yaml");
    let output = ferry(&["--object", cm.to_str().unwrap()], None);
    assert!(output.status.success(), "{output:?}");
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("ConfigMap has no health check"));
    assert_eq!(
        ok(&["--object", cm.to_str().unwrap(), "-o", "json"]),
        "null\n"
    );
}

#[test]
fn reads_json_from_stdin() {
    let pvc = r#"{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                  "metadata": {"name": "data"}, "status": {"phase": "Lost"}}"#;
    let output = ferry(&["--object", "-"], Some(pvc));
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "Degraded\nThe claim lost its underlying volume\n"
    );
}

#[test]
fn a_script_replaces_the_builtin_check() {
    let script = fixture("lua/certificate.lua");
    let failed = fixture("lua/certificate-failed.yaml");
    assert_eq!(
        ok(&[
            "--object",
            failed.to_str().unwrap(),
            "--script",
            script.to_str().unwrap()
        ]),
        "Degraded\nIssuing certificate as Secret does not exist\n"
    );
    // A script that fails at run time is an assessment too: Unknown, exit 0.
    let no_status = r#"{"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
                        "metadata": {"name": "x"}, "status": {"conditions": "oops"}}"#;
    let output = ferry(
        &["--object", "-", "--script", script.to_str().unwrap()],
        Some(no_status),
    );
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.starts_with("Unknown\nLua health script \"cert-manager.io/Certificate\" failed:"),
        "{stdout}"
    );
}

#[test]
fn argocd_cm_customizations_apply() {
    let config = fixture("argocd-cm.yaml");
    let ready = fixture("lua/certificate-ready.yaml");
    assert_eq!(
        ok(&[
            "--object",
            ready.to_str().unwrap(),
            "--config",
            config.to_str().unwrap()
        ]),
        "Healthy\nready until 2999-12-01T08:15:19Z\n"
    );
    let paused = fixture("builtin/deployment-paused.yaml");
    assert_eq!(
        ok(&[
            "--object",
            paused.to_str().unwrap(),
            "--config",
            config.to_str().unwrap()
        ]),
        "Suspended\npaused by argocd-cm script\n"
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let missing = fails(&["--object", "/nonexistent/obj.yaml"], None);
    assert!(
        missing.contains("cannot read /nonexistent/obj.yaml"),
        "{missing}"
    );

    let two = "apiVersion: v1\nkind: Service\n---\napiVersion: v1\nkind: Service\n";
    let many = fails(&["--object", "-"], Some(two));
    assert!(
        many.contains("-: expected exactly one object, found 2"),
        "{many}"
    );

    let kindless = fails(&["--object", "-"], Some("metadata:\n  name: web\n"));
    assert!(
        kindless.contains("the object has no apiVersion and kind"),
        "{kindless}"
    );

    let not_yaml = fails(&["--object", "-"], Some("kind: [unclosed\n"));
    assert!(not_yaml.contains("is not valid YAML or JSON"), "{not_yaml}");

    let broken = fixture("lua/broken.lua");
    let deployment = fixture("builtin/deployment-healthy.yaml");
    let syntax = fails(
        &[
            "--object",
            deployment.to_str().unwrap(),
            "--script",
            broken.to_str().unwrap(),
        ],
        None,
    );
    assert!(syntax.contains("broken.lua"), "{syntax}");
    assert!(syntax.contains("does not compile"), "{syntax}");

    let usage = ferry(&["--object"], None);
    assert_eq!(usage.status.code(), Some(2), "{usage:?}");
    let usage = ferry(&["--object", "x", "-o", "xml"], None);
    assert_eq!(usage.status.code(), Some(2), "{usage:?}");
}
