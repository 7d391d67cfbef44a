//! Making the owned Applications what was generated, as far as `applicationsSync` allows:
//! create missing ones, update changed ones (keeping preserved fields and ignored
//! differences), delete ones no longer generated.

use std::collections::{BTreeMap, HashSet};

use ferry_diff::{IgnoreRules, ResourceIgnoreDifferences, respect_ignore_differences};
use ferry_runtime::UpdateError;
use ferry_types::application::finalizer;
use ferry_types::secrets::{IN_CLUSTER_NAME, IN_CLUSTER_SERVER};
use ferry_types::{Application, ApplicationSet};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::Value;
use tracing::info;

/// Annotations others set on generated Applications that the controller always keeps.
const PRESERVED_ANNOTATIONS: &[&str] = &[
    "notified.notifications.argoproj.io",
    ferry_types::application::REFRESH_ANNOTATION,
    "argocd.argoproj.io/hydrate",
];

/// Finalizers others add that the controller always keeps.
const PRESERVED_FINALIZERS: &[&str] = &[
    "pre-delete-finalizer.argocd.argoproj.io",
    finalizer::POST_DELETE,
];

pub const FIELD_MANAGER: &str = "ferry-appset-controller";

/// The controller owner reference an ApplicationSet puts on its Applications.
pub fn owner_reference(appset: &ApplicationSet) -> Option<OwnerReference> {
    appset.controller_owner_ref(&())
}

/// Whether `app` is controlled by `appset`.
pub fn owned_by(app: &Application, appset: &ApplicationSet) -> bool {
    let uid = appset.uid();
    app.owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref())
}

/// The compiled `ignoreApplicationDifferences` for the Application `name`.
fn ignore_rules(appset: &ApplicationSet, name: &str) -> Result<IgnoreRules, String> {
    let rules: Vec<ResourceIgnoreDifferences> = appset
        .spec
        .ignore_application_differences
        .iter()
        .filter(|rule| rule.name.is_empty() || rule.name == name)
        .map(|rule| ResourceIgnoreDifferences {
            group: ferry_types::GROUP.into(),
            kind: "Application".into(),
            json_pointers: rule.json_pointers.clone(),
            jq_path_expressions: rule.jq_path_expressions.clone(),
            ..Default::default()
        })
        .collect();
    IgnoreRules::new(&rules).map_err(|e| e.to_string())
}

/// Creates `desired` if it does not exist; with `update`, makes an existing one match it.
/// `listed` is the app as just listed among the set's own, if it was: an unchanged app then
/// costs no request. Returns what was done, if anything.
pub async fn create_or_update(
    api: &Api<Application>,
    appset: &ApplicationSet,
    desired: &Application,
    listed: Option<&Application>,
    update: bool,
) -> Result<Option<&'static str>, String> {
    let name = desired.name_any();
    let owner = owner_reference(appset).ok_or("the ApplicationSet has no uid yet")?;
    let rules = ignore_rules(appset, &name)?;
    if let Some(live) = listed {
        if !update {
            return Ok(None);
        }
        let next = respecting(&rules, desired_over(live, desired, appset, &owner), live)?;
        if next == *live {
            return Ok(None);
        }
    }
    let exists = listed.is_some()
        || api
            .get_opt(&name)
            .await
            .map_err(|e| format!("reading Application {name}: {e}"))?
            .is_some();
    if !exists {
        let mut app = desired.clone();
        app.metadata.owner_references = Some(vec![owner]);
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        api.create(&params, &app)
            .await
            .map_err(|e| format!("creating Application {name}: {e}"))?;
        return Ok(Some("Created"));
    }
    if !update {
        return Ok(None);
    }
    let result = ferry_runtime::update(api, &name, |live: &mut Application| {
        if let Some(other) = live
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true) && o.uid != owner.uid)
        {
            return Err(format!(
                "Application {name} is already controlled by {} {}",
                other.kind, other.name
            ));
        }
        let next = desired_over(live, desired, appset, &owner);
        *live = respecting(&rules, next, live)?;
        Ok(())
    })
    .await;
    match result {
        Ok((_, true)) => Ok(Some("Updated")),
        Ok((_, false)) => Ok(None),
        Err(UpdateError::Change(message)) => Err(message),
        Err(UpdateError::NotFound) => Err(format!("Application {name} vanished while updating")),
        Err(UpdateError::Kube(e)) => Err(format!("updating Application {name}: {e}")),
        Err(UpdateError::KeptChanging { attempts }) => Err(format!(
            "updating Application {name}: it changed under each of {attempts} attempts"
        )),
    }
}

