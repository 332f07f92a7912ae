//! The file manager in the browser, in headless Chromium against a real backend and bridge:
//! create, rename, move (drag and drop) and delete in the tree, each checked on disk; uploads
//! from the desktop and downloads back, byte for byte.

use std::time::Duration;

use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use porta_e2e::browser::{self, UiStack, chord_of, type_keys, wait_for, wait_text};
use serde_json::json;

const SHORT: Duration = Duration::from_secs(30);

/// Waits for the server page's file tree to list the home folder.
async fn tree_loaded(c: &Client) -> anyhow::Result<()> {
    wait_for(c, ".files-rows .files-entry[data-name]").await?;
    Ok(())
}

fn row(name: &str) -> String {
    format!(".files-entry[data-name='{name}']")
}

/// Opens a row's actions menu and picks an action.
async fn act(c: &Client, name: &str, action: &str) -> anyhow::Result<()> {
    browser::click(c, &format!("{} .files-more", row(name))).await?;
    browser::click(c, &format!(".files-menu:not([hidden]) .files-menu-item.{action}")).await?;
    Ok(())
}

/// Waits until `check` holds for the disk.
async fn wait_disk(what: &str, check: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + SHORT;
    while !check() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the disk never showed: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Types a name into the tree's name box and presses Enter.
async fn name_it(c: &Client, text: &str) -> anyhow::Result<()> {
    wait_for(c, ".files-name-input").await?;
    type_keys(c, text).await?;
    type_keys(c, &char::from(Key::Enter).to_string()).await
}

/// Drags one row onto another with synthetic drag events (WebDriver cannot drive native
/// drag and drop; the page's handlers see the same events).
async fn drag_onto(c: &Client, from: &str, onto: &str) -> anyhow::Result<()> {
    let script = "const [from, onto] = [document.querySelector(arguments[0]), document.querySelector(arguments[1])];\
        const dt = new DataTransfer();\
        from.dispatchEvent(new DragEvent('dragstart', { bubbles: true, dataTransfer: dt }));\
        onto.dispatchEvent(new DragEvent('dragover', { bubbles: true, cancelable: true, dataTransfer: dt }));\
        onto.dispatchEvent(new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: dt }));\
        from.dispatchEvent(new DragEvent('dragend', { bubbles: true, dataTransfer: dt }));";
    c.execute(script, vec![json!(row(from)), json!(row(onto))]).await?;
    Ok(())
}

#[tokio::test]
async fn create_rename_move_and_delete_in_the_tree_change_the_disk() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1280, 800).await?;
    let UiStack { bridge, browser, .. } = &ui;
    let home = bridge.dir.path().to_owned();
    std::fs::create_dir(home.join("docs"))?;
    std::fs::write(home.join("docs/a.txt"), "a")?;
    std::fs::write(home.join("old.txt"), "keep me")?;
    let c = &browser.client;
    ui.on_server_page("files_tree_ops", || async {
        tree_loaded(c).await?;

        // A new file, opened in the editor; a new folder.
        wait_for(c, "button.files-new-file").await?.click().await?;
        name_it(c, "fresh.md").await?;
        wait_disk("fresh.md created", || home.join("fresh.md").is_file()).await?;
        wait_for(c, ".editor-tab.active[data-path$='/fresh.md']").await?;
        wait_for(c, &row("fresh.md")).await?;
        // (the new file is selected: a new folder goes beside it)
        wait_for(c, "button.files-new-folder").await?.click().await?;
        name_it(c, "made").await?;
        wait_disk("made/ created", || home.join("made").is_dir()).await?;
        wait_for(c, &row("made")).await?;

        // From a folder's menu, even a closed one: the new file goes inside it.
        act(c, "docs", "new-file").await?;
        name_it(c, "inside.txt").await?;
        wait_disk("docs/inside.txt created", || home.join("docs/inside.txt").is_file()).await?;

        // A name with a slash is refused with a clear message; nothing is made.
        wait_for(c, "button.files-new-file").await?.click().await?;
        name_it(c, "a/b").await?;
        let problem = wait_for(c, ".files-problem:not([hidden])").await?;
        assert!(problem.text().await?.contains("is not a file name"), "{}", problem.text().await?);
        assert!(!home.join("a").exists());

        // Rename: the name box starts with the name, its stem selected.
        act(c, "old.txt", "rename").await?;
        name_it(c, "renamed").await?;
        wait_disk("old.txt renamed", || home.join("renamed.txt").is_file() && !home.join("old.txt").exists()).await?;
        assert_eq!(std::fs::read_to_string(home.join("renamed.txt"))?, "keep me");
        wait_for(c, &row("renamed.txt")).await?;

        // Move by dragging onto a folder.
        drag_onto(c, "renamed.txt", "docs").await?;
        wait_disk("renamed.txt moved into docs", || home.join("docs/renamed.txt").is_file()).await?;
        assert!(!home.join("renamed.txt").exists());

        // Delete a file: asked first; "no" keeps it.
        act(c, "fresh.md", "delete").await?;
        c.dismiss_alert().await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(home.join("fresh.md").exists(), "declining keeps the file");
        act(c, "fresh.md", "delete").await?;
        c.accept_alert().await?;
        wait_disk("fresh.md deleted", || !home.join("fresh.md").exists()).await?;

        // A folder with content needs a second, explicit yes.
        act(c, "docs", "delete").await?;
        c.accept_alert().await?;
        wait_alert(c).await?;
        c.dismiss_alert().await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(home.join("docs/a.txt").exists(), "one yes does not delete a folder's content");
        act(c, "docs", "delete").await?;
        c.accept_alert().await?;
        wait_alert(c).await?;
        c.accept_alert().await?;
        wait_disk("docs deleted", || !home.join("docs").exists()).await?;
        // Gone from the tree by itself.
        let deadline = tokio::time::Instant::now() + SHORT;
        while c.find(Locator::Css(&row("docs"))).await.is_ok() {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "docs stayed in the tree");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    })
    .await
}

