//! Terminals in the browser, in headless Chromium: tabs, reloads, floods, the phone key row
//! and resizing, each against a real backend and bridge with real shells.

use std::time::Duration;

use fantoccini::actions::{InputSource as _, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use porta_e2e::browser::{
    Browser, UiStack, ctrl_c, open_server, rendered_bytes, run_command, sign_in, terminal_text, type_in_terminal,
    ui_stack, wait_for, wait_for_text, with_screenshot_on_failure,
};
use porta_e2e::proxy::Proxy;
use porta_e2e::{Backend, Bridge, ui_dir};

const SHORT: Duration = Duration::from_secs(30);

async fn tab_count(c: &Client) -> anyhow::Result<usize> {
    Ok(c.find_all(Locator::Css(".tabs .tab")).await?.len())
}

async fn select_tab(c: &Client, index: usize) -> anyhow::Result<()> {
    let tabs = c.find_all(Locator::Css(".tabs .tab")).await?;
    tabs.get(index).ok_or_else(|| anyhow::anyhow!("no tab {index}"))?.click().await?;
    Ok(())
}

#[tokio::test]
async fn terminals_in_tabs_survive_a_reload_with_their_output() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1280, 800).await?;
    let UiStack { browser, .. } = &ui;
    let c = &browser.client;
    ui.on_server_page("terminal_tabs", || async {
        assert!(c.current_url().await?.path().starts_with("/servers/"), "the server page has its own address");
        let one = format!("porta-{}", rand_suffix());
        run_command(c, &format!("echo {one}")).await?;
        // The echoed line, not the typed command: the command line shows `echo porta-…`.
        wait_for_text(c, &format!("\n{one}"), SHORT).await?;

        c.find(Locator::Css("button.new-tab")).await?.click().await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".tabs .tab:nth-child(2).active[data-state=live]")).await?;
        let two = format!("porta-{}", rand_suffix());
        run_command(c, &format!("echo {two}")).await?;
        let text = wait_for_text(c, &format!("\n{two}"), SHORT).await?;
        assert!(!text.contains(&one), "each tab is its own terminal");
        // The README's screenshot, in the dark theme.
        if c.execute("return document.documentElement.dataset.theme", vec![]).await? == "light" {
            c.find(Locator::Css("button.theme")).await?.click().await?;
        }
        run_command(c, "ls -la --color=always /etc | head -20").await?;
        wait_for_text(c, "total ", SHORT).await?;
        browser.screenshot("terminal").await?;

        c.refresh().await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".tabs .tab:nth-child(1).active[data-state=live]")).await?;
        assert_eq!(tab_count(c).await?, 2, "both terminals come back");
        // A tab attaches when first shown.
        assert!(c.find(Locator::Css(".tabs .tab:nth-child(2)[data-state=starting]")).await.is_ok());
        wait_for_text(c, &format!("\n{one}"), SHORT).await?;
        run_command(c, "echo again-$((40+2))").await?;
        wait_for_text(c, "\nagain-42", SHORT).await?;
        select_tab(c, 1).await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".tabs .tab:nth-child(2).active[data-state=live]")).await?;
        wait_for_text(c, &format!("\n{two}"), SHORT).await?;
        run_command(c, "echo still-$((40+3))").await?;
        wait_for_text(c, "\nstill-43", SHORT).await?;

        // Drag the second tab before the first; the order is kept across a reload. (WebDriver
        // cannot drive Chromium's native drag and drop, so the page gets the drag events.)
        c.execute(
            "const [a, b] = document.querySelectorAll('.tabs .tab');\
             const ev = (el, type) => el.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true }));\
             ev(b, 'dragstart'); ev(a, 'dragover'); ev(a, 'drop'); ev(b, 'dragend');",
            vec![],
        )
        .await?;
        select_tab(c, 0).await?;
        wait_for_text(c, &format!("\n{two}"), SHORT).await?;
        c.refresh().await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".tabs .tab:nth-child(1).active[data-state=live]")).await?;
        wait_for_text(c, &format!("\n{two}"), SHORT).await?;

        // Closing a tab ends its terminal; after a reload only the other one is there.
        c.find(Locator::Css(".tab.active .close")).await?.click().await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".tabs .tab:only-of-type")).await?;
        c.refresh().await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".tab.active[data-state=live]")).await?;
        assert_eq!(tab_count(c).await?, 1);
        wait_for_text(c, "\nagain-42", SHORT).await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn rename_search_theme_and_restart_after_the_shell_exits() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1280, 800).await?;
    let UiStack { browser, .. } = &ui;
    let c = &browser.client;
    ui.on_server_page("tab_life", || async {
        // Rename: double-click the tab, type, Enter; the name is the terminal's, so it
        // survives a reload.
        let tab = c.find(Locator::Css(".tab.active")).await?;
        let (down, up) =
            (PointerAction::Down { button: MOUSE_BUTTON_LEFT }, PointerAction::Up { button: MOUSE_BUTTON_LEFT });
        let double_click = MouseActions::new("mouse".into())
            .then(PointerAction::MoveToElement { element: tab, duration: None, x: 0.0, y: 0.0 })
            .then(down.clone())
            .then(up.clone())
            .then(down)
            .then(up);
        c.perform_actions(double_click).await?;
        let input = c.wait().at_most(SHORT).for_element(Locator::Css(".tab input.rename")).await?;
        // Select all and type over it (WebDriver's clear would blur the field, which commits).
        let (ctrl, release, enter) = (Key::Control, Key::Null, Key::Enter);
        input.send_keys(&format!("{}a{}logs{}", char::from(ctrl), char::from(release), char::from(enter))).await?;
        c.wait()
            .at_most(SHORT)
            .for_element(Locator::XPath("//div[contains(@class,'tab')]//span[text()='logs']"))
            .await?;
        c.refresh().await?;
        c.wait()
            .at_most(SHORT)
            .for_element(Locator::XPath("//div[contains(@class,'tab')]//span[text()='logs']"))
            .await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".tab.active[data-state=live]")).await?;

        // Search the scrollback: a match is found, a missing word is marked as such.
        run_command(c, "echo needle-$((3*3))").await?;
        wait_for_text(c, "\nneedle-9", SHORT).await?;
        porta_e2e::browser::tool(c, "button.tool.find").await?;
        let search = c.wait().at_most(SHORT).for_element(Locator::Css(".searchbar:not([hidden]) input")).await?;
        search.send_keys(&format!("needle-9{}", char::from(Key::Enter))).await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".searchbar input:not(.missing)")).await?;
        search.clear().await?;
        search.send_keys(&format!("haystack-{}", char::from(Key::Enter))).await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".searchbar input.missing")).await?;
        search.send_keys(&char::from(Key::Escape).to_string()).await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".searchbar[hidden]")).await?;

        // The theme switch flips the page and the terminal together.
        let theme = || async { c.execute("return document.documentElement.dataset.theme", vec![]).await };
        let before = theme().await?;
        c.find(Locator::Css("button.theme")).await?.click().await?;
        assert_ne!(theme().await?, before, "the theme changed");

        // The shell exits: the tab says so and offers a restart, which brings a new shell.
        run_command(c, "exit 7").await?;
        let notice =
            c.wait().at_most(SHORT).for_element(Locator::Css(".pane.active .pane-notice:not([hidden])")).await?;
        assert!(notice.text().await?.contains("exited with code 7"), "{}", notice.text().await?);
        assert!(terminal_text(c).await?.contains("needle-9"), "the output stays readable");
        c.find(Locator::Css(".pane.active button.restart")).await?.click().await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".tab.active[data-state=live]")).await?;
        run_command(c, "echo reborn-$((2*4))").await?;
        wait_for_text(c, "\nreborn-8", SHORT).await?;
        assert!(!terminal_text(c).await?.contains("needle-9"), "a new shell on a clean screen");
        c.find(Locator::XPath("//div[contains(@class,'tab')]//span[text()='logs']")).await?;
        // The new shell carries the name on the server too: a reload still shows it.
        c.refresh().await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".tab.active[data-state=live]")).await?;
        c.wait()
            .at_most(SHORT)
            .for_element(Locator::XPath("//div[contains(@class,'tab')]//span[text()='logs']"))
            .await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_flood_never_freezes_the_page_and_ctrl_c_stops_it() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1280, 800).await?;
    let UiStack { browser, .. } = &ui;
    let c = &browser.client;
    ui.on_server_page("flood", || async {
        run_command(c, "yes | head -c 50000000; echo flood-$((6*7))").await?;
        // While it runs, the page still answers: the font gets larger on a click.
        let before = c.execute("return document.querySelector('.pane.active .xterm-rows').style.fontSize || getComputedStyle(document.querySelector('.pane.active .xterm-rows')).fontSize;", vec![]).await?;
        porta_e2e::browser::tool(c, "button.tool.text-larger").await?;
        let after = c.execute("return getComputedStyle(document.querySelector('.pane.active .xterm-rows')).fontSize;", vec![]).await?;
        assert_ne!(before, after, "the page reacts during the flood");
        wait_for_text(c, "\nflood-42", Duration::from_secs(240)).await?;
        let rendered = rendered_bytes(c).await?;
        assert!(rendered >= 50_000_000.0, "every byte was rendered, none dropped: {rendered}");

        // An endless flood: Ctrl+C stops it and the shell answers again.
        run_command(c, "yes porta-flood").await?;
        let start = rendered_bytes(c).await?;
        let deadline = tokio::time::Instant::now() + SHORT;
        while rendered_bytes(c).await? < start + 1_000_000.0 {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the flood never reached the page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ctrl_c(c).await?;
        run_command(c, "echo stopped-$((1+1))").await?;
        wait_for_text(c, "\nstopped-2", SHORT).await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn on_a_phone_the_key_row_sends_ctrl_c_and_arrows() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 390, 844).await?;
    let UiStack { bridge, browser, .. } = &ui;
    let c = &browser.client;
    ui.on_server_page("phone_keys", || async {
        let row = wait_for(c, ".keyrow").await?;
        assert!(row.is_displayed().await?, "the key row shows on a phone");
        run_command(c, "sleep 600").await?;
        // Ctrl+C is for `sleep`: typed while the shell still reads the line, it would not be.
        bridge.wait_foreground("sleep", SHORT).await?;
        c.find(Locator::Css(".key[data-key=Ctrl]")).await?.click().await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".key[data-key=Ctrl].armed")).await?;
        type_in_terminal(c, "c").await?;
        run_command(c, "echo phone-$((2+3))").await?;
        wait_for_text(c, "\nphone-5", SHORT).await?;
        assert!(c.find(Locator::Css(".key[data-key=Ctrl].armed")).await.is_err(), "Ctrl applies to one key");

        // ↑ recalls the last command from the shell's history.
        c.find(Locator::Css(".key[data-key=Up]")).await?.click().await?;
        type_in_terminal(c, &char::from(Key::Enter).to_string()).await?;
        let deadline = tokio::time::Instant::now() + SHORT;
        loop {
            let text = terminal_text(c).await?;
            if text.matches("\nphone-5").count() >= 2 {
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "↑ did not recall the command:\n{text}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        browser.screenshot("phone-terminal").await?;

        // Every key is at least 44 px high, on every page.
        let short = c
            .execute(
                "return [...document.querySelectorAll('.keyrow .key')]\
                 .filter(k => k.getBoundingClientRect().height < 44).map(k => k.dataset.key)",
                vec![],
            )
            .await?;
        assert_eq!(short, serde_json::json!([]), "keys under 44 px high");
        // The other pages: Shift+Tab, Home, PgUp, F5, and a sticky Shift for Tab.
        // `cat` is reading before the keys come (else the shell would take them).
        run_command(c, "echo cat-$((40+2)); cat -v").await?;
        wait_for_text(c, "\ncat-42", SHORT).await?;
        for key in ["Shift+Tab", "Home", "Page up", "F5", "Shift", "Tab"] {
            // Swiped to the key's page, as a thumb would.
            let key_css = format!(".keyrow .key[data-key='{key}']");
            c.execute(
                "document.querySelector(arguments[0]).closest('.keypage').scrollIntoView({ inline: 'start' })",
                vec![serde_json::json!(key_css)],
            )
            .await?;
            porta_e2e::browser::click(c, &key_css).await?;
        }
        // The row is at the bottom of the page, below the terminal and its tabs: in thumb's
        // reach, just above the on-screen keyboard.
        let (row_top, panes_bottom) = (
            c.execute("return document.querySelector('.keyrow').getBoundingClientRect().top", vec![]).await?,
            c.execute("return document.querySelector('.panes').getBoundingClientRect().bottom", vec![]).await?,
        );
        assert!(row_top.as_f64() >= panes_bottom.as_f64(), "the key row is above the terminal");
        type_in_terminal(c, "\r").await?;
        wait_for_text(c, "^[[Z^[[H^[[5~^[[15~^[[Z", SHORT).await?;
        assert!(c.find(Locator::Css(".key[data-key=Shift].armed")).await.is_err(), "Shift applies to one key");
        ctrl_c(c).await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn resizing_the_window_resizes_the_terminal() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1000, 700).await?;
    let UiStack { browser, .. } = &ui;
    let c = &browser.client;
    ui.on_server_page("resize", || async {
        let size = |c: &'_ Client| {
            let c = c.clone();
            async move {
                let marker = rand_suffix();
                run_command(&c, &format!("echo size-{marker} $(stty size)")).await?;
                let text = wait_for_text(&c, &format!("\nsize-{marker} "), SHORT).await?;
                let line = text.lines().find(|l| l.starts_with(&format!("size-{marker} "))).unwrap_or_default();
                let nums: Vec<u32> = line.split_whitespace().skip(1).filter_map(|n| n.parse().ok()).collect();
                anyhow::ensure!(nums.len() == 2, "unexpected stty output: {line:?}");
                anyhow::Ok((nums[0], nums[1]))
            }
        };
        let (rows, cols) = size(c).await?;
        assert!(rows > 10 && cols > 40, "the terminal fills its pane: {rows}x{cols}");
        c.set_window_size(1400, 950).await?;
        let deadline = tokio::time::Instant::now() + SHORT;
        loop {
            let (r, k) = size(c).await?;
            if r > rows && k > cols {
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "stty size stayed {r}x{k} (was {rows}x{cols})");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_reload_never_types_what_the_user_did_not() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1280, 800).await?;
    let UiStack { browser, .. } = &ui;
    let c = &browser.client;
    ui.on_server_page("replay_quiet", || async {
        // A device-attributes query: xterm.js answers it, and `cat -v` shows the answer (the
        // terminal's echo of it, then cat's copy).
        run_command(c, "printf '\\033[c'; cat -v").await?;
        // The answer waits in cat's line: Enter sends it, and cat prints it after the echo.
        wait_for_text(c, "?1;2c", SHORT).await?;
        run_command(c, "").await?;
        let text = wait_for_text(c, "?1;2c\n^[[?1;2c", SHORT).await?;
        let answered = text.matches("?1;2c").count();
        for round in 1..=2 {
            c.refresh().await?;
            c.wait().at_most(SHORT).for_element(Locator::Css(".tabs .tab.active[data-state=live]")).await?;
            // A line typed now arrives after anything the replay could have sent.
            let mark = format!("mark{round}");
            run_command(c, &mark).await?;
            // Shown twice (the echo, then cat's copy). An answer the replay sent would be on
            // the same line, before the mark.
            let deadline = tokio::time::Instant::now() + SHORT;
            let text = loop {
                let text = terminal_text(c).await?;
                if text.matches(&mark).count() >= 2 {
                    break text;
                }
                anyhow::ensure!(tokio::time::Instant::now() < deadline, "{mark} never came back:\n{text}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            assert_eq!(text.matches("?1;2c").count(), answered, "the replayed query was answered again:\n{text}");
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_lost_connection_shows_reconnecting_and_recovers_with_the_output() -> anyhow::Result<()> {
    // The browser reaches the backend through a proxy the test can cut; the proxy's address
    // must be an allowed origin, so it is bound before the backend starts.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let front = format!("http://{}", listener.local_addr()?);
    let ui = ui_dir()?.to_string_lossy().into_owned();
    let backend = Backend::start(&[("PORTA_UI_DIR", &ui), ("PORTA_ALLOWED_ORIGINS", &front)]).await?;
    let mut bridge = Bridge::enroll(&backend, &[]).await?;
    bridge.run(&[])?;
    let proxy = Proxy::serve(listener, backend.url.trim_start_matches("http://").parse()?)?;
    let browser = Browser::start(1280, 800).await?;
    let c = &browser.client;
    let result = with_screenshot_on_failure(&browser, "reconnect", || async {
        open_server(c, &front).await?;
        run_command(c, "sleep 3; echo during-$((6*7))").await?;
        proxy.set_accepting(false);
        proxy.cut();
        let state = c.wait().at_most(SHORT).for_element(Locator::Css(".link-state:not([hidden])")).await?;
        assert!(state.text().await?.contains("Reconnecting"), "{}", state.text().await?);
        // The output comes while the page is cut off...
        tokio::time::sleep(Duration::from_secs(4)).await;
        // ...and the banner speaks plainly meanwhile, not in the browser's internals.
        let said = c.find(Locator::Css(".link-state")).await?.text().await?;
        assert!(said.starts_with("Reconnecting") && !said.contains("Error"), "{said}");
        // What is typed meanwhile is kept and sent once the terminal is back.
        run_command(c, "echo typed-offline-$((5*5))").await?;
        proxy.set_accepting(true);
        // ...and is there, once, when the page is back by itself.
        let text = wait_for_text(c, "\nduring-42", Duration::from_secs(60)).await?;
        assert_eq!(text.matches("\nduring-42").count(), 1, "nothing lost or repeated:\n{text}");
        c.wait().at_most(SHORT).for_element(Locator::Css(".link-state[hidden]")).await?;
        wait_for_text(c, "\ntyped-offline-25", SHORT).await?;
        run_command(c, "echo back-$((1+2))").await?;
        wait_for_text(c, "\nback-3", SHORT).await?;
        Ok(())
    })
    .await;
    browser.close().await;
    result
}

#[tokio::test]
async fn an_offline_server_says_so_and_opens_once_it_is_back() -> anyhow::Result<()> {
    let (backend, mut bridge) = ui_stack(&[]).await?;
    let browser = Browser::start(1280, 800).await?;
    let c = &browser.client;
    let result = with_screenshot_on_failure(&browser, "offline_server", || async {
        sign_in(c, &backend.url).await?;
        c.wait().at_most(SHORT).for_element(Locator::Css("li.server[data-status=online]")).await?;
        bridge.kill().await;
        c.find(Locator::Css("button.refresh")).await?.click().await?;
        let link = c.wait().at_most(SHORT).for_element(Locator::Css("li.server[data-status=offline] a")).await?;
        link.click().await?;
        let error = c.wait().at_most(SHORT).for_element(Locator::Css(".server-page .error:not([hidden])")).await?;
        assert!(error.text().await?.contains("offline"), "a clear reason: {}", error.text().await?);
        assert_eq!(tab_count(c).await?, 0, "no terminal on a server that is not there");

        bridge.run(&[])?;
        let retry = c.find(Locator::Css(".server-page .retry")).await?;
        let deadline = tokio::time::Instant::now() + SHORT;
        while c.find(Locator::Css(".tab.active[data-state=live]")).await.is_err() {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the terminal never opened");
            if retry.is_displayed().await.unwrap_or(false) {
                retry.click().await?;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        run_command(c, "echo back-online-$((5*5))").await?;
        wait_for_text(c, "\nback-online-25", SHORT).await?;
        Ok(())
    })
    .await;
    browser.close().await;
    result
}

#[tokio::test]
async fn the_file_tree_shows_a_file_made_in_a_terminal_by_itself() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1280, 800).await?;
    let UiStack { browser, .. } = &ui;
    let c = &browser.client;
    ui.on_server_page("file_tree", || async {
        // The tree starts at the home folder, where the terminal's shell starts too.
        let tree = c.wait().at_most(SHORT).for_element(Locator::Css(".files-pane:not([hidden]) .files-tree")).await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".files-rows .files-entry[data-name]")).await?;
        run_command(c, "mkdir -p tree-dir && touch tree-dir/inner.txt porta-tree-$((6*7)).txt").await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".files-entry[data-name='porta-tree-42.txt']")).await?;
        let dir = c
            .wait()
            .at_most(SHORT)
            .for_element(Locator::Css(".files-entry[data-name='tree-dir'] > button.files-name"))
            .await?;
        dir.click().await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".files-entry[data-name='inner.txt']")).await?;
        // A change beside an open folder leaves it open.
        run_command(c, "touch beside.txt").await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".files-entry[data-name='beside.txt']")).await?;
        c.find(Locator::Css(".files-entry[data-name='tree-dir'][aria-expanded='true']")).await?;
        c.find(Locator::Css(".files-entry[data-path$='/tree-dir/inner.txt'][aria-level='2']")).await?;
        // Removed on the server: gone from the tree, and from an open subfolder too.
        run_command(c, "rm porta-tree-42.txt tree-dir/inner.txt").await?;
        let deadline = tokio::time::Instant::now() + SHORT;
        while c
            .find(Locator::Css(".files-entry[data-name='porta-tree-42.txt'], .files-entry[data-name='inner.txt']"))
            .await
            .is_ok()
        {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "removed files stayed in the tree");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The pane folds away and comes back.
        c.find(Locator::Css("button.files-toggle")).await?.click().await?;
        assert!(!tree.is_displayed().await?, "the Files button hides the tree");
        c.find(Locator::Css("button.files-toggle")).await?.click().await?;
        assert!(tree.is_displayed().await?);
        Ok(())
    })
    .await
}

/// Double-clicks (or clicks) the start of the terminal row that begins with `text`.
async fn click_row(c: &Client, text: &str, clicks: usize) -> anyhow::Result<()> {
    let xpath = format!(
        "//div[contains(@class,'pane') and contains(@class,'active')]//div[contains(@class,'xterm-rows')]/div[starts-with(normalize-space(.), '{text}')]"
    );
    let row = c.wait().at_most(SHORT).for_element(Locator::XPath(&xpath)).await?;
    let (_, _, width, _) = row.rectangle().await?;
    // Offsets are from the element's centre: aim at the second character of the row.
    let mut actions = MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
        element: row,
        duration: None,
        x: -(width / 2.0) + 12.0,
        y: 0.0,
    });
    for _ in 0..clicks {
        actions = actions
            .then(PointerAction::Down { button: MOUSE_BUTTON_LEFT })
            .then(PointerAction::Up { button: MOUSE_BUTTON_LEFT });
    }
    c.perform_actions(actions).await?;
    Ok(())
}

