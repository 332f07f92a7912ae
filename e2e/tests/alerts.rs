//! Alerting end to end: a rule over a real bridge's telemetry fires and a local webhook
//! receiver gets the payload (after a failed first attempt, retried); a killed bridge fires
//! the offline rule and its return resolves it; bad rules and channels are refused.

use std::time::Duration;

use porta_e2e::webhook::Receiver;
use porta_e2e::{Api, Stack};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn code(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

async fn workspace(api: &Api) -> anyhow::Result<String> {
    let v = api.graphql("{ servers { workspaceId } }", json!({})).await?;
    Ok(v["data"]["servers"][0]["workspaceId"].as_str().unwrap_or_default().to_owned())
}

const CHANNEL: &str = "mutation($w: String!, $n: String!, $k: String!, $u: String) {
    createAlertChannel(workspaceId: $w, name: $n, kind: $k, url: $u) { id kind hint } }";
const RULE: &str = "mutation($w: String!, $s: String, $n: String!, $k: String!, $m: String, $c: String, $t: Float,
    $f: Int = 0, $sev: String = \"warning\", $ch: [String!] = []) {
    createAlertRule(workspaceId: $w, serverId: $s, name: $n, kind: $k, metric: $m, comparison: $c, threshold: $t,
        forSecs: $f, severity: $sev, channelIds: $ch) { id enabled channelIds } }";

