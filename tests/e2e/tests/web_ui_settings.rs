//! The web UI's settings and create screens in a real browser (headless chromium), served by the
//! real `ferry-server` in front of the real controller: the admin connects a private Git
//! repository (HTTP with basic auth) under Settings → Repositories — a wrong password is refused
//! with the server's message, the right one is saved and its connection checked, then renamed in
//! its edit dialog (the password entered again), and a credential template is saved and deleted
//! — creates an app from that repository with the form and watches it sync in the list, edits
//! it, then gives the project a role and a JWT token that really authenticates, finds the
//! in-cluster destination connected and is told why it cannot be deleted; a read-only user finds
//! the same controls disabled with the reason, and generates and deletes API tokens of their own
//! account.

use anyhow::Result;
use ferry_e2e::browser::Browser;
use ferry_e2e::{Story, is};
use ferry_testkit::git::HttpServer;
use ferry_types::AppProject;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;

const HELLO: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: hello-form
data:
  greeting: hello
";

const VIEWER: &str = "viewer";
const VIEWER_PASSWORD: &str = "viewer-password";

async fn log_in(browser: &Browser, username: &str, password: &str) -> Result<()> {
    browser.fill("input[name=username]", username).await?;
    browser.fill("input[name=password]", password).await?;
    browser.click("form button[type=submit]").await
}

/// Picks `value` in the `<select>` named `name`.
async fn choose(browser: &Browser, name: &str, value: &str) -> Result<()> {
    browser
        .click(&format!("select[name={name}] option[value='{value}']"))
        .await
}

