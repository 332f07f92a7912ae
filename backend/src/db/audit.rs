//! The audit log: appending to the chain one event at a time, sealing what was written
//! before the chain, reading and verifying it.

use super::engine::{query, query_as, query_scalar};
use super::{Result, Store, StoreError};
use crate::audit::{AuditEvent, Record};
use crate::clock::now_ms;

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

const AUDIT_COLUMNS: &str =
    "seq, at_ms, actor, source, server_id, workspace_id, action, target, result, detail, prev_hash, hash";

/// A stored event as its row reads (the audit module's `Record` knows nothing of SQL).
#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    at_ms: i64,
    actor: Option<String>,
    source: Option<String>,
    server_id: Option<String>,
    workspace_id: Option<String>,
    action: String,
    target: Option<String>,
    result: String,
    detail: Option<String>,
    prev_hash: Option<String>,
    hash: Option<String>,
}

impl From<Row> for Record {
    fn from(r: Row) -> Self {
        let Row { seq, at_ms, actor, source, server_id, workspace_id, action, target, result, detail, prev_hash, hash } =
            r;
        Record { seq, at_ms, actor, source, server_id, workspace_id, action, target, result, detail, prev_hash, hash }
    }
}

fn records(rows: Vec<Row>) -> Vec<Record> {
    rows.into_iter().map(Record::from).collect()
}

impl Store {
    /// Writes an audit event at the end of the chain. A failure is logged, never returned:
    /// the action it records has already happened.
    pub async fn audit(&self, e: AuditEvent<'_>) {
        if let Err(err) = self.append_audit(&e).await {
            tracing::error!(error = %err, action = e.action, "cannot write an audit event");
        }
    }

