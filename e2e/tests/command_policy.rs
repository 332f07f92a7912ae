//! The command policy end to end: every command an agent runs — through MCP or the agent API
//! (`run_bash`, pipelines) — passes the workspace's rules first. A blocked command never runs,
//! even for an agent allowed commands without asking; one a rule says needs approval waits for
//! the person; one the rules allow runs at once. Each decision is in the audit log, and the
//! policy is changed only by a signed-in admin.
//!
//! The commands tested are harmless even if they ran: the rules that block them are the
//! test's own (and `dd` onto /dev/null), so a broken policy shows as a failed assertion, not as
//! damage.

use porta_e2e::Stack;
use porta_e2e::agents::{self, McpClient, call, connect, shown};
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

async fn workspace(stack: &Stack) -> anyhow::Result<String> {
    let v = stack.api.graphql("{ servers { workspaceId } }", json!({})).await?;
    v["data"]["servers"][0]["workspaceId"].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("{v}"))
}

async fn token(stack: &Stack) -> anyhow::Result<String> {
    let q = "mutation { createApiToken(name: \"agent\", scopes: [\"read\", \"write\", \"terminal\"]) { token } }";
    let v = stack.api.graphql(q, json!({})).await?;
    v["data"]["createApiToken"]["token"].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("{v}"))
}

async fn run(client: &McpClient, server: &str, cwd: &str, command: &str) -> anyhow::Result<CallToolResult> {
    call(client, "run_command", json!({ "server_id": server, "command": command, "cwd": cwd })).await
}

async fn decide(stack: &Stack, agent: &str, approve: bool) -> anyhow::Result<Value> {
    agents::decide(&stack.api, agent, approve).await
}

/// The default rules, with the test's own: `touch … blocked.txt` is blocked, `echo
/// needs-approval` needs approval.
async fn set_policy(stack: &Stack, ws: &str) -> anyhow::Result<()> {
    let v = stack
        .api
        .graphql(
            &format!("query {{ commandPolicy(workspaceId: \"{ws}\") {{ rules {{ tier pattern note }} isDefault }} }}"),
            json!({}),
        )
        .await?;
    assert_eq!(v["data"]["commandPolicy"]["isDefault"], true, "{v}");
    let mut rules: Vec<Value> = v["data"]["commandPolicy"]["rules"].as_array().cloned().unwrap_or_default();
    rules.insert(0, json!({ "tier": "block", "pattern": "touch ... blocked.txt", "note": "the test's own" }));
    rules.insert(1, json!({ "tier": "ask", "pattern": "echo needs-approval", "note": "" }));
    let q = "mutation($w: String!, $r: [PolicyRuleInput!]) { setCommandPolicy(workspaceId: $w, rules: $r) { isDefault rules { pattern } } }";
    let v = stack.api.graphql(q, json!({ "w": ws, "r": rules })).await?;
    assert_eq!(v["data"]["setCommandPolicy"]["isDefault"], false, "{v}");
    Ok(())
}

