//! `ferry render` run as a real process against Git repositories on loopback and the real
//! toolchain (helm, kustomize).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ferry_testkit::cli::CliHome;
use ferry_testkit::git::GitRepo;
use serde_json::{Value, json};

fn toolchain_bin() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/toolchain");
    let out = Command::new(script).arg("--print").output().unwrap();
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Runs `ferry render ARGS` with a private cache directory and the toolchain's binaries.
fn ferry(args: &[&str], cache: &Path) -> Output {
    let bin = toolchain_bin();
    for tool in ["helm", "kustomize"] {
        assert!(
            bin.join(tool).is_file(),
            "{tool} is missing: build it with scripts/toolchain"
        );
    }
    CliHome::new()
        .unwrap()
        .command(env!("CARGO_BIN_EXE_ferry"))
        .arg("render")
        .args(args)
        .env("FERRY_CACHE_DIR", cache)
        .env("FERRY_HELM", bin.join("helm"))
        .env("FERRY_KUSTOMIZE", bin.join("kustomize"))
        .output()
        .unwrap()
}

fn ok(args: &[&str], cache: &Path) -> (String, String) {
    let out = ferry(args, cache);
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert!(
        out.status.success(),
        "ferry render {args:?} failed: {stderr}"
    );
    (stdout, stderr)
}

