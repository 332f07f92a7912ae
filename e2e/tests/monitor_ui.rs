//! Monitoring in the browser, in headless Chromium against a real backend and bridge: the
//! dashboard's card for the local server shows it online with its live pulse and sparkline,
//! the filters hide and show it, and the server page's Monitor draws charts with data and
//! lists the busiest processes, for every window.

use std::time::Duration;

use fantoccini::{Client, Locator};
use porta_e2e::browser::{UiStack, click, wait_for};

const SHORT: Duration = Duration::from_secs(30);

/// Waits until `js` (a function body returning a value) returns something truthy; returns it.
async fn wait_js(c: &Client, js: &str, what: &str) -> anyhow::Result<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + SHORT;
    loop {
        let v = c.execute(js, vec![]).await?;
        if v.as_bool() != Some(false) && !v.is_null() && v.as_str() != Some("") {
            return Ok(v);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{what} never happened (last: {v})");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `d` of the first line of the chart titled `title`.
fn chart_path(title: &str) -> String {
    format!(
        "const p = document.querySelector(\".chart[data-chart='{title}'] path.line\"); return p ? p.getAttribute('d') : '';"
    )
}

#[tokio::test]
async fn the_fleet_overview_and_the_charts_show_the_local_server_live() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1400, 900).await?;
    let UiStack { browser, .. } = &ui;
    let c = &browser.client;
    ui.signed_in("monitor", || async {
        // The card: online, with CPU, memory and disk filled in by a live sample.
        wait_for(c, "li.server[data-status=online] .pulse").await?;
        let cpu = wait_js(
            c,
            "const b = document.querySelector(\"li.server .pulse .stat[data-metric='cpu'] b\"); return b && b.textContent.includes('%') ? b.textContent : '';",
            "the card's CPU",
        )
        .await?;
        assert!(cpu.as_str().is_some_and(|t| t.ends_with('%')), "{cpu}");
        let worst = c.find_all(Locator::Css("li.server .pulse .stat.worst")).await?;
        assert_eq!(worst.len(), 1, "exactly one metric is highlighted as the worst");
        wait_js(
            c,
            "const p = document.querySelector('li.server .sparkline path'); return p ? p.getAttribute('d') : '';",
            "the sparkline",
        )
        .await?;
        browser.screenshot("fleet").await?;

        // Filters: offline hides the (online) server; all shows it again.
        c.execute("const s = document.querySelector('.status-filter'); s.value = 'offline'; s.dispatchEvent(new Event('change'));", vec![]).await?;
        wait_js(c, "return document.querySelectorAll('li.server').length === 0;", "hiding online servers").await?;
        c.execute("const s = document.querySelector('.status-filter'); s.value = 'online'; s.dispatchEvent(new Event('change'));", vec![]).await?;
        wait_for(c, "li.server[data-status=online]").await?;

        // The server page's Monitor: charts with data, and the busiest processes.
        click(c, "li.server[data-status=online] a").await?;
        wait_for(c, ".tab.active[data-state=live]").await?;
        click(c, "button.monitor-toggle").await?;
        let d = wait_js(c, &chart_path("CPU"), "the CPU chart's line").await?;
        assert!(d.as_str().is_some_and(|d| d.starts_with('M')), "{d}");
        wait_js(c, &chart_path("Memory"), "the memory chart's line").await?;
        // No label lies over a chart's drawing, where its lines run.
        let overlaps = c
            .execute(
                "const hit = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
                 const out = [];
                 for (const chart of document.querySelectorAll('.chart')) {
                   const plot = chart.querySelector('.plot svg').getBoundingClientRect();
                   for (const label of chart.querySelectorAll('.y-top, .x-axis span, figcaption span')) {
                     if (label.textContent.trim() && hit(label.getBoundingClientRect(), plot))
                       out.push(chart.dataset.chart + ': ' + label.textContent);
                   }
                 }
                 return out;",
                vec![],
            )
            .await?;
        assert_eq!(overlaps, serde_json::json!([]), "labels over the drawings");
        let rows = wait_js(c, "return document.querySelectorAll('.processes tbody tr').length;", "process rows").await?;
        assert!(rows.as_u64().unwrap_or(0) > 0);
        let value = c.find(Locator::Css(".chart[data-chart='Memory'] .legend-key[data-metric='memory'] .value")).await?.text().await?;
        assert!(value.ends_with('%'), "the legend shows the newest value: {value:?}");
        // A process of this test's own: found by the filter, ended by the Signal button (TERM,
        // after the confirmation, accepted here).
        let mut child = std::process::Command::new("sleep").arg("600").spawn()?;
        let pid = child.id();
        let row = format!(".processes tr[data-pid='{pid}']");
        let deadline = tokio::time::Instant::now() + SHORT;
        loop {
            let filter = wait_for(c, ".process-filter").await?;
            filter.clear().await?;
            filter.send_keys(&pid.to_string()).await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            if c.find(Locator::Css(&row)).await.is_ok() {
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "pid {pid} never listed");
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        c.execute("window.confirm = () => true;", vec![]).await?;
        click(c, &format!("{row} button.kill")).await?;
        let status = tokio::time::timeout(SHORT, tokio::task::spawn_blocking(move || child.wait())).await???;
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(status.signal(), Some(15), "ended by TERM");
        wait_for(c, ".process-filter").await?.clear().await?;

        // Sorting by memory puts the largest first.
        click(c, ".processes th:nth-child(4) button").await?;
        let sorted = wait_js(
            c,
            "const th = document.querySelector('.processes th:nth-child(4)'); return th.getAttribute('aria-sort') === 'descending';",
            "sorting by memory",
        )
        .await?;
        assert_eq!(sorted, serde_json::json!(true));
        browser.screenshot("monitor").await?;

        // Every window draws (a month reads hourly points, the newest ones summarised now).
        for w in ["M15", "H24", "D7", "D30"] {
            click(c, &format!(".window[data-window='{w}']")).await?;
            wait_for(c, &format!(".window[data-window='{w}'][aria-pressed='true']")).await?;
            let d = wait_js(c, &chart_path("CPU"), &format!("the CPU line over {w}")).await?;
            assert!(d.as_str().is_some_and(|d| d.starts_with('M')), "{w}: {d}");
        }
        // Closing the Monitor shows the terminal again.
        click(c, "button.monitor-toggle").await?;
        anyhow::ensure!(c.find(Locator::Css(".monitor-pane")).await.is_err(), "the Monitor closed");
        Ok(())
    })
    .await
}
