//! `ferry ci set-image` as a process: in a checkout (exit codes, --commit, --bump, --dry-run,
//! errors naming the file) and, through the ready-to-copy pipelines of examples/ci/ (GitHub
//! Actions, GitLab CI, Tekton), against a Git server over smart HTTP with basic auth: each
//! example's ferry command line is taken from the file, its variables filled in, run, and the
//! commit it pushed checked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ferry_testkit::cli::CliHome;
use ferry_testkit::git::{GitRepo, HttpServer};
use serde_yaml::Value;

const TAG: &str = "v1.2.3";
const AUTH: (&str, &str) = ("ci-bot", "t0ken");

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/ci")
}

fn yaml(file: &str) -> Value {
    let text = std::fs::read_to_string(examples().join(file)).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

const KUSTOMIZATION: &str = "\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base
images:
  - name: web # the app's container
    newName: harbor.example.com/team/web
    newTag: v1.2.2
";

const VALUES: &str = "\
replicaCount: 3
image:
  repository: harbor.example.com/team/web
  # set by CI
  tag: \"v1.2.2\"
";

/// A config repository served over smart HTTP with basic auth.
fn config_repo() -> (GitRepo, HttpServer) {
    let repo = GitRepo::new().unwrap();
    repo.write(
        "apps/web/overlays/production/kustomization.yaml",
        KUSTOMIZATION,
    )
    .unwrap();
    repo.write("apps/web/values-production.yaml", VALUES)
        .unwrap();
    repo.commit("config").unwrap();
    let http = HttpServer::start(&repo, Some(AUTH)).unwrap();
    (repo, http)
}

fn ferry_bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_ferry"))
        .parent()
        .unwrap()
        .to_owned()
}

/// `sh -c script` with ferry first on PATH and `env`.
fn sh(script: &str, env: &HashMap<&str, String>) -> Output {
    let path = format!(
        "{}:{}",
        ferry_bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let home = CliHome::new().unwrap();
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .env_clear()
        .env("PATH", path)
        .env("HOME", home.path())
        .envs(env)
        .output()
        .unwrap()
}

/// The ferry command of a shell script: from `ci set-image` through its continuation lines,
/// up to a `||` that handles its exit status.
fn ferry_command(script: &str) -> String {
    let start = script
        .find("ci set-image")
        .expect("a ferry ci set-image command");
    let mut command = String::from("ferry ");
    for line in script[start..].lines() {
        let line = line.trim();
        match line.strip_suffix('\\') {
            Some(continued) => command.push_str(continued),
            None => {
                command.push_str(line.split(" || ").next().unwrap());
                break;
            }
        }
        command.push(' ');
    }
    command
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The pushed commit: its message and author, and the file it changed.
fn last_commit(repo: &GitRepo) -> (String, String, String) {
    let bare = repo.bare_path();
    let log = git(&bare, &["log", "-1", "--format=%s|%an <%ae>", "main"]);
    let (subject, author) = log.split_once('|').unwrap();
    let files = git(&bare, &["show", "--name-only", "--format=", "main"]);
    (subject.to_owned(), author.to_owned(), files)
}

fn show(repo: &GitRepo, path: &str) -> String {
    git(&repo.bare_path(), &["show", &format!("main:{path}")])
}

/// Runs `run` twice: the first pushes the change, the second finds nothing to change (exit 2)
/// and pushes nothing.
fn twice(repo: &GitRepo, run: impl Fn() -> Output) {
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let head = git(&repo.bare_path(), &["rev-parse", "main"]);
    let again = run();
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to change"));
    assert_eq!(git(&repo.bare_path(), &["rev-parse", "main"]), head);
}

fn assert_kustomization_pushed(repo: &GitRepo) {
    let pushed = show(repo, "apps/web/overlays/production/kustomization.yaml");
    assert_eq!(pushed, KUSTOMIZATION.replace("v1.2.2", TAG).trim_end());
}

#[test]
fn github_actions_example() {
    let workflow = yaml("github-actions.yml");
    let step = workflow["jobs"]["deploy"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("ci set-image"))
        })
        .expect("a step running ferry ci set-image");
    let script = step["run"].as_str().unwrap();
    // ferry runs as the entrypoint of ferry's image.
    let before = &script[..script.find("ci set-image").unwrap()];
    assert!(
        before.trim_end().ends_with("\"$FERRY_IMAGE\" \\"),
        "{script}"
    );
    let command = ferry_command(script);
    let (repo, http) = config_repo();
    let env: HashMap<&str, String> = HashMap::from([
        (
            "IMAGE",
            workflow["env"]["IMAGE"].as_str().unwrap().to_owned(),
        ),
        ("CONFIG_REPO", http.url()),
        ("TAG", TAG.to_owned()),
        ("FERRY_GIT_USERNAME", AUTH.0.to_owned()),
        ("FERRY_GIT_PASSWORD", AUTH.1.to_owned()),
        (
            "FERRY_GIT_AUTHOR",
            step["env"]["FERRY_GIT_AUTHOR"].as_str().unwrap().to_owned(),
        ),
    ]);
    twice(&repo, || sh(&command, &env));
    assert_kustomization_pushed(&repo);
    assert_eq!(
        last_commit(&repo),
        (
            format!("web: deploy {TAG}"),
            "ci-bot <ci-bot@example.com>".to_owned(),
            "apps/web/overlays/production/kustomization.yaml".to_owned()
        )
    );
}

