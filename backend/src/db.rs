//! All SQL lives here; nothing here knows about HTTP or GraphQL.
//!
//! Queries are checked at run time (`query_as` + `bind`) so the same store can later gain a
//! PostgreSQL twin behind one conformance suite.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, SqlitePool};

use crate::now_ms;

#[derive(Debug, Clone, FromRow)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub token_version: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct Server {
    pub id: String,
    pub name: String,
    pub owner_id: String,
    pub created_ms: i64,
    pub last_seen_ms: Option<i64>,
    pub agent: Option<String>,
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub arch: Option<String>,
    pub hostname: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct RefreshToken {
    pub id: String,
    pub family_id: String,
    pub user_id: String,
    pub expires_ms: i64,
    pub used_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
}

/// What the system learnt about a server's machine.
#[derive(Debug, Clone, Default)]
pub struct ServerFacts {
    pub agent: String,
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub arch: Option<String>,
    pub hostname: Option<String>,
}

/// One audit record.
#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    /// `user:<id>`, `server:<id>`, or `anonymous`.
    pub actor: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub ok: bool,
    pub detail: Option<String>,
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

const SERVER_COLUMNS: &str = "id, name, owner_id, created_ms, last_seen_ms, agent, os, kernel, arch, hostname";

impl Store {
    /// Opens (creating if needed) the database and applies pending migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        // Each connection to `:memory:` is its own database, so tests get exactly one.
        let max = if url.contains(":memory:") { 1 } else { 8 };
        let pool = SqlitePoolOptions::new().max_connections(max).connect_with(opts).await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    pub async fn ping(&self) -> sqlx::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }

    // ------------------------------------------------------------------ users

    pub async fn user_count(&self) -> sqlx::Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await
    }

    pub async fn create_user(&self, username: &str, password_hash: &str, is_admin: bool) -> sqlx::Result<User> {
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query("INSERT INTO users (id, username, password_hash, is_admin, created_ms) VALUES (?, ?, ?, ?, ?)")
            .bind(&id)
            .bind(username)
            .bind(password_hash)
            .bind(is_admin)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(User { id, username: username.into(), password_hash: password_hash.into(), is_admin, token_version: 0 })
    }

    pub async fn user_by_name(&self, username: &str) -> sqlx::Result<Option<User>> {
        sqlx::query_as("SELECT id, username, password_hash, is_admin, token_version FROM users WHERE username = ?")
            .bind(username)
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn user_by_id(&self, id: &str) -> sqlx::Result<Option<User>> {
        sqlx::query_as("SELECT id, username, password_hash, is_admin, token_version FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn first_admin(&self) -> sqlx::Result<Option<User>> {
        sqlx::query_as(
            "SELECT id, username, password_hash, is_admin, token_version FROM users WHERE is_admin ORDER BY created_ms LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
    }

    // --------------------------------------------------------- refresh tokens

    pub async fn insert_refresh(
        &self,
        family_id: &str,
        user_id: &str,
        token_hash: &str,
        expires_ms: i64,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, created_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(family_id)
        .bind(user_id)
        .bind(token_hash)
        .bind(now_ms())
        .bind(expires_ms)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    pub async fn refresh_by_hash(&self, token_hash: &str) -> sqlx::Result<Option<RefreshToken>> {
        sqlx::query_as(
            "SELECT id, family_id, user_id, expires_ms, used_ms, revoked_ms FROM refresh_tokens WHERE token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
    }

    /// Marks a token spent; false when someone else spent it first.
    pub async fn spend_refresh(&self, id: &str) -> sqlx::Result<bool> {
        let r = sqlx::query("UPDATE refresh_tokens SET used_ms = ? WHERE id = ? AND used_ms IS NULL")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn revoke_family(&self, family_id: &str) -> sqlx::Result<()> {
        sqlx::query("UPDATE refresh_tokens SET revoked_ms = ? WHERE family_id = ? AND revoked_ms IS NULL")
            .bind(now_ms())
            .bind(family_id)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    // ------------------------------------------------------------ enrolment

    pub async fn insert_enrollment_token(
        &self,
        token_hash: &str,
        created_by: &str,
        name: Option<&str>,
        expires_ms: i64,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO enrollment_tokens (token_hash, created_by, name, created_ms, expires_ms) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(token_hash)
        .bind(created_by)
        .bind(name)
        .bind(now_ms())
        .bind(expires_ms)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// Spends an unexpired, unused enrolment token and creates its server in one
    /// transaction. Returns `None` when the token is unknown, spent or expired.
    pub async fn enroll_server(
        &self,
        token_hash: &str,
        hostname: &str,
        credential_hash: &str,
    ) -> sqlx::Result<Option<Server>> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "UPDATE enrollment_tokens SET used_ms = ? WHERE token_hash = ? AND used_ms IS NULL AND expires_ms > ? RETURNING created_by, name",
        )
        .bind(now)
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((owner_id, name)) = row else {
            return Ok(None);
        };
        let id = uuid::Uuid::new_v4().to_string();
        let name = name.filter(|n| !n.is_empty()).unwrap_or_else(|| hostname.to_owned());
        sqlx::query(
            "INSERT INTO servers (id, name, owner_id, credential_hash, created_ms, hostname) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(&name)
        .bind(&owner_id)
        .bind(credential_hash)
        .bind(now)
        .bind(hostname)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE enrollment_tokens SET server_id = ? WHERE token_hash = ?")
            .bind(&id)
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(Server {
            id,
            name,
            owner_id,
            created_ms: now,
            last_seen_ms: None,
            agent: None,
            os: None,
            kernel: None,
            arch: None,
            hostname: Some(hostname.to_owned()),
        }))
    }

    // --------------------------------------------------------------- servers

    /// The live (not revoked) server holding this credential.
    pub async fn server_by_credential(&self, credential_hash: &str) -> sqlx::Result<Option<Server>> {
        sqlx::query_as(&format!(
            "SELECT {SERVER_COLUMNS} FROM servers WHERE credential_hash = ? AND revoked_ms IS NULL"
        ))
        .bind(credential_hash)
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn server(&self, id: &str) -> sqlx::Result<Option<Server>> {
        sqlx::query_as(&format!("SELECT {SERVER_COLUMNS} FROM servers WHERE id = ? AND revoked_ms IS NULL"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    /// The servers a user may use: their own, or all for an admin.
    pub async fn servers_for(&self, user: &User) -> sqlx::Result<Vec<Server>> {
        sqlx::query_as(&format!(
            "SELECT {SERVER_COLUMNS} FROM servers WHERE revoked_ms IS NULL AND (owner_id = ? OR ?) ORDER BY name, id"
        ))
        .bind(&user.id)
        .bind(user.is_admin)
        .fetch_all(&self.pool)
        .await
    }

    /// The server, if `user` may use it.
    pub async fn server_for(&self, user: &User, server_id: &str) -> sqlx::Result<Option<Server>> {
        sqlx::query_as(&format!(
            "SELECT {SERVER_COLUMNS} FROM servers WHERE id = ? AND revoked_ms IS NULL AND (owner_id = ? OR ?)"
        ))
        .bind(server_id)
        .bind(&user.id)
        .bind(user.is_admin)
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn server_seen(&self, id: &str, facts: Option<&ServerFacts>) -> sqlx::Result<()> {
        match facts {
            None => sqlx::query("UPDATE servers SET last_seen_ms = ? WHERE id = ?")
                .bind(now_ms())
                .bind(id)
                .execute(&self.pool)
                .await
                .map(|_| ()),
            Some(f) => sqlx::query(
                "UPDATE servers SET last_seen_ms = ?, agent = ?, os = COALESCE(?, os), kernel = COALESCE(?, kernel), \
                 arch = COALESCE(?, arch), hostname = COALESCE(?, hostname) WHERE id = ?",
            )
            .bind(now_ms())
            .bind(&f.agent)
            .bind(&f.os)
            .bind(&f.kernel)
            .bind(&f.arch)
            .bind(&f.hostname)
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ()),
        }
    }

    /// Revokes a server's credential; true when it was live.
    pub async fn revoke_server(&self, id: &str) -> sqlx::Result<bool> {
        let r = sqlx::query(
            "UPDATE servers SET revoked_ms = ?, credential_hash = NULL WHERE id = ? AND revoked_ms IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    // ----------------------------------------------------------------- audit

    pub async fn audit(&self, e: AuditEvent<'_>) {
        let r = sqlx::query(
            "INSERT INTO audit_events (at_ms, actor, action, target, result, detail) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(now_ms())
        .bind(e.actor)
        .bind(e.action)
        .bind(e.target)
        .bind(if e.ok { "ok" } else { "denied" })
        .bind(e.detail)
        .execute(&self.pool)
        .await;
        if let Err(err) = r {
            tracing::error!(error = %err, action = e.action, "cannot write an audit event");
        }
    }

    /// The newest audit events, newest first (for tests and the admin view).
    pub async fn recent_audit(
        &self,
        limit: i64,
    ) -> sqlx::Result<Vec<(String, Option<String>, Option<String>, String)>> {
        sqlx::query_as("SELECT action, actor, target, result FROM audit_events ORDER BY id DESC LIMIT ?")
            .bind(limit)
            .fetch_all(&self.pool)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> Store {
        Store::connect("sqlite::memory:").await.expect("in-memory store")
    }

    #[tokio::test]
    async fn an_enrolment_token_is_spent_once() {
        let s = store().await;
        let admin = s.create_user("admin", "h", true).await.expect("user");
        s.insert_enrollment_token("t1", &admin.id, Some("web-1"), now_ms() + 60_000).await.expect("token");
        let server = s.enroll_server("t1", "host", "c1").await.expect("query").expect("enrolled");
        assert_eq!(server.name, "web-1");
        assert!(s.enroll_server("t1", "host", "c2").await.expect("query").is_none(), "second use refused");
        assert_eq!(s.server_by_credential("c1").await.expect("q").map(|s| s.id), Some(server.id.clone()));
        assert!(s.revoke_server(&server.id).await.expect("revoke"));
        assert!(s.server_by_credential("c1").await.expect("q").is_none(), "revoked credential refused");
    }

    #[tokio::test]
    async fn an_expired_enrolment_token_is_refused() {
        let s = store().await;
        let admin = s.create_user("admin", "h", true).await.expect("user");
        s.insert_enrollment_token("t1", &admin.id, None, now_ms() - 1).await.expect("token");
        assert!(s.enroll_server("t1", "host", "c1").await.expect("query").is_none());
    }

    #[tokio::test]
    async fn users_see_their_own_servers_and_admins_all() {
        let s = store().await;
        let admin = s.create_user("admin", "h", true).await.expect("user");
        let bob = s.create_user("bob", "h", false).await.expect("user");
        let carol = s.create_user("carol", "h", false).await.expect("user");
        s.insert_enrollment_token("t1", &bob.id, None, now_ms() + 60_000).await.expect("token");
        let srv = s.enroll_server("t1", "bobs-box", "c1").await.expect("q").expect("enrolled");
        assert_eq!(s.servers_for(&bob).await.expect("q").len(), 1);
        assert_eq!(s.servers_for(&admin).await.expect("q").len(), 1);
        assert!(s.servers_for(&carol).await.expect("q").is_empty());
        assert!(s.server_for(&carol, &srv.id).await.expect("q").is_none());
    }
}
