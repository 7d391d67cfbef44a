//! An operator's bad day. The controller is killed again and again while syncs with hooks and
//! waves are running: every operation must end (none left Running), and every hook must run
//! exactly once. The cluster refuses writes for a while: the app must heal by itself once it
//! stops, without waiting for a resync or a restart. The image updater's registry goes away:
//! nothing changes meanwhile, and every app takes the tag pushed once it is back.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use ferry_e2e::{Story, is, job_hook};
use ferry_testkit::proxy::Proxy;
use ferry_testkit::registry::{ManifestFormat, Registry, RegistryOptions, TestImage};
use ferry_testkit::server::workspace_binary;
use ferry_types::application::{OperationPhase, SyncStatusCode, condition};
use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

/// Apps and kills of the kill-loop story: a reduced form here, the full one from
/// `scripts/faults` (FERRY_FAULTS_APPS, FERRY_FAULTS_KILLS).
fn scale(variable: &str, default: usize) -> usize {
    std::env::var(variable)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn app_manifests(i: usize) -> String {
    let job = |name: &str, hook: &str| job_hook(&format!("{name}-{i}"), hook, "HookSucceeded");
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
    let (apps_wanted, kills_wanted) = (
        scale("FERRY_FAULTS_APPS", 4),
        scale("FERRY_FAULTS_KILLS", 12),
    );
    let mut story = Story::new().await?;
    for i in 0..apps_wanted {
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
    let apps: Vec<String> = (0..apps_wanted)
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
    while kills.len() < kills_wanted {
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

    let last_kill = std::time::Instant::now();
    let mut phases = Vec::new();
    for app in &apps {
        let done = story
            .wait_app(app, "the operation to end", is::operation_finished)
            .await?;
        let state = done.status.and_then(|s| s.operation_state).unwrap();
        phases.push((app.clone(), state.phase, state.message));
    }
    let converged_after = last_kill.elapsed();
    watching.abort();
    let created = created.lock().unwrap().clone();
    let duplicated: Vec<String> = (0..apps_wanted)
        .flat_map(|i| [format!("pre-{i}"), format!("post-{i}")])
        .filter(|name| created.get(name).map_or(0, BTreeSet::len) != 1)
        .collect();
    let config_maps = story.ctx.api::<k8s_openapi::api::core::v1::ConfigMap>();
    let mut lost = Vec::new();
    for i in 0..apps_wanted {
        for wave in 0..3 {
            let name = format!("wave{wave}-{i}");
            if config_maps.get_opt(&name).await?.is_none() {
                lost.push(name);
            }
        }
    }
    let succeeded = phases
        .iter()
        .filter(|(_, phase, _)| *phase == OperationPhase::Succeeded)
        .count();
    // What `scripts/faults` reports.
    println!(
        "faults: kill loop: {} kills survived, {succeeded}/{} operations succeeded {:.1} s after \
         the last kill, {} hooks run other than once, {} resources lost",
        kills.len(),
        apps.len(),
        converged_after.as_secs_f64(),
        duplicated.len(),
        lost.len()
    );
    for (app, phase, message) in &phases {
        assert_eq!(
            *phase,
            OperationPhase::Succeeded,
            "{app}: {message} (killed at: {kills:?})"
        );
    }
    assert!(
        duplicated.is_empty(),
        "hooks {duplicated:?} did not run exactly once (killed at: {kills:?})"
    );
    assert!(lost.is_empty(), "lost {lost:?}");
    Ok(())
}

#[tokio::test]
async fn a_comparison_that_failed_for_a_while_heals_without_a_restart() -> Result<()> {
    let mut story = Story::new().await?;
    story.repo.write(
        "blocked/settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: fast}\n",
    )?;
    story
        .repo
        .commit("an app the cluster refuses for a while")?;
    // The ConfigMap is there already (made by hand), so comparing it takes the API server's
    // dry run; a missing one would be compared with no request at all.
    let config_maps: Api<ConfigMap> = Api::namespaced(story.ctx.client(), story.namespace());
    config_maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "settings"},
                                           "data": {"mode": "slow"}}))?,
        )
        .await?;
    // An admission webhook that cannot be reached refuses every ConfigMap write (dry runs
    // included) in this story's namespace: what an outage looks like to the comparison.
    let webhooks: Api<ValidatingWebhookConfiguration> = Api::all(story.ctx.client());
    let outage = format!("ferry-e2e-outage-{}", story.namespace());
    let webhook: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": outage},
        "webhooks": [{
            "name": "outage.ferry.dev",
            "clientConfig": {"url": "https://127.0.0.1:1/validate"},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                       "resources": ["configmaps"]}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": story.namespace()}},
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 2,
        }],
    }))?;
    webhooks.create(&PostParams::default(), &webhook).await?;

    // A resync far longer than the story: only the controller's retries can heal the app.
    story.start_controller_resyncing(600)?;
    let app = story.app_name("blocked");
    story.create_app(&app, "blocked", &["--sync-policy", "automated"])?;
    let message = story
        .wait_condition(&app, condition::COMPARISON_ERROR)
        .await?;
    assert!(message.contains("outage.ferry.dev"), "{message}");

    webhooks.delete(&outage, &DeleteParams::default()).await?;
    let started = std::time::Instant::now();
    story
        .wait_app(&app, "Synced and Healthy once the outage is over", |a| {
            is::synced_and_healthy(a)
                && a.status
                    .as_ref()
                    .is_some_and(|s| s.condition(condition::COMPARISON_ERROR).is_none())
        })
        .await?;
    let healed = started.elapsed();
    println!(
        "faults: admission outage: the app healed {:.1} s after the outage ended (resync 600 s)",
        healed.as_secs_f64()
    );
    assert!(
        healed < Duration::from_secs(90),
        "healed only after {healed:?}"
    );
    Ok(())
}

