//! The Model Context Protocol endpoint (`/mcp`, streamable HTTP, served with the official
//! `rmcp` crate): external AI clients get the agents' tools on the servers their API token
//! reaches, under the same rules as everything else.
//!
//! A client authenticates with a personal API token (`X-PORTA-TOKEN` or `Authorization:
//! Bearer`) and acts as an agent of the server's workspace — named by the `X-PORTA-AGENT`
//! header, or its MCP client name — registered on its first call and held to the workspace's
//! agent quota. Reads run at once; writes and commands wait until the person approves them in
//! the assistant's panel (a conversation "Changes asked for by …"), unless the agent is allowed
//! that tool without asking. Every call is in the agent's history and the audit log.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::store::{SessionState, SessionStore, SessionStoreError};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};

use crate::assistant::chat::APPROVAL_WAIT;
use crate::assistant::openai::{FunctionCall, ToolCall};
use crate::assistant::{agents, chat, tools};
use crate::auth::scopes::{Access, Scope};
use crate::auth::{AuthUser, MaybeAuthUser};
use crate::clock::now_ms;
use crate::db::Store;
use crate::error::Error;
use crate::policy;
use crate::policy::check::Decision;
use crate::state::AppState;

/// The header naming the calling agent.
pub const AGENT_HEADER: &str = "x-porta-agent";

pub fn router(state: &AppState) -> Router<AppState> {
    // Host checks against DNS rebinding: loopback, and the host people reach Porta at.
    let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "[::1]".to_owned()];
    if let Some(host) = state.public_url.split("://").nth(1).map(|rest| rest.split('/').next().unwrap_or(rest)) {
        hosts.push(host.to_owned());
        if let Some((name, _port)) = host.rsplit_once(':') {
            hosts.push(name.to_owned());
        }
    }
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        // MCP clients are programs, not pages: a browser's Origin is refused.
        .enforce_origin_validation()
        .with_max_request_body_bytes(2 << 20);
    // Sessions are kept in the store: one begun on one replica goes on at another.
    config.session_store = Some(Arc::new(Sessions(state.store.clone())));
    let handler_state = state.clone();
    // A session outlives the longest wait for a person's approval: rmcp ends an idle session
    // (5 minutes by default) and cancels its calls, which would end a quiet client's pending
    // change half-way through its wait as if the client had given up.
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(APPROVAL_WAIT + std::time::Duration::from_secs(60));
    let service: StreamableHttpService<Mcp, LocalSessionManager> =
        StreamableHttpService::new(move || Ok(Mcp { state: handler_state.clone() }), Arc::new(sessions), config);
    Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn(session_ended))
        .layer(axum::middleware::from_fn_with_state(state.clone(), authenticate))
}

/// A session ended by `DELETE` answers 204: rmcp says 202 ("accepted", as if work were
/// still to come), which MCP clients (the official SDKs) log as a failed termination.
async fn session_ended(req: Request, next: Next) -> Response {
    let delete = req.method() == axum::http::Method::DELETE;
    let resp = next.run(req).await;
    if delete && resp.status() == axum::http::StatusCode::ACCEPTED {
        let (mut parts, _) = resp.into_parts();
        parts.status = axum::http::StatusCode::NO_CONTENT;
        parts.headers.remove(axum::http::header::CONTENT_LENGTH);
        parts.headers.remove(axum::http::header::CONTENT_TYPE);
        return Response::from_parts(parts, axum::body::Body::empty());
    }
    resp
}

/// How long an unused session is kept.
const SESSION_IDLE_MS: i64 = 7 * 24 * 3600 * 1000;

/// MCP sessions in the store (what rmcp needs to take a session up again: the client's
/// `initialize` parameters). Sessions unused for [`SESSION_IDLE_MS`] are forgotten as others
/// are saved; their clients begin new ones, as MCP has them do when a session is unknown.
struct Sessions(Store);

#[async_trait::async_trait]
impl SessionStore for Sessions {
    async fn load(&self, id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let Some(json) = self.0.use_mcp_session(id, now_ms()).await? else { return Ok(None) };
        Ok(Some(serde_json::from_str(&json)?))
    }

    async fn store(&self, id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let now = now_ms();
        self.0.save_mcp_session(id, &serde_json::to_string(state)?, now).await?;
        self.0.sweep_mcp_sessions(now - SESSION_IDLE_MS).await?;
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), SessionStoreError> {
        Ok(self.0.delete_mcp_session(id).await?)
    }
}

