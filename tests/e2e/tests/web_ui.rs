//! The web UI in a real browser (headless chromium), served by the real `ferry-server` in front
//! of the real controller: a user logs in, watches apps appear and sync in the list without
//! reloading, narrows the list with filters kept in the URL, syncs selected resources from the
//! app's page and then all of them, reads a resource's manifests and diff, is sent back to the
//! login page when the session ends and returns to where they were, rolls back from the history
//! and compares two deployments' manifests, deletes an app, and logs out; a read-only user sees
//! why Sync and Delete are disabled. Another user follows a sync wave by wave under the
//! project's sync window, finds a scaled Deployment's replicas marked as ignored in its diff (the
//! app's rule) and a ConfigMap's changed greeting too (argocd-cm's system-wide rule), opens a
//! group of eight Pods, reads events and a Pod's log, and deletes a resource.

use anyhow::Result;
use ferry_e2e::browser::Browser;
use ferry_e2e::{Story, is};
use ferry_testkit::dex::{Dex, DexClient, MOCK_GROUPS, MOCK_USER_ID};
use ferry_testkit::real_node;
use ferry_types::AppProject;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{Patch, PatchParams};
use serde_json::json;

const HELLO: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: hello
data:
  greeting: hello
";

/// A read-only local account (`role:readonly`).
const VIEWER: &str = "viewer";
const VIEWER_PASSWORD: &str = "viewer-password";

/// A login through the form; the browser is on the login page.
async fn log_in(browser: &Browser, password: &str) -> Result<()> {
    log_in_as(browser, "admin", password).await
}

async fn log_in_as(browser: &Browser, username: &str, password: &str) -> Result<()> {
    browser.fill("input[name=username]", username).await?;
    browser.fill("input[name=password]", password).await?;
    browser.click("form button[type=submit]").await
}

