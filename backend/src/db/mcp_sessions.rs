//! MCP sessions as the `mcp` transport keeps them (the client's `initialize` parameters, as
//! JSON), so that a session begun on one replica goes on at another.

use super::engine::{query, query_scalar};
use super::{Result, Store};

/// Most sessions kept; beyond this the least recently used are forgotten (their clients
/// start new ones, as MCP has them do when a session is unknown).
const MAX_SESSIONS: i64 = 100_000;

impl Store {
    pub async fn save_mcp_session(&self, id: &str, state: &str, now_ms: i64) -> Result<()> {
        query(
            "INSERT INTO mcp_sessions (id, state, used_ms) VALUES (?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, used_ms = excluded.used_ms",
        )
        .bind(id)
        .bind(state)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session's state, marking it used at `now_ms`.
    pub async fn use_mcp_session(&self, id: &str, now_ms: i64) -> Result<Option<String>> {
        Ok(query_scalar("UPDATE mcp_sessions SET used_ms = ? WHERE id = ? RETURNING state")
            .bind(now_ms)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn delete_mcp_session(&self, id: &str) -> Result<()> {
        query("DELETE FROM mcp_sessions WHERE id = ?").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Forgets sessions unused since `before_ms`, and the least recently used beyond
    /// [`MAX_SESSIONS`].
    pub async fn sweep_mcp_sessions(&self, before_ms: i64) -> Result<()> {
        query("DELETE FROM mcp_sessions WHERE used_ms < ?").bind(before_ms).execute(&self.pool).await?;
        let kept: i64 = query_scalar("SELECT COUNT(*) FROM mcp_sessions").fetch_one(&self.pool).await?;
        if kept > MAX_SESSIONS {
            query("DELETE FROM mcp_sessions WHERE id IN (SELECT id FROM mcp_sessions ORDER BY used_ms LIMIT ?)")
                .bind(kept - MAX_SESSIONS + MAX_SESSIONS / 10)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::on_both_engines;

    on_both_engines! {
        async fn sessions_are_kept_used_and_forgotten(s: Store) {
            s.save_mcp_session("a", r#"{"v":1}"#, 100).await.expect("save");
            s.save_mcp_session("b", r#"{"v":2}"#, 100).await.expect("save");
            s.save_mcp_session("a", r#"{"v":3}"#, 110).await.expect("save again");
            assert_eq!(s.use_mcp_session("a", 200).await.expect("use").as_deref(), Some(r#"{"v":3}"#));
            assert_eq!(s.use_mcp_session("nope", 200).await.expect("use"), None);
            s.sweep_mcp_sessions(150).await.expect("sweep");
            assert_eq!(s.use_mcp_session("b", 300).await.expect("use"), None, "unused since 100");
            assert!(s.use_mcp_session("a", 300).await.expect("use").is_some(), "used at 200");
            s.delete_mcp_session("a").await.expect("delete");
            assert_eq!(s.use_mcp_session("a", 300).await.expect("use"), None);
        }
    }
}
