//! The store's own error: what callers may want to tell apart (a duplicate of a unique key),
//! and everything else, which they report.

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with the same unique key is there already (a name taken, a link spent).
    #[error("already exists: {0}")]
    Duplicate(String),
    #[error(transparent)]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => Self::Duplicate(d.message().to_owned()),
            e => Self::Database(e),
        }
    }
}

/// What a store call gives.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
