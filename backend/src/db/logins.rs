//! Sign-in throttling's counts (see `crate::auth::ratelimit`): shared by every replica.

use super::engine::{query, query_as, query_scalar};
use super::{Result, Store};

/// A back-off under way for one (account, network).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackingOff {
    pub until_ms: i64,
    pub failures: i64,
    /// Attempts refused since it began, this one included.
    pub refused: i64,
}

/// Most (account, network) pairs kept; beyond this the oldest are forgotten.
const MAX_TRACKED: i64 = 100_000;

impl Store {
    /// Counts a refused attempt when a back-off for `account` from `network` lasts past
    /// `now_ms`, and returns it; nothing when none does.
    pub async fn login_backing_off(&self, account: &str, network: &str, now_ms: i64) -> Result<Option<BackingOff>> {
        let row: Option<(i64, i64, i64)> = query_as(
            "UPDATE login_failures SET refused = refused + 1 \
             WHERE account = ? AND network = ? AND until_ms > ? RETURNING until_ms, failures, refused",
        )
        .bind(account)
        .bind(network)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(until_ms, failures, refused)| BackingOff { until_ms, failures, refused }))
    }

    /// Counts an attempt from `network` in `minute`; returns the minute's attempts so far and
    /// the minute before's.
    pub async fn login_attempt(&self, network: &str, minute: i64) -> Result<(i64, i64)> {
        let now: i64 = query_scalar(
            "INSERT INTO login_attempts (network, minute, attempts) VALUES (?, ?, 1) \
             ON CONFLICT (network, minute) DO UPDATE SET attempts = login_attempts.attempts + 1 RETURNING attempts",
        )
        .bind(network)
        .bind(minute)
        .fetch_one(&self.pool)
        .await?;
        let before: Option<i64> = query_scalar("SELECT attempts FROM login_attempts WHERE network = ? AND minute = ?")
            .bind(network)
            .bind(minute - 1)
            .fetch_optional(&self.pool)
            .await?;
        Ok((now, before.unwrap_or(0)))
    }

    /// Counts a wrong password; returns the failures so far (a back-off's refusals restart).
    pub async fn login_failed(&self, account: &str, network: &str, now_ms: i64) -> Result<i64> {
        Ok(query_scalar(
            "INSERT INTO login_failures (account, network, failures, last_ms, refused) VALUES (?, ?, 1, ?, 0) \
             ON CONFLICT (account, network) DO UPDATE \
             SET failures = login_failures.failures + 1, last_ms = excluded.last_ms, refused = 0 RETURNING failures",
        )
        .bind(account)
        .bind(network)
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Holds `account` from `network` back until `until_ms`, or longer if a failure counted
    /// at the same moment already did.
    pub async fn login_back_off(&self, account: &str, network: &str, until_ms: i64) -> Result<()> {
        query(
            "UPDATE login_failures SET until_ms = CASE WHEN until_ms IS NULL OR until_ms < ? THEN ? ELSE until_ms END \
             WHERE account = ? AND network = ?",
        )
        .bind(until_ms)
        .bind(until_ms)
        .bind(account)
        .bind(network)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The right password: `network` starts afresh for `account`.
    pub async fn login_succeeded(&self, account: &str, network: &str) -> Result<()> {
        query("DELETE FROM login_failures WHERE account = ? AND network = ?")
            .bind(account)
            .bind(network)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets minutes before the one before `minute`, failures idle since `idle_before_ms` with no back-off
    /// lasting past `now_ms`, and the oldest pairs beyond [`MAX_TRACKED`].
    pub async fn login_sweep(&self, minute: i64, idle_before_ms: i64, now_ms: i64) -> Result<()> {
        query("DELETE FROM login_attempts WHERE minute < ?").bind(minute - 1).execute(&self.pool).await?;
        query("DELETE FROM login_failures WHERE last_ms < ? AND (until_ms IS NULL OR until_ms <= ?)")
            .bind(idle_before_ms)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        let kept: i64 = query_scalar("SELECT COUNT(*) FROM login_failures").fetch_one(&self.pool).await?;
        if kept > MAX_TRACKED {
            // Still full of live entries: drop the oldest tenth beyond the cap.
            let excess = kept - MAX_TRACKED + MAX_TRACKED / 10;
            query(
                "DELETE FROM login_failures WHERE (account, network) IN \
                 (SELECT account, network FROM login_failures ORDER BY last_ms LIMIT ?)",
            )
            .bind(excess)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }
}
