//! Commit and push (`ferry_git::push`) against real Git servers: file://, smart HTTP with basic
//! auth, ssh with a key and known_hosts; base/target branches; concurrent pushes retried
//! without losing a commit; no empty commits; committed symlinks never followed.

mod common;

use std::path::Path;
use std::process::Command;

use ferry_git::push::{Author, PushError, PushOutcome, PushRequest, commit_and_push};
use ferry_git::{Credentials, GitError, RepoCredential};
use ferry_testkit::git::{GitRepo, HttpServer, SshServer};

fn author() -> Author {
    Author {
        name: "ferry ci".into(),
        email: "ci@example.invalid".into(),
    }
}

/// git in `dir`, isolated from the user's config; trimmed stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "someone else")
        .env("GIT_AUTHOR_EMAIL", "else@example.invalid")
        .env("GIT_COMMITTER_NAME", "someone else")
        .env("GIT_COMMITTER_EMAIL", "else@example.invalid")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A file at `branch` of the served repository.
fn show(repo: &GitRepo, branch: &str, path: &str) -> String {
    git(&repo.bare_path(), &["show", &format!("{branch}:{path}")])
}

/// Someone else commits `path` = `content` to `branch` and pushes it (a plain, unforced push).
fn concurrent_commit(repo: &GitRepo, branch: &str, path: &str, content: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let bare = repo.bare_path();
    git(
        dir.path(),
        &["clone", "-q", "-b", branch, bare.to_str().unwrap(), "c"],
    );
    let clone = dir.path().join("c");
    std::fs::write(clone.join(path), content).unwrap();
    git(&clone, &["commit", "-q", "-am", "concurrent change"]);
    git(&clone, &["push", "-q", "origin", branch]);
    git(&clone, &["rev-parse", "HEAD"])
}

fn fixture() -> GitRepo {
    let repo = GitRepo::new().unwrap();
    repo.write("app/values.yaml", "image:\n  tag: \"1.0.0\" # set by CI\n")
        .unwrap();
    repo.write("app/other.yaml", "a: 1\n").unwrap();
    repo.commit("initial").unwrap();
    repo
}

