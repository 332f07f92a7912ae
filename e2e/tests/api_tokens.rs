//! Personal API tokens through the full path: made once (the secret is never stored), used by
//! scripts through `X-PORTA-TOKEN` or `Authorization: Bearer`, held to their scopes on GraphQL
//! and on the stream socket, refused once expired or revoked, and named in the audit log.

use porta_e2e::Stack;
use porta_e2e::client::{Ws, is_code};
use porta_shared::ErrorCode;
use porta_shared::api::WsTicket;
use porta_shared::bridge::{FsList, FsWrite};
use porta_shared::client::{OnServer, TermOpen};
use porta_shared::types::{Base64, TermSize};
use serde_json::{Value, json};

/// A script: plain HTTP with the token in a header.
struct Script {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Script {
    fn new(base: &str, token: &str) -> Self {
        Self { base: base.to_owned(), token: token.to_owned(), http: reqwest::Client::new() }
    }

    async fn graphql(&self, query: &str) -> anyhow::Result<(u16, Value)> {
        let resp = self
            .http
            .post(format!("{}/graphql", self.base))
            .header("X-PORTA-TOKEN", &self.token)
            .json(&json!({ "query": query }))
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// The stream socket, opened with a ticket the token paid for (as `Bearer` this time).
    async fn ws(&self) -> anyhow::Result<Ws> {
        let resp = self.http.post(format!("{}/api/ws/ticket", self.base)).bearer_auth(&self.token).send().await?;
        anyhow::ensure!(resp.status().is_success(), "ticket: {}", resp.status());
        let ticket = resp.json::<WsTicket>().await?.ticket;
        let url = format!("{}/api/ws?ticket={ticket}", self.base.replacen("http://", "ws://", 1));
        Ok(Ws::connect(&url, None).await?)
    }
}

fn code(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

async fn make(stack: &Stack, name: &str, scopes: &[&str], days: Option<i64>) -> anyhow::Result<Value> {
    let q = "mutation($name: String!, $scopes: [String!]!, $days: Int) {
        createApiToken(name: $name, scopes: $scopes, expiresInDays: $days) {
            token info { id name hint scopes expiresMs revokedMs }
        }
    }";
    let v = stack.api.graphql(q, json!({ "name": name, "scopes": scopes, "days": days })).await?;
    Ok(v)
}

fn open(server: &str) -> TermOpen {
    TermOpen {
        server: server.to_owned(),
        shell: Some("/bin/sh".into()),
        args: vec![],
        cwd: None,
        size: TermSize { cols: 80, rows: 24 },
        env: Default::default(),
        container: None,
    }
}

#[tokio::test]
async fn tokens_are_held_to_their_scopes_expiry_and_revocation() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let root_arg = root.path().to_string_lossy().into_owned();
    let stack = Stack::start(&[], &["--root", &root_arg]).await?;
    let server = stack.server_id.clone();
    let base = stack.backend.url.clone();

    // A read-only token: shown once, with a hint that is not the secret.
    let made = make(&stack, "ci reader", &["read"], Some(30)).await?;
    let secret = made["data"]["createApiToken"]["token"].as_str().unwrap_or_default().to_owned();
    let info = &made["data"]["createApiToken"]["info"];
    assert!(secret.starts_with("porta_pat_") && secret.len() > 40, "{made}");
    assert!(
        secret.starts_with(info["hint"].as_str().unwrap_or("?"))
            && info["hint"].as_str().unwrap_or_default().len() < 20
    );
    assert_eq!(info["scopes"], json!(["read"]));
    let reader = Script::new(&base, &secret);
    let (status, v) = reader.graphql("{ servers { id name } }").await?;
    assert_eq!(status, 200);
    assert_eq!(v["data"]["servers"][0]["id"], server.as_str(), "{v}");
    // It may not write, manage servers, read the audit log, or make tokens.
    let (_, v) = reader.graphql("mutation { createEnrollmentToken { token } }").await?;
    assert_eq!(code(&v), "forbidden", "{v}");
    assert!(v["errors"][0]["message"].as_str().is_some_and(|m| m.contains("write scope")), "{v}");
    let (_, v) = reader.graphql("{ auditLog { seq } }").await?;
    assert_eq!(code(&v), "forbidden", "{v}");
    let (_, v) = reader.graphql("mutation { createApiToken(name: \"more\", scopes: [\"read\"]) { token } }").await?;
    assert_eq!(code(&v), "forbidden", "a token cannot mint tokens: {v}");
    // On the socket: listing files yes; writing or opening a terminal no, with nothing done.
    let mut ws = reader.ws().await?;
    let listed = ws.call(OnServer { server: server.clone(), req: FsList { path: ".".into(), hidden: true } }).await??;
    assert!(listed.entries.is_empty());
    let write = FsWrite {
        path: "x.txt".into(),
        data: Base64(b"x".to_vec()),
        expected_sha256: None,
        create_new: true,
        mode: None,
    };
    let refused = ws.call(OnServer { server: server.clone(), req: write.clone() }).await?;
    assert!(is_code(&refused, ErrorCode::Forbidden), "{refused:?}");
    assert!(!root.path().join("x.txt").exists(), "nothing was written");
    let refused = ws.call(open(&server)).await?;
    assert!(is_code(&refused, ErrorCode::Forbidden), "{refused:?}");

