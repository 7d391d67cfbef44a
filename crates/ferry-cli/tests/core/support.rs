//! Running `ferry` against the test cluster, each test with its own control namespace (the
//! test's namespace) and its own cache directory.

use std::path::PathBuf;
use std::process::Output;

use anyhow::{Context, Result};
use ferry_testkit::cli::CliHome;
use ferry_testkit::git::{GitRepo, fixture_source_repos};
use ferry_testkit::kube::TestContext;
pub use ferry_testkit::process::texts;
use ferry_testkit::process::{failed, succeeded};
use ferry_types::{AppProject, Application};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::Value;
use tempfile::TempDir;

/// The user operations are initiated by in these tests.
pub const USER: &str = "tester";

pub struct Ferry {
    kubeconfig: PathBuf,
    pub namespace: String,
    cache: TempDir,
    home: CliHome,
    /// Set once the `default` project lists the fixture repositories.
    fixtures_allowed: tokio::sync::OnceCell<()>,
}

impl Ferry {
    pub fn new(ctx: &TestContext) -> Self {
        Self::in_namespace(ctx, ctx.namespace())
    }

    /// With another control namespace than the test's.
    pub fn in_namespace(ctx: &TestContext, namespace: &str) -> Self {
        Self {
            kubeconfig: ctx.kubeconfig().to_path_buf(),
            namespace: namespace.to_string(),
            cache: tempfile::tempdir().unwrap(),
            home: CliHome::new().unwrap(),
            fixtures_allowed: tokio::sync::OnceCell::new(),
        }
    }

    /// Makes the `default` project list the fixture repositories, once: projects permit
    /// `file://` repositories only through `file://` entries, never through `*`. Through the
    /// CLI, which first creates what any writing command creates (namespace, CRDs, the
    /// `default` project as Argo CD's), then replaces the project's spec with that default
    /// plus the entry.
    pub async fn allow_fixture_repos(&self) {
        self.fixtures_allowed
            .get_or_init(|| async {
                let mut project = AppProject::default_project(&self.namespace);
                project.spec.source_repos.push(fixture_source_repos());
                let file = self.cache.path().join("default-project.json");
                std::fs::write(&file, serde_json::to_vec(&project).unwrap()).unwrap();
                let file = file.to_str().unwrap();
                self.ok(&["proj", "create", "-f", file, "--upsert"]).await;
            })
            .await;
    }

    /// `ferry ARGS -N <namespace>` with the test cluster's kubeconfig.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        // No login context, kubeconfig or variable of the machine's user takes part.
        let mut command =
            tokio::process::Command::from(self.home.command(env!("CARGO_BIN_EXE_ferry")));
        command
            .args(args)
            .args(["-N", &self.namespace])
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("FERRY_CACHE_DIR", self.cache.path())
            .env("USER", USER)
            .kill_on_drop(true);
        command
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().await.unwrap()
    }

    /// Runs a command that must succeed; its stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        succeeded(&format!("ferry {args:?}"), &self.run(args).await)
    }

    /// Runs a command that must exit with `code`; its stdout.
    pub async fn exits(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args).await;
        let (stdout, stderr) = texts(&out);
        assert_eq!(
            out.status.code(),
            Some(code),
            "ferry {args:?}:\n{stderr}\n{stdout}"
        );
        stdout
    }

    /// Runs a command that must fail; its stderr.
    pub async fn fails(&self, args: &[&str]) -> String {
        failed(&format!("ferry {args:?}"), &self.run(args).await)
    }
}

/// A Git repository with one app directory `app` holding a ConfigMap (and whatever else the
/// test writes later).
pub fn app_repo() -> Result<GitRepo> {
    let repo = GitRepo::new()?;
    repo.write(
        "app/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  color: blue\n",
    )?;
    repo.commit("web app")?;
    Ok(repo)
}

/// `ferry app create NAME` for `app` in `repo`, deploying to the test namespace, plus `extra`
/// (the `default` project listing the fixture repositories).
pub async fn create_app(ferry: &Ferry, name: &str, repo: &GitRepo, extra: &[&str]) -> String {
    ferry.allow_fixture_repos().await;
    let url = repo.file_url();
    let args = [
        &[
            "app",
            "create",
            name,
            "--repo",
            &url,
            "--path",
            "app",
            "--dest-server",
            "https://kubernetes.default.svc",
            "--dest-namespace",
            &ferry.namespace,
        ][..],
        extra,
    ]
    .concat();
    ferry.ok(&args).await
}

/// A JSON merge patch on an app, as the controller (or a user) would write it.
pub async fn patch_app(apps: &Api<Application>, name: &str, patch: Value) -> Result<Application> {
    apps.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("patching app {name}"))
}

/// Removes an app's finalizers, the controller's job once it has deleted the resources; lets
/// a deleted app (and the test namespace) go.
pub async fn release(apps: &Api<Application>, name: &str) -> Result<()> {
    if apps.get_opt(name).await?.is_some() {
        patch_app(
            apps,
            name,
            serde_json::json!({"metadata": {"finalizers": null}}),
        )
        .await?;
    }
    Ok(())
}
