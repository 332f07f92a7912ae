//! Previews at their own hosts (`<port>--<server>.<preview domain>`, here under
//! `porta.localhost`) and shared: the app served at its root, nothing of Porta's at that
//! host, its cookie for that host alone; then shared with the workspace's members (a viewer
//! gets in only while it is), and by public links with a password and an expiry, whose
//! visits and traffic are counted and audited, and which end when revoked or expired.

use std::time::Duration;

use anyhow::Context as _;
use futures_util::{SinkExt, StreamExt};
use porta_e2e::client::Api;
use porta_e2e::webapp::WebApp;
use porta_e2e::{Stack, free_port};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A stack whose previews have hosts of their own under `porta.localhost:<its port>`.
async fn stack() -> anyhow::Result<(Stack, u16)> {
    let port = free_port()?;
    let domain = format!("porta.localhost:{port}");
    let stack = Stack::start_on(&format!("127.0.0.1:{port}"), &[("PORTA_PREVIEW_DOMAIN", &domain)], &[]).await?;
    Ok((stack, port))
}

/// A preview's own host, and a client that reaches it (and follows no redirect).
fn preview_host(stack: &Stack, app_port: u16, porta_port: u16) -> anyhow::Result<(String, reqwest::Client)> {
    let name = format!("{app_port}--{}.porta.localhost", stack.server_id);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(&name, ([127, 0, 0, 1], porta_port).into())
        .build()?;
    Ok((format!("http://{name}:{porta_port}"), http))
}

/// The `name=value` of a `Set-Cookie`.
fn cookie_of(resp: &reqwest::Response) -> anyhow::Result<String> {
    let set = resp.headers().get(SET_COOKIE).ok_or_else(|| anyhow::anyhow!("no cookie was set"))?.to_str()?;
    Ok(set.split(';').next().unwrap_or_default().to_owned())
}

/// Enters with a ticket of `api`'s at `origin`'s `path`: the answer.
async fn enter(api: &Api, http: &reqwest::Client, origin: &str, path: &str) -> anyhow::Result<reqwest::Response> {
    let ticket = api.ticket().await?;
    let sep = if path.contains('?') { '&' } else { '?' };
    Ok(http.get(format!("{origin}{path}{sep}porta_ticket={ticket}")).send().await?)
}

async fn gql(api: &Api, query: &str, vars: Value) -> anyhow::Result<Value> {
    api.graphql(query, vars).await
}

