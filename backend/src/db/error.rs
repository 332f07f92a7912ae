//! The store's own error: what callers may want to tell apart (a duplicate of a unique key,
//! a database that cannot be reached), and everything else, which they report.

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with the same unique key is there already (a name taken, a link spent).
    #[error("already exists: {0}")]
    Duplicate(String),
    /// The database cannot be reached now (down, restarting, out of connections): nothing was
    /// done, and the same call may work in a moment.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => Self::Duplicate(d.message().to_owned()),
            // PostgreSQL's classes 08 (connection exception) and 57P (shutting down, starting).
            sqlx::Error::Database(d) if d.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P")) => {
                Self::Unavailable(d.message().to_owned())
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                Self::Unavailable(e.to_string())
            }
            e => Self::Database(e),
        }
    }
}

/// What a store call gives.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
