//! Git input artifacts cloned from real Git servers (ferry-testkit's smart HTTP with basic
//! auth, `git daemon`, OpenSSH's sshd): the remote's HEAD, a branch, a tag, a commit, a shallow
//! clone, a single branch, extra refspecs, submodules, credentials from the environment, TLS
//! verification — and
//! `ferry-exec init` cloning as the init container does.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::Result;
use ferry_exec::artifacts::{self, Input, Plan, Source};
use ferry_exec::git::GitSource;
use ferry_testkit::git::{GitDaemon, GitRepo, HttpServer, SshServer};

const EXEC: &str = env!("CARGO_BIN_EXE_ferry-exec");

/// `main` with two commits (the first tagged `v1`) and a branch `feature` one commit ahead of
/// the first.
struct History {
    repo: GitRepo,
    first: String,
    second: String,
    feature: String,
}

fn history() -> Result<History> {
    let repo = GitRepo::new()?;
    repo.write("app.txt", "one\n")?;
    let first = repo.commit("first")?;
    repo.tag("v1")?;
    repo.switch("feature")?;
    repo.write("app.txt", "feature\n")?;
    let feature = repo.commit("feature")?;
    repo.switch("main")?;
    repo.write("app.txt", "two\n")?;
    let second = repo.commit("second")?;
    Ok(History {
        repo,
        first,
        second,
        feature,
    })
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file)).unwrap()
}

fn head(dir: &Path) -> (String, bool) {
    let repo = git2::Repository::open(dir).unwrap();
    let detached = repo.head_detached().unwrap();
    let head = repo.head().unwrap();
    (head.name().unwrap().to_string(), detached)
}

#[test]
fn clones_each_kind_of_revision_over_smart_http_with_credentials() -> Result<()> {
    let h = history()?;
    let http = HttpServer::start(&h.repo, Some(("bot", "s3cret")))?;
    // SAFETY: set before any thread of this test reads the environment.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("GIT_TEST_USER", "bot");
        std::env::set_var("GIT_TEST_PASSWORD", "s3cret");
        std::env::set_var("GIT_TEST_WRONG", "guessed");
    }
    let source = |revision: Option<&str>| GitSource {
        repo: http.url(),
        revision: revision.map(String::from),
        username_env: Some("GIT_TEST_USER".into()),
        password_env: Some("GIT_TEST_PASSWORD".into()),
        ..GitSource::default()
    };
    let work = tempfile::tempdir()?;

    // No revision: the remote's HEAD, as a local branch (as `git clone`).
    let dir = work.path().join("head");
    assert_eq!(
        source(None).clone_into(&dir).map_err(anyhow::Error::msg)?,
        Some(h.second.clone())
    );
    assert_eq!(read(&dir, "app.txt"), "two\n");
    assert_eq!(head(&dir), ("refs/heads/main".into(), false));

    let dir = work.path().join("branch");
    assert_eq!(
        source(Some("feature"))
            .clone_into(&dir)
            .map_err(anyhow::Error::msg)?,
        Some(h.feature.clone())
    );
    assert_eq!(read(&dir, "app.txt"), "feature\n");
    assert_eq!(head(&dir), ("refs/heads/feature".into(), false));

    let dir = work.path().join("tag");
    assert_eq!(
        source(Some("v1"))
            .clone_into(&dir)
            .map_err(anyhow::Error::msg)?,
        Some(h.first.clone())
    );
    assert_eq!(read(&dir, "app.txt"), "one\n");
    assert!(head(&dir).1, "a tag is checked out detached");

    let dir = work.path().join("commit");
    assert_eq!(
        source(Some(&h.first))
            .clone_into(&dir)
            .map_err(anyhow::Error::msg)?,
        Some(h.first.clone())
    );
    assert_eq!(read(&dir, "app.txt"), "one\n");

    let dir = work.path().join("shallow");
    let shallow = GitSource {
        depth: Some(1),
        ..source(None)
    };
    assert_eq!(
        shallow.clone_into(&dir).map_err(anyhow::Error::msg)?,
        Some(h.second.clone())
    );
    assert!(git2::Repository::open(&dir)?.is_shallow());

    let err = source(Some("nowhere"))
        .clone_into(&work.path().join("missing"))
        .unwrap_err();
    assert!(
        err.starts_with(&format!("{}: revision nowhere: ", http.url())),
        "{err}"
    );

    let wrong = GitSource {
        password_env: Some("GIT_TEST_WRONG".into()),
        ..source(None)
    };
    let err = wrong.clone_into(&work.path().join("wrong")).unwrap_err();
    assert!(err.contains("authentication failed"), "{err}");
    assert!(!err.contains("guessed"), "{err}");
    let anonymous = GitSource {
        username_env: None,
        password_env: None,
        ..source(None)
    };
    let err = anonymous.clone_into(&work.path().join("anon")).unwrap_err();
    assert!(
        err.contains("the server asks for credentials the artifact does not give"),
        "{err}"
    );
    let unset = GitSource {
        password_env: Some("GIT_TEST_UNSET".into()),
        ..source(None)
    };
    assert_eq!(
        unset.clone_into(&work.path().join("unset")).unwrap_err(),
        "the credential in GIT_TEST_UNSET is not set"
    );
    Ok(())
}

