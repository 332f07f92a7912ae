//! Terminal session recordings: one row per recording (its file lives in the data folder).

use sqlx::FromRow;

use super::engine::{query, query_as, query_scalar};
use super::{Result, Store, StoreError};
use crate::clock::now_ms;

#[derive(Debug, Clone, FromRow)]
pub struct Recording {
    pub id: String,
    pub workspace_id: String,
    pub server_id: String,
    pub server_name: Option<String>,
    pub term_id: i64,
    /// The shell the terminal ran (absent for recordings made before this was kept).
    pub shell: Option<String>,
    pub started_by: String,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub bytes: i64,
    pub cols: i64,
    pub rows: i64,
    /// Why it stopped before the session ended (a limit), if it did.
    pub stopped: Option<String>,
}

/// A recording about to start.
#[derive(Debug, Clone)]
pub struct NewRecording<'a> {
    /// The replica recording it, and until when unless it renews that.
    pub holder: &'a str,
    pub lease_until_ms: i64,
    pub id: &'a str,
    pub workspace_id: &'a str,
    pub server_id: &'a str,
    pub term_id: u32,
    pub shell: &'a str,
    pub started_by: &'a str,
    pub cols: u16,
    pub rows: u16,
}

/// A recording whose recorder went away, just ended: what it recorded, to record on.
#[derive(Debug, Clone, FromRow)]
pub struct OrphanedRecording {
    pub id: String,
    pub workspace_id: String,
    pub server_id: String,
    pub term_id: i64,
    pub shell: Option<String>,
    pub started_by: String,
    pub cols: i64,
    pub rows: i64,
}

const COLUMNS: &str = "r.id, r.workspace_id, r.server_id, s.name AS server_name, r.term_id, r.shell, r.started_by, \
                       r.started_ms, r.ended_ms, r.bytes, r.cols, r.rows, r.stopped";

