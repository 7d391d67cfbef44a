//! Checkouts: file contents and modes, symlinks, submodules, cleanup, and many concurrent users
//! of one mirror.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{cache, history};
use ferry_git::{CheckoutOptions, Credentials, GitError};
use ferry_testkit::git::{GitRepo, HttpServer};

const WITH_SUBMODULES: CheckoutOptions = CheckoutOptions {
    submodules: true,
    max_bytes: None,
};

#[tokio::test]
async fn files_modes_and_symlinks_are_materialized_verbatim() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    repo.write("deploy/app.yaml", "kind: Deployment\n")?;
    repo.write("bin/run.sh", "#!/bin/sh\n")?;
    std::fs::set_permissions(
        repo.work_path().join("bin/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )?;
    repo.symlink("deploy/link.yaml", "app.yaml")?;
    repo.symlink("escape", "../../../../etc/passwd")?;
    repo.symlink("absolute", "/etc/passwd")?;
    let sha = repo.commit("files")?;

    let (cache, root) = cache(Credentials::new());
    let checkout = cache
        .checkout(&repo.file_url(), &sha, &CheckoutOptions::default())
        .await?;
    let dir = checkout.path();
    assert!(dir.starts_with(root.path()));
    assert_eq!(checkout.sha(), sha);
    assert_eq!(
        std::fs::read_to_string(dir.join("deploy/app.yaml"))?,
        "kind: Deployment\n"
    );
    let mode = |p: &str| std::fs::metadata(dir.join(p)).map(|m| m.permissions().mode() & 0o111);
    assert_ne!(mode("bin/run.sh")?, 0, "executable bit kept");
    assert_eq!(mode("deploy/app.yaml")?, 0);
    // Links are links, with their targets as committed; nothing was copied from outside.
    let link = |p: &str| std::fs::read_link(dir.join(p)).map(|t| t.display().to_string());
    assert_eq!(link("deploy/link.yaml")?, "app.yaml");
    assert_eq!(link("escape")?, "../../../../etc/passwd");
    assert_eq!(link("absolute")?, "/etc/passwd");
    assert!(
        std::fs::symlink_metadata(dir.join("escape"))?
            .file_type()
            .is_symlink()
    );
    assert!(!dir.join(".git").exists());

    let path = dir.to_path_buf();
    drop(checkout);
    assert!(!path.exists(), "checkout directory removed on drop");
    Ok(())
}

/// parent -> child (relative URL) -> grandchild (absolute URL).
fn nested_submodules() -> anyhow::Result<(GitRepo, GitRepo, GitRepo, String)> {
    let grandchild = GitRepo::new()?;
    grandchild.write("deep.txt", "deep\n")?;
    grandchild.commit("grandchild")?;

    let child = GitRepo::new()?;
    child.write("child.txt", "child\n")?;
    child.add_submodule("vendor/grandchild", &grandchild.file_url())?;
    child.commit("child with grandchild")?;

    let parent = GitRepo::new()?;
    parent.write("top.txt", "top\n")?;
    parent.add_submodule("libs/child", &child.file_url())?;
    // Rewrite the URL as relative to the parent (both fixtures live in sibling temp dirs).
    let child_dir = child.bare_path();
    let relative = format!(
        "../../{}/repo.git",
        child_dir
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
    );
    parent.git(&[
        "config",
        "-f",
        ".gitmodules",
        "submodule.libs/child.url",
        &relative,
    ])?;
    let sha = parent.commit("parent with child")?;
    Ok((parent, child, grandchild, sha))
}

#[tokio::test]
async fn submodules_are_checked_out_recursively_when_asked() -> anyhow::Result<()> {
    let (parent, _child, _grandchild, sha) = nested_submodules()?;
    let (cache, _root) = cache(Credentials::new());
    let url = parent.file_url();

    let checkout = cache.checkout(&url, &sha, &WITH_SUBMODULES).await?;
    let read = |p: &str| std::fs::read_to_string(checkout.path().join(p));
    assert_eq!(read("top.txt")?, "top\n");
    assert_eq!(read("libs/child/child.txt")?, "child\n");
    assert_eq!(read("libs/child/vendor/grandchild/deep.txt")?, "deep\n");

    let plain = cache
        .checkout(&url, &sha, &CheckoutOptions::default())
        .await?;
    let submodule_dir = plain.path().join("libs/child");
    assert!(submodule_dir.is_dir());
    assert_eq!(
        std::fs::read_dir(&submodule_dir)?.count(),
        0,
        "left empty, as git does"
    );
    Ok(())
}

/// Bytes of file contents and symlink targets under `dir`, as a checkout's limit counts them.
fn content_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let ty = e.file_type().unwrap();
            if ty.is_dir() {
                content_bytes(&e.path())
            } else if ty.is_symlink() {
                std::fs::read_link(e.path()).unwrap().as_os_str().len() as u64
            } else {
                e.metadata().unwrap().len()
            }
        })
        .sum()
}

