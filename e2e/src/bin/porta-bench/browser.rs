//! The browser app: its size, how soon a terminal is usable after navigating, how fast
//! output reaches the screen through xterm.js, and what following a chatty container's log
//! costs the page.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use fantoccini::{Client, Locator};
use porta_e2e::browser::{Browser, click, run_command, sign_in, terminal_text, tool, wait_text as shows};
use porta_e2e::first_visit::{FIRST_VISIT_BUDGET_KIB, downloaded_kib, follow_by_keyboard};
use porta_e2e::{Stack, ui_dir};
use serde_json::json;

use super::{Row, T, median, rendered, row};

const NAVIGATIONS: usize = 5;
/// Seconds each window of the page's log follow is measured, and how many windows.
const LOG_WINDOW_S: f64 = 4.0;
const LOG_WINDOWS: usize = 3;

/// On a stack of its own: a server left with the other sections' terminals would measure
/// them instead.
pub async fn run(quiet: &[(&str, &str)], rows: &mut Vec<Row>) -> anyhow::Result<()> {
    sizes(rows)?;
    let stack = Stack::start(quiet, &[]).await?;
    let browser = Browser::start(1280, 800).await?;
    let result = match measure(&browser, &stack, rows).await {
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
/// terminal (from the keyboard, the pointer out of the way, as `lazy_ui`'s budget test does).
async fn first_visit(c: &Client, stack: &Stack) -> anyhow::Result<f64> {
    sign_in(c, &stack.backend.url).await?;
    follow_by_keyboard(c, "li.server[data-status=online] a").await?;
    c.wait().at_most(T).for_element(Locator::Css(".tab.active[data-state=live]")).await?;
    downloaded_kib(c).await
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

async fn measure(browser: &Browser, stack: &Stack, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let c = &browser.client;
    let first = first_visit(c, stack).await?;
    rows.push(row(
        "first visit download (sign-in to a terminal, brotli)",
        format!("{first:.0} KiB"),
        "-",
        &format!("<= {FIRST_VISIT_BUDGET_KIB} KiB"),
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

    // Output into xterm.js alone, then through the page and through ttyd's page in turn.
    let alone = rendered::xterm_alone(browser).await?;
    let pane = rendered::pane(c).await?;
    let (porta, ttyd) = rendered::porta_and_ttyd(browser, &pane).await?;
    let mut peer = format!("xterm.js alone {}", alone.cell());
    if let Some(t) = &ttyd {
        peer = format!("ttyd's page {}; {peer}", t.cell());
    }
    let mut value = format!("{} ({:.0} % of xterm.js alone", porta.cell(), porta.rate / alone.rate * 100.0);
    if let Some(t) = &ttyd {
        value += &format!(", {:.2}× ttyd's page", porta.rate / t.rate);
    }
    rows.push(row("browser-rendered throughput, 50 MB", value + ")", &peer, ">= 80 % of xterm.js alone"));
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