#[tokio::test]
async fn at_its_own_host_an_app_is_at_its_root_and_nothing_of_portas_is() -> anyhow::Result<()> {
    let (stack, porta_port) = stack().await?;
    let app = WebApp::start("127.0.0.1:0").await?;
    let (origin, http) = preview_host(&stack, app.port, porta_port)?;
    let host = origin.trim_start_matches("http://").to_owned();

    // Porta says where previews' own hosts are.
    let base = gql(&stack.api, "{ previewBase }", json!({})).await?;
    assert_eq!(base["data"]["previewBase"], format!("http://porta.localhost:{porta_port}"));

    // Without its cookie a page is sent to Porta to be opened from there; a script gets 401.
    let page = http.get(format!("{origin}/")).header(ACCEPT, "text/html").send().await?;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()[LOCATION], format!("{}/preview/{}/{}", stack.api.base, stack.server_id, app.port));
    assert_eq!(http.get(format!("{origin}/small")).send().await?.status(), StatusCode::UNAUTHORIZED);

    // Opened from Porta: the ticket becomes a cookie for this host alone, at its root.
    let entered = enter(&stack.api, &http, &origin, "/echo/deep?x=1").await?;
    assert_eq!(entered.status(), StatusCode::SEE_OTHER, "{}", entered.text().await?);
    assert_eq!(entered.headers()[LOCATION], "/echo/deep?x=1");
    let set = entered.headers()[SET_COOKIE].to_str()?.to_owned();
    assert!(set.contains("Path=/;") && set.contains("HttpOnly") && !set.contains("Domain"), "{set}");
    let cookie = cookie_of(&entered)?;

    // The app is at its root, sees its own host and no prefix; its cookies stay on this host.
    let resp = http.get(format!("{origin}/echo/deep?x=1")).header(COOKIE, &cookie).send().await?;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[SET_COOKIE], "app_session=1; Path=/");
    let seen: Value = resp.json().await?;
    assert_eq!(seen["path"], "/echo/deep");
    assert_eq!(seen["headers"]["host"], host);
    assert_eq!(seen["headers"]["x-forwarded-host"], host);
    assert!(seen["headers"].get("x-forwarded-prefix").is_none(), "{seen}");
    assert!(seen["headers"].get("cookie").is_none(), "Porta's cookie never reaches the app: {seen}");
    let redirected = http.get(format!("{origin}/redirect")).header(COOKIE, &cookie).send().await?;
    assert_eq!(redirected.headers()[LOCATION], "/landed?from=redirect");

    // Porta's API is not at this host: the path is the app's (its answer, not Porta's).
    let api_here = http.get(format!("{origin}/api/auth/me")).header(COOKIE, &cookie).send().await?;
    assert_eq!(api_here.status(), StatusCode::NOT_FOUND);
    assert!(api_here.headers().get("x-frame-options").is_none(), "the app answered, not Porta");
    assert!(!api_here.text().await?.contains("unauthorized"));
    let graphql_here = http.post(format!("{origin}/graphql")).header(COOKIE, &cookie).body("{}").send().await?;
    assert!(graphql_here.headers().get("x-frame-options").is_none(), "the app answered, not Porta");

    // Its WebSocket opens from its own pages only, not from Porta's nor another site's.
    let ws_url = format!("{}/ws", origin.replacen("http://", "ws://", 1));
    let open = |from: &str| -> anyhow::Result<_> {
        let mut req = ws_url.as_str().into_client_request()?;
        req.headers_mut().insert("cookie", cookie.parse()?);
        req.headers_mut().insert("origin", from.parse()?);
        Ok(req)
    };
    // (Its name resolves in browsers only: the socket is dialled at the backend's address.)
    let dial = |req| async move {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", porta_port)).await?;
        anyhow::Ok(tokio_tungstenite::client_async(req, tcp).await?)
    };
    let (mut sock, _) = dial(open(&origin)?).await?;
    sock.send(Message::text("hot")).await?;
    let reply = tokio::time::timeout(Duration::from_secs(10), sock.next()).await?.expect("a reply")?;
    assert_eq!(reply.into_text()?.as_str(), "echo: hot");
    for foreign in [stack.api.base.as_str(), "http://evil.example"] {
        assert!(dial(open(foreign)?).await.is_err(), "{foreign}'s page is refused");
    }

    // The cookie is for this port's host only.
    let (other, other_http) = preview_host(&stack, app.port + 1, porta_port)?;
    let refused = other_http.get(format!("{other}/")).header(COOKIE, &cookie).send().await?;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    // A name under the domain that is no preview is nobody's; Porta's own host is Porta's.
    let odd =
        reqwest::Client::builder().resolve("nothing.porta.localhost", ([127, 0, 0, 1], porta_port).into()).build()?;
    let nothing = odd.get(format!("http://nothing.porta.localhost:{porta_port}/api/auth/status")).send().await?;
    assert_eq!(nothing.status(), StatusCode::NOT_FOUND);
    assert!(nothing.text().await?.contains("Not a preview"));
    let status = reqwest::get(format!("{}/api/auth/status", stack.api.base)).await?;
    assert!(status.status().is_success());

    // Opened at the host form, and said so.
    let audit = gql(&stack.api, "{ auditLog(action: \"preview.open\") { detail } }", json!({})).await?;
    assert!(audit["data"]["auditLog"][0]["detail"].as_str().is_some_and(|d| d.contains("host form")), "{audit}");
    Ok(())
}

/// The bytes counted so far for the share `id` of server `s`.
async fn share_bytes(stack: &Stack, s: &str, id: &str) -> anyhow::Result<i64> {
    let list = gql(&stack.api, SHARES, json!({ "s": s })).await?;
    let shares = list["data"]["previewShares"].as_array().cloned().unwrap_or_default();
    let share = shares.iter().find(|x| x["id"] == id).with_context(|| format!("no share {id}: {list}"))?;
    Ok(share["bytes"].as_i64().unwrap_or(0))
}