#[tokio::test]
async fn checkouts_over_the_size_limit_are_refused_and_removed() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    repo.write("app/small.yaml", "a: 1\n")?;
    repo.write("app/big.bin", "x".repeat(100_000))?;
    repo.symlink("app/link.yaml", "small.yaml")?;
    let sha = repo.commit("a big file")?;
    let (cache, root) = cache(Credentials::new());
    let url = repo.file_url();
    let limited = |max_bytes| CheckoutOptions {
        max_bytes: Some(max_bytes),
        ..CheckoutOptions::default()
    };
    // 5 + 100,000 + 10 bytes: exactly the limit passes, a byte less does not.
    let checkout = cache.checkout(&url, &sha, &limited(100_015)).await?;
    assert_eq!(content_bytes(checkout.path()), 100_015);
    drop(checkout);
    for limit in [100_014, 50_000] {
        let err = cache
            .checkout(&url, &sha, &limited(limit))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, GitError::CheckoutTooLarge { limit: l, sha: s, .. } if *l == limit && *s == sha),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains(&format!("holds more than {limit} bytes of files")),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read_dir(root.path().join("checkouts"))?.count(),
        0,
        "refused checkouts leave nothing behind"
    );

    // Submodules count against the same limit, and the error is the superproject's.
    let (parent, _child, _grandchild, sha) = nested_submodules()?;
    let url = parent.file_url();
    let plain = cache
        .checkout(&url, &sha, &CheckoutOptions::default())
        .await?;
    let top_only = content_bytes(plain.path());
    let full = cache.checkout(&url, &sha, &WITH_SUBMODULES).await?;
    let with_submodules = content_bytes(full.path());
    assert!(with_submodules > top_only);
    let with_limit = |max_bytes| CheckoutOptions {
        max_bytes: Some(max_bytes),
        ..WITH_SUBMODULES
    };
    cache
        .checkout(&url, &sha, &with_limit(with_submodules))
        .await?;
    let err = cache
        .checkout(&url, &sha, &with_limit(with_submodules - 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, GitError::CheckoutTooLarge { sha: s, .. } if *s == sha),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn broken_submodules_are_errors_naming_the_path() -> anyhow::Result<()> {
    let (parent, child, _grandchild, _) = nested_submodules()?;
    parent.git(&[
        "config",
        "-f",
        ".gitmodules",
        "submodule.libs/child.url",
        "file:///nonexistent/child.git",
    ])?;
    let sha = parent.commit("break the submodule URL")?;
    let (cache, _root) = cache(Credentials::new());
    let err = cache
        .checkout(&parent.file_url(), &sha, &WITH_SUBMODULES)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, GitError::Submodule { path, .. } if path == Path::new("libs/child")),
        "{err}"
    );

    // A remote superproject may not pull in local repositories.
    let http = HttpServer::start(&parent, None)?;
    parent.git(&[
        "config",
        "-f",
        ".gitmodules",
        "submodule.libs/child.url",
        &child.file_url(),
    ])?;
    let sha = parent.commit("local submodule URL")?;
    let err = cache
        .checkout(&http.url(), &sha, &WITH_SUBMODULES)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("local URL"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_share_one_mirror() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let http = HttpServer::start(&repo, None)?;
    let (cache, root) = cache(Credentials::new());
    let url = http.url();

    let revisions = ["main", "dev", "v1.0.0", "v1.2.0", "1.*"];
    let expected = [
        (&h.third, "version: 3\n"),
        (&h.dev, "version: dev\n"),
        (&h.first, "version: 1\n"),
        (&h.second, "version: 2\n"),
        (&h.second, "version: 2\n"),
    ];
    let tasks = (0..24).map(|i| {
        let (cache, url) = (cache.clone(), url.clone());
        let revision = revisions[i % revisions.len()];
        tokio::spawn(async move {
            let resolved = cache.resolve(&url, revision).await?;
            let checkout = cache
                .checkout(&url, &resolved.sha, &CheckoutOptions::default())
                .await?;
            let content = std::fs::read_to_string(checkout.path().join("app/cm.yaml"))?;
            anyhow::Ok((i, resolved.sha, content))
        })
    });
    for result in futures::future::join_all(tasks).await {
        let (i, sha, content) = result??;
        let (want_sha, want_content) = expected[i % expected.len()];
        assert_eq!(
            (&sha, content.as_str()),
            (want_sha, want_content),
            "task {i}"
        );
    }
    let mirrors = std::fs::read_dir(root.path().join("mirrors"))?.count();
    assert_eq!(mirrors, 1, "one mirror for the URL");
    let left = std::fs::read_dir(root.path().join("checkouts"))?.count();
    assert_eq!(left, 0, "every checkout cleaned up");
    Ok(())
}