#[test]
fn gitlab_ci_example() {
    let pipeline = yaml("gitlab-ci.yml");
    let job = &pipeline["deploy"];
    let script: Vec<&str> = job["script"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|line| line.as_str().unwrap())
        .collect();
    let command = script
        .iter()
        .find(|l| l.starts_with("ferry ci set-image"))
        .unwrap();
    assert_eq!(job["allow_failure"]["exit_codes"][0], 2);
    let (repo, http) = config_repo();
    let env: HashMap<&str, String> = HashMap::from([
        (
            "IMAGE",
            pipeline["variables"]["IMAGE"].as_str().unwrap().to_owned(),
        ),
        ("CONFIG_REPO", http.url()),
        ("CI_COMMIT_TAG", TAG.to_owned()),
        (
            "CI_PIPELINE_URL",
            "https://gitlab.example.com/team/web/-/pipelines/7".to_owned(),
        ),
        ("CONFIG_REPO_TOKEN", AUTH.1.to_owned()),
        ("FERRY_GIT_USERNAME", AUTH.0.to_owned()),
        (
            "FERRY_GIT_AUTHOR",
            job["variables"]["FERRY_GIT_AUTHOR"]
                .as_str()
                .unwrap()
                .to_owned(),
        ),
    ]);
    // The job's script lines run in one shell, as the runner runs them.
    let scripted = script
        .iter()
        .take_while(|l| !l.starts_with("ferry"))
        .copied();
    let whole: Vec<&str> = scripted.chain([*command]).collect();
    twice(&repo, || sh(&whole.join("\n"), &env));
    assert_eq!(
        show(&repo, "apps/web/values-production.yaml"),
        VALUES
            .replace("\"v1.2.2\"", &format!("\"{TAG}\""))
            .trim_end()
    );
    let (subject, author, files) = last_commit(&repo);
    assert_eq!(
        subject,
        format!("web: deploy {TAG} (https://gitlab.example.com/team/web/-/pipelines/7)")
    );
    assert_eq!(author, "GitLab CI <ci@gitlab.example.com>");
    assert_eq!(files, "apps/web/values-production.yaml");
}

