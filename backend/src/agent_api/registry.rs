//! The agent registry as agents read it: an agent's status, the agents a call may see, and
//! an agent's history.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{Body, Caller, MAX_PAGE};
use crate::assistant::agents::{self, KIND_API};
use crate::auth::scopes::Scope;
use crate::clock::now_ms;
use crate::db::{Agent, AgentQuery, OperationQuery, StatusFilter};
use crate::error::{Error, Result};
use crate::state::AppState;

/// The workspaces a call may see agents in: those of the user's teams, within the token's
/// limit, and within `only` when given.
async fn visible_workspaces(state: &AppState, caller: &Caller, only: Option<&str>) -> Result<Vec<String>> {
    caller.user.require(Scope::Read)?;
    let mut ids = state.store.workspace_ids_of(&caller.user.0.id).await?;
    ids.retain(|ws| caller.user.1.reaches_workspace(Some(ws)));
    if let Some(only) = only {
        if !ids.iter().any(|ws| ws == only) {
            return Err(Error::NotFound(format!("no workspace {only}, or you are not in its team")));
        }
        ids = vec![only.to_owned()];
    }
    Ok(ids)
}

/// An agent as the registry shows it.
#[derive(Serialize)]
pub(super) struct AgentView {
    agent_id: String,
    id: String,
    workspace_id: String,
    kind: String,
    status: &'static str,
    created_ms: i64,
    last_seen_ms: Option<i64>,
    operations: i64,
}

impl AgentView {
    fn of(agent: Agent, now: i64) -> Self {
        Self {
            status: agents::status(&agent, now),
            agent_id: agent.name,
            id: agent.id,
            workspace_id: agent.workspace_id,
            kind: agent.kind,
            created_ms: agent.created_ms,
            last_seen_ms: agent.last_seen_ms,
            operations: agent.operations,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StatusRequest {
    agent_id: String,
    #[serde(default)]
    workspace_id: Option<String>,
}

#[derive(Serialize)]
pub(super) struct StatusReply {
    agent_id: String,
    /// `active`, `idle`, `disabled`, or `unregistered` (it has not acted on a server yet).
    status: &'static str,
    timestamp_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<AgentView>,
}

pub(super) async fn agent_status(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<StatusRequest>,
) -> Result<Json<StatusReply>> {
    let name = agents::valid_agent_id(&b.agent_id)?.to_owned();
    let workspaces = visible_workspaces(&state, &caller, b.workspace_id.as_deref()).await?;
    let now = now_ms();
    let found = state.store.agents_named(&name, &workspaces).await?.into_iter().next();
    let reply = match found {
        Some(agent) => {
            state.store.agent_seen(&agent.id).await?;
            let view = AgentView::of(agent, now);
            // It is calling now.
            let status = if view.status == "disabled" { "disabled" } else { "active" };
            StatusReply { agent_id: name, status, timestamp_ms: now, agent: Some(view) }
        }
        None => StatusReply { agent_id: name, status: "unregistered", timestamp_ms: now, agent: None },
    };
    Ok(Json(reply))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListRequest {
    agent_id: String,
    #[serde(default)]
    workspace_id: Option<String>,
    /// `active`, `idle` or `disabled`.
    #[serde(default)]
    status: Option<String>,
    /// `api` or `assistant`.
    #[serde(default)]
    kind: Option<String>,
    /// Part of the name, any case.
    #[serde(default)]
    name_contains: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    offset: Option<i64>,
}

#[derive(Serialize)]
pub(super) struct Page<T> {
    agent_id: String,
    total: i64,
    limit: i64,
    offset: i64,
    items: Vec<T>,
}

fn page(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64)> {
    let limit = limit.unwrap_or(50);
    let offset = offset.unwrap_or(0);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::BadRequest(format!("limit is 1 to {MAX_PAGE}")));
    }
    if offset < 0 {
        return Err(Error::BadRequest("offset may not be negative".into()));
    }
    Ok((limit, offset))
}

pub(super) async fn agent_list(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<ListRequest>,
) -> Result<Json<Page<AgentView>>> {
    let name = agents::valid_agent_id(&b.agent_id)?.to_owned();
    let (limit, offset) = page(b.limit, b.offset)?;
    let now = now_ms();
    let window_start = now - agents::ACTIVE_WINDOW_MS;
    let status = match b.status.as_deref() {
        None => None,
        Some("active") => Some(StatusFilter::ActiveSince(window_start)),
        Some("idle") => Some(StatusFilter::IdleSince(window_start)),
        Some("disabled") => Some(StatusFilter::Disabled),
        Some(other) => {
            return Err(Error::BadRequest(format!("status {other:?} is not known; use active, idle or disabled")));
        }
    };
    if let Some(kind) = b.kind.as_deref().filter(|k| ![KIND_API, agents::KIND_ASSISTANT].contains(k)) {
        return Err(Error::BadRequest(format!("kind {kind:?} is not known; use api or assistant")));
    }
    let workspaces = visible_workspaces(&state, &caller, b.workspace_id.as_deref()).await?;
    let q = AgentQuery { workspaces, kind: b.kind, name_contains: b.name_contains, status, limit, offset };
    let (agents, total) = state.store.list_agents(&q).await?;
    let items = agents.into_iter().map(|a| AgentView::of(a, now)).collect();
    Ok(Json(Page { agent_id: name, total, limit, offset, items }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryRequest {
    agent_id: String,
    /// Whose history: this agent's own when absent.
    #[serde(default)]
    of_agent: Option<String>,
    #[serde(default)]
    workspace_id: Option<String>,
    /// `run_bash`, `write_file`, `read_file`, `list_dir` or `pipeline`.
    #[serde(default)]
    operation_type: Option<String>,
    #[serde(default)]
    success: Option<bool>,
    /// Unix milliseconds, inclusive.
    #[serde(default)]
    since_ms: Option<i64>,
    /// Unix milliseconds, exclusive.
    #[serde(default)]
    until_ms: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    offset: Option<i64>,
}

#[derive(Serialize)]
pub(super) struct OperationView {
    id: i64,
    agent_id: String,
    operation_type: String,
    details: String,
    server_id: Option<String>,
    timestamp_ms: i64,
    duration_ms: i64,
    success: bool,
}

pub(super) async fn agent_history(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<HistoryRequest>,
) -> Result<Json<Page<OperationView>>> {
    let name = agents::valid_agent_id(&b.agent_id)?.to_owned();
    let of = agents::valid_agent_id(b.of_agent.as_deref().unwrap_or(&name))?.to_owned();
    let (limit, offset) = page(b.limit, b.offset)?;
    let workspaces = visible_workspaces(&state, &caller, b.workspace_id.as_deref()).await?;
    let agents = state.store.agents_named(&of, &workspaces).await?;
    let q = OperationQuery {
        agents: agents.iter().map(|a| a.id.clone()).collect(),
        kind: b.operation_type,
        success: b.success,
        since_ms: b.since_ms,
        until_ms: b.until_ms,
        limit,
        offset,
    };
    let (ops, total) = state.store.operations(&q).await?;
    let items = ops
        .into_iter()
        .map(|op| OperationView {
            id: op.id,
            agent_id: of.clone(),
            operation_type: op.kind,
            details: op.details,
            server_id: op.server_id,
            timestamp_ms: op.at_ms,
            duration_ms: op.duration_ms,
            success: op.success,
        })
        .collect();
    Ok(Json(Page { agent_id: name, total, limit, offset, items }))
}
