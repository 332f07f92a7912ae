//! The assistant through the full path, against a scripted OpenAI-compatible model server:
//! a workspace's provider (key sealed, connection test), answers streamed to a watching socket
//! and saved as they grow, stop, a reload that picks the stream up where it is, and an agent
//! whose file write waits for the person's approval — written only when approved, audited,
//! and left untouched when declined. Conversations are listed, searched, renamed, exported
//! and deleted; bad input is refused clearly.

use std::collections::HashMap;
use std::time::Duration;

use porta_e2e::chat::{self, finished, follow, watch};
use porta_e2e::llm::{Reply, ScriptedLlm};
use porta_e2e::{Stack, Ws};
use porta_shared::client::{ChatUnwatch, ChatWatch, ClientEvent};
use serde_json::{Value, json};

struct Setup {
    stack: Stack,
    llm: ScriptedLlm,
    workspace: String,
    root: tempfile::TempDir,
}

async fn setup() -> anyhow::Result<Setup> {
    let root = tempfile::tempdir()?;
    let path = root.path().to_string_lossy().into_owned();
    let llm = ScriptedLlm::start().await?;
    let stack = Stack::start(
        &[("PORTA_AI_BASE_URL", llm.url.as_str()), ("PORTA_AI_MODEL", "scripted-small")],
        &["--root", &path],
    )
    .await?;
    let v = stack.api.graphql("{ servers { id workspaceId } }", json!({})).await?;
    let workspace = v["data"]["servers"][0]["workspaceId"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!workspace.is_empty(), "{v}");
    Ok(Setup { stack, llm, workspace, root })
}

fn code(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

async fn send(s: &Setup, input: Value) -> anyhow::Result<String> {
    chat::send(&s.stack.api, input).await
}

async fn conversation(s: &Setup, id: &str) -> anyhow::Result<Value> {
    chat::conversation(&s.stack.api, id).await
}

#[tokio::test]
async fn a_workspace_chooses_its_model_and_the_key_stays_sealed() -> anyhow::Result<()> {
    let s = setup().await?;
    let api = &s.stack.api;
    let q = "query($w: String!) { aiProvider(workspaceId: $w) { baseUrl model apiKeyHint chosen } }";
    let v = api.graphql(q, json!({ "w": s.workspace })).await?;
    assert_eq!(
        v["data"]["aiProvider"],
        json!({ "baseUrl": s.llm.url, "model": "scripted-small", "apiKeyHint": null, "chosen": false })
    );

    // The connection test lists the models.
    let test =
        "mutation($w: String!, $u: String, $k: String) { testAiProvider(workspaceId: $w, baseUrl: $u, apiKey: $k) }";
    let v = api.graphql(test, json!({ "w": s.workspace })).await?;
    assert_eq!(v["data"]["testAiProvider"], json!(["scripted-large", "scripted-small"]), "{v}");
    let v = api.graphql(test, json!({ "w": s.workspace, "u": "http://127.0.0.1:9/v1" })).await?;
    assert_eq!(code(&v), "forbidden", "only the operator's own endpoint is reachable on loopback: {v}");
    assert!(v["errors"][0]["message"].as_str().unwrap_or_default().contains("PORTA_OUTBOUND_ALLOW"), "{v}");
    let v = api.graphql(test, json!({ "w": s.workspace, "u": "http://198.51.100.1:9/v1" })).await?;
    assert_eq!(code(&v), "forbidden", "documentation addresses are refused too: {v}");

    // Saved with a key: the key is sent to the provider, shown only as its last characters,
    // and not in the database's file in the clear.
    let set = "mutation($w: String!, $u: String!, $m: String!, $k: String) {
        setAiProvider(workspaceId: $w, baseUrl: $u, model: $m, apiKey: $k) { baseUrl model apiKeyHint chosen } }";
    let key = "sk-test-0123456789-secret-9876";
    let v = api
        .graphql(set, json!({ "w": s.workspace, "u": format!("{}/", s.llm.url), "m": "scripted-large", "k": key }))
        .await?;
    assert_eq!(
        v["data"]["setAiProvider"],
        json!({ "baseUrl": s.llm.url, "model": "scripted-large", "apiKeyHint": "…9876", "chosen": true }),
        "{v}"
    );
    api.graphql(test, json!({ "w": s.workspace })).await?;
    let sent = s.llm.requests().last().and_then(|r| r.authorization.clone());
    assert_eq!(sent.as_deref(), Some(format!("Bearer {key}").as_str()));
    if s.stack.backend.database.is_none() {
        let db = std::fs::read(s.stack.backend.data.path().join("porta.db"))?;
        assert!(!db.windows(key.len()).any(|w| w == key.as_bytes()), "the key is in the database in the clear");
    }
    let stored: Vec<(String, String)> = sqlx::query_as("SELECT api_key_sealed, api_key_hint FROM ai_providers")
        .fetch_all(&s.stack.backend.database_pool().await?)
        .await?;
    assert!(!stored.is_empty() && stored.iter().all(|(sealed, hint)| !sealed.contains(key) && !hint.contains(key)));
    let log = api.graphql("{ auditLog(action: \"ai.provider\") { detail target } }", json!({})).await?;
    assert!(
        !log.to_string().contains(key)
            && log["data"]["auditLog"][0]["detail"].as_str().is_some_and(|d| d.contains("with a key")),
        "{log}"
    );

    // Keeping the key while changing the model; bad URLs refused with a reason.
    let v = api.graphql(set, json!({ "w": s.workspace, "u": s.llm.url, "m": "scripted-small" })).await?;
    assert_eq!(v["data"]["setAiProvider"]["apiKeyHint"], "…9876", "{v}");
    for (url, says) in [("ftp://x/v1", "http"), ("https://u:pw@host/v1", "own field"), ("http://h/v1?k=1", "query")] {
        let v = api.graphql(set, json!({ "w": s.workspace, "u": url, "m": "m" })).await?;
        assert_eq!(code(&v), "bad_request", "{url}: {v}");
        assert!(v["errors"][0]["message"].as_str().unwrap_or_default().contains(says), "{url}: {v}");
    }
    let v = api.graphql(set, json!({ "w": s.workspace, "u": s.llm.url, "m": " " })).await?;
    assert_eq!(code(&v), "bad_request");
    Ok(())
}

