//! Notifications: what an alert says, in the shape each kind of channel expects, delivered
//! with retries and backoff. A generic webhook gets the whole alert as JSON; Slack, Discord
//! and Telegram get a line of text in their own message format; email goes over SMTP.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::egress::Egress;

use serde_json::json;

/// The kinds of channel; stored by their lowercase names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// A JSON POST of the notice.
    Webhook,
    Slack,
    Discord,
    Telegram,
    Email,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 5] = [Self::Webhook, Self::Slack, Self::Discord, Self::Telegram, Self::Email];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::Telegram => "telegram",
            Self::Email => "email",
        }
    }

    /// The kind named `name`; the message lists the kinds when there is none.
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|k| k.as_str() == name).ok_or_else(|| {
            let all: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown channel kind {name:?}; one of {}", all.join(", "))
        })
    }
}

/// A channel's settings (kept sealed: URLs and tokens are secrets).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChannelConfig {
    /// Where to POST (webhook, Slack and Discord incoming webhooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Telegram: the bot's token and the chat to write to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    /// Telegram's API (the public one unless set, e.g. for a local Bot API server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// Email: the SMTP server, its port (587 unless set), how to secure the connection
    /// (`starttls`, the default; `tls` from the first byte; `none`, for a relay on the same
    /// host), the login if it wants one, the sender and the recipients (comma-separated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_tls: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

impl ChannelConfig {
    /// Refuses, when it is saved, an address the egress policy will refuse anyway (names are
    /// checked again, resolved, at every delivery).
    pub async fn check_egress(&self, egress: &Egress) -> Result<(), String> {
        for url in [&self.url, &self.api_url].into_iter().flatten() {
            egress.check_saved_url(url.trim()).await.map_err(|e| e.to_string())?;
        }
        if let Some(host) = &self.smtp_host {
            let port = self.smtp_port.unwrap_or(email::DEFAULT_PORT);
            match egress.resolve(host.trim(), port).await {
                Ok(_) | Err(crate::egress::EgressError::Unresolved(_)) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    }

    /// Checks the settings `kind` needs; what to show instead of the secrets.
    pub fn validate(&self, kind: ChannelKind) -> Result<String, String> {
        let url = |u: &Option<String>, what: &str| {
            let u = u.as_deref().map(str::trim).filter(|u| !u.is_empty()).ok_or(format!("{what} needs a url"))?;
            crate::egress::valid_base_url(u)
        };
        match kind {
            ChannelKind::Webhook | ChannelKind::Slack | ChannelKind::Discord => {
                let u = url(&self.url, kind.as_str())?;
                // The host only: the path of a Slack or Discord webhook is its secret.
                Ok(u.split('/').take(3).collect::<Vec<_>>().join("/"))
            }
            ChannelKind::Telegram => {
                let token = self.bot_token.as_deref().unwrap_or_default().trim();
                let chat = self.chat_id.as_deref().unwrap_or_default().trim();
                if token.is_empty() || chat.is_empty() {
                    return Err("telegram needs a bot_token and a chat_id".into());
                }
                if !token.chars().all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '_' || c == '-') {
                    return Err("the bot token may hold letters, digits, ':', '_' and '-' only".into());
                }
                if self.api_url.is_some() {
                    url(&self.api_url, "telegram's api_url")?;
                }
                Ok(format!("telegram chat {chat}"))
            }
            ChannelKind::Email => {
                let host = self.smtp_host.as_deref().map(str::trim).unwrap_or_default();
                if host.is_empty() || host.contains(['/', ' ', '@']) {
                    return Err("email needs smtp_host: a host name or address".into());
                }
                email::mode(self.smtp_tls.as_deref())?;
                email::mailbox(self.from.as_deref().unwrap_or_default()).map_err(|e| format!("from: {e}"))?;
                let to = email::recipients(self.to.as_deref().unwrap_or_default())?;
                if self.smtp_user.is_some() != self.smtp_password.is_some() {
                    return Err("give both smtp_user and smtp_password, or neither".into());
                }
                let port = self.smtp_port.unwrap_or(email::DEFAULT_PORT);
                Ok(format!(
                    "email to {} via {host}:{port}",
                    to.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ))
            }
        }
    }
}

/// Email over SMTP.
mod email {
    use lettre::message::{Mailbox, header::ContentType};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    use super::{ChannelConfig, Egress, Failure, Notice};

    pub const DEFAULT_PORT: u16 = 587;

