//! One egress policy for every outbound request the backend makes: a workspace admin (every
//! user is one, of their own team) cannot make Porta fetch loopback, private or metadata
//! addresses, or read what an internal service says; the operator allows what they mean to;
//! a model provider's key never follows a changed address; a silent mail server does not hold
//! a delivery for good.

use std::time::{Duration, Instant};

use porta_e2e::Stack;
use porta_e2e::llm::ScriptedLlm;
use serde_json::{Value, json};

fn code(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

fn message(v: &Value) -> &str {
    v["errors"][0]["message"].as_str().unwrap_or_default()
}

async fn workspace(stack: &Stack) -> anyhow::Result<String> {
    let v = stack.api.graphql("{ servers { workspaceId } }", json!({})).await?;
    v["data"]["servers"][0]["workspaceId"].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("{v}"))
}

const TEST: &str =
    "mutation($w: String!, $u: String, $k: String) { testAiProvider(workspaceId: $w, baseUrl: $u, apiKey: $k) }";
const SET: &str = "mutation($w: String!, $u: String!, $m: String!, $k: String, $r: Boolean! = false) {
    setAiProvider(workspaceId: $w, baseUrl: $u, model: $m, apiKey: $k, removeApiKey: $r) { baseUrl apiKeyHint } }";
const CHANNEL: &str = "mutation($w: String!, $n: String!, $k: String!, $u: String, $e: EmailSettings) {
    createAlertChannel(workspaceId: $w, name: $n, kind: $k, url: $u, email: $e) { id } }";

#[tokio::test]
async fn internal_addresses_are_refused_and_nothing_they_say_is_shown() -> anyhow::Result<()> {
    // An internal service on loopback that would answer; Porta must never reach it.
    let internal = ScriptedLlm::start().await?;
    let port = internal.url.rsplit(':').next().and_then(|p| p.split('/').next()).unwrap_or_default().to_owned();
    let stack = Stack::start(&[], &[]).await?;
    let ws = workspace(&stack).await?;
    let api = &stack.api;
    for (url, says) in [
        (internal.url.clone(), "loopback"),
        (format!("http://localhost:{port}/v1"), "loopback"),
        ("http://169.254.169.254/latest/meta-data".to_owned(), "link-local"),
        ("http://10.1.2.3:8080/v1".to_owned(), "private"),
        ("http://[::1]:11434/v1".to_owned(), "loopback"),
        ("http://0x7f000001:1/v1".to_owned(), "loopback"),
    ] {
        let v = api.graphql(TEST, json!({ "w": ws, "u": url })).await?;
        assert_eq!(code(&v), "forbidden", "{url}: {v}");
        assert!(message(&v).contains(says) && message(&v).contains("PORTA_OUTBOUND_ALLOW"), "{url}: {v}");
        let v = api.graphql(SET, json!({ "w": ws, "u": url, "m": "m" })).await?;
        assert_eq!(code(&v), "bad_request", "saving {url}: {v}");
    }
    assert!(internal.requests().is_empty(), "nothing reached the internal service");

    // Alert channels: an internal address, or a name for one, is refused when saved (every
    // delivery checks the resolved address again: see the egress module's tests).
    let v = api
        .graphql(CHANNEL, json!({ "w": ws, "n": "meta", "k": "webhook", "u": "http://169.254.169.254/hook" }))
        .await?;
    assert_eq!(code(&v), "bad_request", "{v}");
    let v = api
        .graphql(
            CHANNEL,
            json!({ "w": ws, "n": "mail", "k": "email",
                "e": { "smtpHost": "127.0.0.1", "from": "porta@example.com", "to": "ops@example.com" } }),
        )
        .await?;
    assert_eq!(code(&v), "bad_request", "{v}");
    let v = api
        .graphql(
            CHANNEL,
            json!({ "w": ws, "n": "local", "k": "webhook", "u": format!("http://localhost:{port}/hook") }),
        )
        .await?;
    assert_eq!(code(&v), "bad_request", "a name is resolved and checked when it is saved: {v}");
    assert!(message(&v).contains("loopback"), "{v}");
    assert!(internal.requests().is_empty(), "nothing reached the internal service");
    Ok(())
}

