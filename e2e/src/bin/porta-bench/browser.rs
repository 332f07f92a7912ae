//! The browser app: its size, how soon a terminal is usable after navigating, how fast
//! output reaches the screen through xterm.js, and what following a chatty container's log
//! costs the page.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use fantoccini::{Client, Locator};
use porta_e2e::browser::{
    Browser, click, rendered_bytes, run_command, sign_in, terminal_text, tool, type_in_terminal, wait_text as shows,
};
use porta_e2e::{Stack, ui_dir};
use serde_json::json;

use super::{FLOOD_BYTES, Row, T, flood_command, median, row};

const NAVIGATIONS: usize = 5;
const FLOODS: usize = 3;
/// Seconds each window of the page's log follow is measured, and how many windows.
const LOG_WINDOW_S: f64 = 4.0;
const LOG_WINDOWS: usize = 3;

/// On a stack of its own: a server left with the other sections' terminals would measure
/// them instead.
pub async fn run(quiet: &[(&str, &str)], rows: &mut Vec<Row>) -> anyhow::Result<()> {
    sizes(rows)?;
    let stack = Stack::start(quiet, &[]).await?;
    let browser = Browser::start(1280, 800).await?;
    let result = match measure(&browser.client, &stack, rows).await {
        Ok(()) => logs_in_page(&browser, &stack, rows).await,
        failed => failed,
    };
    browser.close().await;
    result
}

fn sizes(rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let a = ui_dir()?.join("a");
    let assets = std::fs::read_dir(&a)?.next().context("no built assets")??.path();
    let size = |name: &str| std::fs::metadata(assets.join(name)).map(|m| m.len() as f64 / 1024.0);
    let (raw, gz, br) =
        (size("porta_frontend_bg.wasm")?, size("porta_frontend_bg.wasm.gz")?, size("porta_frontend_bg.wasm.br")?);
    rows.push(row("app wasm size (raw / gzip / brotli)", format!("{raw:.0} / {gz:.0} / {br:.0} KiB"), "-", "-"));
    let (mut chunks, mut on_demand) = (0, 0.0);
    for entry in std::fs::read_dir(&assets)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".wasm") && name != "porta_frontend_bg.wasm" {
            chunks += 1;
            on_demand += size(&format!("{name}.br")).or_else(|_| size(&name))?;
        }
    }
    rows.push(row(
        &format!("pages and panels loaded when first shown ({chunks} chunks, brotli)"),
        format!("{on_demand:.0} KiB"),
        "-",
        "-",
    ));
    Ok(())
}

/// What a first visit downloads, as the browser counts it (compressed bodies of the page
/// and everything under `/a/`): a fresh profile signs in, sees the dashboard and opens a
/// terminal.
async fn first_visit(c: &Client, stack: &Stack) -> anyhow::Result<f64> {
    sign_in(c, &stack.backend.url).await?;
    c.wait().at_most(T).for_element(Locator::Css("li.server[data-status=online] a")).await?.click().await?;
    c.wait().at_most(T).for_element(Locator::Css(".tab.active[data-state=live]")).await?;
    let bytes = c
        .execute(
            "return [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]\
               .filter(e => e.entryType === 'navigation' || new URL(e.name).pathname.startsWith('/a/'))\
               .reduce((sum, e) => sum + (e.encodedBodySize || 0), 0);",
            vec![],
        )
        .await?;
    bytes.as_f64().map(|b| b / 1024.0).context("the page did not say what it downloaded")
}

