//! Agents and what they did: the registry behind the assistant's agents and the Porta agent
//! API (`agents`, `agent_operations`).

use sqlx::FromRow;

use super::engine::{Builder, query, query_as, query_scalar};
use super::{Result, Store, StoreError};
use crate::clock::now_ms;

#[derive(Debug, Clone, FromRow)]
pub struct Agent {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    /// `assistant` or `api`.
    pub kind: String,
    pub template: Option<String>,
    pub model: Option<String>,
    pub system_prompt: String,
    /// JSON array of tool names.
    pub tools: String,
    /// JSON array of tool names that run without asking.
    pub auto_approve: String,
    pub max_steps: i64,
    pub max_seconds: i64,
    pub disabled: bool,
    pub created_by: String,
    pub created_ms: i64,
    pub last_seen_ms: Option<i64>,
    pub operations: i64,
    pub deleted_ms: Option<i64>,
    /// The person it belongs to (whose token registered an API agent; who made an assistant
    /// agent).
    pub owner_id: Option<String>,
}

const COLUMNS: &str = "id, workspace_id, name, kind, template, model, system_prompt, tools, auto_approve, max_steps, \
                       max_seconds, disabled, created_by, created_ms, last_seen_ms, operations, deleted_ms, owner_id";

/// One thing an agent did.
#[derive(Debug, Clone, FromRow)]
pub struct Operation {
    pub id: i64,
    pub agent_id: String,
    pub workspace_id: String,
    pub server_id: Option<String>,
    /// `run_bash`, `write_file`, `read_file`, `list_dir`, `pipeline`, …
    pub kind: String,
    pub details: String,
    pub at_ms: i64,
    pub duration_ms: i64,
    pub success: bool,
    /// Whose authority it ran with (`token:<id>`, `user:<id>`).
    pub actor: String,
}

const OPERATION_COLUMNS: &str =
    "id, agent_id, workspace_id, server_id, kind, details, at_ms, duration_ms, success, actor";

/// How registering an agent went.
#[derive(Debug)]
pub enum Registered {
    Done(Box<Agent>),
    /// The workspace already has its quota of agents.
    Quota(i64),
}

/// Which agents to list.
#[derive(Debug, Clone, Default)]
pub struct AgentQuery {
    pub workspaces: Vec<String>,
    pub kind: Option<String>,
    pub name_contains: Option<String>,
    pub status: Option<StatusFilter>,
    pub limit: i64,
    pub offset: i64,
}

/// Agents by status (see `agents::status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Disabled,
    /// Enabled and seen at or after this time.
    ActiveSince(i64),
    /// Enabled and not seen since this time.
    IdleSince(i64),
}

