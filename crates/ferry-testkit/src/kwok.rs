//! The kubelet's last part on kwok's simulated nodes, for stories whose pods must end: kwok
//! schedules pods and makes them Running, but no container runs, so the test ends each pod the
//! way the kubelet ends one whose main container exited.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

/// How a pod ends: its main container's exit code and termination message.
pub struct Ending {
    pub exit_code: i32,
    pub message: String,
}

/// Lists the pods of `selector` every 300 ms and hands each to `end`, which may record it and
/// says how it ends (`None`: left running, asked again next time). A [`running`] pod is then
/// ended so ([`end_pod`]). Runs until aborted.
pub fn end_pods(
    pods: Api<Pod>,
    selector: &'static str,
    end: impl Fn(&Pod) -> Option<Ending> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let listed = pods
                .list(&ListParams::default().labels(selector))
                .await
                .map(|l| l.items)
                .unwrap_or_default();
            for pod in listed {
                let ending = end(&pod);
                if !running(&pod) {
                    continue;
                }
                if let Some(ending) = ending {
                    let _ = end_pod(&pods, &pod, ending).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

/// Whether kwok made `pod` Running: phase Running and a pod IP (kwok sets both, and an end
/// written before would be undone).
pub fn running(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status.is_some_and(|s| s.pod_ip.is_some())
}

/// Ends a [`running`] pod as the kubelet ends one whose main container exited: phase Succeeded
/// or Failed, its first container, "main", terminated with the exit code and message.
pub async fn end_pod(pods: &Api<Pod>, pod: &Pod, ending: Ending) -> kube::Result<Pod> {
    let Ending { exit_code, message } = ending;
    let status = pod.status.clone().unwrap_or_default();
    let image = (pod.spec.as_ref().and_then(|s| s.containers.first())).map(|c| &c.image);
    let patch = json!({"status": {
        "phase": if exit_code == 0 { "Succeeded" } else { "Failed" },
        "containerStatuses": [{
            "name": "main", "image": image, "imageID": "", "ready": false,
            "restartCount": 0, "state": {"terminated": {
                "exitCode": exit_code,
                "reason": if exit_code == 0 { "Completed" } else { "Error" },
                "message": message,
                "startedAt": status.start_time,
                "finishedAt": status.start_time,
            }},
        }],
    }});
    pods.patch_status(
        &pod.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
}