#[tokio::test]
async fn apps_catch_up_with_a_commit_made_while_the_api_server_was_away() -> Result<()> {
    let mut story = Story::new().await?;
    let apps: Vec<String> = (0..3)
        .map(|i| story.app_name(&format!("away{i}")))
        .collect();
    for i in 0..apps.len() {
        story
            .repo
            .write(&format!("away{i}/settings.yaml"), settings(i, "before"))?;
    }
    story.repo.commit("before the outage")?;
    let proxy = Proxy::in_front_of(story.ctx.kubeconfig()).await?;
    story.start_controller_through(&proxy)?;
    for (i, app) in apps.iter().enumerate() {
        story.create_app(app, &format!("away{i}"), &["--sync-policy", "automated"])?;
    }
    for app in &apps {
        story
            .wait_app(app, "Synced and Healthy", is::synced_and_healthy)
            .await?;
    }

    // The API server goes away for the controller; a commit lands meanwhile, and the controller
    // renders it but cannot compare it.
    proxy.cut();
    for i in 0..apps.len() {
        story
            .repo
            .write(&format!("away{i}/settings.yaml"), settings(i, "after"))?;
    }
    let commit = story.repo.commit("during the outage")?;
    tokio::time::sleep(Duration::from_secs(15)).await;
    proxy.restore();
    let restored = std::time::Instant::now();

    // Nothing was lost or pruned, and every app reaches the new commit by itself.
    for app in &apps {
        story
            .wait_app(app, "Synced at the commit made during the outage", |a| {
                is::synced_and_healthy(a) && is::at_revision(&commit)(a)
            })
            .await?;
    }
    println!(
        "faults: API server away 15 s: {} apps at the new commit {:.1} s after it came back",
        apps.len(),
        restored.elapsed().as_secs_f64()
    );
    let config_maps = story.ctx.api::<k8s_openapi::api::core::v1::ConfigMap>();
    for i in 0..apps.len() {
        let live = config_maps.get(&format!("settings-{i}")).await?;
        assert_eq!(live.data.unwrap()["moment"], "after");
    }
    Ok(())
}

fn settings(i: usize, moment: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings-{i}}}\ndata: {{moment: {moment}}}\n"
    )
}

