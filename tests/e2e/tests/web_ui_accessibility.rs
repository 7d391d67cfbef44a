//! The web UI for a keyboard user, in a real browser (headless chromium) against the real
//! `ferry-server` and controller: on every screen (login, applications, an application with
//! a resource's panel open on each of its tabs, the sync and delete dialogs, the new-app and
//! edit-app forms, repositories and the connect dialog, clusters, projects and a project's
//! details, accounts, user info) Tab reaches every control, and axe-core (ui/'s devDependency, injected from ui/node_modules, so offline) finds
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
/// Tab enters a radio group once, at its checked button (arrow keys move inside it), so a
/// group counts as reached as a whole.
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
            "const reached = [...window.__reached]; \
             return {CONTROLS}.filter(e => !window.__reached.has(e) && !inReachedGroup(e)) \
               .map(e => e.outerHTML.slice(0, 120)); \
             function inReachedGroup(e) {{ \
               return e.type === 'radio' && reached.some(r => r.type === 'radio' \
                 && r.name === e.name && r.form === e.form); }}"
        ))
        .await?;
    Ok(serde_json::from_value(missed)?)
}

/// Opens the resource panel's tab `title` and lets its content arrive.
async fn open_tab(browser: &Browser, title: &str) -> Result<()> {
    browser
        .click_text("[data-testid=resource-panel] [role=tab]", title)
        .await?;
    browser
        .find_text(
            "[data-testid=resource-panel] [role=tab][aria-selected=true]",
            title,
        )
        .await?;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    Ok(())
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
    for tab in ["Live manifest", "Desired manifest", "Diff", "Events"] {
        open_tab(&browser, tab).await?;
        problems.extend(problems_of(&browser, &axe, &format!("resource panel, {tab}")).await?);
    }
    browser
        .click("[data-testid=resource-panel] button[aria-label=Close]")
        .await?;
    let pod =
        "[data-testid=resource-tree] button.node[data-kind=Pod]:not([data-testid=group-node])";
    browser.click(pod).await?;
    open_tab(&browser, "Logs").await?;
    problems.extend(problems_of(&browser, &axe, "resource panel, Logs").await?);
    browser
        .click("[data-testid=resource-panel] button[aria-label=Close]")
        .await?;

    // The dialogs of the application page, each closed again with its cancel button.
    for (action, dialog, cancel) in [
        ("Sync", "Synchronize", "button[aria-label=Cancel]"),
        ("Delete", "Delete", "button[type=button]"),
    ] {
        browser
            .click_text(".toolbar .actions button", action)
            .await?;
        let form = format!("form[role=dialog][aria-label={dialog}]");
        browser.find(&form).await?;
        problems.extend(problems_of(&browser, &axe, &format!("{dialog} dialog")).await?);
        browser.click(&format!("{form} {cancel}")).await?;
        browser.gone(&form).await?;
    }

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
        (
            "project details",
            "/settings/projects/default",
            "[data-testid=roles]",
        ),
        ("accounts", "/settings/accounts", "table"),
        ("user info", "/user-info", "[data-testid=user-info]"),
    ] {
        browser.open(path).await?;
        browser.find(ready).await?;
        problems.extend(problems_of(&browser, &axe, screen).await?);
    }
    let edit = format!("/applications/{guestbook}/edit");
    browser.open(&edit).await?;
    browser.find("input[name=appName]").await?;
    problems.extend(problems_of(&browser, &axe, "edit app form").await?);
    browser.open("/settings/repos").await?;
    browser
        .click_text(".toolbar .actions button", "Connect")
        .await?;
    browser
        .find("[role=dialog][aria-label='Connect repository']")
        .await?;
    problems.extend(problems_of(&browser, &axe, "connect repository dialog").await?);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    browser.close().await?;
    server.stop().await?;
    Ok(())
}
