//! The two engines the store runs on — SQLite (embedded, the default) and PostgreSQL (for
//! several replicas) — behind one way of writing a query.
//!
//! Every query is written once, in the SQL both engines read, with `?` for its parameters
//! (`?NNN` for a numbered one). On PostgreSQL the placeholders become `$1`, `$2`, … before the
//! statement is prepared (outside quoted text); SQLite reads them as they are. Rows decode
//! through the same `FromRow` types on both engines. Where the engines differ in what a
//! statement must do (taking a write lock, for one), the difference lives here, in a method
//! named for what it is for.

use std::borrow::Cow;
use std::marker::PhantomData;

use sqlx::postgres::{PgArguments, PgConnection, PgPool, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteConnection, SqlitePool, SqliteRow};
use sqlx::{Arguments as _, FromRow, Postgres, Sqlite};

/// Which engine a store is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A pool of connections to one engine.
#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    pub(crate) fn engine(&self) -> Engine {
        match self {
            Pool::Sqlite(_) => Engine::Sqlite,
            Pool::Postgres(_) => Engine::Postgres,
        }
    }

    pub(crate) async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin().await?),
            Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// A transaction that holds `scope`'s lock from its first statement to its end: a second
    /// one on the same scope waits, so a read-then-write inside it (the audit chain's head, a
    /// quota, a link spent once, the last owner of a team) sees no other writer in between.
    /// SQLite takes its one write lock at `BEGIN IMMEDIATE` (a deferred transaction that reads
    /// and then writes fails at once when another connection wrote in between, and the busy
    /// timeout cannot help it); PostgreSQL takes an advisory lock on the scope, released at
    /// commit or rollback, so unrelated scopes do not wait for each other.
    pub(crate) async fn begin_serialized(&self, scope: &str) -> Result<Tx, sqlx::Error> {
        match self {
            Pool::Sqlite(p) => Ok(Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?)),
            // One round trip: each statement after the lock must see what the lock's last holder
            // committed, whatever the database's default isolation (the key is our own number).
            Pool::Postgres(p) => Ok(Tx::Postgres(
                p.begin_with(format!(
                    "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({})",
                    lock_key(scope)
                ))
                .await?,
            )),
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

/// A scope's advisory lock key: FNV-1a of its name, so every replica derives the same one.
fn lock_key(scope: &str) -> i64 {
    let hash = scope.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// An open transaction; rolled back when dropped without [`Tx::commit`].
pub(crate) enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Postgres(t) => t.commit().await,
        }
    }
}

/// Where a statement runs: the pool (any free connection) or an open transaction.
pub(crate) enum Conn<'c> {
    SqlitePool(&'c SqlitePool),
    PostgresPool(&'c PgPool),
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

/// What a statement can run on.
pub(crate) trait Executor<'c> {
    fn conn(self) -> Conn<'c>;
}

impl<'c> Executor<'c> for &'c Pool {
    fn conn(self) -> Conn<'c> {
        match self {
            Pool::Sqlite(p) => Conn::SqlitePool(p),
            Pool::Postgres(p) => Conn::PostgresPool(p),
        }
    }
}

impl<'c> Executor<'c> for &'c mut Tx {
    fn conn(self) -> Conn<'c> {
        match self {
            Tx::Sqlite(t) => Conn::Sqlite(t),
            Tx::Postgres(t) => Conn::Postgres(t),
        }
    }
}

/// A parameter's value, in the types the store uses.
#[derive(Debug, Clone)]
pub(crate) enum Arg<'a> {
    Int(Option<i64>),
    Float(Option<f64>),
    Bool(Option<bool>),
    Text(Option<Cow<'a, str>>),
    Bytes(Option<Cow<'a, [u8]>>),
    /// Arrays, for PostgreSQL's `UNNEST` (SQLite has none: a statement binding one fails).
    Ints(Vec<i64>),
    Texts(Vec<String>),
    Blobs(Vec<Vec<u8>>),
}

/// A value that can be bound to a parameter.
pub(crate) trait IntoArg<'a> {
    fn into_arg(self) -> Arg<'a>;
}