/// `live` with the generated spec, labels, annotations and finalizers, keeping the preserved
/// ones, and owned by the ApplicationSet.
fn desired_over(
    live: &Application,
    desired: &Application,
    appset: &ApplicationSet,
    owner: &OwnerReference,
) -> Application {
    let mut next = live.clone();
    next.spec = desired.spec.clone();
    let preserved = appset.spec.preserved_fields.as_ref();
    let keep = |generated: &Option<BTreeMap<String, String>>,
                current: &Option<BTreeMap<String, String>>,
                keys: &mut dyn Iterator<Item = &str>| {
        let mut out = generated.clone().unwrap_or_default();
        let current = current.clone().unwrap_or_default();
        for key in keys {
            if let Some(value) = current.get(key) {
                out.insert(key.to_string(), value.clone());
            }
        }
        (!out.is_empty()).then_some(out)
    };
    let annotation_keys = preserved
        .into_iter()
        .flat_map(|p| p.annotations.iter().map(String::as_str))
        .chain(PRESERVED_ANNOTATIONS.iter().copied());
    next.metadata.annotations = keep(
        &desired.metadata.annotations,
        &live.metadata.annotations,
        &mut annotation_keys.into_iter(),
    );
    let label_keys = preserved
        .into_iter()
        .flat_map(|p| p.labels.iter().map(String::as_str));
    next.metadata.labels = keep(
        &desired.metadata.labels,
        &live.metadata.labels,
        &mut label_keys.into_iter(),
    );
    let mut finalizers = desired.metadata.finalizers.clone().unwrap_or_default();
    for f in live.finalizers() {
        if PRESERVED_FINALIZERS.iter().any(|p| f.starts_with(p)) && !finalizers.contains(f) {
            finalizers.push(f.clone());
        }
    }
    next.metadata.finalizers = (!finalizers.is_empty()).then_some(finalizers);
    let mut owners: Vec<_> = live
        .owner_references()
        .iter()
        .filter(|o| o.uid != owner.uid)
        .cloned()
        .collect();
    owners.push(owner.clone());
    next.metadata.owner_references = Some(owners);
    next
}

/// `next` with the fields `rules` ignore as they are in `live`.
fn respecting(
    rules: &IgnoreRules,
    next: Application,
    live: &Application,
) -> Result<Application, String> {
    if rules.is_empty() {
        return Ok(next);
    }
    let to_json = |app: &Application| serde_json::to_value(app).map_err(|e| e.to_string());
    let kept = respect_ignore_differences(&to_json(&next)?, &to_json(live)?, rules)
        .map_err(|e| format!("ignoreApplicationDifferences: {e}"))?;
    serde_json::from_value(kept).map_err(|e| format!("ignoreApplicationDifferences: {e}"))
}

/// Deletes the owned Applications no longer generated. One whose destination cluster is
/// unknown loses its resources finalizer first, or its deletion could never finish.
pub async fn delete_stale(
    api: &Api<Application>,
    owned: &[Application],
    generated: &HashSet<String>,
    cluster_secrets: &[Secret],
) -> Result<Vec<String>, String> {
    let mut deleted = Vec::new();
    for app in owned {
        let name = app.name_any();
        if generated.contains(&name) || app.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if app.cascade_policy().is_some() && !destination_known(app, cluster_secrets) {
            let patch = serde_json::json!({"metadata": {
                "finalizers": app.finalizers().iter()
                    .filter(|f| !f.starts_with(finalizer::RESOURCES))
                    .collect::<Vec<_>>(),
                "resourceVersion": app.resource_version(),
            }});
            api.patch(
                &name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
            .map_err(|e| format!("updating Application {name} before deleting it: {e}"))?;
        }
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(e) => return Err(format!("deleting Application {name}: {e}")),
        }
        info!(application = %name, "deleted Application no longer generated");
        deleted.push(name);
    }
    Ok(deleted)
}

/// Why the app's destination cluster is unknown, if it is: no cluster Secret (nor the
/// in-cluster cluster) has its server or name.
pub fn unknown_destination(app: &Application, cluster_secrets: &[Secret]) -> Option<String> {
    if destination_known(app, cluster_secrets) {
        return None;
    }
    let destination = &app.spec.destination;
    Some(if destination.server.is_empty() {
        format!("there are no clusters with this name: {}", destination.name)
    } else {
        format!(
            "there are no clusters with this URL: {}",
            destination.server
        )
    })
}

fn destination_known(app: &Application, cluster_secrets: &[Secret]) -> bool {
    let destination = &app.spec.destination;
    let data = |s: &Secret, key: &str| {
        s.data.as_ref().and_then(|d| d.get(key)).map(|v| {
            String::from_utf8_lossy(&v.0)
                .trim_end_matches('/')
                .to_string()
        })
    };
    let server = destination.server.trim_end_matches('/');
    if server == IN_CLUSTER_SERVER || (server.is_empty() && destination.name == IN_CLUSTER_NAME) {
        return true;
    }
    cluster_secrets.iter().any(|s| {
        (!server.is_empty() && data(s, "server").as_deref() == Some(server))
            || (!destination.name.is_empty()
                && data(s, "name").as_deref() == Some(destination.name.as_str()))
    })
}

