//! Built-in health checks, one module per kind, following gitops-engine's semantics.

mod apiservice;
mod application;
mod crd;
mod cronjob;
mod daemonset;
mod deployment;
mod hpa;
mod job;
mod load_balancer;
mod namespace;
mod pod;
mod pvc;
mod replicaset;
mod statefulset;
mod workflow;

use serde_json::Value;

use crate::object::GroupKind;
use crate::status::HealthStatus;

/// A built-in check: the object's health, or why the object could not be read.
pub(crate) type Check = fn(&Value) -> Result<HealthStatus, String>;

/// The built-in check for a group/kind; `None` for kinds Argo CD has no opinion about.
/// Versions are not distinguished: the fields read are the same in every served version.
pub(crate) fn check_for(gk: GroupKind<'_>) -> Option<Check> {
    let check: Check = match (gk.group, gk.kind) {
        ("apps" | "extensions", "Deployment") => deployment::check,
        ("apps", "StatefulSet") => statefulset::check,
        ("apps" | "extensions", "ReplicaSet") => replicaset::check,
        ("apps" | "extensions", "DaemonSet") => daemonset::check,
        ("networking.k8s.io" | "extensions", "Ingress") => load_balancer::ingress,
        ("", "Service") => load_balancer::service,
        ("", "PersistentVolumeClaim") => pvc::check,
        ("", "Pod") => pod::check,
        ("", "Namespace") => namespace::check,
        ("batch", "Job") => job::check,
        ("batch", "CronJob") => cronjob::check,
        ("autoscaling", "HorizontalPodAutoscaler") => hpa::check,
        ("apiregistration.k8s.io", "APIService") => apiservice::check,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd::check,
        ("argoproj.io", "Application") => application::check,
        ("argoproj.io", "Workflow") => workflow::check,
        _ => return None,
    };
    Some(check)
}
