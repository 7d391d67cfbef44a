//! The `status` of each ImageUpdater after a full cycle, in upstream's shape: the apps it
//! matched and images it manages, when it checked and last updated, the updates of this cycle
//! (`recentUpdates`), and a `Ready` condition that is `False` while any of its apps failed.

use std::collections::BTreeMap;

use ferry_types::image_updater::{ImageUpdater, ImageUpdaterStatus, RecentUpdate};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::Api;
use kube::api::{Patch, PatchParams};
use tracing::warn;

use crate::runner::CycleReport;
use crate::select::{Managed, Origin};

/// The status of `updater` after a cycle whose results are `report`.
pub fn status_of(
    updater: &ImageUpdater,
    selected: &BTreeMap<(String, String), Managed>,
    report: &CycleReport,
    now: Time,
) -> ImageUpdaterStatus {
    let origin = Origin::ImageUpdater {
        namespace: updater.metadata.namespace.clone().unwrap_or_default(),
        name: updater.metadata.name.clone().unwrap_or_default(),
    };
    let mine: Vec<(&(String, String), &Managed)> = selected
        .iter()
        .filter(|(_, m)| m.origin == origin)
        .collect();
    let labels: Vec<String> = mine
        .iter()
        .map(|((ns, n), _)| format!("{ns}/{n}"))
        .collect();
    let images = mine
        .iter()
        .map(|(_, m)| m.config.as_ref().map_or(0, |c| c.images.len()))
        .sum::<usize>();
    let mut updates: BTreeMap<(String, String, String), i32> = BTreeMap::new();
    for (app, change) in &report.updated {
        if labels.contains(app) {
            *updates
                .entry((change.alias.clone(), change.image.clone(), change.new_tag()))
                .or_default() += 1;
        }
    }
    let failed: Vec<&(String, String)> = report
        .errors
        .iter()
        .filter(|(app, _)| labels.contains(app))
        .collect();
    let previous = updater.status.clone().unwrap_or_default();
    let recent_updates: Vec<RecentUpdate> = updates
        .into_iter()
        .map(|((alias, image, new_version), count)| RecentUpdate {
            message: format!("updated {image} to {new_version} in {count} application(s)"),
            alias,
            image,
            new_version,
            applications_updated: count,
            updated_at: now.clone(),
        })
        .collect();
    let ready = match failed.first() {
        None => Condition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: "UpdateCycleSucceeded".into(),
            message: format!("checked {} application(s)", labels.len()),
            last_transition_time: now.clone(),
            observed_generation: updater.metadata.generation,
        },
        Some((app, error)) => Condition {
            type_: "Ready".into(),
            status: "False".into(),
            reason: "UpdateCycleFailed".into(),
            message: format!("{} application(s) failed; {app}: {error}", failed.len()),
            last_transition_time: now.clone(),
            observed_generation: updater.metadata.generation,
        },
    };
    // A condition keeps its transition time while its status stays.
    let ready = match previous.conditions.iter().find(|c| c.type_ == "Ready") {
        Some(old) if old.status == ready.status => Condition {
            last_transition_time: old.last_transition_time.clone(),
            ..ready
        },
        _ => ready,
    };
    ImageUpdaterStatus {
        observed_generation: updater.metadata.generation.unwrap_or_default(),
        last_checked_at: Some(now.clone()),
        last_updated_at: if recent_updates.is_empty() {
            previous.last_updated_at
        } else {
            Some(now)
        },
        applications_matched: labels.len() as i32,
        images_managed: images as i32,
        recent_updates,
        conditions: vec![ready],
    }
}

/// Writes the status of every ImageUpdater (through the status subresource).
pub async fn write(
    client: &kube::Client,
    updaters: &[ImageUpdater],
    selected: &BTreeMap<(String, String), Managed>,
    report: &CycleReport,
) {
    let now = Time(jiff::Timestamp::now());
    for updater in updaters {
        let namespace = updater.metadata.namespace.as_deref().unwrap_or_default();
        let name = updater.metadata.name.as_deref().unwrap_or_default();
        let status = status_of(updater, selected, report, now.clone());
        let api: Api<ImageUpdater> = Api::namespaced(client.clone(), namespace);
        let patch = serde_json::json!({ "status": status });
        if let Err(err) = api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            warn!(imageupdater = %format!("{namespace}/{name}"), "writing status: {err}");
        }
    }
}
