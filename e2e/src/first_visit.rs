//! What a first visit downloads: the budget, how the page counts it, and how a test reaches a
//! terminal without fetching what a pointer over it would.

use std::time::Duration;

use anyhow::Context as _;
use fantoccini::Client;
use fantoccini::actions::{InputSource as _, MouseActions, PointerAction};
use fantoccini::key::Key;
use serde_json::json;

use crate::browser::{WAIT, type_keys};

/// Follows the link `css` from the keyboard, the pointer moved out of the way first (to the
/// page's top left corner, over the top bar): what a pointer over the next page's terminal
/// would fetch (its links add-on) is not fetched.
pub async fn follow_by_keyboard(c: &Client, css: &str) -> anyhow::Result<()> {
    let away = MouseActions::new("mouse".into()).then(PointerAction::MoveTo { duration: None, x: 0.0, y: 0.0 });
    c.perform_actions(away).await?;
    // (A list may draw its rows again between finding one and focusing it.)
    let focus = format!(
        "const e = document.querySelector({}); e && e.focus(); return !!e && document.activeElement === e;",
        json!(css)
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while c.execute(&focus, vec![]).await? != json!(true) {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{css} was never there to focus");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    type_keys(c, &char::from(Key::Enter).to_string()).await
}

/// What a first visit may download (compressed; see [`downloaded_kib`]).
pub const FIRST_VISIT_BUDGET_KIB: f64 = 450.0;

/// What the page has downloaded so far, as the browser counts it: the compressed bodies of
/// the page and of everything under `/a/` (the app's files), in KiB.
pub async fn downloaded_kib(c: &Client) -> anyhow::Result<f64> {
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