#[tokio::test]
async fn commands_from_mcp_and_the_agent_api_pass_the_workspace_policy() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let cwd = root.path().to_string_lossy().into_owned();
    let stack = Stack::start(&[], &["--root", &cwd]).await?;
    let base = stack.backend.url.clone();
    let server = stack.server_id.clone();
    let ws = workspace(&stack).await?;
    set_policy(&stack, &ws).await?;
    let secret = token(&stack).await?;

    // Through MCP, for an agent the person allowed commands without asking.
    let client = connect(&base, &secret, "ops-bot").await?;
    let first = run(&client, &server, &cwd, "ls").await?;
    assert_ne!(first.is_error, Some(true), "an allowed command runs at once: {}", shown(&first));
    let v = stack.api.graphql("query($w: String!) { agents(workspaceId: $w) { id name } }", json!({ "w": ws })).await?;
    let agent = v["data"]["agents"].as_array().into_iter().flatten().find(|a| a["name"] == "ops-bot").cloned();
    let agent = agent.ok_or_else(|| anyhow::anyhow!("{v}"))?;
    let q = "mutation($a: String!) { updateAgent(id: $a, autoApprove: [\"run_command\"]) { autoApprove } }";
    stack.api.graphql(q, json!({ "a": agent["id"] })).await?;

    for blocked in [
        "touch blocked.txt",
        "sudo -n env X=1 touch ./blocked.txt",
        "bash -c 'touch blocked.txt'",
        "true && touch blocked.txt",
    ] {
        let r = run(&client, &server, &cwd, blocked).await?;
        assert!(r.is_error == Some(true) && shown(&r).contains("command policy blocks"), "{blocked}: {}", shown(&r));
    }
    let r = run(&client, &server, &cwd, "dd if=/dev/zero of=/dev/null count=1").await?;
    assert!(r.is_error == Some(true) && shown(&r).contains("writes a device"), "a default rule: {}", shown(&r));
    assert!(!root.path().join("blocked.txt").exists(), "nothing blocked ran");

    // Named by an "ask" rule, it waits even for this agent; approved, it runs.
    let (r, call) = tokio::join!(
        run(&client, &server, &cwd, "echo needs-approval > approved.txt"),
        decide(&stack, "ops-bot", true)
    );
    let (r, call) = (r?, call?);
    assert!(call["preview"].as_str().is_some_and(|p| p.contains("echo needs-approval")), "the person sees why: {call}");
    assert_ne!(r.is_error, Some(true), "{}", shown(&r));
    assert!(root.path().join("approved.txt").exists());
    // Named by no rule: this agent runs it without asking.
    let r = run(&client, &server, &cwd, "printf unnamed > unnamed.txt").await?;
    assert_ne!(r.is_error, Some(true), "{}", shown(&r));
    assert!(root.path().join("unnamed.txt").exists());
    client.cancel().await?;

    // Through the agent API, for an agent with no "without asking".
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{base}/api/v1/{path}")).header("x-porta-token", secret.clone()).json(&body).send()
    };
    let bash = |command: &str| json!({ "agent_id": "ci", "server_id": server, "command": command, "cwd": cwd });
    let r = post("run_bash", bash("touch blocked.txt")).await?;
    assert_eq!(r.status(), 403);
    assert!(r.text().await?.contains("command policy blocks"));
    let r = post("run_bash", bash("ls")).await?;
    assert_eq!(r.status(), 200, "allowed: runs at once");
    // Not named: it waits for the person, who declines.
    let (r, call) = tokio::join!(post("run_bash", bash("printf no > declined.txt")), decide(&stack, "ci", false));
    let (r, _) = (r?, call?);
    assert_eq!(r.status(), 403);
    assert!(r.text().await?.contains("declined"));
    assert!(!root.path().join("declined.txt").exists());
    // A caller that hangs up while the person is being asked: the call stops waiting (shown as
    // cancelled), and the agent's next command is asked at once.
    let (conversation, asked) = tokio::select! {
        r = post("run_bash", bash("printf gone > gone.txt")) => anyhow::bail!("answered before anyone was asked: {r:?}"),
        w = agents::waiting(&stack.api, "ci") => w?,
    };
    agents::until_decided(&stack.api, &conversation, &asked, "cancelled").await?;
    let hung_up = "printf gone > gone.txt (cancelled: the client hung up)";
    agents::until_audited(&stack.api, "agent.run_command", hung_up, "cancelled by the client").await?;
    let (r, call) = tokio::join!(post("run_bash", bash("printf yes > later.txt")), decide(&stack, "ci", true));
    let (r, _) = (r?, call?);
    assert_eq!(r.status(), 200);
    assert!(root.path().join("later.txt").exists() && !root.path().join("gone.txt").exists());
    // A pipeline with a blocked step runs none of its steps.
    let steps = json!({ "agent_id": "ci", "server_id": server, "cwd": cwd, "steps": ["ls", "touch blocked.txt"] });
    let r = post("agent/pipeline", steps).await?;
    assert_eq!(r.status(), 403);
    assert!(r.text().await?.contains("step 1"));
    assert!(!root.path().join("blocked.txt").exists());

    // The record: every decision in the audit log, refusals in the agents' histories.
    let log = stack
        .api
        .graphql("{ auditLog(action: \"policy.decision\", limit: 100) { result target detail } }", json!({}))
        .await?;
    let events = log["data"]["auditLog"].as_array().cloned().unwrap_or_default();
    let has = |result: &str, target: &str| events.iter().any(|e| e["result"] == result && e["target"] == target);
    assert!(
        has("blocked", "touch blocked.txt") && has("allowed", "ls") && has("asked", "printf no > declined.txt"),
        "{log}"
    );
    assert!(
        events.iter().any(|e| e["detail"].as_str().is_some_and(|d| d.contains("rule `touch ... blocked.txt`"))),
        "{log}"
    );
    let history = post("agent/history", json!({ "agent_id": "ci" })).await?.json::<Value>().await?;
    assert!(history.to_string().contains("blocked by the command policy"), "{history}");
    Ok(())
}

