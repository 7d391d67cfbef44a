//! Metrics, told from an operator's seat: after an app is created and synced, the controller's
//! `/metrics` page shows the sync, the app's state, reconciles, Git and Kubernetes requests and
//! the cluster cache under Argo CD's names; a deleted app leaves the page. The Kubernetes
//! requests also tell how little a first sync and a refresh ask of the API server.

use std::time::Duration;

use anyhow::Result;
use ferry_e2e::{Story, is};
use ferry_types::application::REFRESH_ANNOTATION;
use futures::StreamExt;
use kube::api::{DeleteParams, Patch, PatchParams, WatchEvent};
use serde_json::json;

const IN_CLUSTER: &str = "https://kubernetes.default.svc";

#[tokio::test]
async fn metrics_reflect_a_sync_and_forget_a_deleted_app() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    let app = story.app_name("metered");
    story.create_app(&app, "guestbook", &[])?;
    story
        .wait_app(&app, "OutOfSync before any sync", is::out_of_sync)
        .await?;
    story.ferry(&["app", "sync", &app, "--timeout", "120"])?;
    story
        .wait_app(&app, "Synced and Healthy", |a| {
            is::synced_and_healthy(a) && is::operation_finished(a)
        })
        .await?;

    let ns = story.namespace().to_string();
    let repo = story.repo.file_url();
    let info = [
        ("namespace", ns.as_str()),
        ("name", app.as_str()),
        ("project", "default"),
        ("autosync_enabled", "false"),
        ("dest_server", IN_CLUSTER),
        ("dest_namespace", ns.as_str()),
        ("sync_status", "Synced"),
        ("health_status", "Healthy"),
        ("operation", ""),
    ];
    // The app's info follows the controller's view of it, a watch event after the status write.
    story
        .eventually(
            "argocd_app_info shows the app Synced and Healthy",
            || async { Ok(value(&story.metrics().await?, "argocd_app_info", &info) == 1.0) },
        )
        .await?;
    let text = story.metrics().await?;

    let synced = value(
        &text,
        "argocd_app_sync_total",
        &[
            ("namespace", &ns),
            ("name", &app),
            ("project", "default"),
            ("dest_server", IN_CLUSTER),
            ("phase", "Succeeded"),
        ],
    );
    assert_eq!(synced, 1.0, "{text}");
    let reconciles = value(
        &text,
        "argocd_app_reconcile_count",
        &[("namespace", &ns), ("dest_server", IN_CLUSTER)],
    );
    assert!(reconciles >= 2.0, "{text}");
    for request_type in ["ls-remote", "fetch"] {
        let requests = value(
            &text,
            "argocd_git_request_total",
            &[("repo", &repo), ("request_type", request_type)],
        );
        assert!(requests >= 1.0, "{request_type}: {text}");
        let timed = value(
            &text,
            "argocd_git_request_duration_seconds_count",
            &[("repo", &repo), ("request_type", request_type)],
        );
        assert_eq!(timed, requests, "{text}");
    }
    let renders = value(
        &text,
        "ferry_render_duration_seconds_count",
        &[("source_type", "Directory")],
    );
    assert!(renders >= 2.0, "{text}");
    // The sync applied the Deployment (server-side apply is a PATCH, answered 201 when it
    // creates), status writes went to the Application, and its watch is running.
    let applied = value(
        &text,
        "argocd_app_k8s_request_total",
        &[
            ("server", IN_CLUSTER),
            ("verb", "patch"),
            ("resource_kind", "deployments.apps"),
        ],
    );
    assert!(applied >= 1.0, "{text}");
    for verb in ["patch", "watch"] {
        let requests = value(
            &text,
            "argocd_app_k8s_request_total",
            &[
                ("server", IN_CLUSTER),
                ("verb", verb),
                ("resource_kind", "applications.argoproj.io"),
                ("response_code", "200"),
            ],
        );
        assert!(requests >= 1.0, "{verb}: {text}");
    }
    let objects = value(
        &text,
        "argocd_cluster_api_resource_objects",
        &[("server", IN_CLUSTER)],
    );
    assert!(objects >= 3.0, "{text}");
    let kinds = value(
        &text,
        "argocd_cluster_api_resources",
        &[("server", IN_CLUSTER)],
    );
    assert!(kinds >= 10.0, "{text}");

    // Deleted (no finalizer: its resources stay): its info series goes with it.
    story.apps().delete(&app, &DeleteParams::default()).await?;
    story
        .eventually("argocd_app_info without the deleted app", || async {
            let text = story.metrics().await?;
            Ok(value(&text, "argocd_app_info", &[("name", &app)]) == 0.0)
        })
        .await?;
    Ok(())
}