#[tokio::test]
async fn a_hook_that_never_completes_times_out_from_the_operations_start_across_restarts()
-> Result<()> {
    let mut story = Story::new().await?;
    // Its pod can never be scheduled (no node has the label), so the Job never completes.
    let hook = job_hook("never", "PreSync", "HookSucceeded").replace(
        "      restartPolicy: Never\n",
        "      restartPolicy: Never\n      nodeSelector: {no-such-node: x}\n",
    );
    story.repo.write("stuck/all.yaml", hook)?;
    story
        .repo
        .write("stuck/settings.yaml", settings(0, "stuck"))?;
    story.repo.commit("a hook that never completes")?;
    let timeout = 30;
    story.set_controller_flags(&["--health-timeout", &timeout.to_string()]);
    story.start_controller()?;
    let app = story.app_name("stuck");
    story.create_app(&app, "stuck", &[])?;
    story.wait_app(&app, "OutOfSync", is::out_of_sync).await?;
    story.ferry(&["app", "sync", &app, "--async"])?;

    // A new controller every 6 s resumes the wait: each must count from the first one's start.
    let mut kills = 0;
    while kills < 12 && !is::operation_finished(&story.app(&app).await?) {
        tokio::time::sleep(Duration::from_secs(6)).await;
        story.kill_controller()?;
        story.start_controller()?;
        kills += 1;
    }
    let done = story
        .wait_app(&app, "the operation to end", is::operation_finished)
        .await?;
    let state = done.status.and_then(|s| s.operation_state).unwrap();
    let seconds = |t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
        t.as_ref().unwrap().0.as_second()
    };
    let took = seconds(&state.finished_at) - seconds(&state.started_at);
    println!(
        "faults: hook never completes: failed {took} s after the start (health timeout {timeout} s, {kills} restarts)"
    );
    assert_eq!(state.phase, OperationPhase::Failed, "{}", state.message);
    assert!(
        state
            .message
            .contains("timed out waiting for healthy state of batch/Job"),
        "{}",
        state.message
    );
    // Not before the timeout (times are whole seconds), and not a timeout started over by a
    // later controller (a restart every 6 s would have put it off until the kills stopped).
    assert!(
        (timeout - 2..timeout + 15).contains(&took),
        "failed {took} s after the start ({kills} restarts): {}",
        state.message
    );
    Ok(())
}

#[tokio::test]
async fn an_app_too_large_for_its_status_lists_what_needs_attention_and_says_so() -> Result<()> {
    let mut story = Story::new().await?;
    let padding = "x".repeat(60);
    let manifests: Vec<String> = (0..30)
        .map(|i| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i:02}-{padding}}}\ndata: \
                 {{index: \"{i}\"}}\n"
            )
        })
        .collect();
    story
        .repo
        .write("large/all.yaml", manifests.join("---\n"))?;
    story
        .repo
        .commit("an app whose resource list outgrows its budget")?;
    // A budget of 2 KiB stands for etcd's limit: about 20 of these resources fit in it.
    story.set_controller_flags(&["--max-status-resources-size", "2Ki"]);
    story.start_controller()?;
    let app = story.app_name("large");
    story.create_app(&app, "large", &["--sync-policy", "automated"])?;
    story
        .wait_app(&app, "Synced and Healthy", is::synced_and_healthy)
        .await?;
    let message = story
        .wait_condition(&app, condition::RESOURCES_TRUNCATED_WARNING)
        .await?;
    let status = story.app(&app).await?.status.unwrap();
    let listed = status.resources.len();
    assert!(
        (1..30).contains(&listed),
        "{listed} resources listed: {message}"
    );
    assert!(
        message.starts_with(&format!(
            "status.resources lists {listed} of the application's 30 resources: {} that are \
             Synced and Healthy are left out",
            30 - listed
        )),
        "{message}"
    );
    let config_maps = story.ctx.api::<k8s_openapi::api::core::v1::ConfigMap>();
    let live = config_maps.list(&Default::default()).await?;
    assert_eq!(
        live.items
            .iter()
            .filter(|cm| cm
                .metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("cm-")))
            .count(),
        30,
        "every resource was synced"
    );

    // A resource that drifts needs attention: it is listed even if it was left out before.
    let last = format!("cm-29-{padding}");
    config_maps
        .patch(
            &last,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"data": {"index": "changed"}})),
        )
        .await?;
    let drifted = story
        .wait_app(&app, "OutOfSync with the drifted resource listed", |a| {
            is::out_of_sync(a)
                && a.status.as_ref().is_some_and(|s| {
                    s.resources
                        .iter()
                        .any(|r| r.name == last && r.status == Some(SyncStatusCode::OutOfSync))
                })
        })
        .await?;
    assert!(drifted.status.unwrap().resources.len() <= listed + 1);
    Ok(())
}

/// A sandbox of the story's own (its etcd and API server are killed), stopped when dropped.
struct OwnSandbox(ferry_sandbox::Sandbox);

impl OwnSandbox {
    fn new() -> Result<Self> {
        let name = format!("faults-{}", std::process::id());
        Ok(Self(ferry_sandbox::Sandbox::named(&name)?))
    }
}

impl Drop for OwnSandbox {
    fn drop(&mut self) {
        // Its directory (etcd data, logs) too: every run has a new one.
        if self.0.down().is_ok() {
            let _ = std::fs::remove_dir_all(self.0.dir());
        }
    }
}