macro_rules! into_arg {
    ($($t:ty => |$v:ident| $e:expr;)*) => {
        $(impl<'a> IntoArg<'a> for $t {
            fn into_arg(self) -> Arg<'a> {
                let $v = self;
                $e
            }
        })*
    };
}

into_arg! {
    i64 => |v| Arg::Int(Some(v));
    Option<i64> => |v| Arg::Int(v);
    &'a i64 => |v| Arg::Int(Some(*v));
    f64 => |v| Arg::Float(Some(v));
    Option<f64> => |v| Arg::Float(v);
    bool => |v| Arg::Bool(Some(v));
    &'a str => |v| Arg::Text(Some(Cow::Borrowed(v)));
    &'a String => |v| Arg::Text(Some(Cow::Borrowed(v.as_str())));
    String => |v| Arg::Text(Some(Cow::Owned(v)));
    Option<&'a str> => |v| Arg::Text(v.map(Cow::Borrowed));
    Option<String> => |v| Arg::Text(v.map(Cow::Owned));
    &'a Option<String> => |v| Arg::Text(v.as_deref().map(Cow::Borrowed));
    &'a [u8] => |v| Arg::Bytes(Some(Cow::Borrowed(v)));
    &'a Vec<u8> => |v| Arg::Bytes(Some(Cow::Borrowed(v.as_slice())));
    Vec<u8> => |v| Arg::Bytes(Some(Cow::Owned(v)));
    Vec<i64> => |v| Arg::Ints(v);
    Vec<String> => |v| Arg::Texts(v);
    Vec<Vec<u8>> => |v| Arg::Blobs(v);
}

fn sqlite_args<'a>(args: Vec<Arg<'a>>) -> Result<SqliteArguments<'a>, sqlx::error::BoxDynError> {
    let mut out = SqliteArguments::default();
    for arg in args {
        match arg {
            Arg::Int(v) => out.add(v)?,
            Arg::Float(v) => out.add(v)?,
            Arg::Bool(v) => out.add(v)?,
            Arg::Text(None) => out.add(None::<&str>)?,
            Arg::Text(Some(Cow::Borrowed(v))) => out.add(v)?,
            Arg::Text(Some(Cow::Owned(v))) => out.add(v)?,
            Arg::Bytes(None) => out.add(None::<&[u8]>)?,
            Arg::Bytes(Some(Cow::Borrowed(v))) => out.add(v)?,
            Arg::Bytes(Some(Cow::Owned(v))) => out.add(v)?,
            Arg::Ints(_) | Arg::Texts(_) | Arg::Blobs(_) => return Err("SQLite takes no arrays".into()),
        }
    }
    Ok(out)
}

fn postgres_args(args: Vec<Arg<'_>>) -> Result<PgArguments, sqlx::error::BoxDynError> {
    let mut out = PgArguments::default();
    for arg in args {
        match arg {
            Arg::Int(v) => out.add(v)?,
            Arg::Float(v) => out.add(v)?,
            Arg::Bool(v) => out.add(v)?,
            Arg::Text(v) => out.add(v.as_deref())?,
            Arg::Bytes(v) => out.add(v.as_deref())?,
            Arg::Ints(v) => out.add(v)?,
            Arg::Texts(v) => out.add(v)?,
            Arg::Blobs(v) => out.add(v)?,
        }
    }
    Ok(out)
}

/// `sql` with PostgreSQL's placeholders, numbered as SQLite numbers them: `?NNN` is `$NNN`, and
/// a bare `?` takes the number after the largest given so far. Question marks inside quoted
/// text or identifiers stay.
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut largest: u32 = 0;
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '?') => {
                let mut digits = String::new();
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    digits.push(d);
                }
                let n = if digits.is_empty() { largest + 1 } else { digits.parse().unwrap_or(largest + 1) };
                largest = largest.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            (None, c) => out.push(c),
        }
    }
    out
}

