//! Health of live objects: `ferry_health::assess` with the built-in checks (core kinds and the
//! CRD families) and with realistic Lua health scripts under the sandbox's limits, and
//! `app_health` over the objects together.
//!
//! Input, by its first byte:
//! - a printable character: the object as YAML or JSON text (a `kind: List` gives several);
//! - a control byte (below 0x20): an object built from the remaining bytes with `arbitrary`,
//!   its apiVersion and kind one of those with a built-in check and its fields drawn from the
//!   names those checks read, which reaches deeper than mutated text.

#![no_main]

use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use ferry_health::{AppRef, HealthChecks, ManagedResource, app_health, assess};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Number, Value};

/// Kinds with a built-in check.
const KINDS: [(&str, &str); 34] = [
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("apps/v1", "ReplicaSet"),
    ("v1", "Pod"),
    ("v1", "Service"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "Namespace"),
    ("networking.k8s.io/v1", "Ingress"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("autoscaling/v1", "HorizontalPodAutoscaler"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("apiregistration.k8s.io/v1", "APIService"),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    ("policy/v1", "PodDisruptionBudget"),
    ("argoproj.io/v1alpha1", "Application"),
    ("argoproj.io/v1alpha1", "Rollout"),
    ("argoproj.io/v1alpha1", "Workflow"),
    ("cert-manager.io/v1", "Certificate"),
    ("cert-manager.io/v1", "Issuer"),
    ("cert-manager.io/v1", "ClusterIssuer"),
    ("external-secrets.io/v1beta1", "ExternalSecret"),
    ("external-secrets.io/v1beta1", "SecretStore"),
    ("external-secrets.io/v1alpha1", "PushSecret"),
    ("bitnami.com/v1alpha1", "SealedSecret"),
    ("helm.toolkit.fluxcd.io/v2", "HelmRelease"),
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
    ("source.toolkit.fluxcd.io/v1", "GitRepository"),
    ("source.toolkit.fluxcd.io/v1beta2", "OCIRepository"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "ScaledJob"),
    ("kafka.strimzi.io/v1beta2", "Kafka"),
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"),
];

/// Field names the built-in checks read.
const KEYS: [&str; 48] = [
    "status",
    "spec",
    "metadata",
    "conditions",
    "type",
    "reason",
    "message",
    "phase",
    "replicas",
    "readyReplicas",
    "updatedReplicas",
    "availableReplicas",
    "currentReplicas",
    "observedGeneration",
    "generation",
    "paused",
    "strategy",
    "rollingUpdate",
    "partition",
    "updateStrategy",
    "desiredNumberScheduled",
    "updatedNumberScheduled",
    "numberAvailable",
    "containerStatuses",
    "initContainerStatuses",
    "state",
    "waiting",
    "terminated",
    "running",
    "restartPolicy",
    "exitCode",
    "loadBalancer",
    "ingress",
    "hostname",
    "ip",
    "suspend",
    "lastScheduleTime",
    "lastSuccessfulTime",
    "active",
    "succeeded",
    "failed",
    "health",
    "currentRevision",
    "updateRevision",
    "annotations",
    "deletionTimestamp",
    "finalizers",
    "canary",
];

/// Values the built-in checks compare against.
const WORDS: [&str; 24] = [
    "True",
    "False",
    "Unknown",
    "Ready",
    "Available",
    "Progressing",
    "Complete",
    "Failed",
    "Running",
    "Pending",
    "Succeeded",
    "Bound",
    "Lost",
    "Active",
    "Terminating",
    "Healthy",
    "Degraded",
    "Suspended",
    "Missing",
    "ProgressDeadlineExceeded",
    "CrashLoopBackOff",
    "OnDelete",
    "Never",
    "2024-01-02T03:04:05Z",
];

fn scalar(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0..=7u8)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(u.int_in_range(-2..=5i64)?),
        3 => Value::from(u.arbitrary::<i64>()?),
        4 => Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
        5 => Value::from(u.arbitrary::<u64>()?),
        6 => Value::String(u.arbitrary()?),
        _ => Value::String((*u.choose(&WORDS)?).to_string()),
    })
}

