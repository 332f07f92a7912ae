//! Teams through the full path: isolation between teams (every GraphQL field, REST route and
//! stream request, taken from the schema, the source and the protocol so none can be
//! forgotten), invitation links, and what each role may do.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use porta_e2e::Stack;
use porta_e2e::client::{Api, Ws, is_code, term_open};
use porta_shared::ErrorCode;
use porta_shared::bridge::{FsRead, FsWrite, SysKill, SysProcesses};
use porta_shared::client::{AccessWatch, ClientEvent, ClientRequest, OnServer, StreamOpened, TermAttach};
use porta_shared::types::{Base64, Signal, TermId};
use serde_json::{Value, json};

const PASSWORD: &str = "a long enough password";
const WAIT: Duration = Duration::from_secs(15);

/// Team A's objects, as its owner (the admin) made them.
struct TeamA {
    team: String,
    workspace: String,
    server: String,
    term: u32,
    invitation: String,
    token: String,
    owner: String,
    project: String,
    agent: String,
    conversation: String,
    alert_channel: String,
    alert_rule: String,
}

async fn team_a(stack: &Stack, ws: &mut Ws) -> anyhow::Result<TeamA> {
    let api = &stack.api;
    let team = api.own_team().await?;
    let v = api
        .graphql("query($t: String!) { team(id: $t) { workspaces { id } } me { id } }", json!({ "t": team }))
        .await?;
    let workspace = v["data"]["team"]["workspaces"][0]["id"].as_str().unwrap_or_default().to_owned();
    let owner = v["data"]["me"]["id"].as_str().unwrap_or_default().to_owned();
    let q = "mutation($t: String!) { createInvitation(teamId: $t, role: \"viewer\") { info { id } } }";
    let v = api.graphql(q, json!({ "t": team })).await?;
    let invitation = v["data"]["createInvitation"]["info"]["id"].as_str().unwrap_or_default().to_owned();
    let v = api
        .graphql("mutation { createApiToken(name: \"ci\", scopes: [\"read\"]) { token info { id } } }", json!({}))
        .await?;
    let token = v["data"]["createApiToken"]["info"]["id"].as_str().unwrap_or_default().to_owned();
    // An agent of team A ("a-bot"), registered by its first call.
    let secret = v["data"]["createApiToken"]["token"].as_str().unwrap_or_default();
    let resp = api
        .http
        .post(format!("{}/api/v1/list_dir", api.base))
        .header("X-PORTA-TOKEN", secret)
        .json(&json!({ "agent_id": "a-bot", "server_id": stack.server_id, "path": "/" }))
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "a-bot: {}", resp.text().await?);
    let opened = ws.call(term_open(&stack.server_id)).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let q = "mutation($w: String!, $s: String!) {
        createProject(workspaceId: $w, serverId: $s, name: \"a-project\", path: $p) { id }
    }";
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("a-project").to_string_lossy().into_owned();
    let v =
        api.graphql(&q.replace("$p", &format!("{path:?}")), json!({ "w": workspace, "s": stack.server_id })).await?;
    let project = v["data"]["createProject"]["id"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!project.is_empty(), "project: {v}");
    let q = "mutation($w: String!) { createAgent(workspaceId: $w, template: \"qa\") { id } }";
    let v = api.graphql(q, json!({ "w": workspace })).await?;
    let agent = v["data"]["createAgent"]["id"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!agent.is_empty(), "agent: {v}");
    // (No model answers here: the answer fails, the conversation stays.)
    let q = "mutation($w: String!) { sendChatMessage(input: { workspaceId: $w, text: \"hello\" }) { conversation { id } } }";
    let v = api.graphql(q, json!({ "w": workspace })).await?;
    let conversation = v["data"]["sendChatMessage"]["conversation"]["id"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!conversation.is_empty(), "conversation: {v}");
    // An alert channel (to an address never reached here) and a rule.
    let q = "mutation($w: String!) { createAlertChannel(workspaceId: $w, name: \"a\", kind: \"webhook\", url: \"https://hooks.example.com/x\") { id } }";
    let v = api.graphql(q, json!({ "w": workspace })).await?;
    let alert_channel = v["data"]["createAlertChannel"]["id"].as_str().unwrap_or_default().to_owned();
    let q = "mutation($w: String!) { createAlertRule(workspaceId: $w, name: \"a\", kind: \"offline\", forSecs: 3600) { id } }";
    let v = api.graphql(q, json!({ "w": workspace })).await?;
    let alert_rule = v["data"]["createAlertRule"]["id"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!alert_channel.is_empty() && !alert_rule.is_empty(), "alerts: {v}");
    anyhow::ensure!(!workspace.is_empty() && !invitation.is_empty() && !token.is_empty(), "set-up failed");
    Ok(TeamA {
        alert_channel,
        alert_rule,
        team,
        workspace,
        server: stack.server_id.clone(),
        agent,
        conversation,
        term: opened.info.term.0,
        invitation,
        token,
        owner,
        project,
    })
}

/// What a caller from another team must get.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// `forbidden` or `not_found`, and no data.
    Refused,
    /// `null`, as for an id that does not exist.
    Null,
    /// An answer about the caller's own things, naming none of team A's.
    OwnOnly,
}

