//! Alerting: rules over servers' telemetry and heartbeats, the alerts they raise, and the
//! notifications those send.
//!
//! One task ([`run`]) watches every sample as it arrives and every server coming and going,
//! feeds the rules' conditions to the [`engine`], records what fires and resolves as alert
//! events, and hands each to the rule's channels ([`notify`]), retried with backoff and logged
//! per attempt. Rules are read again whenever they change.

mod containers;
pub mod engine;
pub mod notify;
pub mod rules;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use porta_shared::telemetry::{Sample, format_value};
use tokio::sync::{Notify, broadcast};

use crate::bus::{Bus, Presence};
use crate::clock::now_ms;
use crate::db::{AlertChannel, AlertRule, Store};
use crate::secrets::Sealer;
use crate::telemetry::Telemetry;
use engine::{Timing, Tracker, Transition};
use notify::{ChannelConfig, Notice, Retry};
pub use rules::{Condition, SEVERITIES};

/// How notifications are delivered.
pub struct Delivery {
    pub retry: Retry,
    /// What deliveries may reach.
    pub egress: Arc<crate::egress::Egress>,
    /// The most one delivery attempt may take.
    pub deadline: Duration,
}

/// Shared with the API: how to reach the engine and the channels.
pub struct Alerts {
    reload: Notify,
    pub store: Store,
    /// Which servers are connected, and when they come and go.
    pub bus: Arc<dyn Bus>,
    /// Samples as they arrive.
    pub telemetry: Arc<Telemetry>,
    /// Opens channels' settings.
    pub sealer: Sealer,
    /// Where notices link to.
    pub public_url: String,
    pub http: reqwest::Client,
    pub retry: Retry,
    /// What deliveries may reach.
    pub egress: Arc<crate::egress::Egress>,
    /// The most one delivery attempt may take.
    pub deadline: Duration,
}

impl Alerts {
    pub fn new(
        store: Store,
        bus: Arc<dyn Bus>,
        telemetry: Arc<Telemetry>,
        sealer: Sealer,
        public_url: String,
        delivery: Delivery,
    ) -> anyhow::Result<Self> {
        let Delivery { retry, egress, deadline } = delivery;
        let http = egress.http_client(Duration::from_secs(10).min(deadline))?;
        Ok(Self { reload: Notify::new(), store, bus, telemetry, sealer, public_url, http, retry, egress, deadline })
    }

    /// Rules or servers changed: the engine reads them again, on whichever replica runs it.
    pub fn rules_changed(&self) {
        self.reload.notify_one();
        self.bus.tell_others(crate::bus::Topic::AlertRules, bytes::Bytes::new());
    }
}

struct Compiled {
    rule: AlertRule,
    condition: Condition,
    timing: Timing,
}

impl Compiled {
    fn applies(&self, server: &str, workspace: Option<&str>) -> bool {
        match &self.rule.server_id {
            Some(s) => s == server,
            None => workspace == Some(self.rule.workspace_id.as_str()),
        }
    }
}

/// "for 2 min", "for 30 s", "" for no duration.
fn for_text(secs: i64) -> String {
    match secs {
        0 => String::new(),
        s if s % 60 == 0 => format!(" for {} min", s / 60),
        s => format!(" for {s} s"),
    }
}

/// How far back the last firings are read when the engine starts (longer cooldowns start
/// afresh).
const COOLDOWNS_REMEMBERED_MS: i64 = 7 * 24 * 3600 * 1000;

struct Engine {
    rules: Vec<Compiled>,
    /// Live servers and their workspaces.
    servers: HashMap<String, Option<String>>,
    /// Servers whose bridge is away, since when.
    offline_since: HashMap<String, i64>,
    tracker: Tracker,
    /// The event of each firing (rule, server).
    events: HashMap<(String, String), i64>,
    /// The containers each firing container rule's channels have heard of, so a sample naming
    /// no other costs no query.
    said: HashMap<(String, String), Vec<String>>,
}

