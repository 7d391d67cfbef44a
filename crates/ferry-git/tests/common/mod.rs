//! Shared fixtures for the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use ferry_git::{Credentials, RepoCache};
use ferry_testkit::git::GitRepo;
use tempfile::TempDir;

/// A cache in its own directory (kept alive by the returned guard).
pub fn cache(creds: Credentials) -> (RepoCache, TempDir) {
    let root = tempfile::tempdir().expect("temp dir");
    (RepoCache::new(root.path(), creds), root)
}

/// Commits of [`history`], oldest first.
pub struct History {
    pub first: String,
    pub second: String,
    pub third: String,
    pub dev: String,
}

/// main: first (v1.0.0, lightweight) -> second (v1.2.0, annotated; v1.2.1-rc.1) -> third (v2.0.0)
/// dev:  second -> dev commit
pub fn history(repo: &GitRepo) -> anyhow::Result<History> {
    repo.write("app/cm.yaml", "version: 1\n")?;
    let first = repo.commit("first")?;
    repo.tag("v1.0.0")?;
    repo.write("app/cm.yaml", "version: 2\n")?;
    let second = repo.commit("second")?;
    repo.annotated_tag("v1.2.0", "release 1.2.0")?;
    repo.tag("v1.2.1-rc.1")?;
    repo.switch("dev")?;
    repo.write("app/cm.yaml", "version: dev\n")?;
    let dev = repo.commit("dev work")?;
    repo.switch("main")?;
    repo.write("app/cm.yaml", "version: 3\n")?;
    let third = repo.commit("third")?;
    repo.tag("v2.0.0")?;
    Ok(History {
        first,
        second,
        third,
        dev,
    })
}