/// One GraphQL call per field of the schema, aimed at team A's objects.
fn graphql_table(a: &TeamA) -> HashMap<&'static str, (String, Expect)> {
    use Expect::*;
    let (s, t, w, i, k, u, p) = (&a.server, &a.team, &a.workspace, &a.invitation, &a.token, &a.owner, &a.project);
    let (ag, c) = (&a.agent, &a.conversation);
    let rows: Vec<(&'static str, String, Expect)> = vec![
        ("me", "{ me { id } }".into(), OwnOnly),
        ("limits", "{ limits { editorMaxBytes } }".into(), OwnOnly),
        ("auditLog", "{ auditLog { seq } }".into(), Refused),
        ("auditVerify", "{ auditVerify { intact } }".into(), Refused),
        ("apiTokens", "{ apiTokens { id } }".into(), OwnOnly),
        ("servers", "{ servers { id } }".into(), OwnOnly),
        ("server", format!("{{ server(id: \"{s}\") {{ id }} }}"), Null),
        ("terminals", format!("{{ terminals(serverId: \"{s}\") {{ id }} }}"), Refused),
        ("alertChannels", format!("{{ alertChannels(workspaceId: \"{w}\") {{ id }} }}"), Refused),
        ("alertRules", format!("{{ alertRules(workspaceId: \"{w}\") {{ id }} }}"), Refused),
        ("alerts", "{ alerts { id workspaceId } }".into(), OwnOnly),
        (
            "createAlertChannel",
            format!(
                "mutation {{ createAlertChannel(workspaceId: \"{w}\", name: \"b\", kind: \"webhook\", url: \"http://127.0.0.1:9/b\") {{ id }} }}"
            ),
            Refused,
        ),
        ("deleteAlertChannel", format!("mutation {{ deleteAlertChannel(id: \"{}\") }}", a.alert_channel), Refused),
        ("testAlertChannel", format!("mutation {{ testAlertChannel(id: \"{}\") {{ ok }} }}", a.alert_channel), Refused),
        (
            "createAlertRule",
            format!("mutation {{ createAlertRule(workspaceId: \"{w}\", name: \"b\", kind: \"offline\") {{ id }} }}"),
            Refused,
        ),
        (
            "setAlertRuleEnabled",
            format!("mutation {{ setAlertRuleEnabled(id: \"{}\", enabled: false) {{ id }} }}", a.alert_rule),
            Refused,
        ),
        ("deleteAlertRule", format!("mutation {{ deleteAlertRule(id: \"{}\") }}", a.alert_rule), Refused),
        ("serverSample", format!("{{ serverSample(serverId: \"{s}\") {{ cpu }} }}"), Refused),
        ("serverMetrics", format!("{{ serverMetrics(serverId: \"{s}\") {{ timestamps }} }}"), Refused),
        ("teams", "{ teams { id } }".into(), OwnOnly),
        ("team", format!("{{ team(id: \"{t}\") {{ id }} }}"), Refused),
        ("projects", format!("{{ projects(workspaceId: \"{w}\") {{ id }} }}"), Refused),
        ("projectTemplates", "{ projectTemplates { name } }".into(), OwnOnly),
        ("agentTemplates", "{ agentTemplates { name } }".into(), OwnOnly),
        ("agentTools", "{ agentTools { name } }".into(), OwnOnly),
        ("agents", format!("{{ agents(workspaceId: \"{w}\") {{ id }} }}"), Refused),
        ("agentOperations", format!("{{ agentOperations(agentId: \"{ag}\") {{ total }} }}"), Refused),
        (
            "createAgent",
            format!("mutation {{ createAgent(workspaceId: \"{w}\", template: \"qa\", name: \"bobs\") {{ id }} }}"),
            Refused,
        ),
        ("updateAgent", format!("mutation {{ updateAgent(id: \"{ag}\", disabled: true) {{ id }} }}"), Refused),
        ("deleteAgent", format!("mutation {{ deleteAgent(id: \"{ag}\") }}"), Refused),
        ("aiProvider", format!("{{ aiProvider(workspaceId: \"{w}\") {{ model }} }}"), Refused),
        ("aiReachable", format!("{{ aiReachable(workspaceId: \"{w}\") {{ ok }} }}"), Refused),
        (
            "setAiProvider",
            format!(
                "mutation {{ setAiProvider(workspaceId: \"{w}\", baseUrl: \"http://127.0.0.1:9/v1\", model: \"m\") {{ model }} }}"
            ),
            Refused,
        ),
        ("testAiProvider", format!("mutation {{ testAiProvider(workspaceId: \"{w}\") }}"), Refused),
        ("conversations", "{ conversations { id } }".into(), OwnOnly),
        ("conversation", format!("{{ conversation(id: \"{c}\") {{ conversation {{ id }} }} }}"), Refused),
        ("exportConversation", format!("{{ exportConversation(id: \"{c}\", format: \"json\") }}"), Refused),
        (
            "sendChatMessage",
            format!(
                "mutation {{ sendChatMessage(input: {{ conversationId: \"{c}\", text: \"hi\" }}) {{ conversation {{ id }} }} }}"
            ),
            Refused,
        ),
        ("stopChat", format!("mutation {{ stopChat(conversationId: \"{c}\") }}"), Refused),
        (
            "decideToolCall",
            format!("mutation {{ decideToolCall(conversationId: \"{c}\", callId: \"c1\", approve: true) }}"),
            Refused,
        ),
        ("renameConversation", format!("mutation {{ renameConversation(id: \"{c}\", title: \"mine\") }}"), Refused),
        ("deleteConversation", format!("mutation {{ deleteConversation(id: \"{c}\") }}"), Refused),
        (
            "createProject",
            format!(
                "mutation {{ createProject(workspaceId: \"{w}\", serverId: \"{s}\", name: \"x\", path: \"/nonexistent-porta-isolation/x\") {{ id }} }}"
            ),
            Refused,
        ),
        ("deleteProject", format!("mutation {{ deleteProject(id: \"{p}\") }}"), Refused),
        ("restoreProject", format!("mutation {{ restoreProject(id: \"{p}\") }}"), Refused),
        (
            "setProjectRun",
            format!("mutation {{ setProjectRun(id: \"{p}\", command: \"id\", port: 1) {{ id }} }}"),
            Refused,
        ),
        ("recordings", format!("{{ recordings(teamId: \"{t}\") {{ id }} }}"), Refused),
        (
            "createEnrollmentToken",
            format!("mutation {{ createEnrollmentToken(workspaceId: \"{w}\") {{ token }} }}"),
            Refused,
        ),
        (
            "createApiToken",
            format!("mutation {{ createApiToken(name: \"x\", scopes: [\"read\"], workspaceId: \"{w}\") {{ token }} }}"),
            Refused,
        ),
        ("revokeApiToken", format!("mutation {{ revokeApiToken(id: \"{k}\") }}"), Refused),
        ("revokeServer", format!("mutation {{ revokeServer(id: \"{s}\") }}"), Refused),
        ("updateServer", format!("mutation {{ updateServer(id: \"{s}\") {{ to }} }}"), Refused),
        ("updateWorkspaceServers", format!("mutation {{ updateWorkspaceServers(workspaceId: \"{w}\") }}"), Refused),
        ("createTeam", "mutation { createTeam(name: \"B's other team\") { id } }".into(), OwnOnly),
        ("renameTeam", format!("mutation {{ renameTeam(teamId: \"{t}\", name: \"mine\") }}"), Refused),
        ("chooseTeam", format!("mutation {{ chooseTeam(teamId: \"{t}\") }}"), Refused),
        ("deleteTeam", format!("mutation {{ deleteTeam(teamId: \"{t}\", name: \"A\") }}"), Refused),
        (
            "createInvitation",
            format!("mutation {{ createInvitation(teamId: \"{t}\", role: \"owner\") {{ link }} }}"),
            Refused,
        ),
        ("revokeInvitation", format!("mutation {{ revokeInvitation(teamId: \"{t}\", id: \"{i}\") }}"), Refused),
        (
            "setMemberRole",
            format!("mutation {{ setMemberRole(teamId: \"{t}\", userId: \"{u}\", role: \"viewer\") }}"),
            Refused,
        ),
        ("removeMember", format!("mutation {{ removeMember(teamId: \"{t}\", userId: \"{u}\") }}"), Refused),
        ("createWorkspace", format!("mutation {{ createWorkspace(teamId: \"{t}\", name: \"x\") {{ id }} }}"), Refused),
        ("renameWorkspace", format!("mutation {{ renameWorkspace(id: \"{w}\", name: \"x\") }}"), Refused),
        ("deleteWorkspace", format!("mutation {{ deleteWorkspace(id: \"{w}\") }}"), Refused),
        ("restoreWorkspace", format!("mutation {{ restoreWorkspace(id: \"{w}\") }}"), Refused),
        ("setWorkspaceRecording", format!("mutation {{ setWorkspaceRecording(id: \"{w}\", on: true) }}"), Refused),
        ("setWorkspaceQuotas", format!("mutation {{ setWorkspaceQuotas(id: \"{w}\", maxServers: 0) }}"), Refused),
        (
            "setWorkspaceRecordingLimits",
            format!("mutation {{ setWorkspaceRecordingLimits(id: \"{w}\", perRecordingMb: 1, totalMb: 1) }}"),
            Refused,
        ),
        ("previewBase", "{ previewBase }".into(), OwnOnly),
        ("previewShares", format!("{{ previewShares(serverId: \"{s}\") {{ id }} }}"), Refused),
        (
            "sharePreview",
            format!("mutation {{ sharePreview(serverId: \"{s}\", port: 3000, level: \"workspace\") {{ link }} }}"),
            Refused,
        ),
        // (Team A shares nothing: no preview domain here. An id that is nobody's is refused alike.)
        (
            "revokePreviewShare",
            "mutation { revokePreviewShare(id: \"00000000-0000-0000-0000-000000000000\") }".into(),
            Refused,
        ),
        ("commandPolicy", format!("{{ commandPolicy(workspaceId: \"{w}\") {{ otherwise }} }}"), Refused),
        ("checkCommand", format!("{{ checkCommand(workspaceId: \"{w}\", command: \"ls\") {{ tier }} }}"), Refused),
        (
            "setCommandPolicy",
            format!(
                "mutation {{ setCommandPolicy(workspaceId: \"{w}\", rules: [], otherwise: \"allow\") {{ otherwise }} }}"
            ),
            Refused,
        ),
    ];
    rows.into_iter().map(|(name, doc, e)| (name, (doc, e))).collect()
}