/// What happens to the control plane in [`apps_converge_after_etcd_and_the_api_server_fail`].
#[derive(Clone, Copy, Debug)]
enum ControlPlaneFault {
    Kill(&'static str),
    Pause(&'static str),
}

/// The uids of every Job ever created, by name (a hook run twice shows as two uids).
type JobRuns = Arc<Mutex<BTreeMap<String, BTreeSet<String>>>>;

/// Every Job ever created in the namespace, followed across API server outages.
fn follow_jobs(api: Api<Job>) -> (JobRuns, tokio::task::JoinHandle<()>) {
    let created = JobRuns::default();
    let seen = created.clone();
    let following = tokio::spawn(async move {
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = events.next().await {
            if let Ok(watcher::Event::Apply(job) | watcher::Event::InitApply(job)) = event
                && let (Some(name), Some(uid)) = (job.metadata.name, job.metadata.uid)
            {
                seen.lock().unwrap().entry(name).or_default().insert(uid);
            }
        }
    });
    (created, following)
}

/// The controller's resident memory, from /proc.
fn rss_mib(pid: Option<u32>) -> f64 {
    let status = pid
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

#[tokio::test]
async fn apps_converge_after_etcd_and_the_api_server_fail() -> Result<()> {
    let apps_wanted = scale("FERRY_FAULTS_APPS", 2);
    let outage = Duration::from_secs(scale("FERRY_FAULTS_OUTAGE", 5) as u64);
    let sandbox = OwnSandbox::new()?;
    let mut story =
        Story::in_context(ferry_testkit::kube::TestContext::in_sandbox(&sandbox.0).await?).await?;
    for i in 0..apps_wanted {
        let app = format!("cp{i}");
        story.repo.write(
            &format!("{app}/stable.yaml"),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: stable-{i}}}\ndata: {{a: b}}\n"
            ),
        )?;
        story
            .repo
            .write(&format!("{app}/settings.yaml"), settings(i, "start"))?;
        story.repo.write(
            &format!("{app}/post.yaml"),
            job_hook(&format!("post-{i}"), "PostSync", "HookSucceeded"),
        )?;
    }
    story.repo.commit("apps before the faults")?;
    let resync = 30;
    story.start_controller_resyncing(resync)?;
    let apps: Vec<String> = (0..apps_wanted)
        .map(|i| story.app_name(&format!("cp{i}")))
        .collect();
    for (i, app) in apps.iter().enumerate() {
        story.create_app(
            app,
            &format!("cp{i}"),
            &["--sync-policy", "automated", "--auto-prune", "--self-heal"],
        )?;
    }
    for app in &apps {
        story
            .wait_app(app, "Synced and Healthy", |a| {
                is::synced_and_healthy(a) && is::operation_finished(a)
            })
            .await?;
    }
    let config_maps = story.ctx.api::<k8s_openapi::api::core::v1::ConfigMap>();
    let mut stable_uids = Vec::new();
    for i in 0..apps_wanted {
        stable_uids.push(config_maps.get(&format!("stable-{i}")).await?.metadata.uid);
    }
    let (jobs, following) = follow_jobs(story.ctx.api::<Job>());

