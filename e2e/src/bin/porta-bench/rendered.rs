//! Browser-rendered throughput: a 50 MB flood typed into a terminal and timed in the page until
//! xterm.js has parsed it, through Porta's page and through ttyd's own page in the same browser
//! (its terminal given the size, font and renderer of Porta's), beside xterm.js fed with no
//! network at all. The page's main thread is also timed (Chromium's own task time), which
//! tells a page that waited for output from one that had no time to take it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use fantoccini::{Client, Locator};
use porta_e2e::browser::Browser;
use serde_json::json;

use super::ttyd::Ttyd;
use super::{FLOOD_BYTES, T, flood_command, median};

const FLOODS: usize = 3;

/// A page with a terminal: where to type, and the bytes its xterm.js has parsed so far.
struct Page {
    textarea: &'static str,
    rows: &'static str,
    parsed: &'static str,
}

const PORTA: Page = Page {
    textarea: ".pane.active textarea.xterm-helper-textarea",
    rows: ".pane.active .xterm-rows",
    parsed: "(window.portaRenderedBytes || 0)",
};

const TTYD: Page =
    Page { textarea: "textarea.xterm-helper-textarea", rows: ".xterm-rows", parsed: "(window.ttydParsed || 0)" };

/// Where Porta's terminal is on the page and its font size: ttyd's and the bare xterm.js are
/// given the same.
pub(super) struct Pane {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
    font: f64,
}

/// Medians of the floods in one page.
pub(super) struct Rendered {
    /// MB/s parsed.
    pub rate: f64,
    /// The main thread's share of the time spent on tasks, in percent.
    pub busy: f64,
}

impl Rendered {
    pub fn cell(&self) -> String {
        format!("{:.1} MB/s (main thread {:.0} % busy)", self.rate, self.busy)
    }
}

/// The active terminal pane of Porta's server page.
pub(super) async fn pane(c: &Client) -> anyhow::Result<Pane> {
    let v = c
        .execute(
            "const app = document.querySelector('.pane.active .term'); const b = app.getBoundingClientRect();\
             const font = parseFloat(getComputedStyle(app.querySelector('.xterm-rows') || app).fontSize) || 14;\
             return [b.left, b.top, b.width, b.height, font];",
            vec![],
        )
        .await?;
    let n = |i: usize| v[i].as_f64().context("the page did not say where its terminal is");
    Ok(Pane { left: n(0)?, top: n(1)?, width: n(2)?, height: n(3)?, font: n(4)? })
}

/// Floods Porta's active terminal (its server page is open in the current window) and, in a
/// second window, a terminal on ttyd's own page (`rendererType=dom`, as Porta's page renders)
/// sized and styled like Porta's pane, one flood each in turn so that a drifting load hits
/// both alike. ttyd's is `None` when no ttyd was built for this run.
pub(super) async fn porta_and_ttyd(browser: &Browser, pane: &Pane) -> anyhow::Result<(Rendered, Option<Rendered>)> {
    let c = &browser.client;
    let porta_window = c.window().await?;
    let ttyd = match std::env::var_os("PORTA_BENCH_TTYD") {
        Some(bin) => Some(Ttyd::start(Path::new(&bin)).await?),
        None => None,
    };
    let ttyd_window = match &ttyd {
        Some(t) => {
            let w = c.new_window(false).await?.handle;
            c.switch_to_window(w.clone()).await?;
            open_ttyd(c, t, pane).await?;
            c.switch_to_window(porta_window.clone()).await?;
            Some(w)
        }
        None => None,
    };
    let (mut porta, mut peer) = (Floods::default(), Floods::default());
    for _ in 0..FLOODS {
        porta.push(flood(browser, &PORTA).await?);
        if let Some(w) = &ttyd_window {
            c.switch_to_window(w.clone()).await?;
            peer.push(flood(browser, &TTYD).await?);
            c.switch_to_window(porta_window.clone()).await?;
        }
    }
    if let Some(w) = ttyd_window {
        c.switch_to_window(w).await?;
        c.close_window().await?;
        c.switch_to_window(porta_window).await?;
    }
    drop(ttyd);
    let peer = (!peer.rates.is_empty()).then(|| peer.median());
    Ok((porta.median(), peer))
}

