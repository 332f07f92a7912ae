//! Previews end to end: a real web app on the bridge's machine, its port listed with its
//! process, and reached through the backend and the bridge at `/p/<server>/<port>/` — pages,
//! redirects, a large download and upload, a WebSocket — only by the person who opened it
//! from Porta; clear pages for a closed port and an offline server.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use porta_e2e::Stack;
use porta_e2e::webapp::{self, WebApp};
use porta_shared::client::OnServer;
use porta_shared::ports::SysPorts;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// An HTTP client that follows nothing: redirects are what is being checked.
fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// Opens the preview of `port` as Porta's UI does (a ticket in the link): the cookie it gets.
async fn enter(stack: &Stack, http: &reqwest::Client, port: u16, query: &str) -> anyhow::Result<String> {
    let ticket = stack.api.ticket().await?;
    let and = if query.is_empty() { String::new() } else { format!("{query}&") };
    let url = format!("{}/p/{}/{port}/?{and}porta_ticket={ticket}", stack.api.base, stack.server_id);
    let resp = http.get(&url).send().await?;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{}", resp.text().await?);
    let location = resp.headers()[LOCATION].to_str()?.to_owned();
    let kept = if query.is_empty() { String::new() } else { format!("?{query}") };
    assert_eq!(location, format!("/p/{}/{port}/{kept}", stack.server_id));
    let set = resp.headers()[SET_COOKIE].to_str()?.to_owned();
    assert!(set.contains(&format!("Path=/p/{}/{port}/", stack.server_id)), "{set}");
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax"), "{set}");
    let cookie = set.split(';').next().unwrap_or_default().to_owned();
    // The ticket was spent: the same link does not let anyone else in.
    let again = http.get(&url).send().await?;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert!(again.headers().get(SET_COOKIE).is_none());
    Ok(cookie)
}

