//! Sync tasks and their order: phase, then wave, then kind (Namespaces and CRDs early, workloads
//! late, as Helm and Argo CD order them), then name; a Namespace moves ahead of the first resource
//! in it and a CRD ahead of its first custom resource.

use std::cmp::Ordering;

use ferry_types::{ResourceKey, group_of};
use serde_json::Value;

use ferry_types::application::{HookType, SyncPhase};

use crate::hooks::Hook;
use crate::options::SyncOptionSet;

/// Kinds in apply order; kinds not listed come after all of these.
const KIND_ORDER: &[&str] = &[
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
];

fn kind_rank(kind: &str) -> usize {
    KIND_ORDER
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(KIND_ORDER.len())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Apply,
    Prune,
}

/// One step of a sync.
#[derive(Clone, Debug)]
pub struct Task {
    pub action: Action,
    /// The desired object (Apply) or the live one (Prune). Hooks with `generateName` get their
    /// name when created.
    pub object: Value,
    pub phase: SyncPhase,
    pub wave: i32,
    pub hook_type: Option<HookType>,
    pub hook: Hook,
    pub options: SyncOptionSet,
}

impl Task {
    pub fn key(&self) -> ResourceKey {
        let metadata = &self.object["metadata"];
        let name = metadata["name"]
            .as_str()
            .or_else(|| metadata["generateName"].as_str())
            .unwrap_or_default();
        ResourceKey::new(
            group_of(self.api_version()),
            self.kind(),
            metadata["namespace"].as_str().unwrap_or_default(),
            name,
        )
    }

    pub fn api_version(&self) -> &str {
        self.object["apiVersion"].as_str().unwrap_or_default()
    }

    pub fn kind(&self) -> &str {
        self.object["kind"].as_str().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.object["metadata"]["name"].as_str().unwrap_or_default()
    }

    pub fn namespace(&self) -> &str {
        self.object["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
    }

    pub fn is_hook(&self) -> bool {
        self.hook_type.is_some()
    }

    fn cmp_order(&self, other: &Task) -> Ordering {
        (self.phase, self.wave)
            .cmp(&(other.phase, other.wave))
            .then_with(|| kind_rank(self.kind()).cmp(&kind_rank(other.kind())))
            .then_with(|| self.name().cmp(other.name()))
    }
}

/// Sorts tasks into execution order.
pub fn sort(tasks: &mut [Task]) {
    tasks.sort_by(Task::cmp_order);
    // Namespaces before the resources that live in them.
    adjust_dependencies(
        tasks,
        |t| {
            (t.kind() == "Namespace" && group_of(t.api_version()).is_empty())
                .then(|| t.name().to_string())
        },
        |t| (!t.namespace().is_empty()).then(|| t.namespace().to_string()),
    );
    // CRDs before their custom resources.
    adjust_dependencies(
        tasks,
        |t| {
            if t.kind() != "CustomResourceDefinition" {
                return None;
            }
            let group = t.object.pointer("/spec/group")?.as_str()?;
            let kind = t.object.pointer("/spec/names/kind")?.as_str()?;
            Some(format!("{group}/{kind}"))
        },
        |t| Some(format!("{}/{}", group_of(t.api_version()), t.kind())),
    );
}

/// Moves each dependency (as `provides` names it) in front of the first task that `needs` it,
/// taking that task's phase and wave. Only apply tasks take part: deletions have no such order.
fn adjust_dependencies(
    tasks: &mut [Task],
    provides: impl Fn(&Task) -> Option<String>,
    needs: impl Fn(&Task) -> Option<String>,
) {
    let mut first_user: std::collections::HashMap<String, usize> = Default::default();
    for i in 0..tasks.len() {
        if tasks[i].action != Action::Apply {
            continue;
        }
        if let Some(dep) = provides(&tasks[i]) {
            if let Some(&index) = first_user.get(&dep) {
                let (phase, wave) = (tasks[index].phase, tasks[index].wave);
                tasks[i].phase = phase;
                tasks[i].wave = wave;
                tasks[index..=i].rotate_right(1);
                for position in first_user.values_mut() {
                    if *position >= index {
                        *position += 1;
                    }
                }
            }
        } else if let Some(dep) = needs(&tasks[i]) {
            first_user.entry(dep).or_insert(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        phase: SyncPhase,
        wave: i32,
    ) -> Task {
        let mut object =
            json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}});
        if !namespace.is_empty() {
            object["metadata"]["namespace"] = json!(namespace);
        }
        Task {
            action: Action::Apply,
            object,
            phase,
            wave,
            hook_type: None,
            hook: Hook::default(),
            options: SyncOptionSet::default(),
        }
    }

    fn names(tasks: &[Task]) -> Vec<String> {
        tasks
            .iter()
            .map(|t| format!("{}/{}", t.kind(), t.name()))
            .collect()
    }

    #[test]
    fn phase_then_wave_then_kind_then_name() {
        let mut tasks = vec![
            task("apps/v1", "Deployment", "ns", "b", SyncPhase::Sync, 0),
            task("v1", "Service", "ns", "z", SyncPhase::Sync, 0),
            task("apps/v1", "Deployment", "ns", "a", SyncPhase::Sync, 0),
            task("batch/v1", "Job", "ns", "migrate", SyncPhase::PreSync, 5),
            task("v1", "ConfigMap", "ns", "late", SyncPhase::Sync, 1),
            task("example.com/v1", "Widget", "ns", "w", SyncPhase::Sync, 0),
            task("batch/v1", "Job", "ns", "notify", SyncPhase::PostSync, -1),
        ];
        sort(&mut tasks);
        assert_eq!(
            names(&tasks),
            [
                "Job/migrate",
                "Service/z",
                "Deployment/a",
                "Deployment/b",
                "Widget/w",
                "ConfigMap/late",
                "Job/notify"
            ]
        );
    }

    #[test]
    fn namespaces_and_crds_move_ahead_of_their_users() {
        let mut tasks = vec![
            task("v1", "ConfigMap", "team", "settings", SyncPhase::Sync, -1),
            task("example.com/v1", "Widget", "team", "w", SyncPhase::Sync, -1),
            task("v1", "Namespace", "", "team", SyncPhase::Sync, 0),
            task(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "",
                "widgets.example.com",
                SyncPhase::Sync,
                0,
            ),
        ];
        tasks[3].object["spec"] = json!({"group": "example.com", "names": {"kind": "Widget"}});
        sort(&mut tasks);
        assert_eq!(
            names(&tasks),
            [
                "Namespace/team",
                "ConfigMap/settings",
                "CustomResourceDefinition/widgets.example.com",
                "Widget/w"
            ]
        );
        assert_eq!(
            tasks[0].wave, -1,
            "the namespace takes the wave of its first user"
        );
        assert_eq!(tasks[2].wave, -1);
    }
}