fn value(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    if depth > 6 {
        return scalar(u);
    }
    Ok(match u.int_in_range(0..=3u8)? {
        0 | 1 => scalar(u)?,
        2 => {
            let len = u.int_in_range(0..=3usize)?;
            Value::Array(
                (0..len)
                    .map(|_| value(u, depth + 1))
                    .collect::<Result<_>>()?,
            )
        }
        _ => object(u, depth + 1)?,
    })
}

fn object(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    let len = u.int_in_range(0..=5usize)?;
    let mut map = Map::new();
    for _ in 0..len {
        map.insert((*u.choose(&KEYS)?).to_string(), value(u, depth)?);
    }
    Ok(Value::Object(map))
}

fn structured(data: &[u8]) -> Option<Value> {
    let mut u = Unstructured::new(data);
    let (api_version, kind) = *u.choose(&KINDS).ok()?;
    let Value::Object(mut map) = object(&mut u, 0).ok()? else {
        return None;
    };
    map.insert("apiVersion".into(), api_version.into());
    map.insert("kind".into(), kind.into());
    Some(Value::Object(map))
}

fn textual(data: &[u8]) -> Option<Value> {
    let text = ferry_fuzz::text(data)?;
    serde_json::from_str(text)
        .ok()
        .or_else(|| serde_yaml::from_str(text).ok())
}

/// Checks with Lua scripts: Argo CD-style scripts for the kinds they were written for, and a
/// generic condition reader for every kind (so each object also goes through the sandbox).
fn lua_checks() -> &'static [HealthChecks] {
    static CHECKS: OnceLock<Vec<HealthChecks>> = OnceLock::new();
    CHECKS.get_or_init(|| {
        let with = |pattern: &str, script: &str| {
            HealthChecks::new()
                .with_lua(pattern, script)
                .expect("the scripts compile")
                .with_limits(ferry_fuzz::lua_limits())
        };
        vec![
            with("*", GENERIC),
            with(
                "*",
                include_str!("../../crates/ferry-health/tests/fixtures/lua/certificate.lua"),
            ),
        ]
    })
}

/// Argo CD's usual shape of a health script for a CRD with conditions.
const GENERIC: &str = r#"
local hs = {status = "Progressing", message = "Waiting"}
if obj.status ~= nil then
  if obj.status.conditions ~= nil then
    for i, condition in ipairs(obj.status.conditions) do
      if condition.type == "Ready" and condition.status == "False" then
        hs.status = "Degraded"
        hs.message = condition.message
        return hs
      end
      if condition.type == "Ready" and condition.status == "True" then
        hs.status = "Healthy"
        hs.message = tostring(condition.message) .. " " .. #obj.status.conditions
        return hs
      end
    end
  end
  if obj.status.phase ~= nil then
    hs.message = string.format("phase %s, %d replicas", tostring(obj.status.phase),
      tonumber(obj.status.replicas) or 0)
  end
end
return hs
"#;

fuzz_target!(|data: &[u8]| {
    let object = match data.first() {
        Some(first) if *first < 0x20 => structured(&data[1..]),
        Some(_) => textual(data),
        None => None,
    };
    let Some(object) = object else {
        return;
    };
    let objects = match object.get("items") {
        Some(Value::Array(items)) => items.iter().take(8).cloned().collect(),
        _ => vec![object],
    };
    let builtin = HealthChecks::new();
    for object in &objects {
        let _ = assess(object, &builtin);
        for checks in lua_checks() {
            let _ = assess(object, checks);
        }
    }
    let resources: Vec<ManagedResource<'_>> = objects
        .iter()
        .map(|o| ManagedResource {
            target: Some(o),
            live: Some(o),
        })
        .chain(objects.iter().map(|o| ManagedResource {
            target: None,
            live: Some(o),
        }))
        .collect();
    let app = AppRef {
        namespace: "argocd",
        name: "guestbook",
    };
    let _ = app_health(Some(app), &resources, &builtin);
});