    // A token with write and terminal scopes may; what it does is audited as the token.
    let made = make(&stack, "deploy bot", &["read", "write", "terminal"], None).await?;
    let bot_secret = made["data"]["createApiToken"]["token"].as_str().unwrap_or_default().to_owned();
    let bot_id = made["data"]["createApiToken"]["info"]["id"].as_str().unwrap_or_default().to_owned();
    let bot = Script::new(&base, &bot_secret);
    let mut ws = bot.ws().await?;
    ws.call(OnServer { server: server.clone(), req: write }).await??;
    assert_eq!(std::fs::read(root.path().join("x.txt"))?, b"x");
    let opened = ws.call(open(&server)).await??;
    assert!(opened.stream > 0);
    let log = stack.api.graphql("{ auditLog(action: \"file.write\") { actor actorName } }", json!({})).await?;
    assert_eq!(log["data"]["auditLog"][0]["actor"], format!("token:{bot_id}"), "{log}");
    assert_eq!(log["data"]["auditLog"][0]["actorName"], "deploy bot (token of admin)", "{log}");

    // Revoked: refused at once, on its next request.
    let q = format!("mutation {{ revokeApiToken(id: \"{bot_id}\") }}");
    let v = stack.api.graphql(&q, json!({})).await?;
    assert_eq!(v["data"]["revokeApiToken"], true, "{v}");
    let (status, v) = bot.graphql("{ servers { id } }").await?;
    assert_eq!(status, 401, "{v}");
    // …and the socket it opened is closed at once.
    let closed = ws.wait_event(|_| false, std::time::Duration::from_secs(10)).await;
    let said = closed.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(said.contains("closed the socket"), "the revoked token's socket stayed open: {said}");
    let again = stack.api.graphql(&q, json!({})).await?;
    assert_eq!(code(&again), "not_found", "{again}");
    let listed = stack.api.graphql("{ apiTokens { id name revokedMs } }", json!({})).await?;
    let bot_row =
        listed["data"]["apiTokens"].as_array().and_then(|l| l.iter().find(|t| t["id"] == bot_id.as_str()).cloned());
    assert!(bot_row.is_some_and(|t| t["revokedMs"].is_i64()), "{listed}");

    // Expired: refused (the clock is moved by editing the row).
    let db = stack.backend.database_pool().await?;
    sqlx::query("UPDATE api_tokens SET expires_ms = 1 WHERE name = 'ci reader'").execute(&db).await?;
    let (status, _) = reader.graphql("{ servers { id } }").await?;
    assert_eq!(status, 401, "an expired token is refused");

    // The secret is nowhere in the database, only its hash.
    let rows: Vec<(String,)> = sqlx::query_as("SELECT secret_hash FROM api_tokens").fetch_all(&db).await?;
    assert_eq!(rows.len(), 2);
    db.close().await;
    for file in std::fs::read_dir(stack.backend.data.path())? {
        let bytes = std::fs::read(file?.path())?;
        for s in [&secret, &bot_secret] {
            assert!(!bytes.windows(s.len()).any(|w| w == s.as_bytes()), "a token's secret is stored in the clear");
        }
    }

