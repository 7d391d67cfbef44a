//! Argo CD's dynamic cluster distribution (`ARGOCD_ENABLE_DYNAMIC_CLUSTER_DISTRIBUTION`): the
//! replica count is the controller Deployment's `spec.replicas`, and each replica claims a shard
//! in the ConfigMap `argocd-app-controller-shard-cm` under its hostname, renewing the claim's
//! heartbeat every `ARGOCD_CONTROLLER_HEARTBEAT_TIME` seconds (10). A shard whose heartbeat is
//! three periods old goes to a replica without one; when the Deployment shrinks, the mapping is
//! reset and claimed again. A replica whose shard or replica count changes redistributes the
//! clusters and looks at every app again.

use std::time::Duration;

use anyhow::Context as _;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

/// The ConfigMap of shard claims, as Argo CD names it.
pub const SHARD_CONFIG_MAP: &str = "argocd-app-controller-shard-cm";
const MAPPING_KEY: &str = "shardControllerMapping";
/// Argo CD retries a claim that raced another replica's this often.
const CONFLICT_RETRIES: usize = 3;

/// How this replica takes part.
#[derive(Clone, Debug)]
pub struct DynamicSharding {
    /// The controller Deployment whose `spec.replicas` is the number of shards.
    pub deployment: String,
    /// This replica's name in the claims (its hostname).
    pub hostname: String,
    /// The shard asked for (`ARGOCD_CONTROLLER_SHARD`), if any.
    pub shard: Option<i64>,
    pub heartbeat: Duration,
}

/// One entry of the mapping: Argo CD's `shardApplicationControllerMapping`, field for field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Claim {
    shard_number: i64,
    #[serde(default)]
    controller_name: String,
    /// RFC 3339, seconds; Go writes `null` for a shard never claimed.
    #[serde(default)]
    heartbeat_time: Option<String>,
}

impl Claim {
    fn stale(&self, now: Timestamp, timeout: Duration) -> bool {
        let Some(time) = self.heartbeat_time.as_deref() else {
            return true;
        };
        time.parse::<Timestamp>()
            .map(|beat| now.duration_since(beat).as_secs_f64() > timeout.as_secs_f64())
            .unwrap_or(true)
    }

    fn beat(&mut self, hostname: &str, now: Timestamp) {
        self.controller_name = hostname.to_string();
        self.heartbeat_time = Some(now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    }
}

fn unclaimed(replicas: i64) -> Vec<Claim> {
    (0..replicas.max(0))
        .map(|shard_number| Claim {
            shard_number,
            ..Claim::default()
        })
        .collect()
}

/// Argo CD's `getOrUpdateShardNumberForController`: the shard `hostname` holds (or was asked
/// for, or finds free or stale) and the mapping with its heartbeat renewed; -1 when every shard
/// is held by a live replica.
fn claim(
    mut mapping: Vec<Claim>,
    hostname: &str,
    replicas: i64,
    mut shard: i64,
    now: Timestamp,
    timeout: Duration,
) -> (i64, Vec<Claim>) {
    let missing = (mapping.len() as i64..replicas).map(|shard_number| Claim {
        shard_number,
        ..Claim::default()
    });
    mapping.extend(missing.collect::<Vec<_>>());
    if mapping.len() as i64 > replicas {
        mapping = unclaimed(replicas);
    }
    if shard != -1 && shard < replicas {
        if let Some(entry) = mapping.iter_mut().find(|c| c.shard_number == shard) {
            entry.beat(hostname, now);
        }
    } else if let Some(entry) = mapping.iter_mut().find(|c| c.controller_name == hostname) {
        shard = entry.shard_number;
        entry.beat(hostname, now);
    }
    if shard == -1
        && let Some(entry) = mapping
            .iter_mut()
            .find(|c| c.controller_name.is_empty() || c.stale(now, timeout))
    {
        shard = entry.shard_number;
        entry.beat(hostname, now);
    }
    (shard, mapping)
}

/// The number of shards: the Deployment's replicas.
pub async fn replicas(
    client: &kube::Client,
    namespace: &str,
    deployment: &str,
) -> anyhow::Result<i64> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let found = api.get(deployment).await.with_context(|| {
        format!("(dynamic cluster distribution) reading Deployment {deployment}")
    })?;
    let replicas = found.spec.and_then(|s| s.replicas).with_context(|| {
        format!("(dynamic cluster distribution) Deployment {deployment} has no replica count")
    })?;
    Ok(i64::from(replicas))
}