#[tokio::test]
async fn a_web_app_on_the_server_is_previewed_through_its_bridge() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let app = WebApp::start("127.0.0.1:0").await?;
    let s = stack.server_id.clone();
    let base = format!("{}/p/{s}/{}", stack.api.base, app.port);
    let http = client();

    // The Ports panel lists the app's port with this process as its owner.
    let mut ws = stack.api.ws().await?;
    let listed =
        ws.call(OnServer { server: s.clone(), req: SysPorts {} }).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mine = listed.ports.iter().find(|p| p.port == app.port).expect("the app's port is listed");
    assert_eq!(mine.pid, Some(std::process::id()), "{mine:?}");
    assert_eq!(mine.address, "127.0.0.1");
    assert!(mine.loopback);

    // Nobody gets in without opening it from Porta, and the app is not asked.
    let anonymous = http.get(format!("{base}/")).send().await?;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(anonymous.text().await?.contains("open this preview from Porta"));
    let forged = http.get(format!("{base}/")).header(COOKIE, "porta_preview=not.a.token").send().await?;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    // Without its slash the preview's root is sent to it.
    let bare = http.get(&base).send().await?;
    assert_eq!(bare.status(), StatusCode::SEE_OTHER);
    assert_eq!(bare.headers()[LOCATION], format!("/p/{s}/{}/", app.port));

    // Opened from Porta: the ticket becomes a cookie for this preview only; the rest of the
    // query stays.
    let cookie = enter(&stack, &http, app.port, "tab=2").await?;

    // The app sees the browser's host, where it is served, and none of Porta's cookies.
    let resp = http
        .get(format!("{base}/echo/deep/path?q=1"))
        .header(COOKIE, format!("theme=dark; {cookie}; porta_refresh=prt_secret"))
        .header("x-forwarded-for", "198.51.100.7")
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::OK);
    // The app's own cookie comes back, kept to this preview; Porta's headers stay off its answers.
    assert_eq!(resp.headers()[SET_COOKIE].to_str()?, format!("app_session=1; Path=/p/{s}/{}/", app.port));
    assert!(resp.headers().get("x-frame-options").is_none());
    let seen: Value = resp.json().await?;
    let host = stack.api.base.trim_start_matches("http://");
    assert_eq!(seen["path"], "/echo/deep/path");
    assert_eq!(seen["query"], "q=1");
    assert_eq!(seen["headers"]["host"], host);
    assert_eq!(seen["headers"]["x-forwarded-host"], host);
    assert_eq!(seen["headers"]["x-forwarded-proto"], "http");
    assert_eq!(seen["headers"]["x-forwarded-prefix"], format!("/p/{s}/{}", app.port));
    assert_eq!(seen["headers"]["x-forwarded-for"], "198.51.100.7, 127.0.0.1");
    assert_eq!(seen["headers"]["cookie"], "theme=dark", "Porta's cookies never reach the app");

    // A redirect to the app's root stays under the preview.
    let redirected = http.get(format!("{base}/redirect")).header(COOKIE, &cookie).send().await?;
    assert_eq!(redirected.headers()[LOCATION], format!("/p/{s}/{}/landed?from=redirect", app.port));

    // Many small requests in a row reuse connections and all arrive.
    for _ in 0..50 {
        let r = http.get(format!("{base}/small")).header(COOKIE, &cookie).send().await?;
        assert_eq!(r.text().await?, "ok");
    }

    // A large download arrives whole, in order.
    let size = 24 << 20;
    let big = http.get(format!("{base}/bytes/{size}")).header(COOKIE, &cookie).send().await?;
    assert_eq!(big.status(), StatusCode::OK);
    let got = big.bytes().await?;
    assert_eq!(got.len(), size);
    assert!(got.iter().copied().eq(webapp::pattern(size)), "the download's bytes are the app's");

    // A large upload streams to the app whole.
    let body: Vec<u8> = (0..(12usize << 20)).map(|i| (i * 7 % 256) as u8).collect();
    let expected = format!("{} {}", body.len(), hex::encode(Sha256::digest(&body)));
    let up = http.post(format!("{base}/upload")).header(COOKIE, &cookie).body(body).send().await?;
    assert_eq!(up.text().await?, expected);

    // A WebSocket (as a dev server's hot reload uses) goes end to end, both ways.
    let ws_url = format!("{}/ws", base.replacen("http://", "ws://", 1));
    let mut req = ws_url.as_str().into_client_request()?;
    req.headers_mut().insert("cookie", cookie.parse()?);
    let (mut sock, _) = tokio_tungstenite::connect_async(req).await?;
    sock.send(Message::text("hello")).await?;
    let reply = tokio::time::timeout(Duration::from_secs(10), sock.next()).await?.expect("a reply")?;
    assert_eq!(reply.into_text()?.as_str(), "echo: hello");
    let blob: Vec<u8> = (0..(1usize << 20)).map(|i| (i % 13) as u8).collect();
    sock.send(Message::binary(blob.clone())).await?;
    let reply = tokio::time::timeout(Duration::from_secs(20), sock.next()).await?.expect("a reply")?;
    assert_eq!(reply.into_data().as_ref(), &blob[..]);
    sock.close(None).await?;

    // A WebSocket opened from another site's page is refused, cookie or not.
    let mut foreign = ws_url.as_str().into_client_request()?;
    foreign.headers_mut().insert("cookie", cookie.parse()?);
    foreign.headers_mut().insert("origin", "https://evil.example".parse()?);
    assert!(tokio_tungstenite::connect_async(foreign).await.is_err(), "a foreign page's socket is refused");

    // A cookie is for its own port only.
    let other = http.get(format!("{}/p/{s}/{}/", stack.api.base, app.port + 1)).header(COOKIE, &cookie).send().await?;
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);

    // The opening is on the record.
    let audit =
        stack.api.graphql("{ auditLog(action: \"preview.\") { action target } }", serde_json::json!({})).await?;
    let opened = audit["data"]["auditLog"].as_array().is_some_and(|es| {
        es.iter().any(|e| e["action"] == "preview.open" && e["target"] == format!("port:{}", app.port))
    });
    assert!(opened, "{audit}");

    // Without a preview domain there are no own hosts, and nothing can be shared.
    let own_hosts = stack.api.graphql("{ previewBase }", serde_json::json!({})).await?;
    assert_eq!(own_hosts["data"]["previewBase"], Value::Null, "{own_hosts}");
    let q = "mutation($s: String!, $p: Int!) { sharePreview(serverId: $s, port: $p, level: \"workspace\") { link } }";
    let shared = stack.api.graphql(q, serde_json::json!({ "s": s, "p": app.port })).await?;
    assert!(shared["errors"][0]["message"].as_str().is_some_and(|m| m.contains("PORTA_PREVIEW_DOMAIN")), "{shared}");

    // Signing out everywhere ends the preview too, within a second.
    let out = stack
        .api
        .http
        .post(format!("{}/api/auth/logout-all", stack.api.base))
        .bearer_auth(&stack.api.access)
        .send()
        .await?;
    assert!(out.status().is_success(), "{}", out.status());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = http.get(format!("{base}/small")).header(COOKIE, &cookie).send().await?;
        if r.status() == StatusCode::UNAUTHORIZED {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the preview outlived the sign-in: {}", r.status());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test]
async fn a_closed_port_and_an_offline_server_say_so() -> anyhow::Result<()> {
    let mut stack = Stack::start(&[], &[]).await?;
    let http = client();
    // A port that was just free.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
    let cookie = enter(&stack, &http, closed, "").await?;
    let url = format!("{}/p/{}/{closed}/", stack.api.base, stack.server_id);
    let resp = tokio::time::timeout(Duration::from_secs(20), http.get(&url).header(COOKIE, &cookie).send()).await??;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert!(resp.text().await?.contains(&format!("Nothing is listening on port {closed} on ")));

    // A page load tries again by itself: every 2 s at first, then less often, then not at all
    // (and a reload starts over), counted in a cookie of Porta's own; nonsense counts as none.
    for (count, refresh, next) in [
        ("", Some(2), "porta_wait=1;"),
        ("; porta_wait=14", Some(2), "porta_wait=15;"),
        ("; porta_wait=15", Some(10), "porta_wait=16;"),
        ("; porta_wait=64", Some(30), "porta_wait=65;"),
        ("; porta_wait=65", None, "porta_wait=;"),
        ("; porta_wait=x", Some(2), "porta_wait=1;"),
    ] {
        let resp =
            http.get(&url).header(COOKIE, format!("{cookie}{count}")).header("sec-fetch-dest", "iframe").send().await?;
        assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
        let set = resp.headers()[SET_COOKIE].to_str()?.to_owned();
        assert!(set.starts_with(next) && set.contains(&format!("Path=/p/{}/{closed}/", stack.server_id)), "{set}");
        let page = resp.text().await?;
        match refresh {
            Some(secs) => assert!(page.contains(&format!("http-equiv=\"refresh\" content=\"{secs}\"")), "{page}"),
            None => assert!(!page.contains("refresh") && page.contains("stopped trying"), "{page}"),
        }
    }
    // A script's request neither counts nor is counted.
    let fetched = http.get(&url).header(COOKIE, format!("{cookie}; porta_wait=3")).header("sec-fetch-dest", "empty");
    assert!(fetched.send().await?.headers().get(SET_COOKIE).is_none());
    // Once the app answers a page, the count is forgotten.
    let app = WebApp::start("127.0.0.1:0").await?;
    let app_cookie = enter(&stack, &http, app.port, "").await?;
    let app_url = format!("{}/p/{}/{}/small", stack.api.base, stack.server_id, app.port);
    let resp = http
        .get(&app_url)
        .header(COOKIE, format!("{app_cookie}; porta_wait=7"))
        .header("sec-fetch-dest", "document")
        .send()
        .await?;
    assert!(resp.headers()[SET_COOKIE].to_str()?.starts_with("porta_wait=; "));
    assert_eq!(resp.text().await?, "ok");

    // An app on the IPv6 loopback only is reached too.
    if let Ok(app6) = WebApp::start("[::1]:0").await {
        let cookie6 = enter(&stack, &http, app6.port, "").await?;
        let url6 = format!("{}/p/{}/{}/small", stack.api.base, stack.server_id, app6.port);
        assert_eq!(http.get(&url6).header(COOKIE, &cookie6).send().await?.text().await?, "ok");
    }

    // The server goes offline: the preview says so at once.
    stack.bridge.kill().await;
    stack.api.wait_server_online(false, Duration::from_secs(20)).await?;
    let resp = tokio::time::timeout(Duration::from_secs(20), http.get(&url).header(COOKIE, &cookie).send()).await??;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.text().await?.contains("is offline"));

    // Nonsense ports are refused before anything is asked.
    for bad in ["0", "70000", "x"] {
        let r = http.get(format!("{}/p/{}/{bad}/", stack.api.base, stack.server_id)).send().await?;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    Ok(())
}
