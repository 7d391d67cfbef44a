//! Two independent sandboxes run side by side, a second `up` reuses a running one in well under
//! a second, and `down` stops every component.

use std::time::{Duration, Instant};

use ferry_sandbox::{Sandbox, Started, UpOptions};
use k8s_openapi::api::core::v1::Node;
use kube::Api;

#[tokio::test]
async fn independent_sandboxes_start_reuse_and_stop() -> anyhow::Result<()> {
    let id = std::process::id();
    let a = Sandbox::named(&format!("it-a-{id}"))?;
    let b = Sandbox::named(&format!("it-b-{id}"))?;
    let _cleanup = [Cleanup(&a), Cleanup(&b)];
    let opts = UpOptions {
        nodes: 1,
        ..Default::default()
    };

    let (started_a, started_b) = tokio::join!(a.up(&opts), b.up(&opts));
    assert_eq!(started_a?, Started::Fresh);
    assert_eq!(started_b?, Started::Fresh);

    let server = |s: &Sandbox| -> anyhow::Result<String> {
        let config = kube::config::Kubeconfig::read_from(s.kubeconfig())?;
        Ok(config.clusters[0]
            .cluster
            .as_ref()
            .and_then(|c| c.server.clone())
            .unwrap_or_default())
    };
    assert_ne!(
        server(&a)?,
        server(&b)?,
        "each sandbox listens on its own port"
    );
    for sandbox in [&a, &b] {
        let nodes: Api<Node> = Api::all(sandbox.client().await?);
        assert_eq!(nodes.list(&Default::default()).await?.items.len(), 1);
        assert!(sandbox.status().iter().all(|c| c.pid.is_some()));
    }

    let again = Instant::now();
    assert_eq!(a.up(&opts).await?, Started::Reused);
    assert!(
        again.elapsed() < Duration::from_secs(2),
        "reuse took {:?}",
        again.elapsed()
    );

    for sandbox in [&a, &b] {
        sandbox.down()?;
        assert!(sandbox.status().iter().all(|c| c.pid.is_none()));
    }
    Ok(())
}

/// Stops a sandbox the test started and removes its directory when the test ends, also when
/// it fails half-way: a failed run leaves no control plane behind.
struct Cleanup<'a>(&'a Sandbox);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if let Err(err) = self.0.down() {
            eprintln!("stopping sandbox {}: {err:#}", self.0.name());
        }
        let _ = std::fs::remove_dir_all(self.0.dir());
    }
}

#[test]
fn names_are_checked() {
    assert!(Sandbox::named("ok-name_1").is_ok());
    assert!(Sandbox::named("../escape").is_err());
    assert!(Sandbox::named("").is_err());
}
