//! Alerting in GraphQL: notification channels (with "send test"), alert rules, and the alerts
//! they raised. Channels and rules are managed by the team's admins; every member sees the
//! rules and the alerts of their workspaces.

use super::scalars::Int64;
use async_graphql::{Context, InputObject, Object, SimpleObject};

use super::{gql, state, user};
use crate::alerts::notify::{ChannelConfig, ChannelKind, Notice};
use crate::alerts::rules::{self, RuleInput, RuleSpec};
use crate::auth::AuthUser;
use crate::auth::scopes::Scope;
use crate::clock::now_ms;
use crate::db::{AlertChannel, AlertDelivery, AlertEvent, AlertRule, AuditEvent};
use crate::error::Error;
use crate::teams::{Role, require_role, valid_name, workspace_role};

/// An email channel's SMTP settings.
#[derive(InputObject, Default)]
pub struct EmailSettings {
    smtp_host: Option<String>,
    /// 587 unless given.
    smtp_port: Option<u16>,
    /// `starttls` (the default), `tls` (port 465 style) or `none` (a relay on the same host).
    smtp_tls: Option<String>,
    smtp_user: Option<String>,
    smtp_password: Option<String>,
    /// The sender, e.g. `Porta <porta@example.com>`.
    from: Option<String>,
    /// Recipients, comma-separated.
    to: Option<String>,
}

#[derive(SimpleObject)]
pub struct AlertChannelView {
    id: String,
    workspace_id: String,
    name: String,
    /// `webhook`, `slack`, `discord` or `telegram`.
    kind: String,
    /// Where it goes, without its secrets.
    hint: String,
    created_ms: Int64,
    /// The latest deliveries, newest first.
    deliveries: Vec<DeliveryView>,
}

#[derive(SimpleObject)]
pub struct DeliveryView {
    /// `firing`, `resolved` or `test`.
    transition: String,
    alert_id: Option<Int64>,
    ok: bool,
    attempts: i64,
    /// What the last attempt got (`HTTP 200`, `timed out`, …).
    detail: String,
    at_ms: Int64,
}

impl From<AlertDelivery> for DeliveryView {
    fn from(d: AlertDelivery) -> Self {
        Self {
            transition: d.transition,
            alert_id: d.event_id.map(Into::into),
            ok: d.ok,
            attempts: d.attempts,
            detail: d.detail,
            at_ms: d.at_ms.into(),
        }
    }
}

#[derive(SimpleObject)]
pub struct AlertRuleView {
    id: String,
    workspace_id: String,
    /// The one server watched; every server of the workspace when absent.
    server_id: Option<String>,
    name: String,
    /// `threshold`, `offline`, `container_died`, `container_restarts`, `container_unhealthy` or
    /// `image_update`.
    kind: String,
    metric: Option<String>,
    comparison: Option<String>,
    threshold: Option<f64>,
    for_secs: i64,
    severity: String,
    cooldown_secs: i64,
    channel_ids: Vec<String>,
    enabled: bool,
    created_ms: Int64,
}

impl From<AlertRule> for AlertRuleView {
    fn from(r: AlertRule) -> Self {
        Self {
            channel_ids: serde_json::from_str(&r.channels).unwrap_or_default(),
            id: r.id,
            workspace_id: r.workspace_id,
            server_id: r.server_id,
            name: r.name,
            kind: r.kind,
            metric: r.metric,
            comparison: r.comparison,
            threshold: r.threshold,
            for_secs: r.for_secs,
            severity: r.severity,
            cooldown_secs: r.cooldown_secs,
            enabled: r.enabled,
            created_ms: r.created_ms.into(),
        }
    }
}

#[derive(SimpleObject)]
pub struct AlertView {
    id: Int64,
    rule_id: String,
    rule_name: String,
    workspace_id: String,
    server_id: String,
    /// The server's name (absent once it is gone from the database).
    server_name: Option<String>,
    severity: String,
    /// `firing` or `resolved`.
    state: String,
    value: Option<f64>,
    message: String,
    fired_ms: Int64,
    resolved_ms: Option<Int64>,
}

impl From<AlertEvent> for AlertView {
    fn from(e: AlertEvent) -> Self {
        Self {
            id: e.id.into(),
            rule_id: e.rule_id,
            rule_name: e.rule_name,
            workspace_id: e.workspace_id,
            server_id: e.server_id,
            server_name: None,
            severity: e.severity,
            state: e.state.as_str().to_owned(),
            value: e.value,
            message: e.message,
            fired_ms: e.fired_ms.into(),
            resolved_ms: e.resolved_ms.map(Into::into),
        }
    }
}