/// Waits for a dialog (the second question comes after a round trip).
async fn wait_alert(c: &Client) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + SHORT;
    while c.get_alert_text().await.is_err() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no question was asked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test]
async fn uploads_from_the_desktop_and_downloads_come_back_byte_identical() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1280, 800).await?;
    let UiStack { bridge, browser, .. } = &ui;
    let home = bridge.dir.path().to_owned();
    std::fs::create_dir(home.join("inbox"))?;
    // Larger than one request takes, so it goes in pieces.
    let big = pseudo_random(1_700_000, 7);
    let desktop = tempfile::tempdir()?;
    let local = desktop.path().join("photo.raw");
    std::fs::write(&local, &big)?;
    let c = &browser.client;
    ui.on_server_page("files_upload_download", || async {
        tree_loaded(c).await?;

        // Picked with the Upload button's file picker.
        c.find(Locator::Css("input.files-picker")).await?.send_keys(&local.to_string_lossy()).await?;
        wait_for(c, ".upload[data-name='photo.raw'][data-state=done]").await?;
        assert_eq!(std::fs::read(home.join("photo.raw"))?, big, "the upload is byte-identical");

        // Dropped from the desktop onto a folder (a drop's files, as the browser makes them).
        let script = "const dt = new DataTransfer();\
            const bytes = new Uint8Array(300000); for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) & 255;\
            dt.items.add(new File([bytes], 'dropped.bin'));\
            const onto = document.querySelector(arguments[0]);\
            onto.dispatchEvent(new DragEvent('dragover', { bubbles: true, cancelable: true, dataTransfer: dt }));\
            onto.dispatchEvent(new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: dt }));";
        c.execute(script, vec![json!(row("inbox"))]).await?;
        wait_for(c, ".upload[data-name='dropped.bin'][data-state=done]").await?;
        let want: Vec<u8> = (0..300_000u32).map(|i| ((i * 7) & 255) as u8).collect();
        assert_eq!(std::fs::read(home.join("inbox/dropped.bin"))?, want);

        // The same name again: replaced only after a yes.
        std::fs::write(&local, b"second version")?;
        c.find(Locator::Css("input.files-picker")).await?.send_keys(&local.to_string_lossy()).await?;
        wait_alert(c).await?;
        c.dismiss_alert().await?;
        wait_for(c, ".upload[data-name='photo.raw'][data-state=skipped]").await?;
        assert_eq!(std::fs::read(home.join("photo.raw"))?, big, "declining keeps the server's file");

        // Downloaded back: the same bytes.
        act(c, "photo.raw", "download").await?;
        let got = browser.downloaded("photo.raw", SHORT).await?;
        assert!(got == big, "the download differs from the file ({} bytes, not {})", got.len(), big.len());
        // A folder comes down as a .tar.gz that unpacks to the same bytes.
        act(c, "inbox", "download").await?;
        let archive = browser.downloaded("inbox.tar.gz", SHORT).await?;
        let unpacked = tempfile::tempdir()?;
        std::fs::write(unpacked.path().join("inbox.tar.gz"), &archive)?;
        let status =
            std::process::Command::new("tar").args(["xzf", "inbox.tar.gz"]).current_dir(unpacked.path()).status()?;
        assert!(status.success(), "the archive unpacks");
        assert_eq!(std::fs::read(unpacked.path().join("inbox/dropped.bin"))?, want);
        browser::click(c, &format!("{} .files-more", row("inbox"))).await?;
        browser.screenshot("files").await?;
        Ok(())
    })
    .await
}