impl Store {
    /// Whether a terminal's session is being recorded now.
    pub async fn recording_active(&self, server_id: &str, term_id: u32) -> Result<bool> {
        query_scalar(
            "SELECT EXISTS (SELECT 1 FROM recordings WHERE server_id = ? AND term_id = ? AND ended_ms IS NULL)",
        )
        .bind(server_id)
        .bind(i64::from(term_id))
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::from)
    }

    pub async fn insert_recording(&self, r: &NewRecording<'_>) -> Result<()> {
        query(
            "INSERT INTO recordings (id, workspace_id, server_id, term_id, shell, started_by, started_ms, cols, rows, \
             holder, lease_until_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(r.id)
        .bind(r.workspace_id)
        .bind(r.server_id)
        .bind(i64::from(r.term_id))
        .bind(r.shell)
        .bind(r.started_by)
        .bind(now_ms())
        .bind(i64::from(r.cols))
        .bind(i64::from(r.rows))
        .bind(r.holder)
        .bind(r.lease_until_ms)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(StoreError::from)
    }

    /// Ends a recording: its size on disk, and why it stopped early if it did. One another
    /// replica ended already (its recorder's lease had run out) stays as that replica left it.
    pub async fn finish_recording(&self, id: &str, bytes: i64, stopped: Option<&str>) -> Result<()> {
        query("UPDATE recordings SET ended_ms = ?, bytes = ?, stopped = ? WHERE id = ? AND ended_ms IS NULL")
            .bind(now_ms())
            .bind(bytes)
            .bind(stopped)
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(StoreError::from)
    }

    /// How far a recording going on has got, in bytes on disk (so the workspace's total
    /// counts it).
    pub async fn recording_progress(&self, id: &str, bytes: i64) -> Result<()> {
        query("UPDATE recordings SET bytes = ? WHERE id = ? AND ended_ms IS NULL")
            .bind(bytes)
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(StoreError::from)
    }

    /// The bytes on disk of a workspace's recordings (those going on count what they have).
    pub async fn recordings_bytes(&self, workspace_id: &str) -> Result<i64> {
        query_scalar("SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM recordings WHERE workspace_id = ?")
            .bind(workspace_id)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    /// The size of a recording's file, as the replica that ended it for a recorder that went
    /// away found it.
    pub async fn set_recording_bytes(&self, id: &str, bytes: i64) -> Result<()> {
        query("UPDATE recordings SET bytes = ? WHERE id = ?").bind(bytes).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Renews the leases of the recordings `holder` is making, until `until_ms`.
    pub async fn renew_recordings(&self, holder: &str, until_ms: i64) -> Result<()> {
        query("UPDATE recordings SET lease_until_ms = ? WHERE holder = ? AND ended_ms IS NULL")
            .bind(until_ms)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends the recordings going on whose lease ran out by `now_ms` (their recorder went
    /// away), saying `why`; those this call ended (two replicas at once end each once). Never
    /// `me`'s own, nor those without a lease (made before leases; a lone start ends them).
    pub async fn take_orphaned_recordings(&self, me: &str, now_ms: i64, why: &str) -> Result<Vec<OrphanedRecording>> {
        query_as(
            "UPDATE recordings SET ended_ms = ?, stopped = ? \
             WHERE ended_ms IS NULL AND lease_until_ms <= ? AND holder <> ? \
             RETURNING id, workspace_id, server_id, term_id, shell, started_by, cols, rows",
        )
        .bind(now_ms)
        .bind(why)
        .bind(now_ms)
        .bind(me)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from)
    }

    /// Ends the recordings a previous run of the backend left going (their recorders died
    /// with it); returns how many.
    pub async fn end_orphaned_recordings(&self) -> Result<u64> {
        let r = query("UPDATE recordings SET ended_ms = ? WHERE ended_ms IS NULL")
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    pub async fn recording(&self, id: &str) -> Result<Option<Recording>> {
        let sql =
            format!("SELECT {COLUMNS} FROM recordings r LEFT JOIN servers s ON s.id = r.server_id WHERE r.id = ?");
        query_as(&sql).bind(id).fetch_optional(&self.pool).await.map_err(StoreError::from)
    }

    /// The newest recordings in a team's workspaces.
    pub async fn recordings_of_team(&self, team_id: &str, limit: i64) -> Result<Vec<Recording>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM recordings r LEFT JOIN servers s ON s.id = r.server_id \
             JOIN workspaces w ON w.id = r.workspace_id WHERE w.team_id = ? ORDER BY r.started_ms DESC, r.id LIMIT ?"
        );
        query_as(&sql).bind(team_id).bind(limit.clamp(1, 500)).fetch_all(&self.pool).await.map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::db::testing::on_both_engines! {
        async fn recordings_left_going_by_a_previous_run_are_ended(s: Store) {
            let u = s.create_user("alice", "h", false).await.expect("user");
            let ws = s.home_workspace(&u.id).await.expect("q").expect("home").id;
            s.insert_enrollment_token("t", &u.id, &ws, None, now_ms() + 60_000).await.expect("token");
            let server = s.enroll_server("t", "box", "c").await.expect("q").expect("enrolled");
            let new = |id, until| NewRecording {
                holder: "a",
                lease_until_ms: until,
                id,
                workspace_id: &ws,
                server_id: &server.id,
                term_id: 1,
                shell: "/bin/bash",
                started_by: "user:x",
                cols: 80,
                rows: 24,
            };
            s.insert_recording(&new("done", 0)).await.expect("insert");
            s.finish_recording("done", 10, None).await.expect("finish");
            s.insert_recording(&new("going", 0)).await.expect("insert");
            assert_eq!(s.end_orphaned_recordings().await.expect("end"), 1);
            let going = s.recording("going").await.expect("q").expect("row");
            assert!(going.ended_ms.is_some());
            assert_eq!(s.recording("done").await.expect("q").expect("row").bytes, 10, "a finished one is untouched");

            // With replicas: a recording whose recorder stopped renewing is ended once.
            let now = now_ms();
            s.insert_recording(&new("kept", now + 1_000)).await.expect("insert");
            s.insert_recording(&new("left", now + 1_000)).await.expect("insert");
            query("UPDATE recordings SET holder = 'b' WHERE id = 'left'").execute(&s.pool).await.expect("b's");
            s.renew_recordings("a", now + 60_000).await.expect("renew");
            let later = now + 30_000;
            assert!(s.take_orphaned_recordings("b", later, "gone").await.expect("take").is_empty(), "not b's own");
            let taken = s.take_orphaned_recordings("c", later, "gone").await.expect("take");
            assert_eq!(taken.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["left"]);
            assert_eq!(taken[0].shell.as_deref(), Some("/bin/bash"));
            assert!(s.take_orphaned_recordings("c", later, "gone").await.expect("take").is_empty(), "once");
            s.finish_recording("left", 99, None).await.expect("finish");
            assert_eq!(s.recording("left").await.expect("q").expect("row").stopped.as_deref(), Some("gone"), "kept");
            let left = s.recording("left").await.expect("q").expect("row");
            assert_eq!((left.ended_ms, left.stopped.as_deref()), (Some(later), Some("gone")));
            assert!(s.recording("kept").await.expect("q").expect("row").ended_ms.is_none(), "renewed");
        }
    }
}
