//! All SQL lives here; nothing here knows about HTTP or GraphQL.
//!
//! One store over two engines: SQLite (embedded, one process) and PostgreSQL (several
//! replicas). Queries are written once and checked at run time (`engine`); the schema is
//! kept in step in `migrations/sqlite` and `migrations/postgres`, and the store's tests run
//! on both (`testing`).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

mod access_cache;
mod agents;
mod alerts;
mod api_tokens;
mod assistant;
mod audit;
mod chat_runs;
mod engine;
mod error;
mod invitations;
mod logins;
mod mcp_sessions;
mod metrics;
mod policies;
mod preview_shares;
mod projects;
mod recordings;
mod role;
mod servers;
mod teams;
#[cfg(test)]
pub(crate) mod testing;
mod tickets;
mod users;
mod workspaces;
pub use crate::audit::AuditEvent;
pub use agents::{Agent, AgentQuery, Operation, OperationQuery, Registered, StatusFilter};
pub use alerts::{AlertChannel, AlertDelivery, AlertEvent, AlertRule, AlertState};
pub use api_tokens::ApiToken;
pub use assistant::{AiProviderRow, ChatMessage, Conversation, MessageState, NewMessage};
pub use audit::AuditQuery;
pub use engine::Engine;
pub use error::{Result, StoreError};
pub use invitations::{Accepted, Invitation, InvitationInfo};
pub use logins::BackingOff;
pub use metrics::{PointStats, StoredPoint};
pub use preview_shares::PreviewShare;
pub use projects::Project;
pub use recordings::{NewRecording, OrphanedRecording, Recording};
pub use role::Role;
pub use servers::{SeenLater, Server, ServerAccess, ServerFacts};
pub use teams::{Member, MemberChange, Membership, TeamDeleted};
pub use users::{RefreshToken, User};
pub use workspaces::Workspace;

#[derive(Clone)]
pub struct Store {
    pool: engine::Pool,
    /// Audit events are chained: one is written at a time.
    audit_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Bumped when anyone may have lost access (a role lowered, a member removed, a workspace
    /// deleted, an API token revoked) or what access carries changed (recording, quotas): open
    /// stream sockets check themselves again, and no answer kept in `access_cache` is used.
    access: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    /// Recent answers of `server_access`.
    access_cache: std::sync::Arc<access_cache::AccessCache>,
    /// How many of those changes were made here (what this replica tells the others).
    access_made_here: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Store {
    /// Opens the database `url` names — `sqlite://<file>` (created if needed) or
    /// `postgres://…` — and applies pending migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let pool = if url.starts_with("sqlite:") {
            engine::Pool::Sqlite(sqlite(url).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            engine::Pool::Postgres(postgres(url).await?)
        } else {
            anyhow::bail!(
                "the database URL must start with sqlite:// or postgres:// (it starts with {:?})",
                scheme(url)
            );
        };
        let store = Self {
            pool,
            audit_lock: Default::default(),
            access: Default::default(),
            access_cache: Default::default(),
            access_made_here: Default::default(),
        };
        store.seal_audit().await?;
        Ok(store)
    }

    /// Which engine the store is on.
    pub fn engine(&self) -> Engine {
        self.pool.engine()
    }

    /// Closes every connection (the store is not used after this).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Changes whenever someone may have lost access to something.
    pub fn access_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.access.subscribe()
    }

    /// How many access changes this replica made or heard of.
    pub fn access_generation(&self) -> u64 {
        *self.access.borrow()
    }

    fn access_changed(&self) {
        self.access_made_here.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.access.send_modify(|n| *n += 1);
    }

    /// How many access changes this process made (not those it heard of).
    pub fn access_changes_made_here(&self) -> u64 {
        self.access_made_here.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Another replica changed someone's access: sockets here check themselves again.
    pub fn access_changed_elsewhere(&self) {
        self.access.send_modify(|n| *n += 1);
    }

    pub async fn ping(&self) -> Result<()> {
        engine::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(StoreError::from)
    }
}

/// What a URL starts with, for an error that must not show its password.
fn scheme(url: &str) -> &str {
    url.split_once(':').map_or(url, |(s, _)| s)
}

async fn sqlite(url: &str) -> anyhow::Result<sqlx::SqlitePool> {
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
    Ok(pool)
}

/// How long a request waits for a PostgreSQL connection before it is told the database is
/// unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// A PostgreSQL connection idle longer than this is pinged before it is used again.
const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

async fn postgres(url: &str) -> anyhow::Result<sqlx::PgPool> {
    let opts = PgConnectOptions::from_str(url).map_err(|e| anyhow::anyhow!("the PostgreSQL URL is not valid: {e}"))?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .min_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // sqlx pings a connection when it goes back to the pool; pinging it again when taken
        // out cost every query a second round trip. Only a connection idle for a while (which
        // a restarted server may have dropped since) is pinged before use.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_IDLE_AFTER {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_lazy_with(opts);
    // The database may still be starting (a compose stack comes up together): wait for it,
    // saying so, rather than failing at once.
    let start = std::time::Instant::now();
    let mut told = false;
    loop {
        match pool.acquire().await {
            Ok(_) => break,
            Err(e) if start.elapsed() < Duration::from_secs(60) => {
                if !told {
                    tracing::warn!(error = %e, "waiting for PostgreSQL");
                    told = true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => anyhow::bail!("cannot reach PostgreSQL after 60 s: {e}"),
        }
    }
    // Several replicas may start at once: the migrator takes an advisory lock, so one applies
    // what is pending and the others find it done.
    sqlx::migrate!("../migrations/postgres").run(&pool).await?;
    Ok(pool)
}

/// A fresh database in memory, for tests (the store's own run on both engines: `testing`).
#[cfg(test)]
pub(crate) async fn test_store() -> Store {
    testing::sqlite().await
}
