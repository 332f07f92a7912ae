//! Alerting calls: the alert history, a workspace's rules and channels, and changing them.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::graphql;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub id: f64,
    pub rule_name: String,
    pub workspace_id: String,
    pub server_id: String,
    /// Absent once the server is gone.
    #[serde(default)]
    pub server_name: Option<String>,
    pub severity: String,
    pub state: String,
    pub message: String,
    pub fired_ms: f64,
    pub resolved_ms: Option<f64>,
}

/// A rule's fields as [`Rule`] reads them, asked for by every call that answers with rules.
const RULE_FIELDS: &str =
    "id serverId name kind metric comparison threshold forSecs severity cooldownSecs channelIds enabled";

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub id: String,
    pub server_id: Option<String>,
    pub name: String,
    pub kind: String,
    pub metric: Option<String>,
    pub comparison: Option<String>,
    pub threshold: Option<f64>,
    pub for_secs: f64,
    pub severity: String,
    pub cooldown_secs: f64,
    pub channel_ids: Vec<String>,
    pub enabled: bool,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub transition: String,
    pub ok: bool,
    pub attempts: f64,
    pub detail: String,
    pub at_ms: f64,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub hint: String,
    pub deliveries: Vec<Delivery>,
}

/// Alerts of every workspace the user is in, newest first (or only the firing ones).
pub async fn alerts(token: &str, firing: bool) -> Result<Vec<Alert>, String> {
    let q = "query($f: Boolean!) { alerts(firing: $f, limit: 200) { id ruleName workspaceId serverId serverName severity state message firedMs resolvedMs } }";
    graphql(token, q, json!({ "f": firing }), "alerts").await
}

pub async fn rules(token: &str, workspace: &str) -> Result<Vec<Rule>, String> {
    let q = format!("query($w: String!) {{ alertRules(workspaceId: $w) {{ {RULE_FIELDS} }} }}");
    graphql(token, &q, json!({ "w": workspace }), "alertRules").await
}

pub async fn channels(token: &str, workspace: &str) -> Result<Vec<Channel>, String> {
    let q = "query($w: String!) { alertChannels(workspaceId: $w) { id name kind hint deliveries { transition ok attempts detail atMs } } }";
    graphql(token, q, json!({ "w": workspace }), "alertChannels").await
}

/// A new rule; `vars` are `createAlertRule`'s arguments.
pub async fn create_rule(token: &str, vars: Value) -> Result<Rule, String> {
    let q = format!(
        "mutation($w: String!, $s: String, $n: String!, $k: String!, $m: String, $c: String, $t: Float, $f: Int!, $sev: String!, $cd: Int!, $ch: [String!]!) {{
        createAlertRule(workspaceId: $w, serverId: $s, name: $n, kind: $k, metric: $m, comparison: $c, threshold: $t, forSecs: $f, severity: $sev, cooldownSecs: $cd, channelIds: $ch) {{ {RULE_FIELDS} }} }}"
    );
    graphql(token, &q, vars, "createAlertRule").await
}

pub async fn set_rule_enabled(token: &str, id: &str, enabled: bool) -> Result<Value, String> {
    let q = "mutation($r: String!, $e: Boolean!) { setAlertRuleEnabled(id: $r, enabled: $e) { id } }";
    graphql(token, q, json!({ "r": id, "e": enabled }), "setAlertRuleEnabled").await
}

pub async fn delete_rule(token: &str, id: &str) -> Result<bool, String> {
    graphql(token, "mutation($r: String!) { deleteAlertRule(id: $r) }", json!({ "r": id }), "deleteAlertRule").await
}

/// A new channel; `vars` are `createAlertChannel`'s arguments.
pub async fn create_channel(token: &str, vars: Value) -> Result<Value, String> {
    let q = "mutation($w: String!, $n: String!, $k: String!, $u: String, $b: String, $c: String, $e: EmailSettings) {
        createAlertChannel(workspaceId: $w, name: $n, kind: $k, url: $u, botToken: $b, chatId: $c, email: $e) { id } }";
    graphql(token, q, vars, "createAlertChannel").await
}

pub async fn delete_channel(token: &str, id: &str) -> Result<bool, String> {
    graphql(token, "mutation($c: String!) { deleteAlertChannel(id: $c) }", json!({ "c": id }), "deleteAlertChannel")
        .await
}

pub async fn test_channel(token: &str, id: &str) -> Result<Delivery, String> {
    let q = "mutation($c: String!) { testAlertChannel(id: $c) { transition ok attempts detail atMs } }";
    graphql(token, q, json!({ "c": id }), "testAlertChannel").await
}