    let faults = [
        ControlPlaneFault::Kill("etcd"),
        ControlPlaneFault::Kill("kube-apiserver"),
        ControlPlaneFault::Pause("kube-apiserver"),
    ];
    for fault in faults {
        let label = match fault {
            ControlPlaneFault::Kill(name) => format!("{name}-killed"),
            ControlPlaneFault::Pause(name) => format!("{name}-paused"),
        };
        let log_before = std::fs::read_to_string(story.controller_log())?.len();
        let killed = match fault {
            ControlPlaneFault::Kill(name) => Some(sandbox.0.kill_component(name)?),
            ControlPlaneFault::Pause(name) => {
                sandbox.0.pause_component(name, true)?;
                None
            }
        };
        // A commit lands while the cluster is away.
        for i in 0..apps_wanted {
            story
                .repo
                .write(&format!("cp{i}/settings.yaml"), settings(i, &label))?;
        }
        let commit = story.repo.commit(&format!("during {label}"))?;
        tokio::time::sleep(outage).await;
        match (fault, killed) {
            (_, Some(killed)) => {
                sandbox.0.start_component(killed)?;
            }
            (ControlPlaneFault::Pause(name), None) => sandbox.0.pause_component(name, false)?,
            (ControlPlaneFault::Kill(_), None) => unreachable!(),
        }
        let cleared = std::time::Instant::now();
        for app in &apps {
            story
                .wait_app(
                    app,
                    &format!("Synced at the commit made during {label}"),
                    |a| {
                        is::synced_and_healthy(a)
                            && is::at_revision(&commit)(a)
                            && is::operation_finished(a)
                    },
                )
                .await?;
        }
        let converged = cleared.elapsed();
        for i in 0..apps_wanted {
            let live = config_maps.get(&format!("settings-{i}")).await?;
            assert_eq!(live.data.unwrap()["moment"], label);
        }

        // The apps were just compared: the next resync is a whole period away, so only the
        // controller's watches (resumed after the outage, relisting if their resource version
        // is too old) can bring it a drift now.
        config_maps
            .patch(
                "settings-0",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(json!({"data": {"moment": "drifted"}})),
            )
            .await?;
        let drifted = std::time::Instant::now();
        story
            .eventually("the drift healed", || async {
                let live = config_maps.get("settings-0").await?;
                Ok(live.data.unwrap_or_default().get("moment") == Some(&label))
            })
            .await?;
        let healed = drifted.elapsed();
        // What the controller logged about the outage: once per app and failure streak.
        let log = std::fs::read_to_string(story.controller_log())?;
        let lines = log[log_before..].lines();
        let warnings = lines
            .clone()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"));
        let recoveries = lines.filter(|l| l.contains("recovered")).count();

        let mut lost = Vec::new();
        for (i, uid) in stable_uids.iter().enumerate() {
            let live = config_maps.get_opt(&format!("stable-{i}")).await?;
            if live.and_then(|cm| cm.metadata.uid) != *uid {
                lost.push(format!("stable-{i}"));
            }
        }
        let mut duplicated = Vec::new();
        for (i, app) in apps.iter().enumerate() {
            let syncs = story.app(app).await?.status.map_or(0, |s| s.history.len());
            let runs = jobs
                .lock()
                .unwrap()
                .get(&format!("post-{i}"))
                .map_or(0, BTreeSet::len);
            if runs > syncs {
                duplicated.push(format!("post-{i}: {runs} runs for {syncs} syncs"));
            }
        }
        println!(
            "faults: {label} for {} s: {}/{} apps at the commit made meanwhile {:.1} s after it \
             cleared (resync {resync} s), a drift healed through the watches in {:.1} s, {} \
             hooks run more than once per sync, {} resources lost or recreated, {} warnings and \
             {recoveries} recoveries logged, controller RSS {:.0} MiB",
            outage.as_secs(),
            apps.len(),
            apps.len(),
            converged.as_secs_f64(),
            healed.as_secs_f64(),
            duplicated.len(),
            lost.len(),
            warnings.count(),
            rss_mib(story.controller_pid())
        );
        assert!(lost.is_empty(), "{label}: lost or recreated {lost:?}");
        assert!(duplicated.is_empty(), "{label}: {duplicated:?}");
        assert!(
            healed < Duration::from_secs(resync / 2),
            "{label}: the drift took {healed:?}: the watches did not resume"
        );
    }
    following.abort();
    Ok(())
}

