//! The web UI in a real browser (headless chromium), served by the real `ferry-server` in front
//! of the real controller: a user logs in, watches apps appear and sync in the list without
//! reloading, narrows the list with filters kept in the URL, syncs selected resources from the
//! app's page and then all of them, reads a resource's manifests and diff, is sent back to the
//! login page when the session ends and returns to where they were, rolls back from the history,
//! deletes an app, and logs out; a read-only user sees why Sync and Delete are disabled.

use anyhow::Result;
use ferry_e2e::browser::Browser;
use ferry_e2e::{Story, is};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
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
    browser.screenshot("read-only").await?;

    browser.close().await?;
    server.stop().await?;
    Ok(())
}
