//! Previews shared beyond the server's developers (see `crate::previews::shares`): with its
//! workspace's members, or by a public link whose secret is kept only as a hash.

use sqlx::FromRow;

use super::engine::{query, query_as};
use super::{Result, Store, StoreError};
use crate::clock::now_ms;

/// A preview's share.
#[derive(Debug, Clone, FromRow)]
pub struct PreviewShare {
    pub id: String,
    pub server_id: String,
    pub port: i64,
    /// `workspace` or `public`.
    pub level: String,
    pub password_hash: Option<String>,
    pub created_by: String,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
    /// Clients that entered through it.
    pub visits: i64,
    pub requests: i64,
    /// Bytes the app sent through it.
    pub bytes: i64,
}

impl PreviewShare {
    /// Neither revoked nor expired at `now`.
    pub fn live_at(&self, now: i64) -> bool {
        self.revoked_ms.is_none() && self.expires_ms.is_none_or(|e| e > now)
    }
}

const COLUMNS: &str = "id, server_id, port, level, password_hash, created_by, created_ms, expires_ms, revoked_ms, visits, requests, bytes";

impl Store {
    pub async fn create_preview_share(&self, s: &PreviewShare, secret_hash: Option<&str>) -> Result<()> {
        query(
            "INSERT INTO preview_shares (id, server_id, port, level, secret_hash, password_hash, created_by, created_ms, expires_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.id)
        .bind(&s.server_id)
        .bind(s.port)
        .bind(&s.level)
        .bind(secret_hash)
        .bind(&s.password_hash)
        .bind(&s.created_by)
        .bind(s.created_ms)
        .bind(s.expires_ms)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(StoreError::from)
    }

    pub async fn preview_share(&self, id: &str) -> Result<Option<PreviewShare>> {
        let sql = format!("SELECT {COLUMNS} FROM preview_shares WHERE id = ?");
        query_as(&sql).bind(id).fetch_optional(&self.pool).await.map_err(StoreError::from)
    }

    /// The public link whose secret hashes to `secret_hash`, live or not.
    pub async fn preview_share_by_secret(&self, secret_hash: &str) -> Result<Option<PreviewShare>> {
        let sql = format!("SELECT {COLUMNS} FROM preview_shares WHERE secret_hash = ?");
        query_as(&sql).bind(secret_hash).fetch_optional(&self.pool).await.map_err(StoreError::from)
    }

    /// A server's shares, newest first; revoked and expired ones only when `all`.
    pub async fn preview_shares(&self, server_id: &str, all: bool) -> Result<Vec<PreviewShare>> {
        let live = if all { "" } else { " AND revoked_ms IS NULL AND (expires_ms IS NULL OR expires_ms > ?)" };
        let sql =
            format!("SELECT {COLUMNS} FROM preview_shares WHERE server_id = ?{live} ORDER BY created_ms DESC, id");
        let q = query_as(&sql).bind(server_id);
        let q = if all { q } else { q.bind(now_ms()) };
        q.fetch_all(&self.pool).await.map_err(StoreError::from)
    }

    /// Whether a live share of `port` on `server_id` opens it to the workspace's members.
    pub async fn preview_shared_with_workspace(&self, server_id: &str, port: u16) -> Result<Option<PreviewShare>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM preview_shares WHERE server_id = ? AND port = ? AND level = 'workspace' \
             AND revoked_ms IS NULL AND (expires_ms IS NULL OR expires_ms > ?) ORDER BY created_ms DESC, id"
        );
        let found: Vec<PreviewShare> =
            query_as(&sql).bind(server_id).bind(i64::from(port)).bind(now_ms()).fetch_all(&self.pool).await?;
        Ok(found.into_iter().next())
    }

    /// Revokes a live share; false when it was not live. Everyone let in by it is out within
    /// the time a preview's yes is believed.
    pub async fn revoke_preview_share(&self, id: &str) -> Result<bool> {
        let r = query("UPDATE preview_shares SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.access_changed();
        Ok(r.rows_affected() == 1)
    }

    /// Adds traffic (and clients that entered) to a share's counts.
    pub async fn count_preview_share(&self, id: &str, visits: i64, requests: i64, bytes: i64) -> Result<()> {
        query("UPDATE preview_shares SET visits = visits + ?, requests = requests + ?, bytes = bytes + ? WHERE id = ?")
            .bind(visits)
            .bind(requests)
            .bind(bytes)
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::db::testing::on_both_engines! {
        async fn shares_are_found_counted_and_end(s: Store) {
            let admin = s.create_user("admin", "h", true).await.expect("user");
            let ws = s.home_workspace(&admin.id).await.expect("q").expect("home").id;
            s.insert_enrollment_token("t1", &admin.id, &ws, None, now_ms() + 60_000).await.expect("token");
            let server = s.enroll_server("t1", "host", "c1").await.expect("query").expect("enrolled").id;
            let share = |id: &str, level: &str, expires_ms| PreviewShare {
                id: id.into(),
                server_id: server.clone(),
                port: 5173,
                level: level.into(),
                password_hash: None,
                created_by: format!("user:{}", admin.id),
                created_ms: now_ms(),
                expires_ms,
                revoked_ms: None,
                visits: 0,
                requests: 0,
                bytes: 0,
            };
            s.create_preview_share(&share("w", "workspace", None), None).await.expect("workspace share");
            s.create_preview_share(&share("p", "public", Some(now_ms() + 60_000)), Some("hash")).await.expect("link");
            s.create_preview_share(&share("old", "public", Some(now_ms() - 1)), Some("old-hash")).await.expect("old");
            assert_eq!(s.preview_share_by_secret("hash").await.expect("q").map(|x| x.id), Some("p".into()));
            assert_eq!(s.preview_shared_with_workspace(&server, 5173).await.expect("q").map(|x| x.id), Some("w".into()));
            assert!(s.preview_shared_with_workspace(&server, 3000).await.expect("q").is_none());
            let live: Vec<String> = s.preview_shares(&server, false).await.expect("q").into_iter().map(|x| x.id).collect();
            assert_eq!(live.len(), 2, "the expired link is not live: {live:?}");
            assert_eq!(s.preview_shares(&server, true).await.expect("q").len(), 3);
            s.count_preview_share("p", 1, 2, 300).await.expect("count");
            s.count_preview_share("p", 0, 1, 50).await.expect("count");
            let p = s.preview_share("p").await.expect("q").expect("there");
            assert_eq!((p.visits, p.requests, p.bytes), (1, 3, 350));
            let before = s.access_generation();
            assert!(s.revoke_preview_share("w").await.expect("revoke"));
            assert!(!s.revoke_preview_share("w").await.expect("revoke"), "once");
            assert!(s.access_generation() > before, "a revocation is an access change");
            assert!(s.preview_shared_with_workspace(&server, 5173).await.expect("q").is_none());
        }
    }
}