#[tokio::test]
async fn a_threshold_rule_fires_to_a_webhook_after_its_duration() -> anyhow::Result<()> {
    let stack = Stack::start(&[("PORTA_OUTBOUND_ALLOW", "127.0.0.1")], &["--sample-interval", "1"]).await?;
    let api = &stack.api;
    let ws = workspace(api).await?;
    let receiver = Receiver::start(1).await?;

    let v = api.graphql(CHANNEL, json!({ "w": ws, "n": "ops hook", "k": "webhook", "u": receiver.url })).await?;
    let ch = &v["data"]["createAlertChannel"];
    let channel = ch["id"].as_str().unwrap_or_default().to_owned();
    assert!(ch["hint"].as_str().is_some_and(|h| h.starts_with("http://127.0.0.1:") && !h.contains("/hook")), "{v}");

    // "Send test": the first attempt gets a 500, the retry gets through.
    let v = api
        .graphql("mutation($c: String!) { testAlertChannel(id: $c) { ok attempts detail } }", json!({ "c": channel }))
        .await?;
    assert_eq!(v["data"]["testAlertChannel"], json!({ "ok": true, "attempts": 2, "detail": "HTTP 200" }), "{v}");
    let test = receiver.wait_for("alert.test").await?;
    assert!(test["message"].as_str().is_some_and(|m| m.contains("ops hook")), "{test}");

    // Processes > 0 holds all the time: it fires once it has held for 2 s.
    let vars = json!({ "w": ws, "s": stack.server_id, "n": "busy", "k": "threshold", "m": "processes", "c": ">",
        "t": 0.0, "f": 2, "sev": "critical", "ch": [channel] });
    let v = api.graphql(RULE, vars).await?;
    let rule = v["data"]["createAlertRule"]["id"].as_str().unwrap_or_default().to_owned();
    assert!(!rule.is_empty(), "{v}");
    let created = std::time::Instant::now();
    let fired = receiver.wait_for("alert.firing").await?;
    assert!(created.elapsed() >= Duration::from_secs(2), "fired before holding for 2 s");
    assert_eq!((fired["rule"].as_str(), fired["severity"].as_str()), (Some("busy"), Some("critical")));
    assert_eq!(fired["server_id"], json!(stack.server_id));
    assert_eq!(fired["metric"], "processes");
    assert!(fired["value"].as_f64().unwrap_or(0.0) > 0.0, "{fired}");
    assert!(fired["message"].as_str().is_some_and(|m| m.contains("Processes") && m.contains("for 2 s")), "{fired}");
    assert!(fired["url"].as_str().is_some_and(|u| u.ends_with(&format!("/servers/{}", stack.server_id))));

    // Shown as firing, once (it keeps holding, and fires no more).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let v = api.graphql("{ alerts(firing: true) { ruleName state severity message serverId } }", json!({})).await?;
    let firing = v["data"]["alerts"].as_array().cloned().unwrap_or_default();
    assert_eq!(firing.len(), 1, "{v}");
    assert_eq!(firing[0]["ruleName"], "busy");
    let count = receiver.got.lock().map(|g| g.iter().filter(|b| b["event"] == "alert.firing").count()).unwrap_or(0);
    assert_eq!(count, 1, "notified once");

    // Pausing the rule ends the alert; the history keeps it.
    let v = api
        .graphql(
            "mutation($r: String!) { setAlertRuleEnabled(id: $r, enabled: false) { enabled } }",
            json!({ "r": rule }),
        )
        .await?;
    assert_eq!(v["data"]["setAlertRuleEnabled"]["enabled"], false, "{v}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = api.graphql("{ alerts { state resolvedMs } }", json!({})).await?;
        if v["data"]["alerts"][0]["state"] == "resolved" {
            assert!(v["data"]["alerts"][0]["resolvedMs"].as_i64().is_some());
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the alert never resolved: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The channel's deliveries are logged, with their attempts.
    let v = api
        .graphql(
            "query($w: String!) { alertChannels(workspaceId: $w) { deliveries { transition ok attempts } } }",
            json!({ "w": ws }),
        )
        .await?;
    let deliveries = v["data"]["alertChannels"][0]["deliveries"].as_array().cloned().unwrap_or_default();
    assert!(deliveries.contains(&json!({ "transition": "test", "ok": true, "attempts": 2 })), "{v}");
    assert!(deliveries.contains(&json!({ "transition": "firing", "ok": true, "attempts": 1 })), "{v}");
    // And audited.
    let v = api.graphql("{ auditLog(action: \"alert.\") { action result } }", json!({})).await?;
    let actions: Vec<&str> =
        v["data"]["auditLog"].as_array().into_iter().flatten().filter_map(|e| e["action"].as_str()).collect();
    for a in ["alert.channel.create", "alert.channel.test", "alert.rule.create", "alert.rule.disable"] {
        assert!(actions.contains(&a), "{a} missing: {actions:?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_killed_bridge_fires_the_offline_alert_and_its_return_resolves_it() -> anyhow::Result<()> {
    let mut stack = Stack::start(&[("PORTA_OUTBOUND_ALLOW", "127.0.0.1")], &[]).await?;
    let api = &stack.api;
    let ws = workspace(api).await?;
    let receiver = Receiver::start(0).await?;
    let v = api.graphql(CHANNEL, json!({ "w": ws, "n": "hook", "k": "webhook", "u": receiver.url })).await?;
    let channel = v["data"]["createAlertChannel"]["id"].as_str().unwrap_or_default().to_owned();
    // On every server of the workspace.
    let vars = json!({ "w": ws, "n": "gone", "k": "offline", "f": 2, "sev": "critical", "ch": [channel] });
    let v = api.graphql(RULE, vars).await?;
    assert!(v["errors"].is_null(), "{v}");

    stack.bridge.kill().await;
    let killed = std::time::Instant::now();
    let fired = receiver.wait_for("alert.firing").await?;
    assert!(killed.elapsed() >= Duration::from_secs(2), "fired before 2 s offline");
    assert_eq!(fired["server_id"], json!(stack.server_id));
    assert!(fired["message"].as_str().is_some_and(|m| m.starts_with("offline")), "{fired}");
    assert!(fired["metric"].is_null());

    stack.bridge.run(&[])?;
    let resolved = receiver.wait_for("alert.resolved").await?;
    assert_eq!(resolved["alert_id"], fired["alert_id"]);
    assert!(resolved["resolved_ms"].as_i64().is_some(), "{resolved}");
    Ok(())
}

/// A server that is removed while its alert fires: the alert ends (it could never resolve
/// otherwise, and would keep every member's badge red), and the history names the server.
#[tokio::test]
async fn removing_a_server_ends_its_alerts() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let api = &stack.api;
    let ws = workspace(api).await?;
    let vars = json!({ "w": ws, "n": "busy", "k": "threshold", "m": "processes", "c": ">", "t": 0.0 });
    let v = api.graphql(RULE, vars).await?;
    assert!(v["errors"].is_null(), "{v}");
    let firing = "{ alerts(firing: true) { serverId serverName state } }";
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = api.graphql(firing, json!({})).await?;
        if let Some(a) = v["data"]["alerts"].as_array().and_then(|l| l.first()) {
            assert_eq!(a["serverId"], json!(stack.server_id));
            assert_eq!(a["serverName"], "vm", "{v}");
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "never fired: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let v = api.graphql("mutation($s: String!) { revokeServer(id: $s) }", json!({ "s": stack.server_id })).await?;
    assert_eq!(v["data"]["revokeServer"], true, "{v}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = api.graphql(firing, json!({})).await?;
        if v["data"]["alerts"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "still firing after the server went: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let v = api.graphql("{ alerts { state resolvedMs } }", json!({})).await?;
    assert_eq!(v["data"]["alerts"][0]["state"], "resolved", "{v}");
    Ok(())
}

#[tokio::test]
async fn bad_rules_and_channels_are_refused_and_nothing_is_stored() -> anyhow::Result<()> {
    let stack = Stack::start(&[("PORTA_OUTBOUND_ALLOW", "127.0.0.1")], &[]).await?;
    let api = &stack.api;
    let ws = workspace(api).await?;
    for (kind, url) in
        [("webhook", "ftp://example.com/x"), ("webhook", ""), ("pager", "http://x"), ("slack", "http://user@x")]
    {
        let v = api.graphql(CHANNEL, json!({ "w": ws, "n": "c", "k": kind, "u": url })).await?;
        assert_eq!(code(&v), "bad_request", "{kind} {url}: {v}");
    }
    let v = api
        .graphql(
            "mutation($w: String!) { createAlertChannel(workspaceId: $w, name: \"t\", kind: \"telegram\", botToken: \"1:a\") { id } }",
            json!({ "w": ws }),
        )
        .await?;
    assert_eq!(code(&v), "bad_request", "telegram without a chat: {v}");
    let bad_rules = [
        json!({ "w": ws, "n": "r", "k": "threshold", "m": "temperature", "c": ">", "t": 1.0 }),
        json!({ "w": ws, "n": "r", "k": "threshold", "m": "cpu", "c": "==", "t": 1.0 }),
        json!({ "w": ws, "n": "r", "k": "threshold", "m": "cpu", "c": ">" }),
        json!({ "w": ws, "n": "r", "k": "threshold", "m": "cpu", "c": ">", "t": 1.0, "sev": "urgent" }),
        json!({ "w": ws, "n": "r", "k": "threshold", "m": "cpu", "c": ">", "t": 1.0, "f": -1 }),
        json!({ "w": ws, "n": "r", "k": "offline", "m": "cpu" }),
        json!({ "w": ws, "n": "r", "k": "sometimes" }),
        json!({ "w": ws, "n": "", "k": "offline" }),
    ];
    for vars in bad_rules {
        let v = api.graphql(RULE, vars.clone()).await?;
        assert_eq!(code(&v), "bad_request", "{vars}: {v}");
    }
    let v = api.graphql(RULE, json!({ "w": ws, "n": "r", "k": "offline", "ch": ["no-such-channel"] })).await?;
    assert_eq!(code(&v), "not_found", "{v}");
    let v = api.graphql(RULE, json!({ "w": ws, "s": "no-such-server", "n": "r", "k": "offline" })).await?;
    assert_eq!(code(&v), "not_found", "{v}");
    let v = api
        .graphql(
            "query($w: String!) { alertRules(workspaceId: $w) { id } alertChannels(workspaceId: $w) { id } }",
            json!({ "w": ws }),
        )
        .await?;
    assert_eq!(v["data"], json!({ "alertRules": [], "alertChannels": [] }), "nothing was stored: {v}");
    for (q, what) in [
        ("mutation { deleteAlertRule(id: \"nope\") }", "deleteAlertRule"),
        ("mutation { deleteAlertChannel(id: \"nope\") }", "deleteAlertChannel"),
        ("mutation { testAlertChannel(id: \"nope\") { ok } }", "testAlertChannel"),
    ] {
        let v = api.graphql(q, json!({})).await?;
        assert_eq!(code(&v), "not_found", "{what}: {v}");
    }
    Ok(())
}

#[tokio::test]
async fn an_email_channel_sends_over_smtp_and_a_refusal_is_not_retried() -> anyhow::Result<()> {
    use porta_e2e::mailbox::Mailbox;
    let stack = Stack::start(&[("PORTA_OUTBOUND_ALLOW", "127.0.0.1")], &[]).await?;
    let api = &stack.api;
    let ws = workspace(api).await?;
    let create = "mutation($w: String!, $n: String!, $e: EmailSettings!) {
        createAlertChannel(workspaceId: $w, name: $n, kind: \"email\", email: $e) { id hint } }";
    let test = "mutation($c: String!) { testAlertChannel(id: $c) { ok attempts detail } }";

    let mailbox = Mailbox::start(false).await?;
    let settings = json!({ "smtpHost": "127.0.0.1", "smtpPort": mailbox.port, "smtpTls": "none",
        "from": "Porta <porta@example.com>", "to": "ops@example.com, oncall@example.com" });
    let v = api.graphql(create, json!({ "w": ws, "n": "mail", "e": settings })).await?;
    let ch = &v["data"]["createAlertChannel"];
    assert_eq!(
        ch["hint"],
        format!("email to ops@example.com, oncall@example.com via 127.0.0.1:{}", mailbox.port),
        "{v}"
    );
    let v = api.graphql(test, json!({ "c": ch["id"] })).await?;
    assert_eq!(v["data"]["testAlertChannel"], json!({ "ok": true, "attempts": 1, "detail": "SMTP 250" }), "{v}");
    let mail = mailbox.wait(WAIT).await?;
    assert_eq!(mail.from, "<porta@example.com>");
    assert_eq!(mail.to, ["<ops@example.com>", "<oncall@example.com>"]);
    assert!(mail.data.contains("Subject: [Porta]") && mail.data.contains("Test notification"), "{}", mail.data);

    // A server that refuses the recipient: told at once, not retried.
    let refusing = Mailbox::start(true).await?;
    let settings = json!({ "smtpHost": "127.0.0.1", "smtpPort": refusing.port, "smtpTls": "none",
        "from": "porta@example.com", "to": "nobody@example.com" });
    let v = api.graphql(create, json!({ "w": ws, "n": "refused", "e": settings })).await?;
    let id = v["data"]["createAlertChannel"]["id"].clone();
    let v = api.graphql(test, json!({ "c": id })).await?;
    let r = &v["data"]["testAlertChannel"];
    assert_eq!((r["ok"].as_bool(), r["attempts"].as_i64()), (Some(false), Some(1)), "{v}");
    assert!(r["detail"].as_str().is_some_and(|d| d.contains("550")), "{v}");

    // Bad settings are refused and nothing is stored.
    let v = api
        .graphql(create, json!({ "w": ws, "n": "bad", "e": { "smtpHost": "127.0.0.1", "from": "x", "to": "y" } }))
        .await?;
    assert_eq!(code(&v), "bad_request", "{v}");
    let v = api.graphql("query($w: String!) { alertChannels(workspaceId: $w) { name } }", json!({ "w": ws })).await?;
    assert_eq!(v["data"]["alertChannels"].as_array().map(Vec::len), Some(2), "{v}");
    Ok(())
}

/// A stranger learns nothing from an alert mutation, not even whether the id exists: the
/// caller is checked before the id is looked up.
#[tokio::test]
async fn alert_mutations_tell_a_stranger_nothing_about_ids() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let ws = workspace(&stack.api).await?;
    let q = "mutation($w: String!) { createAlertRule(workspaceId: $w, name: \"down\", kind: \"offline\", forSecs: 60) { id } }";
    let v = stack.api.graphql(q, json!({ "w": ws })).await?;
    let rule = v["data"]["createAlertRule"]["id"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!rule.is_empty(), "{v}");
    let http = reqwest::Client::new();
    for id in [rule.as_str(), "00000000-0000-0000-0000-000000000000"] {
        for m in [
            format!("mutation {{ deleteAlertRule(id: \"{id}\") }}"),
            format!("mutation {{ setAlertRuleEnabled(id: \"{id}\", enabled: false) {{ id }} }}"),
            format!("mutation {{ deleteAlertChannel(id: \"{id}\") }}"),
            format!("mutation {{ testAlertChannel(id: \"{id}\") {{ ok }} }}"),
        ] {
            let v: serde_json::Value = http
                .post(format!("{}/graphql", stack.backend.url))
                .json(&json!({ "query": m }))
                .send()
                .await?
                .json()
                .await?;
            assert_eq!(v["errors"][0]["extensions"]["code"], "unauthorized", "{m}: {v}");
        }
    }
    Ok(())
}