/// The line the cursor is on in the editor of the file at `path` (1-based).
async fn cursor_line(c: &Client, path: &str) -> anyhow::Result<Option<u64>> {
    let script = "const e = window.monaco && monaco.editor.getEditors().find(e => e.getModel() && e.getModel().uri.path === arguments[0]);\
        return e && e.getPosition() ? e.getPosition().lineNumber : null;";
    Ok(c.execute(script, vec![json!(path)]).await?.as_u64())
}

#[tokio::test]
async fn quick_open_and_content_search_find_a_planted_file_and_line() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1280, 800).await?;
    let UiStack { bridge, browser, .. } = &ui;
    let home = bridge.dir.path().to_owned();
    let deep = home.join("project/src/deep");
    std::fs::create_dir_all(&deep)?;
    for i in 0..40 {
        std::fs::write(home.join(format!("project/src/noise_{i}.txt")), format!("nothing here {i}\n"))?;
    }
    let planted = deep.join("planted_target.rs");
    std::fs::write(&planted, "fn main() {\n    let x = 1;\n    let needle_in_haystack_42 = x;\n}\n")?;
    let c = &browser.client;
    ui.on_server_page("files_finder", || async {
        tree_loaded(c).await?;
        // Go to file: a fuzzy name finds it; Enter opens it.
        porta_e2e::browser::tool(c, "button.quick-open").await?;
        wait_for(c, ".finder:not([hidden]) .finder-input").await?;
        type_keys(c, "plantarg").await?;
        let hit = wait_for(c, ".finder-item.chosen[data-path='project/src/deep/planted_target.rs']").await?;
        assert!(hit.text().await?.contains("planted_target.rs"));
        type_keys(c, &char::from(Key::Enter).to_string()).await?;
        let path = planted.to_string_lossy().into_owned();
        wait_for(c, &format!(".editor-tab.active[data-path='{path}']")).await?;
        assert!(!c.find(Locator::Css(".finder")).await?.is_displayed().await?, "the finder closes");

        // From the editor, Ctrl+Shift+F searches the content; the hit opens at its line.
        wait_for(c, ".editor-pane.active .editor-host .view-lines").await?.click().await?;
        chord_of(c, &[Key::Control, Key::Shift], 'f').await?;
        wait_for(c, ".finder:not([hidden]) .finder-text[aria-pressed='true']").await?;
        type_keys(c, "needle_in_haystack").await?;
        let hit = wait_for(c, ".finder-item[data-path='project/src/deep/planted_target.rs'][data-line='3']").await?;
        assert!(hit.text().await?.contains("let needle_in_haystack_42 = x;"), "{}", hit.text().await?);
        wait_for(c, ".finder-item mark").await?;
        browser.screenshot("finder").await?;
        hit.click().await?;
        let deadline = tokio::time::Instant::now() + SHORT;
        while cursor_line(c, &path).await? != Some(3) {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the editor did not go to line 3");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        browser.screenshot("editor-at-line").await?;
        // Nothing found says so.
        porta_e2e::browser::tool(c, "button.search-files").await?;
        c.find(Locator::Css(".finder-input")).await?.send_keys("zzz_not_anywhere").await?;
        let note = wait_for(c, ".finder-note").await?;
        let deadline = tokio::time::Instant::now() + SHORT;
        while !note.text().await?.starts_with("0 lines") {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "no count of zero: {}", note.text().await?);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(c.find_all(Locator::Css(".finder-item")).await?.is_empty());
        Ok(())
    })
    .await
}