#[test]
fn tekton_example() {
    let task = yaml("tekton/task-ferry-set-image.yaml");
    let pipeline = yaml("tekton/pipeline.yaml");
    let step = &task["spec"]["steps"][0];
    assert_eq!(step["onError"], "continue");
    let args: Vec<String> = step["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(args[..2], ["ci", "set-image"]);

    let (repo, http) = config_repo();
    // The Task's params as the Pipeline's deploy task passes them.
    let pipeline_default = |name: &str| {
        let params = pipeline["spec"]["params"].as_sequence().unwrap();
        let param = params.iter().find(|p| p["name"] == name).unwrap();
        param["default"].as_str().map(str::to_owned)
    };
    let pipeline_value = |value: &str| match value {
        "$(params.tag)" => TAG.to_owned(),
        "$(params.config-repo)" => http.url(),
        other => match other
            .strip_prefix("$(params.")
            .and_then(|v| v.strip_suffix(')'))
        {
            Some(name) => pipeline_default(name).unwrap(),
            None => other.to_owned(),
        },
    };
    let deploy = pipeline["spec"]["tasks"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|t| t["taskRef"]["name"] == "ferry-set-image")
        .unwrap();
    let mut params: HashMap<String, String> = task["spec"]["params"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|p| {
            Some((
                p["name"].as_str()?.to_owned(),
                p["default"].as_str()?.to_owned(),
            ))
        })
        .collect();
    for p in deploy["params"].as_sequence().unwrap() {
        let value = pipeline_value(p["value"].as_str().unwrap());
        params.insert(p["name"].as_str().unwrap().to_owned(), value);
    }
    let substitute = |text: &str| {
        params.iter().fold(text.to_owned(), |text, (name, value)| {
            text.replace(&format!("$(params.{name})"), value)
        })
    };
    let args: Vec<String> = args.iter().map(|a| substitute(a)).collect();
    assert!(!args.iter().any(|a| a.contains("$(")), "{args:?}");
    let author = step["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "FERRY_GIT_AUTHOR")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_owned();
    twice(&repo, || {
        CliHome::new()
            .unwrap()
            .command(env!("CARGO_BIN_EXE_ferry"))
            .args(&args)
            .env("FERRY_GIT_USERNAME", AUTH.0)
            .env("FERRY_GIT_PASSWORD", AUTH.1)
            .env("FERRY_GIT_AUTHOR", &author)
            .output()
            .unwrap()
    });
    assert_kustomization_pushed(&repo);
    let (subject, author, _) = last_commit(&repo);
    assert_eq!(
        (subject.as_str(), author.as_str()),
        ("web: deploy v1.2.3", "Tekton <tekton@example.com>")
    );
}

/// `ferry ci set-image ARGS` in `dir`.
fn ferry_in(dir: &Path, args: &[&str]) -> Output {
    CliHome::new()
        .unwrap()
        .command(env!("CARGO_BIN_EXE_ferry"))
        .args(["ci", "set-image"])
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .output()
        .unwrap()
}

#[test]
fn in_a_checkout_exit_codes_say_what_happened() {
    let (repo, _http) = config_repo();
    let work = repo.work_path();
    let head = git(&work, &["rev-parse", "HEAD"]);
    let values = "apps/web/values-production.yaml";

    // --dry-run shows the change and writes nothing.
    let out = ferry_in(
        &work,
        &["--values", values, "--image", "web:v1.3.0", "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{values}: image.tag: v1.2.2 -> v1.3.0\n")
    );
    assert_eq!(git(&work, &["status", "--porcelain"]), "");

    // --bump minor reads the tag, sets it, --commit commits only that file.
    std::fs::write(work.join("notes.txt"), "work in progress\n").unwrap();
    let out = ferry_in(
        &work,
        &[
            "--values",
            values,
            "--image",
            "web",
            "--bump",
            "minor",
            "--commit",
            "--author",
            "Bot <bot@example.com>",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("image.tag: v1.2.2 -> v1.3.0"));
    assert_eq!(git(&work, &["rev-parse", "HEAD~1"]), head);
    assert_eq!(
        git(&work, &["log", "-1", "--format=%s|%an"]),
        "Set image web:v1.3.0|Bot"
    );
    assert_eq!(git(&work, &["status", "--porcelain"]), "?? notes.txt");

    // The same tag again: exit 2, nothing committed.
    let out = ferry_in(
        &work,
        &["--values", values, "--image", "web:v1.3.0", "--commit"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(git(&work, &["rev-list", "--count", "HEAD"]), "2");

    // Errors: exit 1 and a message naming the file and the cause.
    let cases: [(&[&str], &str); 4] = [
        (
            &["--values", "apps/web/missing.yaml", "--image", "web:1"],
            "apps/web/missing.yaml: ",
        ),
        (
            &[
                "--values",
                values,
                "--path",
                "replicaCount.tag",
                "--image",
                "web:1",
            ],
            "replicaCount: is not a mapping",
        ),
        (
            &["--kustomization", "apps", "--image", "web:1"],
            "apps: no kustomization file",
        ),
        (
            &["--values", "../outside.yaml", "--image", "web:1"],
            "../outside.yaml: target paths",
        ),
    ];
    for (args, message) in cases {
        let out = ferry_in(&work, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(message),
            "{args:?}: {}",
            text(&out)
        );
    }
    let out = ferry_in(
        &work,
        &[
            "--values",
            values,
            "--image",
            "web",
            "--bump",
            "patch",
            "--path",
            "replicaCount",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\"3\" is not a semantic version"),
        "{}",
        text(&out)
    );
    assert_eq!(git(&work, &["status", "--porcelain"]), "?? notes.txt");
}

#[test]
fn argocd_source_files_are_made_and_updated() {
    let (repo, _http) = config_repo();
    let work = repo.work_path();
    let source = "apps/web/.argocd-source-web.yaml";
    let out = ferry_in(
        &work,
        &[
            "--argocd-source",
            source,
            "--image",
            "web=harbor.example.com/team/web:v2",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written: Value =
        serde_yaml::from_str(&std::fs::read_to_string(work.join(source)).unwrap()).unwrap();
    assert_eq!(
        written["kustomize"]["images"][0],
        "web=harbor.example.com/team/web:v2"
    );

    let helm = "apps/web/.argocd-source-web-helm.yaml";
    let args = [
        "--argocd-source",
        helm,
        "--argocd-source-helm",
        "--path",
        "image.tag",
        "--name-path",
        "image.repository",
        "--image",
        "web=harbor.example.com/team/web:v2",
    ];
    let out = ferry_in(&work, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written: Value =
        serde_yaml::from_str(&std::fs::read_to_string(work.join(helm)).unwrap()).unwrap();
    let parameters = &written["helm"]["parameters"];
    assert_eq!(parameters[0]["name"], "image.repository");
    assert_eq!(parameters[0]["value"], "harbor.example.com/team/web");
    assert_eq!(parameters[1]["name"], "image.tag");
    assert_eq!(parameters[1]["value"], "v2");
    assert_eq!(parameters[1]["forceString"], true);
    assert_eq!(ferry_in(&work, &args).status.code(), Some(2));
}

#[test]
fn a_remote_repository_over_ssh_with_a_key_and_known_hosts() {
    let (repo, _http) = config_repo();
    let ssh = ferry_testkit::git::SshServer::start(&repo).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    std::fs::write(&key, ssh.client_private_key()).unwrap();
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, ssh.known_hosts_line()).unwrap();
    let url = ssh.url();
    let args = [
        "--repo",
        url.as_str(),
        "--push",
        "--kustomization",
        "apps/web/overlays/production",
        "--image",
        "web",
        "--bump",
        "major",
        "--ssh-private-key-path",
        key.to_str().unwrap(),
        "--known-hosts",
        known_hosts.to_str().unwrap(),
    ];
    let out = ferry_in(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let pushed = show(&repo, "apps/web/overlays/production/kustomization.yaml");
    assert_eq!(pushed, KUSTOMIZATION.replace("v1.2.2", "v2.0.0").trim_end());

    // An unknown host key: refused, exit 1, nothing pushed.
    let head = git(&repo.bare_path(), &["rev-parse", "main"]);
    std::fs::write(&known_hosts, "").unwrap();
    let out = ferry_in(dir.path(), &args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("host key"),
        "{}",
        text(&out)
    );
    assert_eq!(git(&repo.bare_path(), &["rev-parse", "main"]), head);
}

#[test]
fn concurrent_bumps_all_land() {
    let (repo, http) = config_repo();
    let dir = tempfile::tempdir().unwrap();
    let url = http.url();
    let home = CliHome::new().unwrap();
    let run = || {
        home.command(env!("CARGO_BIN_EXE_ferry"))
            .args([
                "ci",
                "set-image",
                "--repo",
                &url,
                "--push",
                "--max-attempts",
                "10",
            ])
            .args([
                "--values",
                "apps/web/values-production.yaml",
                "--image",
                "web",
                "--bump",
                "patch",
            ])
            .env("FERRY_GIT_USERNAME", AUTH.0)
            .env("FERRY_GIT_PASSWORD", AUTH.1)
            .env("HOME", dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children = [run(), run(), run()];
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|child| child.wait_with_output().unwrap())
        .collect();
    let all = outputs.iter().map(text).collect::<Vec<_>>().join("\n");
    for out in &outputs {
        assert_eq!(out.status.code(), Some(0), "{all}");
    }
    // Each run bumped the tag it found on the head it pushed onto: none was lost.
    let values = show(&repo, "apps/web/values-production.yaml");
    assert!(values.contains("tag: \"v1.2.5\""), "{values}\n{all}");
    let subjects = git(&repo.bare_path(), &["log", "--format=%s", "main"]);
    assert_eq!(
        subjects,
        "Set image web:v1.2.5\nSet image web:v1.2.4\nSet image web:v1.2.3\nconfig"
    );
}

#[test]
fn credentials_in_the_repository_url_are_used_and_never_printed() {
    let (repo, http) = config_repo();
    let dir = tempfile::tempdir().unwrap();
    let url = http
        .url()
        .replace("http://", &format!("http://{}:{}@", AUTH.0, AUTH.1));
    let args = [
        "--repo",
        url.as_str(),
        "--push",
        "--values",
        "apps/web/values-production.yaml",
        "--image",
        "web:v9.0.0",
    ];
    let out = ferry_in(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains(AUTH.1), "{}", text(&out));
    assert!(show(&repo, "apps/web/values-production.yaml").contains("tag: \"v9.0.0\""));

    let wrong = http.url().replace("http://", "http://ci-bot:wrong@");
    let out = ferry_in(
        dir.path(),
        &[
            "--repo",
            wrong.as_str(),
            "--push",
            "--values",
            "apps/web/values-production.yaml",
            "--image",
            "web:v9.1.0",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!text(&out).contains("wrong"), "{}", text(&out));
}
