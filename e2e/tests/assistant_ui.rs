//! The assistant's panel in the browser, in headless Chromium against a real backend and
//! bridge and a scripted OpenAI-compatible model: an answer streams in and renders as
//! Markdown (HTML in it stays text), a code block goes into the editor at the cursor and into
//! the terminal without running, Stop ends a long answer, and an agent's file write waits for
//! Approve — the file changes only then, and not at all after Decline.

use std::time::Duration;

use fantoccini::{Client, Locator};
use porta_e2e::browser::{UiStack, click, editor_text, terminal_text, wait_for, wait_text};
use porta_e2e::llm::{Reply, ScriptedLlm};
use porta_e2e::{ADMIN_PASSWORD, Api};
use serde_json::json;

const SHORT: Duration = Duration::from_secs(30);

/// Types into the panel's message box (the element itself: the editor may take the focus
/// when it finishes loading) and sends.
async fn ask(c: &Client, text: &str) -> anyhow::Result<()> {
    wait_for(c, ".chat-input").await?.send_keys(text).await?;
    click(c, ".chat-send").await
}

/// Waits until the answer is complete (the Stop button goes away).
async fn wait_done(c: &Client) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + SHORT;
    loop {
        if c.find(Locator::Css(".chat-stop[hidden]")).await.is_ok()
            && c.find(Locator::Css(".chat-msg.assistant[data-state='streaming']")).await.is_err()
        {
            return Ok(());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the answer never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn answers_stream_into_the_panel_and_code_goes_to_the_editor_and_terminal() -> anyhow::Result<()> {
    let llm = ScriptedLlm::start().await?;
    let ui = UiStack::start(&[("PORTA_AI_BASE_URL", llm.url.as_str())], 1400, 900).await?;
    let UiStack { bridge, browser, .. } = &ui;
    let home = bridge.dir.path().to_owned();
    std::fs::write(home.join("notes.txt"), "first line\n")?;
    let c = &browser.client;
    ui.on_server_page("assistant_stream", || async {
        // A file open in the editor, to insert into.
        wait_for(c, ".files-entry[data-name='notes.txt'] > button.files-name").await?.click().await?;
        wait_for(c, ".editor-tab.active").await?;
        let path = home.join("notes.txt").to_string_lossy().into_owned();
        let deadline = tokio::time::Instant::now() + SHORT;
        while editor_text(c, &path).await?.is_none() {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the editor never loaded notes.txt");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        click(c, "button.chat-toggle").await?;
        wait_for(c, ".chat-input").await?;
        // The model answers: once the panel has asked, no word of one being out of reach.
        let note = wait_for(c, ".chat-unreachable[data-checked]").await?;
        assert!(!note.is_displayed().await?, "a reachable model is said to be unreachable");

        let answer = "Run **this**:\n\n```bash\necho ran-$((6*7))\n```\n\n<img src=x onerror=\"window.pwned=1\"> done.";
        llm.push(Reply::text(answer, 3, Duration::from_millis(30)));
        ask(c, "How do I count?").await?;
        // It arrives in pieces: the first words are there before the last.
        wait_text(c, ".chat-msg.assistant .chat-md", "Run").await?;
        wait_done(c).await?;
        let shown = wait_text(c, ".chat-msg.assistant .chat-md", "done.").await?;
        assert!(shown.contains("<img src=x"), "HTML in an answer is shown as text: {shown}");
        assert_eq!(c.execute("return window.pwned === undefined;", vec![]).await?, json!(true), "nothing ran");
        let strong = c.find(Locator::Css(".chat-msg.assistant .chat-md strong")).await?;
        assert_eq!(strong.text().await?, "this");
        wait_text(c, ".chat-code[data-lang='bash'] code", "echo ran-$((6*7))").await?;
        browser.screenshot("assistant").await?;

        // Insert: at the editor's cursor (the start of the file).
        click(c, ".chat-code .chat-insert").await?;
        let deadline = tokio::time::Instant::now() + SHORT;
        loop {
            let text = editor_text(c, &path).await?.unwrap_or_default();
            if text.contains("echo ran-$((6*7))\nfirst line") {
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the code never reached the editor: {text:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(std::fs::read_to_string(home.join("notes.txt"))?, "first line\n", "inserting does not save");

        // As a diff: shown against what was there; Undo takes it back out.
        let before = editor_text(c, &path).await?.unwrap_or_default();
        click(c, ".chat-code .chat-propose").await?;
        wait_text(c, ".editor-pane.active .editor-comparing", "with the assistant's code").await?;
        let proposed = editor_text(c, &path).await?.unwrap_or_default();
        assert_eq!(proposed.matches("echo ran-$((6*7))").count(), 2, "{proposed:?}");
        click(c, ".editor-pane.active .proposal-undo").await?;
        let deadline = tokio::time::Instant::now() + SHORT;
        while editor_text(c, &path).await?.unwrap_or_default() != before {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "Undo did not take the code back out");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // Run in terminal: pasted at the prompt, not run.
        click(c, ".chat-code .chat-run").await?;
        let deadline = tokio::time::Instant::now() + SHORT;
        loop {
            let text = terminal_text(c).await?;
            if text.contains("echo ran-$((6*7))") {
                assert!(!text.contains("ran-42"), "the command ran without the person: {text}");
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the command never reached the terminal: {text}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // Stop: a long answer ends where it was.
        let long = "word ".repeat(600);
        llm.push(Reply::text(&long, 5, Duration::from_millis(20)));
        ask(c, "Say a lot.").await?;
        wait_text(c, ".chat-msg.assistant .chat-md", "word word word").await?;
        click(c, ".chat-stop:not([hidden])").await?;
        wait_done(c).await?;
        wait_text(c, ".chat-msg.assistant[data-state='stopped'] .chat-notice", "Stopped.").await?;
        let kept = c.find(Locator::Css(".chat-msg.assistant[data-state='stopped'] .chat-md")).await?.text().await?;
        assert!(kept.len() < long.trim().len(), "stopped early: {} of {}", kept.len(), long.len());

        // The conversation is in the history, and comes back after a reload.
        c.refresh().await?;
        click(c, "button.chat-toggle").await?;
        click(c, ".chat-history-toggle").await?;
        click(c, ".chat-item .chat-open").await?;
        wait_text(c, ".chat-msg.assistant .chat-md", "done.").await?;
        wait_text(c, ".chat-msg.user", "How do I count?").await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn an_agents_write_happens_only_after_approve() -> anyhow::Result<()> {
    let llm = ScriptedLlm::start().await?;
    let ui = UiStack::start(&[("PORTA_AI_BASE_URL", llm.url.as_str())], 1400, 900).await?;
    let UiStack { backend, bridge, browser } = &ui;
    let home = bridge.dir.path().to_owned();
    let file = home.join("app.py");
    std::fs::write(&file, "print('old')\n")?;
    let path = file.to_string_lossy().into_owned();
    let api = Api::login(&backend.url, "admin", ADMIN_PASSWORD).await?;
    let v = api.graphql("{ servers { workspaceId } }", json!({})).await?;
    let workspace = v["data"]["servers"][0]["workspaceId"].as_str().unwrap_or_default().to_owned();
    let q =
        "mutation($w: String!) { createAgent(workspaceId: $w, template: \"backend-developer\", name: \"dev\") { id } }";
    let v = api.graphql(q, json!({ "w": workspace })).await?;
    let agent = v["data"]["createAgent"]["id"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!agent.is_empty(), "{v}");
    let c = &browser.client;
    let result = ui.on_server_page("assistant_approval", || async {
        click(c, "button.chat-toggle").await?;
        wait_for(c, &format!(".chat-agent option[value='{agent}']")).await?;
        c.execute(
            "const s = document.querySelector('.chat-agent'); s.value = arguments[0]; s.dispatchEvent(new Event('change'));",
            vec![json!(agent)],
        )
        .await?;

        llm.push(Reply::tool("w1", "write_file", json!({ "path": path, "content": "print('new')\n" })));
        llm.push(Reply::text("Changed it.", 5, Duration::ZERO));
        ask(c, "Make it print new.").await?;
        // The change waits, showing its diff; nothing is written yet.
        wait_for(c, ".chat-call[data-decision='pending'] .chat-approve").await?;
        let diff = wait_text(c, ".chat-call[data-decision='pending'] .chat-call-detail", "+print('new')").await?;
        assert!(diff.contains("-print('old')"), "{diff}");
        wait_for(c, ".chat-call-detail .add").await?;
        browser.screenshot("assistant-approval").await?;
        assert_eq!(std::fs::read_to_string(&file)?, "print('old')\n");
        click(c, ".chat-call[data-decision='pending'] .chat-approve").await?;
        wait_text(c, ".chat-msg.assistant .chat-md", "Changed it.").await?;
        assert_eq!(std::fs::read_to_string(&file)?, "print('new')\n");
        wait_for(c, ".chat-call[data-decision='approved']").await?;

        // Declined: the file stays as it is.
        llm.push(Reply::tool("w2", "write_file", json!({ "path": path, "content": "print('worse')\n" })));
        llm.push(Reply::text("Left it alone.", 5, Duration::ZERO));
        ask(c, "Make it worse.").await?;
        click(c, ".chat-call[data-decision='pending'] .chat-decline").await?;
        wait_text(c, ".chat-msg.assistant .chat-md", "Left it alone.").await?;
        wait_for(c, ".chat-call[data-decision='declined']").await?;
        assert_eq!(std::fs::read_to_string(&file)?, "print('new')\n", "a declined write changes nothing");

        // A command the workspace's policy blocks is not even offered for approval; the page
        // says why (dd onto /dev/null: harmless, but named by the "writes a device" rule).
        llm.push(Reply::tool("c1", "run_command", json!({ "command": "sudo dd if=/dev/zero of=/dev/null count=1" })));
        llm.push(Reply::text("The policy stopped it.", 5, Duration::ZERO));
        ask(c, "Wipe the disk.").await?;
        wait_text(c, ".chat-call[data-decision='blocked'] .chat-call-policy", "writes a device").await?;
        wait_text(c, ".chat-call[data-decision='blocked'] .chat-call-decision", "blocked by the command policy").await?;
        wait_text(c, ".chat-msg.assistant .chat-md", "The policy stopped it.").await?;
        Ok(())
    })
    .await;
    // On the record.
    let log = api.graphql("{ auditLog(action: \"agent.write_file\") { result detail } }", json!({})).await?;
    let events = log["data"]["auditLog"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 1, "only the approved write ran: {log}");
    assert_eq!(events[0]["result"], "ok");
    result
}

#[tokio::test]
async fn a_team_admin_chooses_the_model_and_manages_agents() -> anyhow::Result<()> {
    let llm = ScriptedLlm::start().await?;
    // The operator allows the model server on loopback (nothing else there is reachable).
    let endpoint = llm.url.trim_start_matches("http://").split('/').next().unwrap_or_default().to_owned();
    let ui = UiStack::start(&[("PORTA_OUTBOUND_ALLOW", endpoint.as_str())], 1400, 1000).await?;
    let UiStack { backend, browser, .. } = &ui;
    let api = Api::login(&backend.url, "admin", ADMIN_PASSWORD).await?;
    let team = api.own_team().await?;
    let c = &browser.client;
    ui.signed_in("assistant_settings", || async {
        c.goto(&format!("{}/teams/{team}", backend.url)).await?;
        let section = ".workspace-assistant";
        wait_for(c, &format!("{section} .base-url")).await?;
        // Point the workspace at the model server; the test lists its models.
        c.execute(
            "const i = document.querySelector(arguments[0]); i.value = arguments[1]; i.dispatchEvent(new Event('input'));",
            vec![json!(format!("{section} .base-url")), json!(llm.url)],
        )
        .await?;
        click(c, &format!("{section} .test-provider")).await?;
        wait_text(c, &format!("{section} .provider-status"), "Connected: 2 models").await?;
        click(c, &format!("{section} .model-choice")).await?;
        wait_for(c, &format!("{section} .api-key")).await?.send_keys("sk-ui-secret-4321").await?;
        click(c, &format!("{section} .save-provider")).await?;
        wait_text(c, &format!("{section} .provider-status"), "Saved.").await?;
        let v = api.graphql("{ servers { workspaceId } }", json!({})).await?;
        let ws = v["data"]["servers"][0]["workspaceId"].as_str().unwrap_or_default().to_owned();
        let v = api.graphql("query($w: String!) { aiProvider(workspaceId: $w) { baseUrl model apiKeyHint } }", json!({ "w": ws })).await?;
        assert_eq!(v["data"]["aiProvider"], json!({ "baseUrl": llm.url, "model": "scripted-large", "apiKeyHint": "…4321" }), "{v}");
        assert!(llm.requests().iter().all(|r| r.authorization.is_none()), "the test before saving sent no key");

        // An agent from a template; it may write without asking once allowed.
        c.execute(
            "const s = document.querySelector(arguments[0]); s.value = 'qa'; s.dispatchEvent(new Event('change'));",
            vec![json!(format!("{section} .agent-template"))],
        )
        .await?;
        click(c, &format!("{section} .make-agent")).await?;
        wait_for(c, &format!("{section} tr.agent[data-name='qa'][data-status='idle']")).await?;
        click(c, &format!("{section} tr.agent[data-name='qa'] .auto-write_file")).await?;
        let deadline = tokio::time::Instant::now() + SHORT;
        loop {
            let v = api.graphql("query($w: String!) { agents(workspaceId: $w) { name autoApprove } }", json!({ "w": ws })).await?;
            if v["data"]["agents"][0]["autoApprove"].as_array().is_some_and(|a| a.iter().any(|t| t == "write_file")) {
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "write_file was never allowed: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        click(c, &format!("{section} tr.agent[data-name='qa'] .toggle")).await?;
        wait_for(c, &format!("{section} tr.agent[data-name='qa'][data-status='disabled']")).await?;
        click(c, &format!("{section} tr.agent[data-name='qa'] .history")).await?;
        wait_text(c, &format!("{section} .agent-history h5"), "0 in all").await?;
        browser.screenshot("assistant-settings").await?;
        Ok(())
    })
    .await
}

/// With no model reachable, the panel says so (and where to set one) as it opens, before
/// anyone types a question that could not be answered.
#[tokio::test]
async fn the_panel_says_when_no_model_is_reachable_before_anyone_types() -> anyhow::Result<()> {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let url = format!("http://127.0.0.1:{closed}/v1");
    let ui = UiStack::start(&[("PORTA_AI_BASE_URL", url.as_str())], 1400, 900).await?;
    let UiStack { browser, .. } = &ui;
    let c = &browser.client;
    ui.on_server_page("assistant_unreachable", || async {
        click(c, "button.chat-toggle").await?;
        let note = wait_text(c, ".chat-unreachable:not([hidden])", "No model is reachable").await?;
        assert!(note.contains("team page"), "{note}");
        Ok(())
    })
    .await
}
