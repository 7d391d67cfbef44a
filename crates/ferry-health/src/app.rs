//! An application's health: the worst health among the resources it manages, leaving out what
//! Argo CD leaves out (hooks, resources without a health, an app's own object, and missing or
//! unknown child Applications).

use serde_json::Value;

use crate::assess;
use crate::checks::HealthChecks;
use crate::status::{HealthCode, HealthStatus, worst};
use ferry_types::GroupKindRef;

const HOOK: &str = "argocd.argoproj.io/hook";
const HELM_HOOK: &str = "helm.sh/hook";
const ARGO_HOOK_TYPES: [&str; 7] = [
    "PreSync",
    "Sync",
    "PostSync",
    "SyncFail",
    "PreDelete",
    "PostDelete",
    "Skip",
];
const HELM_HOOK_TYPES: [&str; 4] = ["pre-install", "pre-upgrade", "post-upgrade", "post-install"];

/// One resource an application manages: its desired manifest and its live object, either of
/// which may be absent (not yet created, or no longer desired).
#[derive(Clone, Copy, Debug, Default)]
pub struct ManagedResource<'a> {
    pub target: Option<&'a Value>,
    pub live: Option<&'a Value>,
}

/// The Application whose health is assessed, so that it does not count itself when it
/// manages its own object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppRef<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
}

/// An application's health and the health of each of its resources (same order as given;
/// `None` where a resource has no health).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppHealth {
    pub status: HealthCode,
    pub resources: Vec<Option<HealthStatus>>,
}

/// Aggregates the health of an application's resources, as Argo CD's controller does.
pub fn app_health(
    app: Option<AppRef<'_>>,
    resources: &[ManagedResource<'_>],
    checks: &HealthChecks,
) -> AppHealth {
    let mut counted = Vec::new();
    let resources = resources
        .iter()
        .map(|resource| {
            let (health, counts) = resource_health(app, resource, checks)?;
            if counts {
                counted.push(health.status);
            }
            Some(health)
        })
        .collect();
    AppHealth {
        status: worst(counted),
        resources,
    }
}

/// A resource's health and whether it counts towards the application's.
fn resource_health(
    app: Option<AppRef<'_>>,
    resource: &ManagedResource<'_>,
    checks: &HealthChecks,
) -> Option<(HealthStatus, bool)> {
    if resource.target.is_some_and(is_skipped_hook) || resource.live.is_some_and(is_hook) {
        return None;
    }
    let Some(live) = resource.live else {
        let gk = GroupKindRef::of(resource.target?)?;
        // A missing object of a kind without health (a ConfigMap, say) shows as OutOfSync only.
        let counts = checks.has_check(gk) && !is_application(gk);
        return Some((HealthStatus::new(HealthCode::Missing, ""), counts));
    };
    if app.is_some_and(|app| is_app_itself(app, live)) {
        return None;
    }
    let health = assess(live, checks)?;
    let child_app_unsure = GroupKindRef::of(live).is_some_and(is_application)
        && matches!(health.status, HealthCode::Missing | HealthCode::Unknown);
    Some((health, !child_app_unsure))
}

fn is_application(gk: GroupKindRef<'_>) -> bool {
    gk == GroupKindRef::new("argoproj.io", "Application")
}

fn is_app_itself(app: AppRef<'_>, live: &Value) -> bool {
    let metadata = |key| live.get("metadata")?.get(key)?.as_str();
    GroupKindRef::of(live).is_some_and(is_application)
        && metadata("name") == Some(app.name)
        && metadata("namespace") == Some(app.namespace)
}

fn annotation<'v>(obj: &'v Value, key: &str) -> Option<&'v str> {
    obj.get("metadata")?.get("annotations")?.get(key)?.as_str()
}

/// The hook types an object declares: Argo CD's annotation, else Helm's (mapped by presence).
fn hook_types(obj: &Value) -> Vec<&str> {
    let csv = |key| {
        annotation(obj, key)
            .into_iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
    };
    let argo: Vec<&str> = csv(HOOK).filter(|t| ARGO_HOOK_TYPES.contains(t)).collect();
    if !argo.is_empty() {
        return argo;
    }
    csv(HELM_HOOK)
        .filter(|t| HELM_HOOK_TYPES.contains(t))
        .collect()
}

/// Marked `Skip` and nothing else: never applied, so never assessed.
fn is_skipped_hook(obj: &Value) -> bool {
    hook_types(obj) == ["Skip"]
}