/// Lets only API tokens in, and hands the caller to the handler in the request's extensions.
async fn authenticate(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let user =
        <MaybeAuthUser as axum::extract::FromRequestParts<AppState>>::from_request_parts(&mut parts, &state).await;
    let user = match user {
        Ok(MaybeAuthUser(Some(u @ AuthUser(_, Access::Token { .. })))) => u,
        Ok(_) => {
            return Error::Unauthorized("the MCP endpoint takes a personal API token (X-PORTA-TOKEN or Bearer)".into())
                .into_response();
        }
        Err(e) => return e.into_response(),
    };
    req = Request::from_parts(parts, body);
    req.extensions_mut().insert(user);
    next.run(req).await
}

#[derive(Clone)]
pub struct Mcp {
    state: AppState,
}

/// The caller of a request.
fn caller(ctx: &RequestContext<RoleServer>) -> Result<AuthUser, rmcp::ErrorData> {
    ctx.extensions
        .get::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<AuthUser>())
        .cloned()
        .ok_or_else(|| rmcp::ErrorData::invalid_request("not signed in", None))
}

/// The agent's name: the `X-PORTA-AGENT` header, else the MCP client's own name, made plain.
fn agent_name(ctx: &RequestContext<RoleServer>) -> String {
    let header = ctx
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|p| p.headers.get(AGENT_HEADER))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let client = ctx.peer.peer_info().map(|i| format!("mcp-{}", i.client_info.name));
    let raw = header.or(client).unwrap_or_else(|| "mcp-client".into());
    let plain: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '@') { c } else { '-' })
        .take(64)
        .collect();
    if plain.is_empty() { "mcp-client".into() } else { plain }
}

fn text(s: impl Into<String>) -> ContentBlock {
    ContentBlock::text(s.into())
}

fn failure(message: impl Into<String>) -> CallToolResponse {
    CallToolResult::error(vec![text(message)]).into()
}

/// The tools, each taking the server to act on.
fn tool_list() -> Vec<Tool> {
    let mut out = vec![Tool::new(
        "list_servers",
        "The servers this token reaches: their ids (pass one as server_id to the other tools), names and whether they are online.",
        Arc::new(json!({ "type": "object", "properties": {} }).as_object().cloned().unwrap_or_default()),
    )];
    for spec in tools::CATALOGUE {
        let mut schema = (spec.parameters)();
        schema["properties"]["server_id"] =
            json!({ "type": "string", "description": "The server to act on (from list_servers)." });
        let mut required: Vec<Value> = schema["required"].as_array().cloned().unwrap_or_default();
        required.insert(0, json!("server_id"));
        schema["required"] = Value::Array(required);
        let description = if spec.changes {
            format!(
                "{} (Waits for the person's approval in Porta unless this agent may do it without asking.)",
                spec.description
            )
        } else {
            spec.description.to_owned()
        };
        out.push(Tool::new(spec.name, description, Arc::new(schema.as_object().cloned().unwrap_or_default())));
    }
    out
}