/// A WebSocket request to a preview's `/ws` with `cookie`.
fn ws_request(
    origin: &str,
    cookie: &str,
) -> anyhow::Result<tokio_tungstenite::tungstenite::handshake::client::Request> {
    let mut req = format!("{}/ws", origin.replacen("http://", "ws://", 1)).into_client_request()?;
    req.headers_mut().insert("cookie", cookie.parse()?);
    Ok(req)
}

const SHARE: &str = "mutation($s: String!, $p: Int!, $l: String!, $e: Int64, $w: String) {
    sharePreview(serverId: $s, port: $p, level: $l, expiresInSecs: $e, password: $w) { link share { id level hasPassword } }
}";
const SHARES: &str = "query($s: String!) { previewShares(serverId: $s, includeEnded: true) { id level visits requests bytes revokedMs } }";
const REVOKE: &str = "mutation($i: String!) { revokePreviewShare(id: $i) }";

fn error_of(v: &Value) -> String {
    v["errors"][0]["message"].as_str().unwrap_or_default().to_owned()
}

/// Waits until `url` with `cookie` answers `status`.
async fn until_status(http: &reqwest::Client, url: &str, cookie: &str, status: StatusCode) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = http.get(url).header(COOKIE, cookie).send().await?.status();
        if got == status {
            return Ok(());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{url} answered {got}, not {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_preview_is_shared_with_the_workspace_and_by_links_that_end() -> anyhow::Result<()> {
    let (stack, porta_port) = stack().await?;
    let app = WebApp::start("127.0.0.1:0").await?;
    let (origin, http) = preview_host(&stack, app.port, porta_port)?;
    let (s, p) = (stack.server_id.clone(), app.port);
    let team = stack.api.own_team().await?;
    let link = stack.api.invite(&team, "viewer").await?;
    let viewer = Api::join_by_link(&stack.api.base, &link, "vera", "a long viewer password 1").await?;

    // Private by default: a viewer of the workspace is refused, and cannot share it.
    let refused = enter(&viewer, &http, &origin, "/").await?;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await?.contains("not shared with the workspace"));
    let by_viewer = gql(&viewer, SHARE, json!({ "s": s, "p": p, "l": "workspace" })).await?;
    assert!(error_of(&by_viewer).contains("developer"), "{by_viewer}");

    // Bad shares are refused with why, and nothing is shared.
    for (vars, why) in [
        (json!({ "s": s, "p": p, "l": "public" }), "needs an expiry"),
        (json!({ "s": s, "p": p, "l": "public", "e": 40 * 86_400 }), "at most 30 days"),
        (json!({ "s": s, "p": p, "l": "everyone" }), "no sharing level"),
        (json!({ "s": s, "p": p, "l": "private" }), "not shared"),
        (json!({ "s": s, "p": 0, "l": "workspace" }), "not a port"),
        (json!({ "s": s, "p": p, "l": "workspace", "w": "a password" }), "only a public link"),
        (json!({ "s": s, "p": p, "l": "public", "e": 60, "w": "short" }), "8 to 128"),
    ] {
        let r = gql(&stack.api, SHARE, vars).await?;
        assert!(error_of(&r).contains(why), "{why}: {r}");
    }
    let none = gql(&stack.api, SHARES, json!({ "s": s })).await?;
    assert_eq!(none["data"]["previewShares"], json!([]), "{none}");

    // Shared with the workspace: the viewer gets in, and their visit is counted.
    let made = gql(&stack.api, SHARE, json!({ "s": s, "p": p, "l": "workspace" })).await?;
    let workspace_share = made["data"]["sharePreview"]["share"]["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(made["data"]["sharePreview"]["link"], format!("{origin}/"), "{made}");
    let entered = enter(&viewer, &http, &origin, "/").await?;
    assert_eq!(entered.status(), StatusCode::SEE_OTHER, "{}", entered.text().await?);
    let vera = cookie_of(&entered)?;
    assert_eq!(http.get(format!("{origin}/small")).header(COOKIE, &vera).send().await?.text().await?, "ok");

    // A public link with a password: the form first; a wrong password sets nothing.
    let made = gql(&stack.api, SHARE, json!({ "s": s, "p": p, "l": "public", "e": 3600, "w": "open sesame!" })).await?;
    let public = made["data"]["sharePreview"]["share"]["id"].as_str().unwrap_or_default().to_owned();
    let link = made["data"]["sharePreview"]["link"].as_str().unwrap_or_default().to_owned();
    assert!(link.starts_with(&format!("{origin}/?porta_share=pvs_")), "{link}");
    // (The client keeps no cookies: each request carries what the test gives it.)
    let anonymous = http.clone();
    let form = anonymous.get(&link).send().await?;
    assert_eq!(form.status(), StatusCode::OK);
    assert!(form.headers().get(SET_COOKIE).is_none());
    assert_eq!(form.headers()["referrer-policy"], "same-origin", "so the form's post says where it came from");
    assert!(form.text().await?.contains("shared with a password"));
    let wrong = anonymous.post(&link).form(&[("password", "open sesame?")]).send().await?;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    assert!(wrong.text().await?.contains("not this link"));
    // Posted from another site's page (the right password, even): refused, nothing set.
    for (header, value) in [("sec-fetch-site", "cross-site"), ("origin", "https://evil.example"), ("origin", "null")] {
        let forged = anonymous.post(&link).header(header, value).form(&[("password", "open sesame!")]).send().await?;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN, "{header}: {value}");
        assert!(forged.headers().get(SET_COOKIE).is_none());
        assert!(forged.text().await?.contains("another site"));
    }
    // As the form's own page posts it in a browser.
    let right = anonymous
        .post(&link)
        .header("sec-fetch-site", "same-origin")
        .header("origin", &origin)
        .form(&[("password", "open sesame!")])
        .send()
        .await?;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(right.headers()[LOCATION], "/");
    let guest = cookie_of(&right)?;
    let page = anonymous.get(format!("{origin}/bytes/5000")).header(COOKIE, &guest).send().await?;
    assert_eq!(page.bytes().await?.len(), 5000);
    // Only at the preview's own host: the path form (Porta's own origin) takes no link, and
    // no share lets a member in there.
    let secret = link.split("porta_share=").nth(1).unwrap_or_default().to_owned();
    let path_form = format!("{}/p/{s}/{p}/?porta_share={secret}", stack.api.base);
    let refused = reqwest::get(&path_form).await?;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    assert!(refused.text().await?.contains("own address"));
    let member_there = enter(&viewer, &http, &format!("{}/p/{s}/{p}", stack.api.base), "/").await?;
    assert_eq!(member_there.status(), StatusCode::FORBIDDEN, "a member's ticket at the path form");
    // A link's cookie is for its own preview's host only.
    let (other, other_http) = preview_host(&stack, p + 1, porta_port)?;
    let elsewhere = other_http.get(format!("{other}/small")).header(COOKIE, &guest).send().await?;
    assert_eq!(elsewhere.status(), StatusCode::UNAUTHORIZED);
    // A path that looks like another host stays a path of this one.
    let tricky = anonymous.get(format!("{origin}//evil.example/?porta_share={secret}")).send().await?;
    let form = tricky.text().await?;
    assert!(form.contains("action=\"/evil.example/?porta_share=") && !form.contains("action=\"//"), "{form}");

    // Their visits and traffic are counted, and the visit is on the record.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let list = gql(&stack.api, SHARES, json!({ "s": s })).await?;
        let shares = list["data"]["previewShares"].as_array().cloned().unwrap_or_default();
        let of = |id: &str| shares.iter().find(|x| x["id"] == id).cloned().unwrap_or_default();
        let (w, l) = (of(&workspace_share), of(&public));
        let counted = w["visits"] == 1 && w["requests"] == 1 && l["visits"] == 1 && l["requests"] == 1;
        if counted && l["bytes"].as_i64().unwrap_or(0) >= 5000 {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "traffic not counted: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let audit = gql(&stack.api, "{ auditLog(action: \"preview.\") { action actor detail } }", json!({})).await?;
    let events = audit["data"]["auditLog"].as_array().cloned().unwrap_or_default();
    let has = |action: &str, actor: &str| events.iter().any(|e| e["action"] == action && e["actor"] == actor);
    assert!(has("preview.visit", &format!("link:{public}")), "{audit}");
    assert_eq!(events.iter().filter(|e| e["action"] == "preview.share").count(), 2, "{audit}");

    // A link's visitor's WebSocket (hot reload) is open when the link is revoked.
    let mut ws = ws_request(&origin, &guest)?;
    ws.headers_mut().insert("origin", origin.parse()?);
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", porta_port)).await?;
    let (mut sock, _) = tokio_tungstenite::client_async(ws, tcp).await?;
    sock.send(Message::text("still here?")).await?;
    let reply = tokio::time::timeout(Duration::from_secs(10), sock.next()).await?.expect("a reply")?;
    assert_eq!(reply.into_text()?.as_str(), "echo: still here?");
    // Its bytes count for the link too, both ways, while the socket is open.
    let before = share_bytes(&stack, &s, &public).await?;
    let long = "x".repeat(20_000);
    sock.send(Message::text(long.as_str())).await?;
    let reply = tokio::time::timeout(Duration::from_secs(10), sock.next()).await?.expect("a reply")?;
    assert_eq!(reply.into_text()?.len(), 20_006);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while share_bytes(&stack, &s, &public).await? < before + 40_000 {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the socket's bytes were not counted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Counting a link's requests changes nothing the app sees of them: a request without a
    // body comes without one (not as `chunked`), an upload with its length.
    let seen: Value =
        anonymous.delete(format!("{origin}/echo/counted")).header(COOKIE, &guest).send().await?.json().await?;
    assert!(
        seen["headers"].get("transfer-encoding").is_none() && seen["headers"].get("content-length").is_none(),
        "{seen}"
    );
    let upload = vec![7u8; 100_000];
    let sent = anonymous.post(format!("{origin}/upload")).header(COOKIE, &guest).body(upload).send().await?;
    assert!(sent.text().await?.starts_with("100000 "));

    // Revoked: the link's visitor and the viewer are out within a second; the link is gone,
    // and so is the visitor's open socket.
    for id in [&public, &workspace_share] {
        let r = gql(&stack.api, REVOKE, json!({ "i": id })).await?;
        assert_eq!(r["data"]["revokePreviewShare"], true, "{r}");
    }
    until_status(&anonymous, &format!("{origin}/small"), &guest, StatusCode::NOT_FOUND).await?;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match sock.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the revoked link's socket stayed open");
    until_status(&http, &format!("{origin}/small"), &vera, StatusCode::FORBIDDEN).await?;
    let gone = anonymous.get(&link).send().await?;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert!(gone.text().await?.contains("revoked"));
    let again = gql(&stack.api, REVOKE, json!({ "i": public })).await?;
    assert!(error_of(&again).contains("revoked already"), "{again}");

    // A link past its expiry is gone too, and so is whoever entered with it.
    let made = gql(&stack.api, SHARE, json!({ "s": s, "p": p, "l": "public", "e": 2 })).await?;
    let short = made["data"]["sharePreview"]["link"].as_str().unwrap_or_default().to_owned();
    let entered = anonymous.get(&short).send().await?;
    assert_eq!(entered.status(), StatusCode::SEE_OTHER, "no password: straight in");
    let brief = cookie_of(&entered)?;
    until_status(&anonymous, &format!("{origin}/small"), &brief, StatusCode::NOT_FOUND).await?;
    let expired = anonymous.get(&short).send().await?;
    assert_eq!(expired.status(), StatusCode::NOT_FOUND);
    assert!(expired.text().await?.contains("expired"));

    // The admin's own access never depended on any of it.
    let mine = enter(&stack.api, &http, &origin, "/").await?;
    assert_eq!(mine.status(), StatusCode::SEE_OTHER);
    Ok(())
}
