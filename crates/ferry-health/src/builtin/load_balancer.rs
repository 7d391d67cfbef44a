//! Service and Ingress: both are only healthy once a load balancer gave them an address
//! (for a Service, only when it is of type `LoadBalancer`).

use serde::Deserialize;
use serde_json::Value;

use crate::object::read;
use crate::status::HealthStatus;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Exposed {
    spec: Option<Spec>,
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Spec {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Status {
    load_balancer: Option<LoadBalancerStatus>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoadBalancerStatus {
    ingress: Option<Vec<LoadBalancerIngress>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoadBalancerIngress {
    ip: Option<String>,
    hostname: Option<String>,
}

impl Exposed {
    fn address(&self) -> Option<&str> {
        let ingress = self
            .status
            .as_ref()?
            .load_balancer
            .as_ref()?
            .ingress
            .as_ref()?;
        ingress.iter().find_map(|entry| {
            [entry.ip.as_deref(), entry.hostname.as_deref()]
                .into_iter()
                .flatten()
                .find(|address| !address.is_empty())
        })
    }

    fn load_balancer_health(&self) -> HealthStatus {
        match self.address() {
            Some(address) => HealthStatus::healthy(format!("Load balancer address: {address}")),
            None => HealthStatus::progressing("Waiting for the load balancer to assign an address"),
        }
    }
}

pub(super) fn service(obj: &Value) -> Result<HealthStatus, String> {
    let service: Exposed = read(obj)?;
    let is_load_balancer =
        service.spec.as_ref().and_then(|s| s.kind.as_deref()) == Some("LoadBalancer");
    Ok(if is_load_balancer {
        service.load_balancer_health()
    } else {
        HealthStatus::healthy("")
    })
}

pub(super) fn ingress(obj: &Value) -> Result<HealthStatus, String> {
    Ok(read::<Exposed>(obj)?.load_balancer_health())
}
