//! Stores for tests, on each engine: a fresh database each time, in memory for SQLite and
//! on a real PostgreSQL server — the one `PORTA_TEST_POSTGRES` names (`cargo xtask test` starts
//! one), or else one this test process starts for itself.

use sqlx::Connection as _;

use super::Store;

/// The variable naming a PostgreSQL server for tests (a URL to any of its databases).
pub(crate) const POSTGRES_ENV: &str = "PORTA_TEST_POSTGRES";

pub(crate) async fn sqlite() -> Store {
    Store::connect("sqlite::memory:").await.expect("in-memory store")
}

/// A new, empty database on the test PostgreSQL server, migrated.
pub(crate) async fn postgres() -> Store {
    let server = match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.is_empty() => url,
        _ => tokio::task::spawn_blocking(|| porta_testkit::shared_postgres().map(|pg| pg.url("postgres")))
            .await
            .expect("join")
            .expect("a PostgreSQL server for the tests"),
    };
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&server).await.expect("connect to the test PostgreSQL server");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create a test database");
    admin.close().await.expect("close");
    let mut url = url::Url::parse(&server).expect("a URL");
    url.set_path(&format!("/{name}"));
    Store::connect(url.as_str()).await.expect("a store on PostgreSQL")
}

/// Store tests, each run once on every engine: `fn name(s: Store) { … }` becomes the module
/// `name` with the tests `sqlite` and `postgres`.
macro_rules! on_both_engines {
    ($($(#[$meta:meta])* async fn $name:ident($s:ident: Store) $body:block)*) => {
        $(
            $(#[$meta])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run($s: crate::db::Store) $body

                #[tokio::test]
                async fn sqlite() {
                    run(crate::db::testing::sqlite().await).await
                }

                #[tokio::test]
                async fn postgres() {
                    run(crate::db::testing::postgres().await).await
                }
            }
        )*
    };
}
pub(crate) use on_both_engines;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::db::engine::{Pool, query_as};

    /// Every table's columns — name, type as the store reads it, whether NULL is allowed —
    /// and every index by name.
    #[derive(Debug, PartialEq)]
    struct Schema {
        columns: BTreeMap<String, BTreeMap<String, (String, bool)>>,
        indexes: Vec<String>,
    }

    /// Table, column, declared type, whether NULL is allowed.
    type Column = (String, String, String, bool);

    fn kind(declared: &str) -> String {
        match declared.to_ascii_lowercase().as_str() {
            "integer" | "bigint" => "integer",
            "text" => "text",
            "boolean" => "boolean",
            "real" | "double precision" => "float",
            "blob" | "bytea" => "bytes",
            other => return format!("unknown type {other}"),
        }
        .to_owned()
    }

    async fn schema(s: &Store) -> Schema {
        let (columns, indexes): (Vec<Column>, Vec<String>) = match &s.pool {
            Pool::Sqlite(_) => (
                query_as(
                    "SELECT m.name, p.name, p.type, p.\"notnull\" = 0 AND p.pk = 0 FROM sqlite_master m \
                     JOIN pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
                     AND m.name NOT LIKE '_sqlx%'",
                )
                .fetch_all(&s.pool)
                .await
                .expect("columns"),
                query_as::<(String,)>(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%'",
                )
                .fetch_all(&s.pool)
                .await
                .expect("indexes")
                .into_iter()
                .map(|(n,)| n)
                .collect(),
            ),
            Pool::Postgres(_) => (
                query_as(
                    "SELECT table_name::TEXT, column_name::TEXT, data_type::TEXT, is_nullable = 'YES' \
                     FROM information_schema.columns WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%'",
                )
                .fetch_all(&s.pool)
                .await
                .expect("columns"),
                query_as::<(String,)>(
                    "SELECT indexname::TEXT FROM pg_indexes WHERE schemaname = 'public' \
                     AND indexname NOT LIKE '%\\_pkey' AND indexname NOT LIKE '%\\_key' AND indexname NOT LIKE '\\_sqlx%'",
                )
                .fetch_all(&s.pool)
                .await
                .expect("indexes")
                .into_iter()
                .map(|(n,)| n)
                .collect(),
            ),
        };
        let mut by_table: BTreeMap<String, BTreeMap<String, (String, bool)>> = BTreeMap::new();
        for (table, column, declared, nullable) in columns {
            by_table.entry(table).or_default().insert(column, (kind(&declared), nullable));
        }
        let mut indexes = indexes;
        indexes.sort();
        Schema { columns: by_table, indexes }
    }

    #[tokio::test]
    async fn both_engines_have_the_same_schema() {
        let (lite, pg) = (sqlite().await, postgres().await);
        let (a, b) = (schema(&lite).await, schema(&pg).await);
        assert!(a.columns.len() > 20, "{a:?}");
        for (table, columns) in &a.columns {
            assert_eq!(Some(columns), b.columns.get(table), "table {table}: SQLite (left) and PostgreSQL (right)");
        }
        assert_eq!(a.columns.keys().collect::<Vec<_>>(), b.columns.keys().collect::<Vec<_>>(), "the same tables");
        assert_eq!(a.indexes, b.indexes, "the same indexes");
    }
}