#[tokio::test]
async fn copy_paste_and_links_work_in_the_terminal() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1280, 800).await?;
    let UiStack { browser, .. } = &ui;
    let c = &browser.client;
    ui.on_server_page("copy_paste_links", || async {
        browser.grant_clipboard().await?;
        run_command(c, "echo copy-me-$((2*21))").await?;
        wait_for_text(c, "\ncopy-me-42", SHORT).await?;
        // A double-click selects the word; Copy puts it on the clipboard, Paste types it.
        click_row(c, "copy-me-42", 2).await?;
        porta_e2e::browser::tool(c, "button.tool[aria-label=Copy]").await?;
        type_in_terminal(c, "echo pasted-").await?;
        porta_e2e::browser::tool(c, "button.tool[aria-label=Paste]").await?;
        wait_for_text(c, "echo pasted-copy-me-42", SHORT).await?;
        type_in_terminal(c, &char::from(Key::Enter).to_string()).await?;
        wait_for_text(c, "\npasted-copy-me-42", SHORT).await?;

        // A URL in the output is a link that opens in a new window.
        run_command(c, "echo https://example.invalid/porta-link").await?;
        wait_for_text(c, "\nhttps://example.invalid/porta-link", SHORT).await?;
        let before = c.windows().await?.len();
        click_row(c, "https://example.invalid/porta-link", 1).await?;
        let deadline = tokio::time::Instant::now() + SHORT;
        while c.windows().await?.len() == before {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the link opened no window");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    })
    .await
}

fn rand_suffix() -> u32 {
    (uuid::Uuid::new_v4().as_u128() % 1_000_000) as u32
}

/// Whether a person can reach the element `css`: it has a size, its middle is on screen and
/// nothing covers it there. "ok", or what is wrong.
async fn reachable(c: &Client, css: &str) -> anyhow::Result<String> {
    let v = c
        .execute(
            "const el = document.querySelector(arguments[0]);
             if (!el) return 'missing';
             const r = el.getBoundingClientRect();
             if (r.width < 1 || r.height < 1) return 'no size';
             const x = r.left + r.width / 2, y = r.top + r.height / 2;
             if (x < 0 || y < 0 || x > innerWidth || y > innerHeight) return 'off screen';
             const top = document.elementFromPoint(x, y);
             return top === el || el.contains(top) ? 'ok' : 'covered by ' + (top ? top.className : 'nothing');",
            vec![serde_json::json!(css)],
        )
        .await?;
    Ok(v.as_str().unwrap_or("?").to_owned())
}

/// Every control of the server page's bar can be reached: the tabs, "+", the panels' toggles,
/// and each tool, on the bar or behind "⋯".
async fn bar_is_reachable(c: &Client, width: u32) -> anyhow::Result<()> {
    for css in
        [".tabs .tab.active", "button.new-tab", "button.files-toggle", "button.chat-toggle", "button.monitor-toggle"]
    {
        // The page settles after a resize (a frame to lay out, another to bring the active
        // tab into view): wait for each, within reason.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let r = reachable(c, css).await?;
            if r == "ok" {
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "at {width} px, {css}: {r}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let strip = c.execute("return document.querySelector('.tabs').clientWidth", vec![]).await?;
    anyhow::ensure!(strip.as_f64().unwrap_or(0.0) >= 100.0, "at {width} px the tab strip is {strip} px wide");
    let folded = reachable(c, ".toolbar .quick-open").await? != "ok";
    if folded {
        c.find(Locator::Css("button.more-tools")).await?.click().await?;
    }
    for css in [".toolbar .quick-open", ".toolbar .search-files", ".toolbar .text-larger"] {
        let r = reachable(c, css).await?;
        anyhow::ensure!(r == "ok", "at {width} px (tools folded: {folded}), {css}: {r}");
    }
    if folded {
        // A choice closes the menu.
        c.find(Locator::Css(".toolbar .text-larger")).await?.click().await?;
        anyhow::ensure!(reachable(c, ".toolbar .quick-open").await? != "ok", "the menu closed after a choice");
    }
    Ok(())
}

#[tokio::test]
async fn the_tab_strip_and_every_tool_stay_reachable_at_any_width() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1440, 900).await?;
    let UiStack { backend, browser, .. } = &ui;
    let c = &browser.client;
    ui.on_server_page("narrow_bar", || async {
        // The panel buttons beside the tabs are one size.
        let heights = c
            .execute(
                "return [...document.querySelectorAll('.tabbar > .files-toggle, .tabbar > .chat-toggle, .tabbar > .monitor-toggle')]\
                 .map(b => Math.round(b.getBoundingClientRect().height))",
                vec![],
            )
            .await?;
        let heights: Vec<i64> = serde_json::from_value(heights)?;
        assert!(heights.len() == 3 && heights.iter().all(|h| *h == heights[0]), "button heights {heights:?}");
        for n in 2..=6 {
            c.find(Locator::Css("button.new-tab")).await?.click().await?;
            let css = format!(".tabs .tab:nth-child({n}).active[data-state=live]");
            c.wait().at_most(SHORT).for_element(Locator::Css(&css)).await?;
        }
        c.find(Locator::Css("button.chat-toggle")).await?.click().await?;
        for width in [1440, 1280, 1024, 900, 760] {
            c.set_window_size(width, 900).await?;
            bar_is_reachable(c, width).await?;
        }
        browser.screenshot("narrow-bar-900").await?;
        Ok(())
    })
    .await?;

    // A phone: the narrowest screen in use.
    let phone = Browser::start(360, 740).await?;
    let c = &phone.client;
    let result = with_screenshot_on_failure(&phone, "narrow_bar_phone", || async {
        open_server(c, &backend.url).await?;
        bar_is_reachable(c, 360).await
    })
    .await;
    phone.close().await;
    result
}

#[tokio::test]
async fn on_a_phone_every_panel_closes_by_its_button_or_escape() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 390, 844).await?;
    let UiStack { browser, .. } = &ui;
    let c = &browser.client;
    ui.on_server_page("panels_close", || async {
        // One compact bar: the tabs, "+", the panels' toggles and "⋯" share one row, each a
        // thumb's size, and the bar is no taller than that row.
        let bar = c
            .execute(
                "const bar = document.querySelector('.tabbar').getBoundingClientRect();
                 const rows = new Set(), small = [];
                 for (const css of ['.tabs .tab.active', 'button.new-tab', 'button.files-toggle', 'button.chat-toggle',
                                    'button.monitor-toggle', 'button.more-tools']) {
                   const r = document.querySelector(css).getBoundingClientRect();
                   rows.add(Math.round(r.top + r.height / 2));
                   if (r.height < 44 || r.width < 36) small.push(css);
                 }
                 return { height: bar.height, rows: rows.size, small };",
                vec![],
            )
            .await?;
        assert_eq!(bar["rows"], 1, "one row: {bar}");
        assert_eq!(bar["small"], serde_json::json!([]), "targets a thumb's size: {bar}");
        assert!(bar["height"].as_f64().is_some_and(|h| h <= 60.0), "the bar is one row high: {bar}");
        for (toggle, pane, name) in [
            ("button.chat-toggle", ".chat-pane", "Assistant"),
            ("button.files-toggle", ".files-pane", "Files"),
            ("button.monitor-toggle", ".monitor-pane", "Monitor"),
        ] {
            // The close button, a thumb's size, is the way back from a panel that covers the page.
            c.find(Locator::Css(toggle)).await?.click().await?;
            let close = format!("{pane} button.panel-close[aria-label='Close {name}']");
            c.wait().at_most(SHORT).for_element(Locator::Css(&close)).await?;
            assert_eq!(reachable(c, &close).await?, "ok", "{name}'s close button");
            let size = c
                .execute("const r = document.querySelector(arguments[0]).getBoundingClientRect(); return [r.width, r.height];", vec![serde_json::json!(close)])
                .await?;
            assert!(size[0].as_f64() >= Some(44.0) && size[1].as_f64() >= Some(44.0), "{name}: {size}");
            c.find(Locator::Css(&close)).await?.click().await?;
            assert_eq!(reachable(c, ".tabs .tab.active").await?, "ok", "{name} closed: the terminal is back");
            // Escape closes it too.
            c.find(Locator::Css(toggle)).await?.click().await?;
            c.wait().at_most(SHORT).for_element(Locator::Css(&close)).await?;
            c.find(Locator::Css(&close)).await?.send_keys(&char::from(Key::Escape).to_string()).await?;
            let deadline = tokio::time::Instant::now() + SHORT;
            while reachable(c, &close).await? == "ok" {
                anyhow::ensure!(tokio::time::Instant::now() < deadline, "Escape left {name} open");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // And the phone's Back, which stays on the page.
            c.find(Locator::Css(toggle)).await?.click().await?;
            c.wait().at_most(SHORT).for_element(Locator::Css(&close)).await?;
            c.back().await?;
            let deadline = tokio::time::Instant::now() + SHORT;
            while reachable(c, &close).await? == "ok" {
                anyhow::ensure!(tokio::time::Instant::now() < deadline, "Back left {name} open");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(reachable(c, ".tabs .tab.active").await?, "ok", "Back after {name} stays on the server");
        }
        // With no panel open, Back leaves the server for the dashboard it came from.
        c.back().await?;
        c.wait().at_most(SHORT).for_element(Locator::Css("li.server")).await?;
        Ok(())
    })
    .await
}

/// Terminal tabs by keyboard alone: the shown tab is in the focus order, arrows go to the
/// next one and show it, F2 renames, Delete closes.
#[tokio::test]
async fn terminal_tabs_work_by_keyboard() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1280, 800).await?;
    let UiStack { browser, .. } = &ui;
    let c = &browser.client;
    ui.on_server_page("tabs_keyboard", || async {
        porta_e2e::browser::click(c, "button.new-tab").await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".tabs .tab:nth-child(2).active[data-state=live]")).await?;
        let focus = "document.querySelector('.tab.active .tab-name').focus()";
        c.execute(focus, vec![]).await?;
        porta_e2e::browser::type_keys(c, &char::from(Key::Left).to_string()).await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".tabs .tab:nth-child(1).active")).await?;
        // The focus comes back to the shown tab once its terminal has been shown.
        let deadline = tokio::time::Instant::now() + SHORT;
        loop {
            let focused = c
                .execute(
                    "return document.activeElement.closest('.tab') === document.querySelector('.tab.active')",
                    vec![],
                )
                .await?;
            if focused == serde_json::json!(true) {
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the focus did not follow the shown tab");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // F2: rename.
        porta_e2e::browser::type_keys(c, &char::from(Key::F2).to_string()).await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".tab.active input.rename")).await?;
        porta_e2e::browser::chord_of(c, &[Key::Control], 'a').await?;
        porta_e2e::browser::type_keys(c, &format!("by-keys{}", char::from(Key::Enter))).await?;
        c.wait()
            .at_most(SHORT)
            .for_element(Locator::XPath("//div[contains(@class,'tab')]//span[text()='by-keys']"))
            .await?;
        // Delete: closed (the shell in it too, after asking nothing: it is a clean terminal).
        c.execute(focus, vec![]).await?;
        porta_e2e::browser::type_keys(c, &char::from(Key::Delete).to_string()).await?;
        let deadline = tokio::time::Instant::now() + SHORT;
        while c.find_all(Locator::Css(".tabs .tab")).await?.len() != 1 {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "Delete did not close the tab");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    })
    .await
}