#[test]
fn single_branch_and_extra_refspecs_over_git_daemon() -> Result<()> {
    let h = history()?;
    let bare = h.repo.bare_path();
    let status = Command::new("git")
        .arg("--git-dir")
        .arg(&bare)
        .args(["update-ref", "refs/meta/config", &h.first])
        .status()?;
    assert!(status.success());
    let daemon = GitDaemon::start(&h.repo)?;
    let work = tempfile::tempdir()?;

    let dir = work.path().join("single");
    let single = GitSource {
        repo: daemon.url(),
        single_branch: true,
        branch: Some("feature".into()),
        fetch: vec!["+refs/meta/*:refs/meta/*".into()],
        ..GitSource::default()
    };
    assert_eq!(
        single.clone_into(&dir).map_err(anyhow::Error::msg)?,
        Some(h.feature.clone())
    );
    let repo = git2::Repository::open(&dir)?;
    assert!(repo.find_reference("refs/remotes/origin/feature").is_ok());
    assert!(
        repo.find_reference("refs/remotes/origin/main").is_err(),
        "a single branch was fetched"
    );
    assert_eq!(repo.refname_to_id("refs/meta/config")?.to_string(), h.first);

    // An empty repository: an empty clone, as upstream's.
    let empty = GitRepo::new()?;
    let daemon = GitDaemon::start(&empty)?;
    let dir = work.path().join("empty");
    let source = GitSource {
        repo: daemon.url(),
        ..GitSource::default()
    };
    assert_eq!(source.clone_into(&dir).map_err(anyhow::Error::msg)?, None);
    assert!(git2::Repository::open(&dir)?.is_empty()?);
    Ok(())
}

#[test]
fn submodules_are_updated_unless_disabled() -> Result<()> {
    let library = GitRepo::new()?;
    library.write("lib.txt", "library\n")?;
    library.commit("library")?;
    let app = GitRepo::new()?;
    app.write("app.txt", "app\n")?;
    app.add_submodule("vendor/lib", &library.file_url())?;
    app.commit("with a submodule")?;
    let work = tempfile::tempdir()?;

    let dir = work.path().join("with");
    let source = GitSource {
        repo: app.file_url(),
        ..GitSource::default()
    };
    source.clone_into(&dir).map_err(anyhow::Error::msg)?;
    assert_eq!(read(&dir, "vendor/lib/lib.txt"), "library\n");

    let dir = work.path().join("without");
    let source = GitSource {
        disable_submodules: true,
        ..source
    };
    source.clone_into(&dir).map_err(anyhow::Error::msg)?;
    assert!(!dir.join("vendor/lib/lib.txt").exists());
    Ok(())
}