/// A sync hook: its health belongs to the sync operation, not to the application.
fn is_hook(obj: &Value) -> bool {
    if annotation(obj, HOOK).is_some() {
        return !is_skipped_hook(obj);
    }
    // Helm marks CRDs with the same annotation; they are not hooks.
    annotation(obj, HELM_HOOK).is_some_and(|value| value != "crd-install")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(name: &str, available: i64) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "shop", "generation": 1},
            "spec": {"replicas": 1},
            "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                       "availableReplicas": available}
        })
    }

    fn config_map(annotations: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "cm", "namespace": "shop", "annotations": annotations}})
    }

    fn failed_job(annotations: Value) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": "migrate", "namespace": "shop", "annotations": annotations},
               "status": {"conditions": [{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]}})
    }

    fn child_app(name: &str, health: Option<&str>) -> Value {
        let status = health.map_or(json!({}), |h| json!({"health": {"status": h}}));
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
               "metadata": {"name": name, "namespace": "argocd"}, "status": status})
    }

    fn live(obj: &Value) -> ManagedResource<'_> {
        ManagedResource {
            target: Some(obj),
            live: Some(obj),
        }
    }

    #[test]
    fn worst_resource_wins_and_no_health_is_ignored() {
        let ready = deployment("api", 1);
        let rolling = deployment("web", 0);
        let cm = config_map(json!({}));
        let checks = HealthChecks::new();
        let health = app_health(None, &[live(&ready), live(&rolling), live(&cm)], &checks);
        assert_eq!(health.status, HealthCode::Progressing);
        assert_eq!(
            health.resources[0].as_ref().unwrap().status,
            HealthCode::Healthy
        );
        assert_eq!(
            health.resources[1].as_ref().unwrap().status,
            HealthCode::Progressing
        );
        assert_eq!(health.resources[2], None);
        assert_eq!(app_health(None, &[], &checks).status, HealthCode::Healthy);
    }

    #[test]
    fn missing_counts_only_for_kinds_with_a_check() {
        let deploy = deployment("api", 1);
        let cm = config_map(json!({}));
        let checks = HealthChecks::new();
        let missing_cm = ManagedResource {
            target: Some(&cm),
            live: None,
        };
        let health = app_health(None, &[live(&deploy), missing_cm], &checks);
        assert_eq!(health.status, HealthCode::Healthy);
        assert_eq!(
            health.resources[1].as_ref().unwrap().status,
            HealthCode::Missing
        );

        let missing_deploy = ManagedResource {
            target: Some(&deploy),
            live: None,
        };
        assert_eq!(
            app_health(None, &[missing_deploy], &checks).status,
            HealthCode::Missing
        );

        let scripted = HealthChecks::new()
            .with_lua("ConfigMap", "return {status='Healthy'}")
            .unwrap();
        assert_eq!(
            app_health(None, &[missing_cm], &scripted).status,
            HealthCode::Missing
        );
    }

    #[test]
    fn hooks_do_not_count() {
        let argo_hook = failed_job(json!({"argocd.argoproj.io/hook": "PreSync"}));
        let helm_hook = failed_job(json!({"helm.sh/hook": "post-install,post-upgrade"}));
        let crd_install = failed_job(json!({"helm.sh/hook": "crd-install"}));
        let skip = failed_job(json!({"argocd.argoproj.io/hook": "Skip"}));
        let checks = HealthChecks::new();

        let health = app_health(None, &[live(&argo_hook), live(&helm_hook)], &checks);
        assert_eq!(health.status, HealthCode::Healthy);
        assert_eq!(health.resources, vec![None, None]);
        // Not hooks: counted.
        assert_eq!(
            app_health(None, &[live(&crd_install)], &checks).status,
            HealthCode::Degraded
        );
        // `Skip` on the desired manifest means it is never applied: not counted.
        assert_eq!(
            app_health(None, &[live(&skip)], &checks).resources,
            vec![None]
        );
        let skip_missing = ManagedResource {
            target: Some(&skip),
            live: None,
        };
        assert_eq!(
            app_health(None, &[skip_missing], &checks).status,
            HealthCode::Healthy
        );
    }

    #[test]
    fn child_applications_missing_or_unknown_do_not_count() {
        let checks = HealthChecks::new();
        for (health, expected) in [
            (Some("Degraded"), HealthCode::Degraded),
            (Some("Unknown"), HealthCode::Healthy),
            (Some("Missing"), HealthCode::Healthy),
            (Some("Suspended"), HealthCode::Suspended),
            (None, HealthCode::Progressing),
        ] {
            let child = child_app("child", health);
            assert_eq!(
                app_health(None, &[live(&child)], &checks).status,
                expected,
                "{health:?}"
            );
        }
        let child = child_app("child", Some("Healthy"));
        let not_created = ManagedResource {
            target: Some(&child),
            live: None,
        };
        let health = app_health(None, &[not_created], &checks);
        assert_eq!(health.status, HealthCode::Healthy);
        assert_eq!(
            health.resources[0].as_ref().unwrap().status,
            HealthCode::Missing
        );
    }

    #[test]
    fn an_app_managing_itself_ignores_its_own_object() {
        let itself = child_app("root", Some("Degraded"));
        let checks = HealthChecks::new();
        let me = AppRef {
            namespace: "argocd",
            name: "root",
        };
        let other = AppRef {
            namespace: "argocd",
            name: "other",
        };
        assert_eq!(
            app_health(Some(me), &[live(&itself)], &checks).status,
            HealthCode::Healthy
        );
        assert_eq!(
            app_health(Some(other), &[live(&itself)], &checks).status,
            HealthCode::Degraded
        );
    }
}