#[tokio::test]
async fn a_user_logs_in_watches_apps_sync_live_and_syncs_from_the_browser() -> Result<()> {
    let mut story = Story::new().await?;
    story.repo.write("hello/configmap.yaml", HELLO)?;
    story.repo.commit("hello")?;
    story.start_controller()?;
    let guestbook = story.app_name("guestbook");
    let hello = story.app_name("hello");
    story.create_app(&guestbook, "guestbook", &[])?;
    story
        .wait_app(&guestbook, "OutOfSync before any sync", is::out_of_sync)
        .await?;
    // SSO configured: the login page offers it beside the password form.
    let oidc = "name: Dex\nissuer: https://dex.invalid/dex\nclientID: ferry\n";
    story
        .ctx
        .api::<ConfigMap>()
        .patch(
            "argocd-cm",
            &PatchParams::apply("web-ui-story"),
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "argocd-cm"},
                "data": {"oidc.config": oidc, "accounts.viewer": "login"},
            })),
        )
        .await?;
    story
        .ctx
        .api::<ConfigMap>()
        .patch(
            "argocd-rbac-cm",
            &PatchParams::apply("web-ui-story"),
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "argocd-rbac-cm"},
                "data": {"policy.csv": format!("g, {VIEWER}, role:readonly")},
            })),
        )
        .await?;
    let server = story.start_server_with_ui().await?;
    // The server made argocd-secret; the viewer's password joins it.
    let hash = bcrypt::hash(VIEWER_PASSWORD, 4)?;
    story
        .ctx
        .api::<Secret>()
        .patch(
            "argocd-secret",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"accounts.viewer.password": hash}})),
        )
        .await?;
    let password =
        ferry_testkit::server::admin_password(&story.ctx.client(), story.namespace()).await?;
    let browser = Browser::start(&format!("http://{}", server.address())).await?;

    // Not logged in: the list sends the user to the login page, which offers SSO too.
    browser.open("/applications").await?;
    browser.at("/login?return_url=%2Fapplications").await?;
    browser
        .find_text("[data-testid=sso-login]", "Log in via Dex")
        .await?;
    browser.screenshot("login").await?;
    browser.fill("input[name=username]", "admin").await?;
    browser
        .fill("input[name=password]", "not the password")
        .await?;
    browser.click("form button[type=submit]").await?;
    browser
        .find_text("[role=alert]", "Invalid username or password")
        .await?;
    log_in(&browser, &password).await?;
    browser.at("/applications").await?;
    browser
        .find(&format!(
            "[data-testid=app-{guestbook}] [data-sync=OutOfSync]"
        ))
        .await?;

    // An app created elsewhere appears, and its automated sync shows, without a reload.
    story.create_app(&hello, "hello", &["--sync-policy", "automated"])?;
    let hello_tile = format!("[data-testid=app-{hello}]");
    browser
        .find(&format!("{hello_tile} [data-sync=Synced]"))
        .await?;
    browser
        .find(&format!("{hello_tile} [data-health=Healthy]"))
        .await?;
    browser
        .find_text("[data-testid=status-counts]", "2 apps")
        .await?;
    browser.screenshot("applications").await?;

    // Filters narrow the list and live in the URL: a reload keeps them.
    browser.fill("input[name=search]", "guestbook").await?;
    browser.gone(&hello_tile).await?;
    browser.at("/applications?search=guestbook").await?;
    browser
        .open("/applications?sync=OutOfSync&view=list")
        .await?;
    browser
        .find(&format!("table [data-testid=app-{guestbook}]"))
        .await?;
    browser.gone(&hello_tile).await?;
    browser
        .find_text("[data-testid=filter-sync]", "OutOfSync")
        .await?;
    browser.open("/applications?health=Healthy").await?;
    browser.find(&hello_tile).await?;
    browser
        .gone(&format!("[data-testid=app-{guestbook}]"))
        .await?;

    // The app's page: sync only the Deployment and the Service from the dialog.
    browser.open("/applications").await?;
    browser
        .click(&format!("a[href='/applications/{guestbook}']"))
        .await?;
    browser.at(&format!("/applications/{guestbook}")).await?;
    let tree = "[data-testid=resource-tree]";
    browser
        .find(&format!(
            "{tree} [data-kind=ConfigMap][data-name=guestbook-config] [data-sync=OutOfSync]"
        ))
        .await?;
    browser.click(".actions button.primary").await?;
    browser
        .click("[role=dialog] input[data-resource='ConfigMap/guestbook-config']")
        .await?;
    browser
        .find_text("[role=dialog] legend", "Resources (2 of 3)")
        .await?;
    browser.click("[role=dialog] button[type=submit]").await?;
    browser.gone("[role=dialog]").await?;
    let deployment = format!("{tree} [data-kind=Deployment][data-name=guestbook]");
    browser
        .find(&format!("{deployment} [data-sync=Synced]"))
        .await?;
    browser
        .find("[data-testid=operation] [data-phase=Succeeded]")
        .await?;
    browser
        .find(&format!(
            "{tree} [data-kind=ConfigMap][data-name=guestbook-config] [data-sync=OutOfSync]"
        ))
        .await?;
    // Only the selected resources were applied: the ConfigMap is still not in the cluster.
    let config_map = story
        .ctx
        .api::<ConfigMap>()
        .get_opt("guestbook-config")
        .await?;
    assert!(
        config_map.is_none(),
        "a sync of the Deployment and the Service applied the ConfigMap too"
    );
    let service = story.ctx.api::<Service>().get_opt("guestbook").await?;
    assert!(service.is_some(), "the selected Service was not applied");
    // What the Deployment owns hangs under it: its ReplicaSet and that one's two Pods.
    browser
        .find(&format!("{tree} [data-kind=ReplicaSet]"))
        .await?;
    story
        .eventually("two Pods in the tree", || async {
            let pods = browser
                .run(&format!(
                    "return document.querySelectorAll(\"{tree} [data-kind=Pod]\").length"
                ))
                .await?;
            Ok(pods == json!(2))
        })
        .await?;

    // Then everything: the app is Synced.
    browser.click(".actions button.primary").await?;
    browser
        .find_text("[role=dialog] legend", "Resources (3 of 3)")
        .await?;
    browser.click("[role=dialog] button[type=submit]").await?;
    browser
        .find(&format!(
            "{tree} [data-kind=Application] [data-sync=Synced]"
        ))
        .await?;
    story
        .wait_app(&guestbook, "synced from the browser", |app| {
            is::synced(app) && is::operation_finished(app)
        })
        .await?;
    browser
        .find_text("[data-testid=operation]", "by admin")
        .await?;
    browser.screenshot("application-tree").await?;

    // The Deployment's panel: live manifest, no diff; after a commit and a refresh, the diff.
    browser.click(&deployment).await?;
    browser
        .click_text("[data-testid=resource-panel] [role=tab]", "Live manifest")
        .await?;
    browser.find_text(".manifest", "replicas: 2").await?;
    browser
        .click_text("[data-testid=resource-panel] [role=tab]", "Diff")
        .await?;
    browser.find("[data-testid=no-diff]").await?;
    let manifest =
        std::fs::read_to_string(story.repo.work_path().join("guestbook/deployment.yaml"))?;
    story.repo.write(
        "guestbook/deployment.yaml",
        manifest.replace("replicas: 2", "replicas: 3"),
    )?;
    story.repo.commit("three replicas")?;
    browser.click_text(".actions button", "Refresh").await?;
    browser
        .find(&format!(
            "{tree} [data-kind=Application] [data-sync=OutOfSync]"
        ))
        .await?;
    browser
        .click_text("[data-testid=resource-panel] [role=tab]", "Summary")
        .await?;
    browser
        .click_text("[data-testid=resource-panel] [role=tab]", "Diff")
        .await?;
    browser
        .find_text("[data-testid=diff]", "replicas: 3")
        .await?;
    browser.screenshot("resource-diff").await?;

    // The commit synced from the dialog, then rolled back from the history: two replicas again.
    browser.click(".actions button.primary").await?;
    browser
        .find_text("[role=dialog] legend", "Resources (3 of 3)")
        .await?;
    browser.click("[role=dialog] button[type=submit]").await?;
    story
        .wait_app(&guestbook, "synced to three replicas", |app| {
            is::synced(app) && is::operation_finished(app)
        })
        .await?;
    let replicas = || async {
        let deployment = story.ctx.api::<Deployment>().get("guestbook").await?;
        anyhow::Ok(deployment.spec.and_then(|spec| spec.replicas))
    };
    assert_eq!(replicas().await?, Some(3));
    // Deployments 0 (the selected resources), 1 (all) and 2 (three replicas): back to 1.
    browser
        .click("[data-testid=history] [data-history-id='1'] button")
        .await?;
    browser
        .click("[role=dialog][aria-label=Rollback] button.primary")
        .await?;
    story
        .eventually("two replicas after the rollback", || async {
            Ok(replicas().await? == Some(2))
        })
        .await?;
    browser
        .find("[data-testid=history] [data-history-id='3']")
        .await?;
    // Deployments 1 and 2 ticked: the diff of their manifests, as rendered at each revision.
    browser
        .click("[data-testid=history] [data-history-id='1'] input[name=compare]")
        .await?;
    browser
        .click("[data-testid=history] [data-history-id='2'] input[name=compare]")
        .await?;
    let revisions = "[data-testid=revision-diff]";
    browser
        .find_text(&format!("{revisions} h3"), "Deployment 1 → 2")
        .await?;
    browser
        .find_text(&format!("{revisions} td.code.removed"), "replicas: 2")
        .await?;
    browser
        .find_text(&format!("{revisions} td.code.added"), "replicas: 3")
        .await?;
    browser
        .run("document.querySelector('[data-testid=revision-diff]').scrollIntoView()")
        .await?;
    browser.screenshot("history-diff").await?;
    browser
        .find(&format!(
            "{tree} [data-kind=Application] [data-sync=OutOfSync]"
        ))
        .await?;

    // The session ends (its cookie is gone): the next action leads to the login page, and
    // logging in comes back to the app.
    browser.client.delete_cookie("argocd.token").await?;
    // Refresh, unless the tree's own periodic reload already found the session gone.
    browser
        .run(
            "[...document.querySelectorAll('.actions button')]\
             .find(b => b.textContent === 'Refresh')?.click()",
        )
        .await?;
    browser
        .at(&format!("/login?return_url=%2Fapplications%2F{guestbook}"))
        .await?;
    log_in(&browser, &password).await?;
    browser.at(&format!("/applications/{guestbook}")).await?;
    browser.find(tree).await?;

    // Who is logged in.
    browser.click_text("nav a", "User info").await?;
    browser
        .find_text("[data-testid=user-info]", "admin")
        .await?;

    // Deleting an app from its page takes it out of the list, and its resources with it.
    browser.open(&format!("/applications/{hello}")).await?;
    browser.click_text(".actions button", "Delete").await?;
    browser
        .fill("[role=dialog] input[name=confirm]", &hello)
        .await?;
    browser.click("[role=dialog] button[type=submit]").await?;
    browser.at("/applications").await?;
    browser
        .find(&format!("[data-testid=app-{guestbook}]"))
        .await?;
    story
        .eventually("the hello app deleted", || async {
            Ok(story.apps().get_opt(&hello).await?.is_none())
        })
        .await?;
    browser.gone(&hello_tile).await?;
    story
        .eventually("the hello ConfigMap deleted with its app", || async {
            Ok(story
                .ctx
                .api::<ConfigMap>()
                .get_opt("hello")
                .await?
                .is_none())
        })
        .await?;

    // Logging out.
    browser.click("a[href='/auth/logout']").await?;
    browser.at("/login?return_url=%2F").await?;
    browser.open("/applications").await?;
    browser.at("/login?return_url=%2Fapplications").await?;

    // A read-only user sees the app, but Sync and Delete are disabled and say why.
    log_in_as(&browser, VIEWER, VIEWER_PASSWORD).await?;
    browser.at("/applications").await?;
    browser.open(&format!("/applications/{guestbook}")).await?;
    browser
        .find_text("[data-testid=denied]", "may not sync applications default/")
        .await?;
    let disabled = browser
        .run(
            "return [...document.querySelectorAll('.actions button')]\
             .filter(b => b.disabled).map(b => b.textContent)",
        )
        .await?;
    assert_eq!(disabled, json!(["Sync", "Terminate", "Delete"]));
    // Nor may they delete one of its resources.
    browser.click(&deployment).await?;
    let delete = browser
        .find_text("[data-testid=resource-panel] .actions button", "Delete")
        .await?;
    assert!(
        !delete.is_enabled().await?,
        "a read-only user may delete a resource"
    );
    assert!(
        delete
            .attr("title")
            .await?
            .unwrap_or_default()
            .contains("may not delete applications default/"),
        "no reason given"
    );
    browser.screenshot("read-only").await?;

    browser.close().await?;
    server.stop().await?;
    Ok(())
}

