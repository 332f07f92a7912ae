//! The editor in the browser, in headless Chromium against a real backend and bridge: open a
//! file from the tree, edit, save with Ctrl+S, and the conflict prompt when the file changed on
//! the server meanwhile (nothing is written until the person chooses).

use std::path::Path;
use std::time::Duration;

use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use porta_e2e::browser::{self, UiStack, chord, editor_text, type_keys, wait_for};

const SHORT: Duration = Duration::from_secs(30);

/// Waits for the server page's file tree to list the home folder.
async fn tree_loaded(c: &Client) -> anyhow::Result<()> {
    wait_for(c, ".files-rows .files-entry[data-name]").await?;
    Ok(())
}

/// Clicks a file in the tree's top folder and waits until its tab is shown.
async fn open_file(c: &Client, name: &str) -> anyhow::Result<()> {
    let row = format!(".files-entry[data-name='{name}'] > button.files-name");
    wait_for(c, &row).await?.click().await?;
    wait_for(c, ".editor-tab.active").await?;
    Ok(())
}

/// Waits until the editor holds the file at `path` with text containing `needle`.
async fn wait_editor(c: &Client, path: &Path, needle: &str) -> anyhow::Result<String> {
    let path = path.to_string_lossy();
    let deadline = tokio::time::Instant::now() + SHORT;
    loop {
        let text = editor_text(c, &path).await?;
        if let Some(t) = text.as_ref().filter(|t| t.contains(needle)) {
            return Ok(t.clone());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the editor never held {needle:?}: {text:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Puts the cursor at the end of the active editor's text.
async fn to_end(c: &Client) -> anyhow::Result<()> {
    c.find(Locator::Css(".editor-pane.active .editor-host .view-lines")).await?.click().await?;
    chord(c, Key::Control, Key::End.into()).await
}

async fn wait_disk(path: &Path, want: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + SHORT;
    loop {
        // A file not (yet) written reads as nothing: keep waiting.
        let have = std::fs::read_to_string(path).unwrap_or_default();
        if have == want {
            return Ok(());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the file holds {have:?}, not {want:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn clean_tab(c: &Client) -> anyhow::Result<()> {
    wait_for(c, ".editor-tab.active:not(.dirty)").await?;
    Ok(())
}

#[tokio::test]
async fn edit_save_and_a_change_behind_the_editors_back_asks_before_overwriting() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1280, 800).await?;
    let UiStack { bridge, browser, .. } = &ui;
    let file = bridge.dir.path().join("notes.py");
    std::fs::write(&file, "print('hello')\n")?;
    let c = &browser.client;
    ui.on_server_page("editor_save_conflict", || async {
        tree_loaded(c).await?;
        open_file(c, "notes.py").await?;
        wait_editor(c, &file, "print('hello')").await?;
        // The language comes from the extension.
        let language = wait_for(c, ".editor-pane.active .editor-language").await?;
        assert_eq!(language.text().await?, "python");

        // Edit: the tab is marked; Ctrl+S writes exactly the editor's bytes and clears the mark.
        to_end(c).await?;
        type_keys(c, "x = 1").await?;
        wait_for(c, ".editor-tab.active.dirty").await?;
        chord(c, Key::Control, 's').await?;
        clean_tab(c).await?;
        wait_disk(&file, "print('hello')\nx = 1").await?;

        // Someone changes the file on the server while it has unsaved changes here: the page
        // says so at once, and a save is refused and asks.
        type_keys(c, "2").await?;
        wait_for(c, ".editor-tab.active.dirty").await?;
        std::fs::write(&file, "theirs\n")?;
        wait_for(c, ".editor-notice[data-notice=changed]").await?;
        chord(c, Key::Control, 's').await?;
        wait_for(c, ".editor-notice[data-notice=conflict]").await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(std::fs::read_to_string(&file)?, "theirs\n", "nothing is written before the choice");
        c.find(Locator::Css(".editor-tab.active.dirty")).await?;

        // Compare: a diff of the version on disk with the editor's; still nothing written.
        c.find(Locator::Css(".editor-notice button.compare")).await?.click().await?;
        c.wait()
            .at_most(SHORT)
            .for_element(Locator::Css(".editor-pane.active .editor-diff .monaco-diff-editor"))
            .await?;
        assert_eq!(std::fs::read_to_string(&file)?, "theirs\n");
        browser.screenshot("editor-conflict").await?;

        // Overwrite with mine: the editor's text is on disk.
        c.find(Locator::Css(".editor-notice button.overwrite")).await?.click().await?;
        clean_tab(c).await?;
        wait_disk(&file, "print('hello')\nx = 12").await?;
        wait_for(c, ".editor-notice[hidden]").await?;

        // Another change on the server, and this time take theirs: the editor shows it, the
        // file is unchanged, and the person's edit is still one undo away.
        to_end(c).await?;
        type_keys(c, "3").await?;
        wait_for(c, ".editor-tab.active.dirty").await?;
        std::fs::write(&file, "theirs again\n")?;
        wait_for(c, ".editor-notice[data-notice=changed]").await?;
        chord(c, Key::Control, 's').await?;
        wait_for(c, ".editor-notice[data-notice=conflict]").await?;
        c.find(Locator::Css(".editor-notice button.reload")).await?.click().await?;
        wait_editor(c, &file, "theirs again").await?;
        clean_tab(c).await?;
        assert_eq!(std::fs::read_to_string(&file)?, "theirs again\n");
        assert_eq!(editor_text(c, &file.to_string_lossy()).await?.as_deref(), Some("theirs again\n"));
        Ok(())
    })
    .await
}

#[tokio::test]
async fn closing_a_file_with_unsaved_changes_asks_first() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1280, 800).await?;
    let UiStack { bridge, browser, .. } = &ui;
    let file = bridge.dir.path().join("draft.md");
    std::fs::write(&file, "# Draft\n")?;
    let c = &browser.client;
    ui.on_server_page("editor_close_dirty", || async {
        tree_loaded(c).await?;
        open_file(c, "draft.md").await?;
        wait_editor(c, &file, "# Draft").await?;
        // The editor follows the app's theme, both ways.
        let themes = "return [document.documentElement.dataset.theme,\
            document.querySelector('.editor-pane.active .monaco-editor').classList.contains('vs-dark')]";
        for _ in 0..2 {
            let before = c.execute(themes, vec![]).await?[0].clone();
            c.find(Locator::Css("button.theme")).await?.click().await?;
            let deadline = tokio::time::Instant::now() + SHORT;
            loop {
                let v = c.execute(themes, vec![]).await?;
                if v[0] != before && (v[0] == "dark") == (v[1] == true) {
                    break;
                }
                anyhow::ensure!(tokio::time::Instant::now() < deadline, "the editor kept its theme: {v:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        to_end(c).await?;
        type_keys(c, "unsaved words").await?;
        wait_for(c, ".editor-tab.active.dirty").await?;
        // Say no: the tab and its text stay.
        c.find(Locator::Css(".editor-tab.active button.close")).await?.click().await?;
        c.dismiss_alert().await?;
        wait_editor(c, &file, "unsaved words").await?;
        c.find(Locator::Css(".editor-tab")).await?;
        // Say yes: the tab goes, the file is as it was.
        c.find(Locator::Css(".editor-tab.active button.close")).await?.click().await?;
        c.accept_alert().await?;
        let deadline = tokio::time::Instant::now() + SHORT;
        while c.find(Locator::Css(".editor-tab")).await.is_ok() {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the tab stayed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(std::fs::read_to_string(&file)?, "# Draft\n");
        // A clean tab closes without asking.
        open_file(c, "draft.md").await?;
        wait_editor(c, &file, "# Draft").await?;
        c.find(Locator::Css(".editor-tab.active button.close")).await?.click().await?;
        let deadline = tokio::time::Instant::now() + SHORT;
        while c.find(Locator::Css(".editor-tab")).await.is_ok() {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the clean tab stayed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn binary_large_and_read_only_files_are_handled_with_care() -> anyhow::Result<()> {
    // A small editor limit, so a "large" file is a few kilobytes.
    let ui = UiStack::start(&[("PORTA_EDITOR_MAX_BYTES", "4096")], 1280, 800).await?;
    let UiStack { bridge, browser, .. } = &ui;
    let home = bridge.dir.path();
    std::fs::write(home.join("blob.bin"), b"\x7fELF\x02\x01\x01\0\0\0binary")?;
    let large = "a line of a large log file\n".repeat(400);
    std::fs::write(home.join("big.log"), &large)?;
    let locked = home.join("locked.txt");
    std::fs::write(&locked, "do not touch\n")?;
    let mut perms = std::fs::metadata(&locked)?.permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o444);
    std::fs::set_permissions(&locked, perms)?;
    let c = &browser.client;
    ui.on_server_page("editor_binary_large", || async {
        tree_loaded(c).await?;
        // Binary: never shown as text, offered as a download.
        open_file(c, "blob.bin").await?;
        let note = wait_for(c, ".editor-pane.active .editor-note:not([hidden])").await?;
        assert!(note.text().await?.contains("binary file"), "{}", note.text().await?);
        c.find(Locator::Css(".editor-pane.active button.download")).await?;
        assert_eq!(editor_text(c, &home.join("blob.bin").to_string_lossy()).await?, None);

        // Over the limit: a warning, then read-only on request, with no Save.
        open_file(c, "big.log").await?;
        let note = wait_for(c, ".editor-pane.active .editor-note:not([hidden])").await?;
        assert!(note.text().await?.contains("larger than the editor opens"), "{}", note.text().await?);
        c.find(Locator::Css(".editor-pane.active button.open-anyway")).await?.click().await?;
        wait_editor(c, &home.join("big.log"), "a line of a large log file").await?;
        wait_for(c, ".editor-pane.active .editor-readonly:not([hidden])").await?;
        assert!(!c.find(Locator::Css(".editor-pane.active button.save")).await?.is_displayed().await?);

        // A read-only file: the save is refused with a clear message, the file unchanged.
        open_file(c, "locked.txt").await?;
        wait_editor(c, &locked, "do not touch").await?;
        to_end(c).await?;
        type_keys(c, "touched").await?;
        chord(c, Key::Control, 's').await?;
        let notice = wait_for(c, ".editor-notice[data-notice=error]").await?;
        assert!(notice.text().await?.contains("read-only"), "{}", notice.text().await?);
        assert_eq!(std::fs::read_to_string(&locked)?, "do not touch\n");
        c.find(Locator::Css(".editor-tab.active.dirty")).await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_change_on_the_server_reaches_a_clean_editor_and_warns_a_dirty_one() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1280, 800).await?;
    let UiStack { bridge, browser, .. } = &ui;
    let file = bridge.dir.path().join("config.toml");
    std::fs::write(&file, "port = 80\n")?;
    let c = &browser.client;
    ui.on_server_page("editor_follows_disk", || async {
        tree_loaded(c).await?;
        open_file(c, "config.toml").await?;
        wait_editor(c, &file, "port = 80").await?;
        // Clean: the editor takes the server's version by itself, and stays clean.
        std::fs::write(&file, "port = 8080\n")?;
        wait_editor(c, &file, "port = 8080").await?;
        clean_tab(c).await?;
        // A save of ours is not mistaken for someone else's change.
        to_end(c).await?;
        type_keys(c, "# mine").await?;
        chord(c, Key::Control, 's').await?;
        clean_tab(c).await?;
        wait_disk(&file, "port = 8080\n# mine").await?;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(c.find(Locator::Css(".editor-notice:not([hidden])")).await.is_err(), "no warning for our own save");
        // Dirty: it says so at once, keeps the person's text, and writes nothing.
        type_keys(c, " edits").await?;
        std::fs::write(&file, "port = 9090\n")?;
        wait_for(c, ".editor-notice[data-notice=changed]").await?;
        let text = editor_text(c, &file.to_string_lossy()).await?.unwrap_or_default();
        assert!(text.contains("# mine edits"), "{text}");
        assert_eq!(std::fs::read_to_string(&file)?, "port = 9090\n");
        // Keeping theirs: the server's version, clean.
        c.find(Locator::Css(".editor-notice button.reload")).await?.click().await?;
        wait_editor(c, &file, "port = 9090").await?;
        clean_tab(c).await?;
        Ok(())
    })
    .await
}

/// The paths of the editor tabs, in order (read in one go: the strip re-renders as tabs move).
async fn tab_paths(c: &Client) -> anyhow::Result<Vec<String>> {
    let v = c.execute("return [...document.querySelectorAll('.editor-tab')].map(t => t.dataset.path)", vec![]).await?;
    Ok(serde_json::from_value(v)?)
}

/// Waits until the editor tabs are `want`, in order.
async fn wait_tabs(c: &Client, want: &[String]) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + SHORT;
    loop {
        let have = tab_paths(c).await?;
        if have == want {
            return Ok(());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the tabs are {have:?}, not {want:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Picks an action from a tree row's menu.
async fn act(c: &Client, name: &str, action: &str) -> anyhow::Result<()> {
    browser::click(c, &format!(".files-entry[data-name='{name}'] .files-more")).await?;
    browser::click(c, &format!(".files-menu:not([hidden]) .files-menu-item.{action}")).await
}

#[tokio::test]
async fn tabs_follow_files_renamed_or_deleted_and_say_when_a_file_is_gone() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1280, 800).await?;
    let UiStack { bridge, browser, .. } = &ui;
    let home = bridge.dir.path().to_owned();
    for (name, text) in [("a.txt", "alpha\n"), ("b.txt", "beta\n"), ("c.txt", "gamma\n"), ("d.txt", "delta\n")] {
        std::fs::write(home.join(name), text)?;
    }
    let at = |name: &str| home.join(name).to_string_lossy().into_owned();
    let c = &browser.client;
    ui.on_server_page("editor_follow_files", || async {
        tree_loaded(c).await?;
        for name in ["a.txt", "b.txt", "c.txt", "d.txt"] {
            open_file(c, name).await?;
            wait_editor(c, &home.join(name), "").await?;
        }
        // Renamed in the tree: the clean tab follows, in its place.
        act(c, "a.txt", "rename").await?;
        wait_for(c, ".files-name-input").await?;
        type_keys(c, &format!("renamed{}", char::from(Key::Enter))).await?;
        wait_tabs(c, &[at("renamed.txt"), at("b.txt"), at("c.txt"), at("d.txt")]).await?;
        browser::click(c, &format!(".editor-tab[data-path='{}']", at("renamed.txt"))).await?;
        wait_editor(c, &home.join("renamed.txt"), "alpha").await?;
        // Deleted in the tree: the clean tab closes.
        act(c, "b.txt", "delete").await?;
        c.accept_alert().await?;
        wait_tabs(c, &[at("renamed.txt"), at("c.txt"), at("d.txt")]).await?;

        // Deleted behind the editor's back, with unsaved changes: the tab stays and says so,
        // and saving writes the file again.
        browser::click(c, &format!(".editor-tab[data-path='{}']", at("c.txt"))).await?;
        wait_editor(c, &home.join("c.txt"), "gamma").await?;
        to_end(c).await?;
        type_keys(c, "kept").await?;
        wait_for(c, ".editor-tab.active.dirty").await?;
        std::fs::remove_file(home.join("c.txt"))?;
        wait_for(c, ".editor-tab.active.gone").await?;
        wait_for(c, ".editor-pane.active .editor-notice[data-notice=gone]:not([hidden])").await?;
        browser.screenshot("editor-gone").await?;
        browser::click(c, ".editor-pane.active .editor-notice button.save-again").await?;
        wait_disk(&home.join("c.txt"), "gamma\nkept").await?;
        wait_for(c, ".editor-tab.active:not(.gone):not(.dirty)").await?;

        // A clean tab whose file goes and comes back (a `git stash`): marked, then current.
        browser::click(c, &format!(".editor-tab[data-path='{}']", at("d.txt"))).await?;
        std::fs::remove_file(home.join("d.txt"))?;
        wait_for(c, ".editor-tab.active.gone").await?;
        std::fs::write(home.join("d.txt"), "delta again\n")?;
        wait_for(c, ".editor-tab.active:not(.gone)").await?;
        wait_editor(c, &home.join("d.txt"), "delta again").await?;
        Ok(())
    })
    .await
}
