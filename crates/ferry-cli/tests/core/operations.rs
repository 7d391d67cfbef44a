//! Operations: sync and rollback requests as Argo CD's API server writes them, waiting for the
//! controller's outcome, `app wait`, `app history`.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use ferry_testkit::kube::TestContext;
use ferry_types::Application;
use kube::Api;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

use crate::support::{Ferry, USER, app_repo, create_app, patch_app, texts};

/// Reads output lines until `expected` comes.
async fn expect_line(lines: &mut Lines<BufReader<ChildStdout>>, expected: &str) -> Result<()> {
    let mut seen = Vec::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .with_context(|| format!("waiting for {expected:?}, seen {seen:?}"))??;
        match line {
            Some(line) if line == expected => return Ok(()),
            Some(line) => seen.push(line),
            None => anyhow::bail!("output ended before {expected:?}, seen {seen:?}"),
        }
    }
}

/// Waits until `child` has requested an operation on the app, as the controller would notice
/// it.
async fn requested_operation(
    apps: &Api<Application>,
    name: &str,
    child: &mut Child,
) -> Result<Value> {
    for _ in 0..300 {
        if let Some(operation) = apps.get(name).await?.operation {
            return Ok(serde_json::to_value(operation)?);
        }
        if let Some(status) = child.try_wait()? {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .await?;
            anyhow::bail!("ferry exited ({status}) without requesting an operation: {stderr}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("no operation was requested on app {name}")
}

#[tokio::test]
async fn sync_writes_argo_cds_operation_and_waits_for_its_outcome() -> Result<()> {
    let ctx = TestContext::new().await?;
    let ferry = Ferry::new(&ctx);
    let apps: Api<Application> = ctx.api();
    let ns = ctx.namespace();
    let repo = app_repo()?;
    let commit = repo.head()?;
    create_app(&ferry, "web", &repo, &[]).await;

    // --async: the request is written and the command returns. The branch is resolved to the
    // commit it points at now, as Argo CD's API server does.
    let out = ferry
        .ok(&[
            "app",
            "sync",
            "web",
            "--async",
            "--prune",
            "--resource",
            ":ConfigMap:web-config",
            "--sync-option",
            "Replace=true",
            "--apply-out-of-sync-only",
        ])
        .await;
    assert_eq!(out, "sync of app web requested\n");
    let app = apps.get("web").await?;
    assert_eq!(
        serde_json::to_value(app.operation)?,
        json!({
            "sync": {
                "revision": commit,
                "prune": true,
                "syncStrategy": {"hook": {}},
                "resources": [{"kind": "ConfigMap", "name": "web-config"}],
                "syncOptions": ["Replace=true", "ApplyOutOfSyncOnly=true"]
            },
            "initiatedBy": {"username": USER}
        })
    );
    let err = ferry.fails(&["app", "sync", "web", "--async"]).await;
    assert!(
        err.contains("application web: another operation is already in progress"),
        "{err}"
    );

    // The controller takes it, runs it and records a failure.
    let failed = json!({"operation": null, "status": {"operationState": {
        "phase": "Failed", "message": "one or more objects failed to apply",
        "operation": {"sync": {"revision": commit}},
        "startedAt": "2024-05-01T10:00:00Z", "finishedAt": "2024-05-01T10:00:03Z"}}});
    patch_app(&apps, "web", failed).await?;

    // Waiting: the command returns once this operation has finished, with its outcome.
    let mut child = ferry
        .command(&["app", "sync", "web", "--timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let operation = requested_operation(&apps, "web", &mut child).await?;
    assert_eq!(operation["sync"]["revision"], commit);
    let app = apps.get("web").await?;
    assert!(
        app.status.unwrap().operation_state.is_none(),
        "the previous operation's state must be cleared with the request"
    );
    patch_app(&apps, "web", json!({
        "operation": null,
        "status": {
            "sync": {"status": "Synced", "revision": commit},
            "health": {"status": "Healthy"},
            "resources": [{"version": "v1", "kind": "ConfigMap", "namespace": ns, "name": "web-config",
                           "status": "Synced", "health": {"status": "Healthy"}}],
            "operationState": {
                "phase": "Succeeded", "message": "successfully synced (all tasks run)",
                "operation": operation,
                "startedAt": "2024-05-01T11:00:00Z", "finishedAt": "2024-05-01T11:00:02Z",
                "syncResult": {"revision": commit, "resources": [
                    {"group": "", "version": "v1", "kind": "ConfigMap", "namespace": ns, "name": "web-config",
                     "status": "Synced", "message": "configmap/web-config created"}]}
            }
        }
    }))
    .await?;
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .context("ferry app sync did not return")??;
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}\n{stdout}");
    assert!(stdout.contains("Phase:          Succeeded"), "{stdout}");
    assert!(
        stdout.contains("Message:        successfully synced (all tasks run)"),
        "{stdout}"
    );
    let row = stdout
        .lines()
        .find(|l| l.contains("configmap/web-config created"))
        .with_context(|| format!("no resource row in:\n{stdout}"))?;
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        [
            "ConfigMap",
            ns,
            "web-config",
            "Synced",
            "Healthy",
            "configmap/web-config",
            "created"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_sync_exits_non_zero_with_its_message() -> Result<()> {
    let ctx = TestContext::new().await?;
    let ferry = Ferry::new(&ctx);
    let apps: Api<Application> = ctx.api();
    let repo = app_repo()?;
    create_app(&ferry, "web", &repo, &[]).await;

    let mut child = ferry
        .command(&["app", "sync", "web", "--dry-run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let operation = requested_operation(&apps, "web", &mut child).await?;
    assert_eq!(operation["sync"]["dryRun"], true);
    patch_app(
        &apps,
        "web",
        json!({"operation": null, "status": {"operationState": {
        "phase": "Error", "message": "ComparisonError: rpc error", "operation": operation,
        "startedAt": "2024-05-01T11:00:00Z", "finishedAt": "2024-05-01T11:00:01Z"}}}),
    )
    .await?;
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await??;
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("Phase:          Error"), "{stdout}");
    assert!(
        stderr.contains("app web: operation Error: ComparisonError: rpc error"),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test]
async fn rollback_refuses_auto_sync_and_redeploys_a_recorded_source() -> Result<()> {
    let ctx = TestContext::new().await?;
    let ferry = Ferry::new(&ctx);
    let apps: Api<Application> = ctx.api();
    let repo = app_repo()?;
    let first = repo.head()?;
    repo.write(
        "app/extra.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n",
    )?;
    let second = repo.commit("extra")?;
    let url = repo.file_url();
    create_app(
        &ferry,
        "web",
        &repo,
        &["--revision", "main", "--sync-policy", "automated"],
    )
    .await;
    // Two deployments, as the controller records them.
    let source = json!({"repoURL": url, "path": "app", "targetRevision": "main"});
    patch_app(
        &apps,
        "web",
        json!({"status": {"history": [
            {"id": 1, "revision": first, "deployedAt": "2024-05-01T10:00:00Z", "source": source},
            {"id": 2, "revision": second, "deployedAt": "2024-05-02T10:00:00Z", "source": source}
        ]}}),
    )
    .await?;

    let history = ferry.ok(&["app", "history", "web"]).await;
    let rows: Vec<Vec<&str>> = history
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["ID", "DATE", "REVISION"]);
    assert_eq!(
        rows[1],
        [
            "1",
            "2024-05-01T10:00:00Z",
            "main",
            &format!("({})", &first[..7])
        ]
    );
    assert_eq!(rows[2][0], "2");

    let err = ferry.fails(&["app", "rollback", "web"]).await;
    assert!(
        err.contains("application web: rollback cannot be initiated when auto-sync is enabled"),
        "{err}"
    );
    assert!(apps.get("web").await?.operation.is_none());

    ferry
        .ok(&["app", "set", "web", "--sync-policy", "none"])
        .await;
    let err = ferry.fails(&["app", "rollback", "web", "7"]).await;
    assert!(
        err.contains("app web has no deployment with ID 7 in its history"),
        "{err}"
    );
    // Without an ID: the deployment before the current one.
    let out = ferry.ok(&["app", "rollback", "web", "--async"]).await;
    assert_eq!(out, "rollback of app web to deployment 1 requested\n");
    assert_eq!(
        serde_json::to_value(apps.get("web").await?.operation)?,
        json!({
            "sync": {"revision": first, "syncStrategy": {"apply": {}}, "source": source},
            "initiatedBy": {"username": USER}
        })
    );
    Ok(())
}

#[tokio::test]
async fn wait_reports_progress_until_synced_and_healthy_or_times_out() -> Result<()> {
    let ctx = TestContext::new().await?;
    let ferry = Ferry::new(&ctx);
    let apps: Api<Application> = ctx.api();
    let repo = app_repo()?;
    create_app(&ferry, "web", &repo, &[]).await;

    let err = ferry
        .fails(&["app", "wait", "web", "--health", "--timeout", "2"])
        .await;
    assert!(
        err.contains("app web: timed out after 2s waiting for health Healthy; app web: sync Unknown, health Unknown, operation none"),
        "{err}"
    );

    // The test changes the status only once `wait` has printed the state before, so every
    // step is seen.
    let mut child = ferry
        .command(&["app", "wait", "web", "--timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    expect_line(
        &mut lines,
        "app web: sync Unknown, health Unknown, operation none",
    )
    .await?;
    patch_app(
        &apps,
        "web",
        json!({"status": {"sync": {"status": "OutOfSync"}, "health": {"status": "Progressing"}}}),
    )
    .await?;
    expect_line(
        &mut lines,
        "app web: sync OutOfSync, health Progressing, operation none",
    )
    .await?;
    patch_app(
        &apps,
        "web",
        json!({"status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}}),
    )
    .await?;
    expect_line(
        &mut lines,
        "app web: sync Synced, health Healthy, operation none",
    )
    .await?;
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait()).await??;
    assert!(status.success(), "ferry app wait exited with {status}");
    Ok(())
}