/// An edit setting the tag line of app/values.yaml.
fn set_tag(tag: &str) -> impl FnMut(&Path) -> Result<(), std::io::Error> + '_ {
    move |root: &Path| {
        let file = root.join("app/values.yaml");
        let text = std::fs::read_to_string(&file)?;
        let new: String = text
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("tag:") {
                    format!("  tag: \"{tag}\" # set by CI\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(file, new)
    }
}

#[test]
fn pushes_an_edit_over_file_and_commits_nothing_when_nothing_changes() {
    let repo = fixture();
    let before = repo.head().unwrap();
    let request = PushRequest::new(&repo.file_url(), "main", "web: 1.1.0", author());
    let (outcome, ()) = commit_and_push(&Credentials::new(), &request, set_tag("1.1.0")).unwrap();
    let PushOutcome::Pushed {
        commit,
        branch,
        files,
        attempts,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!((branch.as_str(), attempts), ("main", 1));
    assert_eq!(files, ["app/values.yaml"]);
    let bare = repo.bare_path();
    assert_eq!(git(&bare, &["rev-parse", "main"]), commit);
    assert_eq!(git(&bare, &["rev-parse", "main~1"]), before);
    assert_eq!(
        git(&bare, &["log", "-1", "--format=%an <%ae>|%cn|%s", "main"]),
        "ferry ci <ci@example.invalid>|ferry ci|web: 1.1.0"
    );
    assert_eq!(
        show(&repo, "main", "app/values.yaml"),
        "image:\n  tag: \"1.1.0\" # set by CI"
    );

    // The same edit again: the tree is unchanged, nothing is committed.
    let (outcome, ()) = commit_and_push(&Credentials::new(), &request, set_tag("1.1.0")).unwrap();
    assert_eq!(
        outcome,
        PushOutcome::Unchanged {
            head: commit.clone()
        }
    );
    assert_eq!(git(&bare, &["rev-parse", "main"]), commit);

    // A dry run reports and pushes nothing.
    let dry = PushRequest {
        dry_run: true,
        ..request.clone()
    };
    let (outcome, ()) = commit_and_push(&Credentials::new(), &dry, set_tag("1.2.0")).unwrap();
    assert_eq!(
        outcome,
        PushOutcome::WouldPush {
            head: commit.clone(),
            files: vec!["app/values.yaml".into()]
        }
    );
    assert_eq!(git(&bare, &["rev-parse", "main"]), commit);

    // An edit that fails: its error, nothing pushed.
    let err = commit_and_push(&Credentials::new(), &request, |_| {
        Err::<(), _>("no such file")
    })
    .unwrap_err();
    assert!(matches!(err, PushError::Edit("no such file")), "{err}");
    let missing = PushRequest::new(&repo.file_url(), "nope", "m", author());
    let err = commit_and_push(&Credentials::new(), &missing, set_tag("1")).unwrap_err();
    assert!(
        matches!(err, PushError::Git(GitError::UnknownRevision { .. })),
        "{err}"
    );
    assert_eq!(git(&bare, &["rev-parse", "main"]), commit);
}

#[test]
fn pushes_over_smart_http_with_basic_auth() {
    let repo = fixture();
    let http = HttpServer::start(&repo, Some(("alice", "s3cret"))).unwrap();
    let creds = Credentials::new().with_repo(&http.url(), RepoCredential::basic("alice", "s3cret"));
    let request = PushRequest::new(&http.url(), "main", "web: 2.0.0", author());
    let (outcome, ()) = commit_and_push(&creds, &request, set_tag("2.0.0")).unwrap();
    assert!(matches!(outcome, PushOutcome::Pushed { .. }), "{outcome:?}");
    assert_eq!(
        show(&repo, "main", "app/values.yaml"),
        "image:\n  tag: \"2.0.0\" # set by CI"
    );

    let head = git(&repo.bare_path(), &["rev-parse", "main"]);
    let wrong = Credentials::new().with_repo(&http.url(), RepoCredential::basic("alice", "nope"));
    let err = commit_and_push(&wrong, &request, set_tag("3.0.0")).unwrap_err();
    assert!(
        matches!(err, PushError::Git(GitError::AuthFailed { .. })),
        "{err}"
    );
    assert!(!err.to_string().contains("nope"), "{err}");
    assert_eq!(git(&repo.bare_path(), &["rev-parse", "main"]), head);
}

#[test]
fn pushes_over_ssh_with_a_key_and_known_hosts() {
    let repo = fixture();
    let ssh = SshServer::start(&repo).unwrap();
    let creds = Credentials::new()
        .with_repo(
            &ssh.url(),
            RepoCredential::ssh_key(ssh.client_private_key()),
        )
        .with_known_hosts(&ssh.known_hosts_line())
        .unwrap();
    let request = PushRequest::new(&ssh.url(), "main", "web: 2.1.0", author());
    let (outcome, ()) = commit_and_push(&creds, &request, set_tag("2.1.0")).unwrap();
    assert!(matches!(outcome, PushOutcome::Pushed { .. }), "{outcome:?}");
    assert_eq!(
        show(&repo, "main", "app/values.yaml"),
        "image:\n  tag: \"2.1.0\" # set by CI"
    );
}

#[test]
fn a_target_branch_is_made_from_the_base_then_built_on() {
    let repo = fixture();
    let base_head = repo.head().unwrap();
    let request = PushRequest {
        target_branch: Some("image-updates".into()),
        ..PushRequest::new(&repo.file_url(), "main", "web: 1.1.0", author())
    };
    let (outcome, ()) = commit_and_push(&Credentials::new(), &request, set_tag("1.1.0")).unwrap();
    let PushOutcome::Pushed {
        commit: first,
        branch,
        ..
    } = outcome
    else {
        panic!()
    };
    assert_eq!(branch, "image-updates");
    let bare = repo.bare_path();
    assert_eq!(git(&bare, &["rev-parse", "image-updates~1"]), base_head);
    assert_eq!(git(&bare, &["rev-parse", "main"]), base_head);

    // The target exists now: the next edit goes on top of it.
    let request = PushRequest {
        message: "web: 1.2.0".into(),
        ..request
    };
    let (outcome, ()) = commit_and_push(&Credentials::new(), &request, set_tag("1.2.0")).unwrap();
    let PushOutcome::Pushed { commit: second, .. } = outcome else {
        panic!()
    };
    assert_eq!(git(&bare, &["rev-parse", "image-updates~1"]), first);
    assert_eq!(git(&bare, &["rev-parse", "image-updates"]), second);
    assert_eq!(git(&bare, &["rev-parse", "main"]), base_head);
}

#[test]
fn a_concurrent_push_is_fetched_and_the_edit_applied_again_on_it() {
    let repo = fixture();
    let request = PushRequest::new(&repo.file_url(), "main", "web: 1.1.0", author());
    let mut runs = 0;
    let mut concurrent = None;
    let (outcome, ()) = commit_and_push(&Credentials::new(), &request, |root: &Path| {
        runs += 1;
        if runs == 1 {
            // Between our clone and our push, someone else pushes.
            concurrent = Some(concurrent_commit(&repo, "main", "app/other.yaml", "a: 2\n"));
        }
        set_tag("1.1.0")(root)
    })
    .unwrap();
    let PushOutcome::Pushed {
        commit, attempts, ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!((attempts, runs), (2, 2));
    let bare = repo.bare_path();
    assert_eq!(git(&bare, &["rev-parse", "main~1"]), concurrent.unwrap());
    assert_eq!(git(&bare, &["rev-parse", "main"]), commit);
    assert_eq!(show(&repo, "main", "app/other.yaml"), "a: 2");
    assert_eq!(
        show(&repo, "main", "app/values.yaml"),
        "image:\n  tag: \"1.1.0\" # set by CI"
    );

    // Someone pushing before every attempt: bounded, an error naming the branch, nothing lost.
    let request = PushRequest {
        max_attempts: 3,
        ..request
    };
    let mut n = 0;
    let err = commit_and_push(&Credentials::new(), &request, |root: &Path| {
        n += 1;
        concurrent_commit(&repo, "main", "app/other.yaml", &format!("a: {}\n", 10 + n));
        set_tag("9.9.9")(root)
    })
    .unwrap_err();
    assert!(
        matches!(&err, PushError::Git(GitError::PushRejected { attempts: 3, branch, .. }) if branch == "main"),
        "{err}"
    );
    assert_eq!(show(&repo, "main", "app/other.yaml"), "a: 13");
    assert_eq!(
        show(&repo, "main", "app/values.yaml"),
        "image:\n  tag: \"1.1.0\" # set by CI"
    );
}

#[test]
fn racing_writers_over_http_all_land() {
    let repo = fixture();
    let http = HttpServer::start(&repo, Some(("alice", "s3cret"))).unwrap();
    let creds = Credentials::new().with_repo(&http.url(), RepoCredential::basic("alice", "s3cret"));
    let writers = 4;
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|i| {
                let (creds, url) = (&creds, http.url());
                scope.spawn(move || {
                    let request = PushRequest {
                        max_attempts: 20,
                        ..PushRequest::new(&url, "main", &format!("writer {i}"), author())
                    };
                    commit_and_push(creds, &request, |root: &Path| {
                        std::fs::write(
                            root.join(format!("app/writer-{i}.yaml")),
                            format!("n: {i}\n"),
                        )
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for result in results {
        assert!(
            matches!(result, Ok((PushOutcome::Pushed { .. }, ()))),
            "{result:?}"
        );
    }
    let bare = repo.bare_path();
    let subjects = git(&bare, &["log", "--format=%s", "main"]);
    for i in 0..writers {
        assert!(subjects.contains(&format!("writer {i}")), "{subjects}");
        assert_eq!(
            show(&repo, "main", &format!("app/writer-{i}.yaml")),
            format!("n: {i}")
        );
    }
    // A linear history: initial + one commit per writer.
    assert_eq!(
        git(&bare, &["rev-list", "--count", "main"]),
        (writers + 1).to_string()
    );
    assert_eq!(
        git(&bare, &["rev-list", "--merges", "--count", "main"]),
        "0"
    );
}

#[test]
fn committed_symlinks_are_not_followed_and_stay_links() {
    let repo = fixture();
    repo.symlink("app/secret.yaml", "/etc/hostname").unwrap();
    repo.commit("a link out").unwrap();
    let request = PushRequest::new(&repo.file_url(), "main", "web: 1.1.0", author());
    let (_, seen) = commit_and_push(&Credentials::new(), &request, |root: &Path| {
        let link = root.join("app/secret.yaml");
        let seen = std::fs::read_to_string(&link)?;
        set_tag("1.1.0")(root)?;
        Ok::<_, std::io::Error>((seen, std::fs::symlink_metadata(&link)?.is_symlink()))
    })
    .unwrap();
    assert_eq!(seen, ("/etc/hostname".to_owned(), false));
    let bare = repo.bare_path();
    let entry = git(&bare, &["ls-tree", "main", "app/secret.yaml"]);
    assert!(entry.starts_with("120000 blob"), "{entry}");
}

#[test]
fn commit_paths_commits_only_the_named_files_of_a_checkout() {
    let repo = fixture();
    let work = repo.work_path();
    std::fs::write(work.join("app/values.yaml"), "image:\n  tag: \"5\"\n").unwrap();
    std::fs::write(
        work.join("app/other.yaml"),
        "a: unrelated work in progress\n",
    )
    .unwrap();
    let before = git(&work, &["rev-parse", "HEAD"]);
    let paths = [std::path::PathBuf::from("app/values.yaml")];
    let commit = ferry_git::push::commit_paths(
        &work.join("app"),
        &[Path::new("values.yaml").into()],
        "web: 5",
        &author(),
    )
    .unwrap()
    .expect("a commit");
    assert_eq!(git(&work, &["rev-parse", "HEAD"]), commit);
    assert_eq!(git(&work, &["rev-parse", "HEAD~1"]), before);
    assert_eq!(
        git(&work, &["show", "--name-only", "--format=%s", "HEAD"]),
        "web: 5\n\napp/values.yaml"
    );
    // The other change is still there, uncommitted; the committed file is clean.
    assert_eq!(git(&work, &["status", "--porcelain"]), "M app/other.yaml");
    // Nothing new to commit: no commit.
    assert_eq!(
        ferry_git::push::commit_paths(&work, &paths, "again", &author()).unwrap(),
        None
    );
    let outside = ferry_git::push::commit_paths(&work, &["/etc/hostname".into()], "x", &author());
    assert!(
        outside
            .unwrap_err()
            .to_string()
            .contains("outside the work tree")
    );
}
