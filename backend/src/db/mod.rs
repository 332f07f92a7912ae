//! All SQL lives here; nothing here knows about HTTP or GraphQL.
//!
//! Queries are checked at run time (`query_as` + `bind`) so the same store can later gain a
//! PostgreSQL twin behind one conformance suite.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, SqlitePool};

use crate::now_ms;

mod agents;
mod alerts;
mod assistant;
mod metrics;
mod policies;
mod projects;
mod recordings;
mod role;
mod teams;
pub use crate::audit::AuditEvent;
pub use agents::{Agent, AgentQuery, Operation, OperationQuery, Registered, StatusFilter};
pub use alerts::{AlertChannel, AlertDelivery, AlertEvent, AlertRule};
pub use assistant::{AiProviderRow, ChatMessage, Conversation, NewMessage};
pub use metrics::{PointStats, StoredPoint};
pub use projects::Project;
pub use recordings::{NewRecording, Recording};
pub use role::Role;
pub use teams::{Accepted, Invitation, InvitationInfo, Member, MemberChange, Membership, TeamDeleted, Workspace};

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
    pub workspace_id: Option<String>,
}

/// A server as one user may reach it: through their role in the team owning its workspace.
#[derive(Debug, Clone, FromRow)]
pub struct ServerAccess {
    #[sqlx(flatten)]
    pub server: Server,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub team_id: String,
    /// Whether the workspace records terminal sessions.
    pub record_terminals: bool,
    /// The workspace's quota of terminals running at once.
    pub max_terminals: Option<i64>,
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

/// What the system learnt about a server's machine.
#[derive(Debug, Clone, Default)]
pub struct ServerFacts {
    pub agent: String,
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub arch: Option<String>,
    pub hostname: Option<String>,
}

/// Which audit events to list.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub server: Option<String>,
    /// Exact action, or a prefix ending in `.` (`file.` for every file action).
    pub action: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Only events before this one (for paging back).
    pub before_seq: Option<i64>,
    /// Only events after this one (for reading forward).
    pub after_seq: Option<i64>,
    /// Oldest first (else newest first).
    pub oldest_first: bool,
    pub limit: i64,
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    /// Audit events are chained: one is written at a time.
    audit_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Bumped when anyone may have lost access (a role lowered, a member removed, a workspace
    /// deleted, an API token revoked): open stream sockets check themselves again.
    access: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

const AUDIT_COLUMNS: &str =
    "seq, at_ms, actor, source, server_id, workspace_id, action, target, result, detail, prev_hash, hash";

/// A server's columns, for queries that name the table `s`.
const SERVER_COLUMNS: &str = "s.id, s.name, s.owner_id, s.created_ms, s.last_seen_ms, s.agent, s.os, s.kernel, s.arch, s.hostname, s.workspace_id";

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
        let store = Self { pool, audit_lock: Default::default(), access: Default::default() };
        store.seal_audit().await?;
        Ok(store)
    }

