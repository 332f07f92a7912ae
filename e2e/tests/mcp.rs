//! The MCP endpoint with the official MCP client library (`rmcp`): initialise, list the tools,
//! call them on a real bridge (confined to a temporary root). A write waits for the person's
//! approval in Porta (decided here through GraphQL, as the panel does), is declined or done
//! accordingly, and everything is in the audit log. No token, a wrong one, or a browser
//! session gets nothing.

use std::time::Duration;

use porta_e2e::agents::{self, call, connect, shown};
use porta_e2e::{Api, Stack};
use serde_json::{Value, json};

async fn token(stack: &Stack, scopes: &[&str]) -> anyhow::Result<String> {
    let q = "mutation($s: [String!]!) { createApiToken(name: \"mcp\", scopes: $s) { token } }";
    let v = stack.api.graphql(q, json!({ "s": scopes })).await?;
    let token = v["data"]["createApiToken"]["token"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!token.is_empty(), "{v}");
    Ok(token)
}

/// Waits for the write the agent asked for to be waiting in Porta, and decides it.
async fn decide(stack: &Stack, agent: &str, approve: bool) -> anyhow::Result<()> {
    agents::decide(&stack.api, agent, approve).await.map(drop)
}

#[tokio::test]
async fn an_mcp_client_lists_and_calls_tools_and_its_writes_wait_for_approval() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let root_path = root.path().to_string_lossy().into_owned();
    let stack = Stack::start(&[], &["--root", &root_path]).await?;
    let base = stack.backend.url.clone();
    std::fs::write(root.path().join("readme.txt"), "hello from the server\n")?;
    let secret = token(&stack, &["read", "write", "terminal"]).await?;
    let client = connect(&base, &secret, "claude-desktop").await?;

    let info = client.peer_info().map(|i| serde_json::to_value(&*i).unwrap_or_default()).unwrap_or_default();
    assert_eq!(info["serverInfo"]["name"], "porta", "{info}");
    let tools: Vec<String> = client.list_all_tools().await?.into_iter().map(|t| t.name.to_string()).collect();
    for name in [
        "list_servers",
        "list_dir",
        "read_file",
        "search",
        "system_info",
        "recent_metrics",
        "write_file",
        "run_command",
    ] {
        assert!(tools.iter().any(|t| t == name), "{name} missing from {tools:?}");
    }

    let servers = call(&client, "list_servers", json!({})).await?;
    assert!(shown(&servers).contains(&stack.server_id), "{}", shown(&servers));
    let read = call(&client, "read_file", json!({ "server_id": stack.server_id, "path": "readme.txt" })).await?;
    assert_ne!(read.is_error, Some(true));
    assert!(shown(&read).contains("hello from the server"), "{}", shown(&read));
    let outside = call(&client, "read_file", json!({ "server_id": stack.server_id, "path": "/etc/passwd" })).await?;
    assert_eq!(outside.is_error, Some(true));
    assert!(shown(&outside).contains("outside_root"), "{}", shown(&outside));
    let missing = call(&client, "read_file", json!({ "path": "readme.txt" })).await?;
    assert!(missing.is_error == Some(true) && shown(&missing).contains("server_id"));

    // The server's monitoring data: summaries of the stored samples and the busiest processes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let m = call(&client, "recent_metrics", json!({ "server_id": stack.server_id, "minutes": 15 })).await?;
        assert_ne!(m.is_error, Some(true), "{}", shown(&m));
        if !shown(&m).contains("\\\"samples\\\":0") {
            break m;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no samples: {}", shown(&m));
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let text = shown(&metrics);
    assert!(text.contains("Memory") && text.contains("Processes") && text.contains("top_processes"), "{text}");
    let wrong = call(&client, "recent_metrics", json!({ "server_id": stack.server_id, "minutes": 0 })).await?;
    assert!(wrong.is_error == Some(true) && shown(&wrong).contains("minutes"), "{}", shown(&wrong));

    // A write waits for the person; approved, it is done.
    let write = json!({ "server_id": stack.server_id, "path": "out.txt", "content": "written by mcp\n" });
    let (result, decided) = tokio::join!(call(&client, "write_file", write.clone()), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!root.path().join("out.txt").exists(), "nothing is written before the approval");
        decide(&stack, "claude-desktop", true).await
    });
    decided?;
    let result = result?;
    assert_ne!(result.is_error, Some(true), "{}", shown(&result));
    assert_eq!(std::fs::read_to_string(root.path().join("out.txt"))?, "written by mcp\n");

    // Declined, nothing changes and the client is told.
    let worse = json!({ "server_id": stack.server_id, "path": "out.txt", "content": "worse\n" });
    let (result, decided) = tokio::join!(call(&client, "write_file", worse), decide(&stack, "claude-desktop", false));
    decided?;
    let result = result?;
    assert_eq!(result.is_error, Some(true));
    assert!(shown(&result).contains("declined"), "{}", shown(&result));
    assert_eq!(std::fs::read_to_string(root.path().join("out.txt"))?, "written by mcp\n");

    // Changed on the server while it waited: approved, but refused, and the change is kept.
    let again = json!({ "server_id": stack.server_id, "path": "out.txt", "content": "agent's\n" });
    let changed = root.path().join("out.txt");
    let (result, decided) = tokio::join!(call(&client, "write_file", again), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::write(&changed, "someone else's\n")?;
        decide(&stack, "claude-desktop", true).await
    });
    decided?;
    let result = result?;
    assert!(result.is_error == Some(true) && shown(&result).contains("conflict"), "{}", shown(&result));
    assert_eq!(std::fs::read_to_string(&changed)?, "someone else's\n");

    // Allowed without asking, a command runs at once.
    let v = stack
        .api
        .graphql("query($w: String!) { agents(workspaceId: $w) { id name } }", json!({ "w": workspace(&stack).await? }))
        .await?;
    let agent = v["data"]["agents"].as_array().into_iter().flatten().find(|a| a["name"] == "claude-desktop").cloned();
    let agent = agent.ok_or_else(|| anyhow::anyhow!("the MCP client is not registered as an agent: {v}"))?;
    let q = "mutation($a: String!) { updateAgent(id: $a, autoApprove: [\"run_command\"]) { autoApprove } }";
    let v = stack.api.graphql(q, json!({ "a": agent["id"] })).await?;
    assert_eq!(v["data"]["updateAgent"]["autoApprove"], json!(["run_command"]), "{v}");
    let ran = call(
        &client,
        "run_command",
        json!({ "server_id": stack.server_id, "command": "echo $((6*7))", "cwd": root_path }),
    )
    .await?;
    assert!(shown(&ran).contains("42"), "{}", shown(&ran));

    // On the record, as this agent.
    let log = stack.api.graphql("{ auditLog(action: \"agent.\") { action result detail } }", json!({})).await?;
    let events = log["data"]["auditLog"].as_array().cloned().unwrap_or_default();
    let has = |action: &str, result: &str| events.iter().any(|e| e["action"] == action && e["result"] == result);
    assert!(
        has("agent.write_file", "ok") && has("agent.write_file", "declined") && has("agent.run_command", "ok"),
        "{log}"
    );
    assert!(has("agent.read_file", "ok") && has("agent.read_file", "failed: outside_root"), "{log}");
    let tool_calls = events
        .iter()
        .filter(|e| !["agent.register", "agent.update"].contains(&e["action"].as_str().unwrap_or_default()));
    assert!(tool_calls.clone().count() >= 5, "{log}");
    for e in tool_calls {
        assert!(
            e["detail"].as_str().is_some_and(|d| d.starts_with("agent claude-desktop")),
            "named for the agent: {e}"
        );
    }
    client.cancel().await?;

    // A session ended by its client is ended with 204, as MCP clients expect of a DELETE.
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "x", "version": "1" } } });
    let http = reqwest::Client::new();
    let write_token = token(&stack, &["read", "write"]).await?;
    let begun = http
        .post(format!("{base}/mcp"))
        .bearer_auth(&write_token)
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await?;
    assert!(begun.status().is_success(), "{}", begun.status());
    let session = begun.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let session = session.ok_or_else(|| anyhow::anyhow!("no session id"))?;
    drop(begun);
    let ended = http
        .delete(format!("{base}/mcp"))
        .bearer_auth(&write_token)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await?;
    assert_eq!(ended.status().as_u16(), 204);
    assert!(ended.bytes().await?.is_empty());

    // A read-only token may read but not write (told why), and the person is not asked.
    let reader = connect(&base, &token(&stack, &["read"]).await?, "reader").await?;
    let refused = call(&reader, "write_file", write).await?;
    assert!(refused.is_error == Some(true) && shown(&refused).contains("write scope"), "{}", shown(&refused));
    reader.cancel().await?;

    // No token, a wrong one, a session: refused before any MCP is spoken.
    for auth in [None, Some("Bearer porta_pat_wrong".to_owned()), Some(format!("Bearer {}", stack.api.access))] {
        let mut req =
            http.post(format!("{base}/mcp")).header("accept", "application/json, text/event-stream").json(&init);
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await?;
        assert_eq!(resp.status().as_u16(), 401, "{auth:?}");
    }
    assert!(connect(&base, "porta_pat_wrong", "x").await.is_err());
    Ok(())
}