/// Removes the owner references of `appset` from its Applications, so deleting it leaves them
/// (applicationsSync without delete).
pub async fn orphan(
    api: &Api<Application>,
    appset: &ApplicationSet,
    owned: &[Application],
) -> Result<(), String> {
    let uid = appset.uid().unwrap_or_default();
    for app in owned {
        let name = app.name_any();
        let result = ferry_runtime::update(api, &name, |live: &mut Application| {
            let kept: Vec<_> = live
                .owner_references()
                .iter()
                .filter(|o| o.uid != uid)
                .cloned()
                .collect();
            live.metadata.owner_references = (!kept.is_empty()).then_some(kept);
            Ok::<_, String>(())
        })
        .await;
        match result {
            Ok(_) | Err(UpdateError::NotFound) => {}
            Err(e) => return Err(format!("releasing Application {name}: {e:?}")),
        }
    }
    Ok(())
}

/// What of an Application, when changed by someone, calls for reconciling its ApplicationSet
/// (not its status, which the application controller writes all the time).
pub fn fingerprint(app: &Application) -> Value {
    serde_json::json!({
        "spec": app.spec,
        "labels": app.metadata.labels,
        "annotations": app.metadata.annotations,
        "finalizers": app.metadata.finalizers,
        "owners": app.metadata.owner_references,
        "deleting": app.metadata.deletion_timestamp.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn appset(yaml: &str) -> ApplicationSet {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn app(yaml: &str) -> Application {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "argoproj.io/v1alpha1".into(),
            kind: "ApplicationSet".into(),
            name: "set".into(),
            uid: "uid-1".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    /// What others changed on a generated app survives an update only where Argo CD keeps it.
    #[test]
    fn updates_keep_preserved_fields_and_finalizers() {
        let set = appset(
            "spec:
  preservedFields: {annotations: [team], labels: [tier]}
  ignoreApplicationDifferences:
  - jsonPointers: [/spec/source/targetRevision]
",
        );
        let live = app("
metadata:
  name: web
  annotations: {team: a, other: x, argocd.argoproj.io/refresh: hard}
  labels: {tier: gold, stale: y}
  finalizers: [post-delete-finalizer.argocd.argoproj.io, someone.else/finalizer]
spec:
  project: default
  source: {repoURL: r, path: old, targetRevision: pinned-by-hand}
");
        let desired = app("
metadata:
  name: web
  labels: {app: web}
  finalizers: [resources-finalizer.argocd.argoproj.io]
spec:
  project: default
  source: {repoURL: r, path: new, targetRevision: HEAD}
");
        let next = desired_over(&live, &desired, &set, &owner());
        let next = respecting(&ignore_rules(&set, "web").unwrap(), next, &live).unwrap();
        let annotations = next.metadata.annotations.clone().unwrap();
        assert_eq!(annotations.len(), 2, "{annotations:?}");
        assert_eq!(annotations["team"], "a");
        assert_eq!(annotations["argocd.argoproj.io/refresh"], "hard");
        let labels = next.metadata.labels.clone().unwrap();
        assert_eq!(labels.len(), 2, "{labels:?}");
        assert_eq!(
            (labels["app"].as_str(), labels["tier"].as_str()),
            ("web", "gold")
        );
        assert_eq!(
            next.finalizers(),
            [
                "resources-finalizer.argocd.argoproj.io",
                "post-delete-finalizer.argocd.argoproj.io"
            ]
        );
        let source = next.spec.source.clone().unwrap();
        assert_eq!(source.path, "new");
        assert_eq!(
            source.target_revision, "pinned-by-hand",
            "ignored difference kept"
        );
        assert_eq!(next.owner_references(), [owner()]);
    }

    #[test]
    fn destinations_known_by_server_or_name() {
        let cluster: Secret = serde_yaml::from_str(
            "metadata: {name: c}\ndata: {server: aHR0cHM6Ly9leGFtcGxl, name: cHJvZA==}",
        )
        .unwrap();
        let with = |dest: &str| {
            app(&format!(
                "metadata: {{name: a}}\nspec: {{destination: {dest}}}"
            ))
        };
        let known = |dest: &str| destination_known(&with(dest), std::slice::from_ref(&cluster));
        assert!(known("{server: 'https://kubernetes.default.svc'}"));
        assert!(known("{name: in-cluster}"));
        assert!(known("{server: 'https://example'}"));
        assert!(known("{name: prod}"));
        assert!(!known("{server: 'https://gone'}"));
    }
}