/// The caller's role in `workspace`, which must be at least `need` for `what`.
async fn role_in(ctx: &Context<'_>, workspace: &str, need: Role, what: &str) -> async_graphql::Result<()> {
    let u = user(ctx, if need >= Role::Admin { Scope::Write } else { Scope::Read })?;
    let (_, role) = workspace_role(&state(ctx).store, u, workspace).await.map_err(gql)?;
    require_role(role, need, what).map_err(gql)
}

async fn audit(
    ctx: &Context<'_>,
    u: &AuthUser,
    action: &str,
    target: String,
    workspace: &str,
    ok: bool,
    detail: String,
) {
    let actor = u.actor();
    let event = AuditEvent::new(&actor, action).target(&target).ok(ok).detail(detail).workspace(workspace);
    state(ctx).store.audit(event).await;
}

async fn channel_view(ctx: &Context<'_>, c: AlertChannel) -> async_graphql::Result<AlertChannelView> {
    let deliveries = state(ctx).store.alert_deliveries(&c.id, 10).await.map_err(|e| gql(e.into()))?;
    Ok(AlertChannelView {
        id: c.id,
        workspace_id: c.workspace_id,
        name: c.name,
        kind: c.kind,
        hint: c.hint,
        created_ms: c.created_ms.into(),
        deliveries: deliveries.into_iter().map(DeliveryView::from).collect(),
    })
}

/// A channel the caller administers.
async fn admin_channel(ctx: &Context<'_>, id: &str, what: &str) -> async_graphql::Result<AlertChannel> {
    // Who asks first: a stranger learns nothing, not even whether the id exists.
    let u = user(ctx, Scope::Write)?;
    let not_found = || gql(Error::NotFound(format!("no alert channel {id}, or you are not in its team")));
    let c = state(ctx).store.alert_channel(id).await.map_err(|e| gql(e.into()))?.ok_or_else(not_found)?;
    let (_, role) = workspace_role(&state(ctx).store, u, &c.workspace_id).await.map_err(|_| not_found())?;
    require_role(role, Role::Admin, what).map_err(gql)?;
    Ok(c)
}

/// A rule the caller administers.
async fn admin_rule(ctx: &Context<'_>, id: &str, what: &str) -> async_graphql::Result<AlertRule> {
    let u = user(ctx, Scope::Write)?;
    let not_found = || gql(Error::NotFound(format!("no alert rule {id}, or you are not in its team")));
    let r = state(ctx).store.alert_rule(id).await.map_err(|e| gql(e.into()))?.ok_or_else(not_found)?;
    let (_, role) = workspace_role(&state(ctx).store, u, &r.workspace_id).await.map_err(|_| not_found())?;
    require_role(role, Role::Admin, what).map_err(gql)?;
    Ok(r)
}

#[derive(Default)]
pub struct AlertQuery;

#[Object]
impl AlertQuery {
    /// A workspace's notification channels (for its admins).
    async fn alert_channels(
        &self,
        ctx: &Context<'_>,
        workspace_id: String,
    ) -> async_graphql::Result<Vec<AlertChannelView>> {
        role_in(ctx, &workspace_id, Role::Admin, "seeing alert channels").await?;
        let list = state(ctx).store.alert_channels(&workspace_id).await.map_err(|e| gql(e.into()))?;
        let mut out = Vec::with_capacity(list.len());
        for c in list {
            out.push(channel_view(ctx, c).await?);
        }
        Ok(out)
    }

    /// A workspace's alert rules.
    async fn alert_rules(&self, ctx: &Context<'_>, workspace_id: String) -> async_graphql::Result<Vec<AlertRuleView>> {
        role_in(ctx, &workspace_id, Role::Viewer, "seeing alert rules").await?;
        let list = state(ctx).store.alert_rules(&workspace_id).await.map_err(|e| gql(e.into()))?;
        Ok(list.into_iter().map(AlertRuleView::from).collect())
    }