async fn workspace(stack: &Stack) -> anyhow::Result<String> {
    let v = stack.api.graphql("{ servers { workspaceId } }", json!({})).await?;
    Ok(v["data"]["servers"][0]["workspaceId"].as_str().unwrap_or_default().to_owned())
}

/// GraphQL with an API token, as an agent holding it would call it.
async fn graphql_as(base: &str, token: &str, query: &str, variables: Value) -> anyhow::Result<Value> {
    let resp = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .header("x-porta-token", token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await?;
    Ok(resp.json().await?)
}

/// An agent holding its person's token may not approve the change it is waiting on, nor give
/// itself changes without asking: those are a person's acts.
#[tokio::test]
async fn an_agent_cannot_approve_its_own_actions() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let root_path = root.path().to_string_lossy().into_owned();
    let stack = Stack::start(&[], &["--root", &root_path]).await?;
    let base = stack.backend.url.clone();
    let secret = token(&stack, &["read", "write", "terminal"]).await?;
    let client = connect(&base, &secret, "sneaky").await?;
    let write = json!({ "server_id": stack.server_id, "path": "evil.txt", "content": "self-approved\n" });
    let (result, tried) = tokio::join!(call(&client, "write_file", write), async {
        // The agent finds the call it is waiting on, with its own token…
        let (conv, call) = agents::waiting(&Api::with_token(&base, &secret), "sneaky").await?;
        let call_id = call["id"].clone();
        // …and tries to approve it.
        let q = "mutation($c: String!, $k: String!) { decideToolCall(conversationId: $c, callId: $k, approve: true) }";
        let v = graphql_as(&base, &secret, q, json!({ "c": conv, "k": call_id })).await?;
        anyhow::ensure!(v["errors"][0]["extensions"]["code"] == "forbidden", "{v}");
        anyhow::ensure!(v["errors"][0]["message"].as_str().is_some_and(|m| m.contains("person")), "{v}");
        // Nor may it allow itself writes and commands without asking.
        let agents = graphql_as(
            &base,
            &secret,
            "query($w: String!) { agents(workspaceId: $w) { id name } }",
            json!({ "w": workspace(&stack).await? }),
        )
        .await?;
        let id = agents["data"]["agents"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["name"] == "sneaky")
            .map(|a| a["id"].clone());
        let id = id.ok_or_else(|| anyhow::anyhow!("no agent: {agents}"))?;
        let q = "mutation($a: String!) { updateAgent(id: $a, autoApprove: [\"write_file\", \"run_command\"]) { autoApprove } }";
        let v = graphql_as(&base, &secret, q, json!({ "a": id })).await?;
        anyhow::ensure!(v["errors"][0]["extensions"]["code"] == "forbidden", "{v}");
        let q = "mutation($w: String!) { createAgent(workspaceId: $w, settings: { name: \"twin\", systemPrompt: \"\", tools: [\"run_command\"], autoApprove: [\"run_command\"], maxSteps: 5, maxSeconds: 60 }) { id } }";
        let v = graphql_as(&base, &secret, q, json!({ "w": workspace(&stack).await? })).await?;
        anyhow::ensure!(v["errors"][0]["extensions"]["code"] == "forbidden", "{v}");
        // The person declines.
        decide(&stack, "sneaky", false).await
    });
    tried?;
    let result = result?;
    assert!(result.is_error == Some(true) && shown(&result).contains("declined"), "{}", shown(&result));
    assert!(!root.path().join("evil.txt").exists(), "nothing was written");
    let v = stack
        .api
        .graphql(
            "query($w: String!) { agents(workspaceId: $w) { name autoApprove } }",
            json!({ "w": workspace(&stack).await? }),
        )
        .await?;
    let agents = v["data"]["agents"].as_array().cloned().unwrap_or_default();
    assert!(agents.iter().all(|a| a["name"] != "twin"), "{v}");
    assert!(agents.iter().filter(|a| a["name"] == "sneaky").all(|a| a["autoApprove"] == json!([])), "{v}");
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn a_call_its_client_gives_up_on_stops_waiting_and_the_audit_says_so() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let root_path = root.path().to_string_lossy().into_owned();
    let stack = Stack::start(&[], &["--root", &root_path]).await?;
    let client = connect(&stack.backend.url, &token(&stack, &["read", "write"]).await?, "impatient").await?;
    let write = |content: &str| json!({ "server_id": stack.server_id, "path": "note.txt", "content": content });

    // The client gives up once the person has been asked: rmcp sends `notifications/cancelled`
    // for a call whose future is dropped.
    let (conversation, asked) = tokio::select! {
        r = call(&client, "write_file", write("never\n")) => anyhow::bail!("answered before anyone was asked: {r:?}"),
        w = agents::waiting(&stack.api, "impatient") => w?,
    };
    agents::until_decided(&stack.api, &conversation, &asked, "cancelled").await?;
    assert!(!root.path().join("note.txt").exists(), "nothing was written");
    agents::until_audited(&stack.api, "agent.write_file", "(cancelled by the client)", "cancelled by the client")
        .await?;

    // The agent's next change is asked at once, not refused as "another change is waiting".
    let (next, decided) =
        tokio::join!(call(&client, "write_file", write("later\n")), agents::decide(&stack.api, "impatient", true));
    decided?;
    let next = next?;
    assert_ne!(next.is_error, Some(true), "{}", shown(&next));
    assert_eq!(std::fs::read_to_string(root.path().join("note.txt"))?, "later\n");
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn an_agent_asks_a_port_on_the_server_over_http_and_changes_wait_for_approval() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let base = stack.backend.url.clone();
    let app = porta_e2e::webapp::WebApp::start("127.0.0.1:0").await?;
    let s = stack.server_id.clone();
    let client = connect(&base, &token(&stack, &["read", "write", "terminal"]).await?, "claude-desktop").await?;
    let tools: Vec<String> = client.list_all_tools().await?.into_iter().map(|t| t.name.to_string()).collect();
    assert!(tools.iter().any(|t| t == "http_get") && tools.iter().any(|t| t == "http_request"), "{tools:?}");

    // A GET reads at once, through the bridge, with no one asked.
    let got = call(&client, "http_get", json!({ "server_id": s, "port": app.port, "path": "/echo/agent?x=1" })).await?;
    assert_ne!(got.is_error, Some(true), "{}", shown(&got));
    let text = shown(&got);
    assert!(text.contains("\\\"status\\\":200") && text.contains("/echo/agent"), "{text}");
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
    let nothing = call(&client, "http_get", json!({ "server_id": s, "port": closed })).await?;
    assert_eq!(nothing.is_error, Some(true), "{}", shown(&nothing));
    let bad = call(&client, "http_get", json!({ "server_id": s, "port": app.port, "path": "no-slash" })).await?;
    assert!(bad.is_error == Some(true) && shown(&bad).contains("path"), "{}", shown(&bad));

    // Anything else waits for the person: approved, it is sent; declined, it is not.
    let body = "hello from an agent";
    let post = json!({ "server_id": s, "port": app.port, "method": "POST", "path": "/upload", "body": body });
    let (result, decided) =
        tokio::join!(call(&client, "http_request", post.clone()), decide(&stack, "claude-desktop", true));
    decided?;
    let result = result?;
    assert_ne!(result.is_error, Some(true), "{}", shown(&result));
    assert!(shown(&result).contains(&format!("{} ", body.len())), "the app got the body: {}", shown(&result));
    let (result, decided) = tokio::join!(call(&client, "http_request", post), decide(&stack, "claude-desktop", false));
    decided?;
    let result = result?;
    assert!(result.is_error == Some(true) && shown(&result).contains("declined"), "{}", shown(&result));

    // The workspace's command policy judges it as its curl command: a blocked one never goes.
    let ws = workspace(&stack).await?;
    let q =
        "mutation($w: String!, $r: [PolicyRuleInput!]) { setCommandPolicy(workspaceId: $w, rules: $r) { isDefault } }";
    let rules = json!([{ "tier": "block", "pattern": "curl -X DELETE", "note": "no deletes" }]);
    let v = stack.api.graphql(q, json!({ "w": ws, "r": rules })).await?;
    assert_eq!(v["data"]["setCommandPolicy"]["isDefault"], false, "{v}");
    let delete = json!({ "server_id": s, "port": app.port, "method": "DELETE", "path": "/echo/x" });
    let blocked = call(&client, "http_request", delete).await?;
    assert!(blocked.is_error == Some(true) && shown(&blocked).contains("blocks"), "{}", shown(&blocked));

    // Even a GET reaches whatever listens there: a token without the terminal scope gets none.
    let reader = connect(&base, &token(&stack, &["read"]).await?, "reader").await?;
    let refused = call(&reader, "http_get", json!({ "server_id": s, "port": app.port })).await?;
    assert!(refused.is_error == Some(true) && shown(&refused).contains("terminal"), "{}", shown(&refused));
    reader.cancel().await?;

    let log = stack.api.graphql("{ auditLog(action: \"agent.\") { action result } }", json!({})).await?;
    let events = log["data"]["auditLog"].as_array().cloned().unwrap_or_default();
    let has = |action: &str, result: &str| events.iter().any(|e| e["action"] == action && e["result"] == result);
    assert!(has("agent.http_get", "ok") && has("agent.http_request", "ok"), "{log}");
    assert!(has("agent.http_request", "declined"), "{log}");
    client.cancel().await?;
    Ok(())
}
