//! Workspaces' command policies, stored as JSON (see `crate::policy`).

use super::engine::{query, query_scalar};
use super::{Result, Store, StoreError};
use crate::clock::now_ms;

impl Store {
    /// A workspace's policy as stored, if its admins set one.
    pub async fn command_policy(&self, workspace_id: &str) -> Result<Option<String>> {
        query_scalar("SELECT policy FROM command_policies WHERE workspace_id = ?")
            .bind(workspace_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    /// Sets a workspace's policy; `None` goes back to the default.
    pub async fn set_command_policy(&self, workspace_id: &str, policy: Option<&str>, by: &str) -> Result<()> {
        match policy {
            Some(p) => query(
                "INSERT INTO command_policies (workspace_id, policy, updated_by, updated_ms) VALUES (?, ?, ?, ?) \
                 ON CONFLICT(workspace_id) DO UPDATE SET policy = excluded.policy, updated_by = excluded.updated_by, \
                 updated_ms = excluded.updated_ms",
            )
            .bind(workspace_id)
            .bind(p)
            .bind(by)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(StoreError::from),
            None => query("DELETE FROM command_policies WHERE workspace_id = ?")
                .bind(workspace_id)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(StoreError::from),
        }
    }
}
