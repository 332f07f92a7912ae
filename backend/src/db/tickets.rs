//! Single-use WebSocket tickets (see `crate::auth::tickets`): only their hashes are kept.

use super::engine::query;
use super::engine::query_as;
use super::{Result, Store};
use crate::clock::now_ms;

impl Store {
    /// Keeps a ticket until `expires_ms` (and forgets expired ones).
    pub async fn insert_ticket(&self, hash: &str, user_id: &str, access: &str, expires_ms: i64) -> Result<()> {
        query("DELETE FROM ws_tickets WHERE expires_ms <= ?").bind(now_ms()).execute(&self.pool).await?;
        query("INSERT INTO ws_tickets (hash, user_id, access, expires_ms) VALUES (?, ?, ?, ?)")
            .bind(hash)
            .bind(user_id)
            .bind(access)
            .bind(expires_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Spends a ticket that has not expired: its user and access, once.
    pub async fn take_ticket(&self, hash: &str) -> Result<Option<(String, String)>> {
        Ok(query_as("DELETE FROM ws_tickets WHERE hash = ? AND expires_ms > ? RETURNING user_id, access")
            .bind(hash)
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await?)
    }
}