    #[derive(Debug, Clone, Copy, PartialEq)]
    pub enum Mode {
        StartTls,
        Tls,
        Plain,
    }

    pub fn mode(s: Option<&str>) -> Result<Mode, String> {
        match s.unwrap_or("starttls") {
            "starttls" => Ok(Mode::StartTls),
            "tls" => Ok(Mode::Tls),
            "none" => Ok(Mode::Plain),
            other => Err(format!("smtp_tls {other:?}: one of starttls, tls, none")),
        }
    }

    pub fn mailbox(s: &str) -> Result<Mailbox, String> {
        s.trim().parse::<Mailbox>().map_err(|e| format!("{s:?} is not an email address ({e})"))
    }

    pub fn recipients(list: &str) -> Result<Vec<Mailbox>, String> {
        let to: Vec<Mailbox> =
            list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(mailbox).collect::<Result<_, _>>()?;
        if to.is_empty() || to.len() > 20 {
            return Err("email needs 1 to 20 recipients in to (comma-separated)".into());
        }
        Ok(to)
    }

    fn message(config: &ChannelConfig, notice: &Notice) -> Result<Message, String> {
        let mut b = Message::builder()
            .from(mailbox(config.from.as_deref().unwrap_or_default())?)
            .subject(format!("[Porta] {}", notice.text().split(" — ").next().unwrap_or_default()))
            .header(ContentType::TEXT_PLAIN);
        for to in recipients(config.to.as_deref().unwrap_or_default())? {
            b = b.to(to);
        }
        let mut body = format!("{}\n\n", notice.text());
        body.push_str(&format!("Rule: {}\nServer: {}\nSeverity: {}\n", notice.rule, notice.server, notice.severity));
        if let (Some(m), Some(v)) = (&notice.metric, notice.value) {
            body.push_str(&format!("Metric: {m} = {v}\n"));
        }
        body.push_str(&format!("What: {}\nOpen: {}\n", notice.message, notice.url));
        b.body(body).map_err(|e| format!("cannot build the message: {e}"))
    }

    /// Sends over SMTP. The server's name is resolved and checked by the egress policy here,
    /// and the connection goes to the address that was checked (TLS still verifies the name).
    pub async fn send(config: &ChannelConfig, notice: &Notice, egress: &Egress) -> Result<String, Failure> {
        use lettre::transport::smtp::client::{Tls, TlsParameters};
        let permanent = |detail: String| Failure { retry: false, detail };
        let msg = message(config, notice).map_err(permanent)?;
        let host = config.smtp_host.as_deref().unwrap_or_default().trim();
        let port = config.smtp_port.unwrap_or(DEFAULT_PORT);
        let addr = match egress.resolve(host, port).await {
            Ok(addrs) => addrs[0],
            Err(e @ crate::egress::EgressError::Unresolved(_)) => {
                return Err(Failure { retry: true, detail: format!("smtp: {e}") });
            }
            Err(e) => return Err(permanent(format!("smtp: {e}"))),
        };
        let params = || TlsParameters::new(host.to_owned()).map_err(|e| permanent(format!("smtp: {e}")));
        let tls = match mode(config.smtp_tls.as_deref()).map_err(permanent)? {
            Mode::StartTls => Tls::Required(params()?),
            Mode::Tls => Tls::Wrapper(params()?),
            Mode::Plain => Tls::None,
        };
        let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string()).tls(tls);
        let mut builder = builder.port(port).timeout(Some(std::time::Duration::from_secs(15)));
        if let (Some(user), Some(password)) = (&config.smtp_user, &config.smtp_password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        match builder.build().send(msg).await {
            Ok(r) => Ok(format!("SMTP {}", r.code())),
            // A refusal (5xx) will be refused again; anything else may pass later.
            // The server's words, but not all of them: a reply can be long.
            Err(e) => Err(Failure { retry: !e.is_permanent(), detail: crate::audit::cut(&format!("smtp: {e}"), 500) }),
        }
    }
}

/// What an alert says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    /// `alert.firing`, `alert.resolved` or `alert.test`.
    pub event: String,
    pub alert_id: Option<i64>,
    pub rule: String,
    pub rule_id: String,
    pub severity: String,
    pub workspace_id: String,
    pub server_id: String,
    pub server: String,
    pub metric: Option<String>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub message: String,
    pub fired_ms: i64,
    pub resolved_ms: Option<i64>,
    /// The server's page.
    pub url: String,
}

