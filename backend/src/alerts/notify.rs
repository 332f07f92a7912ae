//! Notifications: what an alert says, in the shape each kind of channel expects, delivered
//! with retries and backoff. A generic webhook gets the whole alert as JSON; Slack, Discord
//! and Telegram get a line of text in their own message format.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

/// The kinds of channel.
pub const KINDS: [&str; 4] = ["webhook", "slack", "discord", "telegram"];

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
}

impl ChannelConfig {
    /// Checks the settings `kind` needs; what to show instead of the secrets.
    pub fn validate(&self, kind: &str) -> Result<String, String> {
        let url = |u: &Option<String>, what: &str| {
            let u = u.as_deref().map(str::trim).filter(|u| !u.is_empty()).ok_or(format!("{what} needs a url"))?;
            crate::ai::provider::valid_base_url(u)
        };
        match kind {
            "webhook" | "slack" | "discord" => {
                let u = url(&self.url, kind)?;
                // The host only: the path of a Slack or Discord webhook is its secret.
                Ok(u.split('/').take(3).collect::<Vec<_>>().join("/"))
            }
            "telegram" => {
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
            other => Err(format!("unknown channel kind {other:?}; one of {}", KINDS.join(", "))),
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
pub fn request(kind: &str, config: &ChannelConfig, notice: &Notice) -> Result<(String, serde_json::Value), String> {
    let url = || config.url.clone().ok_or_else(|| "the channel has no url".to_owned());
    Ok(match kind {
        "webhook" => (url()?, serde_json::to_value(notice).map_err(|e| e.to_string())?),
        "slack" => (url()?, json!({ "text": notice.text() })),
        "discord" => (url()?, json!({ "content": notice.text() })),
        "telegram" => {
            let api = config.api_url.as_deref().unwrap_or("https://api.telegram.org").trim_end_matches('/');
            let token = config.bot_token.as_deref().unwrap_or_default();
            (format!("{api}/bot{token}/sendMessage"), json!({ "chat_id": config.chat_id, "text": notice.text() }))
        }
        other => return Err(format!("unknown channel kind {other:?}")),
    })
}

/// Sends `notice` to a channel, retrying failures with doubling backoff; the number of
/// attempts made and the outcome (what the last attempt said).
pub async fn deliver(
    http: &reqwest::Client,
    kind: &str,
    config: &ChannelConfig,
    notice: &Notice,
    retry: Retry,
) -> (u32, Result<String, String>) {
    let (url, body) = match request(kind, config, notice) {
        Ok(r) => r,
        Err(e) => return (0, Err(e)),
    };
    let mut backoff = retry.first_backoff;
    let mut last = Err("not tried".to_owned());
    for attempt in 1..=retry.attempts.max(1) {
        let sent = http.post(&url).timeout(Duration::from_secs(10)).json(&body).send().await;
        last = match sent {
            Ok(r) if r.status().is_success() => return (attempt, Ok(format!("HTTP {}", r.status().as_u16()))),
            // A channel that refuses the message as such will refuse it again.
            Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                return (attempt, Err(format!("HTTP {}", r.status().as_u16())));
            }
            Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
            // The error's text names the URL, which may carry a secret: say what failed only.
            Err(e) if e.is_timeout() => Err("timed out".into()),
            Err(e) if e.is_connect() => Err("cannot connect".into()),
            Err(_) => Err("request failed".into()),
        };
        if attempt < retry.attempts {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    (retry.attempts.max(1), last)
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
        let (url, body) = request("webhook", &cfg, &notice("alert.firing")).expect("webhook");
        assert_eq!(url, "https://hooks.example/T/B/x");
        assert_eq!(
            (body["event"].as_str(), body["value"].as_f64(), body["server"].as_str()),
            (Some("alert.firing"), Some(97.5), Some("web-1"))
        );
        let (_, body) = request("slack", &cfg, &notice("alert.firing")).expect("slack");
        assert!(
            body["text"]
                .as_str()
                .is_some_and(|t| t.contains("CRITICAL") && t.contains("web-1") && t.contains("CPU high"))
        );
        let (_, body) = request("discord", &cfg, &notice("alert.resolved")).expect("discord");
        assert!(body["content"].as_str().is_some_and(|t| t.starts_with("✅ RESOLVED")));
        let tg = ChannelConfig { bot_token: Some("123:abc".into()), chat_id: Some("-42".into()), ..Default::default() };
        let (url, body) = request("telegram", &tg, &notice("alert.test")).expect("telegram");
        assert_eq!(url, "https://api.telegram.org/bot123:abc/sendMessage");
        assert_eq!(body["chat_id"], "-42");
    }

    #[test]
    fn settings_are_checked_and_hints_hide_secrets() {
        let hook =
            ChannelConfig { url: Some("https://hooks.slack.com/services/T0/B0/secret".into()), ..Default::default() };
        assert_eq!(hook.validate("slack").as_deref(), Ok("https://hooks.slack.com"));
        assert!(ChannelConfig::default().validate("webhook").is_err());
        let bad = ChannelConfig { url: Some("ftp://x".into()), ..Default::default() };
        assert!(bad.validate("webhook").is_err());
        assert!(hook.validate("pager").is_err_and(|e| e.contains("unknown channel kind")));
        let tg = ChannelConfig { bot_token: Some("1:a b".into()), chat_id: Some("1".into()), ..Default::default() };
        assert!(tg.validate("telegram").is_err());
        let tg = ChannelConfig { bot_token: Some("1:ab".into()), chat_id: Some("99".into()), ..Default::default() };
        assert_eq!(tg.validate("telegram").as_deref(), Ok("telegram chat 99"));
    }
}