#[tokio::test]
async fn apps_follow_a_git_server_that_went_away_and_a_force_pushed_branch() -> Result<()> {
    let mut story = Story::new().await?;
    let apps_wanted = scale("FERRY_FAULTS_APPS", 2);
    let outage = Duration::from_secs(scale("FERRY_FAULTS_OUTAGE", 5) as u64);
    for i in 0..apps_wanted {
        story.repo.write(
            &format!("git{i}/stable.yaml"),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: stable-{i}}}\ndata: {{a: b}}\n"
            ),
        )?;
        story
            .repo
            .write(&format!("git{i}/settings.yaml"), settings(i, "start"))?;
    }
    story.repo.commit("apps served by git daemon")?;
    let mut daemon = ferry_testkit::git::GitDaemon::start(&story.repo)?;
    let resync = 10;
    story.start_controller_resyncing(resync)?;
    let apps: Vec<String> = (0..apps_wanted)
        .map(|i| story.app_name(&format!("git{i}")))
        .collect();
    let url = daemon.url();
    for (i, app) in apps.iter().enumerate() {
        let path = format!("git{i}");
        story.create_app_from(
            &url,
            app,
            &path,
            &["--sync-policy", "automated", "--auto-prune"],
        )?;
    }
    for app in &apps {
        story
            .wait_app(app, "Synced and Healthy", is::synced_and_healthy)
            .await?;
    }
    let config_maps = story.ctx.api::<k8s_openapi::api::core::v1::ConfigMap>();
    let stable_uids = {
        let mut uids = Vec::new();
        for i in 0..apps_wanted {
            uids.push(config_maps.get(&format!("stable-{i}")).await?.metadata.uid);
        }
        uids
    };
    let stable = |uids: Vec<Option<String>>| {
        let config_maps = config_maps.clone();
        async move {
            let mut lost = Vec::new();
            for (i, uid) in uids.iter().enumerate() {
                let live = config_maps.get_opt(&format!("stable-{i}")).await?;
                if live.and_then(|cm| cm.metadata.uid) != *uid {
                    lost.push(format!("stable-{i}"));
                }
            }
            anyhow::Ok(lost)
        }
    };

    // The Git server goes away; a commit lands meanwhile.
    daemon.stop();
    for i in 0..apps_wanted {
        story.repo.write(
            &format!("git{i}/settings.yaml"),
            settings(i, "after-outage"),
        )?;
        story.repo.write(
            &format!("git{i}/extra.yaml"),
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: extra-{i}}}\n"),
        )?;
    }
    let during = story.repo.commit("while the Git server is away")?;
    // Long enough for every app to try (and fail) to reach it.
    tokio::time::sleep(outage.max(Duration::from_secs(resync + 2))).await;
    daemon.resume()?;
    let resumed = std::time::Instant::now();
    for app in &apps {
        story
            .wait_app(app, "Synced at the commit made during the outage", |a| {
                is::synced_and_healthy(a) && is::at_revision(&during)(a)
            })
            .await?;
    }
    let converged = resumed.elapsed();
    let lost = stable(stable_uids.clone()).await?;
    println!(
        "faults: Git server away {} s: {}/{} apps at the commit made meanwhile {:.1} s after it \
         came back (resync {resync} s), {} resources lost or recreated",
        outage.max(Duration::from_secs(resync + 2)).as_secs(),
        apps.len(),
        apps.len(),
        converged.as_secs_f64(),
        lost.len()
    );
    assert!(lost.is_empty(), "lost or recreated {lost:?}");

    // History rewritten: the branch is force-pushed to a commit beside the one deployed, which
    // drops the extra ConfigMaps and changes the settings.
    story.repo.git(&["reset", "-q", "--hard", "HEAD~1"])?;
    for i in 0..apps_wanted {
        story
            .repo
            .write(&format!("git{i}/settings.yaml"), settings(i, "rewritten"))?;
    }
    story.repo.git(&["add", "-A"])?;
    story
        .repo
        .git(&["commit", "-q", "-m", "history rewritten"])?;
    story
        .repo
        .git(&["push", "-q", "--force", "origin", "HEAD"])?;
    let rewritten = story.repo.head()?;
    let pushed = std::time::Instant::now();
    for app in &apps {
        story
            .wait_app(app, "Synced at the force-pushed commit", |a| {
                is::synced_and_healthy(a) && is::at_revision(&rewritten)(a)
            })
            .await?;
    }
    let converged = pushed.elapsed();
    let lost = stable(stable_uids).await?;
    let mut extra_left = 0;
    for i in 0..apps_wanted {
        let live = config_maps.get(&format!("settings-{i}")).await?;
        assert_eq!(live.data.unwrap()["moment"], "rewritten");
        if config_maps.get_opt(&format!("extra-{i}")).await?.is_some() {
            extra_left += 1;
        }
    }
    println!(
        "faults: force-push: {}/{} apps at the rewritten commit {:.1} s after the push, {} \
         resources lost or recreated, {extra_left} resources of the dropped commit left",
        apps.len(),
        apps.len(),
        converged.as_secs_f64(),
        lost.len()
    );
    assert!(lost.is_empty(), "lost or recreated {lost:?}");
    // Automated prune: what only the dropped commit had goes, nothing else.
    assert_eq!(extra_left, 0);
    Ok(())
}