/// One request body per stream request type, aimed at team A's server and terminal. Paths
/// name a folder that does not exist, so nothing could be harmed even if a check failed.
fn stream_body(tag: &str, a: &TeamA) -> Option<Value> {
    let (s, t) = (&a.server, a.term);
    let p = "/nonexistent-porta-isolation/x";
    Some(match tag {
        "term.open" | "term.list" | "sys.info" => json!({ "server": s }),
        "term.attach" | "term.close" => json!({ "server": s, "term": t }),
        "term.rename" => json!({ "server": s, "term": t, "title": "mine" }),
        "term.detach" | "exec.cancel" | "fs.unwatch" => json!({ "stream": 1 }),
        "term.resize" => json!({ "stream": 1, "size": { "cols": 80, "rows": 24 } }),
        "term.signal" => json!({ "stream": 1, "signal": "int" }),
        "exec.start" => json!({ "server": s, "argv": ["true"] }),
        "chat.watch" | "chat.unwatch" => json!({ "conversation": a.conversation }),
        "sys.processes" => json!({ "server": s }),
        "sys.kill" => json!({ "server": s, "pid": 4_000_000, "signal": "term" }),
        "docker.list" | "docker.stats" => json!({ "server": s }),
        "docker.logs" => json!({ "server": s, "containers": ["porta-isolation-no-such-container"], "follow": true }),
        "docker.logs.read" => json!({ "server": s, "session": "porta-isolation-no-such-reading", "wait_ms": 0 }),
        "docker.logs.close" => json!({ "server": s, "session": "porta-isolation-no-such-reading" }),
        "docker.inspect" => json!({ "server": s, "id": "porta-isolation-no-such-container", "reveal_env": true }),
        "docker.action" => json!({
            "server": s, "id": "porta-isolation-no-such-container", "action": { "kind": "remove", "force": true }
        }),
        "docker.images" | "docker.volumes" | "docker.networks" | "docker.stacks" | "sys.ports" => {
            json!({ "server": s })
        }
        "docker.stack" => json!({ "server": s, "project": "porta-isolation-no-such-stack", "action": "down" }),
        "docker.recreate" => json!({ "server": s, "id": "porta-isolation-no-such-container", "pull": true }),
        "docker.image.remove" => json!({ "server": s, "image": "porta-isolation-no-such-image:1", "force": true }),
        "docker.image.check" | "docker.pull" => json!({ "server": s, "image": "porta-isolation-no-such-image:1" }),
        "docker.job.read" => json!({ "server": s, "job": "porta-isolation-no-such-job", "wait_ms": 0 }),
        "docker.volume.remove" => json!({ "server": s, "name": "porta-isolation-no-such-volume" }),
        "docker.network.remove" => json!({ "server": s, "id": "porta-isolation-no-such-network" }),
        "docker.prune" => json!({ "server": s, "what": "volumes", "remove": ["porta-isolation-no-such-volume"] }),
        "metrics.watch" | "metrics.unwatch" | "access.watch" => json!({ "server": s }),
        "fs.list" => json!({ "server": s, "path": p, "hidden": false }),
        "fs.stat" => json!({ "server": s, "path": p, "hash": false }),
        "fs.read" => json!({ "server": s, "path": p, "offset": 0 }),
        "fs.write" => json!({ "server": s, "path": p, "data": "eA==", "create_new": true }),
        "fs.upload.begin" => json!({ "server": s, "path": p, "size": 1, "create_new": true }),
        "fs.upload.chunk" => json!({ "server": s, "upload": "u", "offset": 0, "data": "eA==" }),
        "fs.upload.commit" => json!({ "server": s, "upload": "u" }),
        "fs.upload.abort" => json!({ "server": s, "upload": "u" }),
        "fs.mkdir" => json!({ "server": s, "path": p, "parents": true }),
        "fs.rename" => json!({ "server": s, "from": p, "to": p, "overwrite": false }),
        "fs.delete" => json!({ "server": s, "path": p, "recursive": true }),
        "fs.archive" | "fs.watch" | "git.status" | "git.head" => json!({ "server": s, "path": p }),
        "fs.archive.read" => json!({ "server": s, "archive": "a", "offset": 0 }),
        "fs.archive.close" => json!({ "server": s, "archive": "a" }),
        "fs.find" => json!({ "server": s, "path": p, "query": "x", "hidden": false }),
        "fs.search" => {
            json!({ "server": s, "path": p, "pattern": "x", "regex": false, "case_sensitive": false, "hidden": false })
        }
        _ => return None,
    })
}

/// How a caller from another team is kept off team A's things on one REST route.
struct Check {
    method: &'static str,
    path: String,
    /// A JSON body (the agent API's routes, called with Bob's API token).
    body: Option<Value>,
    status: u16,
}

fn check(method: &'static str, path: &str, status: u16) -> Option<Check> {
    Some(Check { method, path: path.to_owned(), body: None, status })
}

/// A call of the agent API with Bob's token.
fn agent_call(route: &str, body: Value) -> Option<Check> {
    Some(Check { method: "POST", path: route.to_owned(), body: Some(body), status: 404 })
}