impl Engine {
    async fn load(alerts: &Arc<Alerts>) -> crate::db::Result<Self> {
        let mut e = Engine {
            rules: Vec::new(),
            servers: HashMap::new(),
            offline_since: HashMap::new(),
            tracker: Tracker::default(),
            events: HashMap::new(),
            said: HashMap::new(),
        };
        let now = now_ms();
        // Cooldowns count from the last firing, whichever replica fired it.
        for (rule, server, at) in alerts.store.last_alert_fires(now - COOLDOWNS_REMEMBERED_MS).await? {
            e.tracker.restore_fired(&rule, &server, at);
        }
        for ev in alerts.store.firing_alert_events().await? {
            e.tracker.restore_firing(&ev.rule_id, &ev.server_id, ev.fired_ms);
            e.events.insert((ev.rule_id, ev.server_id), ev.id);
        }
        e.reload(alerts).await?;
        // Offline time counts from now at the earliest: bridges reconnect to a restarted
        // backend, or to the replica left, within seconds (when they were last seen is up to
        // half a minute old, and would fire offline alerts for servers only reconnecting).
        for s in e.servers.keys() {
            if alerts.bus.connected(s).is_none() {
                e.offline_since.insert(s.clone(), now);
            }
        }
        Ok(e)
    }

    async fn reload(&mut self, alerts: &Arc<Alerts>) -> crate::db::Result<()> {
        self.rules = alerts
            .store
            .enabled_alert_rules()
            .await?
            .into_iter()
            .filter_map(|rule| match Condition::of(&rule) {
                Ok(condition) => {
                    // An offline rule's duration is counted from when the server left.
                    let for_ms = if condition == Condition::Offline { 0 } else { rule.for_secs * 1000 };
                    let timing = Timing { for_ms, cooldown_ms: rule.cooldown_secs * 1000 };
                    Some(Compiled { rule, condition, timing })
                }
                Err(e) => {
                    tracing::warn!(rule = %rule.id, error = %e, "skipping an alert rule that cannot be evaluated");
                    None
                }
            })
            .collect();
        self.servers = alerts.store.server_workspaces().await?.into_iter().map(|(id, ws, _)| (id, ws)).collect();
        // Alerts of rules that were deleted or disabled, and of servers that were removed, end
        // now (they could never resolve otherwise, and would keep the badge red).
        let live: std::collections::HashSet<String> = self.rules.iter().map(|c| c.rule.id.clone()).collect();
        let servers = &self.servers;
        for key in self.tracker.retain(&|r, s| live.contains(r) && servers.contains_key(s)) {
            self.said.remove(&key);
            if let Some(id) = self.events.remove(&key) {
                alerts.store.resolve_alert_event(id, now_ms()).await?;
            }
        }
        Ok(())
    }

    async fn on_sample(&mut self, alerts: &Arc<Alerts>, server: &str, sample: &Sample) {
        if !self.servers.contains_key(server) {
            // Enrolled since the last look.
            match alerts.store.server_workspaces().await {
                Ok(list) => self.servers = list.into_iter().map(|(id, ws, _)| (id, ws)).collect(),
                Err(e) => tracing::warn!(error = %e, "cannot read the servers' workspaces"),
            }
        }
        let workspace = self.servers.get(server).cloned().flatten();
        let now = now_ms();
        let mut due = Vec::new();
        for (i, c) in self.rules.iter().enumerate() {
            if c.condition == Condition::Offline || !c.applies(server, workspace.as_deref()) {
                continue;
            }
            let (holds, value, said) = match c.condition {
                Condition::Threshold { metric, comparison, threshold } => {
                    let value = f64::from(sample.value(metric));
                    (comparison.holds(value, threshold), Some(value), None)
                }
                container => match containers::judge(container, sample.docker.as_deref()) {
                    Some(found) => (true, Some(found.count), Some(found)),
                    None => (false, None, None),
                },
            };
            match self.tracker.observe(&c.rule.id, server, c.timing, holds, now) {
                Some(t) => due.push((i, Some(t), value, said)),
                None if holds && said.is_some() && self.tracker.is_firing(&c.rule.id, server) => {
                    due.push((i, None, value, said));
                }
                None => {}
            }
        }
        for (i, t, value, said) in due {
            match (t, said) {
                (Some(t), said) => self.transition(alerts, i, server, t, value, said).await,
                (None, Some(found)) => self.grew(alerts, i, server, found).await,
                (None, None) => {}
            }
        }
    }

