//! The Porta agent API (`/api/v1`) through the full path: a script with an API token in
//! `X-PORTA-TOKEN` runs commands, pipelines and file operations on a real bridge (confined to
//! a temporary root), and every call lands in the agent's history and the audit log. Bad
//! calls — no token, a wrong one, a session instead of a token, malformed, oversized or
//! out-of-range bodies, paths outside the root, a token without the scope, a full agent quota —
//! get a clear error and change nothing.

use anyhow::Context as _;
use porta_e2e::Stack;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// An external agent: plain HTTP with the token in `X-PORTA-TOKEN`.
struct Script {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Script {
    fn new(base: &str, token: Option<&str>) -> Self {
        Self { base: base.to_owned(), token: token.map(str::to_owned), http: reqwest::Client::new() }
    }

    fn with_token(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.header("X-PORTA-TOKEN", t),
            None => req,
        }
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<(StatusCode, Value)> {
        self.post_raw(path, body.to_string().into_bytes()).await
    }

    async fn post_raw(&self, path: &str, body: Vec<u8>) -> anyhow::Result<(StatusCode, Value)> {
        let req = self.http.post(format!("{}/api/v1/{path}", self.base)).header("content-type", "application/json");
        let resp = self
            .with_token(req)
            .body(body)
            .send()
            .await
            .with_context(|| format!("POST {path} with {:?}", self.token))?;
        let status = resp.status();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        let resp = self.with_token(self.http.get(format!("{}/api/v1/{path}", self.base))).send().await?;
        let status = resp.status();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

fn message(v: &Value) -> &str {
    v["error"]["message"].as_str().unwrap_or_default()
}

async fn token(stack: &Stack, scopes: &[&str]) -> anyhow::Result<String> {
    let q = "mutation($s: [String!]!) { createApiToken(name: \"agent\", scopes: $s) { token } }";
    let v = stack.api.graphql(q, json!({ "s": scopes })).await?;
    let token = v["data"]["createApiToken"]["token"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!token.is_empty(), "token: {v}");
    Ok(token)
}

/// A stack whose bridge is confined to a temporary folder, in a workspace whose admin lets
/// agents run what no rule of the command policy names (the default rules still hold; the
/// policy's own tests are in `command_policy.rs`).
async fn confined() -> anyhow::Result<(Stack, tempfile::TempDir, String)> {
    let root = tempfile::tempdir()?;
    let path = root.path().to_string_lossy().into_owned();
    let stack = Stack::start(&[], &["--root", &path]).await?;
    let v = stack.api.graphql("{ servers { workspaceId } }", json!({})).await?;
    let ws = v["data"]["servers"][0]["workspaceId"].clone();
    let v = stack
        .api
        .graphql(
            "query($w: String!) { commandPolicy(workspaceId: $w) { rules { tier pattern note } } }",
            json!({ "w": ws }),
        )
        .await?;
    let rules = v["data"]["commandPolicy"]["rules"].clone();
    let set = "mutation($w: String!, $r: [PolicyRuleInput!]) { setCommandPolicy(workspaceId: $w, rules: $r, otherwise: \"allow\") { otherwise } }";
    let v = stack.api.graphql(set, json!({ "w": ws, "r": rules })).await?;
    anyhow::ensure!(v["data"]["setCommandPolicy"]["otherwise"] == "allow", "{v}");
    Ok((stack, root, path))
}

const ALL_ENDPOINTS: [&str; 10] = [
    "GET meta",
    "GET openapi.json",
    "POST run_bash",
    "POST write_file",
    "POST read_file",
    "POST list_dir",
    "POST agent/status",
    "POST agent/list",
    "POST agent/history",
    "POST agent/pipeline",
];

#[tokio::test]
async fn every_endpoint_acts_on_the_server_and_is_recorded() -> anyhow::Result<()> {
    let (stack, root, root_path) = confined().await?;
    let server = stack.server_id.clone();
    let agent = Script::new(&stack.backend.url, Some(&token(&stack, &["read", "write", "terminal"]).await?));
    let on = |extra: Value| {
        let mut body = json!({ "agent_id": "deploy-bot", "server_id": server });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        body
    };

    // meta: who answers, and what it offers.
    let (status, meta) = agent.get("meta").await?;
    assert_eq!(status, StatusCode::OK, "{meta}");
    assert_eq!(meta["name"], "Porta");
    assert_eq!(meta["pid"].as_u64(), stack.backend.pid().map(u64::from), "{meta}");
    let port = stack.backend.url.rsplit(':').next().and_then(|p| p.parse::<u64>().ok());
    assert_eq!(meta["port"].as_u64(), port);
    let endpoints: Vec<String> =
        meta["endpoints"].as_array().into_iter().flatten().filter_map(|e| e.as_str()).map(str::to_owned).collect();
    for e in ALL_ENDPOINTS {
        let (method, path) = e.split_once(' ').unwrap_or_default();
        assert!(endpoints.contains(&format!("{method} /api/v1/{path}")), "{e} missing from {endpoints:?}");
    }

    // The OpenAPI document is public and describes each endpoint.
    let (status, doc) = Script::new(&stack.backend.url, None).get("openapi.json").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for e in ALL_ENDPOINTS {
        let (method, path) = e.split_once(' ').unwrap_or_default();
        let op = &doc["paths"][format!("/api/v1/{path}")][method.to_lowercase()];
        assert!(op.is_object(), "{e} is not in the OpenAPI document");
    }

    // Files: write, read back (text and binary), list; a stale hash is refused.
    let (status, written) = agent.post("write_file", on(json!({ "path": "notes.txt", "content": "hello\n" }))).await?;
    assert_eq!(status, StatusCode::OK, "{written}");
    assert_eq!(std::fs::read_to_string(root.path().join("notes.txt"))?, "hello\n");
    assert_eq!(written["size"], 6);
    let (status, read) = agent.post("read_file", on(json!({ "path": "notes.txt" }))).await?;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!((read["content"].as_str(), read["encoding"].as_str()), (Some("hello\n"), Some("utf-8")));
    assert_eq!(read["sha256"], written["sha256"]);
    assert_eq!(read["agent_id"], "deploy-bot");
    let stale = on(json!({ "path": "notes.txt", "content": "theirs", "expected_sha256": "0".repeat(64) }));
    let (status, refused) = agent.post("write_file", stale).await?;
    assert_eq!((status, error_code(&refused)), (StatusCode::CONFLICT, "conflict"), "{refused}");
    assert_eq!(std::fs::read_to_string(root.path().join("notes.txt"))?, "hello\n", "a refused write changes nothing");
    let binary = on(json!({ "path": "blob.bin", "content": "AAH/", "encoding": "base64" }));
    assert_eq!(agent.post("write_file", binary).await?.0, StatusCode::OK);
    assert_eq!(std::fs::read(root.path().join("blob.bin"))?, [0, 1, 255]);
    let (_, read) = agent.post("read_file", on(json!({ "path": "blob.bin" }))).await?;
    assert_eq!((read["content"].as_str(), read["encoding"].as_str()), (Some("AAH/"), Some("base64")));
    let (status, listed) = agent.post("list_dir", on(json!({ "path": root_path }))).await?;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let names: Vec<&str> =
        listed["entries"].as_array().into_iter().flatten().filter_map(|e| e["name"].as_str()).collect();
    assert!(names.contains(&"notes.txt") && names.contains(&"blob.bin"), "{names:?}");

    // Commands: stdout and stderr apart, the return code, the folder, the time limit.
    let cmd = on(json!({ "command": "pwd; echo out; echo err >&2; exit 3", "cwd": root_path }));
    let (status, ran) = agent.post("run_bash", cmd).await?;
    assert_eq!(status, StatusCode::OK, "{ran}");
    assert_eq!(ran["stdout"].as_str(), Some(format!("{root_path}\nout\n").as_str()), "{ran}");
    assert_eq!((ran["stderr"].as_str(), ran["return_code"].as_i64()), (Some("err\n"), Some(3)), "{ran}");
    let (_, slow) = agent.post("run_bash", on(json!({ "command": "sleep 10", "timeout_s": 1 }))).await?;
    assert_eq!(slow["timed_out"], true, "{slow}");

    // A pipeline stops at the failing step, with its return code; later steps never run.
    let steps = json!({ "cwd": root_path, "steps": [
        "echo one > one.txt",
        { "command": "echo two; exit 4", "timeout_s": 30 },
        "touch never.txt",
    ] });
    let (status, piped) = agent.post("agent/pipeline", on(steps)).await?;
    assert_eq!(status, StatusCode::OK, "{piped}");
    assert_eq!((piped["success"].as_bool(), piped["failed_step"].as_u64()), (Some(false), Some(1)), "{piped}");
    assert_eq!(piped["steps"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        (piped["steps"][1]["return_code"].as_i64(), piped["steps"][1]["stdout"].as_str()),
        (Some(4), Some("two\n"))
    );
    assert_eq!(piped["skipped"], 1);
    assert!(root.path().join("one.txt").exists() && !root.path().join("never.txt").exists());
    let (_, all_good) = agent.post("agent/pipeline", on(json!({ "steps": ["true", "echo fine"] }))).await?;
    assert_eq!((all_good["success"].as_bool(), all_good["failed_step"].is_null()), (Some(true), true), "{all_good}");

    // The registry: status, list, history with filters.
    let (status, st) = agent.post("agent/status", json!({ "agent_id": "deploy-bot" })).await?;
    assert_eq!((status, st["status"].as_str()), (StatusCode::OK, Some("active")), "{st}");
    assert_eq!(st["agent"]["operations"], 10, "{st}");
    let (_, unknown) = agent.post("agent/status", json!({ "agent_id": "never-called" })).await?;
    assert_eq!(unknown["status"], "unregistered");
    agent.post("list_dir", json!({ "agent_id": "second-bot", "server_id": server, "path": root_path })).await?;
    let (status, list) = agent.post("agent/list", json!({ "agent_id": "deploy-bot", "kind": "api" })).await?;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["total"], 2, "{list}");
    let (_, first) = agent.post("agent/list", json!({ "agent_id": "deploy-bot", "limit": 1, "offset": 1 })).await?;
    assert_eq!(first["items"][0]["agent_id"], "second-bot", "by name, a page at a time: {first}");
    let (_, found) = agent.post("agent/list", json!({ "agent_id": "deploy-bot", "name_contains": "DEPLOY" })).await?;
    assert_eq!(found["total"], 1);
    let (_, history) =
        agent.post("agent/history", json!({ "agent_id": "deploy-bot", "operation_type": "run_bash" })).await?;
    assert_eq!(history["total"], 2, "{history}");
    assert!(history["items"][1]["details"].as_str().unwrap_or_default().contains("exit 3"), "{history}");
    assert_eq!(history["items"][1]["success"], false, "a command that exits 3 failed");
    let (_, failures) = agent.post("agent/history", json!({ "agent_id": "deploy-bot", "success": false })).await?;
    let kinds: Vec<&str> =
        failures["items"].as_array().into_iter().flatten().filter_map(|o| o["operation_type"].as_str()).collect();
    assert_eq!(kinds, ["pipeline", "run_bash", "run_bash", "write_file"], "newest first: {failures}");
    let future = json!({ "agent_id": "deploy-bot", "since_ms": 4_000_000_000_000_i64 });
    assert_eq!(agent.post("agent/history", future).await?.1["total"], 0);
    let (_, other) = agent.post("agent/history", json!({ "agent_id": "deploy-bot", "of_agent": "second-bot" })).await?;
    assert_eq!((other["total"].as_i64(), other["items"][0]["operation_type"].as_str()), (Some(1), Some("list_dir")));

    // The audit log has each operation, named for the token and the agent.
    let log = stack
        .api
        .graphql("{ auditLog(action: \"agent.\") { action actor result detail serverId } }", json!({}))
        .await?;
    let events = log["data"]["auditLog"].as_array().cloned().unwrap_or_default();
    for action in
        ["agent.register", "agent.run_bash", "agent.write_file", "agent.read_file", "agent.list_dir", "agent.pipeline"]
    {
        assert!(events.iter().any(|e| e["action"] == action), "{action} not audited: {log}");
    }
    let refused = events.iter().find(|e| e["action"] == "agent.write_file" && e["result"] == "failed: conflict");
    assert!(refused.is_some(), "the refused write is audited as failed: {log}");
    let pipeline = events.iter().find(|e| e["action"] == "agent.pipeline" && e["result"] == "failed: step 1");
    assert!(pipeline.is_some_and(|e| e["detail"].as_str().unwrap_or_default().contains("deploy-bot")), "{log}");
    assert!(events.iter().all(|e| e["actor"].as_str().unwrap_or_default().starts_with("token:")), "{log}");
    Ok(())
}

#[tokio::test]
async fn bad_calls_get_clear_errors_and_change_nothing() -> anyhow::Result<()> {
    let (stack, root, root_path) = confined().await?;
    let server = stack.server_id.clone();
    let base = stack.backend.url.clone();
    std::fs::write(root.path().join("keep.txt"), "original")?;
    let full = Script::new(&base, Some(&token(&stack, &["read", "write", "terminal"]).await?));
    let write = json!({ "agent_id": "bot", "server_id": server, "path": "keep.txt", "content": "changed" });

    // No token, a wrong one, or a session instead of a token: 401 on every endpoint but the
    // document.
    let session = reqwest::Client::new();
    for e in ALL_ENDPOINTS.iter().filter(|e| !e.contains("openapi")) {
        let (method, path) = e.split_once(' ').unwrap_or_default();
        for token in [None, Some("porta_pat_wrong"), Some("not-even-the-format")] {
            let script = Script::new(&base, token);
            let (status, v) =
                if method == "GET" { script.get(path).await? } else { script.post(path, write.clone()).await? };
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{e} with {token:?}: {v}");
            assert_eq!(error_code(&v), "unauthorized");
        }
        let url = format!("{base}/api/v1/{path}");
        let req = if method == "GET" { session.get(&url) } else { session.post(&url).json(&write) };
        let resp = req.bearer_auth(&stack.api.access).send().await?;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{e} with a session");
        let v: Value = resp.json().await?;
        assert!(message(&v).contains("X-PORTA-TOKEN"), "{v}");
    }
    assert_eq!(Script::new(&base, None).post("write_file", write.clone()).await?.0, StatusCode::UNAUTHORIZED);

    // Malformed, incomplete, unknown, empty and oversized bodies: 400, saying what is wrong.
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not JSON", b"{ this is not json".to_vec(), "not the JSON"),
        ("no body", Vec::new(), "no body"),
        (
            "a missing field",
            json!({ "agent_id": "bot", "server_id": server }).to_string().into_bytes(),
            "missing field `path`",
        ),
        (
            "an unknown field",
            json!({ "agent_id": "bot", "server_id": server, "path": "keep.txt", "content": "x", "mode": 7 })
                .to_string()
                .into_bytes(),
            "unknown field `mode`",
        ),
        (
            "a wrong type",
            json!({ "agent_id": "bot", "server_id": server, "path": 5, "content": "x" }).to_string().into_bytes(),
            "invalid type",
        ),
        (
            "an oversized body",
            json!({ "agent_id": "bot", "server_id": server, "path": "keep.txt", "content": "x".repeat(3 << 20) })
                .to_string()
                .into_bytes(),
            "larger than 2048 KiB",
        ),
    ];
    for (what, body, says) in cases {
        let (status, v) = full.post_raw("write_file", body).await?;
        assert_eq!((status, error_code(&v)), (StatusCode::BAD_REQUEST, "bad_request"), "{what}: {v}");
        assert!(message(&v).contains(says), "{what}: {v}");
    }
    let out_of_range = [
        ("run_bash", json!({ "agent_id": "bot", "server_id": server, "command": "true", "timeout_s": 0 }), "timeout_s"),
        ("run_bash", json!({ "agent_id": "bot", "server_id": server, "command": "  " }), "empty"),
        ("run_bash", json!({ "agent_id": "has space", "server_id": server, "command": "true" }), "agent_id"),
        ("agent/pipeline", json!({ "agent_id": "bot", "server_id": server, "steps": [] }), "1 to 50 steps"),
        (
            "agent/pipeline",
            json!({ "agent_id": "bot", "server_id": server, "steps": vec!["true"; 51] }),
            "1 to 50 steps",
        ),
        (
            "write_file",
            json!({ "agent_id": "bot", "server_id": server, "path": "keep.txt", "content": "%%", "encoding": "base64" }),
            "base64",
        ),
        (
            "write_file",
            json!({ "agent_id": "bot", "server_id": server, "path": "keep.txt", "content": "x", "encoding": "latin1" }),
            "encoding",
        ),
        ("agent/list", json!({ "agent_id": "bot", "limit": 0 }), "limit"),
        ("agent/list", json!({ "agent_id": "bot", "status": "sleepy" }), "status"),
    ];
    for (path, body, says) in out_of_range {
        let (status, v) = full.post(path, body.clone()).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {v}");
        assert!(message(&v).contains(says), "{path} {body}: {v}");
    }

    // Paths outside the bridge's root, and an unknown server.
    let outside = [
        ("list_dir", json!({ "agent_id": "bot", "server_id": server, "path": "/etc" })),
        ("read_file", json!({ "agent_id": "bot", "server_id": server, "path": "../../etc/passwd" })),
        (
            "write_file",
            json!({ "agent_id": "bot", "server_id": server, "path": "/tmp/porta-agent-escape", "content": "x" }),
        ),
    ];
    for (path, body) in outside {
        let (status, v) = full.post(path, body).await?;
        assert_eq!((status, error_code(&v)), (StatusCode::FORBIDDEN, "outside_root"), "{path}: {v}");
    }
    assert!(!std::path::Path::new("/tmp/porta-agent-escape").exists());
    let (status, v) =
        full.post("run_bash", json!({ "agent_id": "bot", "server_id": "nope", "command": "true" })).await?;
    assert_eq!((status, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");

    // A token without the scope is told which one it lacks.
    let reader = Script::new(&base, Some(&token(&stack, &["read"]).await?));
    let (status, v) = reader.post("write_file", write.clone()).await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(message(&v).contains("write scope"), "{v}");
    let (status, v) =
        reader.post("run_bash", json!({ "agent_id": "bot", "server_id": server, "command": "touch pwned" })).await?;
    assert!(status == StatusCode::FORBIDDEN && message(&v).contains("terminal scope"), "{v}");
    assert_eq!(
        reader.post("read_file", json!({ "agent_id": "bot", "server_id": server, "path": "keep.txt" })).await?.0,
        StatusCode::OK
    );
    assert_eq!(std::fs::read_to_string(root.path().join("keep.txt"))?, "original");
    assert!(!root.path().join("pwned").exists());

    // The workspace's agent quota: the agents there keep working, a new one is refused.
    let v = stack.api.graphql("{ servers { id workspaceId } }", json!({})).await?;
    let workspace = v["data"]["servers"][0]["workspaceId"].as_str().unwrap_or_default().to_owned();
    let q = "mutation($w: String!) { setWorkspaceQuotas(id: $w, maxAgents: 1) }";
    let v = stack.api.graphql(q, json!({ "w": workspace })).await?;
    assert!(v["errors"].is_null(), "{v}");
    let list = |agent: &str| json!({ "agent_id": agent, "server_id": server, "path": root_path });
    assert_eq!(full.post("list_dir", list("bot")).await?.0, StatusCode::OK, "bot is the one agent");
    let (status, v) = full.post("list_dir", list("another-bot")).await?;
    assert_eq!((status, error_code(&v)), (StatusCode::CONFLICT, "conflict"), "{v}");
    assert!(message(&v).contains("quota of 1 agents"), "{v}");
    let (_, st) = full.post("agent/status", json!({ "agent_id": "another-bot" })).await?;
    assert_eq!(st["status"], "unregistered", "a refused agent is not registered");
    Ok(())
}

async fn token_of(api: &porta_e2e::Api, scopes: Value) -> anyhow::Result<String> {
    let q = "mutation($s: [String!]!) { createApiToken(name: \"t\", scopes: $s) { token } }";
    let v = api.graphql(q, json!({ "s": scopes })).await?;
    v["data"]["createApiToken"]["token"].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("{v}"))
}

async fn agents_of(api: &porta_e2e::Api, ws: &Value) -> anyhow::Result<Vec<Value>> {
    let q = "query($w: String!) { agents(workspaceId: $w) { id name autoApprove createdBy } }";
    let v = api.graphql(q, json!({ "w": ws })).await?;
    Ok(v["data"]["agents"].as_array().cloned().unwrap_or_default())
}

/// An API agent is its owner's: a colleague's client sending the same name gets an agent of
/// its own, with none of the allowances, and may not change the owner's. A viewer's reads
/// work but register no agent (they would take the workspace's quota), and a viewer sees
/// processes without their command lines.
#[tokio::test]
async fn agents_belong_to_their_owner_and_viewers_register_none() -> anyhow::Result<()> {
    use porta_e2e::Api;
    let (stack, root, path) = confined().await?;
    std::fs::write(root.path().join("notes.txt"), "hello")?;
    let base = stack.backend.url.clone();
    let team = stack.api.own_team().await?;
    let dev =
        Api::join_by_link(&base, &stack.api.invite(&team, "developer").await?, "dev", "a long enough password").await?;
    let viewer =
        Api::join_by_link(&base, &stack.api.invite(&team, "viewer").await?, "vic", "a long enough password").await?;
    let admin_agent = Script::new(&base, Some(&token_of(&stack.api, json!(["read", "write", "terminal"])).await?));
    let dev_agent = Script::new(&base, Some(&token_of(&dev, json!(["read", "write", "terminal"])).await?));
    let viewer_agent = Script::new(&base, Some(&token_of(&viewer, json!(["read"])).await?));
    let server = stack.server_id.clone();
    let ls = json!({ "agent_id": "bot", "server_id": server, "command": "ls", "cwd": path });

    let (status, _) = admin_agent.post("run_bash", ls.clone()).await?;
    assert_eq!(status, StatusCode::OK);
    let v = stack.api.graphql("{ servers { workspaceId } }", json!({})).await?;
    let ws = v["data"]["servers"][0]["workspaceId"].clone();
    let admins_bot = agents_of(&stack.api, &ws)
        .await?
        .into_iter()
        .find(|a| a["name"] == "bot")
        .ok_or_else(|| anyhow::anyhow!("no bot"))?;
    let q = "mutation($a: String!, $t: [String!]) { updateAgent(id: $a, autoApprove: $t) { autoApprove } }";
    let v = stack.api.graphql(q, json!({ "a": admins_bot["id"], "t": ["run_command"] })).await?;
    assert_eq!(v["data"]["updateAgent"]["autoApprove"], json!(["run_command"]), "{v}");

    // The developer's "bot" is another agent, with nothing allowed without asking.
    let (status, _) = dev_agent.post("run_bash", ls.clone()).await?;
    assert_eq!(status, StatusCode::OK);
    let bots: Vec<Value> = agents_of(&stack.api, &ws).await?.into_iter().filter(|a| a["name"] == "bot").collect();
    assert_eq!(bots.len(), 2, "{bots:?}");
    assert!(bots.iter().any(|b| b["autoApprove"] == json!([])), "{bots:?}");
    // …and the developer may not change what the admin's agent may do.
    let v = dev.graphql(q, json!({ "a": admins_bot["id"], "t": ["run_command", "write_file"] })).await?;
    assert_eq!(v["errors"][0]["extensions"]["code"], "forbidden", "{v}");

    // A viewer reads through the API without registering an agent.
    let before = agents_of(&stack.api, &ws).await?.len();
    let (status, read) =
        viewer_agent.post("read_file", json!({ "agent_id": "peek", "server_id": server, "path": "notes.txt" })).await?;
    assert_eq!((status, read["content"].as_str()), (StatusCode::OK, Some("hello")), "{read}");
    let (status, _) =
        viewer_agent.post("list_dir", json!({ "agent_id": "peek", "server_id": server, "path": "." })).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(agents_of(&stack.api, &ws).await?.len(), before, "no agent was registered");
    let log = stack.api.graphql("{ auditLog(action: \"agent.read_file\") { actor detail } }", json!({})).await?;
    assert!(log.to_string().contains("agent peek"), "still in the audit log: {log}");

    // A viewer sees which processes run, not their command lines.
    let mut ws_viewer = viewer.ws().await?;
    let req = porta_shared::client::OnServer { server: server.clone(), req: porta_shared::bridge::SysProcesses {} };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let list = ws_viewer.call(req.clone()).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        if !list.processes.is_empty() {
            assert!(list.processes.iter().all(|p| p.command.is_empty()), "a viewer saw a command line");
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no process list");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let mut ws_admin = stack.api.ws().await?;
    let list = ws_admin.call(req).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert!(list.processes.iter().any(|p| !p.command.is_empty()), "the admin sees them");
    Ok(())
}