impl Notice {
    /// One line for chat channels.
    pub fn text(&self) -> String {
        let mark = match (self.event.as_str(), self.severity.as_str()) {
            ("alert.resolved", _) => "✅ RESOLVED",
            ("alert.test", _) => "🔔 TEST",
            (_, "critical") => "🔥 CRITICAL",
            (_, "warning") => "⚠️ WARNING",
            _ => "ℹ️ INFO",
        };
        format!("{mark} [{}] {} — {} ({})", self.server, self.rule, self.message, self.url)
    }
}

/// How often and how patiently deliveries are tried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub first_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self { attempts: 4, first_backoff: Duration::from_secs(1) }
    }
}

/// The request a channel of `kind` gets for `notice`: URL and JSON body.
pub fn request(
    kind: ChannelKind,
    config: &ChannelConfig,
    notice: &Notice,
) -> Result<(String, serde_json::Value), String> {
    let url = || config.url.clone().ok_or_else(|| "the channel has no url".to_owned());
    Ok(match kind {
        ChannelKind::Webhook => (url()?, serde_json::to_value(notice).map_err(|e| e.to_string())?),
        ChannelKind::Slack => (url()?, json!({ "text": notice.text() })),
        ChannelKind::Discord => (url()?, json!({ "content": notice.text() })),
        ChannelKind::Telegram => {
            let api = config.api_url.as_deref().unwrap_or("https://api.telegram.org").trim_end_matches('/');
            let token = config.bot_token.as_deref().unwrap_or_default();
            (format!("{api}/bot{token}/sendMessage"), json!({ "chat_id": config.chat_id, "text": notice.text() }))
        }
        ChannelKind::Email => return Err("email is sent over SMTP, not as a request".into()),
    })
}

/// Why an attempt failed, and whether trying again may help.
#[derive(Debug)]
pub struct Failure {
    pub retry: bool,
    pub detail: String,
}

/// One attempt to tell a channel, held to the configured deadline whatever the library in
/// between promises: a server that accepts the connection and then says nothing must not
/// hold a delivery for good.
async fn attempt(
    alerts: &super::Alerts,
    kind: ChannelKind,
    config: &ChannelConfig,
    notice: &Notice,
) -> Result<String, Failure> {
    match tokio::time::timeout(alerts.deadline, attempt_once(alerts, kind, config, notice)).await {
        Ok(outcome) => outcome,
        Err(_) => {
            Err(Failure { retry: true, detail: format!("no answer within {} s; given up", alerts.deadline.as_secs()) })
        }
    }
}

async fn attempt_once(
    alerts: &super::Alerts,
    kind: ChannelKind,
    config: &ChannelConfig,
    notice: &Notice,
) -> Result<String, Failure> {
    if kind == ChannelKind::Email {
        return email::send(config, notice, &alerts.egress).await;
    }
    let (url, body) = request(kind, config, notice).map_err(|detail| Failure { retry: false, detail })?;
    // The URL may carry a secret (a webhook's path): the refusal names the host only.
    let url = alerts.egress.check_url(&url).map_err(|e| Failure { retry: false, detail: e.to_string() })?;
    let sent = alerts.http.post(url).timeout(Duration::from_secs(10)).json(&body).send().await;
    let retry = |detail: &str| Failure { retry: true, detail: detail.to_owned() };
    match sent {
        Err(e) if crate::egress::refused(&e) => Err(Failure { retry: false, detail: crate::egress::reason(&e) }),
        Ok(r) if r.status().is_success() => Ok(format!("HTTP {}", r.status().as_u16())),
        // A channel that refuses the message as such will refuse it again.
        Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
            Err(Failure { retry: false, detail: format!("HTTP {}", r.status().as_u16()) })
        }
        Ok(r) => Err(retry(&format!("HTTP {}", r.status().as_u16()))),
        // The error's text names the URL, which may carry a secret: say what failed only.
        Err(e) if e.is_timeout() => Err(retry("timed out")),
        Err(e) if e.is_connect() => Err(retry("cannot connect")),
        Err(_) => Err(retry("request failed")),
    }
}