    async fn append_audit(&self, e: &AuditEvent<'_>) -> Result<()> {
        use crate::audit::{MAX_DETAIL, MAX_FIELD, cut};
        let _one_at_a_time = self.audit_lock.lock().await;
        // IMMEDIATE: take the write lock before reading the head. A deferred transaction that
        // reads and then writes fails at once ("database is locked") when another connection
        // wrote in between, and the busy timeout cannot help it.
        let mut tx = self.pool.begin_serialized("audit").await?;
        let head: Option<(i64, String)> =
            query_as("SELECT seq, hash FROM audit_events WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut tx)
                .await?;
        let (seq, prev) = head.map_or((1, crate::audit::GENESIS.to_owned()), |(s, h)| (s + 1, h));
        let mut r = Record {
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
        query(
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
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        // The head, in the log: a copy kept elsewhere shows if events were cut off the end.
        if seq % 1000 == 0 {
            tracing::info!(seq, hash = r.hash.as_deref().unwrap_or_default(), "audit chain head");
        }
        Ok(())
    }

    /// Chains events written before the log was chained, in the order they were written.
    pub(super) async fn seal_audit(&self) -> Result<()> {
        let _one_at_a_time = self.audit_lock.lock().await;
        let mut tx = self.pool.begin_serialized("audit").await?;
        let unsealed: Vec<(i64,)> =
            query_as("SELECT id FROM audit_events WHERE seq IS NULL ORDER BY id").fetch_all(&mut tx).await?;
        if unsealed.is_empty() {
            return Ok(());
        }
        let head: Option<(i64, String)> =
            query_as("SELECT seq, hash FROM audit_events WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut tx)
                .await?;
        let (mut seq, mut prev) = head.unwrap_or((0, crate::audit::GENESIS.to_owned()));
        for (id,) in &unsealed {
            seq += 1;
            query("UPDATE audit_events SET seq = ?, prev_hash = ? WHERE id = ?")
                .bind(seq)
                .bind(&prev)
                .bind(id)
                .execute(&mut tx)
                .await?;
            let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE id = ?");
            let r = Record::from(query_as::<Row>(&sql).bind(id).fetch_one(&mut tx).await?);
            let hash = r.chain_hash(&prev);
            query("UPDATE audit_events SET hash = ? WHERE id = ?").bind(&hash).bind(id).execute(&mut tx).await?;
            prev = hash;
        }
        tx.commit().await?;
        tracing::info!(events = unsealed.len(), "chained audit events written before the log was chained");
        Ok(())
    }

    /// Up to `limit` events after `after_seq`, in order (for verifying the chain in batches).
    pub async fn audit_after(&self, after_seq: i64, limit: i64) -> Result<Vec<Record>> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?");
        query_as(&sql).bind(after_seq).bind(limit).fetch_all(&self.pool).await.map(records).map_err(StoreError::from)
    }

    /// Verifies the whole chain, in batches.
    pub async fn verify_audit(&self) -> Result<crate::audit::Verdict> {
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
            query_scalar("SELECT COUNT(*) FROM audit_events WHERE seq IS NULL").fetch_one(&self.pool).await?;
        if unnumbered > 0 {
            let seq = verifier.checked() as i64 + 1;
            let reason = format!("{unnumbered} events carry no sequence number");
            return Ok(crate::audit::Verdict::Broken { seq, reason });
        }
        Ok(crate::audit::Verdict::Intact { events: verifier.checked() })
    }

    /// Events matching `q`, newest first.
    pub async fn audit_events(&self, q: &AuditQuery) -> Result<Vec<Record>> {
        let mut sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE seq IS NOT NULL");
        if q.actor.is_some() {
            sql.push_str(" AND actor = ?");
        }
        if q.server.is_some() {
            sql.push_str(" AND server_id = ?");
        }
        let action_prefix = q.action.as_deref().filter(|a| a.ends_with('.'));
        if q.action.is_some() {
            sql.push_str(if action_prefix.is_some() {
                " AND substr(action, 1, length(?)) = ?"
            } else {
                " AND action = ?"
            });
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
        let mut query = query_as(&sql);
        if let Some(a) = &q.actor {
            query = query.bind(a);
        }
        if let Some(s) = &q.server {
            query = query.bind(s);
        }
        if let Some(a) = &q.action {
            if action_prefix.is_some() {
                query = query.bind(a);
            }
            query = query.bind(a);
        }
        for v in [q.since_ms, q.until_ms, q.before_seq, q.after_seq].into_iter().flatten() {
            query = query.bind(v);
        }
        query.bind(q.limit.clamp(1, 1000)).fetch_all(&self.pool).await.map(records).map_err(StoreError::from)
    }

    /// The newest audit events, newest first (for tests).
    pub async fn recent_audit(&self, limit: i64) -> Result<Vec<(String, Option<String>, Option<String>, String)>> {
        query_as("SELECT action, actor, target, result FROM audit_events ORDER BY seq DESC LIMIT ?")
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event<'a>(action: &'a str, detail: &str) -> AuditEvent<'a> {
        AuditEvent::new("user:u1", action).detail(detail)
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

    crate::db::testing::on_both_engines! {
        async fn audit_events_are_chained_even_when_written_at_once(s: Store) {
            let writes = (0..20).map(|i| {
                let s = s.clone();
                async move { s.audit(event("file.write", &format!("/f{i}"))).await }
            });
            futures_util::future::join_all(writes).await;
            assert_eq!(s.verify_audit().await.expect("verify"), crate::audit::Verdict::Intact { events: 20 });
            let newest = s.audit_events(&AuditQuery { limit: 5, ..Default::default() }).await.expect("list");
            assert_eq!(newest.iter().map(|r| r.seq).collect::<Vec<_>>(), [20, 19, 18, 17, 16]);
        }

        async fn nothing_unbounded_reaches_the_audit_log_and_the_chain_still_holds(s: Store) {
            let huge = "=x".repeat(300_000);
            s.audit(AuditEvent::new(&huge, "auth.login").target(&huge).detail(huge.clone()).source(huge.clone())).await;
            let q = AuditQuery { limit: 10, ..Default::default() };
            let e = &s.audit_events(&q).await.expect("read")[0];
            let len = |o: &Option<String>| o.as_deref().map_or(0, str::len);
            assert!(len(&e.actor) <= 510 && len(&e.target) <= 510 && len(&e.source) <= 510, "{e:?}");
            assert!(len(&e.detail) <= crate::audit::MAX_DETAIL + 3);
            assert!(matches!(s.verify_audit().await.expect("verify"), crate::audit::Verdict::Intact { .. }));
        }

        async fn audit_filters_by_action_prefix_actor_and_server(s: Store) {
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

        async fn events_written_before_the_chain_are_sealed_in_order(s: Store) {
            s.audit(event("auth.login", "chained")).await;
            for i in 0..3 {
                query(
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
    }
}