/// A first sync of objects that do not exist yet sends each one dry run (the sync's check
/// before anything is applied) and one apply; the comparisons before it (of missing objects)
/// and after it (of objects as the sync left them) send none. Around it the controller reads
/// the app once (as it is now, before starting the sync), asks once whether the destination
/// namespace exists, reads no settings (it follows argocd-cm), and writes the app a few times
/// (not once per object applied). A refresh is one write.
#[tokio::test]
async fn a_first_sync_and_a_refresh_ask_the_api_server_no_more_than_needed() -> Result<()> {
    const OBJECTS: usize = 5;
    let mut story = Story::new().await?;
    for i in 0..OBJECTS {
        story.repo.write(
            &format!("counted/config-{i}.yaml"),
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: config-{i}}}\ndata: {{index: \"{i}\"}}\n"),
        )?;
    }
    story.repo.commit("ConfigMaps to count requests by")?;
    story.start_controller()?;
    let app = story.app_name("counted");
    story.create_app(&app, "counted", &["--sync-option", "CreateNamespace=true"])?;
    story
        .wait_app(&app, "OutOfSync before any sync", is::out_of_sync)
        .await?;
    let writes_before = settled(|| requests(&story, "patch", "applications.argoproj.io")).await?;
    let reads = || async {
        Ok::<_, anyhow::Error>([
            requests(&story, "get", "applications.argoproj.io").await?,
            requests(&story, "get", "namespaces").await?,
            requests(&story, "get", "configmaps").await?,
        ])
    };
    let reads_before = reads().await?;
    // Server-side apply and its dry run are both PATCHes of the ConfigMap.
    let config_map_patches = || requests(&story, "patch", "configmaps");
    assert_eq!(
        config_map_patches().await?,
        0.0,
        "missing objects are compared without the API server"
    );
    story.ferry(&["app", "sync", &app, "--timeout", "120"])?;
    story
        .wait_app(&app, "Synced and Healthy", |a| {
            is::synced_and_healthy(a) && is::operation_finished(a)
        })
        .await?;
    let app_writes = settled(|| requests(&story, "patch", "applications.argoproj.io")).await?;
    assert_eq!(
        config_map_patches().await?,
        (2 * OBJECTS) as f64,
        "one dry run and one apply per ConfigMap"
    );
    let reads_after = reads().await?;
    let read = |i: usize| reads_after[i] - reads_before[i];
    assert_eq!(read(0), 1.0, "one read of the app, before the sync starts");
    assert_eq!(
        read(1),
        1.0,
        "CreateNamespace=true: one look whether it exists"
    );
    assert_eq!(
        read(2),
        0.0,
        "no argocd-cm read for the impersonation settings"
    );
    // The Running state, the end (result, history, `operation` cleared), the status while
    // the sync applies (at most once a second) and after it.
    let sync_writes = app_writes - writes_before;
    assert!(
        sync_writes <= 5.0,
        "{sync_writes} writes of the app for a sync of {OBJECTS} objects"
    );

    let refresh = json!({"metadata": {"annotations": {REFRESH_ANNOTATION: "normal"}}});
    story
        .apps()
        .patch(&app, &PatchParams::default(), &Patch::Merge(&refresh))
        .await?;
    story
        .wait_app(&app, "refreshed", |a| {
            !a.metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(REFRESH_ANNOTATION))
        })
        .await?;
    let after = settled(|| requests(&story, "patch", "applications.argoproj.io")).await?;
    assert_eq!(
        after - app_writes,
        1.0,
        "the refresh's status and the cleared request in one write"
    );
    assert_eq!(
        config_map_patches().await?,
        (2 * OBJECTS) as f64,
        "a normal refresh reuses the dry-run answers"
    );
    Ok(())
}

/// The controller's requests of `verb` on `resource_kind`, any response.
async fn requests(story: &Story, verb: &str, resource_kind: &str) -> Result<f64> {
    let text = story.metrics().await?;
    Ok(value(
        &text,
        "argocd_app_k8s_request_total",
        &[
            ("server", IN_CLUSTER),
            ("verb", verb),
            ("resource_kind", resource_kind),
        ],
    ))
}

/// `count` once it stays the same over two of the story's 3-second resyncs.
async fn settled<F, Fut>(count: F) -> Result<f64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<f64>>,
{
    let mut last = count().await?;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(7)).await;
        let now = count().await?;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
    anyhow::bail!("still changing after 140 s: {last}")
}

/// The sum of the samples of `metric` whose labels include `labels` (0 when there is none).
fn value(text: &str, metric: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (name, rest) = series.split_once('{').unwrap_or((series, "}"));
            if name != metric {
                return None;
            }
            let found: Vec<(&str, &str)> = rest
                .trim_end_matches('}')
                .split("\",")
                .filter_map(|pair| pair.split_once("=\""))
                .map(|(k, v)| (k, v.trim_end_matches('"')))
                .collect();
            let matches = labels.iter().all(|wanted| found.contains(wanted));
            matches.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// An automated sync costs the app one write to begin: the status that finds it OutOfSync, the
/// requested `operation` and its Running state arrive together (every version of the app the
/// watch shows with an `operation` already has it Running).
#[tokio::test]
async fn an_automated_sync_begins_with_one_write() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    let app = story.app_name("automated");
    let mut versions = story
        .apps()
        .watch(
            &kube::api::WatchParams::default().fields(&format!("metadata.name={app}")),
            "0",
        )
        .await?
        .boxed();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let watching = tokio::spawn(async move {
        while let Some(event) = versions.next().await {
            if let Ok(WatchEvent::Added(o) | WatchEvent::Modified(o)) = event {
                sink.lock()
                    .unwrap()
                    .push(serde_json::to_value(o).unwrap_or_default());
            }
        }
    });
    story.create_app(&app, "guestbook", &["--sync-policy", "automated"])?;
    story
        .wait_app(&app, "Synced and Healthy", |a| {
            is::synced_and_healthy(a) && is::operation_finished(a)
        })
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    watching.abort();
    let versions = seen.lock().unwrap().clone();
    let requested: Vec<_> = versions
        .iter()
        .filter(|v| !v["operation"].is_null())
        .collect();
    assert!(!requested.is_empty(), "no version shows the request");
    for version in &requested {
        assert_eq!(
            version["status"]["operationState"]["phase"], "Running",
            "{version:#}"
        );
    }
    assert_eq!(requested[0]["status"]["sync"]["status"], "OutOfSync");
    Ok(())
}
