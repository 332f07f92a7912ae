//! Personal API tokens (their secrets are never stored, only the secrets' hashes).

use sqlx::FromRow;

use super::engine::{query, query_as};
use super::{Result, Store, StoreError};
use crate::clock::now_ms;

/// A personal API token (its secret is never stored, only the secret's hash).
#[derive(Debug, Clone, FromRow)]
pub struct ApiToken {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub hint: String,
    /// Comma-separated scope names.
    pub scopes: String,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub last_used_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
    /// The one workspace the token reaches, if it is limited to one.
    pub workspace_id: Option<String>,
}

const API_TOKEN_COLUMNS: &str =
    "id, user_id, name, hint, scopes, created_ms, expires_ms, last_used_ms, revoked_ms, workspace_id";

impl Store {
    pub async fn create_api_token(&self, t: &ApiToken, secret_hash: &str) -> Result<()> {
        query(
            "INSERT INTO api_tokens (id, user_id, name, secret_hash, hint, scopes, created_ms, expires_ms, workspace_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.id)
        .bind(&t.user_id)
        .bind(&t.name)
        .bind(secret_hash)
        .bind(&t.hint)
        .bind(&t.scopes)
        .bind(t.created_ms)
        .bind(t.expires_ms)
        .bind(&t.workspace_id)
        .execute(&self.pool)
        .await
        .map(|_| ()).map_err(StoreError::from)
    }

    /// The live token with this secret hash (not revoked, not expired), marked as used.
    pub async fn use_api_token(&self, secret_hash: &str) -> Result<Option<ApiToken>> {
        let now = now_ms();
        let sql = format!(
            "SELECT {API_TOKEN_COLUMNS} FROM api_tokens WHERE secret_hash = ? AND revoked_ms IS NULL \
             AND (expires_ms IS NULL OR expires_ms > ?)"
        );
        let token: Option<ApiToken> = query_as(&sql).bind(secret_hash).bind(now).fetch_optional(&self.pool).await?;
        if let Some(t) = &token {
            query("UPDATE api_tokens SET last_used_ms = ? WHERE id = ?")
                .bind(now)
                .bind(&t.id)
                .execute(&self.pool)
                .await?;
        }
        Ok(token)
    }

    /// A user's tokens, newest first (revoked ones included).
    pub async fn api_tokens_of(&self, user_id: &str) -> Result<Vec<ApiToken>> {
        let sql = format!("SELECT {API_TOKEN_COLUMNS} FROM api_tokens WHERE user_id = ? ORDER BY created_ms DESC, id");
        query_as(&sql).bind(user_id).fetch_all(&self.pool).await.map_err(StoreError::from)
    }

    pub async fn api_token(&self, id: &str) -> Result<Option<ApiToken>> {
        let sql = format!("SELECT {API_TOKEN_COLUMNS} FROM api_tokens WHERE id = ?");
        query_as(&sql).bind(id).fetch_optional(&self.pool).await.map_err(StoreError::from)
    }

    /// Revokes one of the user's tokens; false when there is no such live token.
    pub async fn revoke_api_token(&self, user_id: &str, id: &str) -> Result<bool> {
        let r = query("UPDATE api_tokens SET revoked_ms = ? WHERE id = ? AND user_id = ? AND revoked_ms IS NULL")
            .bind(now_ms())
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        self.access_changed();
        Ok(r.rows_affected() == 1)
    }
}
