//! A real Kubernetes API for tests: the shared `test` sandbox (started on first use, reused by
//! every test binary after that) or the cluster named by `FERRY_TEST_KUBECONFIG`, with a fresh
//! namespace per test that is deleted when the test's context is dropped.

use std::path::{Path, PathBuf};
use std::thread;

use anyhow::{Context, Result};
use ferry_sandbox::{Sandbox, UpOptions};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use rand::distr::{Alphanumeric, SampleString};
use serde_json::json;
use tokio::sync::OnceCell;

/// Label on every namespace a test creates, so leftovers can be found and removed.
pub const TEST_NAMESPACE_LABEL: &str = "ferry.dev/test";

static KUBECONFIG: OnceCell<PathBuf> = OnceCell::const_new();

/// The kubeconfig of the cluster tests run against, starting the shared sandbox if needed.
pub async fn kubeconfig() -> Result<&'static Path> {
    let path = KUBECONFIG
        .get_or_try_init(|| async {
            if let Some(path) = std::env::var_os("FERRY_TEST_KUBECONFIG") {
                return Ok(PathBuf::from(path));
            }
            let sandbox = Sandbox::named("test")?;
            sandbox
                .up(&UpOptions::default())
                .await
                .context("starting the test sandbox")?;
            anyhow::Ok(sandbox.kubeconfig())
        })
        .await?;
    Ok(path)
}

/// A client for the test cluster. Clients are cheap; make one per test (a client is bound to the
/// tokio runtime it was made in, and every `#[tokio::test]` has its own).
pub async fn client() -> Result<kube::Client> {
    ferry_sandbox::client_for(kubeconfig().await?).await
}

/// One test's slice of the cluster.
pub struct TestContext {
    client: kube::Client,
    namespace: String,
    kubeconfig: PathBuf,
}

impl TestContext {
    /// Connects to the test cluster and creates a fresh namespace.
    pub async fn new() -> Result<Self> {
        Self::in_cluster(kubeconfig().await?.to_path_buf()).await
    }

    /// A fresh namespace in the sandbox with a real node (see [`crate::real_node`]).
    pub async fn on_real_node() -> Result<Self> {
        Self::in_cluster(crate::real_node::kubeconfig().await?.to_path_buf()).await
    }

    /// A fresh namespace in `sandbox`, started if needed: a sandbox of the test's own, for
    /// faults that would disturb other tests.
    pub async fn in_sandbox(sandbox: &Sandbox) -> Result<Self> {
        sandbox
            .up(&UpOptions::default())
            .await
            .with_context(|| format!("starting sandbox {}", sandbox.name()))?;
        Self::in_cluster(sandbox.kubeconfig()).await
    }

    async fn in_cluster(kubeconfig: PathBuf) -> Result<Self> {
        let client = ferry_sandbox::client_for(&kubeconfig).await?;
        let suffix = Alphanumeric
            .sample_string(&mut rand::rng(), 8)
            .to_lowercase();
        let namespace = format!("t-{suffix}");
        let object: Namespace = serde_json::from_value(json!({
            "metadata": {"name": namespace, "labels": {TEST_NAMESPACE_LABEL: "true"}}
        }))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &object)
            .await
            .with_context(|| format!("creating test namespace {namespace}"))?;
        Ok(Self {
            client,
            namespace,
            kubeconfig,
        })
    }

    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A namespaced API in this test's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
}

impl Drop for TestContext {
    /// Deletes the namespace. The test's runtime may already be shutting down, so this runs on a
    /// runtime of its own in a helper thread.
    fn drop(&mut self) {
        let namespace = std::mem::take(&mut self.namespace);
        let kubeconfig = self.kubeconfig.clone();
        let cleanup = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let client = ferry_sandbox::client_for(&kubeconfig).await?;
                Api::<Namespace>::all(client)
                    .delete(&namespace, &DeleteParams::background())
                    .await?;
                anyhow::Ok(())
            })
        });
        if let Ok(Err(err)) = cleanup.join() {
            eprintln!("warning: could not delete a test namespace: {err:#}");
        }
    }
}
