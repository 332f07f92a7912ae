//! Accessibility, checked by axe-core (the standard engine behind Lighthouse and most
//! checkers) on every page of the app, at desktop and phone sizes, in both themes: no
//! serious or critical violation — names for every control, contrast, structure.

use fantoccini::Client;
use porta_e2e::browser::{UiStack, accessibility_violations, click, wait_for};

/// Each page, and what shows it is ready.
const PAGES: [(&str, &str); 6] = [
    ("/", "li.server[data-status=online]"),
    ("/audit", ".audit-badge"),
    ("/tokens", "main.tokens"),
    ("/alerts", ".alert-history"),
    ("/account", "main.account"),
    ("/team", ".team-page .members tr.member"),
];

async fn check_every_page(c: &Client, base: &str, server: &str, size: &str) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    for dark in [true, false] {
        for (path, ready) in PAGES {
            if path == "/team" {
                c.goto(&format!("{base}/")).await?;
                click(c, "a.team-link").await?;
            } else {
                c.goto(&format!("{base}{path}")).await?;
            }
            wait_for(c, ready).await?;
            set_theme(c, dark).await?;
            for v in accessibility_violations(c).await? {
                found.push(format!("{size} {} {path}: {v}", theme(dark)));
            }
        }
        // The server's page, with its terminal and each panel.
        c.goto(&format!("{base}/servers/{server}")).await?;
        wait_for(c, ".tab.active[data-state=live]").await?;
        // The key row comes where the page is narrow (a phone): checked with the rest.
        if browser_is_narrow(c).await? {
            wait_for(c, ".keyrow").await?;
        }
        set_theme(c, dark).await?;
        for v in accessibility_violations(c).await? {
            found.push(format!("{size} {} server page: {v}", theme(dark)));
        }
        // Each panel, and the command palette, open.
        for (toggle, pane, ready) in [
            ("button.files-toggle", ".files-pane", ".files-entry[data-name]"),
            ("button.chat-toggle", ".chat-pane", ".chat-pane textarea"),
            ("button.monitor-toggle", ".monitor-pane", ".monitor-pane figure.chart"),
        ] {
            let open = match c.find(fantoccini::Locator::Css(pane)).await {
                Ok(el) => el.is_displayed().await?,
                Err(_) => false,
            };
            if !open {
                click(c, toggle).await?;
            }
            wait_for(c, ready).await?;
            for v in accessibility_violations(c).await? {
                found.push(format!("{size} {} server page, {pane} open: {v}", theme(dark)));
            }
            click(c, &format!("{pane} button.panel-close")).await?;
        }
        click(c, ".topbar button.palette-open").await?;
        wait_for(c, ".palette:not([hidden]) .palette-item").await?;
        for v in accessibility_violations(c).await? {
            found.push(format!("{size} {} command palette: {v}", theme(dark)));
        }
    }
    Ok(found)
}

fn theme(dark: bool) -> &'static str {
    if dark { "dark" } else { "light" }
}

/// Puts the page in the dark or light theme (the top bar's switch).
async fn set_theme(c: &Client, dark: bool) -> anyhow::Result<()> {
    let now = c.execute("return document.documentElement.dataset.theme", vec![]).await?;
    if (now == "dark") != dark {
        click(c, "button.theme").await?;
        let want = theme(dark);
        let deadline = tokio::time::Instant::now() + porta_e2e::browser::WAIT;
        while c.execute("return document.documentElement.dataset.theme", vec![]).await? != want {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the theme never became {want}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// Whether the page is as narrow as a phone's (where the key row shows).
async fn browser_is_narrow(c: &Client) -> anyhow::Result<bool> {
    let narrow = c.execute("return matchMedia('(max-width: 700px)').matches", vec![]).await?;
    Ok(narrow.as_bool().unwrap_or(false))
}

async fn no_violations(width: u32, height: u32) -> anyhow::Result<()> {
    let ui = UiStack::start(&[], width, height).await?;
    let UiStack { backend, browser, .. } = &ui;
    let api = porta_e2e::client::Api::login(&backend.url, "admin", porta_e2e::ADMIN_PASSWORD).await?;
    let server = api.wait_server_online(true, porta_e2e::browser::WAIT).await?;
    let c = &browser.client;
    ui.signed_in(&format!("accessibility_{width}"), || async {
        let found = check_every_page(c, &backend.url, &server, &format!("{width}x{height}")).await?;
        anyhow::ensure!(found.is_empty(), "{} accessibility violations:\n{}", found.len(), found.join("\n"));
        Ok(())
    })
    .await
}

#[tokio::test]
async fn no_page_has_a_serious_accessibility_violation_on_a_desktop() -> anyhow::Result<()> {
    no_violations(1280, 800).await
}

#[tokio::test]
async fn no_page_has_a_serious_accessibility_violation_on_a_phone() -> anyhow::Result<()> {
    no_violations(390, 844).await
}