fn git(dir: &std::path::Path, args: &[&str]) -> anyhow::Result<()> {
    let out = std::process::Command::new("git")
        .args(["-c", "user.email=test@porta.invalid", "-c", "user.name=Porta Test", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()?;
    anyhow::ensure!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

#[tokio::test]
async fn git_changes_are_marked_in_the_tree_and_a_file_diffs_against_head() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1280, 800).await?;
    let UiStack { bridge, browser, .. } = &ui;
    let repo = bridge.dir.path().join("repo");
    std::fs::create_dir_all(repo.join("src"))?;
    std::fs::write(repo.join("src/lib.rs"), "pub fn answer() -> u32 {\n    41\n}\n")?;
    std::fs::write(repo.join("README.md"), "# Repo\n")?;
    git(&repo, &["init", "-q"])?;
    git(&repo, &["add", "."])?;
    git(&repo, &["commit", "-q", "-m", "first"])?;
    std::fs::write(repo.join("src/lib.rs"), "pub fn answer() -> u32 {\n    42\n}\n")?;
    std::fs::write(repo.join("notes.txt"), "new\n")?;
    let c = &browser.client;
    ui.on_server_page("files_git", || async {
        tree_loaded(c).await?;
        wait_for(c, &format!("{} > button.files-name", row("repo"))).await?.click().await?;
        // Untracked, a folder holding a change, and an unchanged file.
        wait_for(c, ".files-entry[data-name='notes.txt'][data-git='U']").await?;
        wait_for(c, ".files-entry[data-name='src'][data-git='•']").await?;
        wait_for(c, ".files-entry[data-name='repo'][data-git='•']").await?;
        assert!(c.find(Locator::Css(".files-entry[data-name='README.md'][data-git]")).await.is_err());
        wait_for(c, &format!("{} > button.files-name", row("src"))).await?.click().await?;
        wait_for(c, ".files-entry[data-name='lib.rs'][data-git='M']").await?;
        // A change made in a terminal (here: behind the page's back) updates the marks.
        std::fs::write(repo.join("README.md"), "# Repo, edited\n")?;
        wait_for(c, ".files-entry[data-name='README.md'][data-git='M']").await?;

        // The file against HEAD: the committed text on the left, the file's on the right.
        wait_for(c, &format!("{} > button.files-name", row("lib.rs"))).await?.click().await?;
        wait_for(c, ".editor-pane.active .editor-host .view-lines").await?;
        wait_for(c, ".editor-pane.active button.git-diff").await?.click().await?;
        wait_for(c, ".editor-pane.active .editor-diff .monaco-diff-editor").await?;
        let sides = "const d = monaco.editor.getDiffEditors()[0]; const m = d && d.getModel();\
            return m ? [m.original.getValue(), m.modified.getValue()] : null;";
        let deadline = tokio::time::Instant::now() + SHORT;
        loop {
            let v = c.execute(sides, vec![]).await?;
            if v[0].as_str().is_some_and(|s| s.contains("41")) {
                assert!(v[1].as_str().is_some_and(|s| s.contains("42")), "{v:?}");
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "no diff against HEAD: {v:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let label = wait_for(c, ".editor-pane.active .editor-comparing").await?;
        assert!(label.text().await?.contains("git HEAD"));
        browser.screenshot("editor-git-diff").await?;
        c.find(Locator::Css(".editor-pane.active .editor-comparing button")).await?.click().await?;
        wait_for(c, ".editor-pane.active .editor-diff[hidden]").await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_folder_of_ten_thousand_entries_keeps_only_the_rows_in_view_in_the_page() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1280, 800).await?;
    let UiStack { bridge, browser, .. } = &ui;
    let many = bridge.dir.path().join("many");
    std::fs::create_dir(&many)?;
    for i in 0..10_000 {
        std::fs::write(many.join(format!("f{i}.txt")), "")?;
    }
    let c = &browser.client;
    ui.on_server_page("files_ten_thousand", || async {
        tree_loaded(c).await?;
        wait_for(c, &format!("{} > button.files-name", row("many"))).await?.click().await?;
        wait_for(c, &row("f0.txt")).await?;
        let rows = c.find_all(Locator::Css(".files-entry")).await?.len();
        assert!(rows < 200, "{rows} rows are in the page for 10,000 entries");
        // The box is as tall as every row; scrolled to the end, the last entries are there
        // (in natural order: f9999 last).
        let height = c.execute("return document.querySelector('.files-rows').offsetHeight", vec![]).await?;
        assert!(height.as_f64().unwrap_or(0.0) >= 10_000.0 * 24.0, "{height:?}");
        c.execute("const s = document.querySelector('.files-scroll'); s.scrollTop = s.scrollHeight;", vec![]).await?;
        wait_for(c, &row("f9999.txt")).await?;
        assert!(c.find(Locator::Css(&row("f0.txt"))).await.is_err(), "rows out of view leave the page");
        let rows = c.find_all(Locator::Css(".files-entry")).await?.len();
        assert!(rows < 200, "{rows} rows after scrolling");
        // A file far down opens like any other.
        wait_for(c, &format!("{} > button.files-name", row("f9998.txt"))).await?.click().await?;
        wait_for(c, ".editor-tab.active[data-path$='/many/f9998.txt']").await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn on_a_phone_a_file_opens_over_the_tree_and_open_files_survive_a_reload() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 390, 844).await?;
    let UiStack { bridge, browser, .. } = &ui;
    let file = bridge.dir.path().join("todo.txt");
    std::fs::write(&file, "buy milk\n")?;
    let c = &browser.client;
    ui.on_server_page("files_phone", || async {
        // On a phone the tree is folded away until asked for.
        // Finger-sized targets: a tab's "×", a row's "⋯".
        let small = |css: &'static str| async move {
            let found = c
                .execute(
                    "const all = [...document.querySelectorAll(arguments[0])].map(e => e.getBoundingClientRect());\
                     return [all.length, all.filter(r => r.width < 44 || r.height < 44).map(r => [r.width, r.height])]",
                    vec![json!(css)],
                )
                .await?;
            anyhow::ensure!(found[0].as_u64() > Some(0), "no {css} to measure");
            anyhow::Ok(found[1].clone())
        };
        assert_eq!(small(".tab .close").await?, json!([]), "tab close buttons under 44x44 px");
        wait_for(c, "button.files-toggle").await?.click().await?;
        wait_for(c, &row("todo.txt")).await?;
        assert_eq!(small(".files-entry .files-more").await?, json!([]), "row actions under 44x44 px");
        wait_for(c, &format!("{} > button.files-name", row("todo.txt"))).await?.click().await?;
        wait_for(c, ".editor-tab.active[data-path$='/todo.txt']").await?;
        wait_for(c, ".editor-pane.active .editor-host .view-lines").await?;
        assert!(!c.find(Locator::Css(".files-pane")).await?.is_displayed().await?, "the tree gets out of the way");
        assert!(!wait_for(c, ".keyrow").await?.is_displayed().await?, "the terminal keys are for terminals");
        browser.screenshot("phone-editor").await?;
        // Reopened after a reload, beside the terminal.
        c.refresh().await?;
        wait_for(c, ".editor-tab[data-path$='/todo.txt']").await?;
        wait_for(c, ".tab.active[data-state=live]").await?;
        Ok(())
    })
    .await
}

/// Types a path into the tree's path bar and presses Enter.
async fn go_to(c: &Client, path: &str) -> anyhow::Result<()> {
    // Not `clear()`: it leaves the box, and leaving puts back the folder shown.
    wait_for(c, ".files-path-input").await?.click().await?;
    browser::chord(c, Key::Control, 'a').await?;
    type_keys(c, &format!("{path}{}", char::from(Key::Enter))).await?;
    Ok(())
}

/// Waits until the path bar shows `path`.
async fn wait_shown(c: &Client, path: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + SHORT;
    loop {
        let shown = wait_for(c, ".files-path-input").await?.prop("value").await?.unwrap_or_default();
        if shown == path {
            return Ok(());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the path bar shows {shown:?}, not {path:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The path bar leaves the home folder (typed, up, places), a linked folder opens as a folder,
/// a typed file path opens the file, and the finder searches the folder shown.
async fn path_bar_walk(width: u32, height: u32) -> anyhow::Result<()> {
    let ui = UiStack::start(&[], width, height).await?;
    let UiStack { bridge, browser, .. } = &ui;
    let home = bridge.dir.path().to_owned();
    // Everything this test visits outside home is in a folder of its own.
    let elsewhere = tempfile::tempdir()?;
    let area = elsewhere.path().join("area");
    std::fs::create_dir_all(area.join("sub"))?;
    std::fs::write(area.join("sub/deep_outside.txt"), "x\n")?;
    std::fs::write(area.join("note.txt"), "outside home\n")?;
    std::os::unix::fs::symlink(&area, home.join("linked"))?;
    std::fs::write(home.join("at_home.txt"), "home\n")?;
    let (home_s, area_s, top_s) = (
        home.to_string_lossy().into_owned(),
        area.to_string_lossy().into_owned(),
        elsewhere.path().to_string_lossy().into_owned(),
    );
    let c = &browser.client;
    ui.on_server_page(&format!("files_path_bar_{width}"), || async {
        if width < 700 {
            wait_for(c, "button.files-toggle").await?.click().await?;
        }
        wait_shown(c, &home_s).await?;
        // A linked folder opens in the tree, not as an editor tab.
        browser::click(c, &format!("{} > button.files-name", row("linked"))).await?;
        wait_for(c, &format!(".files-entry[data-path='{home_s}/linked/sub'][data-kind=dir]")).await?;
        assert!(c.find_all(Locator::Css(".editor-tab")).await?.is_empty(), "no editor tab for a folder");

        // Typed: a folder outside home.
        go_to(c, &area_s).await?;
        wait_shown(c, &area_s).await?;
        wait_for(c, &format!(".files-entry[data-path='{area_s}/sub']")).await?;
        browser.screenshot("path-bar").await?;
        // The finder searches the folder shown.
        if width < 700 {
            browser::click(c, ".files-pane .panel-close").await?;
        }
        browser::tool(c, "button.quick-open").await?;
        wait_text(c, ".finder:not([hidden]) .finder-scope", &area_s).await?;
        type_keys(c, "deep_outside").await?;
        wait_for(c, ".finder-item[data-path='sub/deep_outside.txt']").await?;
        type_keys(c, &char::from(Key::Escape).to_string()).await?;
        if width < 700 {
            wait_for(c, "button.files-toggle").await?.click().await?;
        }

        // Up: the parent folder.
        browser::click(c, "button.files-up").await?;
        wait_shown(c, &top_s).await?;
        wait_for(c, &format!(".files-entry[data-path='{area_s}']")).await?;
        // A missing folder is refused with a reason, and the tree stays where it was.
        go_to(c, &format!("{top_s}/no-such-folder")).await?;
        wait_text(c, ".files-problem:not([hidden])", "no-such-folder").await?;
        wait_shown(c, &top_s).await?;
        // A file's path opens the file, and the tree shows its folder.
        go_to(c, &format!("{area_s}/note.txt")).await?;
        wait_for(c, &format!(".editor-tab.active[data-path='{area_s}/note.txt']")).await?;
        if width < 700 {
            wait_for(c, "button.files-toggle").await?.click().await?;
        }
        wait_shown(c, &area_s).await?;

        // The tree opens where it was left, after a reload.
        c.refresh().await?;
        wait_for(c, ".tab.active[data-state=live]").await?;
        if width < 700 {
            wait_for(c, "button.files-toggle").await?.click().await?;
        }
        wait_shown(c, &area_s).await?;
        // Places: home again.
        wait_for(c, "select.files-places").await?.select_by_value("~").await?;
        wait_shown(c, &home_s).await?;
        wait_for(c, &format!("{} > button.files-name", row("at_home.txt"))).await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn the_path_bar_reaches_any_folder_and_linked_folders_open_as_folders() -> anyhow::Result<()> {
    path_bar_walk(1280, 800).await
}

#[tokio::test]
async fn on_a_phone_the_path_bar_reaches_any_folder() -> anyhow::Result<()> {
    path_bar_walk(390, 844).await
}
