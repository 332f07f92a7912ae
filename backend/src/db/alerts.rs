//! Alerting storage: channels, rules, events and deliveries (see migration 0010).

use sqlx::FromRow;

use super::engine::{Builder, query, query_as, query_scalar};
use super::{Result, Store, StoreError};
use crate::clock::now_ms;

#[derive(Debug, Clone, FromRow)]
pub struct AlertChannel {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub kind: String,
    pub config_sealed: String,
    pub hint: String,
    pub created_by: String,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, FromRow)]
pub struct AlertRule {
    pub id: String,
    pub workspace_id: String,
    pub server_id: Option<String>,
    pub name: String,
    pub kind: String,
    pub metric: Option<String>,
    pub comparison: Option<String>,
    pub threshold: Option<f64>,
    pub for_secs: i64,
    pub severity: String,
    pub cooldown_secs: i64,
    /// JSON array of channel ids.
    pub channels: String,
    pub enabled: bool,
    pub created_by: String,
    pub created_ms: i64,
}

/// Where an alert is: firing until its condition clears, then resolved. Stored by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

impl TryFrom<String> for AlertState {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<Self, String> {
        [Self::Firing, Self::Resolved]
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("unknown alert state {s:?}"))
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct AlertEvent {
    pub id: i64,
    pub rule_id: String,
    pub rule_name: String,
    pub workspace_id: String,
    pub server_id: String,
    pub severity: String,
    #[sqlx(try_from = "String")]
    pub state: AlertState,
    pub value: Option<f64>,
    pub message: String,
    pub fired_ms: i64,
    pub resolved_ms: Option<i64>,
}

#[derive(Debug, Clone, FromRow)]
pub struct AlertDelivery {
    pub id: i64,
    pub channel_id: String,
    pub event_id: Option<i64>,
    pub transition: String,
    pub ok: bool,
    pub attempts: i64,
    pub detail: String,
    pub at_ms: i64,
}

const RULE_COLUMNS: &str = "id, workspace_id, server_id, name, kind, metric, comparison, threshold, for_secs, \
                            severity, cooldown_secs, channels, enabled, created_by, created_ms";
const EVENT_COLUMNS: &str =
    "id, rule_id, rule_name, workspace_id, server_id, severity, state, value, message, fired_ms, resolved_ms";

impl Store {
    pub async fn insert_alert_channel(&self, c: &AlertChannel) -> Result<()> {
        query(
            "INSERT INTO alert_channels (id, workspace_id, name, kind, config_sealed, hint, created_by, created_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.id)
        .bind(&c.workspace_id)
        .bind(&c.name)
        .bind(&c.kind)
        .bind(&c.config_sealed)
        .bind(&c.hint)
        .bind(&c.created_by)
        .bind(c.created_ms)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(StoreError::from)
    }

    pub async fn alert_channels(&self, workspace_id: &str) -> Result<Vec<AlertChannel>> {
        query_as("SELECT * FROM alert_channels WHERE workspace_id = ? ORDER BY created_ms, id")
            .bind(workspace_id)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    pub async fn alert_channel(&self, id: &str) -> Result<Option<AlertChannel>> {
        query_as("SELECT * FROM alert_channels WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    pub async fn delete_alert_channel(&self, id: &str) -> Result<bool> {
        let r = query("DELETE FROM alert_channels WHERE id = ?").bind(id).execute(&self.pool).await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn insert_alert_rule(&self, r: &AlertRule) -> Result<()> {
        query(format!("INSERT INTO alert_rules ({RULE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"))
            .bind(&r.id)
            .bind(&r.workspace_id)
            .bind(&r.server_id)
            .bind(&r.name)
            .bind(&r.kind)
            .bind(&r.metric)
            .bind(&r.comparison)
            .bind(r.threshold)
            .bind(r.for_secs)
            .bind(&r.severity)
            .bind(r.cooldown_secs)
            .bind(&r.channels)
            .bind(r.enabled)
            .bind(&r.created_by)
            .bind(r.created_ms)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(StoreError::from)
    }

    pub async fn alert_rules(&self, workspace_id: &str) -> Result<Vec<AlertRule>> {
        query_as(format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE workspace_id = ? ORDER BY created_ms, id"))
            .bind(workspace_id)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    /// Every enabled rule of a live workspace, for the engine.
    pub async fn enabled_alert_rules(&self) -> Result<Vec<AlertRule>> {
        query_as(format!(
            "SELECT {RULE_COLUMNS} FROM alert_rules WHERE enabled AND workspace_id IN \
             (SELECT id FROM workspaces WHERE deleted_ms IS NULL) ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from)
    }

    pub async fn alert_rule(&self, id: &str) -> Result<Option<AlertRule>> {
        query_as(format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    pub async fn set_alert_rule_enabled(&self, id: &str, enabled: bool) -> Result<()> {
        query("UPDATE alert_rules SET enabled = ? WHERE id = ?").bind(enabled).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn delete_alert_rule(&self, id: &str) -> Result<bool> {
        let r = query("DELETE FROM alert_rules WHERE id = ?").bind(id).execute(&self.pool).await?;
        Ok(r.rows_affected() > 0)
    }

    /// Live servers and their workspaces, with when each was last seen.
    pub async fn server_workspaces(&self) -> Result<Vec<(String, Option<String>, Option<i64>)>> {
        query_as("SELECT id, workspace_id, last_seen_ms FROM servers WHERE revoked_ms IS NULL")
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    /// Records a rule firing on a server; its id, or `None` when it fires there already
    /// (another replica recorded it: it notified, this one does not).
    pub async fn insert_alert_event(
        &self,
        rule: &AlertRule,
        server_id: &str,
        value: Option<f64>,
        message: &str,
        fired_ms: i64,
    ) -> Result<Option<i64>> {
        query_scalar(
            "INSERT INTO alert_events (rule_id, rule_name, workspace_id, server_id, severity, state, value, message, \
             fired_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (rule_id, server_id) WHERE state = 'firing' DO NOTHING RETURNING id",
        )
        .bind(&rule.id)
        .bind(&rule.name)
        .bind(&rule.workspace_id)
        .bind(server_id)
        .bind(&rule.severity)
        .bind(AlertState::Firing.as_str())
        .bind(value)
        .bind(message)
        .bind(fired_ms)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::from)
    }

    /// The firing alert of `rule` on `server`, if there is one.
    pub async fn firing_alert_event(&self, rule: &str, server_id: &str) -> Result<Option<i64>> {
        query_scalar("SELECT id FROM alert_events WHERE rule_id = ? AND server_id = ? AND state = ?")
            .bind(rule)
            .bind(server_id)
            .bind(AlertState::Firing.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    /// When each (rule, server) last fired, since `since_ms`: what their cooldowns count from.
    pub async fn last_alert_fires(&self, since_ms: i64) -> Result<Vec<(String, String, i64)>> {
        query_as(
            "SELECT rule_id, server_id, MAX(fired_ms) FROM alert_events WHERE fired_ms >= ? \
             GROUP BY rule_id, server_id",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from)
    }

    /// Resolves a firing alert; false when it was not firing (another replica resolved it:
    /// it notified, this one does not).
    pub async fn resolve_alert_event(&self, id: i64, resolved_ms: i64) -> Result<bool> {
        query("UPDATE alert_events SET state = ?, resolved_ms = ? WHERE id = ? AND state = ?")
            .bind(AlertState::Resolved.as_str())
            .bind(resolved_ms)
            .bind(id)
            .bind(AlertState::Firing.as_str())
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(StoreError::from)
    }

    /// What a firing alert says now (a container rule naming more containers).
    pub async fn set_alert_message(&self, id: i64, message: &str) -> Result<bool> {
        query("UPDATE alert_events SET message = ? WHERE id = ? AND state = ?")
            .bind(message)
            .bind(id)
            .bind(AlertState::Firing.as_str())
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(StoreError::from)
    }

    pub async fn alert_event(&self, id: i64) -> Result<Option<AlertEvent>> {
        query_as(format!("SELECT {EVENT_COLUMNS} FROM alert_events WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    /// Alerts still firing (the engine's state after a restart).
    pub async fn firing_alert_events(&self) -> Result<Vec<AlertEvent>> {
        query_as(format!("SELECT {EVENT_COLUMNS} FROM alert_events WHERE state = ? ORDER BY id"))
            .bind(AlertState::Firing.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    /// The workspaces' alerts, newest first; only firing ones with `firing_only`.
    pub async fn alert_events(
        &self,
        workspace_ids: &[String],
        firing_only: bool,
        limit: i64,
    ) -> Result<Vec<AlertEvent>> {
        if workspace_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut b = Builder::new(format!("SELECT {EVENT_COLUMNS} FROM alert_events WHERE workspace_id IN ("));
        b.push_list(workspace_ids).push(")");
        if firing_only {
            b.push(" AND state = ").push_bind(AlertState::Firing.as_str());
        }
        b.push(" ORDER BY fired_ms DESC, id DESC LIMIT ").push_bind(limit);
        b.query_as().fetch_all(&self.pool).await.map_err(StoreError::from)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn insert_alert_delivery(
        &self,
        channel_id: &str,
        event_id: Option<i64>,
        transition: &str,
        ok: bool,
        attempts: i64,
        detail: &str,
    ) -> Result<()> {
        query(
            "INSERT INTO alert_deliveries (channel_id, event_id, transition, ok, attempts, detail, at_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(channel_id)
        .bind(event_id)
        .bind(transition)
        .bind(ok)
        .bind(attempts)
        .bind(detail)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(StoreError::from)
    }

    pub async fn alert_deliveries(&self, channel_id: &str, limit: i64) -> Result<Vec<AlertDelivery>> {
        query_as("SELECT * FROM alert_deliveries WHERE channel_id = ? ORDER BY at_ms DESC, id DESC LIMIT ?")
            .bind(channel_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> AlertRule {
        AlertRule {
            id: "r".into(),
            workspace_id: "w".into(),
            server_id: None,
            name: "cpu".into(),
            kind: "threshold".into(),
            metric: Some("cpu".into()),
            comparison: Some(">".into()),
            threshold: Some(90.0),
            for_secs: 0,
            severity: "warning".into(),
            cooldown_secs: 0,
            channels: "[]".into(),
            enabled: true,
            created_by: "u".into(),
            created_ms: 0,
        }
    }

    crate::db::testing::on_both_engines! {
        async fn an_alert_fires_and_resolves_once_whichever_replica_tries(s: Store) {
            let first = s.insert_alert_event(&rule(), "srv", Some(95.0), "high", 100).await.expect("insert");
            let id = first.expect("the first firing is recorded");
            assert_eq!(s.insert_alert_event(&rule(), "srv", Some(96.0), "high", 101).await.expect("insert"), None);
            assert_eq!(s.firing_alert_event("r", "srv").await.expect("read"), Some(id));
            assert!(s.insert_alert_event(&rule(), "other", None, "high", 102).await.expect("insert").is_some());
            assert!(s.resolve_alert_event(id, 200).await.expect("resolve"));
            assert!(!s.resolve_alert_event(id, 201).await.expect("resolve"), "resolved once");
            assert!(s.insert_alert_event(&rule(), "srv", None, "again", 300).await.expect("insert").is_some());
            let mut fires = s.last_alert_fires(0).await.expect("fires");
            fires.sort();
            assert_eq!(fires, [("r".into(), "other".into(), 102), ("r".into(), "srv".into(), 300)]);
        }
    }
}