/// Every REST route the backend defines, and how a caller from another team is kept off
/// team A's things there. `None`: the route concerns only the caller (or is public).
fn rest_table(a: &TeamA) -> HashMap<&'static str, Option<Check>> {
    let on = |extra: Value| {
        let mut body = json!({ "agent_id": "bob-bot", "server_id": a.server });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        body
    };
    let ws = a.workspace.clone();
    HashMap::from([
        ("/healthz", None),
        ("/readyz", None),
        ("/metrics", None),
        ("/graphql", None),         // the GraphQL table
        ("/graphql/ws", None),      // subscriptions: checked below
        ("/api/ws", None),          // the stream table
        ("/bridge/ws", None),       // bridges only, with their own credential
        ("/bridge/download", None), // bridges only, with their own credential
        ("/install.sh", None),      // public: a new server has no credential yet
        ("/download/{file}", None), // the static bridges, public for the same reason
        ("/api/auth/status", None),
        ("/api/auth/setup", None),
        ("/api/auth/login", None),
        ("/api/auth/refresh", None),
        ("/api/auth/logout", None),
        ("/api/auth/logout-all", None), // the caller's own sign-ins
        ("/api/auth/password", None),   // the caller's own password
        ("/api/auth/me", None),
        ("/api/ws/ticket", None),
        ("/api/audit/export", check("GET", "/api/audit/export?format=jsonl", 403)),
        ("/api/invitations/{token}", check("GET", "/api/invitations/pin_guessed", 404)),
        ("/api/recordings/{id}", check("GET", "/api/recordings/unknown", 404)),
        // Without a preview's cookie nobody is let in; with Bob's own ticket: below.
        ("/p/{*rest}", check("GET", &format!("/p/{}/8080/", a.server), 401)),
        ("/api/invitations/{token}/accept", check("POST", "/api/invitations/pin_guessed/accept", 404)),
        ("/mcp", None),                 // MCP: checked below with Bob's token
        ("/api/v1/meta", None),         // about the instance
        ("/api/v1/openapi.json", None), // public
        ("/api/v1/run_bash", agent_call("/api/v1/run_bash", on(json!({ "command": "touch /tmp/bob-was-here" })))),
        (
            "/api/v1/write_file",
            agent_call("/api/v1/write_file", on(json!({ "path": "/tmp/bob-was-here", "content": "x" }))),
        ),
        ("/api/v1/read_file", agent_call("/api/v1/read_file", on(json!({ "path": "/etc/hostname" })))),
        ("/api/v1/list_dir", agent_call("/api/v1/list_dir", on(json!({ "path": "/" })))),
        (
            "/api/v1/agent/pipeline",
            agent_call("/api/v1/agent/pipeline", on(json!({ "steps": ["touch /tmp/bob-was-here"] }))),
        ),
        (
            "/api/v1/agent/status",
            agent_call("/api/v1/agent/status", json!({ "agent_id": "a-bot", "workspace_id": ws })),
        ),
        ("/api/v1/agent/list", agent_call("/api/v1/agent/list", json!({ "agent_id": "bob-bot", "workspace_id": ws }))),
        (
            "/api/v1/agent/history",
            agent_call(
                "/api/v1/agent/history",
                json!({ "agent_id": "bob-bot", "of_agent": "a-bot", "workspace_id": ws }),
            ),
        ),
    ])
}

/// The routes in the backend's source (`.route("…"`).
fn routes_in_source() -> anyhow::Result<BTreeSet<String>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../backend/src");
    let mut found = BTreeSet::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path)?;
                for part in text.split(".route(").skip(1).chain(text.split(".nest_service(").skip(1)) {
                    if let Some(route) = part.trim_start().strip_prefix('"').and_then(|r| r.split('"').next()) {
                        found.insert(route.to_owned());
                    }
                }
            }
        }
    }
    Ok(found)
}

