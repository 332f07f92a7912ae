//! "Run and preview" in headless Chromium, at a desktop's size and a phone's: a project's run
//! (a command and a port) is set on the dashboard, with a bad port refused there; one click
//! opens the server's page with a terminal named for the project running the command in its
//! folder, and the preview pane, which says nothing listens yet and shows the app once it
//! does, without anyone reloading it. On the server's page itself, "Run" does the same (a list
//! to choose from when several projects run there), and shows a project already running
//! rather than starting it twice; a project given a run in another tab is offered there when
//! the page is looked at again.

use std::time::Duration;

use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use porta_e2e::browser::{UiStack, click, terminal_text, tool, type_keys, wait_for, wait_js, wait_text};
use porta_e2e::{ADMIN_PASSWORD, Api, free_port};
use serde_json::json;

const FRAME_TEXT: &str = "document.querySelector('.preview-pane .preview-frame').contentDocument.body.innerText";

/// The preview frame's text, once it contains `needle` (within `within`).
async fn frame_text(c: &Client, needle: &str, within: Duration) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let v = c.execute(&format!("try {{ return {FRAME_TEXT}; }} catch (e) {{ return ''; }}"), vec![]).await?;
        let text = v.as_str().unwrap_or_default().to_owned();
        if text.contains(needle) {
            return Ok(text);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the preview never said {needle:?}; it said {text:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn run_and_preview(width: u32, height: u32, shot: &str) -> anyhow::Result<()> {
    let ui = UiStack::start(&[], width, height).await?;
    let UiStack { backend, bridge, browser } = &ui;
    let api = Api::login(&backend.url, "admin", ADMIN_PASSWORD).await?;
    let v = api.graphql("{ servers { id workspaceId } }", json!({})).await?;
    let (server, ws) = (v["data"]["servers"][0]["id"].clone(), v["data"]["servers"][0]["workspaceId"].clone());
    // The app's folder, with a page of its own, inside the bridge's folder.
    let folder = bridge.dir.path().join("work/site");
    let create = "mutation($w: String!, $s: String!, $p: String) { createProject(workspaceId: $w, serverId: $s, name: \"site\", path: $p) { id } }";
    let v = api.graphql(create, json!({ "w": ws, "s": server, "p": folder.to_string_lossy() })).await?;
    anyhow::ensure!(v["errors"].is_null(), "{v}");
    std::fs::write(
        folder.join("index.html"),
        "<!doctype html><title>site</title><h1>Served from the site folder</h1>",
    )?;
    let port = free_port()?;
    let c = &browser.client;
    ui.signed_in(shot, || async {
        let row = "li.project[data-name=site]";
        wait_for(c, &format!("{row} button.project-run-settings")).await?.click().await?;
        assert!(c.find(Locator::Css(&format!("{row} button.project-run"))).await.is_err(), "no run without a port");
        // The app takes a while to start, as dev servers do.
        let command = format!("sleep 5; python3 -m http.server {port} --bind 127.0.0.1");
        wait_for(c, &format!("{row} input[name=run-command]")).await?.send_keys(&command).await?;
        let port_field = wait_for(c, &format!("{row} input[name=run-port]")).await?;
        port_field.send_keys("99999").await?;
        c.find(Locator::Css(&format!("{row} .run-settings button[type=submit]"))).await?.click().await?;
        wait_text(c, &format!("{row} .run-settings .error"), "1 to 65535").await?;
        let v = api.graphql("query($w: String!) { projects(workspaceId: $w) { runPort } }", json!({ "w": ws })).await?;
        assert!(v["data"]["projects"][0]["runPort"].is_null(), "nothing was saved: {v}");
        port_field.clear().await?;
        port_field.send_keys(&port.to_string()).await?;
        c.find(Locator::Css(&format!("{row} .run-settings button[type=submit]"))).await?.click().await?;
        let run = wait_for(c, &format!("{row} button.project-run")).await?;
        let says = run.attr("title").await?.unwrap_or_default();
        assert!(says.contains(&command) && says.contains(&format!("port {port}")), "it says what runs: {says}");
        browser.screenshot(&format!("{shot}_dashboard")).await?;
        run.click().await?;

        // The server's page: a terminal named for the project, in its folder, running it.
        wait_text(c, ".tabs .tab.active .tab-name", "run: site").await?;
        wait_for(c, ".preview-pane .preview-frame").await?;
        // Until it listens the pane says so, and tries again by itself.
        frame_text(c, "Nothing is listening", Duration::from_secs(20)).await?;
        browser.screenshot(&format!("{shot}_waiting")).await?;
        let text = match frame_text(c, "Served from the site folder", Duration::from_secs(60)).await {
            Ok(text) => text,
            Err(e) => anyhow::bail!("{e}; the terminal shows:\n{}", terminal_text(c).await.unwrap_or_default()),
        };
        assert!(!text.contains("Nothing is listening"), "{text}");
        browser.screenshot(&format!("{shot}_running")).await?;
        let v = api.graphql("{ auditLog(action: \"project.run\") { detail } }", json!({})).await?;
        assert!(v.to_string().contains(&format!("site: {command} on port {port}")), "{v}");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_project_runs_and_is_previewed_in_one_click_on_a_desktop() -> anyhow::Result<()> {
    run_and_preview(1280, 900, "run_preview_desktop").await
}

#[tokio::test]
async fn a_project_runs_and_is_previewed_in_one_click_on_a_phone() -> anyhow::Result<()> {
    run_and_preview(390, 844, "run_preview_phone").await
}

/// Two projects that say how they run, each serving a page of its own from its folder: their
/// ports, in order.
async fn two_runnable_projects(api: &Api, bridge_dir: &std::path::Path) -> anyhow::Result<[u16; 2]> {
    let v = api.graphql("{ servers { id workspaceId } }", json!({})).await?;
    let (server, ws) = (v["data"]["servers"][0]["id"].clone(), v["data"]["servers"][0]["workspaceId"].clone());
    let mut ports = [0; 2];
    for (i, name) in ["site", "notes"].into_iter().enumerate() {
        let folder = bridge_dir.join("work").join(name);
        let create = "mutation($w: String!, $s: String!, $n: String!, $p: String) { createProject(workspaceId: $w, serverId: $s, name: $n, path: $p) { id } }";
        let v = api.graphql(create, json!({ "w": ws, "s": server, "n": name, "p": folder.to_string_lossy() })).await?;
        let id = v["data"]["createProject"]["id"].clone();
        anyhow::ensure!(id.is_string(), "{v}");
        std::fs::write(folder.join("index.html"), format!("<!doctype html><h1>The {name} page</h1>"))?;
        ports[i] = free_port()?;
        let command = format!("python3 -m http.server {} --bind 127.0.0.1", ports[i]);
        let set =
            "mutation($id: String!, $c: String, $p: Int) { setProjectRun(id: $id, command: $c, port: $p) { id } }";
        let v = api.graphql(set, json!({ "id": id, "c": command, "p": ports[i] })).await?;
        anyhow::ensure!(v["errors"].is_null(), "{v}");
    }
    Ok(ports)
}

async fn run_on_the_server_page(width: u32, height: u32, shot: &str) -> anyhow::Result<()> {
    let ui = UiStack::start(&[], width, height).await?;
    let UiStack { backend, bridge, browser } = &ui;
    let api = Api::login(&backend.url, "admin", ADMIN_PASSWORD).await?;
    let [_, notes] = two_runnable_projects(&api, bridge.dir.path()).await?;
    let c = &browser.client;
    ui.on_server_page(shot, || async {
        wait_for(c, ".toolbar .run-project:not([hidden])").await?;
        // Two projects run here: "Run" asks which.
        tool(c, "button.run-toggle").await?;
        let choice = ".run-choices button.run-choice[data-name=notes]";
        let says = wait_for(c, choice).await?.attr("title").await?.unwrap_or_default();
        assert!(says.contains(&format!("port {notes}")), "it says what runs: {says}");
        browser.screenshot(&format!("{shot}_choices")).await?;
        click(c, choice).await?;
        wait_text(c, ".tabs .tab.active .tab-name", "run: notes").await?;
        wait_for(c, ".preview-pane .preview-frame").await?;
        let text = match frame_text(c, "The notes page", Duration::from_secs(60)).await {
            Ok(text) => text,
            Err(e) => anyhow::bail!("{e}; the terminal shows:\n{}", terminal_text(c).await.unwrap_or_default()),
        };
        assert!(!text.contains("site"), "{text}");
        browser.screenshot(&format!("{shot}_running")).await?;
        // Asked again (from another tab, the pane closed): the same terminal is shown and the
        // pane opened again; no second copy of the app starts.
        let tabs = "return [...document.querySelectorAll('.tabs .tab .tab-name')].map(t => t.textContent.trim())";
        let before = c.execute(tabs, vec![]).await?;
        click(c, ".preview-bar .panel-close").await?;
        wait_js(c, "document.querySelector('.preview-pane') === null", "the pane did not close").await?;
        click(c, ".tabs .tab:not(.active) .tab-name").await?;
        tool(c, "button.run-toggle").await?;
        click(c, choice).await?;
        wait_text(c, ".tabs .tab.active .tab-name", "run: notes").await?;
        frame_text(c, "The notes page", Duration::from_secs(20)).await?;
        assert_eq!(c.execute(tabs, vec![]).await?, before, "no new terminal");
        // A click elsewhere closes the list unchosen.
        click(c, ".preview-bar .panel-close").await?;
        wait_js(c, "document.querySelector('.preview-pane') === null", "the pane did not close").await?;
        tool(c, "button.run-toggle").await?;
        wait_for(c, ".run-choices").await?;
        let elsewhere = "document.querySelector('.panes').dispatchEvent(new MouseEvent('click', { bubbles: true }))";
        c.execute(elsewhere, vec![]).await?;
        wait_js(c, "document.querySelector('.run-choices') === null", "the list stayed open").await?;
        // Escape closes it too, and gives the focus back to the button.
        tool(c, "button.run-toggle").await?;
        wait_for(c, ".run-choices").await?;
        type_keys(c, &char::from(Key::Escape).to_string()).await?;
        wait_js(c, "document.querySelector('.run-choices') === null", "Escape left the list open").await?;
        let focused = "document.activeElement && document.activeElement.classList.contains('run-toggle')";
        wait_js(c, focused, "the focus did not come back to Run").await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn on_the_server_page_a_project_is_chosen_run_and_shown_once_on_a_desktop() -> anyhow::Result<()> {
    run_on_the_server_page(1280, 900, "run_server_page_desktop").await
}

#[tokio::test]
async fn on_the_server_page_a_project_is_chosen_run_and_shown_once_on_a_phone() -> anyhow::Result<()> {
    run_on_the_server_page(390, 844, "run_server_page_phone").await
}

/// "Run" learns of a project given a run elsewhere (the dashboard, in another tab) when the
/// server's page is looked at again, without a reload.
#[tokio::test]
async fn a_project_given_a_run_elsewhere_is_offered_when_the_page_is_looked_at_again() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1280, 900).await?;
    let UiStack { backend, bridge, browser } = &ui;
    let api = Api::login(&backend.url, "admin", ADMIN_PASSWORD).await?;
    let c = &browser.client;
    ui.on_server_page("run_learned", || async {
        wait_for(c, ".toolbar .run-project[hidden]").await?;
        two_runnable_projects(&api, bridge.dir.path()).await?;
        // The tab comes back into view (as after the person looked at the dashboard's tab).
        c.execute("document.dispatchEvent(new Event('visibilitychange', { bubbles: true }))", vec![]).await?;
        wait_for(c, ".toolbar .run-project:not([hidden])").await?;
        tool(c, "button.run-toggle").await?;
        wait_for(c, ".run-choices button.run-choice[data-name=notes]").await?;
        Ok(())
    })
    .await
}
