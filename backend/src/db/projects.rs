//! Projects: folders on a workspace's servers that people work in.

use sqlx::FromRow;

use super::engine::{query, query_as, query_scalar};
use super::{Result, Store, StoreError};
use crate::clock::now_ms;

#[derive(Debug, Clone, FromRow)]
pub struct Project {
    pub id: String,
    pub workspace_id: String,
    pub server_id: String,
    pub name: String,
    pub path: String,
    /// `empty`, `template:<name>` or `git`.
    pub source: String,
    /// The clone URL, without credentials.
    pub repo_url: Option<String>,
    pub created_by: String,
    pub created_ms: i64,
    pub deleted_ms: Option<i64>,
    /// What "Run" types in a terminal in the folder (see `crate::projects::run`).
    pub run_command: Option<String>,
    /// The port its app listens on, shown in the preview pane.
    pub run_port: Option<i64>,
}

const COLUMNS: &str = "id, workspace_id, server_id, name, path, source, repo_url, created_by, created_ms, deleted_ms, run_command, run_port";

impl Store {
    pub async fn insert_project(&self, p: &Project) -> Result<()> {
        query(
            "INSERT INTO projects (id, workspace_id, server_id, name, path, source, repo_url, created_by, created_ms, \
             run_command, run_port) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&p.id)
        .bind(&p.workspace_id)
        .bind(&p.server_id)
        .bind(&p.name)
        .bind(&p.path)
        .bind(&p.source)
        .bind(&p.repo_url)
        .bind(&p.created_by)
        .bind(p.created_ms)
        .bind(&p.run_command)
        .bind(p.run_port)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(StoreError::from)
    }

    pub async fn project(&self, id: &str) -> Result<Option<Project>> {
        let sql = format!("SELECT {COLUMNS} FROM projects WHERE id = ?");
        query_as(&sql).bind(id).fetch_optional(&self.pool).await.map_err(StoreError::from)
    }

    /// A workspace's projects by name (deleted ones too when asked).
    pub async fn projects(&self, workspace_id: &str, deleted: bool) -> Result<Vec<Project>> {
        let live = if deleted { "" } else { " AND deleted_ms IS NULL" };
        let sql = format!("SELECT {COLUMNS} FROM projects WHERE workspace_id = ?{live} ORDER BY name, id");
        query_as(&sql).bind(workspace_id).fetch_all(&self.pool).await.map_err(StoreError::from)
    }

    pub async fn project_count(&self, workspace_id: &str) -> Result<i64> {
        query_scalar("SELECT COUNT(*) FROM projects WHERE workspace_id = ? AND deleted_ms IS NULL")
            .bind(workspace_id)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    /// Whether a live project already uses this folder.
    pub async fn project_at(&self, server_id: &str, path: &str) -> Result<bool> {
        let n: i64 =
            query_scalar("SELECT COUNT(*) FROM projects WHERE server_id = ? AND path = ? AND deleted_ms IS NULL")
                .bind(server_id)
                .bind(path)
                .fetch_one(&self.pool)
                .await?;
        Ok(n > 0)
    }

    /// Sets how a project runs (both `None`: it has no run); false when there is no such
    /// live project.
    pub async fn set_project_run(&self, id: &str, command: Option<&str>, port: Option<i64>) -> Result<bool> {
        let r = query("UPDATE projects SET run_command = ?, run_port = ? WHERE id = ? AND deleted_ms IS NULL")
            .bind(command)
            .bind(port)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Deletes (softly) or restores a project; false when it already was so.
    pub async fn set_project_deleted(&self, id: &str, deleted: bool) -> Result<bool> {
        let r = if deleted {
            query("UPDATE projects SET deleted_ms = ? WHERE id = ? AND deleted_ms IS NULL")
                .bind(now_ms())
                .bind(id)
                .execute(&self.pool)
                .await?
        } else {
            query("UPDATE projects SET deleted_ms = NULL WHERE id = ? AND deleted_ms IS NOT NULL")
                .bind(id)
                .execute(&self.pool)
                .await?
        };
        Ok(r.rows_affected() == 1)
    }
}
