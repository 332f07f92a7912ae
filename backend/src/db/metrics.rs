//! Telemetry storage: points of every server's metric series (see migration 0009).

use super::engine::{Builder, query, query_as, query_scalar};
use super::{Result, Store, StoreError};

/// One stored point, its values still encoded.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredPoint {
    pub server_id: String,
    pub res: i64,
    pub ts: i64,
    pub n: i64,
    pub data: Vec<u8>,
}

/// Rows and bytes of one resolution, for measuring what storage costs.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PointStats {
    pub res: i64,
    pub points: i64,
    pub bytes: i64,
}

impl Store {
    /// Writes points in one transaction, replacing any with the same key (the last of a key
    /// given twice wins).
    pub async fn put_points(&self, points: &[StoredPoint]) -> Result<()> {
        // One statement may not touch a row twice (PostgreSQL refuses it): the last of a key.
        let mut last = std::collections::HashMap::new();
        for p in points {
            last.insert((p.server_id.as_str(), p.res, p.ts), p);
        }
        let mut unique: Vec<&StoredPoint> = last.into_values().collect();
        unique.sort_by(|a, b| (&a.server_id, a.res, a.ts).cmp(&(&b.server_id, b.res, b.ts)));
        // SQLite allows 32766 bound values; five per row.
        fn insert<'a>(chunk: &[&'a StoredPoint]) -> Builder<'a> {
            let mut b = Builder::new("INSERT INTO metric_points (server_id, res, ts, n, data) VALUES ");
            for (i, p) in chunk.iter().enumerate() {
                b.push(if i == 0 { "(" } else { ", (" });
                b.push_bind(&p.server_id).push(", ").push_bind(p.res).push(", ").push_bind(p.ts);
                b.push(", ").push_bind(p.n).push(", ").push_bind(&p.data).push(")");
            }
            b.push(" ON CONFLICT (server_id, res, ts) DO UPDATE SET n = excluded.n, data = excluded.data");
            b
        }
        const CHUNK: usize = 1000;
        if unique.is_empty() {
            return Ok(());
        }
        if self.engine() == super::Engine::Postgres {
            // One statement whatever the batch's size, binding five arrays: PostgreSQL plans
            // it once, where a VALUES list of 500 parameters was planned each time. Points are
            // new but for a batch sent again: a plain insert first, which costs PostgreSQL half
            // of an upsert's speculative insertion, and the upsert only when a key was taken.
            // Points of a server that is gone are dropped (there is no foreign key here: its
            // check locked the server's row for every point).
            const INSERT: &str = "INSERT INTO metric_points (server_id, res, ts, n, data) \
                 SELECT p.* FROM UNNEST(?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bytea[]) \
                 AS p(server_id, res, ts, n, data) WHERE EXISTS (SELECT 1 FROM servers s WHERE s.id = p.server_id)";
            let write = |sql: String| {
                query(sql)
                    .bind(unique.iter().map(|p| p.server_id.clone()).collect::<Vec<String>>())
                    .bind(unique.iter().map(|p| p.res).collect::<Vec<i64>>())
                    .bind(unique.iter().map(|p| p.ts).collect::<Vec<i64>>())
                    .bind(unique.iter().map(|p| p.n).collect::<Vec<i64>>())
                    .bind(unique.iter().map(|p| p.data.clone()).collect::<Vec<Vec<u8>>>())
                    .execute(&self.pool)
            };
            match write(INSERT.to_owned()).await.map_err(StoreError::from) {
                Err(StoreError::Duplicate(_)) => {}
                done => return done.map(|_| ()),
            }
            write(format!(
                "{INSERT} ON CONFLICT (server_id, res, ts) DO UPDATE SET n = excluded.n, data = excluded.data"
            ))
            .await?;
            return Ok(());
        }
        if unique.len() <= CHUNK {
            // One statement is all or nothing by itself: no transaction's round trips.
            insert(&unique).query().execute(&self.pool).await?;
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for chunk in unique.chunks(CHUNK) {
            insert(chunk).query().execute(&mut tx).await?;
        }
        tx.commit().await.map_err(StoreError::from)
    }

    /// A server's points of resolution `res` with `from <= ts < to`, oldest first.
    pub async fn points(&self, server: &str, res: i64, from: i64, to: i64) -> Result<Vec<StoredPoint>> {
        query_as(
            "SELECT server_id, res, ts, n, data FROM metric_points \
             WHERE server_id = ? AND res = ? AND ts >= ? AND ts < ? ORDER BY ts",
        )
        .bind(server)
        .bind(res)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from)
    }

    /// The time of a server's newest point of resolution `res`.
    pub async fn last_point_ts(&self, server: &str, res: i64) -> Result<Option<i64>> {
        query_scalar("SELECT MAX(ts) FROM metric_points WHERE server_id = ? AND res = ?")
            .bind(server)
            .bind(res)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    /// The time of a server's oldest point of resolution `res`.
    pub async fn first_point_ts(&self, server: &str, res: i64) -> Result<Option<i64>> {
        query_scalar("SELECT MIN(ts) FROM metric_points WHERE server_id = ? AND res = ?")
            .bind(server)
            .bind(res)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    /// Every server that may have points (telemetry is kept for revoked servers until it
    /// ages out).
    pub async fn all_server_ids(&self) -> Result<Vec<String>> {
        query_scalar("SELECT id FROM servers ORDER BY id").fetch_all(&self.pool).await.map_err(StoreError::from)
    }

    /// Deletes a server's points of resolution `res` older than `before`; how many went.
    pub async fn prune_points(&self, server: &str, res: i64, before: i64) -> Result<u64> {
        query("DELETE FROM metric_points WHERE server_id = ? AND res = ? AND ts < ?")
            .bind(server)
            .bind(res)
            .bind(before)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(StoreError::from)
    }

    /// Points and payload bytes per resolution, for one server or all.
    pub async fn point_stats(&self, server: Option<&str>) -> Result<Vec<PointStats>> {
        query_as(
            "SELECT res, COUNT(*) AS points, \
             CAST(COALESCE(SUM(LENGTH(data) + LENGTH(server_id) + 24), 0) AS BIGINT) AS bytes \
             FROM metric_points WHERE ?1 IS NULL OR server_id = ?1 GROUP BY res ORDER BY res",
        )
        .bind(server)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::db::testing::on_both_engines! {
        async fn a_batch_of_points_is_written_whole_and_the_last_of_a_key_wins(s: Store) {
            let u = s.create_user("alice", "h", false).await.expect("user");
            let ws = s.home_workspace(&u.id).await.expect("q").expect("home").id;
            s.insert_enrollment_token("t", &u.id, &ws, None, crate::clock::now_ms() + 60_000).await.expect("token");
            let server = s.enroll_server("t", "box", "c").await.expect("q").expect("enrolled").id;
            let point = |ts, n: i64| StoredPoint { server_id: server.clone(), res: 0, ts, n, data: vec![n as u8; 3] };
            let batch: Vec<StoredPoint> = (0..2500).map(|ts| point(ts, 1)).chain([point(7, 9)]).collect();
            s.put_points(&batch).await.expect("put");
            s.put_points(&[]).await.expect("nothing to put");
            let back = s.points(&server, 0, 0, 10_000).await.expect("points");
            assert_eq!(back.len(), 2500);
            assert_eq!((back[7].n, back[7].data.clone()), (9, vec![9; 3]), "the last of a key wins");
            s.put_points(&[point(7, 4)]).await.expect("again");
            assert_eq!(s.points(&server, 0, 7, 8).await.expect("points")[0].n, 4, "written again");
        }

        async fn a_deleted_team_takes_its_servers_points_and_none_come_after(s: Store) {
            let u = s.create_user("alice", "h", false).await.expect("user");
            let ws = s.home_workspace(&u.id).await.expect("q").expect("home").id;
            s.insert_enrollment_token("t", &u.id, &ws, None, crate::clock::now_ms() + 60_000).await.expect("token");
            let server = s.enroll_server("t", "box", "c").await.expect("q").expect("enrolled").id;
            let batch: Vec<StoredPoint> =
                (0..10).map(|ts| StoredPoint { server_id: server.clone(), res: 0, ts, n: 1, data: vec![1] }).collect();
            s.put_points(&batch).await.expect("put");
            assert!(s.revoke_server(&server).await.expect("revoke"));
            let team = s.teams_of(&u.id).await.expect("teams")[0].team_id.clone();
            assert!(matches!(s.delete_team(&team).await.expect("delete"), crate::db::TeamDeleted::Done { .. }));
            let left = || async {
                query_scalar::<i64>("SELECT COUNT(*) FROM metric_points WHERE server_id = ?")
                    .bind(&server)
                    .fetch_one(&s.pool)
                    .await
                    .expect("count")
            };
            assert_eq!(left().await, 0, "the points went with the team");
            // A batch that was on its way: refused (SQLite's foreign key) or skipped, never kept.
            let _ = s.put_points(&batch).await;
            assert_eq!(left().await, 0, "no point of a server that is gone");
        }
    }
}
