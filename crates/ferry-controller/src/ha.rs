//! The command line of high availability: leader election, and sharding with Argo CD's
//! flag and environment variables, so an Argo CD controller's manifests configure ferry alike.

use std::time::Duration;

use ferry_leader::LeaderElection;

use crate::dynamic_shards::DynamicSharding;
use crate::sharding::{Algorithm, REPLICAS_ENV, SHARD_ENV, SHARDING_ALGORITHM_ENV, ShardSettings};

#[derive(clap::Args, Clone, Debug)]
pub struct HaArgs {
    /// Reconcile only while holding this shard's Lease
    /// (`ferry-application-controller-<shard>`); other replicas of the shard wait as standbys.
    #[arg(long, env = "FERRY_LEADER_ELECT")]
    pub leader_elect: bool,
    /// Seconds a standby waits after the leader's last renewal before taking the Lease.
    #[arg(long, env = "FERRY_LEADER_ELECT_LEASE_DURATION", default_value_t = 15)]
    pub leader_elect_lease_duration: u64,
    /// Seconds after its last renewal at which a leader that could not renew stops.
    #[arg(long, env = "FERRY_LEADER_ELECT_RENEW_DEADLINE", default_value_t = 10)]
    pub leader_elect_renew_deadline: u64,
    /// Seconds between the leader's renewals.
    #[arg(long, env = "FERRY_LEADER_ELECT_RETRY_PERIOD", default_value_t = 2)]
    pub leader_elect_retry_period: u64,
    /// This replica's identity in the Lease (default: hostname and a random suffix).
    #[arg(long, env = "FERRY_LEADER_ELECT_IDENTITY")]
    pub leader_elect_identity: Option<String>,
    /// How clusters are distributed among the shards.
    #[arg(long, env = SHARDING_ALGORITHM_ENV, value_enum, default_value = "legacy")]
    pub sharding_method: Algorithm,
    /// Number of shards (Argo CD's controller replicas); 0 or 1: no sharding.
    #[arg(long, env = REPLICAS_ENV, default_value_t = 0)]
    pub controller_replicas: i64,
    /// This replica's shard (default: the number ending the hostname, as a StatefulSet's pods
    /// are named).
    #[arg(long, env = SHARD_ENV, allow_negative_numbers = true)]
    pub controller_shard: Option<i64>,
    /// Argo CD's dynamic cluster distribution: the shards are the controller Deployment's
    /// replicas, each replica claiming one in the ConfigMap argocd-app-controller-shard-cm.
    #[arg(long, env = "ARGOCD_ENABLE_DYNAMIC_CLUSTER_DISTRIBUTION")]
    pub dynamic_cluster_distribution_enabled: bool,
    /// The controller Deployment (dynamic distribution).
    #[arg(
        long,
        env = "ARGOCD_APPLICATION_CONTROLLER_NAME",
        default_value = "ferry-application-controller"
    )]
    pub controller_deployment: String,
    /// Seconds between shard claim heartbeats (dynamic distribution); a claim three times as
    /// old may be taken over.
    #[arg(long, env = "ARGOCD_CONTROLLER_HEARTBEAT_TIME", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(10..=60))]
    pub controller_heartbeat_time: u64,
    /// This replica's name in the shard mapping and for the hostname's ordinal (default: the
    /// host's name, a pod's name in a cluster).
    #[arg(long, env = "FERRY_CONTROLLER_HOSTNAME")]
    pub controller_hostname: Option<String>,
}

impl HaArgs {
    /// Refuses settings that contradict each other.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !(self.leader_elect && self.dynamic_cluster_distribution_enabled),
            "--leader-elect and dynamic cluster distribution exclude each other: with dynamic \
             distribution a replica takes over a shard whose heartbeat stopped"
        );
        Ok(())
    }

    fn hostname(&self) -> String {
        self.controller_hostname
            .clone()
            .unwrap_or_else(ferry_leader::hostname)
    }

    pub fn shard_settings(&self) -> ShardSettings {
        ShardSettings::resolve(
            self.controller_replicas,
            self.controller_shard,
            &self.hostname(),
            self.sharding_method,
        )
    }

    /// Dynamic distribution, if enabled.
    pub fn dynamic(&self) -> Option<DynamicSharding> {
        self.dynamic_cluster_distribution_enabled
            .then(|| DynamicSharding {
                deployment: self.controller_deployment.clone(),
                hostname: self.hostname(),
                shard: self.controller_shard,
                heartbeat: Duration::from_secs(self.controller_heartbeat_time),
            })
    }

    /// The election this replica takes part in, if `--leader-elect`.
    pub fn election(&self, namespace: &str, shard: i64) -> Option<LeaderElection> {
        self.leader_elect.then(|| LeaderElection {
            namespace: namespace.to_string(),
            lease: lease_name(shard),
            identity: self
                .leader_elect_identity
                .clone()
                .unwrap_or_else(ferry_leader::default_identity),
            lease_duration: Duration::from_secs(self.leader_elect_lease_duration),
            renew_deadline: Duration::from_secs(self.leader_elect_renew_deadline),
            retry_period: Duration::from_secs(self.leader_elect_retry_period),
        })
    }
}

/// The Lease the controllers of `shard` compete for: replicas of one shard elect one leader, and
/// the shards run side by side.
pub fn lease_name(shard: i64) -> String {
    format!("ferry-application-controller-{shard}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_shard_has_its_lease() {
        assert_eq!(super::lease_name(3), "ferry-application-controller-3");
    }
}
