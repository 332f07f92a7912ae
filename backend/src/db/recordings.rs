//! Terminal session recordings: one row per recording (its file lives in the data folder).

use sqlx::FromRow;

use super::Store;
use crate::now_ms;

#[derive(Debug, Clone, FromRow)]
pub struct Recording {
    pub id: String,
    pub workspace_id: String,
    pub server_id: String,
    pub server_name: Option<String>,
    pub term_id: i64,
    pub started_by: String,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub bytes: i64,
    pub cols: i64,
    pub rows: i64,
}

/// A recording about to start.
#[derive(Debug, Clone)]
pub struct NewRecording<'a> {
    pub id: &'a str,
    pub workspace_id: &'a str,
    pub server_id: &'a str,
    pub term_id: u32,
    pub started_by: &'a str,
    pub cols: u16,
    pub rows: u16,
}

const COLUMNS: &str = "r.id, r.workspace_id, r.server_id, s.name AS server_name, r.term_id, r.started_by, \
                       r.started_ms, r.ended_ms, r.bytes, r.cols, r.rows";

impl Store {
    pub async fn insert_recording(&self, r: &NewRecording<'_>) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO recordings (id, workspace_id, server_id, term_id, started_by, started_ms, cols, rows) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(r.id)
        .bind(r.workspace_id)
        .bind(r.server_id)
        .bind(i64::from(r.term_id))
        .bind(r.started_by)
        .bind(now_ms())
        .bind(i64::from(r.cols))
        .bind(i64::from(r.rows))
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    pub async fn finish_recording(&self, id: &str, bytes: i64) -> sqlx::Result<()> {
        sqlx::query("UPDATE recordings SET ended_ms = ?, bytes = ? WHERE id = ?")
            .bind(now_ms())
            .bind(bytes)
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub async fn recording(&self, id: &str) -> sqlx::Result<Option<Recording>> {
        let sql =
            format!("SELECT {COLUMNS} FROM recordings r LEFT JOIN servers s ON s.id = r.server_id WHERE r.id = ?");
        sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await
    }

    /// The newest recordings in a team's workspaces.
    pub async fn recordings_of_team(&self, team_id: &str, limit: i64) -> sqlx::Result<Vec<Recording>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM recordings r LEFT JOIN servers s ON s.id = r.server_id \
             JOIN workspaces w ON w.id = r.workspace_id WHERE w.team_id = ? ORDER BY r.started_ms DESC, r.id LIMIT ?"
        );
        sqlx::query_as(&sql).bind(team_id).bind(limit.clamp(1, 500)).fetch_all(&self.pool).await
    }
}