/// What a query gives back (see [`query`], [`query_as`], [`query_scalar`]).
pub(crate) struct Query<'a, K> {
    sql: Cow<'a, str>,
    args: Vec<Arg<'a>>,
    kind: PhantomData<K>,
}

/// Rows decoded as `O`.
pub(crate) struct Rows<O>(PhantomData<O>);
/// The first column decoded as `O`.
pub(crate) struct Scalar<O>(PhantomData<O>);

/// A statement run for its effect.
pub(crate) fn query<'a>(sql: impl Into<Cow<'a, str>>) -> Query<'a, ()> {
    Query { sql: sql.into(), args: Vec::new(), kind: PhantomData }
}

/// A statement whose rows are read as `O`.
pub(crate) fn query_as<'a, O>(sql: impl Into<Cow<'a, str>>) -> Query<'a, Rows<O>> {
    Query { sql: sql.into(), args: Vec::new(), kind: PhantomData }
}

/// A statement whose rows are one value each.
pub(crate) fn query_scalar<'a, O>(sql: impl Into<Cow<'a, str>>) -> Query<'a, Scalar<O>> {
    Query { sql: sql.into(), args: Vec::new(), kind: PhantomData }
}

impl<'a, K> Query<'a, K> {
    pub(crate) fn bind(mut self, value: impl IntoArg<'a>) -> Self {
        self.args.push(value.into_arg());
        self
    }
}

/// Runs `$body` with `$q` as the sqlx query for the engine `$conn` is on, and `$ex` the
/// executor to give it.
macro_rules! on_engine {
    ($self:ident, $conn:expr, |$ex:ident| $make:ident($($ty:ty)?) . $run:ident) => {{
        let Query { sql, args, .. } = $self;
        match $conn {
            Conn::SqlitePool($ex) => sqlx::$make::<Sqlite, $($ty,)? _>(&sql, sqlite_args(args).map_err(sqlx::Error::Encode)?).$run($ex).await,
            Conn::Sqlite($ex) => sqlx::$make::<Sqlite, $($ty,)? _>(&sql, sqlite_args(args).map_err(sqlx::Error::Encode)?).$run($ex).await,
            Conn::PostgresPool($ex) => {
                let sql = numbered(&sql);
                sqlx::$make::<Postgres, $($ty,)? _>(&sql, postgres_args(args).map_err(sqlx::Error::Encode)?).$run($ex).await
            }
            Conn::Postgres($ex) => {
                let sql = numbered(&sql);
                sqlx::$make::<Postgres, $($ty,)? _>(&sql, postgres_args(args).map_err(sqlx::Error::Encode)?).$run($ex).await
            }
        }
    }};
}

/// How many rows a statement changed.
pub(crate) struct Done {
    rows: u64,
}

impl Done {
    pub(crate) fn rows_affected(&self) -> u64 {
        self.rows
    }
}

impl<'a> Query<'a, ()> {
    pub(crate) async fn execute<'c>(self, ex: impl Executor<'c>) -> Result<Done, sqlx::Error> {
        let conn = ex.conn();
        let Query { sql, args, .. } = self;
        let rows = match conn {
            Conn::SqlitePool(p) => sqlx::query_with(&sql, sqlite_args(args).map_err(sqlx::Error::Encode)?)
                .execute(p)
                .await?
                .rows_affected(),
            Conn::Sqlite(c) => sqlx::query_with(&sql, sqlite_args(args).map_err(sqlx::Error::Encode)?)
                .execute(c)
                .await?
                .rows_affected(),
            Conn::PostgresPool(p) => {
                sqlx::query_with(&numbered(&sql), postgres_args(args).map_err(sqlx::Error::Encode)?)
                    .execute(p)
                    .await?
                    .rows_affected()
            }
            Conn::Postgres(c) => sqlx::query_with(&numbered(&sql), postgres_args(args).map_err(sqlx::Error::Encode)?)
                .execute(c)
                .await?
                .rows_affected(),
        };
        Ok(Done { rows })
    }
}

