//! Headless Chromium driven through ChromeDriver (WebDriver), for tests of what a person sees.
//! Debian's `chromium` and `chromium-driver` packages; `cargo xtask test` installs them.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use fantoccini::{Client, ClientBuilder};
use serde_json::json;
use tokio::process::{Child, Command};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Browser {
    pub client: Client,
    _driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A fresh browser (new profile) with a `width`×`height` window.
    pub async fn start(width: u32, height: u32) -> anyhow::Result<Self> {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            if !std::path::Path::new(tool).exists() {
                bail!("{tool} is missing: `apt-get install chromium chromium-driver` (cargo xtask test does)");
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start chromedriver")?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if tokio::time::Instant::now() > deadline {
                bail!("chromedriver did not listen within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir()?;
        // Background networking off: this machine's closed network refuses it, noisily.
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={width},{height}"),
        ];
        let caps = json!({ "goog:chromeOptions": { "binary": CHROMIUM, "args": args } });
        let serde_json::Value::Object(caps) = caps else { unreachable!("a JSON object literal") };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("cannot open a Chromium session")?;
        Ok(Self { client, _driver: driver, _profile: profile })
    }

    /// Saves a screenshot as `e2e/artifacts/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let png = self.client.screenshot().await?;
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("artifacts");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// Runs a browser test body; on failure saves a screenshot named after the test first.
pub async fn with_screenshot_on_failure<F, Fut>(browser: &Browser, test: &str, body: F) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let result = body().await;
    if result.is_err() {
        if let Ok(path) = browser.screenshot(&format!("failure-{test}")).await {
            eprintln!("screenshot of the failure: {}", path.display());
        }
    }
    result
}
