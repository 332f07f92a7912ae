//! Workspaces: a team's groups of servers, with their settings and quotas.

use sqlx::FromRow;

use super::engine::{query, query_as, query_scalar};
use super::{Result, Store, StoreError};
use crate::clock::now_ms;

pub(super) const WORKSPACE_COLUMNS: &str = "id, team_id, name, created_ms, deleted_ms, record_terminals, max_servers, \
                                 max_projects, max_terminals, max_agents, max_recording_mb, max_recordings_mb";

#[derive(Debug, Clone, FromRow)]
pub struct Workspace {
    pub id: String,
    pub team_id: String,
    pub name: String,
    pub created_ms: i64,
    pub deleted_ms: Option<i64>,
    pub record_terminals: bool,
    pub max_servers: Option<i64>,
    pub max_projects: Option<i64>,
    pub max_terminals: Option<i64>,
    pub max_agents: Option<i64>,
    /// Most MB one recording may take, and all the workspace's recordings together.
    pub max_recording_mb: i64,
    pub max_recordings_mb: i64,
}

impl Store {
    /// A workspace, deleted or not.
    pub async fn workspace(&self, id: &str) -> Result<Option<Workspace>> {
        let sql = format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE id = ?");
        query_as(&sql).bind(id).fetch_optional(&self.pool).await.map_err(StoreError::from)
    }

    /// A team's workspaces (deleted ones too, for restoring), by name.
    pub async fn workspaces(&self, team_id: &str) -> Result<Vec<Workspace>> {
        let sql = format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE team_id = ? ORDER BY name, id");
        query_as(&sql).bind(team_id).fetch_all(&self.pool).await.map_err(StoreError::from)
    }

    /// The first live workspace of the first team the user owns (where "add server" goes when
    /// no workspace is named).
    pub async fn home_workspace(&self, user_id: &str) -> Result<Option<Workspace>> {
        let sql = format!(
            "SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE deleted_ms IS NULL AND team_id IN \
             (SELECT team_id FROM team_members WHERE user_id = ? AND role = 'owner') \
             ORDER BY created_ms, id LIMIT 1"
        );
        query_as(&sql).bind(user_id).fetch_optional(&self.pool).await.map_err(StoreError::from)
    }

    pub async fn create_workspace(&self, team_id: &str, name: &str) -> Result<String> {
        let id = uuid::Uuid::new_v4().to_string();
        query("INSERT INTO workspaces (id, team_id, name, created_ms) VALUES (?, ?, ?, ?)")
            .bind(&id)
            .bind(team_id)
            .bind(name)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    pub async fn rename_workspace(&self, id: &str, name: &str) -> Result<()> {
        query("UPDATE workspaces SET name = ? WHERE id = ?").bind(name).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Deletes (softly) or restores a workspace; false when it already was so.
    pub async fn set_workspace_deleted(&self, id: &str, deleted: bool) -> Result<bool> {
        let sql = if deleted {
            "UPDATE workspaces SET deleted_ms = ? WHERE id = ? AND deleted_ms IS NULL"
        } else {
            "UPDATE workspaces SET deleted_ms = NULL WHERE id = ? AND deleted_ms IS NOT NULL"
        };
        let mut q = query(sql);
        if deleted {
            q = q.bind(now_ms());
        }
        let changed = q.bind(id).execute(&self.pool).await?.rows_affected() == 1;
        self.access_changed();
        Ok(changed)
    }

    pub async fn set_workspace_recording(&self, id: &str, on: bool) -> Result<()> {
        query("UPDATE workspaces SET record_terminals = ? WHERE id = ?").bind(on).bind(id).execute(&self.pool).await?;
        // What a server's access says about recording changed: no replica answers from memory.
        self.access_changed();
        Ok(())
    }

    /// Sets the recording limits, in MB.
    pub async fn set_recording_limits(&self, id: &str, per_recording_mb: i64, total_mb: i64) -> Result<()> {
        query("UPDATE workspaces SET max_recording_mb = ?, max_recordings_mb = ? WHERE id = ?")
            .bind(per_recording_mb)
            .bind(total_mb)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sets the quotas (`None`: unlimited).
    pub async fn set_workspace_quotas(&self, id: &str, q: [Option<i64>; 4]) -> Result<()> {
        query(
            "UPDATE workspaces SET max_servers = ?, max_projects = ?, max_terminals = ?, max_agents = ? WHERE id = ?",
        )
        .bind(q[0])
        .bind(q[1])
        .bind(q[2])
        .bind(q[3])
        .bind(id)
        .execute(&self.pool)
        .await?;
        // The terminal quota is part of a server's access.
        self.access_changed();
        Ok(())
    }

    /// The ids of a workspace's live servers.
    pub async fn server_ids_in(&self, workspace_id: &str) -> Result<Vec<String>> {
        query_scalar("SELECT id FROM servers WHERE workspace_id = ? AND revoked_ms IS NULL")
            .bind(workspace_id)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    /// Live servers in a workspace.
    pub async fn server_count(&self, workspace_id: &str) -> Result<i64> {
        query_scalar("SELECT COUNT(*) FROM servers WHERE workspace_id = ? AND revoked_ms IS NULL")
            .bind(workspace_id)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from)
    }
}
