//! Playing an agent and the person it asks: an MCP client with the official `rmcp` library,
//! and the approvals waiting in Porta, found and decided through GraphQL as the panel does.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::client::Api;

pub type McpClient = RunningService<RoleClient, ClientConfig>;

/// Connects to `/mcp` with an API token, as the agent named `agent` (`X-PORTA-AGENT`).
pub async fn connect(base: &str, token: &str, agent: &str) -> anyhow::Result<McpClient> {
    connect_with(mcp_http::Client::new(), base, token, agent).await
}

/// Like [`connect`], through `http` (e.g. one that never reuses a connection, so that a
/// balancer sends each request where it likes).
pub async fn connect_with(http: mcp_http::Client, base: &str, token: &str, agent: &str) -> anyhow::Result<McpClient> {
    let headers = HashMap::from([(HeaderName::from_static("x-porta-agent"), HeaderValue::from_str(agent)?)]);
    let config =
        StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp")).auth_header(token).custom_headers(headers);
    Ok(ClientConfig::default().serve(StreamableHttpClientTransport::with_client(http, config)).await?)
}

/// Calls a tool with JSON arguments.
pub async fn call(client: &McpClient, tool: &str, args: Value) -> anyhow::Result<CallToolResult> {
    let args = args.as_object().cloned().unwrap_or_default();
    Ok(client.call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args)).await?)
}

/// A tool's result as JSON text (content and structured content), to search in.
pub fn shown(r: &CallToolResult) -> String {
    serde_json::to_string(r).unwrap_or_default()
}

/// The call from `agent` waiting for the person (as `api` sees it): its conversation and
/// the call (`id`, `decision`, `preview`, `arguments`).
pub async fn waiting(api: &Api, agent: &str) -> anyhow::Result<(String, Value)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v = api
            .graphql(
                "query($s: String) { conversations(search: $s) { id } }",
                json!({ "s": format!("Changes asked for by {agent}") }),
            )
            .await?;
        for c in v["data"]["conversations"].as_array().into_iter().flatten() {
            let id = c["id"].as_str().unwrap_or_default();
            if let Some(call) = tool_calls(api, id).await?.into_iter().find(|t| t["decision"] == "pending") {
                return Ok((id.to_owned(), call));
            }
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "nothing from {agent} waited for a decision");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every tool call in `conversation` (`id`, `decision`, `preview`, `arguments`), oldest first.
async fn tool_calls(api: &Api, conversation: &str) -> anyhow::Result<Vec<Value>> {
    let q =
        "query($id: String!) { conversation(id: $id) { messages { toolCalls { id decision preview arguments } } } }";
    let d = api.graphql(q, json!({ "id": conversation })).await?;
    Ok(d["data"]["conversation"]["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|m| m["toolCalls"].as_array().cloned().unwrap_or_default())
        .collect())
}

/// Waits until `call` (as [`waiting`] returned it) in `conversation` has the decision `want`.
pub async fn until_decided(api: &Api, conversation: &str, call: &Value, want: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let this = tool_calls(api, conversation).await?.into_iter().find(|c| c["id"] == call["id"]).unwrap_or_default();
        if this["decision"] == want {
            return Ok(());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{this}, not {want}, after 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the audit log holds an `action` event whose detail and result contain the
/// given texts (what is recorded after a call ends may come a moment after the call shows so).
pub async fn until_audited(api: &Api, action: &str, detail: &str, result: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let log =
            api.graphql("query($a: String) { auditLog(action: $a) { result detail } }", json!({ "a": action })).await?;
        let found = log["data"]["auditLog"].as_array().into_iter().flatten().any(|e| {
            e["detail"].as_str().is_some_and(|d| d.contains(detail))
                && e["result"].as_str().is_some_and(|r| r.contains(result))
        });
        if found {
            return Ok(());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no {action} with {detail:?} and {result:?}: {log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for a call from `agent` to wait for the person, and decides it; the call.
pub async fn decide(api: &Api, agent: &str, approve: bool) -> anyhow::Result<Value> {
    let (conv, call) = waiting(api, agent).await?;
    let q = "mutation($c: String!, $k: String!, $a: Boolean!) { decideToolCall(conversationId: $c, callId: $k, approve: $a) }";
    let v = api.graphql(q, json!({ "c": conv, "k": call["id"], "a": approve })).await?;
    anyhow::ensure!(v["data"]["decideToolCall"] == true, "{v}");
    Ok(call)
}
