//! Strimzi: Kafka, KafkaTopic, KafkaUser, KafkaConnect, KafkaConnector and KafkaBridge. The
//! first of `NotReady` True (Degraded) or `Ready` True (Healthy) decides.

use serde_json::Value;

use super::conditions::{conditions, kind};
use crate::status::HealthStatus;

pub(super) fn check(obj: &Value) -> Result<HealthStatus, String> {
    let kind = kind(obj);
    for c in conditions(obj)?.unwrap_or_default() {
        // A Kafka cluster reports NotReady while its brokers are first created.
        let creating = kind == "Kafka" && c.reason() == "Creating";
        if c.is("NotReady") && c.is_true() && !creating {
            return Ok(HealthStatus::degraded(c.message()));
        }
        if c.is("Ready") && c.is_true() {
            return Ok(HealthStatus::healthy(""));
        }
    }
    // Argo CD's own wording for each kind.
    let waiting = match kind {
        "Kafka" => "Kafka Cluster",
        "KafkaTopic" => "Kafka Topic",
        "KafkaUser" => "Kafka User",
        "KafkaConnect" => "Kafka Connect",
        other => other,
    };
    Ok(HealthStatus::progressing(format!("Waiting for {waiting}")))
}
