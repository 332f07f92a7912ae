//! Sign-in, tokens and the guards around them, against the real backend.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use porta_e2e::{ADMIN_PASSWORD, Api, Backend, Ws};
use porta_shared::api::ApiError;
use serde_json::json;

async fn error_code(resp: reqwest::Response) -> anyhow::Result<(u16, String)> {
    let status = resp.status().as_u16();
    let body: ApiError = resp.json().await?;
    Ok((status, body.error.code.as_str().to_owned()))
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() -> anyhow::Result<()> {
    let b = Backend::start(&[("PORTA_LOGIN_ATTEMPTS_PER_MINUTE", "1000")]).await?;
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    // Four: a fifth wrong password would start the back-off.
    for _ in 0..4 {
        let t = Instant::now();
        let r = Api::post_login(&b.url, "admin", "not the password").await?;
        wrong.push(t.elapsed());
        assert_eq!(error_code(r).await?, (401, "unauthorized".into()));
        let t = Instant::now();
        let r = Api::post_login(&b.url, "nobody", "not the password").await?;
        unknown.push(t.elapsed());
        assert_eq!(error_code(r).await?, (401, "unauthorized".into()));
    }
    wrong.sort();
    unknown.sort();
    // An unknown user still pays for a full password hash; without the dummy hash it would
    // answer two orders of magnitude sooner. The bound is loose so a busy machine passes.
    assert!(unknown[2] * 2 >= wrong[2], "unknown user {:?} vs wrong password {:?}", unknown[2], wrong[2]);
    assert!(Api::login(&b.url, "admin", ADMIN_PASSWORD).await.is_ok());
    Ok(())
}

#[tokio::test]
async fn the_rate_limit_holds_even_for_the_right_password() -> anyhow::Result<()> {
    let b = Backend::start(&[("PORTA_LOGIN_ATTEMPTS_PER_MINUTE", "3")]).await?;
    for _ in 0..3 {
        assert_eq!(error_code(Api::post_login(&b.url, "admin", "guess guess").await?).await?.0, 401);
    }
    let r = Api::post_login(&b.url, "admin", ADMIN_PASSWORD).await?;
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(error_code(r).await?, (429, "rate_limited".into()));
    Ok(())
}

fn forge(header: serde_json::Value, claims: serde_json::Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

#[tokio::test]
async fn forged_and_misused_tokens_are_refused() -> anyhow::Result<()> {
    let b = Backend::start(&[]).await?;
    let api = Api::login(&b.url, "admin", ADMIN_PASSWORD).await?;
    assert_eq!(api.get_with_token("/api/auth/me", &api.access).await?.status(), 200);

    let payload = api.access.split('.').nth(1).unwrap_or_default();
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let mut expired = claims.clone();
    expired["exp"] = json!(now - 3600);
    let cases = [
        ("alg none", forge(json!({"alg":"none","typ":"JWT"}), claims.clone(), b"")),
        ("wrong key", forge(json!({"alg":"HS256","typ":"JWT"}), claims.clone(), &[7u8; 32])),
        ("expired, resigned badly", forge(json!({"alg":"HS256","typ":"JWT"}), expired, &[1u8; 32])),
        ("tampered payload", {
            let mut parts: Vec<&str> = api.access.split('.').collect();
            let mut admin = claims.clone();
            admin["sub"] = json!("someone-else");
            let p = URL_SAFE_NO_PAD.encode(admin.to_string());
            parts[1] = &p;
            parts.join(".")
        }),
        ("refresh token as access token", api.refresh_cookie.clone().unwrap_or_default().replace("porta_refresh=", "")),
        ("garbage", "not-a-token".to_owned()),
    ];
    for (name, token) in cases {
        let r = api.get_with_token("/api/auth/me", &token).await?;
        assert_eq!(error_code(r).await?, (401, "unauthorized".into()), "{name}");
    }
    let gql = api.http.post(format!("{}/graphql", b.url)).json(&json!({"query":"{ me { id } }"})).send().await?;
    let v: serde_json::Value = gql.json().await?;
    assert_eq!(v["errors"][0]["extensions"]["code"], "unauthorized", "{v}");
    Ok(())
}

#[tokio::test]
async fn an_access_token_expires() -> anyhow::Result<()> {
    let b = Backend::start(&[("PORTA_ACCESS_TTL_SECS", "10")]).await?;
    let api = Api::login(&b.url, "admin", ADMIN_PASSWORD).await?;
    assert_eq!(api.get_with_token("/api/auth/me", &api.access).await?.status(), 200);
    // 10 s lifetime plus the 5 s leeway.
    tokio::time::sleep(Duration::from_secs(16)).await;
    let r = api.get_with_token("/api/auth/me", &api.access).await?;
    assert_eq!(error_code(r).await?, (401, "unauthorized".into()));
    Ok(())
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() -> anyhow::Result<()> {
    let b = Backend::start(&[("PORTA_REFRESH_REUSE_GRACE_SECS", "0")]).await?;
    let mut api = Api::login(&b.url, "admin", ADMIN_PASSWORD).await?;
    let r1 = api.refresh_cookie.clone().unwrap_or_default();
    assert_eq!(api.refresh_with(&r1).await?, 200);
    let r2 = api.refresh_cookie.clone().unwrap_or_default();
    assert_ne!(r1, r2, "rotated");
    assert_eq!(api.get_with_token("/api/auth/me", &api.access).await?.status(), 200);
    // Someone replays the spent token: refused, and the live one dies with it.
    assert_eq!(api.refresh_with(&r1).await?, 401);
    assert_eq!(api.refresh_with(&r2).await?, 401);
    assert_eq!(api.refresh_with("porta_refresh=prt_forged").await?, 401);
    Ok(())
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_both_stay_signed_in() -> anyhow::Result<()> {
    let b = Backend::start(&[]).await?;
    let mut api = Api::login(&b.url, "admin", ADMIN_PASSWORD).await?;
    let r1 = api.refresh_cookie.clone().unwrap_or_default();
    assert_eq!(api.refresh_with(&r1).await?, 200);
    let r2 = api.refresh_cookie.clone().unwrap_or_default();
    // The second tab presents the same token within the grace period: a sibling token.
    assert_eq!(api.refresh_with(&r1).await?, 200);
    let r3 = api.refresh_cookie.clone().unwrap_or_default();
    assert_eq!(api.refresh_with(&r2).await?, 200);
    assert_eq!(api.refresh_with(&r3).await?, 200);
    Ok(())
}

#[tokio::test]
async fn logout_ends_the_sign_in() -> anyhow::Result<()> {
    let b = Backend::start(&[]).await?;
    let api = Api::login(&b.url, "admin", ADMIN_PASSWORD).await?;
    let cookie = api.refresh_cookie.clone().unwrap_or_default();
    let r = api.http.post(format!("{}/api/auth/logout", b.url)).header("cookie", &cookie).send().await?;
    assert_eq!(r.status(), 204);
    let mut api = api;
    assert_eq!(api.refresh_with(&cookie).await?, 401);
    Ok(())
}

#[tokio::test]
async fn stream_sockets_need_a_fresh_ticket_and_our_origin() -> anyhow::Result<()> {
    let b = Backend::start(&[]).await?;
    let api = Api::login(&b.url, "admin", ADMIN_PASSWORD).await?;
    let status = |e: tokio_tungstenite::tungstenite::Error| match e {
        tokio_tungstenite::tungstenite::Error::Http(r) => r.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    };
    for evil in ["https://evil.example", "null", &format!("{}.evil.example", b.url), "http://127.0.0.1:1"] {
        let ticket = api.ticket().await?;
        let e = Ws::connect(&api.ws_url(&ticket), Some(evil)).await.err().expect("refused");
        assert_eq!(status(e), 403, "origin {evil}");
    }
    let ticket = api.ticket().await?;
    let ws = Ws::connect(&api.ws_url(&ticket), Some(&b.url)).await?;
    ws.close().await;
    let reused = Ws::connect(&api.ws_url(&ticket), Some(&b.url)).await.err().expect("refused");
    assert_eq!(status(reused), 401, "a spent ticket");
    let none =
        Ws::connect(&format!("{}/api/ws", b.url.replace("http", "ws")), Some(&b.url)).await.err().expect("refused");
    assert_eq!(status(none), 401, "no ticket");
    // Bridges are not browsers: an Origin on /bridge/ws is refused.
    let bridge =
        Ws::connect(&format!("{}/bridge/ws", b.url.replace("http", "ws")), Some(&b.url)).await.err().expect("refused");
    assert_eq!(status(bridge), 403);
    Ok(())
}

#[tokio::test]
async fn a_revoked_server_cannot_reconnect() -> anyhow::Result<()> {
    let mut stack = porta_e2e::Stack::start(&[], &[]).await?;
    let v =
        stack.api.graphql("mutation($id: String!) { revokeServer(id: $id) }", json!({ "id": stack.server_id })).await?;
    assert_eq!(v["data"]["revokeServer"], true, "{v}");
    // The daemon is told its credential is refused and exits with the "re-enrol" status.
    let status = stack.bridge.wait_exit(Duration::from_secs(20)).await?;
    assert_eq!(status.code(), Some(3), "{status:?}");
    assert!(stack.api.servers().await?.is_empty(), "a revoked server is no longer listed");
    Ok(())
}

/// An access token dies with its sign-in: after sign-out it is refused everywhere, though it
/// has not expired.
#[tokio::test]
async fn signing_out_ends_the_access_token_too() -> anyhow::Result<()> {
    let b = Backend::start(&[]).await?;
    let api = Api::login(&b.url, "admin", ADMIN_PASSWORD).await?;
    let me = |api: &Api| api.http.get(format!("{}/api/auth/me", b.url)).bearer_auth(&api.access).send();
    assert_eq!(me(&api).await?.status(), 200);
    let cookie = api.refresh_cookie.clone().unwrap_or_default();
    let r = api.http.post(format!("{}/api/auth/logout", b.url)).header("cookie", &cookie).send().await?;
    assert_eq!(r.status(), 204);
    assert_eq!(error_code(me(&api).await?).await?, (401, "unauthorized".into()));
    let v = api.graphql("{ servers { id } }", json!({})).await?;
    assert_eq!(v["error"]["code"], "unauthorized", "{v}");
    Ok(())
}

/// A GraphQL socket opened with an access token lasts as long as the token.
#[tokio::test]
async fn a_graphql_socket_closes_when_its_access_token_expires() -> anyhow::Result<()> {
    let stack = porta_e2e::Stack::start(&[("PORTA_ACCESS_TTL_SECS", "10")], &[]).await?;
    let q = "subscription($s: [String!]!) { serverSamples(serverIds: $s) { serverId } }";
    let mut sub = stack.api.subscribe(q, json!({ "s": [stack.server_id] })).await?;
    let (code, reason) = sub.closed(Duration::from_secs(30)).await?;
    assert_eq!((code, reason.as_str()), (1008, "the access token has expired"));
    Ok(())
}

/// Changing the password signs out every device (their access tokens, refresh tokens and
/// sockets), and the device that changed it gets a fresh sign-in. A guessable new password is
/// refused with a reason; so is a wrong current one.
#[tokio::test]
async fn a_password_change_signs_out_everywhere_else() -> anyhow::Result<()> {
    let b = Backend::start(&[]).await?;
    let mut laptop = Api::login(&b.url, "admin", ADMIN_PASSWORD).await?;
    let phone = Api::login(&b.url, "admin", ADMIN_PASSWORD).await?;
    let mut socket = phone.ws().await?;
    let change = |api: &Api, current: &str, new: &str| {
        api.http
            .post(format!("{}/api/auth/password", b.url))
            .bearer_auth(&api.access)
            .json(&json!({ "current": current, "new": new }))
            .send()
    };
    let weak = change(&laptop, ADMIN_PASSWORD, "password123").await?;
    assert_eq!(weak.status(), 400);
    assert!(weak.text().await?.contains("too easy to guess"));
    let wrong = change(&laptop, "not it", "a much better passphrase").await?;
    assert_eq!(error_code(wrong).await?, (403, "forbidden".into()));

    let ok = change(&laptop, ADMIN_PASSWORD, "a much better passphrase").await?;
    assert_eq!(ok.status(), 200);
    let fresh: porta_shared::api::AuthResponse = ok.json().await?;
    let me = |token: &str| laptop.http.get(format!("{}/api/auth/me", b.url)).bearer_auth(token.to_owned()).send();
    assert_eq!(me(&fresh.access_token).await?.status(), 200, "the new sign-in works");
    assert_eq!(me(&laptop.access).await?.status(), 401, "the laptop's old token is dead");
    assert_eq!(me(&phone.access).await?.status(), 401, "the phone's token is dead");
    let phone_cookie = phone.refresh_cookie.clone().unwrap_or_default();
    assert_eq!(laptop.refresh_with(&phone_cookie).await?, 401, "the phone cannot refresh");
    let closed = tokio::time::timeout(Duration::from_secs(10), socket.wait_closed()).await;
    assert!(matches!(closed, Ok(Ok(Some(1008)))), "the phone's stream socket closes: {closed:?}");
    assert_eq!(error_code(Api::post_login(&b.url, "admin", ADMIN_PASSWORD).await?).await?.0, 401);
    assert!(Api::login(&b.url, "admin", "a much better passphrase").await.is_ok());
    Ok(())
}

/// "Sign out everywhere" ends every sign-in of the person.
#[tokio::test]
async fn signing_out_everywhere_ends_every_sign_in() -> anyhow::Result<()> {
    let b = Backend::start(&[]).await?;
    let a = Api::login(&b.url, "admin", ADMIN_PASSWORD).await?;
    let other = Api::login(&b.url, "admin", ADMIN_PASSWORD).await?;
    let r = a.http.post(format!("{}/api/auth/logout-all", b.url)).bearer_auth(&a.access).send().await?;
    assert_eq!(r.status(), 204);
    for api in [&a, &other] {
        let r = api.http.get(format!("{}/api/auth/me", b.url)).bearer_auth(&api.access).send().await?;
        assert_eq!(r.status(), 401);
    }
    Ok(())
}

/// Huge usernames are refused before anything is written: the audit log does not grow.
#[tokio::test]
async fn unbounded_usernames_never_reach_the_database() -> anyhow::Result<()> {
    let b = Backend::start(&[("PORTA_LOGIN_ATTEMPTS_PER_MINUTE", "1000")]).await?;
    let api = Api::login(&b.url, "admin", ADMIN_PASSWORD).await?;
    let count = || async {
        let v = api.graphql("{ auditLog(action: \"auth.login\", limit: 1000) { seq } }", json!({})).await?;
        anyhow::Ok(v["data"]["auditLog"].as_array().map_or(0, Vec::len))
    };
    let before = count().await?;
    let huge = "=HYPERLINK(\"x\")".repeat(40_000);
    for _ in 0..20 {
        let r = Api::post_login(&b.url, &huge, "whatever password").await?;
        assert_eq!(r.status(), 400);
    }
    assert_eq!(count().await?, before, "no audit rows for refused names");
    Ok(())
}

/// The back-off is keyed on the name as the lookup sees it: spaces and case do not buy new
/// tries, and while it lasts the right password is refused too.
#[tokio::test]
async fn whitespace_does_not_get_around_the_back_off() -> anyhow::Result<()> {
    let b = Backend::start(&[("PORTA_LOGIN_ATTEMPTS_PER_MINUTE", "1000")]).await?;
    for name in ["admin", " admin", "admin ", "ADMIN", "admin\t"] {
        assert_eq!(error_code(Api::post_login(&b.url, name, "not the password").await?).await?.0, 401, "{name:?}");
    }
    let r = Api::post_login(&b.url, "admin  ", ADMIN_PASSWORD).await?;
    assert_eq!(error_code(r).await?, (429, "rate_limited".into()));
    Ok(())
}

async fn login_from(b: &Backend, forwarded_for: &str, password: &str) -> anyhow::Result<reqwest::Response> {
    Ok(reqwest::Client::new()
        .post(format!("{}/api/auth/login", b.url))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({ "username": "admin", "password": password }))
        .send()
        .await?)
}

/// Behind a load balancer named in PORTA_TRUSTED_PROXIES, the client it forwards is the one
/// limited and audited, so one person's bad tries do not lock everyone out; without it, a
/// client's own `X-Forwarded-For` buys it nothing.
#[tokio::test]
async fn only_a_trusted_proxy_may_say_who_the_client_is() -> anyhow::Result<()> {
    let proxied =
        Backend::start(&[("PORTA_LOGIN_ATTEMPTS_PER_MINUTE", "3"), ("PORTA_TRUSTED_PROXIES", "127.0.0.1")]).await?;
    for _ in 0..3 {
        assert_eq!(error_code(login_from(&proxied, "203.0.113.7", "guess guess").await?).await?.0, 401);
    }
    let r = login_from(&proxied, "203.0.113.7", ADMIN_PASSWORD).await?;
    assert_eq!(error_code(r).await?, (429, "rate_limited".into()), "the guessing client is limited");
    // A client that writes an address itself is still known by the one the proxy appends.
    let r = login_from(&proxied, "198.51.100.1, 203.0.113.7", ADMIN_PASSWORD).await?;
    assert_eq!(error_code(r).await?.0, 429);
    let r = login_from(&proxied, "203.0.113.8", ADMIN_PASSWORD).await?;
    assert_eq!(r.status(), 200, "another client behind the same proxy signs in");
    let api = Api::login(&proxied.url, "admin", ADMIN_PASSWORD).await?;
    let log = api.graphql("{ auditLog(action: \"auth.login\") { result source } }", json!({})).await?;
    let sources: Vec<(String, String)> = log["data"]["auditLog"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["result"].as_str().unwrap_or("").to_owned(), e["source"].as_str().unwrap_or("").to_owned()))
        .collect();
    assert!(sources.iter().any(|(r, s)| r != "ok" && s == "203.0.113.7"), "{sources:?}");
    assert!(sources.iter().any(|(r, s)| r == "ok" && s == "203.0.113.8"), "{sources:?}");

    // Not trusted (the default): the header is the client's word, and changing it buys nothing.
    let direct = Backend::start(&[("PORTA_LOGIN_ATTEMPTS_PER_MINUTE", "3")]).await?;
    for n in 0..3 {
        let r = login_from(&direct, &format!("203.0.113.{n}"), "guess guess").await?;
        assert_eq!(error_code(r).await?.0, 401);
    }
    let r = login_from(&direct, "203.0.113.99", ADMIN_PASSWORD).await?;
    assert_eq!(error_code(r).await?, (429, "rate_limited".into()));
    Ok(())
}

#[tokio::test]
async fn every_refusal_for_want_of_a_credential_says_how_to_authenticate() -> anyhow::Result<()> {
    let b = Backend::start(&[]).await?;
    let http = reqwest::Client::new();
    let challenged = |resp: &reqwest::Response, what: &str| {
        assert_eq!(resp.status().as_u16(), 401, "{what}");
        assert_eq!(
            resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()),
            Some("Bearer realm=\"porta\""),
            "{what}"
        );
    };
    let mcp = http
        .post(format!("{}/mcp", b.url))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }))
        .send()
        .await?;
    challenged(&mcp, "/mcp without a token");
    for path in ["/api/v1/meta", "/api/audit/export", "/api/auth/me"] {
        challenged(&http.get(format!("{}{path}", b.url)).send().await?, path);
    }
    let wrong = http.get(format!("{}/api/v1/meta", b.url)).bearer_auth("porta_pat_wrong").send().await?;
    challenged(&wrong, "a wrong token");
    // The GraphQL socket, refused at the upgrade.
    let gql = http
        .get(format!("{}/graphql/ws", b.url))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-protocol", "graphql-transport-ws")
        .header("origin", &b.url)
        .send()
        .await?;
    challenged(&gql, "/graphql/ws without a ticket");
    // What MCP clients probe for OAuth is not the web app: Porta offers none, so nothing is there.
    for path in ["/.well-known/oauth-protected-resource", "/.well-known/oauth-authorization-server/mcp"] {
        let resp = http.get(format!("{}{path}", b.url)).send().await?;
        assert_eq!(resp.status().as_u16(), 404, "{path}");
        let body: ApiError = resp.json().await?;
        assert_eq!(body.error.code, porta_shared::ErrorCode::NotFound, "{path}");
    }
    // The app still answers its own paths.
    let page = http.get(format!("{}/servers", b.url)).send().await?;
    assert_eq!(page.status().as_u16(), 200);
    Ok(())
}
