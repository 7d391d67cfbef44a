//! Helm releases of the project's chart (charts/ferry) for the install stories, with the
//! toolchain's helm and a Helm home of their own.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use tempfile::TempDir;

use crate::TIMEOUT;

/// A Helm release of charts/ferry in a test's namespace, named after it. Dropping it uninstalls
/// it, also when the story fails: its ClusterRoles and ClusterRoleBindings would outlive the
/// namespace.
pub struct Release {
    pub name: String,
    helm: PathBuf,
    home: TempDir,
    kubeconfig: String,
    namespace: String,
    installed: bool,
}

impl Release {
    pub fn new(kubeconfig: &Path, namespace: &str) -> Result<Self> {
        Ok(Self {
            name: format!("ferry-{namespace}"),
            helm: ferry_sandbox::toolchain::bin_dir().join("helm"),
            home: tempfile::Builder::new().prefix("ferry-helm-").tempdir()?,
            kubeconfig: kubeconfig.to_string_lossy().into_owned(),
            namespace: namespace.to_string(),
            installed: false,
        })
    }

    /// A path in the release's own scratch directory.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    /// Writes `values` to a file of the release's own; its path, for `--values`.
    pub fn write_values(&self, values: &str) -> Result<String> {
        let path = self.scratch("values.yaml");
        std::fs::write(&path, values)?;
        Ok(path.to_string_lossy().into_owned())
    }

    /// Runs helm on the release's cluster and namespace, in the repository root; its stdout.
    pub fn helm(&self, args: &[&str]) -> Result<String> {
        let home = self.home.path();
        let out = Command::new(&self.helm)
            .args(["--kubeconfig", &self.kubeconfig])
            .args(["--namespace", &self.namespace])
            .args(args)
            .current_dir(repo_root())
            .env("HOME", home)
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .stdin(Stdio::null())
            .output()
            .context("running helm (build it with scripts/toolchain)")?;
        if !out.status.success() {
            bail!(
                "helm {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// `helm install` of charts/ferry with more `args` (`--set ...`, `--values ...`).
    pub fn install(&mut self, args: &[&str]) -> Result<()> {
        let mut all = vec!["install", &self.name, "charts/ferry"];
        all.extend_from_slice(args);
        self.helm(&all)?;
        self.installed = true;
        Ok(())
    }

    pub fn upgrade(&self, args: &[&str]) -> Result<()> {
        let mut all = vec!["upgrade", &self.name, "charts/ferry"];
        all.extend_from_slice(args);
        self.helm(&all).map(drop)
    }

    pub fn uninstall(&mut self) -> Result<()> {
        self.helm(&["uninstall", &self.name, "--wait"])?;
        self.installed = false;
        Ok(())
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if self.installed
            && let Err(err) = self.uninstall()
        {
            eprintln!(
                "warning: could not uninstall release {}: {err:#}",
                self.name
            );
        }
    }
}

/// Makes the Helm release `release` in `namespace` the owner of the CRDs already installed (other
/// tests install them), as an Argo CD user switching to the chart does with Argo CD's.
pub async fn adopt_crds(client: &kube::Client, release: &str, namespace: &str) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let patch = json!({"metadata": {
        "labels": {"app.kubernetes.io/managed-by": "Helm"},
        "annotations": {
            "meta.helm.sh/release-name": release,
            "meta.helm.sh/release-namespace": namespace,
        },
    }});
    for crd in ferry_types::crds()? {
        let name = crd.metadata.name.unwrap_or_default();
        crds.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("adopting CRD {name}"))?;
    }
    Ok(())
}

/// Polls `check` until it finds something, for up to [`TIMEOUT`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(found) = check().await? {
            return Ok(found);
        }
        if start.elapsed() > TIMEOUT {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The repository's root, where charts/ and deploy/ are.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