    // Bad requests are refused with clear errors, and make nothing.
    for (scopes, name, want) in
        [(vec!["root"], "x", "bad_request"), (vec![], "x", "bad_request"), (vec!["read"], "", "bad_request")]
    {
        let v = make(&stack, name, &scopes, None).await?;
        assert_eq!(code(&v), want, "{scopes:?} {name:?}: {v}");
    }
    let v = make(&stack, "too long", &["read"], Some(0)).await?;
    assert_eq!(code(&v), "bad_request", "{v}");
    let (status, _) = Script::new(&base, "porta_pat_forged").graphql("{ servers { id } }").await?;
    assert_eq!(status, 401);
    Ok(())
}

#[tokio::test]
async fn a_token_made_in_the_browser_works_until_it_is_revoked_there() -> anyhow::Result<()> {
    use std::time::Duration;

    use fantoccini::Locator;
    use porta_e2e::browser::{Browser, sign_in, with_screenshot_on_failure};

    const SHORT: Duration = Duration::from_secs(30);
    let ui = porta_e2e::ui_dir()?.to_string_lossy().into_owned();
    let stack = Stack::start(&[("PORTA_UI_DIR", &ui)], &[]).await?;
    let base = stack.backend.url.clone();
    let browser = Browser::start(1280, 800).await?;
    let c = &browser.client;
    let result = with_screenshot_on_failure(&browser, "api_tokens_page", || async {
        sign_in(c, &base).await?;
        c.wait().at_most(SHORT).for_element(Locator::Css("a.tokens-link")).await?.click().await?;
        c.wait()
            .at_most(SHORT)
            .for_element(Locator::Css("form.token-form input[name=name]"))
            .await?
            .send_keys("nightly backup")
            .await?;
        // Read is ticked by default; add terminal, and limit it to the one workspace.
        c.find(Locator::Css("input[name=terminal]")).await?.click().await?;
        c.wait().at_most(SHORT).for_element(Locator::Css("select[name=workspace] option:nth-child(2)")).await?;
        let reaches = c.find(Locator::Css("select[name=workspace]")).await?;
        reaches.select_by_index(1).await?;
        c.find(Locator::Css("button.create")).await?.click().await?;
        let secret =
            c.wait().at_most(SHORT).for_element(Locator::Css(".token-secret:not([hidden]) code.secret")).await?;
        let secret = secret.text().await?;
        assert!(secret.starts_with("porta_pat_"), "{secret}");
        let row = c
            .wait()
            .at_most(SHORT)
            .for_element(Locator::Css("tr.token[data-name='nightly backup'][data-state=live]"))
            .await?;
        let text = row.text().await?;
        assert!(text.contains("read, terminal") && !text.contains(&secret), "the list never shows the secret: {text}");
        assert!(text.contains("admin / Default"), "{text}");
        browser.screenshot("api-tokens").await?;

        // The secret works for a script…
        let script = Script::new(&base, &secret);
        let (status, v) = script.graphql("{ servers { id } }").await?;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["data"]["servers"][0]["id"], stack.server_id.as_str(), "its workspace's server: {v}");
        // …until it is revoked on the page (after a yes).
        c.find(Locator::Css("tr.token[data-name='nightly backup'] button.revoke")).await?.click().await?;
        c.accept_alert().await?;
        c.wait()
            .at_most(SHORT)
            .for_element(Locator::Css("tr.token[data-name='nightly backup'][data-state=revoked]"))
            .await?;
        let (status, _) = script.graphql("{ servers { id } }").await?;
        assert_eq!(status, 401);
        Ok(())
    })
    .await;
    browser.close().await;
    result
}

/// A GraphQL socket opened with a token is held to it: once the token is revoked the socket
/// closes (1008) and nothing sent on it runs, not even a mutation already on its way.
#[tokio::test]
async fn revoking_a_token_closes_its_open_graphql_socket() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let made = make(&stack, "socket", &["read", "write"], None).await?;
    let secret = made["data"]["createApiToken"]["token"].as_str().unwrap_or_default().to_owned();
    let id = made["data"]["createApiToken"]["info"]["id"].as_str().unwrap_or_default().to_owned();
    let team = stack.api.own_team().await?;
    let q = "subscription($s: [String!]!) { serverSamples(serverIds: $s) { serverId } }";
    let mut sub = stack.api.subscribe_with(&secret, q, json!({ "s": [stack.server_id] })).await?;
    anyhow::ensure!(sub.next(std::time::Duration::from_secs(20)).await?.is_ok(), "a sample first");

    let v = stack.api.graphql(&format!("mutation {{ revokeApiToken(id: \"{id}\") }}"), json!({})).await?;
    assert_eq!(v["data"]["revokeApiToken"], true, "{v}");
    // Whatever arrives now is refused or finds the socket closed.
    let _ = sub
        .send("2", &format!("mutation {{ createWorkspace(teamId: \"{team}\", name: \"after-revoke\") {{ id }} }}"))
        .await;
    let (code, reason) = sub.closed(std::time::Duration::from_secs(10)).await?;
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("revoked"), "{reason}");
    let ws = stack.api.graphql("{ teams { workspaces { name } } }", json!({})).await?;
    assert!(!ws.to_string().contains("after-revoke"), "the mutation did not run: {ws}");
    Ok(())
}
