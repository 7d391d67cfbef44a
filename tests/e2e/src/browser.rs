//! A real browser for the web UI's stories: Debian's headless `chromium`, driven through
//! `chromedriver` (both from `scripts/setup`) with WebDriver, in a profile of its own.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fantoccini::elements::Element;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::TIMEOUT;

/// The browser and its driver; both end when it is dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    base: String,
    _profile: TempDir,
}

impl Browser {
    /// A fresh headless chromium (no cookies, no cache) for the server at `base`
    /// (`http://127.0.0.1:PORT`), 1280x900.
    pub async fn start(base: &str) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so the browsers it starts end with it.
            .process_group(0)
            .spawn()
            .context("starting chromedriver (scripts/setup installs chromium-driver)")?;
        let profile = tempfile::Builder::new()
            .prefix("ferry-chromium-")
            .tempdir()?;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new",
                    // Tests run as root in containers, where chromium's sandbox cannot start.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(err) if Instant::now() > deadline => {
                    bail!("no WebDriver session from chromedriver: {err}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        Ok(Self {
            client,
            driver,
            base: base.to_string(),
            _profile: profile,
        })
    }

    /// Opens `path` of the server.
    pub async fn open(&self, path: &str) -> Result<()> {
        self.client.goto(&format!("{}{path}", self.base)).await?;
        Ok(())
    }

    /// The path and query the browser is at.
    pub async fn location(&self) -> Result<String> {
        let url = self.client.current_url().await?;
        Ok(match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        })
    }

    /// Waits for an element matching `css`.
    pub async fn find(&self, css: &str) -> Result<Element> {
        self.until(&format!("an element {css}"), || async {
            Ok(self.client.find(Locator::Css(css)).await.ok())
        })
        .await
    }

    /// Waits for an element matching `css` whose text contains `text`.
    pub async fn find_text(&self, css: &str, text: &str) -> Result<Element> {
        self.until(&format!("{css} saying {text:?}"), || async {
            for element in self.client.find_all(Locator::Css(css)).await? {
                if element.text().await.unwrap_or_default().contains(text) {
                    return Ok(Some(element));
                }
            }
            Ok(None)
        })
        .await
    }

    /// Waits until nothing matches `css`.
    pub async fn gone(&self, css: &str) -> Result<()> {
        self.until(&format!("no more {css}"), || async {
            let left = self.client.find_all(Locator::Css(css)).await?;
            Ok(left.is_empty().then_some(()))
        })
        .await
    }

    /// Waits until the browser is at `path` (path and query).
    pub async fn at(&self, path: &str) -> Result<()> {
        self.until(&format!("the page {path}"), || async {
            Ok((self.location().await? == path).then_some(()))
        })
        .await
    }

    /// Types `text` into the field matching `css`, replacing what it held.
    pub async fn fill(&self, css: &str, text: &str) -> Result<()> {
        let field = self.find(css).await?;
        field.clear().await?;
        field.send_keys(text).await?;
        Ok(())
    }

    /// Clicks the element matching `css` once it is there.
    pub async fn click(&self, css: &str) -> Result<()> {
        self.find(css).await?.click().await?;
        Ok(())
    }

    /// Clicks the button (or link) matching `css` whose text contains `text`.
    pub async fn click_text(&self, css: &str, text: &str) -> Result<()> {
        self.find_text(css, text).await?.click().await?;
        Ok(())
    }

    /// Runs `script` in the page; its result.
    pub async fn run(&self, script: &str) -> Result<Value> {
        Ok(self.client.execute(script, Vec::new()).await?)
    }

    /// Sends a Chrome DevTools Protocol command to the page through chromedriver's
    /// `goog/cdp/execute`; its result.
    pub async fn cdp(&self, command: &str, params: Value) -> Result<Value> {
        let cmd = CdpCommand {
            body: json!({"cmd": command, "params": params}).to_string(),
        };
        self.client
            .issue_cmd(cmd)
            .await
            .with_context(|| format!("the DevTools command {command}"))
    }

    /// Saves a screenshot of the page as `target/ui-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let dir = crate::helm::repo_root().join("target/ui-screenshots");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, self.client.screenshot().await?)?;
        Ok(path)
    }

    /// Polls `check` until it finds something, failing after `TIMEOUT` with `what`, where the
    /// browser was and what the page said.
    async fn until<T, F, Fut>(&self, what: &str, mut check: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>>>,
    {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Ok(Some(found)) = check().await {
                return Ok(found);
            }
            if Instant::now() > deadline {
                let location = self.location().await.unwrap_or_default();
                let text = self
                    .run("return document.body.innerText")
                    .await
                    .unwrap_or_default();
                bail!(
                    "timed out waiting for {what} at {location}; the page says:\n{}",
                    text.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Ends the WebDriver session, then the driver (on drop).
    pub async fn close(self) -> Result<()> {
        self.client.clone().close().await?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.driver.id() as i32), Signal::SIGKILL);
        let _ = self.driver.wait();
    }
}

/// chromedriver's DevTools passthrough, a command WebDriver itself does not have.
#[derive(Debug)]
struct CdpCommand {
    body: String,
}

impl WebDriverCompatibleCommand for CdpCommand {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.clone()))
    }
}