/// The image updater's registry goes away: every app keeps the image it runs, the updater stays
/// up and says so once per app (not at every retry), and once the registry is back with a new
/// tag every app takes it within one updater interval.
#[tokio::test]
async fn the_image_updater_rides_out_a_registry_outage_and_updates_every_app_after_it() -> Result<()>
{
    let apps_wanted = scale("FERRY_FAULTS_APPS", 2);
    let outage = Duration::from_secs(scale("FERRY_FAULTS_OUTAGE", 5) as u64);
    let interval = Duration::from_secs(10);
    let mut story = Story::new().await?;

    // A registry of the story's own (stopping it disturbs no other test), over TLS with a
    // login, holding 1.0.0 of each app's image; each app a Kustomize directory deploying it.
    let mut registry = Registry::start(RegistryOptions {
        tls: true,
        auth: Some(("ferry", "registry-s3cret")),
        ..Default::default()
    })?;
    let host = registry.host();
    let image = |i: usize| format!("{host}/app{i}");
    for i in 0..apps_wanted {
        push(&registry, &format!("app{i}"), "1.0.0").await?;
        story.repo.write(
            &format!("images{i}/kustomization.yaml"),
            "resources: [deployment.yaml]\n",
        )?;
        story.repo.write(
            &format!("images{i}/deployment.yaml"),
            deployment(i, &format!("{}:1.0.0", image(i))),
        )?;
    }
    story.repo.commit("apps running 1.0.0 of their images")?;
    story.start_controller()?;
    let apps: Vec<String> = (0..apps_wanted)
        .map(|i| story.app_name(&format!("images{i}")))
        .collect();
    for (i, app) in apps.iter().enumerate() {
        create_image_app(&story, app, &format!("images{i}"), &image(i)).await?;
    }
    for (i, app) in apps.iter().enumerate() {
        story
            .wait_app(app, "Synced and Healthy at 1.0.0", |a| {
                is::synced_and_healthy(a) && runs(a, &format!("{}:1.0.0", image(i)))
            })
            .await?;
    }
    let mut updater = UpdaterProcess::start(&story, &registry, interval).await?;
    story
        .eventually("the updater's first cycle", || async {
            Ok(updater
                .metric("argocd_image_updater_registry_requests_total")
                .await?
                > 0)
        })
        .await?;

    // The registry goes away for at least the outage, and until every app's lookup failed
    // twice: a retry that logged again would show.
    registry.stop();
    let stopped = std::time::Instant::now();
    tokio::time::sleep(outage).await;
    story
        .eventually("every app's lookup failing twice", || async {
            Ok(updater
                .metric("argocd_image_updater_images_errors_total")
                .await?
                >= 2 * apps_wanted as u64)
        })
        .await?;
    let failed_lookups = updater
        .metric("argocd_image_updater_images_errors_total")
        .await?;
    assert!(
        updater.is_running()?,
        "the updater exited:\n{}",
        updater.log()
    );
    for (i, app) in apps.iter().enumerate() {
        let app = story.app(app).await?;
        assert!(
            kustomize_images(&app).is_empty() && runs(&app, &format!("{}:1.0.0", image(i))),
            "changed during the outage: {:?}",
            app.spec
        );
    }

    // Back on the same port, where CI pushes 1.1.0 of every image: only lookups made after the
    // outage can find it, and ferry syncs the write-back (a spec change at the same revision).
    registry.restart()?;
    let recovered = std::time::Instant::now();
    let outage_lasted = stopped.elapsed();
    for i in 0..apps_wanted {
        push(&registry, &format!("app{i}"), "1.1.0").await?;
    }
    story
        .eventually("every app's spec at 1.1.0", || async {
            let mut updated = 0;
            for (i, app) in apps.iter().enumerate() {
                let app = story.app(app).await?;
                if kustomize_images(&app) == [format!("{}:1.1.0", image(i))] {
                    updated += 1;
                }
            }
            Ok(updated == apps_wanted)
        })
        .await?;
    let converged = recovered.elapsed();
    for (i, app) in apps.iter().enumerate() {
        story
            .wait_app(app, "Synced and Healthy at 1.1.0", |a| {
                is::synced_and_healthy(a) && runs(a, &format!("{}:1.1.0", image(i)))
            })
            .await?;
    }
    let running = recovered.elapsed();

    let log = updater.log();
    let warnings = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .count();
    let recoveries = log.lines().filter(|l| l.contains("recovered")).count();
    println!(
        "faults: registry outage {:.0} s: {apps_wanted}/{apps_wanted} apps at the tag pushed \
         after it {:.1} s after the registry came back (interval {} s), running it after {:.1} \
         s, {failed_lookups} failed lookups, {warnings} warnings and {recoveries} recoveries \
         logged, updater RSS {:.0} MiB",
        outage_lasted.as_secs_f64(),
        converged.as_secs_f64(),
        interval.as_secs(),
        running.as_secs_f64(),
        rss_mib(Some(updater.child.id()))
    );
    assert!(
        updater.is_running()?,
        "the updater exited:\n{}",
        updater.log()
    );
    // Once per app and failure streak: the outage, then its end.
    assert_eq!(warnings, apps_wanted, "{log}");
    assert_eq!(recoveries, apps_wanted, "{log}");
    assert!(
        converged < interval * 2,
        "the apps took {converged:?} after the registry came back (interval {interval:?})"
    );
    Ok(())
}