/// Polls until the active terminal shows `needle`.
async fn wait_text(c: &Client, needle: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + T;
    while !terminal_text(c).await?.contains(needle) {
        if Instant::now() > deadline {
            bail!("the terminal never showed {needle:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

async fn measure(c: &Client, stack: &Stack, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let first = first_visit(c, stack).await?;
    rows.push(row(
        "first visit download (sign-in to a terminal, brotli)",
        format!("{first:.0} KiB"),
        "-",
        "<= 450 KiB",
    ));
    let page = format!("{}/servers/{}", stack.backend.url, stack.server_id);
    // Navigation until a command typed in the terminal has echoed back; the first load
    // fills the browser's cache, as for anyone who has used Porta before.
    let mut usable = Vec::new();
    for i in 0..=NAVIGATIONS {
        let start = Instant::now();
        c.goto(&page).await?;
        // WebDriver waits poll every 250 ms unless told otherwise.
        let live = Locator::Css(".tab.active[data-state=live]");
        c.wait().at_most(T).every(Duration::from_millis(5)).for_element(live).await?;
        run_command(c, &format!("echo nav-$((1000+{i}))")).await?;
        wait_text(c, &format!("\nnav-{}", 1000 + i)).await?;
        if i > 0 {
            usable.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    rows.push(row("navigation to usable terminal (cached)", format!("{:.0} ms", median(usable)), "-", "-"));

    let ceiling = xterm_alone(c).await?;
    let mut rates = Vec::new();
    for _ in 0..FLOODS {
        // Timed inside the page, so that polling from here does not load its main thread.
        let arm = format!(
            "const target = (window.portaRenderedBytes || 0) + {FLOOD_BYTES};\
             window.benchStart = performance.now(); window.benchEnd = null;\
             const timer = setInterval(() => {{\
               if ((window.portaRenderedBytes || 0) >= target) {{\
                 window.benchEnd = performance.now(); clearInterval(timer);\
               }}\
             }}, 5);"
        );
        // Typed first, the clock armed once the shell has echoed it, then Enter: typing 126
        // characters through WebDriver takes longer than a person's paste, and is not the
        // relay's time.
        let echoed = rendered_bytes(c).await? + flood_command().len() as f64;
        type_in_terminal(c, &flood_command()).await?;
        let deadline = Instant::now() + T;
        while rendered_bytes(c).await? < echoed {
            anyhow::ensure!(Instant::now() < deadline, "the shell never echoed the command");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        c.execute(&arm, vec![]).await?;
        let start = Instant::now();
        type_in_terminal(c, &char::from(fantoccini::key::Key::Enter).to_string()).await?;
        let ms = loop {
            let end = c.execute("return window.benchEnd && window.benchEnd - window.benchStart", vec![]).await?;
            if let Some(ms) = end.as_f64() {
                break ms;
            }
            if start.elapsed() > T * 2 {
                bail!("the browser rendered only part of the flood: {} bytes", rendered_bytes(c).await?);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        rates.push(FLOOD_BYTES as f64 / ms / 1000.0);
        wait_text(c, "FLOOD-42-DONE").await?;
        run_command(c, "clear").await?;
    }
    rows.push(row(
        "browser-rendered throughput, 50 MB",
        format!("{:.1} MB/s", median(rates)),
        &format!("xterm.js alone {ceiling:.1} MB/s"),
        "-",
    ));
    Ok(())
}

/// The longest wait between two frames, measured in the page (reset when read).
const FRAME_METER: &str = "window.benchMaxGap = 0; window.benchMeter = true; let last = performance.now();\
    const tick = (t) => { window.benchMaxGap = Math.max(window.benchMaxGap, t - last); last = t;\
      if (window.benchMeter) requestAnimationFrame(tick); };\
    requestAnimationFrame(tick);";

/// The Containers panel following the log of a container that writes as fast as it can:
/// the lines the page receives a second (each batch shown before the next is asked for), how busy its main thread is (Chromium's own task time),
/// and the longest wait between two frames, where a page that froze would show.
async fn logs_in_page(browser: &Browser, stack: &Stack, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let Some(image) = super::containers::image() else { return Ok(()) };
    let (made, name, _) = super::containers::flood_container(&image, "page-logs")?;
    let c = &browser.client;
    c.goto(&format!("{}/servers/{}", stack.backend.url, stack.server_id)).await?;
    tool(c, "button.containers-toggle").await?;
    click(c, &format!("tr[data-name='{name}'] button.logs")).await?;
    shows(c, ".container-logs .log-lines", "xxxxxxxxxx").await?;
    browser.cdp("Performance.enable", json!({})).await?;
    c.execute(FRAME_METER, vec![]).await?;
    let (mut shown, mut busy, mut gaps) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..LOG_WINDOWS {
        let before = page_now(browser).await?;
        tokio::time::sleep(Duration::from_secs_f64(LOG_WINDOW_S)).await;
        let after = page_now(browser).await?;
        let secs = (after.at - before.at).max(1e-3);
        shown.push((after.lines - before.lines) / secs);
        busy.push((after.busy - before.busy) / secs * 100.0);
        gaps.push(after.gap);
    }
    c.execute("window.benchMeter = false;", vec![]).await?;
    rows.push(row(
        "log follow in the page, a container writing as fast as it can",
        format!(
            "{:.0} lines/s received; main thread {:.0} % busy; longest frame gap {:.0} ms",
            median(shown),
            median(busy),
            median(gaps)
        ),
        "-",
        "the page keeps painting",
    ));
    drop(made);
    Ok(())
}

/// What the page has done so far: Chromium's clock and main-thread task time (seconds), the
/// log lines it received, and its longest frame gap since the last look (ms).
struct PageNow {
    at: f64,
    busy: f64,
    lines: f64,
    gap: f64,
}

async fn page_now(browser: &Browser) -> anyhow::Result<PageNow> {
    let m = browser.cdp("Performance.getMetrics", json!({})).await?;
    let metric = |n: &str| {
        m["metrics"].as_array().and_then(|all| all.iter().find(|x| x["name"] == n)).and_then(|x| x["value"].as_f64())
    };
    let page = browser
        .client
        .execute(
            "const g = window.benchMaxGap || 0; window.benchMaxGap = 0; return [window.portaLogLines || 0, g];",
            vec![],
        )
        .await?;
    Ok(PageNow {
        at: metric("Timestamp").context("Chromium gave no Timestamp metric")?,
        busy: metric("TaskDuration").context("Chromium gave no TaskDuration metric")?,
        lines: page[0].as_f64().unwrap_or(0.0),
        gap: page[1].as_f64().unwrap_or(0.0),
    })
}

/// How fast xterm.js parses the same flood in this browser with no network at all: the most a
/// terminal like the app's could show. The terminal is the app's own (same place and size,
/// visible, the app's font and scrollback), fed 64 KiB writes with 256 KiB queued at most.
async fn xterm_alone(c: &Client) -> anyhow::Result<f64> {
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
    let v = c.execute_async(&script, vec![]).await?;
    v.as_f64().context("xterm.js measurement returned no number")
}