    /// Changes whenever someone may have lost access to something.
    pub fn access_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.access.subscribe()
    }

    fn access_changed(&self) {
        self.access.send_modify(|n| *n += 1);
    }

    pub async fn ping(&self) -> sqlx::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }

    // ------------------------------------------------------------------ users

    pub async fn user_count(&self) -> sqlx::Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await
    }

    /// Creates a user with a team of their own (which they own) holding one workspace.
    pub async fn create_user(&self, username: &str, password_hash: &str, is_admin: bool) -> sqlx::Result<User> {
        let mut tx = self.pool.begin().await?;
        let user = insert_user(&mut tx, username, password_hash, is_admin).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Makes an account through an invitation link: the link is spent, the user made (with a
    /// team of their own) and added to the link's team, all in one transaction — or nothing at
    /// all when the link is no longer good (`None`). Parallel uses of one link make one account.
    pub async fn sign_up_by_invitation(
        &self,
        token_hash: &str,
        username: &str,
        password_hash: &str,
    ) -> sqlx::Result<Option<(User, String, Role)>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let Some((team_id, role)) = teams::valid_invitation(&mut tx, token_hash).await? else { return Ok(None) };
        let user = insert_user(&mut tx, username, password_hash, false).await?;
        teams::spend_invitation(&mut tx, token_hash, &team_id, &user.id, role).await?;
        // They came for this team: it is the one they see first, not their own empty one.
        sqlx::query("UPDATE users SET last_team_id = ? WHERE id = ?")
            .bind(&team_id)
            .bind(&user.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some((user, team_id, role)))
    }

    /// Every username (to refuse a look-alike of one).
    pub async fn usernames(&self) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar("SELECT username FROM users").fetch_all(&self.pool).await
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

    /// Adds a refresh token to `family_id`, in the same statement that checks the sign-in
    /// still stands: none of the family's tokens revoked and the user's token version still
    /// `token_version`. False when either changed (a sign-out everywhere or a revocation that
    /// ran while this refresh was under way), and nothing is added.
    pub async fn insert_refresh(
        &self,
        family_id: &str,
        user_id: &str,
        token_version: i64,
        token_hash: &str,
        expires_ms: i64,
    ) -> sqlx::Result<bool> {
        let r = sqlx::query(
            "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, created_ms, expires_ms)
             SELECT ?, ?, ?, ?, ?, ?
             WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE family_id = ? AND revoked_ms IS NOT NULL)
               AND EXISTS (SELECT 1 FROM users WHERE id = ? AND token_version = ?)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(family_id)
        .bind(user_id)
        .bind(token_hash)
        .bind(now_ms())
        .bind(expires_ms)
        .bind(family_id)
        .bind(user_id)
        .bind(token_version)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
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

    /// Ends a sign-in: its refresh tokens, and (through [`Store::family_alive`]) the access
    /// tokens and sockets it gave. Open sockets check themselves again.
    pub async fn revoke_family(&self, family_id: &str) -> sqlx::Result<()> {
        sqlx::query("UPDATE refresh_tokens SET revoked_ms = ? WHERE family_id = ? AND revoked_ms IS NULL")
            .bind(now_ms())
            .bind(family_id)
            .execute(&self.pool)
            .await?;
        self.access_changed();
        Ok(())
    }

    /// Whether a sign-in is still on: not signed out, not revoked, not expired.
    pub async fn family_alive(&self, family_id: &str) -> sqlx::Result<bool> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE family_id = ? AND revoked_ms IS NULL AND expires_ms > ?)",
        )
        .bind(family_id)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await
    }

    /// Signs a user out everywhere: every refresh token revoked and the token version bumped
    /// (so every access token dies), optionally with a new password hash, in one transaction.
    pub async fn end_all_sign_ins(&self, user_id: &str, new_password_hash: Option<&str>) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE refresh_tokens SET revoked_ms = ? WHERE user_id = ? AND revoked_ms IS NULL")
            .bind(now_ms())
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE users SET token_version = token_version + 1, password_hash = COALESCE(?, password_hash) WHERE id = ?")
            .bind(new_password_hash)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.access_changed();
        Ok(())
    }

    // ------------------------------------------------------------ enrolment

    pub async fn insert_enrollment_token(
        &self,
        token_hash: &str,
        created_by: &str,
        workspace_id: &str,
        name: Option<&str>,
        expires_ms: i64,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO enrollment_tokens (token_hash, created_by, workspace_id, name, created_ms, expires_ms) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(token_hash)
        .bind(created_by)
        .bind(workspace_id)
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
        let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "UPDATE enrollment_tokens SET used_ms = ? WHERE token_hash = ? AND used_ms IS NULL AND expires_ms > ? \
             RETURNING created_by, name, workspace_id",
        )
        .bind(now)
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((owner_id, name, workspace_id)) = row else {
            return Ok(None);
        };
        let id = uuid::Uuid::new_v4().to_string();
        let name = name.filter(|n| !n.is_empty()).unwrap_or_else(|| hostname.to_owned());
        sqlx::query(
            "INSERT INTO servers (id, name, owner_id, credential_hash, created_ms, hostname, workspace_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(&name)
        .bind(&owner_id)
        .bind(credential_hash)
        .bind(now)
        .bind(hostname)
        .bind(&workspace_id)
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
            workspace_id,
        }))
    }

    // --------------------------------------------------------------- servers

    /// The live (not revoked) server holding this credential.
    pub async fn server_by_credential(&self, credential_hash: &str) -> sqlx::Result<Option<Server>> {
        sqlx::query_as(&format!(
            "SELECT {SERVER_COLUMNS} FROM servers s WHERE s.credential_hash = ? AND s.revoked_ms IS NULL"
        ))
        .bind(credential_hash)
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn server(&self, id: &str) -> sqlx::Result<Option<Server>> {
        sqlx::query_as(&format!("SELECT {SERVER_COLUMNS} FROM servers s WHERE s.id = ? AND s.revoked_ms IS NULL"))
            .bind(id)
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
            Some(f) => {
                // A bridge says these; whatever it says, they stay short and plain.
                let plain = |s: &str| -> String { s.chars().filter(|c| !c.is_control()).take(128).collect() };
                sqlx::query(
                    "UPDATE servers SET last_seen_ms = ?, agent = ?, os = COALESCE(?, os), kernel = COALESCE(?, kernel), \
                     arch = COALESCE(?, arch), hostname = COALESCE(?, hostname) WHERE id = ?",
                )
                .bind(now_ms())
                .bind(plain(&f.agent))
                .bind(f.os.as_deref().map(plain))
                .bind(f.kernel.as_deref().map(plain))
                .bind(f.arch.as_deref().map(plain))
                .bind(f.hostname.as_deref().map(plain))
                .bind(id)
                .execute(&self.pool)
                .await
                .map(|_| ())
            }
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
        self.access_changed();
        Ok(r.rows_affected() == 1)
    }

    // ------------------------------------------------------------- API tokens

    pub async fn create_api_token(&self, t: &ApiToken, secret_hash: &str) -> sqlx::Result<()> {
        sqlx::query(
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
        .map(|_| ())
    }

    /// The live token with this secret hash (not revoked, not expired), marked as used.
    pub async fn use_api_token(&self, secret_hash: &str) -> sqlx::Result<Option<ApiToken>> {
        let now = now_ms();
        let sql = format!(
            "SELECT {API_TOKEN_COLUMNS} FROM api_tokens WHERE secret_hash = ? AND revoked_ms IS NULL \
             AND (expires_ms IS NULL OR expires_ms > ?)"
        );
        let token: Option<ApiToken> =
            sqlx::query_as(&sql).bind(secret_hash).bind(now).fetch_optional(&self.pool).await?;
        if let Some(t) = &token {
            sqlx::query("UPDATE api_tokens SET last_used_ms = ? WHERE id = ?")
                .bind(now)
                .bind(&t.id)
                .execute(&self.pool)
                .await?;
        }
        Ok(token)
    }

    /// A user's tokens, newest first (revoked ones included).
    pub async fn api_tokens_of(&self, user_id: &str) -> sqlx::Result<Vec<ApiToken>> {
        let sql = format!("SELECT {API_TOKEN_COLUMNS} FROM api_tokens WHERE user_id = ? ORDER BY created_ms DESC, id");
        sqlx::query_as(&sql).bind(user_id).fetch_all(&self.pool).await
    }

    pub async fn api_token(&self, id: &str) -> sqlx::Result<Option<ApiToken>> {
        let sql = format!("SELECT {API_TOKEN_COLUMNS} FROM api_tokens WHERE id = ?");
        sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await
    }

    /// Revokes one of the user's tokens; false when there is no such live token.
    pub async fn revoke_api_token(&self, user_id: &str, id: &str) -> sqlx::Result<bool> {
        let r = sqlx::query("UPDATE api_tokens SET revoked_ms = ? WHERE id = ? AND user_id = ? AND revoked_ms IS NULL")
            .bind(now_ms())
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        self.access_changed();
        Ok(r.rows_affected() == 1)
    }

    // ----------------------------------------------------------------- audit

    /// Writes an audit event at the end of the chain. A failure is logged, never returned:
    /// the action it records has already happened.
    pub async fn audit(&self, e: AuditEvent<'_>) {
        if let Err(err) = self.append_audit(&e).await {
            tracing::error!(error = %err, action = e.action, "cannot write an audit event");
        }
    }

    async fn append_audit(&self, e: &AuditEvent<'_>) -> sqlx::Result<()> {
        use crate::audit::{MAX_DETAIL, MAX_FIELD, cut};
        let _one_at_a_time = self.audit_lock.lock().await;
        // IMMEDIATE: take the write lock before reading the head. A deferred transaction that
        // reads and then writes fails at once ("database is locked") when another connection
        // wrote in between, and the busy timeout cannot help it.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_events WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let (seq, prev) = head.map_or((1, crate::audit::GENESIS.to_owned()), |(s, h)| (s + 1, h));
        let mut r = crate::audit::Record {
            seq,
            at_ms: now_ms(),
            actor: Some(cut(e.actor, MAX_FIELD)),
            source: e.source.as_deref().map(|s| cut(s, MAX_FIELD)),
            server_id: e.server.map(|s| cut(s, MAX_FIELD)),
            workspace_id: e.workspace.map(|s| cut(s, MAX_FIELD)),
            action: cut(e.action, MAX_FIELD),
            target: e.target.map(|s| cut(s, MAX_FIELD)),
            result: cut(e.result.unwrap_or(if e.ok { "ok" } else { "denied" }), MAX_FIELD),
            detail: e.detail.as_deref().map(|s| cut(s, MAX_DETAIL)),
            prev_hash: Some(prev.clone()),
            hash: None,
        };
        r.hash = Some(r.chain_hash(&prev));
        sqlx::query(
            "INSERT INTO audit_events (seq, at_ms, actor, source, server_id, workspace_id, action, target, result, \
             detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(r.seq)
        .bind(r.at_ms)
        .bind(&r.actor)
        .bind(&r.source)
        .bind(&r.server_id)
        .bind(&r.workspace_id)
        .bind(&r.action)
        .bind(&r.target)
        .bind(&r.result)
        .bind(&r.detail)
        .bind(&r.prev_hash)
        .bind(&r.hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        // The head, in the log: a copy kept elsewhere shows if events were cut off the end.
        if seq % 1000 == 0 {
            tracing::info!(seq, hash = r.hash.as_deref().unwrap_or_default(), "audit chain head");
        }
        Ok(())
    }

    /// Chains events written before the log was chained, in the order they were written.
    async fn seal_audit(&self) -> sqlx::Result<()> {
        let _one_at_a_time = self.audit_lock.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let unsealed: Vec<(i64,)> =
            sqlx::query_as("SELECT id FROM audit_events WHERE seq IS NULL ORDER BY id").fetch_all(&mut *tx).await?;
        if unsealed.is_empty() {
            return Ok(());
        }
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_events WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let (mut seq, mut prev) = head.unwrap_or((0, crate::audit::GENESIS.to_owned()));
        for (id,) in &unsealed {
            seq += 1;
            sqlx::query("UPDATE audit_events SET seq = ?, prev_hash = ? WHERE id = ?")
                .bind(seq)
                .bind(&prev)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE id = ?");
            let r: crate::audit::Record = sqlx::query_as(&sql).bind(id).fetch_one(&mut *tx).await?;
            let hash = r.chain_hash(&prev);
            sqlx::query("UPDATE audit_events SET hash = ? WHERE id = ?").bind(&hash).bind(id).execute(&mut *tx).await?;
            prev = hash;
        }
        tx.commit().await?;
        tracing::info!(events = unsealed.len(), "chained audit events written before the log was chained");
        Ok(())
    }

    /// Up to `limit` events after `after_seq`, in order (for verifying the chain in batches).
    pub async fn audit_after(&self, after_seq: i64, limit: i64) -> sqlx::Result<Vec<crate::audit::Record>> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?");
        sqlx::query_as(&sql).bind(after_seq).bind(limit).fetch_all(&self.pool).await
    }

    /// Verifies the whole chain, in batches.
    pub async fn verify_audit(&self) -> sqlx::Result<crate::audit::Verdict> {
        let mut verifier = crate::audit::Verifier::default();
        let mut after = 0;
        loop {
            let batch = self.audit_after(after, 1000).await?;
            let Some(last) = batch.last().map(|r| r.seq) else { break };
            for r in &batch {
                if let Err(broken) = verifier.check(r) {
                    return Ok(broken);
                }
            }
            after = last;
        }
        // Rows the chain never reached (no number) are a break too.
        let unnumbered: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE seq IS NULL").fetch_one(&self.pool).await?;
        if unnumbered > 0 {
            let seq = verifier.checked() as i64 + 1;
            let reason = format!("{unnumbered} events carry no sequence number");
            return Ok(crate::audit::Verdict::Broken { seq, reason });
        }
        Ok(crate::audit::Verdict::Intact { events: verifier.checked() })
    }

    /// Events matching `q`, newest first.
    pub async fn audit_events(&self, q: &AuditQuery) -> sqlx::Result<Vec<crate::audit::Record>> {
        let mut sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE seq IS NOT NULL");
        if q.actor.is_some() {
            sql.push_str(" AND actor = ?");
        }
        if q.server.is_some() {
            sql.push_str(" AND server_id = ?");
        }
        let action_prefix = q.action.as_deref().filter(|a| a.ends_with('.'));
        if q.action.is_some() {
            sql.push_str(if action_prefix.is_some() { " AND substr(action, 1, ?) = ?" } else { " AND action = ?" });
        }
        if q.since_ms.is_some() {
            sql.push_str(" AND at_ms >= ?");
        }
        if q.until_ms.is_some() {
            sql.push_str(" AND at_ms < ?");
        }
        if q.before_seq.is_some() {
            sql.push_str(" AND seq < ?");
        }
        if q.after_seq.is_some() {
            sql.push_str(" AND seq > ?");
        }
        sql.push_str(if q.oldest_first { " ORDER BY seq LIMIT ?" } else { " ORDER BY seq DESC LIMIT ?" });
        let mut query = sqlx::query_as(&sql);
        if let Some(a) = &q.actor {
            query = query.bind(a);
        }
        if let Some(s) = &q.server {
            query = query.bind(s);
        }
        if let Some(a) = &q.action {
            if let Some(p) = action_prefix {
                query = query.bind(p.chars().count() as i64);
            }
            query = query.bind(a);
        }
        for v in [q.since_ms, q.until_ms, q.before_seq, q.after_seq].into_iter().flatten() {
            query = query.bind(v);
        }
        query.bind(q.limit.clamp(1, 1000)).fetch_all(&self.pool).await
    }

    /// The newest audit events, newest first (for tests).
    pub async fn recent_audit(
        &self,
        limit: i64,
    ) -> sqlx::Result<Vec<(String, Option<String>, Option<String>, String)>> {
        sqlx::query_as("SELECT action, actor, target, result FROM audit_events ORDER BY seq DESC LIMIT ?")
            .bind(limit)
            .fetch_all(&self.pool)
            .await
    }
}

/// Inserts a user with a team of their own, inside a transaction.
async fn insert_user(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    username: &str,
    password_hash: &str,
    is_admin: bool,
) -> sqlx::Result<User> {
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query("INSERT INTO users (id, username, password_hash, is_admin, created_ms) VALUES (?, ?, ?, ?, ?)")
        .bind(&id)
        .bind(username)
        .bind(password_hash)
        .bind(is_admin)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
    teams::insert_team(tx, username, &id).await?;
    Ok(User { id, username: username.into(), password_hash: password_hash.into(), is_admin, token_version: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> Store {
        Store::connect("sqlite::memory:").await.expect("in-memory store")
    }

    fn event<'a>(action: &'a str, detail: &str) -> AuditEvent<'a> {
        AuditEvent::new("user:u1", action).detail(detail)
    }

    #[tokio::test]
    async fn a_refresh_racing_a_sign_out_adds_no_token() {
        let s = store().await;
        let u = s.create_user("erin", "hash", false).await.expect("user");
        let later = now_ms() + 60_000;
        assert!(s.insert_refresh("fam1", &u.id, 0, "h1", later).await.expect("insert"));
        // Signed out everywhere after the refresh read the user (version 0) but before it wrote.
        s.end_all_sign_ins(&u.id, None).await.expect("end");
        assert!(!s.insert_refresh("fam1", &u.id, 0, "h2", later).await.expect("insert"), "old version");
        assert!(!s.insert_refresh("fam1", &u.id, 1, "h3", later).await.expect("insert"), "revoked family");
        assert!(
            s.refresh_by_hash("h2").await.expect("read").is_none() && !s.family_alive("fam1").await.expect("alive")
        );
        assert!(s.insert_refresh("fam2", &u.id, 1, "h4", later).await.expect("insert"), "a new sign-in works");
        s.revoke_family("fam2").await.expect("revoke");
        assert!(!s.insert_refresh("fam2", &u.id, 1, "h5", later).await.expect("insert"), "signed out");
    }

    #[tokio::test]
    async fn audit_events_are_chained_even_when_written_at_once() {
        let s = store().await;
        let writes = (0..20).map(|i| {
            let s = s.clone();
            async move { s.audit(event("file.write", &format!("/f{i}"))).await }
        });
        futures_util::future::join_all(writes).await;
        assert_eq!(s.verify_audit().await.expect("verify"), crate::audit::Verdict::Intact { events: 20 });
        let newest = s.audit_events(&AuditQuery { limit: 5, ..Default::default() }).await.expect("list");
        assert_eq!(newest.iter().map(|r| r.seq).collect::<Vec<_>>(), [20, 19, 18, 17, 16]);
    }

    #[tokio::test]
    async fn audit_appends_survive_other_writers_on_the_same_database() {
        // A file database with several connections, as in production: other writes land
        // between an append's read of the head and its insert unless the append locks first.
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("porta.db").display());
        let s = Store::connect(&url).await.expect("store");
        let audits = (0..40).map(|i| {
            let s = s.clone();
            async move { s.append_audit(&event("file.write", &format!("/f{i}"))).await }
        });
        let others = (0..40).map(|i| {
            let s = s.clone();
            async move { s.create_user(&format!("user{i}"), "hash", false).await.map(|_| ()) }
        });
        let (a, o) =
            futures_util::future::join(futures_util::future::join_all(audits), futures_util::future::join_all(others))
                .await;
        assert!(a.iter().all(Result::is_ok), "{:?}", a.iter().find(|r| r.is_err()));
        assert!(o.iter().all(Result::is_ok));
        assert_eq!(s.verify_audit().await.expect("verify"), crate::audit::Verdict::Intact { events: 40 });
    }

    #[tokio::test]
    async fn nothing_unbounded_reaches_the_audit_log_and_the_chain_still_holds() {
        let s = store().await;
        let huge = "=x".repeat(300_000);
        s.audit(AuditEvent::new(&huge, "auth.login").target(&huge).detail(huge.clone()).source(huge.clone())).await;
        let q = AuditQuery { limit: 10, ..Default::default() };
        let e = &s.audit_events(&q).await.expect("read")[0];
        let len = |o: &Option<String>| o.as_deref().map_or(0, str::len);
        assert!(len(&e.actor) <= 510 && len(&e.target) <= 510 && len(&e.source) <= 510, "{e:?}");
        assert!(len(&e.detail) <= crate::audit::MAX_DETAIL + 3);
        assert!(matches!(s.verify_audit().await.expect("verify"), crate::audit::Verdict::Intact { .. }));
    }

    #[tokio::test]
    async fn events_written_before_the_chain_are_sealed_in_order() {
        let s = store().await;
        s.audit(event("auth.login", "chained")).await;
        for i in 0..3 {
            sqlx::query(
                "INSERT INTO audit_events (at_ms, actor, action, result, detail) VALUES (?, 'user:u1', 'old', 'ok', ?)",
            )
            .bind(i)
            .bind(format!("legacy {i}"))
            .execute(&s.pool)
            .await
            .expect("insert");
        }
        let broken = s.verify_audit().await.expect("verify");
        assert!(matches!(broken, crate::audit::Verdict::Broken { seq: 2, .. }), "{broken:?}");
        s.seal_audit().await.expect("seal");
        assert_eq!(s.verify_audit().await.expect("verify"), crate::audit::Verdict::Intact { events: 4 });
        let sealed = s.audit_after(1, 10).await.expect("list");
        let details: Vec<_> = sealed.iter().map(|r| r.detail.clone().unwrap_or_default()).collect();
        assert_eq!(details, ["legacy 0", "legacy 1", "legacy 2"]);
    }

    #[tokio::test]
    async fn audit_filters_by_action_prefix_actor_and_server() {
        let s = store().await;
        s.audit(event("file.write", "a").server("s1")).await;
        s.audit(event("file.delete", "b").server("s2")).await;
        s.audit(AuditEvent::new("user:u2", "filesystem.other").detail("c")).await;
        let q = |action: &str| AuditQuery { action: Some(action.into()), limit: 10, ..Default::default() };
        assert_eq!(s.audit_events(&q("file.")).await.expect("list").len(), 2, "a prefix stops at its dot");
        assert_eq!(s.audit_events(&q("file.write")).await.expect("list").len(), 1);
        let by_server = AuditQuery { server: Some("s2".into()), limit: 10, ..Default::default() };
        assert_eq!(s.audit_events(&by_server).await.expect("list")[0].action, "file.delete");
        let by_actor = AuditQuery { actor: Some("user:u2".into()), limit: 10, ..Default::default() };
        assert_eq!(s.audit_events(&by_actor).await.expect("list")[0].action, "filesystem.other");
    }

    #[tokio::test]
    async fn an_enrolment_token_is_spent_once() {
        let s = store().await;
        let admin = s.create_user("admin", "h", true).await.expect("user");
        let ws = s.home_workspace(&admin.id).await.expect("q").expect("home").id;
        s.insert_enrollment_token("t1", &admin.id, &ws, Some("web-1"), now_ms() + 60_000).await.expect("token");
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
        let ws = s.home_workspace(&admin.id).await.expect("q").expect("home").id;
        s.insert_enrollment_token("t1", &admin.id, &ws, None, now_ms() - 1).await.expect("token");
        assert!(s.enroll_server("t1", "host", "c1").await.expect("query").is_none());
    }
}