impl ServerHandler for Mcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("porta", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Porta's tools act on the servers your API token reaches. Call list_servers first and pass a \
                 server_id. Writes and commands wait for the person's approval in Porta.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, rmcp::ErrorData> {
        caller(&context)?;
        Ok(ListToolsResult { tools: tool_list(), ..Default::default() })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, rmcp::ErrorData> {
        let user = caller(&context)?;
        let args = Value::Object(request.arguments.clone().unwrap_or_default());
        let name = request.name.to_string();
        if name == "list_servers" {
            return Ok(self.list_servers(&user).await);
        }
        let Some(spec) = tools::spec(&name) else {
            return Ok(failure(format!("there is no tool {name:?}")));
        };
        let Some(server) = args["server_id"].as_str().map(str::to_owned) else {
            return Ok(failure("server_id is missing: call list_servers for the ids"));
        };
        let agent_name = agent_name(&context);
        // The client may give up on a call waiting for the person (`notifications/cancelled`).
        let ct = context.ct.clone();
        let cancelled = async move { ct.cancelled().await };
        match self.act(&user, &agent_name, spec, &server, args, cancelled).await {
            Ok(result) => Ok(result),
            Err(e) => Ok(failure(e.to_body().message)),
        }
    }
}

impl Mcp {
    async fn list_servers(&self, user: &AuthUser) -> CallToolResponse {
        if let Err(e) = user.require(Scope::Read) {
            return failure(e.to_string());
        }
        match self.state.store.servers_for(&user.0.id).await {
            Ok(list) => {
                let servers: Vec<Value> = list
                    .into_iter()
                    .filter(|a| user.1.reaches_workspace(a.server.workspace_id.as_deref()))
                    .map(|a| {
                        json!({
                            "server_id": a.server.id,
                            "name": a.server.name,
                            "online": self.state.bus.connected(&a.server.id).is_some(),
                            "os": a.server.os,
                            "role": a.role.as_str(),
                        })
                    })
                    .collect();
                CallToolResult::structured(json!({ "servers": servers })).into()
            }
            Err(e) => failure(Error::from(e).to_body().message),
        }
    }

    /// Authorises, asks the person when the tool changes something, runs, records.
    async fn act(
        &self,
        user: &AuthUser,
        agent_name: &str,
        spec: &tools::Spec,
        server: &str,
        args: Value,
        cancelled: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<CallToolResponse, Error> {
        let state = &self.state;
        let (scope, role) = tools::needs(spec);
        user.require(scope)?;
        // What runs something on the server (a command, a container action) needs the
        // terminal scope, as in a person's session.
        let command = tools::policy_command(spec.name, &args);
        if command.is_some() {
            user.require(Scope::Terminal)?;
        }
        let on = agents::on_server(&state.store, user, None, agent_name, server, (role, "an agent's action")).await?;
        let agent = &on.agent;
        let started = Instant::now();
        let auto_approved = on.auto_approved(spec.name);
        let mut args = args;
        // A command passes the workspace's policy first: it may run, ask, or never run.
        let mut note = None;
        let mut ask = spec.changes && !auto_approved;
        if let Some(command) = command {
            let runner = on.runner(user, None, spec.name);
            match policy::check::decide(&state.store, &runner, &command, args["cwd"].as_str()).await? {
                Decision::Refuse(v) => {
                    let done = agents::Done {
                        agent,
                        source: None,
                        server: Some(server),
                        kind: spec.name,
                        target: &command,
                        details: format!("{command} (blocked)"),
                        took: started.elapsed(),
                        result: Err("blocked".into()),
                    };
                    agents::record(&state.store, user, done).await;
                    return Ok(failure(format!("the workspace's command policy blocks this command: {}", v.reason)));
                }
                Decision::Run(_) => ask = false,
                Decision::Ask(v) => {
                    ask = true;
                    note = Some(format!("Needs approval: {}", v.reason));
                }
            }
        }
        let decision = if !spec.changes {
            chat::Decision::Read
        } else if !ask {
            chat::Decision::Auto
        } else {
            let call = ToolCall {
                id: format!("mcp-{}", uuid::Uuid::new_v4()),
                kind: "function".into(),
                function: FunctionCall { name: spec.name.to_owned(), arguments: args.to_string() },
            };
            match chat::ask_approval(&state.assistant, user, agent, server, call, note, (APPROVAL_WAIT, cancelled))
                .await?
            {
                // Held to the file as the person saw it.
                chat::Approval::Approved(seen) => {
                    tools::Over::from_args(&seen).into_args(&mut args);
                    chat::Decision::Approved
                }
                chat::Approval::Declined => chat::Decision::Declined,
                chat::Approval::Cancelled => chat::Decision::Cancelled,
            }
        };
        let target = tools::target(spec.name, &args);
        let result = match decision {
            chat::Decision::Declined | chat::Decision::Cancelled => None,
            _ => Some(tools::call(&state.assistant, server, spec.name, &args).await),
        };
        let outcome = match &result {
            None if decision == chat::Decision::Cancelled => Err("cancelled by the client".to_owned()),
            None => Err("declined".to_owned()),
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(format!("failed: {}", e.code)),
        };
        let done = agents::Done {
            agent,
            source: None,
            server: Some(server),
            kind: spec.name,
            target: &target,
            details: match decision {
                chat::Decision::Cancelled => format!("{target} (cancelled by the client)"),
                _ => format!("{target} ({decision})"),
            },
            took: started.elapsed(),
            result: outcome,
        };
        agents::record(&state.store, user, done).await;
        let Some(result) = result else {
            if decision == chat::Decision::Cancelled {
                return Ok(failure("cancelled before the person decided; nothing was done"));
            }
            return Ok(failure("the person declined this change in Porta; nothing was done"));
        };
        Ok(match result {
            Ok(v) => CallToolResult::structured(v).into(),
            Err(e) => failure(format!("{}: {}", e.code.as_str(), e.message)),
        })
    }
}