/// A Deployment of `image` (kwok runs its pods).
fn deployment(i: usize, image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: web-{i}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web-{i}}}}}
  template:
    metadata: {{labels: {{app: web-{i}}}}}
    spec:
      containers: [{{name: web, image: '{image}'}}]
"
    )
}

/// Pushes a test image to `repository:tag` (no Docker).
async fn push(registry: &Registry, repository: &str, tag: &str) -> Result<()> {
    registry
        .push_image(repository, tag, &TestImage::default(), ManifestFormat::Oci)
        .await?;
    Ok(())
}

/// An automated app of the story's repository at `path` whose `image` the image updater follows
/// (semver, the newest version; written back to the Application's Kustomize images).
async fn create_image_app(story: &Story, name: &str, path: &str, image: &str) -> Result<()> {
    let app: ferry_types::Application = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": name,
            "annotations": {"argocd-image-updater.argoproj.io/image-list": format!("web={image}")},
        },
        "spec": {
            "project": "default",
            "source": {"repoURL": story.repo.file_url(), "path": path},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": story.namespace()},
            "syncPolicy": {"automated": {}},
        },
    }))?;
    story
        .ctx
        .api::<ferry_types::Application>()
        .create(&PostParams::default(), &app)
        .await?;
    Ok(())
}

/// Whether the app's status reports it runs `image`.
fn runs(app: &ferry_types::Application, image: &str) -> bool {
    let status = app.status.as_ref();
    status.is_some_and(|s| s.summary.images.iter().any(|i| i == image))
}

/// The Kustomize images of the app's spec: where the updater writes.
fn kustomize_images(app: &ferry_types::Application) -> Vec<String> {
    let source = app.spec.source.as_ref();
    let kustomize = source.and_then(|s| s.kustomize.as_ref());
    kustomize.map(|k| k.images.clone()).unwrap_or_default()
}

/// `ferry-image-updater run` for the story's namespace, with the registry's CA and its login
/// (from a Secret, as registries.conf's `secret:`), logging to a file; killed when dropped.
struct UpdaterProcess {
    child: std::process::Child,
    metrics_port: u16,
    work: tempfile::TempDir,
}

impl UpdaterProcess {
    async fn start(story: &Story, registry: &Registry, interval: Duration) -> Result<Self> {
        let namespace = story.namespace();
        let login: Secret = serde_json::from_value(json!({
            "metadata": {"name": "registry-login"},
            "stringData": {"creds": "ferry:registry-s3cret"},
        }))?;
        story
            .ctx
            .api::<Secret>()
            .create(&PostParams::default(), &login)
            .await?;
        let work = tempfile::Builder::new()
            .prefix("ferry-faults-updater-")
            .tempdir()?;
        let ca = work.path().join("registry-ca.crt");
        std::fs::write(&ca, registry.tls_certificate().unwrap_or_default())?;
        let conf = work.path().join("registries.conf");
        std::fs::write(
            &conf,
            format!(
                "registries:
- name: outage
  api_url: {api_url}
  prefix: {prefix}
  ca_file: {ca}
  credentials: secret:{namespace}/registry-login#creds
",
                api_url = registry.api_url(),
                prefix = registry.host(),
                ca = ca.display(),
            ),
        )?;
        let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::File::create(work.path().join("updater.log"))?;
        let child = std::process::Command::new(workspace_binary("ferry-image-updater")?)
            .args(["run", "--namespace", namespace])
            .args(["--interval", &format!("{}s", interval.as_secs())])
            .args(["--metrics-port", &metrics_port.to_string()])
            .arg("--registries-conf-path")
            .arg(&conf)
            .arg("--kubeconfig")
            .arg(story.ctx.kubeconfig())
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        Ok(Self {
            child,
            metrics_port,
            work,
        })
    }

    /// The sum of a metric's values over its labels.
    async fn metric(&self, name: &str) -> Result<u64> {
        let page = ferry_testkit::server::scrape_metrics(self.metrics_port).await?;
        Ok(page
            .lines()
            .filter(|line| line.starts_with(&format!("{name}{{")))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum())
    }

    fn is_running(&mut self) -> Result<bool> {
        Ok(self.child.try_wait()?.is_none())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.work.path().join("updater.log")).unwrap_or_default()
    }
}

impl Drop for UpdaterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