    fn on_presence(&mut self, p: Presence) {
        match p {
            Presence::Online { server, .. } => {
                self.offline_since.remove(&server);
            }
            Presence::Offline { server, .. } => {
                self.offline_since.insert(server, now_ms());
            }
        }
    }

    async fn check_offline(&mut self, alerts: &Arc<Alerts>) {
        let now = now_ms();
        let mut due = Vec::new();
        for (i, c) in self.rules.iter().enumerate() {
            if c.condition != Condition::Offline {
                continue;
            }
            for (server, workspace) in &self.servers {
                if !c.applies(server, workspace.as_deref()) {
                    continue;
                }
                let away = self.offline_since.get(server).filter(|_| alerts.bus.connected(server).is_none());
                let holds = away.is_some_and(|since| now - since >= c.rule.for_secs * 1000);
                if let Some(t) = self.tracker.observe(&c.rule.id, server, c.timing, holds, now) {
                    due.push((i, server.clone(), t));
                }
            }
        }
        for (i, server, t) in due {
            self.transition(alerts, i, &server, t, None, None).await;
        }
    }

    /// Records and announces a rule's firing or end; `said` is the firing's message when the
    /// condition wrote one (which containers).
    async fn transition(
        &mut self,
        alerts: &Arc<Alerts>,
        i: usize,
        server: &str,
        t: Transition,
        value: Option<f64>,
        said: Option<containers::Found>,
    ) {
        let c = &self.rules[i];
        let key = (c.rule.id.clone(), server.to_owned());
        let now = now_ms();
        let (event, notice_event) = match t {
            Transition::Fire => {
                let message = match c.condition {
                    Condition::Threshold { metric, comparison, threshold } => format!(
                        "{} {} {} {}{}",
                        metric.label(),
                        format_value(metric.unit(), value.unwrap_or_default()),
                        comparison.symbol(),
                        format_value(metric.unit(), threshold),
                        for_text(c.rule.for_secs)
                    ),
                    Condition::Offline => format!("offline{}", for_text(c.rule.for_secs)),
                    _ => said.as_ref().map_or_else(|| "containers".into(), |f| f.said.clone()),
                };
                match alerts.store.insert_alert_event(&c.rule, server, value, &message, now).await {
                    Ok(Some(id)) => {
                        tracing::info!(rule = %c.rule.name, server, %message, "alert firing");
                        if let Some(found) = said {
                            self.said.insert(key.clone(), found.names);
                        }
                        self.events.insert(key, id);
                        (id, "alert.firing")
                    }
                    // Fired already, by the replica that evaluated before this one took over:
                    // it notified; this one resolves it when the time comes.
                    Ok(None) => {
                        match alerts.store.firing_alert_event(&c.rule.id, server).await {
                            Ok(Some(id)) => {
                                self.events.insert(key, id);
                            }
                            Ok(None) => {}
                            Err(e) => tracing::warn!(error = %e, "cannot read a firing alert"),
                        }
                        return;
                    }
                    Err(e) => return tracing::warn!(error = %e, "cannot record an alert"),
                }
            }
            Transition::Resolve => {
                self.said.remove(&key);
                let Some(id) = self.events.remove(&key) else { return };
                match alerts.store.resolve_alert_event(id, now).await {
                    Ok(true) => {}
                    // Resolved already, and notified, by another replica.
                    Ok(false) => return,
                    Err(e) => return tracing::warn!(error = %e, "cannot record an alert's end"),
                }
                tracing::info!(rule = %c.rule.name, server, "alert resolved");
                (id, "alert.resolved")
            }
        };
        self.announce(alerts, i, server, event, notice_event).await;
    }

