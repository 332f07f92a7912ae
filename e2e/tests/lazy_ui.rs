//! Pages and panels loaded when first shown (`frontend/src/lazy.rs`): the first visit leaves
//! them out, opening one fetches its chunk, and a chunk that cannot be fetched is said so
//! while the rest of the app goes on working.

use std::path::Path;

use fantoccini::Client;
use porta_e2e::browser::{Browser, click, sign_in, wait_for, with_screenshot_on_failure};
use porta_e2e::first_visit::{FIRST_VISIT_BUDGET_KIB, downloaded_kib, follow_by_keyboard};
use porta_e2e::{Backend, Bridge, ui_dir};

/// The file names the page has fetched under `/a/` so far.
async fn fetched(c: &Client) -> anyhow::Result<Vec<String>> {
    let names = c
        .execute(
            "return performance.getEntriesByType('resource')\
               .map(e => new URL(e.name).pathname)\
               .filter(p => p.startsWith('/a/'))\
               .map(p => p.split('/').pop());",
            vec![],
        )
        .await?;
    Ok(serde_json::from_value(names)?)
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn rarely_used_pages_arrive_when_opened_and_a_missing_one_is_reported() -> anyhow::Result<()> {
    // The built app, in a folder of this test's own, without the audit page's chunk (as
    // after an update that replaced the files under an open page).
    let ui = tempfile::tempdir()?;
    copy_tree(&ui_dir()?, ui.path())?;
    let assets = std::fs::read_dir(ui.path().join("a"))?.next().expect("built assets")?.path();
    let mut removed = 0;
    for entry in std::fs::read_dir(&assets)? {
        let path = entry?.path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("split_audit.wasm")) {
            std::fs::remove_file(path)?;
            removed += 1;
        }
    }
    assert!(removed > 0, "the audit page is a chunk of its own");

    let dir = ui.path().to_string_lossy().into_owned();
    let backend = Backend::start(&[("PORTA_UI_DIR", &dir)]).await?;
    let mut bridge = Bridge::enroll(&backend, &[]).await?;
    bridge.run(&[])?;
    let browser = Browser::start(1280, 800).await?;
    let c = &browser.client;
    let result = with_screenshot_on_failure(&browser, "lazy", || async {
        sign_in(c, &backend.url).await?;
        wait_for(c, "li.server[data-status=online]").await?;
        let first = fetched(c).await?;
        assert!(first.iter().any(|n| n == "porta_frontend_bg.wasm"), "{first:?}");
        // Nor their style sheet, nor what the editor, the palette, the search bar, a phone's key
        // row and a terminal's links need.
        let later = ["split_tokens", "split_audit", "split_team", "split_alerts", "split_account", "split_assistant"];
        let later = later.iter().chain(&["panels.css", "editor-impl.js", "split_palette", "split_search_bar"]);
        for page in later.chain(&["split_key_row", "addon-web-links", "split_project_form"]) {
            assert!(!first.iter().any(|n| n.starts_with(page)), "{page} came with the first visit: {first:?}");
        }
        assert!(first.iter().any(|n| n == "style.css"), "{first:?}");

        // Opening the tokens page fetches its chunk and the parts' style sheet, and the page
        // works, styled.
        click(c, "a.tokens-link").await?;
        wait_for(c, "main.tokens").await?;
        let now = fetched(c).await?;
        assert!(now.iter().any(|n| n == "split_tokens.wasm"), "{now:?}");
        assert_eq!(now.iter().filter(|n| *n == "panels.css").count(), 1, "{now:?}");
        let form = c.execute("return getComputedStyle(document.querySelector('.token-form')).display", vec![]).await?;
        assert_eq!(form, "flex", "the tokens page is shown with its style");

        // The audit page's chunk is gone: the page says what happened and how to recover…
        c.back().await?;
        wait_for(c, "li.server[data-status=online]").await?;
        click(c, "a.audit-link").await?;
        let failed = wait_for(c, ".load-failed:not([hidden])").await?;
        let text = failed.text().await?;
        assert!(text.contains("could not be downloaded") && text.contains("Reload"), "{text}");
        // It was tried three times before the page gave up (a moment's trouble goes unseen).
        let tries = fetched(c).await?.iter().filter(|n| n.starts_with("split_audit")).count();
        assert_eq!(tries, 3, "{:?}", fetched(c).await?);
        // The loader reports the failed fetch on the console, and tests hear of a chunk that
        // never came; nothing else went wrong.
        let errors = browser.page_errors().await?;
        let never = |e: &String| e.contains("could not be fetched even when tried again");
        assert!(errors.iter().any(never), "{errors:?}");
        assert!(
            errors.iter().all(|e| e.contains("__wasm_split.js") || e.contains("split_audit") || never(e)),
            "{errors:?}"
        );
        // …and the app was not brought down with it: back on the dashboard, all works.
        c.back().await?;
        wait_for(c, "li.server[data-status=online]").await?;
        click(c, "a.tokens-link").await?;
        wait_for(c, "main.tokens").await?;
        Ok(())
    })
    .await;
    browser.close().await;
    result
}

/// The budget is kept: a fresh browser signs in, sees the dashboard and opens a terminal, and
/// what it downloaded of the page and the app's files (as the browser counts them, compressed)
/// stays within it. A feature on the first page that does not fit goes into a chunk.
#[tokio::test]
async fn a_first_visit_stays_within_its_download_budget() -> anyhow::Result<()> {
    let backend = Backend::start(&[]).await?;
    let mut bridge = Bridge::enroll(&backend, &[]).await?;
    bridge.run(&[])?;
    let browser = Browser::start(1280, 800).await?;
    let c = &browser.client;
    let result = with_screenshot_on_failure(&browser, "first-visit", || async {
        sign_in(c, &backend.url).await?;
        follow_by_keyboard(c, "li.server[data-status=online] a").await?;
        wait_for(c, ".tab.active[data-state=live]").await?;
        let kib = downloaded_kib(c).await?;
        let files = fetched(c).await?;
        assert!(files.iter().any(|n| n == "porta_frontend_bg.wasm"), "{files:?}");
        assert!(
            kib <= FIRST_VISIT_BUDGET_KIB,
            "a first visit downloads {kib:.0} KiB (budget {FIRST_VISIT_BUDGET_KIB}): {files:?}"
        );
        eprintln!("first visit: {kib:.1} KiB");
        Ok(())
    })
    .await;
    browser.close().await;
    result
}
