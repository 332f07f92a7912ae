//! The command palette in headless Chromium: Ctrl+Shift+P from inside a terminal lists the
//! page's commands with their shortcuts, typing narrows them, Enter runs one; the app's own
//! commands go to other pages; on a phone the top bar's button opens it; what is typed before
//! its code has arrived lands in its box.

use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use porta_e2e::browser::{UiStack, chord_of, click, terminal_text, type_keys, wait_for, wait_js, wait_text};

/// The commands listed now, in order.
async fn listed(c: &Client) -> anyhow::Result<Vec<String>> {
    let v =
        c.execute("return [...document.querySelectorAll('.palette-item')].map(i => i.dataset.command)", vec![]).await?;
    Ok(serde_json::from_value(v)?)
}

#[tokio::test]
async fn the_palette_finds_and_runs_every_action_of_the_page() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1280, 800).await?;
    let UiStack { browser, .. } = &ui;
    let c = &browser.client;
    ui.on_server_page("palette", || async {
        // From inside the terminal, whose keys are the shell's otherwise.
        c.find(Locator::Css(".pane.active .xterm-helper-textarea")).await?.click().await?;
        chord_of(c, &[Key::Control, Key::Shift], 'p').await?;
        wait_for(c, ".palette:not([hidden]) .palette-input").await?;
        let all = listed(c).await?;
        for id in ["new-terminal", "go-to-file", "files", "assistant", "monitor", "theme", "go-audit", "sign-out"] {
            assert!(all.iter().any(|c| c == id), "{id} is not offered: {all:?}");
        }
        // Shortcuts are shown beside their commands.
        wait_text(c, ".palette-item[data-command=go-to-file] kbd", "Ctrl+P").await?;
        browser.screenshot("palette").await?;

        // Typing narrows; Enter runs the first.
        type_keys(c, "new term").await?;
        let deadline = tokio::time::Instant::now() + porta_e2e::browser::WAIT;
        while listed(c).await?.first().map(String::as_str) != Some("new-terminal") {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "narrowed to {:?}", listed(c).await?);
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        wait_for(c, ".palette-item.chosen[data-command=new-terminal]").await?;
        type_keys(c, &char::from(Key::Enter).to_string()).await?;
        let deadline = tokio::time::Instant::now() + porta_e2e::browser::WAIT;
        while c.find_all(Locator::Css(".tabs .tab:not(.editor-tab)")).await?.len() < 2 {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "no second terminal");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(!c.find(Locator::Css(".palette")).await?.is_displayed().await?, "running a command closes it");

        // Nothing matches: it says so. Escape closes.
        chord_of(c, &[Key::Control, Key::Shift], 'p').await?;
        wait_for(c, ".palette:not([hidden]) .palette-input").await?;
        type_keys(c, "zzzz nothing").await?;
        wait_for(c, ".palette-empty:not([hidden])").await?;
        type_keys(c, &char::from(Key::Escape).to_string()).await?;
        let deadline = tokio::time::Instant::now() + porta_e2e::browser::WAIT;
        while c.find(Locator::Css(".palette")).await?.is_displayed().await? {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "Escape left the palette open");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }

        // The app's commands: to another page, whose own commands replace the server's.
        chord_of(c, &[Key::Control, Key::Shift], 'p').await?;
        wait_for(c, ".palette:not([hidden]) .palette-input").await?;
        type_keys(c, "audit").await?;
        click(c, ".palette-item[data-command=go-audit]").await?;
        wait_for(c, ".audit-badge").await?;
        chord_of(c, &[Key::Control, Key::Shift], 'p').await?;
        wait_for(c, ".palette:not([hidden]) .palette-input").await?;
        let all = listed(c).await?;
        assert!(!all.iter().any(|c| c == "new-terminal"), "the server's commands left with it: {all:?}");
        assert!(all.iter().any(|c| c == "go-dashboard"), "{all:?}");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn on_a_phone_the_top_bar_opens_the_palette() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 390, 844).await?;
    let UiStack { browser, .. } = &ui;
    let c = &browser.client;
    ui.on_server_page("palette_phone", || async {
        click(c, ".topbar button.palette-open").await?;
        wait_for(c, ".palette:not([hidden]) .palette-input").await?;
        click(c, ".palette-item[data-command=files]").await?;
        wait_for(c, ".files-pane:not([hidden]) .files-path-input").await?;
        Ok(())
    })
    .await
}

/// The palette's code comes when it first opens: the keys typed right after the shortcut,
/// before it has arrived, are kept for its box (not lost, and not typed into the terminal that
/// had the focus). Escape before a box has arrived (the search bar's) leaves it closed.
#[tokio::test]
async fn what_is_typed_before_the_palette_has_arrived_lands_in_its_box() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1280, 800).await?;
    let UiStack { browser, .. } = &ui;
    let c = &browser.client;
    ui.on_server_page("palette_typeahead", || async {
        c.find(Locator::Css(".pane.active .xterm-helper-textarea")).await?.click().await?;
        // Every request from now on takes two and a half seconds: the palette's code is still on
        // its way while the keys are typed.
        browser.cdp("Network.enable", serde_json::json!({})).await?;
        let slow =
            serde_json::json!({ "offline": false, "latency": 2500, "downloadThroughput": -1, "uploadThroughput": -1 });
        browser.cdp("Network.emulateNetworkConditions", slow).await?;
        chord_of(c, &[Key::Control, Key::Shift], 'p').await?;
        type_keys(c, "new term").await?;
        let early = c.execute("return document.querySelector('.palette-input') === null", vec![]).await?;
        assert_eq!(early, true, "the palette came before the keys were typed: the test shows nothing");

        wait_for(c, ".palette:not([hidden]) .palette-input").await?;
        wait_js(c, "document.querySelector('.palette-input').value === 'new term'", "the keys in the box").await?;
        wait_js(c, "document.activeElement === document.querySelector('.palette-input')", "the box focused").await?;
        wait_for(c, ".palette-item.chosen[data-command=new-terminal]").await?;
        assert!(!terminal_text(c).await?.contains("new term"), "the keys went into the terminal");

        // Escape while a box is on its way (the search bar's, still slow): it is not opened,
        // and the terminal has the keys again.
        type_keys(c, &char::from(Key::Escape).to_string()).await?;
        c.find(Locator::Css(".pane.active .xterm-helper-textarea")).await?.click().await?;
        chord_of(c, &[Key::Control, Key::Shift], 'f').await?;
        type_keys(c, &char::from(Key::Escape).to_string()).await?;
        let in_terminal =
            "document.activeElement && document.activeElement.classList.contains('xterm-helper-textarea')";
        wait_js(c, in_terminal, "the focus back in the terminal").await?;
        wait_js(c, "document.querySelector('.searchbar') !== null", "the search bar's code").await?;
        assert!(!c.find(Locator::Css(".searchbar")).await?.is_displayed().await?, "Escape left it to open");
        let in_terminal = c.execute(&format!("return !!({in_terminal})"), vec![]).await?;
        assert_eq!(in_terminal, true, "the search bar took the focus");
        let fast =
            serde_json::json!({ "offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1 });
        browser.cdp("Network.emulateNetworkConditions", fast).await?;
        Ok(())
    })
    .await
}