    /// A container rule already firing on `server` now names containers its channels have not
    /// heard of: its alert says what it names now, and its channels hear of it (an alert per
    /// server would otherwise keep later deaths quiet while an earlier one stays dead). Known
    /// names are compared, not sentences: a restart count going up is no news.
    async fn grew(&mut self, alerts: &Arc<Alerts>, i: usize, server: &str, found: containers::Found) {
        let key = (self.rules[i].rule.id.clone(), server.to_owned());
        if self.said.get(&key).is_some_and(|known| found.names.iter().all(|n| known.contains(n))) {
            return;
        }
        let Some(&id) = self.events.get(&key) else { return };
        // Another replica may have fired it, or told of these since: its message says.
        let ev = match alerts.store.alert_event(id).await {
            Ok(Some(ev)) => ev,
            Ok(None) => return,
            Err(e) => return tracing::warn!(error = %e, "cannot read a firing alert"),
        };
        let told = containers::named_in(&ev.message);
        if found.names.iter().all(|n| told.contains(n.as_str())) {
            self.said.insert(key, found.names);
            return;
        }
        match alerts.store.set_alert_message(id, &found.said).await {
            Ok(true) => {}
            // It ended meanwhile: nothing to tell.
            Ok(false) => return,
            Err(e) => return tracing::warn!(error = %e, "cannot record what an alert names now"),
        }
        tracing::info!(rule = %self.rules[i].rule.name, server, message = %found.said, "alert names more containers");
        self.said.insert(key, found.names);
        self.announce(alerts, i, server, id, "alert.firing").await;
    }

    /// Tells rule `i`'s channels of event `event` on `server`.
    async fn announce(&self, alerts: &Arc<Alerts>, i: usize, server: &str, event: i64, notice_event: &str) {
        let c = &self.rules[i];
        let channels: Vec<String> = serde_json::from_str(&c.rule.channels).unwrap_or_default();
        if channels.is_empty() {
            return;
        }
        let Ok(Some(ev)) = alerts.store.alert_event(event).await else { return };
        let server_name =
            alerts.store.server(server).await.ok().flatten().map_or_else(|| server.to_owned(), |s| s.name);
        let (metric, threshold) = match c.condition {
            Condition::Threshold { metric, threshold, .. } => (Some(metric.name().to_owned()), Some(threshold)),
            _ => (None, None),
        };
        let notice = Notice {
            event: notice_event.into(),
            alert_id: Some(ev.id),
            rule: c.rule.name.clone(),
            rule_id: c.rule.id.clone(),
            severity: c.rule.severity.clone(),
            workspace_id: c.rule.workspace_id.clone(),
            server_id: server.to_owned(),
            server: server_name,
            metric,
            value: ev.value,
            threshold,
            message: ev.message,
            fired_ms: ev.fired_ms,
            resolved_ms: ev.resolved_ms,
            url: format!("{}/servers/{server}", alerts.public_url),
        };
        for channel in channels {
            let (alerts, notice) = (alerts.clone(), notice.clone());
            let workspace = c.rule.workspace_id.clone();
            tokio::spawn(async move {
                match alerts.store.alert_channel(&channel).await {
                    Ok(Some(ch)) if ch.workspace_id == workspace => {
                        let _ = send(&alerts, &ch, &notice).await;
                    }
                    _ => tracing::warn!(channel, "an alert rule names a channel that is gone"),
                }
            });
        }
    }
}