/// A row type both engines decode.
pub(crate) trait Row: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}
impl<T> Row for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}

impl<'a, O: Row> Query<'a, Rows<O>> {
    pub(crate) async fn fetch_one<'c>(self, ex: impl Executor<'c>) -> Result<O, sqlx::Error> {
        on_engine!(self, ex.conn(), |e| query_as_with(O).fetch_one)
    }

    pub(crate) async fn fetch_optional<'c>(self, ex: impl Executor<'c>) -> Result<Option<O>, sqlx::Error> {
        on_engine!(self, ex.conn(), |e| query_as_with(O).fetch_optional)
    }

    pub(crate) async fn fetch_all<'c>(self, ex: impl Executor<'c>) -> Result<Vec<O>, sqlx::Error> {
        on_engine!(self, ex.conn(), |e| query_as_with(O).fetch_all)
    }
}

impl<'a, O> Query<'a, Scalar<O>>
where
    (O,): Row,
    O: Send + Unpin,
{
    pub(crate) async fn fetch_one<'c>(self, ex: impl Executor<'c>) -> Result<O, sqlx::Error> {
        on_engine!(self, ex.conn(), |e| query_scalar_with(O).fetch_one)
    }

    pub(crate) async fn fetch_optional<'c>(self, ex: impl Executor<'c>) -> Result<Option<O>, sqlx::Error> {
        on_engine!(self, ex.conn(), |e| query_scalar_with(O).fetch_optional)
    }

    pub(crate) async fn fetch_all<'c>(self, ex: impl Executor<'c>) -> Result<Vec<O>, sqlx::Error> {
        on_engine!(self, ex.conn(), |e| query_scalar_with(O).fetch_all)
    }
}

/// A statement put together piece by piece (filters that are there or not, lists of values).
pub(crate) struct Builder<'a> {
    sql: String,
    args: Vec<Arg<'a>>,
}

impl<'a> Builder<'a> {
    pub(crate) fn new(sql: impl Into<String>) -> Self {
        Self { sql: sql.into(), args: Vec::new() }
    }

    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    pub(crate) fn push_bind(&mut self, value: impl IntoArg<'a>) -> &mut Self {
        self.sql.push('?');
        self.args.push(value.into_arg());
        self
    }

    /// The values, as a comma-separated list of parameters.
    pub(crate) fn push_list<V: IntoArg<'a>>(&mut self, values: impl IntoIterator<Item = V>) -> &mut Self {
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.push_bind(v);
        }
        self
    }

    pub(crate) fn query(self) -> Query<'a, ()> {
        Query { sql: Cow::Owned(self.sql), args: self.args, kind: PhantomData }
    }

    pub(crate) fn query_as<O>(self) -> Query<'a, Rows<O>> {
        Query { sql: Cow::Owned(self.sql), args: self.args, kind: PhantomData }
    }

    pub(crate) fn query_scalar<O>(self) -> Query<'a, Scalar<O>> {
        Query { sql: Cow::Owned(self.sql), args: self.args, kind: PhantomData }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quoted_text() {
        assert_eq!(numbered("SELECT ? , ?"), "SELECT $1 , $2");
        assert_eq!(
            numbered("WHERE a = ?1 OR ?1 IS NULL AND b = '?' AND \"c?\" = ?"),
            "WHERE a = $1 OR $1 IS NULL AND b = '?' AND \"c?\" = $2"
        );
        assert_eq!(numbered("x = 'it''s?' AND y = ?"), "x = 'it''s?' AND y = $1");
    }

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(lock_key("audit"), lock_key("audit"));
        assert_ne!(lock_key("audit"), lock_key("team:1"));
    }
}
