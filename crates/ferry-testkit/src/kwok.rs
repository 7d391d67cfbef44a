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
/// says how it ends (`None`: left running). A Running pod (with its IP: kwok sets both, and an
/// end written earlier would be undone) is then ended so: phase Succeeded or Failed, its first
/// container, "main", terminated with the exit code and message. Runs until aborted.
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
                let status = pod.status.clone().unwrap_or_default();
                if status.phase.as_deref() != Some("Running") || status.pod_ip.is_none() {
                    continue;
                }
                let Some(Ending { exit_code, message }) = ending else {
                    continue;
                };
                let main = &pod.spec.as_ref().unwrap().containers[0];
                let patch = json!({"status": {
                    "phase": if exit_code == 0 { "Succeeded" } else { "Failed" },
                    "containerStatuses": [{
                        "name": "main", "image": main.image, "imageID": "", "ready": false,
                        "restartCount": 0, "state": {"terminated": {
                            "exitCode": exit_code,
                            "reason": if exit_code == 0 { "Completed" } else { "Error" },
                            "message": message,
                            "startedAt": status.start_time,
                            "finishedAt": status.start_time,
                        }},
                    }],
                }});
                let _ = pods
                    .patch_status(
                        &pod.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}
