//! Built-in health checks, one module per kind or CRD family: the core kinds follow
//! gitops-engine, the CRDs the health scripts Argo CD bundles for them.

mod apiservice;
mod application;
mod cert_manager;
mod conditions;
mod crd;
mod cronjob;
mod daemonset;
mod deployment;
mod external_secrets;
mod flux;
mod hpa;
mod job;
mod keda;
mod load_balancer;
mod namespace;
mod pdb;
mod pod;
mod pvc;
mod replicaset;
mod rollout;
mod sealed_secrets;
mod statefulset;
mod strimzi;
mod workflow;

use serde_json::Value;

use crate::status::HealthStatus;
use ferry_types::GroupKindRef;

/// A built-in check: the object's health, or why the object could not be read.
pub(crate) type Check = fn(&Value) -> Result<HealthStatus, String>;

/// The built-in check for a group/kind; `None` for kinds Argo CD has no opinion about.
/// Versions are not distinguished: the fields read are the same in every served version.
pub(crate) fn check_for(gk: GroupKindRef<'_>) -> Option<Check> {
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
        ("argoproj.io", "Rollout") => rollout::check,
        ("policy", "PodDisruptionBudget") => pdb::check,
        ("cert-manager.io", "Certificate") => cert_manager::certificate,
        ("cert-manager.io", "Issuer") => cert_manager::issuer,
        ("cert-manager.io", "ClusterIssuer") => cert_manager::cluster_issuer,
        ("external-secrets.io", "ExternalSecret") => external_secrets::external_secret,
        ("external-secrets.io", "ClusterExternalSecret") => {
            external_secrets::cluster_external_secret
        }
        ("external-secrets.io", "SecretStore" | "ClusterSecretStore" | "PushSecret") => {
            external_secrets::ready
        }
        ("bitnami.com", "SealedSecret") => sealed_secrets::check,
        ("helm.toolkit.fluxcd.io", "HelmRelease")
        | ("kustomize.toolkit.fluxcd.io", "Kustomization")
        | (
            "source.toolkit.fluxcd.io",
            "GitRepository" | "HelmRepository" | "OCIRepository" | "HelmChart" | "Bucket",
        ) => flux::check,
        ("keda.sh", "ScaledObject" | "ScaledJob") => keda::check,
        (
            "kafka.strimzi.io",
            "Kafka" | "KafkaTopic" | "KafkaUser" | "KafkaConnect" | "KafkaConnector"
            | "KafkaBridge",
        ) => strimzi::check,
        _ => return None,
    };
    Some(check)
}