#[tokio::test]
async fn an_admin_connects_a_repository_creates_an_app_and_a_project_token_in_the_browser()
-> Result<()> {
    let mut story = Story::new().await?;
    story.repo.write("hello/configmap.yaml", HELLO)?;
    story.repo.commit("hello")?;
    let git = HttpServer::start(&story.repo, Some(("git-user", "git-pw")))?;
    story.start_controller()?;
    // A read-only local account (role:readonly).
    for (name, data) in [
        ("argocd-cm", json!({"accounts.viewer": "login, apiKey"})),
        (
            "argocd-rbac-cm",
            json!({"policy.csv": format!("g, {VIEWER}, role:readonly")}),
        ),
    ] {
        story
            .ctx
            .api::<ConfigMap>()
            .patch(
                name,
                &PatchParams::apply("web-ui-settings-story"),
                &Patch::Apply(json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name}, "data": data,
                })),
            )
            .await?;
    }
    let server = story.start_server_with_ui().await?;
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
    browser.open("/settings").await?;
    log_in(&browser, "admin", &password).await?;
    browser.at("/settings").await?;

    // Settings → Repositories → Connect repo: the wrong password is refused with the server's
    // message and nothing is saved; the right one connects.
    browser.click_text(".overview a", "Repositories").await?;
    browser.at("/settings/repos").await?;
    browser
        .click_text(".actions button", "Connect repo")
        .await?;
    let dialog = "[role=dialog][aria-label='Connect repository']";
    browser
        .fill(&format!("{dialog} input[name=url]"), &git.url())
        .await?;
    browser
        .fill(&format!("{dialog} input[name=username]"), "git-user")
        .await?;
    browser
        .fill(&format!("{dialog} input[name=password]"), "wrong-pw")
        .await?;
    browser
        .click(&format!("{dialog} button[type=submit]"))
        .await?;
    browser
        .find_text(
            &format!("{dialog} [role=alert]"),
            "cannot connect to repository",
        )
        .await?;
    browser
        .fill(&format!("{dialog} input[name=password]"), "git-pw")
        .await?;
    browser
        .click(&format!("{dialog} button[type=submit]"))
        .await?;
    browser.gone(dialog).await?;
    let row = format!("[data-testid='repo-{}']", git.url());
    browser
        .find(&format!("{row} [data-connection=Successful]"))
        .await?;
    browser.screenshot("settings-repositories").await?;

    // Edit: the saved settings filled in, never the password, which must be entered again
    // (the update replaces what is saved); a new name is saved with the credentials kept.
    browser
        .click(&format!("{row} button[aria-label^='Edit repository']"))
        .await?;
    let edit = "[role=dialog][aria-label='Edit repository']";
    let shown = browser
        .run(&format!(
            "const f = n => document.querySelector(\"{edit} input[name=\" + n + \"]\"); \
             return [f('url').value, f('url').readOnly, f('username').value, f('password').value, \
             f('password').required]"
        ))
        .await?;
    assert_eq!(shown, json!([git.url(), true, "git-user", "", true]));
    browser
        .fill(&format!("{edit} input[name=name]"), "private-repo")
        .await?;
    browser
        .fill(&format!("{edit} input[name=password]"), "git-pw")
        .await?;
    browser
        .click(&format!("{edit} button[type=submit]"))
        .await?;
    browser.gone(edit).await?;
    browser.find_text(&row, "private-repo").await?;
    browser
        .find(&format!("{row} [data-connection=Successful]"))
        .await?;
    let saved = story
        .ctx
        .api::<Secret>()
        .list(&ListParams::default().labels("argocd.argoproj.io/secret-type=repository"))
        .await?
        .items
        .into_iter()
        .filter_map(|secret| secret.data)
        .find(|data| {
            data.get("url")
                .is_some_and(|url| url.0 == git.url().as_bytes())
        })
        .expect("the repository's Secret");
    let text = |key: &str| {
        saved
            .get(key)
            .map(|v| String::from_utf8_lossy(&v.0).to_string())
    };
    assert_eq!(text("name").as_deref(), Some("private-repo"));
    assert_eq!(text("password").as_deref(), Some("git-pw"));

    // The same dialog saves a credential template instead: listed, never with its password, and
    // deleted.
    browser
        .click_text(".actions button", "Connect repo")
        .await?;
    browser
        .fill(
            &format!("{dialog} input[name=url]"),
            "https://git.example.com/org",
        )
        .await?;
    browser
        .fill(&format!("{dialog} input[name=username]"), "bot")
        .await?;
    browser
        .fill(&format!("{dialog} input[name=password]"), "template-pw")
        .await?;
    browser
        .click_text(&format!("{dialog} button"), "Save as credential template")
        .await?;
    browser.gone(dialog).await?;
    let template = "[data-testid='repocreds-https://git.example.com/org']";
    browser.find_text(template, "bot").await?;
    let page = browser.run("return document.body.innerHTML").await?;
    let page = page.as_str().unwrap_or_default();
    assert!(!page.contains("template-pw") && !page.contains("git-pw"));
    browser.click(&format!("{template} button")).await?;
    browser.click("[role=dialog] button[type=submit]").await?;
    browser.gone(template).await?;

    // A new app from that repository, with the form: automated sync into the story's namespace.
    let app = story.app_name("form");
    browser.click_text("nav a", "Applications").await?;
    browser.click_text(".toolbar a", "New app").await?;
    browser.at("/new-application").await?;
    browser.fill("input[name=appName]", &app).await?;
    choose(&browser, "syncPolicy", "automatic").await?;
    browser.click("input[name=prune]").await?;
    browser.fill("input[name=repoURL]", &git.url()).await?;
    browser.fill("input[name=path]", "hello").await?;
    choose(&browser, "sourceType", "directory").await?;
    browser.click("input[name=recurse]").await?;
    browser
        .fill("input[name=namespace]", story.namespace())
        .await?;
    // The YAML editor holds what the form made, and back.
    browser
        .click_text(".actions button", "Edit as YAML")
        .await?;
    browser
        .find_text("textarea[name=yaml]", "recurse: true")
        .await?;
    browser
        .click_text(".actions button", "Edit as YAML")
        .await?;
    browser.screenshot("new-app").await?;
    browser.click_text(".actions button", "Create").await?;
    browser.at("/applications").await?;
    let tile = format!("[data-testid=app-{app}]");
    browser.find(&format!("{tile} [data-sync=Synced]")).await?;
    browser
        .find(&format!("{tile} [data-health=Healthy]"))
        .await?;
    story
        .wait_app(
            &app,
            "synced from the private repository",
            is::synced_and_healthy,
        )
        .await?;
    let created = story.app(&app).await?;
    assert_eq!(
        created.spec.source.as_ref().map(|s| s.repo_url.as_str()),
        Some(git.url().as_str())
    );
    story.ctx.api::<ConfigMap>().get("hello-form").await?;

    // Editing the app: a sync option added in the form is in its spec.
    browser.open(&format!("/applications/{app}/edit")).await?;
    browser.click("input[name='CreateNamespace=true']").await?;
    browser.click_text(".actions button", "Save").await?;
    browser.at(&format!("/applications/{app}")).await?;
    story
        .eventually("the sync option saved", || async {
            let app = story.app(&app).await?;
            let options = app
                .spec
                .sync_policy
                .map(|p| p.sync_options)
                .unwrap_or_default();
            Ok(options.iter().any(|o| o == "CreateNamespace=true"))
        })
        .await?;

    // Settings → Projects → default: a role reading the project's apps, and a token for it.
    browser.open("/settings/projects/default").await?;
    browser
        .click_text("[data-testid=roles] button", "Add role")
        .await?;
    browser
        .fill("[role=dialog] input[name=roleName]", "ci")
        .await?;
    browser
        .fill(
            "[role=dialog] textarea[name=policies]",
            "p, proj:default:ci, applications, get, default/*, allow",
        )
        .await?;
    browser.click("[role=dialog] button[type=submit]").await?;
    browser.find("[data-testid=role-ci]").await?;
    browser
        .click_text("[data-testid=role-ci] button", "Create token")
        .await?;
    browser
        .fill("[role=dialog] input[name=tokenId]", "ci-1")
        .await?;
    browser.click("[role=dialog] button[type=submit]").await?;
    let issued = browser.find("[data-testid=issued-token] textarea").await?;
    let token = issued.prop("value").await?.unwrap_or_default();
    browser
        .find_text("[data-testid=tokens-ci] [data-testid=token]", "ci-1")
        .await?;
    browser.screenshot("settings-project").await?;
    let project = story.ctx.api::<AppProject>().get("default").await?;
    let role = project.spec.roles.iter().find(|r| r.name == "ci").unwrap();
    assert_eq!(role.jwt_tokens.len(), 1);
    // The token reads the project's apps through the API.
    let answer = reqwest::Client::new()
        .get(format!(
            "http://{}/api/v1/applications/{app}",
            server.address()
        ))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(answer.status(), 200, "{}", answer.text().await?);

    // Clusters: the in-cluster destination connected (its API server answered the server),
    // its details; deleting it is refused with the server's reason.
    browser.open("/settings/clusters").await?;
    browser
        .find_text(
            "[data-testid=cluster-in-cluster] [data-connection=Successful] + .small",
            "Kubernetes 1.",
        )
        .await?;
    browser.screenshot("settings-clusters").await?;
    browser.click("[data-testid=cluster-in-cluster] a").await?;
    browser
        .find_text("[data-testid=cluster]", "https://kubernetes.default.svc")
        .await?;
    browser.click_text(".actions button", "Delete").await?;
    browser.click("[role=dialog] button[type=submit]").await?;
    browser
        .find_text(
            "[role=dialog] [role=alert]",
            "in-cluster destination is implicit",
        )
        .await?;
    browser.click_text("[role=dialog] button", "Cancel").await?;

    // A read-only user: the same controls disabled, saying why.
    browser.client.delete_cookie("argocd.token").await?;
    browser.open("/settings/repos").await?;
    browser.at("/login?return_url=%2Fsettings%2Frepos").await?;
    log_in(&browser, VIEWER, VIEWER_PASSWORD).await?;
    browser.at("/settings/repos").await?;
    browser
        .find_text(".denied", "may not create repositories")
        .await?;
    browser.find(&row).await?;
    // The page checks the connections as it opens; their button is disabled until that is done.
    browser
        .find_text(".toolbar button", "Refresh connections")
        .await?;
    let disabled = browser
        .run(
            "return [...document.querySelectorAll('button')]\
             .filter(b => b.disabled).map(b => b.textContent)",
        )
        .await?;
    assert_eq!(disabled, json!(["Connect repo", "Edit", "Delete"]));
    browser.open("/settings/projects/default").await?;
    browser
        .find_text("[data-testid=denied]", "may not update projects default")
        .await?;
    browser.open(&format!("/applications/{app}/edit")).await?;
    browser
        .find_text(
            "[data-testid=denied]",
            "may not update applications default/",
        )
        .await?;
    // An account's own API tokens: generated (shown once) and deleted.
    browser
        .open(&format!("/settings/accounts/{VIEWER}"))
        .await?;
    browser.click_text("button", "Generate token").await?;
    browser.click("[role=dialog] button[type=submit]").await?;
    browser.find("[data-testid=issued-token] textarea").await?;
    let tokens = "[data-testid=account-tokens] tbody tr";
    browser.find(tokens).await?;
    browser.click(&format!("{tokens} button")).await?;
    browser.click("[role=dialog] button[type=submit]").await?;
    browser.gone(tokens).await?;

    browser.close().await?;
    server.stop().await?;
    Ok(())
}