/// Argo CD's `GetOrUpdateShardFromConfigMap`: claims a shard of `replicas` (creating the
/// mapping if there is none) and renews its heartbeat; the shard, or -1 if none is free.
pub async fn heartbeat(
    client: &kube::Client,
    namespace: &str,
    dynamic: &DynamicSharding,
    replicas: i64,
) -> anyhow::Result<i64> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let timeout = dynamic.heartbeat * 3;
    let asked = dynamic.shard.unwrap_or(-1);
    for _ in 0..=CONFLICT_RETRIES {
        let now = Timestamp::now();
        let Some(mut config_map) = api.get_opt(SHARD_CONFIG_MAP).await? else {
            let shard = if (0..replicas).contains(&asked) {
                asked
            } else {
                0
            };
            let mut mapping = unclaimed(replicas);
            if let Some(entry) = mapping.get_mut(shard as usize) {
                entry.beat(&dynamic.hostname, now);
            }
            let created: ConfigMap = serde_json::from_value(serde_json::json!({
                "metadata": {"name": SHARD_CONFIG_MAP},
                "data": {MAPPING_KEY: serde_json::to_string(&mapping)?},
            }))?;
            match api.create(&PostParams::default(), &created).await {
                Ok(_) => return Ok(shard),
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(err) => return Err(err).context("creating the shard mapping ConfigMap"),
            }
        };
        let data = config_map.data.get_or_insert_default();
        let mapping: Vec<Claim> = match data.get(MAPPING_KEY) {
            Some(text) => serde_json::from_str(text)
                .with_context(|| format!("reading {MAPPING_KEY} of {SHARD_CONFIG_MAP}"))?,
            None => Vec::new(),
        };
        let (shard, mapping) = claim(mapping, &dynamic.hostname, replicas, asked, now, timeout);
        data.insert(MAPPING_KEY.into(), serde_json::to_string(&mapping)?);
        match api
            .replace(SHARD_CONFIG_MAP, &PostParams::default(), &config_map)
            .await
        {
            Ok(_) => return Ok(shard),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                warn!("another controller updated the shard mapping meanwhile; retrying");
            }
            Err(err) => return Err(err).context("updating the shard mapping ConfigMap"),
        }
    }
    anyhow::bail!("the shard mapping ConfigMap kept changing under this controller's claim")
}

/// The heartbeat loop: every period, the Deployment's replicas and this replica's claim;
/// `changed` is called with the new (shard, replicas) when either moved.
pub async fn follow(
    client: kube::Client,
    namespace: String,
    dynamic: DynamicSharding,
    mut current: (i64, i64),
    changed: impl Fn(i64, i64) + Send + 'static,
) {
    loop {
        tokio::time::sleep(dynamic.heartbeat).await;
        let next = async {
            let replicas = replicas(&client, &namespace, &dynamic.deployment).await?;
            let shard = heartbeat(&client, &namespace, &dynamic, replicas).await?;
            anyhow::Ok((shard, replicas))
        };
        match next.await {
            Ok(next) if next != current => {
                info!(
                    shard = next.0,
                    replicas = next.1,
                    "this controller's shard changed"
                );
                current = next;
                changed(next.0, next.1);
            }
            Ok(_) => {}
            Err(err) => warn!("dynamic cluster distribution: {err:#}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(30);

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    fn held(shard_number: i64, name: &str, second: i64) -> Claim {
        let mut claim = Claim {
            shard_number,
            ..Claim::default()
        };
        claim.beat(name, at(second));
        claim
    }

    #[test]
    fn the_mapping_reads_and_writes_as_argo_cd_does() {
        let text = r#"[{"ShardNumber":0,"ControllerName":"argocd-application-controller-hydrxyt","HeartbeatTime":"2024-01-01T00:00:10Z"},{"ShardNumber":1,"ControllerName":"","HeartbeatTime":null}]"#;
        let mapping: Vec<Claim> = serde_json::from_str(text).unwrap();
        assert_eq!(mapping[0].shard_number, 0);
        assert_eq!(mapping[1].heartbeat_time, None);
        assert_eq!(serde_json::to_string(&mapping).unwrap(), text);
        assert_eq!(
            held(0, "c", 0).heartbeat_time.as_deref(),
            Some("2027-01-15T08:00:00Z")
        );
    }

    #[test]
    fn a_replica_keeps_its_shard_takes_a_free_one_or_a_stale_one() {
        let mapping = vec![
            held(0, "a", 0),
            Claim {
                shard_number: 1,
                ..Claim::default()
            },
        ];
        // Its own shard, by hostname, with a fresh heartbeat.
        let (shard, renewed) = claim(mapping.clone(), "a", 2, -1, at(5), TIMEOUT);
        assert_eq!(shard, 0);
        assert_eq!(renewed[0], held(0, "a", 5));
        // A newcomer takes the free shard.
        let (shard, taken) = claim(mapping, "b", 2, -1, at(5), TIMEOUT);
        assert_eq!((shard, &taken[1]), (1, &held(1, "b", 5)));
        // None free: nothing until a heartbeat is three periods old.
        assert_eq!(claim(taken.clone(), "c", 2, -1, at(20), TIMEOUT).0, -1);
        let (shard, _) = claim(taken, "c", 2, -1, at(36), TIMEOUT);
        assert_eq!(shard, 0);
    }

    #[test]
    fn the_mapping_follows_the_replica_count() {
        let mapping = vec![held(0, "a", 0), held(1, "b", 0)];
        // Grown: new shards are added unclaimed.
        let (shard, grown) = claim(mapping.clone(), "c", 3, -1, at(1), TIMEOUT);
        assert_eq!((shard, grown.len()), (2, 3));
        // Shrunk: every claim starts over, the first replica to look takes shard 0.
        let (shard, shrunk) = claim(mapping, "b", 1, -1, at(1), TIMEOUT);
        assert_eq!((shard, shrunk), (0, vec![held(0, "b", 1)]));
        // A shard asked for is taken over whoever held it.
        let (shard, asked) = claim(
            vec![held(0, "a", 0), held(1, "b", 0)],
            "c",
            2,
            1,
            at(1),
            TIMEOUT,
        );
        assert_eq!((shard, &asked[1]), (1, &held(1, "c", 1)));
    }
}