/// A ConfigMap applied in sync wave 1, after the guestbook's wave 0.
const LATE: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: guestbook-late
  annotations:
    argocd.argoproj.io/sync-wave: \"1\"
data:
  greeting: later
";

#[tokio::test]
async fn a_user_follows_a_sync_by_wave_reads_events_and_ignored_fields_and_deletes_a_resource()
-> Result<()> {
    let mut story = Story::new().await?;
    story.repo.write("guestbook/late.yaml", LATE)?;
    story.repo.commit("a late ConfigMap")?;
    // The project allows syncs in a window open all the time.
    story
        .ctx
        .api::<AppProject>()
        .patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"syncWindows": [{
                "kind": "allow", "schedule": "* * * * *", "duration": "1h",
                "applications": ["*"], "manualSync": true,
            }]}})),
        )
        .await?;
    // A system-wide rule: ConfigMaps' greetings are anyone's to change.
    story
        .ctx
        .api::<ConfigMap>()
        .patch(
            "argocd-cm",
            &PatchParams::apply("web-ui-story"),
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "argocd-cm"},
                "data": {"resource.customizations.ignoreDifferences.ConfigMap":
                         "jsonPointers:\n- /data/greeting\n"},
            })),
        )
        .await?;
    story.start_controller()?;
    let guestbook = story.app_name("guestbook");
    story.create_app(&guestbook, "guestbook", &[])?;
    // The Deployment's replicas belong to whoever scales it, not to Git.
    story
        .apps()
        .patch(
            &guestbook,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ignoreDifferences": [{
                "group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"],
            }]}})),
        )
        .await?;
    story
        .wait_app(&guestbook, "OutOfSync before any sync", is::out_of_sync)
        .await?;
    let server = story.start_server_with_ui().await?;
    let password =
        ferry_testkit::server::admin_password(&story.ctx.client(), story.namespace()).await?;
    let browser = Browser::start(&format!("http://{}", server.address())).await?;
    browser.open(&format!("/applications/{guestbook}")).await?;
    log_in(&browser, &password).await?;
    browser.at(&format!("/applications/{guestbook}")).await?;

    // The project's window is shown as active, and a sync by hand is allowed now.
    browser
        .find("[data-testid=sync-windows] [data-can-sync=true]")
        .await?;
    browser
        .find_text(
            "[data-testid=sync-windows] li[data-kind=allow][data-active=true]",
            "* * * * * for 1h",
        )
        .await?;

    // Syncing everything: the operation shows its steps, wave 0 then wave 1, each done.
    browser.click(".actions button.primary").await?;
    browser
        .find_text("[role=dialog] legend", "Resources (4 of 4)")
        .await?;
    browser.click("[role=dialog] button[type=submit]").await?;
    let steps = "[data-testid=operation-steps]";
    browser
        .find(&format!(
            "{steps} li[data-phase=Sync][data-wave='0'][data-status=done]"
        ))
        .await?;
    browser
        .find_text(
            &format!("{steps} li[data-phase=Sync][data-wave='1'][data-status=done]"),
            "1 of 1 done",
        )
        .await?;
    let order = browser
        .run(&format!(
            "return [...document.querySelectorAll(\"{steps} > li\")].map(s => s.dataset.wave)"
        ))
        .await?;
    assert_eq!(order, json!(["0", "1"]));
    story
        .wait_app(&guestbook, "synced from the browser", |app| {
            is::synced(app) && is::operation_finished(app)
        })
        .await?;
    browser.screenshot("operation-waves").await?;

    // Someone scales the Deployment to eight: the app stays Synced, and the diff shows the
    // replicas on both sides, marked as ignored.
    story
        .ctx
        .api::<Deployment>()
        .patch(
            "guestbook",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 8}})),
        )
        .await?;
    let tree = "[data-testid=resource-tree]";
    let deployment = format!("{tree} [data-kind=Deployment][data-name=guestbook]");
    browser.click(&deployment).await?;
    let tab = "[data-testid=resource-panel] [role=tab]";
    browser.click_text(tab, "Live manifest").await?;
    browser.find_text(".manifest", "replicas: 8").await?;
    browser.click_text(tab, "Diff").await?;
    browser.find("[data-testid=no-diff]").await?;
    browser
        .find_text("[data-testid=ignored-rules]", "/spec/replicas")
        .await?;
    let ignored = "[data-view=split] tr[data-ignored]";
    browser.find_text(ignored, "replicas: 8").await?;
    browser.find_text(ignored, "replicas: 2").await?;
    browser
        .find_text(&format!("{ignored} .ignored-tag"), "ignored")
        .await?;
    browser.screenshot("resource-diff-ignored").await?;
    browser
        .click_text(".manifest-diff button", "Unified")
        .await?;
    browser
        .find_text(
            "[data-view=unified] tr.removed[data-ignored]",
            "replicas: 8",
        )
        .await?;

    // Its events: the Deployment controller scaled its ReplicaSet.
    browser.click_text(tab, "Events").await?;
    browser
        .find_text("[data-testid=events]", "ScalingReplicaSet")
        .await?;
    browser.screenshot("resource-events").await?;

    // Eight Pods under the ReplicaSet are one group node with their count, opened on demand.
    let pods = format!("{tree} button.group-node[data-kind=Pod][data-count='8']");
    browser.find_text(&pods, "8 Pods").await?;
    browser.gone(&format!("{tree} li.group li")).await?;
    browser
        .run("document.querySelector('button.group-node').scrollIntoView({block: 'center'})")
        .await?;
    browser.screenshot("resource-tree-grouped").await?;
    browser.click(&pods).await?;
    story
        .eventually("eight Pod nodes in the open group", || async {
            let shown = browser
                .run(&format!(
                    "return document.querySelectorAll(\"{tree} li.group li [data-kind=Pod]\").length"
                ))
                .await?;
            Ok(shown == json!(8))
        })
        .await?;

    // A pod's logs: the sandbox's pods run on kwok, which keeps no logs, so the panel shows
    // the server's error instead of lines (the real-node story reads a real log).
    browser
        .click(&format!("{tree} li.group li [data-kind=Pod]"))
        .await?;
    browser.click_text(tab, "Logs").await?;
    browser
        .find_text(
            "[data-testid=pod-logs] select[name=container] option",
            "web",
        )
        .await?;
    browser
        .find_text("[data-testid=pod-logs] [role=alert]", "Logs:")
        .await?;

    // Someone changes the ConfigMap's greeting: argocd-cm's rule marks it ignored in the diff.
    story
        .ctx
        .api::<ConfigMap>()
        .patch(
            "guestbook-config",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"greeting": "changed by hand"}})),
        )
        .await?;
    browser
        .click(&format!(
            "{tree} [data-kind=ConfigMap][data-name=guestbook-config]"
        ))
        .await?;
    browser.click_text(tab, "Live manifest").await?;
    browser
        .find_text(".manifest", "greeting: changed by hand")
        .await?;
    browser.click_text(tab, "Diff").await?;
    browser.find("[data-testid=no-diff]").await?;
    browser
        .find_text(
            "[data-testid=ignored-system-rules]",
            "resource.customizations: /data/greeting",
        )
        .await?;
    browser.gone("[data-testid=ignored-rules]").await?;
    browser
        .find_text("tr[data-ignored]", "greeting: changed by hand")
        .await?;
    browser
        .find_text("tr[data-ignored]", "greeting: hello")
        .await?;
    assert!(
        is::synced(&story.app(&guestbook).await?),
        "a change argocd-cm ignores made the app OutOfSync"
    );

    // Deleting the late ConfigMap from its panel: its name typed to confirm, then it is gone
    // from the cluster and the app misses it.
    browser
        .click(&format!(
            "{tree} [data-kind=ConfigMap][data-name=guestbook-late]"
        ))
        .await?;
    browser
        .click_text("[data-testid=resource-panel] .actions button", "Delete")
        .await?;
    let dialog = "[role=dialog][aria-label='Delete resource']";
    browser
        .find_text(&format!("{dialog} label"), "Non-cascading (orphan)")
        .await?;
    let confirm = browser
        .find(&format!("{dialog} button[type=submit]"))
        .await?;
    assert!(
        !confirm.is_enabled().await?,
        "Delete is enabled before the name is typed"
    );
    browser
        .fill(&format!("{dialog} input[name=confirm]"), "guestbook-late")
        .await?;
    browser
        .click(&format!("{dialog} button[type=submit]"))
        .await?;
    browser
        .find_text(
            "[data-testid=panel-notice]",
            "Deletion of ConfigMap guestbook-late",
        )
        .await?;
    story
        .eventually("the late ConfigMap deleted", || async {
            Ok(story
                .ctx
                .api::<ConfigMap>()
                .get_opt("guestbook-late")
                .await?
                .is_none())
        })
        .await?;
    browser
        .find(&format!(
            "{tree} [data-kind=ConfigMap][data-name=guestbook-late] [data-sync=OutOfSync]"
        ))
        .await?;

    // At a phone's width (390 px) nothing is wider than the screen: the list, the app's page,
    // and the resource panel, which then covers the page, its diff unified.
    browser.client.set_window_size(390, 844).await?;
    let overflow =
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth";
    browser.open("/applications").await?;
    browser
        .find(&format!("[data-testid=app-{guestbook}]"))
        .await?;
    assert_eq!(
        browser.run(overflow).await?,
        json!(0),
        "the list is wider than a phone"
    );
    browser.screenshot("phone-applications").await?;
    browser.open(&format!("/applications/{guestbook}")).await?;
    browser.find(&deployment).await?;
    assert_eq!(
        browser.run(overflow).await?,
        json!(0),
        "the app is wider than a phone"
    );
    browser.screenshot("phone-application").await?;
    browser.click(&deployment).await?;
    browser.click_text(tab, "Diff").await?;
    browser.find("[data-view=unified] tr[data-ignored]").await?;
    assert_eq!(
        browser.run(overflow).await?,
        json!(0),
        "the panel is wider than a phone"
    );
    browser.screenshot("phone-resource-diff").await?;

    browser.close().await?;
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_user_logs_in_through_dex_in_the_browser_and_comes_back_to_the_app() -> Result<()> {
    let mut story = Story::new().await?;
    story.start_controller()?;
    let guestbook = story.app_name("guestbook");
    story.create_app(&guestbook, "guestbook", &[])?;
    let server = story.start_server_with_ui().await?;
    let base = format!("http://{}", server.address());
    // Dex (its mock connector logs everyone in as one user of group `authors`) knows ferry's
    // callback; ferry knows Dex from argocd-cm, and the group may read.
    let secret = "dex-secret-for-the-browser-story";
    let dex = Dex::start(&[DexClient::confidential(
        "ferry",
        secret,
        &[&format!("{base}/auth/callback")],
    )])?;
    let oidc = format!(
        "name: Dex\nissuer: {}\nclientID: ferry\nclientSecret: {secret}\n\
         requestedScopes: [openid, profile, email, groups, federated:id]\n",
        dex.issuer()
    );
    for (name, data) in [
        ("argocd-cm", json!({"url": base, "oidc.config": oidc})),
        (
            "argocd-rbac-cm",
            json!({"policy.csv": format!("g, {}, role:readonly", MOCK_GROUPS[0])}),
        ),
    ] {
        story
            .ctx
            .api::<ConfigMap>()
            .patch(
                name,
                &PatchParams::apply("web-ui-sso-story"),
                &Patch::Apply(json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name}, "data": data,
                })),
            )
            .await?;
    }
    let browser = Browser::start(&base).await?;

    // A link to the app, not logged in: the login page offers Dex (once the server has read
    // argocd-cm), Dex logs the user in, and the browser comes back to the app.
    let page = format!("/applications/{guestbook}");
    story
        .eventually("the login page offering Dex", || async {
            browser.open(&page).await?;
            browser
                .at(&format!("/login?return_url=%2Fapplications%2F{guestbook}"))
                .await?;
            Ok(browser
                .run("return !!document.querySelector('[data-testid=sso-login]')")
                .await?
                == json!(true))
        })
        .await?;
    browser
        .click_text("[data-testid=sso-login]", "Log in via Dex")
        .await?;
    browser.at(&page).await?;
    browser
        .find("[data-testid=resource-tree] [data-kind=Deployment][data-name=guestbook]")
        .await?;
    // Dex's user, whose group may only read: Sync is disabled and says why.
    browser
        .find_text("[data-testid=current-user]", MOCK_USER_ID)
        .await?;
    browser
        .find_text("[data-testid=denied]", "may not sync applications default/")
        .await?;
    browser.click_text("nav a", "User info").await?;
    browser
        .find_text("[data-testid=user-info]", MOCK_GROUPS[0])
        .await?;
    browser.screenshot("sso-user-info").await?;

    browser.close().await?;
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_user_follows_a_real_pods_log_in_the_browser() -> Result<()> {
    // The sandbox with a real node: this pod's container really runs and writes a log.
    let mut story = Story::on_real_node().await?;
    story.repo.write(
        "hello/deployment.yaml",
        real_node::hello_deployment("hello from the browser story"),
    )?;
    story.repo.commit("hello")?;
    story.start_controller()?;
    let hello = story.app_name("hello");
    story.create_app(&hello, "hello", &["--sync-policy", "automated"])?;
    story
        .wait_app(
            &hello,
            "Synced and Healthy, its pod running",
            is::synced_and_healthy,
        )
        .await?;
    let server = story.start_server_with_ui().await?;
    let password =
        ferry_testkit::server::admin_password(&story.ctx.client(), story.namespace()).await?;
    let browser = Browser::start(&format!("http://{}", server.address())).await?;
    browser.open(&format!("/applications/{hello}")).await?;
    log_in(&browser, &password).await?;

    // The pod's Logs tab follows its container's log through the streaming endpoint.
    browser
        .click("[data-testid=resource-tree] [data-kind=Pod]")
        .await?;
    browser
        .click_text("[data-testid=resource-panel] [role=tab]", "Logs")
        .await?;
    let logs = "[data-testid=pod-logs]";
    browser
        .find_text(&format!("{logs} select[name=container] option"), "hello")
        .await?;
    browser
        .find_text(
            &format!("{logs} [data-testid=log-lines]"),
            "hello from the browser story",
        )
        .await?;
    browser
        .find_text(&format!("{logs} [data-testid=log-state]"), "Following")
        .await?;
    browser.screenshot("pod-logs").await?;
    // Not following: the log is read up to now, and the stream ends.
    browser
        .click(&format!("{logs} input[type=checkbox]"))
        .await?;
    browser
        .find_text(&format!("{logs} [data-testid=log-state]"), "End of log")
        .await?;
    browser
        .find_text(
            &format!("{logs} [data-testid=log-lines]"),
            "hello from the browser story",
        )
        .await?;

    browser.close().await?;
    server.stop().await?;
    Ok(())
}