#[tokio::test]
async fn the_operator_allows_a_local_service_and_a_key_stays_with_its_address() -> anyhow::Result<()> {
    let first = ScriptedLlm::start().await?;
    let second = ScriptedLlm::start().await?;
    let endpoint = |url: &str| url.trim_start_matches("http://").split('/').next().unwrap_or_default().to_owned();
    let allow = format!("{},{}", endpoint(&first.url), endpoint(&second.url));
    let stack = Stack::start(&[("PORTA_OUTBOUND_ALLOW", allow.as_str())], &[]).await?;
    let ws = workspace(&stack).await?;
    let api = &stack.api;
    let key = "sk-bound-to-its-address-1234";
    let v = api.graphql(SET, json!({ "w": ws, "u": first.url, "m": "scripted-small", "k": key })).await?;
    assert_eq!(v["data"]["setAiProvider"]["apiKeyHint"], "…1234", "{v}");

    // A test of another address does not send the stored key there.
    let v = api.graphql(TEST, json!({ "w": ws, "u": second.url })).await?;
    assert_eq!(v["data"]["testAiProvider"], json!(["scripted-large", "scripted-small"]), "{v}");
    assert_eq!(second.requests().last().map(|r| r.authorization.clone()), Some(None), "no key went to the new address");
    // Moving the provider needs the key again, or its removal.
    let v = api.graphql(SET, json!({ "w": ws, "u": second.url, "m": "scripted-small" })).await?;
    assert_eq!(code(&v), "bad_request", "{v}");
    assert!(message(&v).contains("enter it again"), "{v}");
    let v = api.graphql(SET, json!({ "w": ws, "u": second.url, "m": "scripted-small", "r": true })).await?;
    assert_eq!(v["data"]["setAiProvider"]["apiKeyHint"], Value::Null, "{v}");
    // The allowed endpoints are exactly those: the same host on another port is not.
    let v = api.graphql(TEST, json!({ "w": ws, "u": "http://127.0.0.1:1/v1" })).await?;
    assert_eq!(code(&v), "forbidden", "{v}");
    Ok(())
}

/// A mail server that accepts the connection and never says a word: every attempt gives up at
/// its deadline, and the test of the channel ends.
#[tokio::test]
async fn a_silent_mail_server_does_not_hold_a_delivery() -> anyhow::Result<()> {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = silent.local_addr()?.port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            open.push(conn);
        }
    });
    let allow = format!("127.0.0.1:{port}");
    let stack =
        Stack::start(&[("PORTA_OUTBOUND_ALLOW", allow.as_str()), ("PORTA_OUTBOUND_TIMEOUT_SECS", "2")], &[]).await?;
    let ws = workspace(&stack).await?;
    let q = "mutation($w: String!, $e: EmailSettings) {
        createAlertChannel(workspaceId: $w, name: \"mail\", kind: \"email\", email: $e) { id } }";
    let e = json!({ "smtpHost": "127.0.0.1", "smtpPort": port, "smtpTls": "none",
        "from": "porta@example.com", "to": "ops@example.com" });
    let v = stack.api.graphql(q, json!({ "w": ws, "e": e })).await?;
    let id = v["data"]["createAlertChannel"]["id"].as_str().ok_or_else(|| anyhow::anyhow!("{v}"))?.to_owned();
    let started = Instant::now();
    let v = tokio::time::timeout(
        Duration::from_secs(60),
        stack
            .api
            .graphql("mutation($c: String!) { testAlertChannel(id: $c) { ok attempts detail } }", json!({ "c": id })),
    )
    .await??;
    let r = &v["data"]["testAlertChannel"];
    assert_eq!(r["ok"], false, "{v}");
    assert!(r["detail"].as_str().is_some_and(|d| d.contains("no answer within 2 s")), "{v}");
    assert!(started.elapsed() < Duration::from_secs(40), "it ended in {:?}", started.elapsed());
    held.abort();
    Ok(())
}