#[test]
fn ssh_takes_the_key_from_the_environment_and_checks_the_host_key() -> Result<()> {
    let h = history()?;
    let ssh = SshServer::start(&h.repo)?;
    // SAFETY: set before any thread of this test reads the environment.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("GIT_TEST_SSH_KEY", ssh.client_private_key());
    }
    let work = tempfile::tempdir()?;
    let source = GitSource {
        repo: ssh.url(),
        ssh_private_key_env: Some("GIT_TEST_SSH_KEY".into()),
        insecure_ignore_host_key: true,
        ..GitSource::default()
    };
    let dir = work.path().join("ssh");
    assert_eq!(
        source.clone_into(&dir).map_err(anyhow::Error::msg)?,
        Some(h.second.clone())
    );
    assert_eq!(read(&dir, "app.txt"), "two\n");

    // Without insecureIgnoreHostKey the host must be known, and this one is not.
    let checked = GitSource {
        insecure_ignore_host_key: false,
        ..source
    };
    let err = checked
        .clone_into(&work.path().join("checked"))
        .unwrap_err();
    assert_eq!(
        err,
        format!("{}: invalid or unknown remote ssh hostkey", ssh.url())
    );
    Ok(())
}

#[test]
fn a_self_signed_server_is_refused_unless_tls_checks_are_skipped() -> Result<()> {
    let h = history()?;
    let https = HttpServer::start_tls(&h.repo, None)?;
    let work = tempfile::tempdir()?;
    let checked = GitSource {
        repo: https.url(),
        ..GitSource::default()
    };
    let err = checked
        .clone_into(&work.path().join("checked"))
        .unwrap_err();
    assert_eq!(
        err,
        format!("{}: the SSL certificate is invalid", https.url())
    );
    let dir = work.path().join("skipped");
    let skipped = GitSource {
        insecure_skip_tls: true,
        ..checked
    };
    assert_eq!(
        skipped.clone_into(&dir).map_err(anyhow::Error::msg)?,
        Some(h.second)
    );
    Ok(())
}

#[test]
fn init_clones_a_git_input_as_the_init_container_does() -> Result<()> {
    let h = history()?;
    let http = HttpServer::start(&h.repo, Some(("bot", "s3cret")))?;
    let work = tempfile::tempdir()?;
    let inputs = work.path().join("inputs");
    fs::create_dir(&inputs)?;
    let plan = Plan {
        inputs: vec![Input {
            name: "src".into(),
            source: Source::Git(GitSource {
                repo: http.url(),
                revision: Some("v1".into()),
                username_env: Some("CRED_USER".into()),
                password_env: Some("CRED_PASSWORD".into()),
                ..GitSource::default()
            }),
            archive_none: false,
            optional: false,
        }],
        outputs: vec![],
    };
    assert_eq!(plan.secret_variables(), ["CRED_USER", "CRED_PASSWORD"]);
    let output = Command::new(EXEC)
        .arg("init")
        .arg(work.path().join("ferry-exec"))
        .arg("--inputs")
        .arg(&inputs)
        .arg("--report")
        .arg(work.path().join("report"))
        .env(artifacts::PLAN_ENV, serde_json::to_string(&plan)?)
        .env("CRED_USER", "bot")
        .env("CRED_PASSWORD", "s3cret")
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(read(&inputs, "src/app.txt"), "one\n");
    assert!(
        stderr.contains(&format!("input artifact src: checked out {}", h.first)),
        "{stderr}"
    );

    let refused = work.path().join("refused");
    fs::create_dir(&refused)?;
    let output = Command::new(EXEC)
        .arg("init")
        .arg(work.path().join("ferry-exec"))
        .arg("--inputs")
        .arg(&refused)
        .arg("--report")
        .arg(work.path().join("report"))
        .env(artifacts::PLAN_ENV, serde_json::to_string(&plan)?)
        .env("CRED_USER", "bot")
        .env("CRED_PASSWORD", "wrong")
        .output()?;
    assert!(!output.status.success());
    let report = read(work.path(), "report");
    assert!(
        report.starts_with(&format!("input artifact src: {}: ", http.url())),
        "{report}"
    );
    Ok(())
}
