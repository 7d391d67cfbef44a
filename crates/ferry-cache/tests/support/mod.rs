//! Helpers for the cache's tests against the sandbox control plane.

use std::future::Future;
use std::path::Path;
use std::thread;
use std::time::Duration;

use anyhow::{Result, bail};
use ferry_cache::{CacheEvent, Change, ResourceKey};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use tokio::sync::broadcast::{self, error::RecvError};

/// Long enough for a busy 2-core machine running several test binaries.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Polls `check` until it yields a value, failing with `what` after `TIMEOUT`.
pub async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(value) = check() {
            return Ok(value);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after {TIMEOUT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Retries an API call that can fail briefly (a fresh CRD not yet served everywhere).
pub async fn retry<T, F, Fut>(what: &str, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = kube::Result<T>>,
{
    let mut last = None;
    for _ in 0..100 {
        match call().await {
            Ok(value) => return Ok(value),
            Err(err) => last = Some(err),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what} kept failing: {:?}", last)
}

/// The next event about `key` with the given change.
pub async fn event_for(
    events: &mut broadcast::Receiver<CacheEvent>,
    key: &ResourceKey,
    change: Change,
) -> Result<CacheEvent> {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) if &event.key == key && event.change == change => return Ok(event),
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => bail!("the cache's event channel closed"),
            }
        }
    };
    match tokio::time::timeout(TIMEOUT, wait).await {
        Ok(result) => result,
        Err(_) => bail!("no {change:?} event for {key} within {TIMEOUT:?}"),
    }
}

/// Deletes a CRD when dropped, so a failing test leaves no API group behind.
pub struct CrdCleanup {
    pub name: String,
    pub kubeconfig: std::path::PathBuf,
}

impl CrdCleanup {
    pub fn new(name: &str, kubeconfig: &Path) -> Self {
        Self {
            name: name.to_string(),
            kubeconfig: kubeconfig.to_path_buf(),
        }
    }
}

impl Drop for CrdCleanup {
    fn drop(&mut self) {
        let name = self.name.clone();
        let kubeconfig = self.kubeconfig.clone();
        // The test's runtime may be shutting down: use a runtime of our own.
        let cleanup = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let client = ferry_sandbox::client_for(&kubeconfig).await?;
                let crds: Api<CustomResourceDefinition> = Api::all(client);
                match crds.delete(&name, &Default::default()).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
                    Err(err) => Err(anyhow::Error::from(err)),
                }
            })
        });
        if let Ok(Err(err)) = cleanup.join() {
            eprintln!("warning: could not delete CRD {}: {err:#}", self.name);
        }
    }
}
