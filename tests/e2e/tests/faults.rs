//! An operator's bad day: the controller is killed again and again while syncs with hooks and
//! waves are running. Every operation must end (none left Running), and every hook must run
//! exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use ferry_e2e::{Story, is};
use ferry_types::application::OperationPhase;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::runtime::watcher;

const APPS: usize = 4;
const KILLS: usize = 12;

fn app_manifests(i: usize) -> String {
    let job = |name: &str, hook: &str| {
        format!(
            "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}-{i}
  annotations:
    argocd.argoproj.io/hook: {hook}
    argocd.argoproj.io/hook-delete-policy: HookSucceeded
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: c, image: busybox, command: [\"true\"]}}]
"
        )
    };
    let waves = (0..3).map(|wave| {
        format!(
            "apiVersion: v1
kind: ConfigMap
metadata:
  name: wave{wave}-{i}
  annotations: {{argocd.argoproj.io/sync-wave: \"{wave}\"}}
data: {{wave: \"{wave}\"}}
"
        )
    });
    [job("pre", "PreSync"), job("post", "PostSync")]
        .into_iter()
        .chain(waves)
        .collect::<Vec<_>>()
        .join("---\n")
}

#[tokio::test]
async fn syncs_survive_a_controller_killed_again_and_again_running_each_hook_once() -> Result<()> {
    let mut story = Story::new().await?;
    for i in 0..APPS {
        story
            .repo
            .write(&format!("app{i}/all.yaml"), app_manifests(i))?;
    }
    story.repo.commit("apps with hooks and waves")?;

    // Every Job ever created, by name (a hook run twice shows as two uids); and each creation
    // or deletion of a hook signalled, so the controller can be killed right then.
    let created: Arc<Mutex<BTreeMap<String, BTreeSet<String>>>> = Arc::default();
    let seen = created.clone();
    let (hook_events, mut hook_moments) = tokio::sync::mpsc::unbounded_channel();
    let jobs = story.ctx.api::<Job>();
    let watching = tokio::spawn(async move {
        let mut events = watcher(jobs, watcher::Config::default()).boxed();
        while let Some(Ok(event)) = events.next().await {
            let job = match event {
                watcher::Event::Apply(job) => {
                    let (Some(name), Some(uid)) = (job.metadata.name.clone(), job.metadata.uid)
                    else {
                        continue;
                    };
                    if !seen
                        .lock()
                        .unwrap()
                        .entry(name.clone())
                        .or_default()
                        .insert(uid)
                    {
                        continue;
                    }
                    format!("created {name}")
                }
                watcher::Event::Delete(job) => {
                    format!("deleted {}", job.metadata.name.unwrap_or_default())
                }
                _ => continue,
            };
            let _ = hook_events.send(job);
        }
    });

    story.start_controller()?;
    let apps: Vec<String> = (0..APPS)
        .map(|i| story.app_name(&format!("app{i}")))
        .collect();
    for (i, app) in apps.iter().enumerate() {
        story.create_app(app, &format!("app{i}"), &[])?;
    }
    for app in &apps {
        story.wait_app(app, "OutOfSync", is::out_of_sync).await?;
        story.ferry(&["app", "sync", app, "--async"])?;
    }
    // The controller dies the moment a hook is created or deleted (before it can record
    // that), and at a few moments in between; a new one starts each time.
    let mut kills = Vec::new();
    while kills.len() < KILLS {
        let pause = Duration::from_millis(300 + (kills.len() as u64 * 617) % 1500);
        let moment = match tokio::time::timeout(pause, hook_moments.recv()).await {
            Ok(Some(moment)) => moment,
            Ok(None) => break,
            Err(_) => "a pause".to_string(),
        };
        story.kill_controller()?;
        story.start_controller()?;
        kills.push(moment);
    }

    for app in &apps {
        let done = story
            .wait_app(app, "the operation to end", is::operation_finished)
            .await?;
        let state = done.status.and_then(|s| s.operation_state).unwrap();
        assert_eq!(
            state.phase,
            OperationPhase::Succeeded,
            "{app}: {} (killed at: {kills:?})",
            state.message
        );
    }
    watching.abort();
    let created = created.lock().unwrap().clone();
    for i in 0..APPS {
        for hook in ["pre", "post"] {
            let name = format!("{hook}-{i}");
            let runs = created.get(&name).map_or(0, BTreeSet::len);
            assert_eq!(
                runs, 1,
                "hook {name} ran {runs} times (killed at: {kills:?})"
            );
        }
    }
    Ok(())
}
