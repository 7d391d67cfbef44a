//! The web UI's files (`--staticassets`): files as they are, `index.html` for the UI's own
//! routes, caching that lets a new build show at once, Argo CD's framing headers, and the API's
//! JSON 404s left as they were.

use anyhow::Result;
use ferry_testkit::kube::TestContext;

use crate::harness::Server;

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[tokio::test]
async fn the_ui_is_served_beside_the_api() -> Result<()> {
    let ctx = TestContext::new().await?;
    let ui = tempfile::tempdir()?;
    std::fs::write(ui.path().join("index.html"), "<html>the UI</html>")?;
    std::fs::create_dir(ui.path().join("assets"))?;
    std::fs::write(ui.path().join("assets/index-Ab12Cd.js"), "console.log(1)")?;
    std::fs::write(ui.path().join("favicon.svg"), "<svg/>")?;
    let server = Server::start_with(
        &ctx,
        &[
            "--staticassets".into(),
            ui.path().display().to_string(),
            "--x-frame-options".into(),
            "DENY".into(),
        ],
    )
    .await?;
    let page = [("Accept".to_string(), "text/html,*/*;q=0.8".to_string())];

    for path in ["/", "/applications/guestbook?view=list", "/index.html"] {
        let (status, head, body) = server.raw("GET", path, &page, b"").await?;
        assert_eq!(
            (status, body.as_str()),
            (200, "<html>the UI</html>"),
            "{path}"
        );
        assert_eq!(header(&head, "content-type"), Some("text/html"), "{head}");
        assert_eq!(
            header(&head, "cache-control"),
            Some("no-cache, private, max-age=0"),
            "{head}"
        );
        assert_eq!(header(&head, "x-frame-options"), Some("DENY"), "{head}");
        assert_eq!(
            header(&head, "content-security-policy"),
            Some("frame-ancestors 'self';"),
            "{head}"
        );
    }

    let (status, head, body) = server
        .raw("GET", "/assets/index-Ab12Cd.js", &[], b"")
        .await?;
    assert_eq!((status, body.as_str()), (200, "console.log(1)"));
    assert_eq!(
        header(&head, "cache-control"),
        Some("public, max-age=31536000, immutable"),
        "{head}"
    );
    assert!(
        header(&head, "content-type")
            .unwrap()
            .contains("javascript")
    );
    let (status, head, _) = server.raw("GET", "/favicon.svg", &[], b"").await?;
    assert_eq!(status, 200);
    assert_eq!(header(&head, "cache-control"), Some("no-cache"), "{head}");

    // A missing file is a 404, not the page (a stale page would load HTML as a script); so is
    // anything outside the directory.
    for path in [
        "/assets/index-gone.js",
        "/../Cargo.toml",
        "/assets/../../etc/passwd",
    ] {
        let missing = server.request_as_is("GET", path, &[], b"").await?;
        assert_eq!(missing.status, 404, "{path}");
        assert_eq!(missing.body["code"], 5, "{path}");
    }

    // API paths keep their JSON 404s, even for a browser.
    for path in ["/api/v1/nothing", "/api", "/auth/nothing"] {
        let missing = server.request_as_is("GET", path, &page, b"").await?;
        assert_eq!(missing.status, 404, "{path}");
        assert_eq!(missing.body["error"], "no such API path", "{path}");
    }
    let version = server.get("/api/version", None).await?;
    assert_eq!(version.status, 200);
    // Writes never reach the files.
    let post = server
        .request_as_is("POST", "/index.html", &[], b"")
        .await?;
    assert_eq!(post.status, 404);

    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_ui_directory_without_its_page_is_refused_at_start() -> Result<()> {
    let ctx = TestContext::new().await?;
    let empty = tempfile::tempdir()?;
    let refused = Server::start_with(
        &ctx,
        &["--staticassets".into(), empty.path().display().to_string()],
    )
    .await;
    let err = format!("{:#}", refused.err().expect("the server started"));
    assert!(err.contains("has no index.html"), "{err}");
    Ok(())
}
