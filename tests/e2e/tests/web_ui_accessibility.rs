//! The web UI for a keyboard user, in a real browser (headless chromium) against the real
//! `ferry-server` and controller: on the main screens (login, applications, an application with
//! a resource's panel open, the new-app form, repositories, clusters, projects, accounts) Tab
//! reaches every control, and axe-core (ui/'s devDependency, injected from ui/node_modules, so offline) finds
//! no WCAG 2 A/AA violations: every control labelled, readable contrast.

use anyhow::{Context, Result};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use ferry_e2e::browser::Browser;
use ferry_e2e::{Story, helm, is};

/// Every visible, enabled control of the page, as a JS expression.
const CONTROLS: &str = "[...document.querySelectorAll(
  'a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex=\"-1\"])'
)].filter(e => !e.disabled && e.getClientRects().length > 0
  && getComputedStyle(e).visibility !== 'hidden')";

/// Tabs through the page from its start; the controls Tab never reached (their HTML's start).
async fn unreachable_by_tab(browser: &Browser) -> Result<Vec<String>> {
    let total = browser
        .run(&format!(
            "window.__reached = new Set(); document.activeElement?.blur(); \
             return {CONTROLS}.length"
        ))
        .await?
        .as_u64()
        .unwrap_or(0);
    for _ in 0..total + 3 {
        let tab = KeyActions::new("keyboard".into())
            .then(KeyAction::Down {
                value: Key::Tab.into(),
            })
            .then(KeyAction::Up {
                value: Key::Tab.into(),
            });
        browser.client.perform_actions(tab).await?;
        browser
            .run("window.__reached.add(document.activeElement)")
            .await?;
    }
    let missed = browser
        .run(&format!(
            "return {CONTROLS}.filter(e => !window.__reached.has(e)).map(e => e.outerHTML.slice(0, 120))"
        ))
        .await?;
    Ok(serde_json::from_value(missed)?)
}

/// Both checks of one screen, as messages naming it.
async fn problems_of(browser: &Browser, axe: &str, screen: &str) -> Result<Vec<String>> {
    let mut problems: Vec<String> = unreachable_by_tab(browser)
        .await?
        .into_iter()
        .map(|missed| format!("{screen}: Tab never reaches {missed}"))
        .collect();
    for violation in axe_violations(browser, axe).await? {
        problems.push(format!("{screen}: {violation}"));
    }
    Ok(problems)
}

/// axe-core's WCAG 2 A and AA violations of the page: rule, impact and the first elements.
async fn axe_violations(browser: &Browser, axe: &str) -> Result<Vec<String>> {
    browser.run(axe).await?;
    let found = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}})
               .then(r => done(r.violations.map(v => v.id + ' (' + v.impact + '): ' +
                 v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '))))
               .catch(e => done(['axe failed: ' + e]));",
            Vec::new(),
        )
        .await?;
    Ok(serde_json::from_value(found)?)
}

#[tokio::test]
async fn a_keyboard_user_reaches_every_control_and_axe_finds_nothing_on_the_main_screens()
-> Result<()> {
    let axe_path = helm::repo_root().join("ui/node_modules/axe-core/axe.min.js");
    let axe = std::fs::read_to_string(&axe_path)
        .with_context(|| format!("{} (scripts/ui installs it)", axe_path.display()))?;
    let mut story = Story::new().await?;
    story.start_controller()?;
    let guestbook = story.app_name("guestbook");
    story.create_app(&guestbook, "guestbook", &["--sync-policy", "automated"])?;
    story.wait_app(&guestbook, "synced", is::synced).await?;
    let server = story.start_server_with_ui().await?;
    let password =
        ferry_testkit::server::admin_password(&story.ctx.client(), story.namespace()).await?;
    let browser = Browser::start(&format!("http://{}", server.address())).await?;

    let mut problems = Vec::new();

    // The login page, then logging in with the keyboard alone.
    browser.open("/login").await?;
    browser.find("input[name=username]").await?;
    problems.extend(problems_of(&browser, &axe, "login").await?);
    browser.fill("input[name=username]", "admin").await?;
    browser.fill("input[name=password]", &password).await?;
    browser
        .find("input[name=password]")
        .await?
        .send_keys(&Key::Enter.to_string())
        .await?;
    browser.at("/applications").await?;
    browser
        .find(&format!("[data-testid=app-{guestbook}]"))
        .await?;
    problems.extend(problems_of(&browser, &axe, "applications").await?);

    browser.open(&format!("/applications/{guestbook}")).await?;
    let deployment = "[data-testid=resource-tree] [data-kind=Deployment][data-name=guestbook]";
    browser.find(deployment).await?;
    problems.extend(problems_of(&browser, &axe, "application").await?);
    browser.click(deployment).await?;
    browser.find("[data-testid=resource-panel]").await?;
    problems.extend(problems_of(&browser, &axe, "resource panel").await?);

    for (screen, path, ready) in [
        ("new app form", "/new-application", "input[name=appName]"),
        (
            "repositories",
            "/settings/repos",
            "[data-testid=repositories]",
        ),
        (
            "clusters",
            "/settings/clusters",
            "[data-testid=cluster-in-cluster]",
        ),
        ("projects", "/settings/projects", "table"),
        ("accounts", "/settings/accounts", "table"),
    ] {
        browser.open(path).await?;
        browser.find(ready).await?;
        problems.extend(problems_of(&browser, &axe, screen).await?);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    browser.close().await?;
    server.stop().await?;
    Ok(())
}