#[tokio::test]
async fn answers_stream_stop_and_survive_a_reload() -> anyhow::Result<()> {
    let s = setup().await?;
    let mut ws = s.stack.api.ws().await?;

    // An answer streams piece by piece to the watcher and is saved whole.
    let answer = "Here is how:\n\n```bash\nsystemctl restart nginx\n```\n\nThat restarts it.";
    s.llm.push(Reply::text(answer, 4, Duration::from_millis(20)));
    let input = json!({
        "workspaceId": s.workspace, "serverId": s.stack.server_id, "text": "How do I restart nginx?",
        "context": [{ "kind": "file", "name": "/etc/nginx/nginx.conf", "text": "worker_processes 4;" }],
    });
    let id = send(&s, input).await?;
    let mut texts = HashMap::new();
    watch(&mut ws, &id, &mut texts).await?;
    follow(&mut ws, &id, &mut texts, finished).await?;
    let c = conversation(&s, &id).await?;
    let messages = c["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(messages.len(), 2, "{c}");
    assert_eq!((messages[1]["content"].as_str(), messages[1]["state"].as_str()), (Some(answer), Some("done")));
    assert_eq!(texts.get(&messages[1]["id"].as_i64().unwrap_or_default()).map(String::as_str), Some(answer));
    assert_eq!(c["conversation"]["title"], "How do I restart nginx?");
    assert_eq!(messages[0]["attachments"], json!([{ "kind": "file", "name": "/etc/nginx/nginx.conf", "chars": 19 }]));
    // The model was told where the person is and what they attached.
    let req = s.llm.requests().last().map(|r| r.body.clone()).unwrap_or_default();
    assert_eq!(req["stream"], true);
    let system = req["messages"][0]["content"].as_str().unwrap_or_default();
    assert!(system.contains("server") && system.contains("Porta"), "{system}");
    let user = req["messages"][1]["content"].as_str().unwrap_or_default();
    assert!(user.contains("worker_processes 4;") && user.ends_with("How do I restart nginx?"), "{user}");
    assert!(req["tools"].is_null(), "the plain assistant has no tools");

    // A follow-up carries the history; stop ends it early and keeps what was written.
    let long = "word ".repeat(400);
    s.llm.push(Reply::text(&long, 5, Duration::from_millis(15)));
    send(&s, json!({ "conversationId": id, "text": "Tell me more." })).await?;
    follow(&mut ws, &id, &mut texts, |e| matches!(e, ClientEvent::ChatDelta(d) if d.offset > 50)).await?;
    let v = s.stack.api.graphql("mutation($c: String!) { stopChat(conversationId: $c) }", json!({ "c": id })).await?;
    assert_eq!(v["data"]["stopChat"], true, "{v}");
    follow(&mut ws, &id, &mut texts, finished).await?;
    let c = conversation(&s, &id).await?;
    let last = &c["messages"][3];
    assert_eq!(last["state"], "stopped", "{c}");
    let kept = last["content"].as_str().unwrap_or_default();
    assert!(
        kept.len() > 50 && kept.len() < long.len() && long.starts_with(kept),
        "kept {} of {}",
        kept.len(),
        long.len()
    );
    let req = s.llm.requests().last().map(|r| r.body.clone()).unwrap_or_default();
    assert_eq!(req["messages"][2]["content"], answer, "the history went with the follow-up");
    let v = s.stack.api.graphql("mutation($c: String!) { stopChat(conversationId: $c) }", json!({ "c": id })).await?;
    assert_eq!(v["data"]["stopChat"], false, "nothing left to stop");

    // A reload: a new socket mid-answer gets the text so far, then the rest.
    let slow = "one two three four five six seven eight nine ten ".repeat(10);
    s.llm.push(Reply::text(&slow, 10, Duration::from_millis(30)));
    send(&s, json!({ "conversationId": id, "text": "Count." })).await?;
    follow(&mut ws, &id, &mut texts, |e| matches!(e, ClientEvent::ChatDelta(d) if d.offset > 100)).await?;
    ws.call(ChatUnwatch { conversation: id.clone() }).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    ws.close().await;
    // The growing answer is saved now and then: wait for the first save.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mid = loop {
        let mid = conversation(&s, &id).await?;
        if mid["messages"][5]["content"].as_str().is_some_and(|t| !t.is_empty()) {
            break mid;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the growing answer was never saved: {mid}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(mid["conversation"]["running"], true, "{mid}");
    let saved = mid["messages"][5]["content"].as_str().unwrap_or_default().to_owned();
    assert!(!saved.is_empty() && slow.starts_with(&saved), "a growing answer is saved: {saved:?}");
    let mut again = s.stack.api.ws().await?;
    let mut texts = HashMap::new();
    watch(&mut again, &id, &mut texts).await?;
    follow(&mut again, &id, &mut texts, finished).await?;
    let done = conversation(&s, &id).await?;
    let m = &done["messages"][5];
    assert_eq!((m["content"].as_str(), m["state"].as_str()), (Some(slow.as_str()), Some("done")));
    assert_eq!(texts.get(&m["id"].as_i64().unwrap_or_default()).map(String::as_str), Some(slow.as_str()));

    // One answer at a time; a provider's error is shown on the message.
    s.llm.push(Reply::text("slow", 1, Duration::from_millis(300)));
    send(&s, json!({ "conversationId": id, "text": "Again." })).await?;
    let q = "mutation($i: ChatInput!) { sendChatMessage(input: $i) { conversation { id } } }";
    let v = s.stack.api.graphql(q, json!({ "i": { "conversationId": id, "text": "And again." } })).await?;
    assert_eq!(code(&v), "conflict", "{v}");
    follow(&mut again, &id, &mut texts, finished).await?;
    s.llm.push(Reply::Error(404, "model \"scripted-large\" not found".into()));
    send(&s, json!({ "conversationId": id, "text": "Once more." })).await?;
    follow(&mut again, &id, &mut texts, finished).await?;
    let c = conversation(&s, &id).await?;
    let last = c["messages"].as_array().and_then(|m| m.last().cloned()).unwrap_or_default();
    assert_eq!(last["state"], "failed");
    assert!(last["error"].as_str().unwrap_or_default().contains("not found"), "{last}");

    // Listed, searched, renamed, exported, deleted.
    let list = "query($s: String) { conversations(search: $s) { id title } }";
    let v = s.stack.api.graphql(list, json!({ "s": "RESTART" })).await?;
    assert_eq!(v["data"]["conversations"][0]["id"], id.as_str(), "{v}");
    let v = s.stack.api.graphql(list, json!({ "s": "systemctl" })).await?;
    assert_eq!(v["data"]["conversations"].as_array().map(Vec::len), Some(1), "found by an answer's text: {v}");
    let v = s.stack.api.graphql(list, json!({ "s": "no such words" })).await?;
    assert_eq!(v["data"]["conversations"], json!([]));
    let v = s
        .stack
        .api
        .graphql("mutation($c: String!) { renameConversation(id: $c, title: \"nginx\") }", json!({ "c": id }))
        .await?;
    assert_eq!(v["data"]["renameConversation"], true);
    let export = "query($c: String!, $f: String!) { exportConversation(id: $c, format: $f) }";
    let v = s.stack.api.graphql(export, json!({ "c": id, "f": "markdown" })).await?;
    let md = v["data"]["exportConversation"].as_str().unwrap_or_default();
    assert!(
        md.starts_with("# nginx\n")
            && md.contains("## You\n\nHow do I restart nginx?")
            && md.contains("systemctl restart nginx"),
        "{md}"
    );
    let v = s.stack.api.graphql(export, json!({ "c": id, "f": "json" })).await?;
    let doc: Value = serde_json::from_str(v["data"]["exportConversation"].as_str().unwrap_or_default())?;
    assert_eq!(doc["messages"][1]["content"], answer);
    let v = s.stack.api.graphql(export, json!({ "c": id, "f": "pdf" })).await?;
    assert_eq!(code(&v), "bad_request");
    let v = s.stack.api.graphql("mutation($c: String!) { deleteConversation(id: $c) }", json!({ "c": id })).await?;
    assert_eq!(v["data"]["deleteConversation"], true);
    let v = s
        .stack
        .api
        .graphql("query($c: String!) { conversation(id: $c) { conversation { id } } }", json!({ "c": id }))
        .await?;
    assert_eq!(code(&v), "not_found");

    // Bad input.
    let q = "mutation($i: ChatInput!) { sendChatMessage(input: $i) { conversation { id } } }";
    for (input, expect) in [
        (json!({ "workspaceId": s.workspace, "text": "  " }), "bad_request"),
        (json!({ "text": "hi" }), "bad_request"),
        (json!({ "workspaceId": "nope", "text": "hi" }), "not_found"),
        (json!({ "conversationId": "nope", "text": "hi" }), "not_found"),
        (json!({ "workspaceId": s.workspace, "serverId": "nope", "text": "hi" }), "not_found"),
        (json!({ "workspaceId": s.workspace, "agentId": "nope", "text": "hi" }), "not_found"),
        (json!({ "workspaceId": s.workspace, "text": "x".repeat(200_001) }), "bad_request"),
    ] {
        let v = s.stack.api.graphql(q, json!({ "i": input })).await?;
        assert_eq!(code(&v), expect, "{v}");
    }
    let watch = again.call(ChatWatch { conversation: "nope".into() }).await?;
    assert!(watch.is_err_and(|e| e.code == porta_shared::ErrorCode::NotFound));
    Ok(())
}

/// Follows the conversation until one of its messages waits for a decision; returns it.
async fn until_waiting(s: &Setup, ws: &mut Ws, id: &str, texts: &mut HashMap<i64, String>) -> anyhow::Result<Value> {
    chat::until_waiting(&s.stack.api, ws, id, texts).await
}

#[tokio::test]
async fn an_agents_write_waits_for_approval_and_is_audited() -> anyhow::Result<()> {
    let s = setup().await?;
    let api = &s.stack.api;
    let q = "mutation($w: String!) { createAgent(workspaceId: $w, template: \"backend-developer\", name: \"dev\") {
        id name kind tools autoApprove maxSteps } }";
    let v = api.graphql(q, json!({ "w": s.workspace })).await?;
    let agent = v["data"]["createAgent"]["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        v["data"]["createAgent"]["autoApprove"],
        json!(["list_dir", "read_file", "search", "system_info", "recent_metrics", "docker_list", "docker_logs"]),
        "{v}"
    );
    let file = s.root.path().join("app.py");
    std::fs::write(&file, "print('old')\n")?;
    let path = file.to_string_lossy().into_owned();
    let mut ws = api.ws().await?;
    let mut texts = HashMap::new();

    // The model reads (at once), then asks to write: the write waits, showing the diff.
    s.llm.push(Reply::tool("c1", "read_file", json!({ "path": path })));
    s.llm.push(Reply::tool("c2", "write_file", json!({ "path": path, "content": "print('new')\n" })));
    s.llm.push(Reply::text("I changed app.py.", 5, Duration::ZERO));
    let input = json!({ "workspaceId": s.workspace, "serverId": s.stack.server_id, "agentId": agent, "text": "Make it print new." });
    let id = send(&s, input).await?;
    watch(&mut ws, &id, &mut texts).await?;
    let waiting = until_waiting(&s, &mut ws, &id, &mut texts).await?;
    let call = &waiting["toolCalls"][0];
    assert_eq!(
        (call["name"].as_str(), call["decision"].as_str(), call["changes"].as_bool()),
        (Some("write_file"), Some("pending"), Some(true))
    );
    let preview = call["preview"].as_str().unwrap_or_default();
    assert!(preview.contains("-print('old')") && preview.contains("+print('new')"), "{preview}");
    assert_eq!(std::fs::read_to_string(&file)?, "print('old')\n", "nothing is written before the approval");
    let req = s.llm.requests().last().map(|r| r.body.clone()).unwrap_or_default();
    let tools: Vec<&str> =
        req["tools"].as_array().into_iter().flatten().filter_map(|t| t["function"]["name"].as_str()).collect();
    assert!(tools.contains(&"write_file") && tools.contains(&"run_command"), "{tools:?}");
    assert!(req.to_string().contains("print('old')"), "the read's result went back to the model");

    // Approved: written, then the answer ends.
    let decide = "mutation($c: String!, $k: String!, $a: Boolean!) { decideToolCall(conversationId: $c, callId: $k, approve: $a) }";
    let v = api.graphql(decide, json!({ "c": id, "k": "c2", "a": true })).await?;
    assert_eq!(v["data"]["decideToolCall"], true, "{v}");
    follow(&mut ws, &id, &mut texts, finished).await?;
    assert_eq!(std::fs::read_to_string(&file)?, "print('new')\n");
    let c = conversation(&s, &id).await?;
    let last = c["messages"].as_array().and_then(|m| m.last().cloned()).unwrap_or_default();
    assert_eq!((last["content"].as_str(), last["state"].as_str()), (Some("I changed app.py."), Some("done")), "{c}");
    let v = api.graphql(decide, json!({ "c": id, "k": "c2", "a": true })).await?;
    assert_eq!(code(&v), "not_found", "a decision is taken once");

    // Declined: the file stays; the model is told.
    s.llm.push(Reply::tool("c3", "write_file", json!({ "path": path, "content": "print('worse')\n" })));
    s.llm.push(Reply::text("Understood, I left it.", 5, Duration::ZERO));
    send(&s, json!({ "conversationId": id, "text": "Now make it worse." })).await?;
    until_waiting(&s, &mut ws, &id, &mut texts).await?;
    api.graphql(decide, json!({ "c": id, "k": "c3", "a": false })).await?;
    follow(&mut ws, &id, &mut texts, finished).await?;
    assert_eq!(std::fs::read_to_string(&file)?, "print('new')\n", "a declined write changes nothing");
    let req = s.llm.requests().last().map(|r| r.body.clone()).unwrap_or_default();
    assert!(req.to_string().contains("declined"), "the model heard it was declined");
    let c = conversation(&s, &id).await?;
    let declined = c["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|m| m["toolCalls"].as_array().cloned().unwrap_or_default())
        .find(|t| t["id"] == "c3");
    assert_eq!(declined.map(|t| t["decision"].clone()), Some(json!("declined")));

    // Two calls with one id: an approval could not tell them apart, so neither runs.
    s.llm.push(Reply::Tools(vec![
        ("dup".into(), "read_file".into(), json!({ "path": path })),
        ("dup".into(), "write_file".into(), json!({ "path": path, "content": "print('sneaky')\n" })),
    ]));
    s.llm.push(Reply::text("Sorry.", 5, Duration::ZERO));
    send(&s, json!({ "conversationId": id, "text": "Read it, then write it." })).await?;
    follow(&mut ws, &id, &mut texts, finished).await?;
    assert_eq!(std::fs::read_to_string(&file)?, "print('new')\n", "a call sharing an id does not run");
    let c = conversation(&s, &id).await?;
    let dups: Vec<Value> = c["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|m| m["toolCalls"].as_array().cloned().unwrap_or_default())
        .filter(|t| t["id"] == "dup")
        .map(|t| t["decision"].clone())
        .collect();
    assert_eq!(dups, [json!("declined"), json!("declined")], "{c}");
    let req = s.llm.requests().last().map(|r| r.body.clone()).unwrap_or_default();
    assert!(req.to_string().contains("more than one call had this id"), "the model heard why");

    // On the record: the agent's history and the audit log.
    let q = "query($a: String!) { agentOperations(agentId: $a) { total items { kind success details } } }";
    let v = api.graphql(q, json!({ "a": agent })).await?;
    let kinds: Vec<&str> = v["data"]["agentOperations"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["write_file", "read_file"], "the declined write did not run: {v}");
    let log =
        api.graphql("{ auditLog(action: \"agent.write_file\") { actor result target detail } }", json!({})).await?;
    let event = &log["data"]["auditLog"][0];
    assert_eq!((event["result"].as_str(), event["target"].as_str()), (Some("ok"), Some(path.as_str())), "{log}");
    assert!(event["detail"].as_str().unwrap_or_default().contains("approved"), "{log}");

    // Changed on the server while it waited: the approved write is refused and the change
    // made meanwhile is kept (the person approved a diff against what they saw).
    s.llm.push(Reply::tool("c4", "write_file", json!({ "path": path, "content": "print('agent')\n" })));
    s.llm.push(Reply::text("It changed meanwhile.", 5, Duration::ZERO));
    send(&s, json!({ "conversationId": id, "text": "Once more." })).await?;
    until_waiting(&s, &mut ws, &id, &mut texts).await?;
    std::fs::write(&file, "print('someone else')\n")?;
    api.graphql(decide, json!({ "c": id, "k": "c4", "a": true })).await?;
    follow(&mut ws, &id, &mut texts, finished).await?;
    assert_eq!(std::fs::read_to_string(&file)?, "print('someone else')\n", "nothing silently overwritten");
    let req = s.llm.requests().last().map(|r| r.body.clone()).unwrap_or_default();
    assert!(req.to_string().contains("conflict"), "the model heard of the conflict");

    // An agent turned off answers no more; the quota holds.
    let v = api
        .graphql("mutation($a: String!) { updateAgent(id: $a, disabled: true) { status } }", json!({ "a": agent }))
        .await?;
    assert_eq!(v["data"]["updateAgent"]["status"], "disabled");
    let q = "mutation($i: ChatInput!) { sendChatMessage(input: $i) { conversation { id } } }";
    let v = api.graphql(q, json!({ "i": { "conversationId": id, "text": "Hello?" } })).await?;
    assert_eq!(code(&v), "forbidden", "{v}");
    api.graphql("mutation($w: String!) { setWorkspaceQuotas(id: $w, maxAgents: 1) }", json!({ "w": s.workspace }))
        .await?;
    let q = "mutation($w: String!) { createAgent(workspaceId: $w, template: \"qa\") { id } }";
    let v = api.graphql(q, json!({ "w": s.workspace })).await?;
    assert_eq!(code(&v), "conflict", "{v}");
    let q =
        "mutation($w: String!) { createAgent(workspaceId: $w, settings: { name: \"x\", tools: [\"rm_rf\"] }) { id } }";
    let v = api.graphql(q, json!({ "w": s.workspace })).await?;
    assert_eq!(code(&v), "bad_request", "{v}");
    Ok(())
}