    /// Alerts, newest first: of one workspace, or of every workspace the caller is in; only
    /// the ones still firing with `firing`.
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<String>,
        #[graphql(default = false)] firing: bool,
        #[graphql(default = 100)] limit: i32,
    ) -> async_graphql::Result<Vec<AlertView>> {
        let u = user(ctx, Scope::Read)?;
        let store = &state(ctx).store;
        let workspaces = match workspace_id {
            Some(w) => {
                workspace_role(store, u, &w).await.map_err(gql)?;
                vec![w]
            }
            None => {
                let mut all = Vec::new();
                for m in store.teams_of(&u.0.id).await.map_err(|e| gql(e.into()))? {
                    for w in store.workspaces(&m.team_id).await.map_err(|e| gql(e.into()))? {
                        if u.1.reaches_workspace(Some(&w.id)) {
                            all.push(w.id);
                        }
                    }
                }
                all
            }
        };
        let list = store.alert_events(&workspaces, firing, i64::from(limit.clamp(1, 1000))).await;
        let mut names: std::collections::HashMap<String, Option<String>> = std::collections::HashMap::new();
        let mut out = Vec::new();
        for e in list.map_err(|e| gql(e.into()))? {
            if !names.contains_key(&e.server_id) {
                let name = store.server(&e.server_id).await.map_err(|e| gql(e.into()))?.map(|s| s.name);
                names.insert(e.server_id.clone(), name);
            }
            let server_name = names.get(&e.server_id).cloned().flatten();
            out.push(AlertView { server_name, ..AlertView::from(e) });
        }
        Ok(out)
    }
}

#[derive(Default)]
pub struct AlertMutation;

#[Object]
impl AlertMutation {
    /// Adds a notification channel: `webhook` (JSON POSTed to `url`), `slack` or `discord`
    /// (their incoming-webhook `url`), `telegram` (`botToken` and `chatId`; `apiUrl` for a
    /// Bot API server of your own), or `email` (SMTP, in `email`). Its settings are stored
    /// sealed.
    #[allow(clippy::too_many_arguments)]
    async fn create_alert_channel(
        &self,
        ctx: &Context<'_>,
        workspace_id: String,
        name: String,
        kind: String,
        url: Option<String>,
        bot_token: Option<String>,
        chat_id: Option<String>,
        api_url: Option<String>,
        email: Option<EmailSettings>,
    ) -> async_graphql::Result<AlertChannelView> {
        role_in(ctx, &workspace_id, Role::Admin, "adding alert channels").await?;
        let u = user(ctx, Scope::Write)?;
        let name = valid_name(&name, "channel").map_err(gql)?;
        let e = email.unwrap_or_default();
        let config = ChannelConfig {
            url,
            bot_token,
            chat_id,
            api_url,
            smtp_host: e.smtp_host,
            smtp_port: e.smtp_port,
            smtp_tls: e.smtp_tls,
            smtp_user: e.smtp_user,
            smtp_password: e.smtp_password,
            from: e.from,
            to: e.to,
        };
        let hint = ChannelKind::parse(&kind).and_then(|k| config.validate(k)).map_err(|e| gql(Error::BadRequest(e)))?;
        config.check_egress(&state(ctx).egress).await.map_err(|e| gql(Error::BadRequest(e)))?;
        let plain = serde_json::to_string(&config).map_err(|e| gql(Error::Other(e.into())))?;
        let sealed = state(ctx).sealer.seal(&plain, &workspace_id).map_err(|e| gql(Error::Other(e)))?;
        let c = AlertChannel {
            id: uuid::Uuid::new_v4().to_string(),
            workspace_id: workspace_id.clone(),
            name,
            kind,
            config_sealed: sealed,
            hint,
            created_by: u.actor(),
            created_ms: now_ms(),
        };
        state(ctx).store.insert_alert_channel(&c).await.map_err(|e| gql(e.into()))?;
        let detail = format!("{} ({}, {})", c.name, c.kind, c.hint);
        audit(ctx, u, "alert.channel.create", format!("channel:{}", c.id), &workspace_id, true, detail).await;
        channel_view(ctx, c).await
    }

