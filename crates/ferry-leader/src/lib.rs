//! Leader election on a `coordination.k8s.io/v1` Lease, so standbys can wait beside the
//! replica that reconciles and take over when it dies.
//!
//! Built on `kube-lease-manager` (same kube and k8s-openapi versions as the workspace; server-side
//! apply makes two candidates' writes conflict instead of both winning). The timings follow
//! client-go's leader election, whose defaults (15 s / 10 s / 2 s) Argo CD's controllers use:
//! - the leader renews every `retry_period`;
//! - a renewal that fails, or that takes longer than `renew_deadline - retry_period`, ends the
//!   leadership at once: the leader stands down by `renew_deadline` after its last renewal,
//!   before `lease_duration` lets a standby in;
//! - a standby takes the Lease when `lease_duration` has passed since its last renewal.
//!
//! A replica that lost the Lease must stop writing before another replica starts: a binary
//! exits when [`Leadership::lost`] returns (as controller-runtime's managers do), and the new
//! leader picks up where it left (the application controller resumes the operations left
//! running from the Applications' status).

use std::time::Duration;

use anyhow::{Context as _, bail};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tracing::{info, warn};

/// How a replica takes part in the election.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    /// Namespace of the Lease (the control namespace).
    pub namespace: String,
    /// Name of the Lease.
    pub lease: String,
    /// This replica's name in the Lease's `holderIdentity`; unique among the candidates.
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// A unique identity for this process: the host (the pod's name in a cluster) and a random
/// suffix, as client-go does, so two replicas on one host never mistake each other's renewals.
pub fn default_identity() -> String {
    format!("{}_{:08x}", hostname(), rand::random::<u32>())
}

/// The host's name, as Go's `os.Hostname` reads it (a pod's name in a cluster).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

impl LeaderElection {
    /// The timings in whole seconds (the Lease's unit), checked as client-go checks them.
    fn seconds(&self) -> anyhow::Result<(u64, u64, u64)> {
        let (duration, deadline, retry) = (
            self.lease_duration.as_secs(),
            self.renew_deadline.as_secs(),
            self.retry_period.as_secs(),
        );
        if retry == 0 || deadline <= retry || duration <= deadline {
            bail!(
                "leader election needs lease duration ({duration} s) > renew deadline \
                 ({deadline} s) > retry period ({retry} s) > 0"
            );
        }
        Ok((duration, deadline, retry))
    }

    /// Waits until this replica holds the Lease. `config` is the connection to the cluster
    /// holding it; its timeouts are set here so a hanging renewal counts as a failed one.
    pub async fn acquire(&self, mut config: kube::Config) -> anyhow::Result<Leadership> {
        let (duration, deadline, retry) = self.seconds()?;
        let request_limit = Duration::from_secs(deadline - retry);
        config.connect_timeout = Some(request_limit);
        config.read_timeout = Some(request_limit);
        config.write_timeout = Some(request_limit);
        let client = kube::Client::try_from(config).context("building the Lease client")?;
        let manager = LeaseManagerBuilder::new(client, &self.lease)
            .with_namespace(&self.namespace)
            .with_identity(&self.identity)
            .with_duration(duration)
            // Renewing when only `duration - retry` is left: every `retry` seconds.
            .with_grace(duration - retry)
            .build()
            .await
            .with_context(|| format!("preparing Lease {}", self.lease))?;
        info!(lease = %self.lease, identity = %self.identity, "waiting to lead");
        loop {
            match manager.changed().await {
                Ok(true) => break,
                Ok(false) => {}
                Err(err) => {
                    warn!(lease = %self.lease, "leader election: {err}");
                    tokio::time::sleep(self.retry_period).await;
                }
            }
        }
        info!(lease = %self.lease, identity = %self.identity, "leading");
        Ok(Leadership {
            manager,
            lease: self.lease.clone(),
        })
    }
}

/// This replica holds the Lease (and keeps renewing it while [`Leadership::lost`] is polled).
pub struct Leadership {
    manager: LeaseManager,
    lease: String,
}

impl Leadership {
    /// Renews the Lease until that fails or another replica holds it; why leadership ended.
    pub async fn lost(&self) -> String {
        loop {
            match self.manager.changed().await {
                Ok(true) => {}
                Ok(false) => return format!("another replica holds Lease {}", self.lease),
                Err(err) => return format!("renewing Lease {} failed: {err}", self.lease),
            }
        }
    }

    /// Exits the process as soon as leadership is lost (in the background): another replica
    /// may lead from then on, and this one must stop writing at once.
    pub fn exit_when_lost(self: &std::sync::Arc<Self>) {
        let leadership = self.clone();
        tokio::spawn(async move {
            let why = leadership.lost().await;
            tracing::error!("no longer the leader ({why}); exiting");
            std::process::exit(1);
        });
    }

    /// Gives the Lease up (at a graceful shutdown): a standby takes it the next time it looks
    /// (when the Lease it last saw would have expired), without waiting for this replica's last
    /// renewal to expire too.
    pub async fn release(&self) {
        match self.manager.release().await {
            Ok(()) => info!(lease = %self.lease, "released the lease"),
            Err(err) => warn!(lease = %self.lease, "releasing the lease: {err}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn election(duration: u64, deadline: u64, retry: u64) -> LeaderElection {
        LeaderElection {
            namespace: "argocd".into(),
            lease: "ferry-application-controller-0".into(),
            identity: default_identity(),
            lease_duration: Duration::from_secs(duration),
            renew_deadline: Duration::from_secs(deadline),
            retry_period: Duration::from_secs(retry),
        }
    }

    #[test]
    fn timings_must_leave_the_leader_time_to_stand_down() {
        assert_eq!(election(15, 10, 2).seconds().unwrap(), (15, 10, 2));
        for (duration, deadline, retry) in [(10, 10, 2), (15, 2, 2), (15, 10, 0), (5, 10, 2)] {
            let err = election(duration, deadline, retry).seconds().unwrap_err();
            assert!(err.to_string().contains("lease duration"), "{err}");
        }
    }

    #[test]
    fn identities_are_unique_per_process_start() {
        assert_ne!(default_identity(), default_identity());
    }
}