#[tokio::test]
async fn only_a_signed_in_admin_changes_the_policy_and_bad_rules_are_refused() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let ws = workspace(&stack).await?;
    let secret = token(&stack).await?;
    let set = "mutation($w: String!, $r: [PolicyRuleInput!], $o: String! = \"ask\") { setCommandPolicy(workspaceId: $w, rules: $r, otherwise: $o) { isDefault otherwise } }";
    // A token may not loosen what its own agents may run.
    let v = reqwest::Client::new()
        .post(format!("{}/graphql", stack.backend.url))
        .header("x-porta-token", &secret)
        .json(&json!({ "query": set, "variables": { "w": ws, "r": [{ "tier": "allow", "pattern": "*" }] } }))
        .send()
        .await?
        .json::<Value>()
        .await?;
    assert_eq!(v["errors"][0]["extensions"]["code"], "forbidden", "{v}");
    // Bad rules are refused, naming the rule; nothing changes.
    for (rules, says) in [
        (json!([{ "tier": "maybe", "pattern": "ls" }]), "rule 1"),
        (json!([{ "tier": "allow", "pattern": "ls" }, { "tier": "block", "pattern": "rm [" }]), "rule 2"),
        (json!([{ "tier": "block", "pattern": "" }]), "empty"),
    ] {
        let v = stack.api.graphql(set, json!({ "w": ws, "r": rules })).await?;
        assert_eq!(v["errors"][0]["extensions"]["code"], "bad_request", "{v}");
        assert!(v["errors"][0]["message"].as_str().is_some_and(|m| m.contains(says)), "{says}: {v}");
    }
    let v = stack.api.graphql(set, json!({ "w": ws, "r": [], "o": "sometimes" })).await?;
    assert_eq!(v["errors"][0]["extensions"]["code"], "bad_request", "{v}");
    let check =
        "query($w: String!, $c: String!) { checkCommand(workspaceId: $w, command: $c) { tier firm rule reason } }";
    let v = stack.api.graphql(check, json!({ "w": ws, "c": "sudo rm -rf /" })).await?;
    assert_eq!(v["data"]["checkCommand"]["tier"], "block", "the default still holds: {v}");
    // An admin's own policy: only `ls` allowed, the rest blocked; then back to the default.
    let v =
        stack.api.graphql(set, json!({ "w": ws, "r": [{ "tier": "allow", "pattern": "ls" }], "o": "block" })).await?;
    assert_eq!(v["data"]["setCommandPolicy"], json!({ "isDefault": false, "otherwise": "block" }), "{v}");
    let v = stack.api.graphql(check, json!({ "w": ws, "c": "uptime" })).await?;
    assert_eq!(
        (v["data"]["checkCommand"]["tier"].as_str(), v["data"]["checkCommand"]["firm"].as_bool()),
        (Some("block"), Some(false)),
        "{v}"
    );
    let v = stack.api.graphql(set, json!({ "w": ws, "r": null })).await?;
    assert_eq!(v["data"]["setCommandPolicy"]["isDefault"], true, "{v}");
    let log = stack.api.graphql("{ auditLog(action: \"policy.change\") { result detail } }", json!({})).await?;
    assert_eq!(log["data"]["auditLog"].as_array().map(Vec::len), Some(2), "{log}");
    Ok(())
}