    async fn delete_alert_channel(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<bool> {
        let c = admin_channel(ctx, &id, "deleting alert channels").await?;
        let u = user(ctx, Scope::Write)?;
        state(ctx).store.delete_alert_channel(&id).await.map_err(|e| gql(e.into()))?;
        audit(ctx, u, "alert.channel.delete", format!("channel:{id}"), &c.workspace_id, true, c.name).await;
        Ok(true)
    }

    /// Sends a test notification through a channel now (with the usual retries) and says how
    /// it went; the delivery is logged with the channel's others.
    async fn test_alert_channel(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<DeliveryView> {
        let c = admin_channel(ctx, &id, "testing alert channels").await?;
        let u = user(ctx, Scope::Write)?;
        let st = state(ctx);
        let now = now_ms();
        let notice = Notice {
            event: "alert.test".into(),
            alert_id: None,
            rule: "Test notification".into(),
            rule_id: String::new(),
            severity: "info".into(),
            workspace_id: c.workspace_id.clone(),
            server_id: String::new(),
            server: "Porta".into(),
            metric: None,
            value: None,
            threshold: None,
            message: format!("{} sent a test through channel {}", u.0.username, c.name),
            fired_ms: now,
            resolved_ms: None,
            url: st.public_url.clone(),
        };
        let (attempts, result) = crate::alerts::send(&st.alerts, &c, &notice).await;
        let (ok, detail) = match result {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        audit(ctx, u, "alert.channel.test", format!("channel:{id}"), &c.workspace_id, ok, detail.clone()).await;
        Ok(DeliveryView {
            transition: "test".into(),
            alert_id: None,
            ok,
            attempts: i64::from(attempts),
            detail,
            at_ms: now.into(),
        })
    }

    /// Adds a rule. `threshold`: fires when `metric` `comparison` (`>`, `>=`, `<`, `<=`)
    /// `threshold` has held for `forSecs`; `offline`: fires when the server has been offline
    /// for `forSecs`; `container_died`: a container stopped without a person asking and was
    /// not started again; `container_restarts`: a container died `threshold` times (3 unless
    /// given) within ten minutes; `container_unhealthy`: a container's health check fails;
    /// `image_update`: a running container's registry names a newer image under its tag
    /// (checked every few hours). On `serverId`, or on every server of the workspace. After firing it stays
    /// quiet on that server for `cooldownSecs` (300 unless given).
    #[allow(clippy::too_many_arguments)]
    async fn create_alert_rule(
        &self,
        ctx: &Context<'_>,
        workspace_id: String,
        server_id: Option<String>,
        name: String,
        kind: String,
        metric: Option<String>,
        comparison: Option<String>,
        threshold: Option<f64>,
        #[graphql(default = 0)] for_secs: i64,
        #[graphql(default_with = "\"warning\".to_string()")] severity: String,
        #[graphql(default = 300)] cooldown_secs: i64,
        #[graphql(default)] channel_ids: Vec<String>,
    ) -> async_graphql::Result<AlertRuleView> {
        role_in(ctx, &workspace_id, Role::Admin, "adding alert rules").await?;
        let u = user(ctx, Scope::Write)?;
        let input = RuleInput {
            server_id,
            name,
            kind,
            metric,
            comparison,
            threshold,
            for_secs,
            severity,
            cooldown_secs,
            channel_ids,
        };
        let spec = RuleSpec::check(input).map_err(|m| gql(Error::BadRequest(m)))?;
        let detail = spec.describe();
        let rule = rules::create(&state(ctx).alerts, &workspace_id, spec, u.actor()).await.map_err(gql)?;
        audit(ctx, u, "alert.rule.create", format!("rule:{}", rule.id), &workspace_id, true, detail).await;
        Ok(rule.into())
    }

    /// Pauses or resumes a rule (a paused rule's firing alerts resolve).
    async fn set_alert_rule_enabled(
        &self,
        ctx: &Context<'_>,
        id: String,
        enabled: bool,
    ) -> async_graphql::Result<AlertRuleView> {
        let mut r = admin_rule(ctx, &id, "changing alert rules").await?;
        let u = user(ctx, Scope::Write)?;
        state(ctx).store.set_alert_rule_enabled(&id, enabled).await.map_err(|e| gql(e.into()))?;
        state(ctx).alerts.rules_changed();
        let action = if enabled { "alert.rule.enable" } else { "alert.rule.disable" };
        audit(ctx, u, action, format!("rule:{id}"), &r.workspace_id, true, r.name.clone()).await;
        r.enabled = enabled;
        Ok(r.into())
    }

    async fn delete_alert_rule(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<bool> {
        let r = admin_rule(ctx, &id, "deleting alert rules").await?;
        let u = user(ctx, Scope::Write)?;
        state(ctx).store.delete_alert_rule(&id).await.map_err(|e| gql(e.into()))?;
        state(ctx).alerts.rules_changed();
        audit(ctx, u, "alert.rule.delete", format!("rule:{id}"), &r.workspace_id, true, r.name).await;
        Ok(true)
    }
}
