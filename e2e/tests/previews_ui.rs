//! The Ports panel in headless Chromium, at a desktop's size and a phone's: a web app started
//! on the bridge's machine is listed with this process as its owner; "Open" shows it in a new
//! tab at `/p/<server>/<port>/`, where the ticket became the preview's cookie (gone from the
//! URL), and its page's own WebSocket (as a dev server's hot reload) reaches the app; "Preview"
//! shows it in the pane beside the editor, which reloads it after a save in the editor and says
//! when a page asks for its files from the root (the app needs a host of its own). With
//! a preview domain, the pane shows the app from its own origin, whose pages cannot read
//! Porta's API; a public link made in the panel opens after its password and is revoked there.

use std::time::Duration;

use fantoccini::Client;
use fantoccini::key::Key;
use porta_e2e::browser::{UiStack, chord, click, tool, type_keys, wait_for, wait_js, wait_text};
use porta_e2e::free_port;
use porta_e2e::webapp::WebApp;

async fn a_preview(width: u32, height: u32, shot: &str) -> anyhow::Result<()> {
    let app = WebApp::start("127.0.0.1:0").await?;
    let ui = UiStack::start(&[], width, height).await?;
    let UiStack { browser, .. } = &ui;
    let c = &browser.client;
    ui.on_server_page(shot, || async {
        tool(c, "button.ports-toggle").await?;
        let row = format!(".ports tr[data-port='{}']", app.port);
        let shown = wait_text(c, &row, "127.0.0.1").await?;
        assert!(shown.contains(&format!("({})", std::process::id())), "the owner is this test: {shown}");
        browser.screenshot(&format!("{shot}_ports")).await?;
        let porta = c.window().await?;
        let page = c.current_url().await?;
        let server = page.path().trim_start_matches("/servers/").trim_end_matches('/').to_owned();
        click(c, &format!("{row} button.open-preview")).await?;
        // The preview opens in a tab of its own.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let preview = loop {
            let handles = c.windows().await?;
            if let Some(h) = handles.into_iter().find(|h| *h != porta) {
                break h;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "no tab opened");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        c.switch_to_window(preview).await?;
        let want = format!("/p/{server}/{}/", app.port);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let url = c.current_url().await?;
            let body: String = c
                .execute("return document.body ? document.body.innerText : ''", vec![])
                .await?
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if url.path() == want && body.contains("\"x-forwarded-prefix\"") {
                assert_eq!(url.query(), None, "the ticket left the address: {url}");
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the preview did not load: {url} {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // The page's own WebSocket, at the path the app is served under.
        let echoed = c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 const ws = new WebSocket(location.href.replace(/^http/, 'ws') + 'ws');
                 ws.onopen = () => ws.send('reload?');
                 ws.onmessage = (m) => done(m.data);
                 ws.onerror = () => done('error');",
                vec![],
            )
            .await?;
        assert_eq!(echoed, serde_json::json!("echo: reload?"));
        // The page cannot read Porta's cookies (none reach it, and its own is HttpOnly).
        assert_eq!(c.execute("return document.cookie", vec![]).await?, serde_json::json!("app_session=1"));
        c.close_window().await?;
        c.switch_to_window(porta).await?;
        Ok(())
    })
    .await
}

const FRAME_TEXT: &str = "document.querySelector('.preview-pane .preview-frame').contentDocument.body.innerText";
const FRAME_WINDOW: &str = "document.querySelector('.preview-pane .preview-frame').contentWindow";

/// The pane beside the editor: the app shown, reloaded after a save in the editor.
async fn a_pane(width: u32, height: u32, shot: &str) -> anyhow::Result<()> {
    let app = WebApp::start("127.0.0.1:0").await?;
    let ui = UiStack::start(&[], width, height).await?;
    let UiStack { browser, bridge, .. } = &ui;
    let file = bridge.dir.path().join("page.txt");
    std::fs::write(&file, "v1\n")?;
    let c = &browser.client;
    ui.on_server_page(shot, || async {
        tool(c, "button.ports-toggle").await?;
        click(c, &format!(".ports tr[data-port='{}'] button.show-preview", app.port)).await?;
        wait_for(c, ".preview-pane .preview-frame").await?;
        wait_js(c, &format!("{FRAME_TEXT}.includes('x-forwarded-prefix')"), "the pane never showed the app").await?;
        browser.screenshot(&format!("{shot}_pane")).await?;
        // A page that asks for its files from the root (as an app that assumes it is served at
        // `/`): the pane says what it needs; the app's own pages say nothing.
        assert_eq!(c.execute("return document.querySelector('.preview-rooted').hidden", vec![]).await?, true);
        // (Relative to the frame's own address: a script of the page would resolve it from the page's.)
        c.execute(&format!("const w = {FRAME_WINDOW}; w.location.href = w.location.pathname + 'rooted'"), vec![])
            .await?;
        let said = wait_text(c, ".preview-rooted", "/favicon.svg").await?;
        assert!(said.contains("PORTA_PREVIEW_DOMAIN"), "{said}");
        browser.screenshot(&format!("{shot}_rooted")).await?;
        let back = "w.location.href = w.location.pathname.replace(/rooted$/, '')";
        c.execute(&format!("const w = {FRAME_WINDOW}; {back}"), vec![]).await?;
        wait_js(c, &format!("{FRAME_TEXT}.includes('x-forwarded-prefix')"), "the app's root never came back").await?;
        wait_js(c, "document.querySelector('.preview-rooted').hidden", "the hint stayed").await?;
        let phone = width < 700;
        if !phone {
            // Beside it, a file saved in the editor reloads the app's page.
            click(c, ".ports-pane .panel-close").await?;
            c.execute(&format!("{FRAME_WINDOW}.portaMarker = 1;"), vec![]).await?;
            let row = ".files-entry[data-name='page.txt'] > button.files-name";
            wait_for(c, row).await?.click().await?;
            wait_for(c, ".editor-tab.active").await?;
            wait_for(c, ".editor-pane.active .editor-host .view-lines").await?.click().await?;
            type_keys(c, "more ").await?;
            wait_for(c, ".editor-tab.active.dirty").await?;
            chord(c, Key::Control, 's').await?;
            wait_for(c, ".editor-tab.active:not(.dirty)").await?;
            wait_js(
                c,
                &format!("{FRAME_WINDOW}.portaMarker === undefined && {FRAME_TEXT}.includes('x-forwarded-prefix')"),
                "the save did not reload the preview",
            )
            .await?;
            assert!(std::fs::read_to_string(&file)?.contains("more"));
        }
        click(c, ".preview-bar .panel-close").await?;
        wait_js(c, "document.querySelector('.preview-pane') === null", "the pane did not close").await?;
        // The pane looks at what a page loaded once more 3 s after it loaded: closed before
        // then, that must find nothing of the pane rather than fail (the page's errors are
        // checked at the end).
        tokio::time::sleep(Duration::from_millis(3500)).await;
        Ok(())
    })
    .await
}

/// The page's body text (in the frame entered, if any).
async fn body_text(c: &Client) -> anyhow::Result<String> {
    let v = c.execute("return document.body ? document.body.innerText : ''", vec![]).await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

/// Waits until the page's body says `what`.
async fn until_body(c: &Client, what: &str) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let body = body_text(c).await?;
        if body.contains(what) {
            return Ok(body);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the page never said {what:?}: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Previews at their own hosts (`*.porta.localhost`, which Chromium resolves to this machine,
/// and which is the same site as Porta at `porta.localhost`).
async fn at_its_own_host(width: u32, height: u32, shot: &str) -> anyhow::Result<()> {
    let app = WebApp::start("127.0.0.1:0").await?;
    let port = free_port()?;
    let (domain, porta) = (format!("porta.localhost:{port}"), format!("http://porta.localhost:{port}"));
    let env = [("PORTA_PREVIEW_DOMAIN", domain.as_str()), ("PORTA_ALLOWED_ORIGINS", porta.as_str())];
    let mut ui = UiStack::start_on(&format!("127.0.0.1:{port}"), &env, width, height).await?;
    ui.backend.url = porta.clone();
    let UiStack { browser, .. } = &ui;
    let c = &browser.client;
    ui.on_server_page(shot, || async {
        let server_page = c.current_url().await?;
        let server = server_page.path().trim_start_matches("/servers/").trim_end_matches('/').to_owned();
        let host = format!("{}--{server}.porta.localhost:{port}", app.port);
        tool(c, "button.ports-toggle").await?;
        let row = format!(".ports tr[data-port='{}']", app.port);
        click(c, &format!("{row} button.show-preview")).await?;
        // The pane shows the app at its own origin, at its root.
        let frame = wait_for(c, ".preview-pane .preview-frame").await?;
        frame.clone().enter_frame().await?;
        let seen = until_body(c, "x-forwarded-host").await?;
        assert!(seen.contains(&host) && !seen.contains("x-forwarded-prefix"), "{seen}");
        // Its pages cannot read Porta's API as the person: not across origins (no CORS), and at
        // their own origin the path is the app's.
        let across = c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 fetch(arguments[0] + '/api/auth/me', { credentials: 'include' })
                   .then(r => r.text().then(t => done('read ' + r.status + ' ' + t)), () => done('blocked'));",
                vec![serde_json::json!(porta)],
            )
            .await?;
        assert_eq!(across, serde_json::json!("blocked"));
        // (The browser logs the refusal: that one error is this test's, and expected.)
        let logged = browser.page_errors().await?;
        assert!(logged.iter().all(|e| e.contains("blocked by CORS policy")), "{logged:?}");
        let here = c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 fetch('/api/auth/me', { credentials: 'include' })
                   .then(r => done(r.status + ' ' + (r.headers.get('x-frame-options') || 'the app')), e => done('' + e));",
                vec![],
            )
            .await?;
        assert_eq!(here, serde_json::json!("404 the app"));
        assert_eq!(c.execute("return document.cookie", vec![]).await?, serde_json::json!("app_session=1"));
        c.enter_parent_frame().await?;
        browser.screenshot(&format!("{shot}_pane")).await?;
        click(c, ".preview-bar .panel-close").await?;

        // A public link with a password, made in the panel.
        click(c, &format!("{row} button.share-preview")).await?;
        let level = wait_for(c, ".share-form select.share-level").await?;
        level.select_by_value("public").await?;
        wait_for(c, ".share-form input.share-password").await?.send_keys("open sesame!").await?;
        click(c, ".share-form button.share-create").await?;
        let made = wait_for(c, ".share-made input.share-link").await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let link = loop {
            let v = made.prop("value").await?.unwrap_or_default();
            if !v.is_empty() {
                break v;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "no link was shown");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(link.starts_with(&format!("http://{host}/?porta_share=pvs_")), "{link}");
        wait_for(c, ".shares tr.share-row[data-level='public']").await?;
        browser.screenshot(&format!("{shot}_shared")).await?;
        // Whoever has it opens it after its password.
        c.goto(&link).await?;
        wait_for(c, "input[name=password]").await?.send_keys("open sesame!").await?;
        click(c, "button[type=submit]").await?;
        until_body(c, "x-forwarded-host").await?;
        // Revoked in the panel, it opens nothing.
        c.goto(server_page.as_str()).await?;
        tool(c, "button.ports-toggle").await?;
        click(c, ".shares tr.share-row[data-level='public'] button.revoke-share").await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while c.find(fantoccini::Locator::Css(".shares tr.share-row")).await.is_ok() {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the revoked share is still listed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        c.goto(&link).await?;
        until_body(c, "revoked").await?;
        // (Its 404 is logged: expected.)
        let logged = browser.page_errors().await?;
        assert!(logged.iter().all(|e| e.contains("404")), "{logged:?}");
        c.goto(server_page.as_str()).await?;
        wait_for(c, ".tab.active[data-state=live]").await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn on_a_desktop_a_preview_at_its_own_host_is_shown_shared_and_cannot_reach_porta() -> anyhow::Result<()> {
    at_its_own_host(1400, 900, "preview_host").await
}

#[tokio::test]
async fn on_a_phone_a_preview_at_its_own_host_is_shown_and_shared() -> anyhow::Result<()> {
    at_its_own_host(390, 844, "preview_host_phone").await
}

#[tokio::test]
async fn on_a_desktop_the_preview_pane_sits_beside_the_editor_and_reloads_on_save() -> anyhow::Result<()> {
    a_pane(1400, 900, "preview_pane").await
}

#[tokio::test]
async fn on_a_phone_the_preview_pane_covers_the_page() -> anyhow::Result<()> {
    a_pane(390, 844, "preview_pane_phone").await
}

#[tokio::test]
async fn on_a_desktop_a_port_is_listed_and_opened_in_a_tab() -> anyhow::Result<()> {
    a_preview(1400, 900, "ports").await
}

#[tokio::test]
async fn on_a_phone_the_same_works() -> anyhow::Result<()> {
    a_preview(390, 844, "ports_phone").await
}