#[derive(Default)]
struct Floods {
    rates: Vec<f64>,
    busy: Vec<f64>,
}

impl Floods {
    fn push(&mut self, r: Rendered) {
        self.rates.push(r.rate);
        self.busy.push(r.busy);
    }

    fn median(self) -> Rendered {
        Rendered { rate: median(self.rates), busy: median(self.busy) }
    }
}

/// ttyd's page in the current window, its terminal where Porta's pane is, in its font, and
/// every write counted once xterm.js has parsed it.
async fn open_ttyd(c: &Client, ttyd: &Ttyd, pane: &Pane) -> anyhow::Result<()> {
    c.goto(&format!("{}/?rendererType=dom", ttyd.url())).await?;
    let ready = format!("return !!(window.term && document.querySelector('{}'));", TTYD.rows);
    let deadline = Instant::now() + T;
    while !c.execute(&ready, vec![]).await?.as_bool().unwrap_or(false) {
        anyhow::ensure!(Instant::now() < deadline, "ttyd's page never showed a DOM-rendered terminal");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Pane { left, top, width, height, font } = pane;
    let setup = format!(
        "const box = document.getElementById('terminal-container');\
         box.style.cssText = 'position:fixed;left:{left}px;top:{top}px;width:{width}px;height:{height}px';\
         const term = window.term;\
         term.options.fontSize = {font};\
         term.options.fontFamily = 'ui-monospace, \"Cascadia Mono\", \"DejaVu Sans Mono\", Menlo, Consolas, monospace';\
         term.fit();\
         const write = term.write.bind(term);\
         window.ttydParsed = 0;\
         term.write = (data, done) => write(data, () => {{ window.ttydParsed += data.length; if (done) done(); }});"
    );
    c.execute(&setup, vec![]).await?;
    wait_shown(c, &TTYD, "$ ").await
}

/// One flood in `page`'s terminal, timed in the page from its Enter until xterm.js has parsed
/// 50 MB.
async fn flood(browser: &Browser, page: &Page) -> anyhow::Result<Rendered> {
    let c = &browser.client;
    browser.cdp("Performance.enable", json!({})).await?;
    // Timed inside the page, so that polling from here does not load its main thread.
    let arm = format!(
        "const target = {parsed} + {FLOOD_BYTES};\
         window.benchStart = performance.now(); window.benchEnd = null;\
         const timer = setInterval(() => {{\
           if ({parsed} >= target) {{ window.benchEnd = performance.now(); clearInterval(timer); }}\
         }}, 5);",
        parsed = page.parsed
    );
    // Typed first, the clock armed once the shell has echoed it, then Enter: typing 126
    // characters through WebDriver takes longer than a person's paste, and is not the relay's
    // time.
    let echoed = parsed(c, page).await? + flood_command().len() as f64;
    type_in(c, page, &flood_command()).await?;
    let deadline = Instant::now() + T;
    while parsed(c, page).await? < echoed {
        anyhow::ensure!(Instant::now() < deadline, "the shell never echoed the command");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.execute(&arm, vec![]).await?;
    let before = task_time(browser).await?;
    let start = Instant::now();
    type_in(c, page, &char::from(fantoccini::key::Key::Enter).to_string()).await?;
    let ms = loop {
        let end = c.execute("return window.benchEnd && window.benchEnd - window.benchStart", vec![]).await?;
        if let Some(ms) = end.as_f64() {
            break ms;
        }
        if start.elapsed() > T * 2 {
            bail!("the browser rendered only part of the flood: {} bytes", parsed(c, page).await?);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let after = task_time(browser).await?;
    wait_shown(c, page, "FLOOD-42-DONE").await?;
    type_in(c, page, &format!("clear{}", char::from(fantoccini::key::Key::Enter))).await?;
    Ok(Rendered {
        rate: FLOOD_BYTES as f64 / ms / 1000.0,
        // The task time from the Enter to the look after the end, over the same span.
        busy: (after.1 - before.1) / (after.0 - before.0).max(1e-3) * 100.0,
    })
}

async fn parsed(c: &Client, page: &Page) -> anyhow::Result<f64> {
    Ok(c.execute(&format!("return {};", page.parsed), vec![]).await?.as_f64().unwrap_or(0.0))
}

async fn type_in(c: &Client, page: &Page, text: &str) -> anyhow::Result<()> {
    c.find(Locator::Css(page.textarea)).await?.send_keys(text).await?;
    Ok(())
}

/// Waits until `page`'s terminal shows `needle`.
async fn wait_shown(c: &Client, page: &Page, needle: &str) -> anyhow::Result<()> {
    let text = format!(
        "const rows = document.querySelector('{}'); return rows ? rows.innerText.replace(/\\u00a0/g, ' ') : '';",
        page.rows
    );
    let deadline = Instant::now() + T;
    while !c.execute(&text, vec![]).await?.as_str().unwrap_or_default().contains(needle) {
        anyhow::ensure!(Instant::now() < deadline, "the terminal never showed {needle:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Chromium's clock and the main thread's task time so far, in seconds.
async fn task_time(browser: &Browser) -> anyhow::Result<(f64, f64)> {
    let m = browser.cdp("Performance.getMetrics", json!({})).await?;
    let metric = |n: &str| {
        m["metrics"].as_array().and_then(|all| all.iter().find(|x| x["name"] == n)).and_then(|x| x["value"].as_f64())
    };
    Ok((
        metric("Timestamp").context("Chromium gave no Timestamp metric")?,
        metric("TaskDuration").context("Chromium gave no TaskDuration metric")?,
    ))
}

/// How fast xterm.js parses the same flood in this browser with no network at all: the most a
/// terminal like the app's could show. The terminal is the app's own (same place and size,
/// visible, the app's font and scrollback), fed 64 KiB writes with 256 KiB queued at most.
pub(super) async fn xterm_alone(browser: &Browser) -> anyhow::Result<Rendered> {
    let c = &browser.client;
    let script = format!(
        r#"const done = arguments[arguments.length - 1];
        Promise.all([import("@xterm/xterm"), import("@xterm/addon-fit")]).then(([{{ Terminal }}, {{ FitAddon }}]) => {{
          const app = document.querySelector(".pane.active .term");
          const box = app.getBoundingClientRect();
          const font = getComputedStyle(app.querySelector(".xterm-rows") || app).fontSize;
          const el = document.createElement("div");
          el.style.cssText = `position:fixed;left:${{box.left}}px;top:${{box.top}}px;width:${{box.width}}px;height:${{box.height}}px;z-index:9999;background:#000`;
          document.body.appendChild(el);
          const term = new Terminal({{
            fontSize: parseFloat(font) || 14,
            fontFamily: 'ui-monospace, "Cascadia Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace',
            scrollback: 10000,
            allowProposedApi: true,
          }});
          const fit = new FitAddon();
          term.loadAddon(fit);
          term.open(el);
          fit.fit();
          const line = new TextEncoder().encode("porta bench: the quick brown fox jumps over the lazy dog 0123456789\r\n");
          const chunk = new Uint8Array(65536);
          for (let i = 0; i < chunk.length; i++) chunk[i] = line[i % line.length];
          const total = {FLOOD_BYTES};
          let queued = 0, parsed = 0;
          const start = performance.now();
          const pump = () => {{
            while (queued - parsed < 262144 && queued < total) {{
              queued += chunk.length;
              term.write(chunk, () => {{
                parsed += chunk.length;
                if (parsed >= total) {{
                  const ms = performance.now() - start;
                  term.dispose(); el.remove();
                  done(total / ms / 1000);
                }} else pump();
              }});
            }}
          }};
          pump();
        }});"#
    );
    let timeouts = fantoccini::wd::TimeoutConfiguration::new(Some(T), None, None);
    c.update_timeouts(timeouts).await?;
    browser.cdp("Performance.enable", json!({})).await?;
    let before = task_time(browser).await?;
    let v = c.execute_async(&script, vec![]).await?;
    let after = task_time(browser).await?;
    let rate = v.as_f64().context("xterm.js measurement returned no number")?;
    Ok(Rendered { rate, busy: (after.1 - before.1) / (after.0 - before.0).max(1e-3) * 100.0 })
}