/// Sends `notice` to a channel, retrying failures with doubling backoff; the number of
/// attempts made and the outcome (what the last attempt said).
pub async fn deliver(
    alerts: &super::Alerts,
    kind: ChannelKind,
    config: &ChannelConfig,
    notice: &Notice,
) -> (u32, Result<String, String>) {
    let retry = alerts.retry;
    let mut backoff = retry.first_backoff;
    let attempts = retry.attempts.max(1);
    for n in 1..=attempts {
        match attempt(alerts, kind, config, notice).await {
            Ok(detail) => return (n, Ok(detail)),
            Err(f) if !f.retry || n == attempts => return (n, Err(f.detail)),
            Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
    }
    (attempts, Err("not tried".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(event: &str) -> Notice {
        Notice {
            event: event.into(),
            alert_id: Some(7),
            rule: "CPU high".into(),
            rule_id: "r".into(),
            severity: "critical".into(),
            workspace_id: "w".into(),
            server_id: "s".into(),
            server: "web-1".into(),
            metric: Some("cpu".into()),
            value: Some(97.5),
            threshold: Some(90.0),
            message: "CPU 97.5 % > 90 for 2 min".into(),
            fired_ms: 1,
            resolved_ms: None,
            url: "http://porta/servers/s".into(),
        }
    }

    #[test]
    fn each_kind_gets_its_own_format() {
        let cfg = ChannelConfig { url: Some("https://hooks.example/T/B/x".into()), ..Default::default() };
        let (url, body) = request(ChannelKind::Webhook, &cfg, &notice("alert.firing")).expect("webhook");
        assert_eq!(url, "https://hooks.example/T/B/x");
        assert_eq!(
            (body["event"].as_str(), body["value"].as_f64(), body["server"].as_str()),
            (Some("alert.firing"), Some(97.5), Some("web-1"))
        );
        let (_, body) = request(ChannelKind::Slack, &cfg, &notice("alert.firing")).expect("slack");
        assert!(
            body["text"]
                .as_str()
                .is_some_and(|t| t.contains("CRITICAL") && t.contains("web-1") && t.contains("CPU high"))
        );
        let (_, body) = request(ChannelKind::Discord, &cfg, &notice("alert.resolved")).expect("discord");
        assert!(body["content"].as_str().is_some_and(|t| t.starts_with("✅ RESOLVED")));
        let tg = ChannelConfig { bot_token: Some("123:abc".into()), chat_id: Some("-42".into()), ..Default::default() };
        let (url, body) = request(ChannelKind::Telegram, &tg, &notice("alert.test")).expect("telegram");
        assert_eq!(url, "https://api.telegram.org/bot123:abc/sendMessage");
        assert_eq!(body["chat_id"], "-42");
    }

    #[test]
    fn settings_are_checked_and_hints_hide_secrets() {
        let hook =
            ChannelConfig { url: Some("https://hooks.slack.com/services/T0/B0/secret".into()), ..Default::default() };
        assert_eq!(hook.validate(ChannelKind::Slack).as_deref(), Ok("https://hooks.slack.com"));
        assert!(ChannelConfig::default().validate(ChannelKind::Webhook).is_err());
        let bad = ChannelConfig { url: Some("ftp://x".into()), ..Default::default() };
        assert!(bad.validate(ChannelKind::Webhook).is_err());
        assert!(
            ChannelKind::parse("pager").is_err_and(|e| e.contains("unknown channel kind") && e.contains("webhook"))
        );
        let tg = ChannelConfig { bot_token: Some("1:a b".into()), chat_id: Some("1".into()), ..Default::default() };
        assert!(tg.validate(ChannelKind::Telegram).is_err());
        let tg = ChannelConfig { bot_token: Some("1:ab".into()), chat_id: Some("99".into()), ..Default::default() };
        assert_eq!(tg.validate(ChannelKind::Telegram).as_deref(), Ok("telegram chat 99"));
        let mail = ChannelConfig {
            smtp_host: Some("smtp.example.com".into()),
            from: Some("Porta <porta@example.com>".into()),
            to: Some("ops@example.com, oncall@example.com".into()),
            ..Default::default()
        };
        assert_eq!(
            mail.validate(ChannelKind::Email).as_deref(),
            Ok("email to ops@example.com, oncall@example.com via smtp.example.com:587")
        );
        let wrong = [
            ChannelConfig { to: Some("not an address".into()), ..mail.clone() },
            ChannelConfig { to: Some(" , ".into()), ..mail.clone() },
            ChannelConfig { from: None, ..mail.clone() },
            ChannelConfig { smtp_host: Some("".into()), ..mail.clone() },
            ChannelConfig { smtp_tls: Some("ssl3".into()), ..mail.clone() },
            ChannelConfig { smtp_user: Some("u".into()), ..mail.clone() },
        ];
        for w in wrong {
            assert!(w.validate(ChannelKind::Email).is_err(), "{w:?}");
        }
    }
}
