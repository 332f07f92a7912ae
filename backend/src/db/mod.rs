//! All SQL lives here; nothing here knows about HTTP or GraphQL.
//!
//! Queries are checked at run time (`query_as` + `bind`) so the same store can later gain a
//! PostgreSQL twin behind one conformance suite.

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

mod agents;
mod alerts;
mod api_tokens;
mod assistant;
mod audit;
mod error;
mod invitations;
mod metrics;
mod policies;
mod projects;
mod recordings;
mod role;
mod servers;
mod teams;
mod users;
mod workspaces;
pub use crate::audit::AuditEvent;
pub use agents::{Agent, AgentQuery, Operation, OperationQuery, Registered, StatusFilter};
pub use alerts::{AlertChannel, AlertDelivery, AlertEvent, AlertRule, AlertState};
pub use api_tokens::ApiToken;
pub use assistant::{AiProviderRow, ChatMessage, Conversation, MessageState, NewMessage};
pub use audit::AuditQuery;
pub use error::{Result, StoreError};
pub use invitations::{Accepted, Invitation, InvitationInfo};
pub use metrics::{PointStats, StoredPoint};
pub use projects::Project;
pub use recordings::{NewRecording, Recording};
pub use role::Role;
pub use servers::{SeenLater, Server, ServerAccess, ServerFacts};
pub use teams::{Member, MemberChange, Membership, TeamDeleted};
pub use users::{RefreshToken, User};
pub use workspaces::Workspace;

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    /// Audit events are chained: one is written at a time.
    audit_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Bumped when anyone may have lost access (a role lowered, a member removed, a workspace
    /// deleted, an API token revoked): open stream sockets check themselves again.
    access: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

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

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(StoreError::from)
    }
}

/// A fresh database in memory, for tests.
#[cfg(test)]
pub(crate) async fn test_store() -> Store {
    Store::connect("sqlite::memory:").await.expect("in-memory store")
}