/// Which operations to list.
#[derive(Debug, Clone, Default)]
pub struct OperationQuery {
    pub agents: Vec<String>,
    pub kind: Option<String>,
    pub success: Option<bool>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

impl Store {
    /// Registers `agent` unless its workspace already holds `max` live agents; one live agent
    /// per name and workspace (a second registration of the name returns the first).
    pub async fn register_agent(&self, agent: &Agent, max: Option<i64>) -> Result<Registered> {
        let mut tx = self.pool.begin_serialized(&format!("agents:{}", agent.workspace_id)).await?;
        // An API agent is its owner's: another person's agent of the same name is not it.
        let sql = format!(
            "SELECT {COLUMNS} FROM agents WHERE workspace_id = ? AND name = ? AND kind = ? AND deleted_ms IS NULL \
             AND (kind <> 'api' OR owner_id IS NOT DISTINCT FROM ?)"
        );
        let existing: Option<Agent> = query_as(&sql)
            .bind(&agent.workspace_id)
            .bind(&agent.name)
            .bind(&agent.kind)
            .bind(&agent.owner_id)
            .fetch_optional(&mut tx)
            .await?;
        if let Some(found) = existing {
            return Ok(Registered::Done(Box::new(found)));
        }
        if let Some(max) = max {
            let live: i64 = query_scalar("SELECT COUNT(*) FROM agents WHERE workspace_id = ? AND deleted_ms IS NULL")
                .bind(&agent.workspace_id)
                .fetch_one(&mut tx)
                .await?;
            if live >= max {
                return Ok(Registered::Quota(max));
            }
        }
        query(
            "INSERT INTO agents (id, workspace_id, name, kind, template, model, system_prompt, tools, auto_approve, \
             max_steps, max_seconds, disabled, created_by, created_ms, owner_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&agent.id)
        .bind(&agent.workspace_id)
        .bind(&agent.name)
        .bind(&agent.kind)
        .bind(&agent.template)
        .bind(&agent.model)
        .bind(&agent.system_prompt)
        .bind(&agent.tools)
        .bind(&agent.auto_approve)
        .bind(agent.max_steps)
        .bind(agent.max_seconds)
        .bind(agent.disabled)
        .bind(&agent.created_by)
        .bind(agent.created_ms)
        .bind(&agent.owner_id)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(Registered::Done(Box::new(agent.clone())))
    }

    pub async fn agent(&self, id: &str) -> Result<Option<Agent>> {
        let sql = format!("SELECT {COLUMNS} FROM agents WHERE id = ?");
        query_as(&sql).bind(id).fetch_optional(&self.pool).await.map_err(StoreError::from)
    }

    /// The live agents called `name` in any of `workspaces`, the most recently active first.
    pub async fn agents_named(&self, name: &str, workspaces: &[String]) -> Result<Vec<Agent>> {
        if workspaces.is_empty() {
            return Ok(Vec::new());
        }
        let mut b = Builder::new(format!("SELECT {COLUMNS} FROM agents WHERE deleted_ms IS NULL AND name = "));
        b.push_bind(name).push(" AND workspace_id IN (").push_list(workspaces).push(")");
        b.push(" ORDER BY COALESCE(last_seen_ms, created_ms) DESC, id");
        b.query_as().fetch_all(&self.pool).await.map_err(StoreError::from)
    }

    /// A page of live agents, by name, and how many match in all.
    pub async fn list_agents(&self, q: &AgentQuery) -> Result<(Vec<Agent>, i64)> {
        if q.workspaces.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let mut count = Builder::new("SELECT COUNT(*) FROM agents");
        let mut page = Builder::new(format!("SELECT {COLUMNS} FROM agents"));
        for b in [&mut count, &mut page] {
            b.push(" WHERE deleted_ms IS NULL AND workspace_id IN (").push_list(&q.workspaces).push(")");
            if let Some(kind) = &q.kind {
                b.push(" AND kind = ").push_bind(kind);
            }
            if let Some(part) = &q.name_contains {
                b.push(" AND instr(lower(name), lower(").push_bind(part).push(")) > 0");
            }
            match q.status {
                Some(StatusFilter::Disabled) => {
                    b.push(" AND disabled");
                }
                Some(StatusFilter::ActiveSince(t)) => {
                    b.push(" AND NOT disabled AND last_seen_ms >= ").push_bind(t);
                }
                Some(StatusFilter::IdleSince(t)) => {
                    b.push(" AND NOT disabled AND (last_seen_ms IS NULL OR last_seen_ms < ").push_bind(t).push(")");
                }
                None => {}
            }
        }
        let total: i64 = count.query_scalar().fetch_one(&self.pool).await?;
        page.push(" ORDER BY name, id LIMIT ").push_bind(q.limit).push(" OFFSET ").push_bind(q.offset);
        let agents = page.query_as().fetch_all(&self.pool).await?;
        Ok((agents, total))
    }

    /// Records what an agent did, and that it was seen.
    pub async fn record_operation(&self, op: &Operation) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        query(
            "INSERT INTO agent_operations (agent_id, workspace_id, server_id, kind, details, at_ms, duration_ms, \
             success, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&op.agent_id)
        .bind(&op.workspace_id)
        .bind(&op.server_id)
        .bind(&op.kind)
        .bind(&op.details)
        .bind(op.at_ms)
        .bind(op.duration_ms)
        .bind(op.success)
        .bind(&op.actor)
        .execute(&mut tx)
        .await?;
        query("UPDATE agents SET operations = operations + 1, last_seen_ms = ? WHERE id = ?")
            .bind(now_ms())
            .bind(&op.agent_id)
            .execute(&mut tx)
            .await?;
        tx.commit().await.map_err(StoreError::from)
    }

    /// Marks an agent as seen (a call that did nothing on a server).
    pub async fn agent_seen(&self, id: &str) -> Result<()> {
        query("UPDATE agents SET last_seen_ms = ? WHERE id = ?").bind(now_ms()).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// A page of operations, newest first, and how many match in all.
    pub async fn operations(&self, q: &OperationQuery) -> Result<(Vec<Operation>, i64)> {
        if q.agents.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let mut count = Builder::new("SELECT COUNT(*) FROM agent_operations");
        let mut page = Builder::new(format!("SELECT {OPERATION_COLUMNS} FROM agent_operations"));
        for b in [&mut count, &mut page] {
            b.push(" WHERE agent_id IN (").push_list(&q.agents).push(")");
            if let Some(kind) = &q.kind {
                b.push(" AND kind = ").push_bind(kind);
            }
            if let Some(success) = q.success {
                b.push(" AND success = ").push_bind(success);
            }
            if let Some(since) = q.since_ms {
                b.push(" AND at_ms >= ").push_bind(since);
            }
            if let Some(until) = q.until_ms {
                b.push(" AND at_ms < ").push_bind(until);
            }
        }
        let total: i64 = count.query_scalar().fetch_one(&self.pool).await?;
        page.push(" ORDER BY at_ms DESC, id DESC LIMIT ").push_bind(q.limit).push(" OFFSET ").push_bind(q.offset);
        let ops = page.query_as().fetch_all(&self.pool).await?;
        Ok((ops, total))
    }

    /// The live workspaces of every team the user is in.
    pub async fn workspace_ids_of(&self, user_id: &str) -> Result<Vec<String>> {
        query_scalar(
            "SELECT w.id FROM workspaces w JOIN team_members m ON m.team_id = w.team_id \
             WHERE m.user_id = ? AND w.deleted_ms IS NULL ORDER BY w.created_ms, w.id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from)
    }
}

impl Store {
    /// Changes an assistant agent's settings.
    pub async fn update_agent(&self, a: &Agent) -> Result<()> {
        query(
            "UPDATE agents SET name = ?, model = ?, system_prompt = ?, tools = ?, auto_approve = ?, max_steps = ?, \
             max_seconds = ?, disabled = ? WHERE id = ?",
        )
        .bind(&a.name)
        .bind(&a.model)
        .bind(&a.system_prompt)
        .bind(&a.tools)
        .bind(&a.auto_approve)
        .bind(a.max_steps)
        .bind(a.max_seconds)
        .bind(a.disabled)
        .bind(&a.id)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(StoreError::from)
    }

    /// Deletes an agent softly (its history stays).
    pub async fn delete_agent(&self, id: &str) -> Result<bool> {
        let r = query("UPDATE agents SET deleted_ms = ? WHERE id = ? AND deleted_ms IS NULL")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }
}