fn code(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_member_of_another_team_reaches_nothing_of_this_one() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let base = stack.backend.url.clone();
    let mut owner_ws = stack.api.ws().await?;
    let a = team_a(&stack, &mut owner_ws).await?;

    // Bob belongs to another team: the admin makes one, invites him as its owner, and leaves.
    let v = stack.api.graphql("mutation { createTeam(name: \"B\") { id } }", json!({})).await?;
    let team_b = v["data"]["createTeam"]["id"].as_str().unwrap_or_default().to_owned();
    let link = stack.api.invite(&team_b, "owner").await?;
    let bob = Api::join_by_link(&base, &link, "bob", PASSWORD).await?;
    let q = "mutation($t: String!, $u: String!) { removeMember(teamId: $t, userId: $u) }";
    let v = stack.api.graphql(q, json!({ "t": team_b, "u": a.owner })).await?;
    assert_eq!(v["data"]["removeMember"], true, "{v}");
    let a_ids = [&a.server, &a.team, &a.workspace, &a.invitation, &a.token, &a.project];

    // GraphQL: every field of the schema is in the table, and each is refused.
    let schema = bob
        .graphql("{ __schema { queryType { fields { name } } mutationType { fields { name } } } }", json!({}))
        .await?;
    let mut fields = BTreeSet::new();
    for root in ["queryType", "mutationType"] {
        for f in schema["data"]["__schema"][root]["fields"].as_array().into_iter().flatten() {
            fields.insert(f["name"].as_str().unwrap_or_default().to_owned());
        }
    }
    let table = graphql_table(&a);
    let missing: Vec<_> = fields.iter().filter(|f| !table.contains_key(f.as_str())).collect();
    assert!(missing.is_empty(), "GraphQL fields without an isolation check: {missing:?}");
    assert!(fields.len() >= table.len(), "the table names fields the schema lacks: {fields:?}");
    for (field, (doc, expect)) in &table {
        let v = bob.graphql(doc, json!({})).await?;
        match expect {
            Expect::Refused => {
                assert!(["forbidden", "not_found"].contains(&code(&v)), "{field}: {v}");
                assert!(v["data"].is_null() || v["data"][field].is_null(), "{field}: {v}");
            }
            Expect::Null => assert!(v["errors"].is_null() && v["data"][field].is_null(), "{field}: {v}"),
            Expect::OwnOnly => {
                assert!(v["errors"].is_null(), "{field}: {v}");
                let text = v.to_string();
                assert!(a_ids.iter().all(|id| !text.contains(id.as_str())), "{field} shows team A's things: {v}");
            }
        }
    }

    // Subscriptions: every one is refused for team A's server.
    let v = bob.graphql("{ __schema { subscriptionType { fields { name } } } }", json!({})).await?;
    let subscriptions: Vec<&str> = v["data"]["__schema"]["subscriptionType"]["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["name"].as_str())
        .collect();
    for field in &subscriptions {
        let doc = match *field {
            "serverSamples" => {
                format!("subscription {{ serverSamples(serverIds: [\"{}\"]) {{ serverId }} }}", a.server)
            }
            other => panic!("no isolation check for subscription {other}"),
        };
        let errors = bob.subscribe(&doc, json!({})).await?.next(WAIT).await?.expect_err("refused");
        assert!(
            ["forbidden", "not_found"].contains(&errors[0]["extensions"]["code"].as_str().unwrap_or("")),
            "{field}: {errors}"
        );
    }

    // Stream socket: every request type is in the table and refused.
    let mut ws = bob.ws().await?;
    for (n, tag) in ClientRequest::TYPES.iter().enumerate() {
        let body = stream_body(tag, &a).unwrap_or_else(|| panic!("no isolation check for stream request {tag}"));
        let id = format!("b{n}");
        let text = json!({ "v": 1, "id": id, "type": tag, "body": body }).to_string();
        let reply = ws.call_raw(text, &id).await?;
        let code = reply.result.map(|_| ()).map_err(|e| e.code);
        assert!(
            matches!(code, Err(ErrorCode::NotFound | ErrorCode::UnknownStream)),
            "{tag}: {code:?} (a bad_request means the table's body is wrong)"
        );
    }
    // A frame for a stream of the owner's socket is unknown on Bob's.
    ws.input(1, b"echo typed-by-bob\r").await?;
    assert_eq!(ws.wait_error(WAIT).await?.code, ErrorCode::UnknownStream);
    ws.close().await;

    // REST: every route in the source is in the table; the ones that reach objects refuse.
    let table = rest_table(&a);
    let routes = routes_in_source()?;
    let missing: Vec<_> = routes.iter().filter(|r| !table.contains_key(r.as_str())).collect();
    assert!(missing.is_empty(), "REST routes without an isolation check: {missing:?}");
    let v = bob
        .graphql(
            "mutation { createApiToken(name: \"bob\", scopes: [\"read\", \"write\", \"terminal\"]) { token } }",
            json!({}),
        )
        .await?;
    let bob_token = v["data"]["createApiToken"]["token"].as_str().unwrap_or_default().to_owned();
    for Check { method, path, body, status } in table.values().flatten() {
        let url = format!("{base}{path}");
        let req = match body {
            Some(body) => bob.http.post(url).header("X-PORTA-TOKEN", &bob_token).json(body),
            None if *method == "GET" => bob.http.get(url).bearer_auth(&bob.access),
            None => bob.http.post(url).bearer_auth(&bob.access),
        };
        let resp = req.send().await?;
        assert_eq!(resp.status().as_u16(), *status, "{method} {path}");
    }
    assert!(!std::path::Path::new("/tmp/bob-was-here").exists());
    // Bob's own ticket opens no preview of team A's server, and gets no cookie for one.
    let ticket = bob.ticket().await?;
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let entered = no_redirects.get(format!("{base}/p/{}/8080/?porta_ticket={ticket}", a.server)).send().await?;
    assert_eq!(entered.status().as_u16(), 404);
    assert!(entered.headers().get("set-cookie").is_none());
    // Without naming a workspace, Bob's agents see none of team A's.
    let agent_api = |route: &str, body: Value| {
        bob.http.post(format!("{base}/api/v1/{route}")).header("X-PORTA-TOKEN", &bob_token).json(&body).send()
    };
    let listed: Value = agent_api("agent/list", json!({ "agent_id": "bob-bot" })).await?.json().await?;
    assert_eq!(listed["total"], 0, "{listed}");
    let history: Value =
        agent_api("agent/history", json!({ "agent_id": "bob-bot", "of_agent": "a-bot" })).await?.json().await?;
    assert_eq!(history["total"], 0, "{history}");
    let status: Value = agent_api("agent/status", json!({ "agent_id": "a-bot" })).await?.json().await?;
    assert_eq!(status["status"], "unregistered", "{status}");
    // Over MCP, Bob's client lists none of team A's servers and reaches none.
    {
        use rmcp::ServiceExt as _;
        use rmcp::model::{CallToolRequestParams, ClientConfig};
        use rmcp::transport::StreamableHttpClientTransport;
        use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
        let config =
            StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp")).auth_header(bob_token.clone());
        let client = ClientConfig::default().serve(StreamableHttpClientTransport::from_config(config)).await?;
        let listed = client.call_tool(CallToolRequestParams::new("list_servers")).await?;
        assert!(!serde_json::to_string(&listed)?.contains(a.server.as_str()), "{listed:?}");
        let args = json!({ "server_id": a.server, "path": "/etc/hostname" }).as_object().cloned().unwrap_or_default();
        let read = client.call_tool(CallToolRequestParams::new("read_file").with_arguments(args)).await?;
        assert_eq!(read.is_error, Some(true), "{read:?}");
        assert!(serde_json::to_string(&read)?.contains("no server"), "{read:?}");
        client.cancel().await?;
    }

    // Nothing of team A changed.
    let v = stack
        .api
        .graphql(
            "query($t: String!) { team(id: $t) { name role invitations { id } workspaces { deletedMs recordTerminals maxServers } } servers { id online } apiTokens { revokedMs } }",
            json!({ "t": a.team }),
        )
        .await?;
    let team = &v["data"]["team"];
    assert_eq!((team["name"].as_str(), team["role"].as_str()), (Some("admin"), Some("owner")), "{v}");
    assert_eq!(team["invitations"][0]["id"].as_str(), Some(a.invitation.as_str()), "{v}");
    assert_eq!(team["workspaces"][0], json!({ "deletedMs": null, "recordTerminals": false, "maxServers": null }));
    assert_eq!(v["data"]["servers"][0], json!({ "id": a.server, "online": true }));
    assert!(v["data"]["apiTokens"].as_array().is_some_and(|t| t.iter().all(|t| t["revokedMs"].is_null())), "{v}");
    owner_ws.close().await;
    Ok(())
}

async fn attach(ws: &mut Ws, server: &str, term: u32) -> anyhow::Result<Result<StreamOpened, porta_shared::ErrorBody>> {
    ws.call(TermAttach { server: server.into(), term: TermId(term), after: 0 }).await
}

#[tokio::test]
async fn roles_decide_who_types_writes_and_manages() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let root_arg = root.path().to_string_lossy().into_owned();
    let stack = Stack::start(&[], &["--root", &root_arg]).await?;
    let base = stack.backend.url.clone();
    let admin = &stack.api;
    let team = admin.own_team().await?;
    let server = stack.server_id.clone();

    // Two people join by link: a developer and a viewer. Each link works once.
    let dev_link = admin.invite(&team, "developer").await?;
    let view_link = admin.invite(&team, "viewer").await?;
    let info: Value =
        reqwest::get(format!("{base}/api/invitations/{}", dev_link.rsplit('/').next().unwrap_or_default()))
            .await?
            .json()
            .await?;
    assert_eq!(
        (info["team"].as_str(), info["role"].as_str(), info["invited_by"].as_str()),
        (Some("admin"), Some("developer"), Some("admin"))
    );
    let dev = Api::join_by_link(&base, &dev_link, "dev", PASSWORD).await?;
    let again = Api::accept_link(&base, &dev_link, None, Some(("dev2", PASSWORD))).await?;
    assert_eq!(again.status().as_u16(), 404, "a link works once");
    assert_eq!(Api::login(&base, "dev2", PASSWORD).await.err().map(|_| ()), Some(()), "and made no account");
    let viewer = Api::join_by_link(&base, &view_link, "vic", PASSWORD).await?;
    let taken = admin.invite(&team, "viewer").await?;
    let resp = Api::accept_link(&base, &taken, None, Some(("dev", PASSWORD))).await?;
    assert_eq!(resp.status().as_u16(), 409, "a taken name is refused");
    // A signed-in person already in the team keeps the link unspent.
    let resp = Api::accept_link(&base, &taken, Some(&dev.access), None).await?;
    assert_eq!(resp.status().as_u16(), 409);

    // Both see the shared server, each with their role.
    for (api, role) in [(&dev, "developer"), (&viewer, "viewer")] {
        let v = api.graphql("{ servers { id role } }", json!({})).await?;
        assert_eq!(v["data"]["servers"], json!([{ "id": server, "role": role }]), "{v}");
    }

    // The developer opens a terminal and types; the viewer watches it but cannot type.
    let mut dws = dev.ws().await?;
    let opened = dws.call(term_open(&server)).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    dws.input(opened.stream, b"echo dev-$((6*7))\r").await?;
    dws.wait_output(opened.stream, "dev-42", WAIT).await?;
    let mut vws = viewer.ws().await?;
    let watching = attach(&mut vws, &server, opened.info.term.0).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    vws.wait_output(watching.stream, "dev-42", WAIT).await?;
    vws.input(watching.stream, b"echo viewer-$((5*5))\r").await?;
    let refused = vws.wait_error(WAIT).await?;
    assert_eq!(refused.code, ErrorCode::Forbidden, "{refused:?}");
    assert!(refused.message.contains("cannot type"), "{refused:?}");
    assert!(is_code(&vws.call(term_open(&server)).await?, ErrorCode::Forbidden));
    // A viewer sees the processes but signals none (pid 1 would be refused by the bridge as
    // well, with forbidden too: this is the role's refusal, which names it).
    let procs = vws.call(OnServer { server: server.clone(), req: SysProcesses {} }).await?;
    assert!(procs.is_ok_and(|l| !l.processes.is_empty() || l.ts_ms == 0));
    let kill =
        vws.call(OnServer { server: server.clone(), req: SysKill { pid: 4_000_000, signal: Signal::Term } }).await?;
    assert!(kill.as_ref().is_err_and(|e| e.code == ErrorCode::Forbidden && e.message.contains("role")), "{kill:?}");
    let write = FsWrite {
        path: "notes.txt".into(),
        data: Base64(b"viewer was here".to_vec()),
        expected_sha256: None,
        create_new: true,
        mode: None,
    };
    let refused = vws.call(OnServer { server: server.clone(), req: write }).await?;
    assert!(is_code(&refused, ErrorCode::Forbidden), "{refused:?}");
    assert!(!root.path().join("notes.txt").exists(), "nothing was written");
    // The developer's write that meets a changed file fails on the server.
    std::fs::write(root.path().join("shared.txt"), "v1")?;
    let stale = FsWrite {
        path: "shared.txt".into(),
        data: Base64(b"v2".to_vec()),
        expected_sha256: Some("0".repeat(64)),
        create_new: false,
        mode: None,
    };
    let failed = dws.call(OnServer { server: server.clone(), req: stale }).await?;
    assert!(is_code(&failed, ErrorCode::Conflict), "{failed:?}");
    // Both are in the audit log with their outcome.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = admin.graphql("{ auditLog(action: \"file.write\") { actorName result detail } }", json!({})).await?;
        let events = v["data"]["auditLog"].as_array().cloned().unwrap_or_default();
        let has = |who: &str, result: &str| events.iter().any(|e| e["actorName"] == who && e["result"] == result);
        if has("vic", "denied") && has("dev", "failed: conflict") {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "audit outcomes: {events:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let read = FsRead { path: ".".into(), offset: 0, limit: None };
    let _ = vws.call(OnServer { server: server.clone(), req: read }).await?;
    // The developer's next line shows the viewer's keys never reached the shell.
    dws.input(opened.stream, b"echo after-$((2*3))\r").await?;
    let text = vws.wait_output(watching.stream, "after-6", WAIT).await?;
    assert!(!text.contains("viewer-25"), "the viewer's input ran: {text}");

    // Management is for admins; a developer is told what is needed.
    let v = dev
        .graphql(
            "mutation($t: String!) { createInvitation(teamId: $t, role: \"viewer\") { link } }",
            json!({ "t": team }),
        )
        .await?;
    assert_eq!(code(&v), "forbidden", "{v}");
    assert!(v["errors"][0]["message"].as_str().is_some_and(|m| m.contains("admin role")), "{v}");
    let v = viewer.graphql("mutation { revokeServer(id: \"x\") }", json!({})).await?;
    assert_eq!(code(&v), "not_found", "{v}");
    let v = dev.graphql("mutation($s: String!) { updateServer(id: $s) { to } }", json!({ "s": server })).await?;
    assert_eq!(code(&v), "forbidden", "updating a bridge is an admin's: {v}");

    // Demoting the developer to viewer takes effect on the open socket at once.
    let members = admin
        .graphql("query($t: String!) { team(id: $t) { members { userId username role } } }", json!({ "t": team }))
        .await?;
    let id_of = |name: &str| {
        members["data"]["team"]["members"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["username"] == name))
            .and_then(|m| m["userId"].as_str())
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let (dev_id, vic_id, admin_id) = (id_of("dev"), id_of("vic"), id_of("admin"));
    let set_role =
        "mutation($t: String!, $u: String!, $r: String!) { setMemberRole(teamId: $t, userId: $u, role: $r) }";
    // The socket follows the server, so it is told once it has applied the change.
    dws.call(AccessWatch { server: server.clone() }).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let v = admin.graphql(set_role, json!({ "t": team, "u": dev_id, "r": "viewer" })).await?;
    assert_eq!(v["data"]["setMemberRole"], true, "{v}");
    let demoted = |e: &ClientEvent| matches!(e, ClientEvent::AccessChanged(a) if a.role.as_deref() == Some("viewer"));
    dws.wait_event(demoted, WAIT).await?;
    dws.input(opened.stream, b"echo demoted\r").await?;
    assert_eq!(dws.wait_error(WAIT).await?.code, ErrorCode::Forbidden);

    // Removing the viewer closes what they watch.
    let remove = "mutation($t: String!, $u: String!) { removeMember(teamId: $t, userId: $u) }";
    let v = admin.graphql(remove, json!({ "t": team, "u": vic_id })).await?;
    assert_eq!(v["data"]["removeMember"], true, "{v}");
    let closed =
        vws.wait_event(|e| matches!(e, ClientEvent::StreamClosed(c) if c.stream == watching.stream), WAIT).await?;
    assert!(matches!(closed, ClientEvent::StreamClosed(c) if c.reason.code == ErrorCode::NotFound));
    let v = viewer.graphql("{ servers { id } }", json!({})).await?;
    assert_eq!(v["data"]["servers"], json!([]), "{v}");

    // The last owner can neither leave nor step down; an admin cannot make owners.
    let v = admin.graphql(remove, json!({ "t": team, "u": admin_id })).await?;
    assert_eq!(code(&v), "conflict", "{v}");
    let v = admin.graphql(set_role, json!({ "t": team, "u": admin_id, "r": "admin" })).await?;
    assert_eq!(code(&v), "conflict", "{v}");
    let v = admin.graphql(set_role, json!({ "t": team, "u": dev_id, "r": "admin" })).await?;
    assert_eq!(v["data"]["setMemberRole"], true, "{v}");
    let v = dev.graphql(set_role, json!({ "t": team, "u": dev_id, "r": "owner" })).await?;
    assert_eq!(code(&v), "forbidden", "an admin cannot make an owner: {v}");
    let v = dev.graphql(set_role, json!({ "t": team, "u": admin_id, "r": "viewer" })).await?;
    assert_eq!(code(&v), "forbidden", "nor touch one: {v}");

    // A deleted workspace hides its server from everyone until it is restored.
    let v = admin.graphql("query($t: String!) { team(id: $t) { workspaces { id } } }", json!({ "t": team })).await?;
    let wsid = v["data"]["team"]["workspaces"][0]["id"].as_str().unwrap_or_default().to_owned();
    let v = admin.graphql("mutation($w: String!) { deleteWorkspace(id: $w) }", json!({ "w": wsid })).await?;
    assert_eq!(v["data"]["deleteWorkspace"], true, "{v}");
    assert_eq!(admin.graphql("{ servers { id } }", json!({})).await?["data"]["servers"], json!([]));
    let closed = dws.wait_event(|e| matches!(e, ClientEvent::StreamClosed(_)), WAIT).await?;
    assert!(matches!(closed, ClientEvent::StreamClosed(c) if c.stream == opened.stream));
    let v = admin.graphql("mutation($w: String!) { restoreWorkspace(id: $w) }", json!({ "w": wsid })).await?;
    assert_eq!(v["data"]["restoreWorkspace"], true, "{v}");
    assert_eq!(admin.servers().await?.len(), 1);

    // A token limited to another workspace reaches nothing here.
    let v = admin
        .graphql(
            "mutation($t: String!) { createWorkspace(teamId: $t, name: \"staging\") { id } }",
            json!({ "t": team }),
        )
        .await?;
    let staging = v["data"]["createWorkspace"]["id"].as_str().unwrap_or_default().to_owned();
    let q = "mutation($w: String!) { createApiToken(name: \"staging-ci\", scopes: [\"read\", \"terminal\"], workspaceId: $w) { token } }";
    let v = admin.graphql(q, json!({ "w": staging })).await?;
    let token = v["data"]["createApiToken"]["token"].as_str().unwrap_or_default().to_owned();
    let resp = admin
        .http
        .post(format!("{base}/graphql"))
        .header("X-PORTA-TOKEN", &token)
        .json(&json!({ "query": "{ servers { id } }" }))
        .send()
        .await?;
    assert_eq!(resp.json::<Value>().await?["data"]["servers"], json!([]));
    let resp = admin
        .http
        .post(format!("{base}/graphql"))
        .header("X-PORTA-TOKEN", &token)
        .json(&json!({ "query": format!("{{ terminals(serverId: \"{server}\") {{ id }} }}") }))
        .send()
        .await?;
    assert_eq!(code(&resp.json::<Value>().await?), "not_found");

    // Quotas: a workspace at its server quota refuses another enrolment token.
    let v = admin
        .graphql("mutation($w: String!) { setWorkspaceQuotas(id: $w, maxServers: 1) }", json!({ "w": wsid }))
        .await?;
    assert_eq!(v["data"]["setWorkspaceQuotas"], true, "{v}");
    let v = admin
        .graphql("mutation($w: String!) { createEnrollmentToken(workspaceId: $w) { token } }", json!({ "w": wsid }))
        .await?;
    assert_eq!(code(&v), "conflict", "{v}");
    assert!(v["errors"][0]["message"].as_str().is_some_and(|m| m.contains("quota of 1 servers")), "{v}");

    // Each of these is in the audit log.
    let v = admin.graphql("{ auditLog(action: \"team.\", limit: 50) { action actorName detail } }", json!({})).await?;
    let actions: Vec<&str> =
        v["data"]["auditLog"].as_array().into_iter().flatten().filter_map(|e| e["action"].as_str()).collect();
    for a in ["team.invite", "team.join", "team.role", "team.remove"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    let v = admin.graphql("{ auditLog(action: \"workspace.\", limit: 50) { action } }", json!({})).await?;
    let actions = v["data"]["auditLog"].to_string();
    for a in ["workspace.delete", "workspace.restore", "workspace.create", "workspace.quotas"] {
        assert!(actions.contains(a), "{a} missing from {actions}");
    }
    Ok(())
}

#[tokio::test]
async fn a_workspace_runs_at_most_its_quota_of_terminals() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let api = &stack.api;
    let team = api.own_team().await?;
    let v = api.graphql("query($t: String!) { team(id: $t) { workspaces { id } } }", json!({ "t": team })).await?;
    let ws = v["data"]["team"]["workspaces"][0]["id"].as_str().unwrap_or_default().to_owned();
    let v = api
        .graphql("mutation($w: String!) { setWorkspaceQuotas(id: $w, maxTerminals: 2) }", json!({ "w": ws }))
        .await?;
    assert_eq!(v["data"]["setWorkspaceQuotas"], true, "{v}");
    let mut sock = api.ws().await?;
    let first = sock.call(term_open(&stack.server_id)).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    sock.call(term_open(&stack.server_id)).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let third = sock.call(term_open(&stack.server_id)).await?;
    assert!(is_code(&third, ErrorCode::Conflict), "{third:?}");
    assert!(third.err().is_some_and(|e| e.message.contains("quota of 2 terminals")));
    // A shell that ends frees its place.
    sock.input(first.stream, b"exit\r").await?;
    sock.wait_event(|e| matches!(e, ClientEvent::TermExited(x) if x.stream == first.stream), WAIT).await?;
    sock.call(term_open(&stack.server_id)).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(())
}

/// A single-use link used eight times at once makes one account, and only that one can sign
/// in: spending the link and making the account happen together or not at all.
#[tokio::test]
async fn eight_parallel_uses_of_one_link_make_one_account() -> anyhow::Result<()> {
    let b = porta_e2e::Backend::start(&[("PORTA_LOGIN_ATTEMPTS_PER_MINUTE", "1000")]).await?;
    let admin = porta_e2e::Api::login(&b.url, "admin", porta_e2e::ADMIN_PASSWORD).await?;
    let link = admin.invite(&admin.own_team().await?, "developer").await?;
    let names: Vec<String> = (0..8).map(|i| format!("racer{i}")).collect();
    let tries =
        names.iter().map(|n| porta_e2e::Api::accept_link(&b.url, &link, None, Some((n, "a long enough password"))));
    let statuses: Vec<u16> =
        futures_util::future::join_all(tries).await.into_iter().map(|r| r.map_or(0, |r| r.status().as_u16())).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    let mut signed_in = 0;
    for n in &names {
        if porta_e2e::Api::post_login(&b.url, n, "a long enough password").await?.status() == 200 {
            signed_in += 1;
        }
    }
    assert_eq!(signed_in, 1, "exactly one account exists");
    Ok(())
}

/// The id of the team marked current for this caller.
async fn current_team(api: &Api) -> anyhow::Result<String> {
    let v = api.graphql("{ teams { id current } }", json!({})).await?;
    let teams = v["data"]["teams"].as_array().cloned().unwrap_or_default();
    let current: Vec<&Value> = teams.iter().filter(|t| t["current"] == true).collect();
    anyhow::ensure!(current.len() == 1, "exactly one current team: {v}");
    Ok(current[0]["id"].as_str().unwrap_or_default().to_owned())
}

/// A new device opens on the team the person chose last; an owner deletes a team (naming it),
/// never one that still holds servers, and everything in it goes.
#[tokio::test]
async fn the_chosen_team_follows_a_person_and_an_owner_deletes_an_empty_team() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let admin = &stack.api;
    let own = admin.own_team().await?;
    let v = admin.graphql("mutation { createTeam(name: \"Zeta\") { id current } }", json!({})).await?;
    let zeta = v["data"]["createTeam"]["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(current_team(admin).await?, zeta, "a new team is the one shown");
    admin.graphql("mutation($t: String!) { chooseTeam(teamId: $t) }", json!({ "t": own })).await?;
    // Another device (a new sign-in) opens on the team chosen last.
    let other_device = Api::login(&stack.backend.url, "admin", porta_e2e::ADMIN_PASSWORD).await?;
    assert_eq!(current_team(&other_device).await?, own);
    let v = admin.graphql("mutation { chooseTeam(teamId: \"no-such-team\") }", json!({})).await?;
    assert!(["forbidden", "not_found"].contains(&code(&v)), "{v}");
    assert_eq!(current_team(admin).await?, own, "a refused choice changes nothing");

    // Someone who joins a team sees it first; as its admin they may not delete it.
    let link = admin.invite(&zeta, "admin").await?;
    let bob = Api::join_by_link(&stack.backend.url, &link, "bob", PASSWORD).await?;
    assert_eq!(current_team(&bob).await?, zeta);
    let delete = "mutation($t: String!, $n: String!) { deleteTeam(teamId: $t, name: $n) }";
    let v = bob.graphql(delete, json!({ "t": zeta, "n": "Zeta" })).await?;
    assert_eq!(code(&v), "forbidden", "{v}");

    // Zeta gets a workspace's worth of things: a token limited to it, an enrolment token.
    let v = admin.graphql("query($t: String!) { team(id: $t) { workspaces { id } } }", json!({ "t": zeta })).await?;
    let ws = v["data"]["team"]["workspaces"][0]["id"].as_str().unwrap_or_default().to_owned();
    let q = "mutation($w: String!) { createApiToken(name: \"z\", scopes: [\"read\"], workspaceId: $w) { token } }";
    let v = admin.graphql(q, json!({ "w": ws })).await?;
    let secret = v["data"]["createApiToken"]["token"].as_str().unwrap_or_default().to_owned();
    let as_token = Api::with_token(&stack.backend.url, &secret);
    assert!(as_token.graphql("{ me { id } }", json!({})).await?["data"]["me"]["id"].is_string());
    let q = "mutation($w: String!) { createEnrollmentToken(workspaceId: $w) { token } }";
    let v = admin.graphql(q, json!({ "w": ws })).await?;
    anyhow::ensure!(v["data"]["createEnrollmentToken"]["token"].is_string(), "{v}");

    // Refused: the wrong name; a team that holds a server. Nothing changes.
    let v = admin.graphql(delete, json!({ "t": zeta, "n": "zeta" })).await?;
    assert_eq!(code(&v), "bad_request", "{v}");
    let own_name = admin.graphql("{ teams { id name } }", json!({})).await?["data"]["teams"]
        .as_array()
        .and_then(|l| {
            l.iter().find(|t| t["id"] == own.as_str()).map(|t| t["name"].as_str().unwrap_or_default().to_owned())
        })
        .unwrap_or_default();
    let v = admin.graphql(delete, json!({ "t": own, "n": own_name })).await?;
    assert_eq!(code(&v), "conflict", "{v}");
    assert!(v["errors"][0]["message"].as_str().unwrap_or_default().contains("1 server still belongs"), "{v}");
    assert_eq!(admin.servers().await?.len(), 1, "the server is untouched");

    // Deleted: gone for every member, its tokens with it, and audited.
    admin.graphql("mutation($t: String!) { chooseTeam(teamId: $t) }", json!({ "t": zeta })).await?;
    let v = admin.graphql(delete, json!({ "t": zeta, "n": "Zeta" })).await?;
    assert_eq!(v["data"]["deleteTeam"], true, "{v}");
    for api in [admin, &bob] {
        let v = api.graphql("{ teams { id } }", json!({})).await?;
        assert!(!v.to_string().contains(&zeta), "{v}");
    }
    assert_eq!(current_team(admin).await?, own, "the remembered team is gone: another is current");
    let v = as_token.graphql("{ me { id } }", json!({})).await?;
    assert!(v["data"]["me"].is_null() || v["errors"].is_array(), "a token limited to the team is gone: {v}");
    let v = admin.graphql("{ auditLog { action target } }", json!({})).await?;
    assert!(v.to_string().contains("team.delete"), "{v}");
    Ok(())
}

/// A tab following a server hears at once when the person's role there changes, and when they
/// lose access, so the page can follow (read-only, or leave).
#[tokio::test]
async fn a_tab_following_a_server_hears_of_role_changes_and_removal() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let admin = &stack.api;
    let team = admin.own_team().await?;
    let link = admin.invite(&team, "developer").await?;
    let bob = Api::join_by_link(&stack.backend.url, &link, "bob", PASSWORD).await?;
    let bob_id =
        bob.graphql("{ me { id } }", json!({})).await?["data"]["me"]["id"].as_str().unwrap_or_default().to_owned();
    let mut ws = bob.ws().await?;
    let server = stack.server_id.clone();
    let watching = ws.call(porta_shared::client::AccessWatch { server: server.clone() }).await??;
    assert_eq!(watching.role, "developer");

    let set_role =
        "mutation($t: String!, $u: String!, $r: String!) { setMemberRole(teamId: $t, userId: $u, role: $r) }";
    admin.graphql(set_role, json!({ "t": team, "u": bob_id, "r": "viewer" })).await?;
    let ev = ws.wait_event(|e| matches!(e, ClientEvent::AccessChanged(_)), WAIT).await?;
    assert_eq!(
        ev,
        ClientEvent::AccessChanged(porta_shared::client::AccessChanged {
            server: server.clone(),
            role: Some("viewer".into())
        })
    );
    // A change elsewhere (another member) says nothing to Bob.
    let link = admin.invite(&team, "viewer").await?;
    let _carol = Api::join_by_link(&stack.backend.url, &link, "carol", PASSWORD).await?;
    ws.drain_for(Duration::from_millis(300)).await;
    assert!(!ws.events.iter().any(|e| matches!(e, ClientEvent::AccessChanged(_))), "{:?}", ws.events);

    let remove = "mutation($t: String!, $u: String!) { removeMember(teamId: $t, userId: $u) }";
    admin.graphql(remove, json!({ "t": team, "u": bob_id })).await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let gone = ws
            .events
            .iter()
            .any(|e| matches!(e, ClientEvent::AccessChanged(c) if c.server == server && c.role.is_none()));
        if gone {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no word of the removal: {:?}", ws.events);
        ws.drain_for(Duration::from_millis(100)).await;
    }
    // Following again is refused now.
    let again = ws.call(porta_shared::client::AccessWatch { server }).await?;
    assert!(again.is_err(), "{again:?}");
    Ok(())
}
