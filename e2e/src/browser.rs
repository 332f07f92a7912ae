//! Headless Chromium driven through ChromeDriver (WebDriver), for tests of what a person sees.
//! Debian's `chromium` and `chromium-driver` packages; `cargo xtask test` installs them.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tokio::process::{Child, Command};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Browser {
    pub client: Client,
    /// ChromeDriver's address, for commands fantoccini does not have.
    driver_url: String,
    _driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A fresh browser (new profile) with a `width`×`height` viewport. Below 500 pixels wide
    /// (where desktop Chromium's windows stop) it emulates a phone's screen instead.
    pub async fn start(width: u32, height: u32) -> anyhow::Result<Self> {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            if !std::path::Path::new(tool).exists() {
                bail!("{tool} is missing: `apt-get install chromium chromium-driver` (cargo xtask test does)");
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            // Its own process group, which Chromium joins: see `Drop`.
            .process_group(0)
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
        let mut args = vec![
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
        // Flags of one's own, for profiling the page (`--js-flags=--perf-basic-prof` gives
        // `perf` the names of V8's compiled functions).
        if let Ok(extra) = std::env::var("PORTA_TEST_CHROMIUM_FLAGS") {
            args.extend(extra.split_whitespace().map(str::to_owned));
        }
        let downloads = profile.path().join("downloads");
        std::fs::create_dir_all(&downloads)?;
        let prefs = json!({
            "download.default_directory": downloads,
            "download.prompt_for_download": false,
            "download.directory_upgrade": true,
        });
        let mut options = json!({ "binary": CHROMIUM, "args": args, "prefs": prefs });
        if width < 500 {
            options["mobileEmulation"] =
                json!({ "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2.0 } });
        }
        // The console and uncaught errors, read by `page_errors`.
        let caps = json!({ "goog:chromeOptions": options, "goog:loggingPrefs": { "browser": "ALL" } });
        let serde_json::Value::Object(caps) = caps else { unreachable!("a JSON object literal") };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("cannot open a Chromium session")?;
        Ok(Self { client, driver_url: format!("http://127.0.0.1:{port}"), _driver: driver, _profile: profile })
    }

    /// Lets pages read the clipboard, as a person does by accepting the browser's prompt
    /// (WebDriver's "set permission" extension, which ChromeDriver implements).
    pub async fn grant_clipboard(&self) -> anyhow::Result<()> {
        let session = self.client.session_id().await?.context("no WebDriver session")?;
        for name in ["clipboard-read", "clipboard-write"] {
            let resp = reqwest::Client::new()
                .post(format!("{}/session/{session}/permissions", self.driver_url))
                .json(&json!({ "descriptor": { "name": name }, "state": "granted" }))
                .send()
                .await?;
            if !resp.status().is_success() {
                bail!("ChromeDriver refused the {name} permission: {}", resp.text().await?);
            }
        }
        Ok(())
    }

    /// Errors the pages logged or threw since the last call (a panic in the app, an uncaught
    /// exception, `console.error`), each as Chromium words it. Failed requests are not
    /// counted: tests make refused requests on purpose, and the page says so itself.
    pub async fn page_errors(&self) -> anyhow::Result<Vec<String>> {
        let session = self.client.session_id().await?.context("no WebDriver session")?;
        let resp = reqwest::Client::new()
            .post(format!("{}/session/{session}/se/log", self.driver_url))
            .json(&json!({ "type": "browser" }))
            .send()
            .await?;
        let body: serde_json::Value = resp.json().await?;
        let entries = body["value"].as_array().context("ChromeDriver gave no log")?;
        let severe = |network: bool| -> Vec<String> {
            entries
                .iter()
                .filter(|e| e["level"] == "SEVERE" && (e["source"] == "network") == network)
                .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
                .collect()
        };
        let mut errors = severe(false);
        // A chunk whose fetch failed and was fetched again (the page counts its retries) is
        // no error of the page's: said, with the network's reason, and let be.
        // Read and reset at once, so a later call counts only its own retries and failures; a
        // chunk that failed every retry (`portaChunkFailed`) is an error. With a dialog open the page
        // cannot be asked: no retry is believed.
        let read = "const r = window.portaChunkRetries || 0, f = window.portaChunkFailed === true; \
                    window.portaChunkRetries = 0; window.portaChunkFailed = false; return [r, f];";
        let (retried, never_came) = match self.client.execute(read, vec![]).await {
            Ok(v) => (v[0].as_f64().unwrap_or(0.0) as usize, v[1] == json!(true)),
            Err(_) => (0, false),
        };
        if never_came {
            errors.push("a part of the page (a wasm chunk) could not be fetched even when tried again".into());
        }
        let chunk = |e: &String| e.contains("__wasm_split.js") && e.contains("Failed to fetch");
        // A chunk's failed fetch that no part of the page was left without (none failed every
        // retry) is said and let be, retried or not: CI saw such fetches fail with nothing
        // missing afterwards (the test's own steps all passed), where the page that counted
        // its retries may already be gone. A chunk that never came stays an error.
        let failed_chunks = errors.iter().filter(|e| chunk(e)).count();
        if !never_came && failed_chunks > 0 {
            eprintln!(
                "a chunk's fetch failed ({failed_chunks} logged, {retried} retries counted); the network said: {:?}",
                severe(true)
            );
            errors.retain(|e| !chunk(e));
        }
        Ok(errors)
    }

    /// Runs a Chrome DevTools Protocol command (`Performance.getMetrics`, …) in the page;
    /// its result.
    pub async fn cdp(&self, cmd: &str, params: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let session = self.client.session_id().await?.context("no WebDriver session")?;
        let resp = reqwest::Client::new()
            .post(format!("{}/session/{session}/goog/cdp/execute", self.driver_url))
            .json(&json!({ "cmd": cmd, "params": params }))
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        anyhow::ensure!(status.is_success(), "ChromeDriver refused {cmd} ({status}): {text}");
        let body: serde_json::Value = serde_json::from_str(&text)?;
        Ok(body["value"].clone())
    }

    /// Where the browser saves downloads.
    pub fn downloads(&self) -> PathBuf {
        self._profile.path().join("downloads")
    }

    /// Waits until a download named `name` has finished; returns its bytes.
    pub async fn downloaded(&self, name: &str, within: Duration) -> anyhow::Result<Vec<u8>> {
        let path = self.downloads().join(name);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let partial = std::fs::read_dir(self.downloads())?
                .filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().ends_with(".crdownload"));
            if path.exists() && !partial {
                return Ok(std::fs::read(&path)?);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{name} was not downloaded within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// A test that panics never reaches [`Browser::close`]; killing only ChromeDriver would
    /// leave Chromium running. Kill the whole process group instead.
    fn drop(&mut self) {
        if let Some(pid) = self._driver.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Runs a browser test body, then fails it if any page logged an error or panicked; on
/// failure saves a screenshot named after the test first.
pub async fn with_screenshot_on_failure<F, Fut>(browser: &Browser, test: &str, body: F) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut result = body().await;
    if result.is_ok() {
        // No page may panic or throw, whatever the test looked at.
        let errors = browser.page_errors().await?;
        if !errors.is_empty() {
            result = Err(anyhow::anyhow!("the page logged errors:\n{}", errors.join("\n")));
        }
    }
    if result.is_err() {
        if let Ok(path) = browser.screenshot(&format!("failure-{test}")).await {
            eprintln!("screenshot of the failure: {}", path.display());
        }
    }
    result
}

/// The serious and critical accessibility violations axe-core (the pinned npm package the
/// browser app's packages come with) finds on the page now, one line each: the rule, what
/// it asks for, and up to five elements that break it.
pub async fn accessibility_violations(c: &Client) -> anyhow::Result<Vec<String>> {
    let axe = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../frontend/node_modules/axe-core/axe.min.js");
    let source = std::fs::read_to_string(&axe)
        .with_context(|| format!("reading {} (cargo xtask ui installs it)", axe.display()))?;
    c.execute(&source, vec![]).await?;
    let found = c
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             axe.run(document, { resultTypes: ['violations'] }).then(r => done(r.violations\
               .filter(v => v.impact === 'serious' || v.impact === 'critical')\
               .map(v => `${v.id}: ${v.help} [${v.nodes.slice(0, 5).map(n => n.target.join(' ') + (n.any[0] && n.any[0].data && n.any[0].data.contrastRatio ? ` (${n.any[0].data.fgColor} on ${n.any[0].data.bgColor}: ${n.any[0].data.contrastRatio})` : '')).join(' | ')}]`)))\
               .catch(e => done([`axe failed: ${e}`]));",
            vec![],
        )
        .await?;
    let mut found: Vec<String> = serde_json::from_value(found)?;
    found.extend(undrawn_icons(c).await?);
    Ok(found)
}

/// Icons shown on the page whose drawing is missing from the sprite (an empty box to a
/// person): waited for a few seconds, since the sprite arrives by itself.
pub async fn undrawn_icons(c: &Client) -> anyhow::Result<Vec<String>> {
    let found = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const started = Date.now();
             const check = () => {
               const missing = [...document.querySelectorAll('svg.icon')]
                 .filter(svg => svg.getClientRects().length > 0)
                 .filter(svg => { const u = svg.querySelector('use'); const b = u && u.getBBox(); return !b || b.width === 0; })
                 .map(svg => `icon not drawn: ${svg.getAttribute('class')} in ${svg.parentElement.getAttribute('class')}`);
               if (missing.length === 0 || Date.now() - started > 5000) done([...new Set(missing)]);
               else setTimeout(check, 100);
             };
             check();",
            vec![],
        )
        .await?;
    Ok(serde_json::from_value(found)?)
}

/// How long a browser test waits for something to appear.
pub const WAIT: Duration = Duration::from_secs(30);

/// A backend serving the built app (with extra settings), with one enrolled bridge running;
/// the bridge's home folder is `bridge.dir`.
pub async fn ui_stack(env: &[(&str, &str)]) -> anyhow::Result<(crate::Backend, crate::Bridge)> {
    ui_stack_on("127.0.0.1:0", env).await
}

/// [`ui_stack`] with the backend listening on `listen`.
pub async fn ui_stack_on(listen: &str, env: &[(&str, &str)]) -> anyhow::Result<(crate::Backend, crate::Bridge)> {
    let ui = crate::ui_dir()?.to_string_lossy().into_owned();
    let mut env = env.to_vec();
    env.push(("PORTA_UI_DIR", &ui));
    let backend = crate::Backend::start_on(listen, &env, true).await?;
    let mut bridge = crate::Bridge::enroll(&backend, &[]).await?;
    bridge.run(&[])?;
    Ok((backend, bridge))
}

/// The set-up most browser tests share: [`ui_stack`] (a backend serving the built app, with
/// one enrolled bridge running; its home folder is `bridge.dir`) and a fresh browser.
///
/// A test borrows what it needs, runs its body with [`UiStack::on_server_page`] (or
/// [`UiStack::signed_in`]) and returns what that returns:
///
/// ```ignore
/// let ui = UiStack::start(&[], 1280, 800).await?;
/// let UiStack { backend, browser, .. } = &ui;
/// let c = &browser.client;
/// ui.on_server_page("test_name", || async {
///     // The server's page is open, its first terminal live.
///     Ok(())
/// })
/// .await
/// ```
pub struct UiStack {
    pub backend: crate::Backend,
    pub bridge: crate::Bridge,
    pub browser: Browser,
}

impl UiStack {
    /// [`ui_stack`] with the extra backend settings `env`, and a `width`×`height` browser
    /// ([`Browser::start`]).
    pub async fn start(env: &[(&str, &str)], width: u32, height: u32) -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0", env, width, height).await
    }

    /// [`UiStack::start`] with the backend listening on `listen`.
    pub async fn start_on(listen: &str, env: &[(&str, &str)], width: u32, height: u32) -> anyhow::Result<Self> {
        let (backend, bridge) = ui_stack_on(listen, env).await?;
        let browser = Browser::start(width, height).await?;
        Ok(Self { backend, bridge, browser })
    }

    /// Runs the test `body` once the admin is signed in and the (only) server's page is open
    /// with its first terminal live ([`open_server`]). As [`with_screenshot_on_failure`]: a
    /// page error fails the test, and a failure (of the set-up too) leaves a screenshot named
    /// after `test`. Ends the browser's session afterwards.
    pub async fn on_server_page<F, Fut>(&self, test: &str, body: F) -> anyhow::Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>>,
    {
        self.run(test, true, body).await
    }

    /// Like [`UiStack::on_server_page`], but the body starts on the dashboard, right after
    /// the admin signed in ([`sign_in`]).
    pub async fn signed_in<F, Fut>(&self, test: &str, body: F) -> anyhow::Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>>,
    {
        self.run(test, false, body).await
    }

    async fn run<F, Fut>(&self, test: &str, server_page: bool, body: F) -> anyhow::Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>>,
    {
        let c = &self.browser.client;
        let url = &self.backend.url;
        let result = with_screenshot_on_failure(&self.browser, test, || async move {
            if server_page {
                open_server(c, url).await?;
            } else {
                sign_in(c, url).await?;
            }
            body().await
        })
        .await;
        // What `Browser::close` does, which needs the browser by value; its processes end
        // when the fixture is dropped.
        let _ = c.clone().close().await;
        result
    }
}

/// Waits for an element, naming what was awaited when it never came.
pub async fn wait_for(c: &Client, css: &str) -> anyhow::Result<fantoccini::elements::Element> {
    c.wait().at_most(WAIT).for_element(Locator::Css(css)).await.with_context(|| format!("waiting for {css}"))
}

/// Clicks the element `css` names once it is there. Lists re-render rows as the disk changes
/// under them, so an element found a moment ago may be replaced before the click lands: a
/// stale element is looked up again rather than failing the test.
pub async fn click(c: &Client, css: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match wait_for(c, css).await?.click().await {
            Err(e) if e.is_stale_element_reference() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other.with_context(|| format!("clicking {css}")),
        }
    }
}

/// Signs in and opens the (only) server's page; waits for its first terminal to be live.
pub async fn open_server(c: &Client, url: &str) -> anyhow::Result<()> {
    sign_in(c, url).await?;
    wait_for(c, "li.server[data-status=online] a").await?.click().await?;
    wait_for(c, ".tab.active[data-state=live]").await?;
    Ok(())
}

/// Signs in on the page at `url` as the test admin and waits for the dashboard.
pub async fn sign_in(c: &Client, url: &str) -> anyhow::Result<()> {
    c.goto(url).await?;
    let wait = c.wait().at_most(Duration::from_secs(30));
    wait.for_element(Locator::Css("input[name=username]")).await?.send_keys("admin").await?;
    c.find(Locator::Css("input[name=password]")).await?.send_keys(crate::ADMIN_PASSWORD).await?;
    c.find(Locator::Css("button[type=submit]")).await?.click().await?;
    c.wait().at_most(Duration::from_secs(30)).for_element(Locator::Css(".topbar .user")).await?;
    Ok(())
}

/// The visible text of the active terminal (xterm.js's DOM rows), spaces normalised.
pub async fn terminal_text(c: &Client) -> anyhow::Result<String> {
    let v = c
        .execute(
            "const rows = document.querySelector('.pane.active .xterm-rows');\
             return rows ? rows.innerText.replace(/\\u00a0/g, ' ') : '';",
            vec![],
        )
        .await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

/// Waits until the active terminal shows `needle`; returns its text.
pub async fn wait_for_text(c: &Client, needle: &str, within: Duration) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let text = terminal_text(c).await?;
        if text.contains(needle) {
            return Ok(text);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the terminal never showed {needle:?}; it shows:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the expression `expr` is true in the page (an expression that throws is
/// false); fails saying `what` after 20 s.
pub async fn wait_js(c: &Client, expr: &str, what: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while c.execute(&format!("try {{ return !!({expr}); }} catch (e) {{ return false; }}"), vec![]).await?
        != json!(true)
    {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    Ok(())
}

/// Waits until the text of the elements `css` matches, taken together, contains `needle`;
/// returns that text.
pub async fn wait_text(c: &Client, css: &str, needle: &str) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut all = String::new();
        for el in c.find_all(Locator::Css(css)).await? {
            all.push_str(&el.text().await.unwrap_or_default());
            all.push('\n');
        }
        if all.contains(needle) {
            return Ok(all);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{css} never showed {needle:?}; it shows {all:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Types into the active terminal, as keystrokes into xterm.js's input element.
pub async fn type_in_terminal(c: &Client, text: &str) -> anyhow::Result<()> {
    let input = c.find(Locator::Css(".pane.active textarea.xterm-helper-textarea")).await?;
    input.send_keys(text).await?;
    Ok(())
}

/// Types a command and presses Enter.
pub async fn run_command(c: &Client, command: &str) -> anyhow::Result<()> {
    type_in_terminal(c, &format!("{command}{}", char::from(Key::Enter))).await
}

/// Ctrl+C in the active terminal, from the keyboard.
pub async fn ctrl_c(c: &Client) -> anyhow::Result<()> {
    chord(c, Key::Control, 'c').await
}

/// Presses `key` while holding `modifier`, as a person does (into whatever has the focus).
pub async fn chord(c: &Client, modifier: Key, key: char) -> anyhow::Result<()> {
    chord_of(c, &[modifier], key).await
}

/// Presses `key` while holding every one of `modifiers`.
pub async fn chord_of(c: &Client, modifiers: &[Key], key: char) -> anyhow::Result<()> {
    let mut actions = KeyActions::new("keyboard".into());
    for m in modifiers {
        actions = actions.then(KeyAction::Down { value: (*m).into() });
    }
    actions = actions.then(KeyAction::Down { value: key }).then(KeyAction::Up { value: key });
    for m in modifiers.iter().rev() {
        actions = actions.then(KeyAction::Up { value: (*m).into() });
    }
    c.perform_actions(actions).await?;
    Ok(())
}

/// Types text key by key into whatever has the focus (Monaco's input, for one).
pub async fn type_keys(c: &Client, text: &str) -> anyhow::Result<()> {
    let mut actions = KeyActions::new("keyboard".into());
    for ch in text.chars() {
        actions = actions.then(KeyAction::Down { value: ch }).then(KeyAction::Up { value: ch });
    }
    c.perform_actions(actions).await?;
    Ok(())
}

/// The text of the file at `path` in the page's editor (Monaco's model for it), if open.
pub async fn editor_text(c: &Client, path: &str) -> anyhow::Result<Option<String>> {
    let v = c
        .execute(
            "const m = window.monaco && monaco.editor.getModels().find(m => m.uri.scheme === 'porta' && m.uri.path === arguments[0]);\
             return m ? m.getValue() : null;",
            vec![json!(path)],
        )
        .await?;
    Ok(v.as_str().map(str::to_owned))
}

/// Output bytes the page's terminals have rendered so far (`window.portaRenderedBytes`).
pub async fn rendered_bytes(c: &Client) -> anyhow::Result<f64> {
    let v = c.execute("return window.portaRenderedBytes || 0;", vec![]).await?;
    Ok(v.as_f64().unwrap_or(0.0))
}

/// Clicks the server page's tool `css` (in `.toolbar`), as a person does: on the bar, or
/// behind "⋯" where the bar is too narrow to show it.
pub async fn tool(c: &Client, css: &str) -> anyhow::Result<()> {
    let button = wait_for(c, &format!(".toolbar {css}")).await?;
    if !button.is_displayed().await? {
        click(c, ".toolbar button.more-tools").await?;
    }
    button.click().await.with_context(|| format!("clicking the tool {css}"))?;
    Ok(())
}