/// Sends `notice` to `channel` with retries and logs the delivery; what came of it.
pub async fn send(alerts: &Arc<Alerts>, channel: &AlertChannel, notice: &Notice) -> (u32, Result<String, String>) {
    let outcome = match open_config(alerts, channel) {
        Ok(config) => match notify::ChannelKind::parse(&channel.kind) {
            Ok(kind) => notify::deliver(alerts, kind, &config, notice).await,
            Err(e) => (0, Err(e)),
        },
        Err(e) => (0, Err(e)),
    };
    let (attempts, result) = &outcome;
    let transition = notice.event.trim_start_matches("alert.");
    let (ok, detail) = match result {
        Ok(d) => (true, d.as_str()),
        Err(d) => (false, d.as_str()),
    };
    if !ok {
        tracing::warn!(channel = %channel.name, attempts, detail, "an alert notification failed");
    }
    let logged = alerts
        .store
        .insert_alert_delivery(&channel.id, notice.alert_id, transition, ok, i64::from(*attempts), detail)
        .await;
    if let Err(e) = logged {
        tracing::warn!(error = %e, "cannot log an alert delivery");
    }
    outcome
}

/// A channel's settings, unsealed.
pub fn open_config(alerts: &Arc<Alerts>, channel: &AlertChannel) -> Result<ChannelConfig, String> {
    let plain = alerts
        .sealer
        .open(&channel.config_sealed, &channel.workspace_id)
        .map_err(|_| "the channel's settings cannot be opened (was the secrets key changed?)".to_owned())?;
    serde_json::from_str(&plain).map_err(|e| format!("the channel's settings are unreadable: {e}"))
}

/// How often the replica evaluating the rules renews its lease (well within the bus's
/// lease time), and another checks whether the lease is free.
const LEAD_EVERY: Duration = Duration::from_secs(2);

/// Evaluates the rules for ever on the one replica holding the `alerts` lease (the only
/// process, alone): a replica that dies passes it on within seconds, and the next one starts
/// from the stored state (alerts still firing stay firing, and resolve or notify once).
pub async fn run(alerts: Arc<Alerts>) {
    loop {
        while !alerts.bus.lead("alerts").await {
            tokio::time::sleep(LEAD_EVERY).await;
        }
        tracing::info!("this replica evaluates the alert rules");
        evaluate(&alerts).await;
        tracing::info!("another replica evaluates the alert rules now");
    }
}

/// Evaluates the rules while this replica holds the lease: on each sample, each server coming
/// and going, every second for heartbeats, and whenever rules change.
async fn evaluate(alerts: &Arc<Alerts>) {
    let alerts = alerts.clone();
    let mut engine = loop {
        match Engine::load(&alerts).await {
            Ok(e) => break e,
            Err(e) => {
                tracing::warn!(error = %e, "cannot load alert rules; trying again in 10 s");
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
        }
    };
    let mut samples = alerts.telemetry.subscribe();
    let mut presence = alerts.bus.presence();
    let mut changed_elsewhere = alerts.bus.hear(crate::bus::Topic::AlertRules);
    let mut lead = tokio::time::interval(LEAD_EVERY);
    lead.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut refresh = tokio::time::interval(Duration::from_secs(30));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            s = samples.recv() => match s {
                Ok(live) => engine.on_sample(&alerts, &live.server, &live.sample).await,
                // Fell behind: the next samples carry on.
                Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!(skipped = n, "alert rules skipped samples"),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            p = presence.recv() => match p {
                Ok(p) => engine.on_presence(p),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let now = now_ms();
                    for s in engine.servers.keys() {
                        match alerts.bus.connected(s) {
                            Some(_) => { engine.offline_since.remove(s); }
                            None => { engine.offline_since.entry(s.clone()).or_insert(now); }
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => engine.check_offline(&alerts).await,
            _ = lead.tick() => {
                if !alerts.bus.lead("alerts").await {
                    return;
                }
            }
            news = changed_elsewhere.recv() => {
                if matches!(news, Err(broadcast::error::RecvError::Closed)) {
                    return;
                }
                if let Err(e) = engine.reload(&alerts).await {
                    tracing::warn!(error = %e, "cannot reload alert rules");
                }
            }
            () = alerts.reload.notified() => {
                if let Err(e) = engine.reload(&alerts).await {
                    tracing::warn!(error = %e, "cannot reload alert rules");
                }
            }
            _ = refresh.tick() => {
                if let Err(e) = engine.reload(&alerts).await {
                    tracing::warn!(error = %e, "cannot reload alert rules");
                }
            }
        }
    }
}