fn yaml_stream(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn chart_repo() -> GitRepo {
    let repo = GitRepo::new().unwrap();
    repo.write(
        "chart/Chart.yaml",
        "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    )
    .unwrap();
    repo.write("chart/values.yaml", "replicas: 1\ntag: latest\n")
        .unwrap();
    repo.write("chart/values-prod.yaml", "replicas: 3\n")
        .unwrap();
    repo.write(
        "chart/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n  namespace: {{ .Release.Namespace }}\ndata:\n  replicas: {{ .Values.replicas | quote }}\n  tag: {{ .Values.tag | quote }}\n  tagType: {{ kindOf .Values.tag }}\n",
    )
    .unwrap();
    repo.write(
        "plain/a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
    )
    .unwrap();
    repo.write("plain/b.jsonnet", "function(who) { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'hello-' + who }, data: { n: std.toString(std.extVar('n') + 1) } }").unwrap();
    repo.write(
        "kust/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
    )
    .unwrap();
    repo.write("kust/kustomization.yaml", "resources: [cm.yaml]\n")
        .unwrap();
    repo.commit("content").unwrap();
    repo
}

#[test]
fn repo_path_with_helm_flags_renders_yaml_and_reports_the_commit() {
    let repo = chart_repo();
    let cache = tempfile::tempdir().unwrap();
    let (stdout, stderr) = ok(
        &[
            "--repo",
            repo.work_path().to_str().unwrap(),
            "--path",
            "chart",
            "--values",
            "values-prod.yaml",
            "--helm-set",
            "tag=2",
            "--release-name",
            "shop",
            "--namespace",
            "prod",
        ],
        cache.path(),
    );
    let objs = yaml_stream(&stdout);
    assert_eq!(objs.len(), 1);
    assert_eq!(
        objs[0]["metadata"],
        json!({"name": "shop", "namespace": "prod"})
    );
    assert_eq!(
        objs[0]["data"],
        json!({"replicas": "3", "tag": "2", "tagType": "int64"})
    );
    let sha = repo.head().unwrap();
    assert!(
        stderr.contains(&sha),
        "stderr should name the commit {sha}: {stderr}"
    );

    // --helm-set-string keeps it a string; -o json prints an array.
    let (stdout, _) = ok(
        &[
            "--repo",
            &repo.file_url(),
            "--path",
            "chart",
            "--helm-set-string",
            "tag=2",
            "-o",
            "json",
        ],
        cache.path(),
    );
    let objs: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(objs[0]["data"]["tag"], "2");
    assert_eq!(objs[0]["data"]["tagType"], "string");
}

#[test]
fn repo_path_with_jsonnet_and_kustomize_flags() {
    let repo = chart_repo();
    let cache = tempfile::tempdir().unwrap();
    let (stdout, _) = ok(
        &[
            "--repo",
            &repo.file_url(),
            "--path",
            "plain",
            "--jsonnet-tla",
            "who=world",
            "--jsonnet-ext-var-code",
            "n=41",
            "-o",
            "json",
        ],
        cache.path(),
    );
    let objs: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        objs[1],
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hello-world"}, "data": {"n": "42"}})
    );

    let (stdout, _) = ok(
        &[
            "--repo",
            &repo.file_url(),
            "--path",
            "kust",
            "--name-prefix",
            "x-",
            "--kustomize-image",
            "nginx:1",
        ],
        cache.path(),
    );
    assert_eq!(yaml_stream(&stdout)[0]["metadata"]["name"], "x-a");
}

#[test]
fn app_manifest_with_multiple_sources() {
    let (charts, values) = (chart_repo(), GitRepo::new().unwrap());
    values.write("prod/values.yaml", "replicas: 7\n").unwrap();
    let values_sha = values.commit("values").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.yaml");
    std::fs::write(
        &app,
        format!(
            r#"apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: guestbook
  namespace: argocd
spec:
  project: default
  destination:
    server: https://kubernetes.default.svc
    namespace: guests
  sources:
    - repoURL: {charts}
      path: chart
      targetRevision: main
      helm:
        valueFiles: [$values/prod/values.yaml]
    - repoURL: {values}
      targetRevision: main
      ref: values
    - repoURL: {charts}
      path: plain
      directory:
        include: "*.yaml"
  syncPolicy:
    automated: {{prune: true}}
"#,
            charts = charts.file_url(),
            values = values.file_url()
        ),
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let (stdout, stderr) = ok(&["--app", app.to_str().unwrap()], cache.path());
    let objs = yaml_stream(&stdout);
    assert_eq!(objs.len(), 2);
    assert_eq!(
        objs[0]["metadata"],
        json!({"name": "guestbook", "namespace": "guests"})
    );
    assert_eq!(objs[0]["data"]["replicas"], "7");
    assert_eq!(objs[1]["metadata"]["name"], "a");
    assert!(
        stderr.contains(&charts.head().unwrap()) && stderr.contains(&values_sha),
        "{stderr}"
    );
    assert!(stderr.contains("ref only"), "{stderr}");
}

#[test]
fn bad_input_fails_with_a_clear_message() {
    let cache = tempfile::tempdir().unwrap();
    let not_git = tempfile::tempdir().unwrap();
    let out = ferry(&["--repo", not_git.path().to_str().unwrap()], cache.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not a Git repository"), "{stderr}");

    let repo = chart_repo();
    let out = ferry(
        &[
            "--repo",
            &repo.file_url(),
            "--path",
            "chart",
            "--values",
            "../../etc/passwd",
        ],
        cache.path(),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("value file resolves outside the repository"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no partial output on failure");

    let app = not_git.path().join("app.yaml");
    std::fs::write(&app, "apiVersion: v1\nkind: ConfigMap\n").unwrap();
    let out = ferry(&["--app", app.to_str().unwrap()], cache.path());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("expected an argoproj.io/v1alpha1 Application")
    );
}

#[test]
fn local_remotes_need_allow_local_remotes() {
    // A kustomization that builds a base from another repository on this disk.
    let shared = GitRepo::new().unwrap();
    shared
        .write(
            "base/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\n",
        )
        .unwrap();
    shared
        .write("base/kustomization.yaml", "resources: [cm.yaml]\n")
        .unwrap();
    shared.commit("base").unwrap();
    let repo = GitRepo::new().unwrap();
    let remote = format!("{}//base?ref=main", shared.file_url());
    repo.write(
        "overlay/kustomization.yaml",
        format!("resources: ['{remote}']\nnamePrefix: local-\n"),
    )
    .unwrap();
    repo.commit("overlay").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let work = repo.work_path();
    let args = ["--repo", work.to_str().unwrap(), "--path", "overlay"];

    let out = ferry(&args, cache.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{remote}: overlay/kustomization.yaml: resources entry is a repository on this \
             machine's disk (file://)"
        )),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    let (stdout, _) = ok(
        &[&args[..], &["--allow-local-remotes"]].concat(),
        cache.path(),
    );
    let objs = yaml_stream(&stdout);
    assert_eq!(objs.len(), 1);
    assert_eq!(objs[0]["metadata"]["name"], "local-shared");
}

#[test]
fn renders_over_a_limit_fail_naming_the_flag_that_raises_it() {
    let repo = GitRepo::new().unwrap();
    repo.write(
        "loop/loop.jsonnet",
        "{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'n' },\n  \
         data: { n: std.toString(std.foldl(function(a, x) a + std.foldl(function(b, y) b + y, std.range(1, 2e9), 0), std.range(1, 2e9), 0)) } }",
    )
    .unwrap();
    repo.write(
        "big/cm.yaml",
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big}}\ndata:\n  x: {}\n",
            "y".repeat(4096)
        ),
    )
    .unwrap();
    repo.commit("limits").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let url = repo.file_url();
    let fails = |args: &[&str]| {
        let out = ferry(args, cache.path());
        assert!(!out.status.success(), "ferry render {args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    };

    // Jsonnet runs in `ferry` itself started as the worker, and is killed at the timeout.
    let started = std::time::Instant::now();
    let stderr = fails(&["--repo", &url, "--path", "loop", "--tool-timeout", "2"]);
    assert!(
        stderr.contains(
            "jsonnet loop/loop.jsonnet did not finish within 2s and was killed (--tool-timeout)"
        ),
        "{stderr}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));

    let stderr = fails(&[
        "--repo",
        &url,
        "--path",
        "big",
        "--max-manifest-size",
        "2Ki",
    ]);
    assert!(
        stderr.contains("over the limit of 2 KiB (--max-manifest-size)"),
        "{stderr}"
    );
    let stderr = fails(&[
        "--repo",
        &url,
        "--path",
        "big",
        "--max-manifest-file-size",
        "4Ki",
    ]);
    assert!(
        stderr.contains("big/cm.yaml: the file is 4.1 KiB, over the limit of 4 KiB for one manifest file (--max-manifest-file-size)"),
        "{stderr}"
    );
    let stderr = fails(&["--repo", &url, "--path", "big", "--max-repo-size", "1Ki"]);
    assert!(
        stderr.contains("holds more than 1 KiB of files (--max-repo-size)"),
        "{stderr}"
    );
    // Raised, it renders.
    let (stdout, _) = ok(
        &[
            "--repo",
            &url,
            "--path",
            "big",
            "--max-manifest-size",
            "8Ki",
        ],
        cache.path(),
    );
    assert_eq!(yaml_stream(&stdout)[0]["metadata"]["name"], "big");
}
