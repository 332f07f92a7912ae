//! Enrolling servers through the API, and what the dashboard learns about them.

use std::time::Duration;

use anyhow::Context as _;

use porta_e2e::{ADMIN_PASSWORD, Api, Backend, bin};
use serde_json::json;

#[tokio::test]
async fn an_enrolment_token_from_the_api_enrols_exactly_one_server() -> anyhow::Result<()> {
    let backend = Backend::start(&[("PORTA_METRICS_TOKEN", "a-scraper-token-of-ours")]).await?;
    let api = Api::login(&backend.url, "admin", ADMIN_PASSWORD).await?;
    let v = api
        .graphql(
            "mutation { createEnrollmentToken(name: \"web-1\") { token expiresAtMs command installSnippet } }",
            json!({}),
        )
        .await?;
    let t = &v["data"]["createEnrollmentToken"];
    let token = t["token"].as_str().unwrap_or_default().to_owned();
    assert!(token.starts_with("pet_"), "{v}");
    assert!(t["command"].as_str().unwrap_or_default().contains(&token));
    let snippet = t["installSnippet"].as_str().unwrap_or_default();
    assert!(snippet.contains(&token) && snippet.contains("systemctl enable --now porta-bridge"), "{snippet}");
    assert!(t["expiresAtMs"].as_i64().unwrap_or_default() > 0);

    let dir = tempfile::tempdir()?;
    let enroll = |config: std::path::PathBuf| {
        let (url, token) = (backend.url.clone(), token.clone());
        async move {
            tokio::process::Command::new(bin("porta-bridge")?)
                .arg("--config")
                .arg(config)
                .args(["enroll", "--server", &url, "--token", &token])
                .output()
                .await
                .map_err(anyhow::Error::from)
        }
    };
    let first = enroll(dir.path().join("a.json")).await?;
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.path().join("a.json"))?.permissions());
    assert_eq!(mode & 0o777, 0o600, "the credential file is private");

    let second = enroll(dir.path().join("b.json")).await?;
    assert!(!second.status.success(), "a spent token is refused");
    assert!(String::from_utf8_lossy(&second.stderr).contains("already used"));
    assert!(!dir.path().join("b.json").exists());

    let servers = api.servers().await?;
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0]["name"], "web-1");
    assert_eq!(servers[0]["online"], false, "enrolled but not running yet");

    // Running it brings the server online with what the bridge reports about the machine.
    let mut run = tokio::process::Command::new(bin("porta-bridge")?)
        .arg("--config")
        .arg(dir.path().join("a.json"))
        .arg("run")
        .kill_on_drop(true)
        .spawn()?;
    api.wait_server_online(true, Duration::from_secs(20)).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = api.servers().await?;
        if s[0]["os"].is_string() && s[0]["arch"].is_string() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no system facts: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = tokio::process::Command::new(bin("porta-bridge")?)
        .arg("--config")
        .arg(dir.path().join("a.json"))
        .arg("status")
        .output()
        .await?;
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stdout));
    assert!(String::from_utf8_lossy(&status.stdout).contains("connected"));
    let _ = run.kill().await;

    // Metrics are for the scraper holding the token.
    assert_eq!(reqwest::get(format!("{}/metrics", backend.url)).await?.status(), 401);
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", backend.url))
        .bearer_auth("a-scraper-token-of-ours")
        .send()
        .await?
        .text()
        .await?;
    assert!(metrics.contains("porta_bridges_connected"), "{metrics}");
    check_metrics_formats(&backend).await?;
    assert_eq!(reqwest::get(format!("{}/readyz", backend.url)).await?.status(), 200);
    Ok(())
}

/// `/metrics` speaks what it is asked for: OpenMetrics to a scraper that asks for it (as
/// Prometheus does), the text format 0.0.4 otherwise, which Prometheus' own checker passes.
async fn check_metrics_formats(backend: &Backend) -> anyhow::Result<()> {
    let scrape = |accept: Option<&str>| {
        let mut req =
            reqwest::Client::new().get(format!("{}/metrics", backend.url)).bearer_auth("a-scraper-token-of-ours");
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        req.send()
    };
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,\
                      text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let om = scrape(Some(prometheus)).await?;
    assert!(om.headers()["content-type"].to_str()?.starts_with("application/openmetrics-text; version=1.0.0"));
    let om = om.text().await?;
    assert!(om.ends_with("# EOF\n") && om.contains("porta_relay_bytes_to_clients_total "), "{om}");
    for accept in [None, Some("*/*"), Some("text/plain"), Some("application/openmetrics-text;q=0, text/plain")] {
        let text = scrape(accept).await?;
        assert_eq!(text.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8", "{accept:?}");
        let text = text.text().await?;
        assert!(!text.contains("# EOF"), "{accept:?}: {text}");
        assert!(text.contains("# TYPE porta_relay_bytes_to_clients_total counter\n"), "{text}");
    }
    // Prometheus' own checker (installed by `cargo xtask test`), on the text format.
    let promtool = std::env::var_os("PORTA_TEST_PROMTOOL").unwrap_or_else(|| "promtool".into());
    let text = scrape(None).await?.text().await?;
    let mut check = match tokio::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if std::env::var_os("PORTA_TEST_PROMTOOL").is_none() => {
            eprintln!("promtool not found ({e}): `cargo xtask test` installs it; its check is skipped here");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    use tokio::io::AsyncWriteExt as _;
    let mut stdin = check.stdin.take().ok_or_else(|| anyhow::anyhow!("no stdin"))?;
    stdin.write_all(text.as_bytes()).await?;
    drop(stdin);
    let checked = check.wait_with_output().await?;
    let said = format!("{}{}", String::from_utf8_lossy(&checked.stdout), String::from_utf8_lossy(&checked.stderr));
    assert!(checked.status.success() && said.trim().is_empty(), "promtool: {said}\n{text}");
    Ok(())
}

async fn raw_bridge_socket(backend: &Backend) -> anyhow::Result<porta_e2e::Ws> {
    Ok(porta_e2e::Ws::connect(&format!("{}/bridge/ws", backend.url.replacen("http://", "ws://", 1)), None).await?)
}

fn hello(min: u16, max: u16) -> String {
    porta_shared::Envelope::<porta_shared::bridge::BridgeHandshake>::event(porta_shared::bridge::Hello {
        protocol: porta_shared::ProtocolRange { min, max },
        agent: "test-bridge/0".into(),
        instance: "i".into(),
        capabilities: vec![],
    })
    .encode()
}

#[tokio::test]
async fn the_hub_refuses_other_protocol_versions_and_bad_enrolments() -> anyhow::Result<()> {
    use porta_shared::ErrorCode;
    let backend = Backend::start(&[]).await?;

    let mut ws = raw_bridge_socket(&backend).await?;
    ws.send_text(hello(7, 9)).await?;
    let e = ws.wait_error(Duration::from_secs(10)).await?;
    assert_eq!(e.code, ErrorCode::UnsupportedVersion);
    assert!(e.message.contains("upgrade"), "{}", e.message);

    // Without a credential only enrolment is possible, and only with a live token.
    let mut ws = raw_bridge_socket(&backend).await?;
    ws.send_text(hello(1, 1)).await?;
    let enroll = porta_shared::Envelope::<porta_shared::bridge::BridgeHandshake>::request(
        "e1",
        porta_shared::bridge::Enroll { token: "pet_not-a-real-token".into(), hostname: "h".into() },
    );
    let reply = ws.call_raw(enroll.encode(), "e1").await?;
    assert_eq!(reply.result.err().map(|e| e.code), Some(ErrorCode::Unauthorized));

    let mut ws = raw_bridge_socket(&backend).await?;
    ws.send_text(hello(1, 1)).await?;
    let list =
        porta_shared::Envelope::<porta_shared::bridge::BridgeRequest>::request("l1", porta_shared::bridge::TermList {});
    let reply = ws.call_raw(list.encode(), "l1").await?;
    assert_eq!(reply.result.err().map(|e| e.code), Some(ErrorCode::Unauthorized));

    // A wrong credential is refused before the upgrade.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
        "{}/bridge/ws",
        backend.url.replacen("http://", "ws://", 1)
    ))?;
    req.headers_mut().insert("authorization", "Bearer pbc_forged".parse()?);
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
    Ok(())
}

#[tokio::test]
async fn a_bridge_too_old_for_the_backend_is_named_on_the_dashboard_until_it_connects() -> anyhow::Result<()> {
    use porta_shared::ErrorCode;
    let backend = Backend::start(&[]).await?;
    let mut bridge = porta_e2e::Bridge::enroll(&backend, &[]).await?;
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&bridge.config)?)?;
    let credential = config["credential"].as_str().unwrap_or_default();
    let api = Api::login(&backend.url, "admin", ADMIN_PASSWORD).await?;
    let needed = || async {
        let v = api.graphql("{ servers { online version updateNeeded } }", json!({})).await?;
        anyhow::Ok(v["data"]["servers"][0].clone())
    };
    assert_eq!(needed().await?["updateNeeded"], serde_json::Value::Null);

    // The enrolled server's bridge comes back speaking only a protocol older than ours.
    let url = format!("{}/bridge/ws", backend.url.replacen("http://", "ws://", 1));
    let mut ws = porta_e2e::Ws::connect_as_bridge(&url, credential).await?;
    ws.send_text(hello(0, 0)).await?;
    let e = ws.wait_error(Duration::from_secs(10)).await?;
    assert_eq!(e.code, ErrorCode::UnsupportedVersion);
    let s = needed().await?;
    assert_eq!(s["online"], false);
    let why = s["updateNeeded"].as_str().unwrap_or_default();
    assert!(why.contains("older than this Porta") && why.contains("Add server"), "{s}");
    assert_eq!(s["version"], serde_json::Value::Null, "test-bridge/0 is no porta-bridge version: {s}");

    // Once a bridge that speaks it connects, the notice is gone.
    bridge.run(&[])?;
    api.wait_server_online(true, Duration::from_secs(20)).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while needed().await?["updateNeeded"] != serde_json::Value::Null {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{}", needed().await?);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

type Forged = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A bridge forged with the real credential of a server enrolled on a new backend (as a
/// compromised server could), its receive buffer `recv_buffer` bytes when given; it has said
/// hello (and must keep talking: silent for three heartbeats, 1 s here, it is let go). With
/// the backend, the admin's API and the server's id.
async fn forged_bridge(recv_buffer: Option<u32>) -> anyhow::Result<(Forged, Backend, Api, String)> {
    use futures_util::SinkExt as _;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

    let backend = Backend::start(&[]).await?;
    // Signed in first: a bridge silent for three heartbeats (1 s here) is let go, and the
    // sign-in's hashing may take that long on a busy machine.
    let api = Api::login(&backend.url, "admin", ADMIN_PASSWORD).await?;
    let bridge = porta_e2e::Bridge::enroll(&backend, &[]).await?;
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&bridge.config)?)?;
    let (credential, server) = (config["credential"].as_str().unwrap_or_default(), config["server_id"].as_str());
    let server = server.unwrap_or_default().to_owned();
    let mut req = format!("{}/bridge/ws", backend.url.replacen("http://", "ws://", 1)).into_client_request()?;
    req.headers_mut().insert("authorization", format!("Bearer {credential}").parse()?);
    let addr: std::net::SocketAddr = backend.url.trim_start_matches("http://").parse()?;
    let tcp = tokio::net::TcpSocket::new_v4()?;
    if let Some(size) = recv_buffer {
        tcp.set_recv_buffer_size(size)?;
    }
    let (mut forged, _) = tokio_tungstenite::client_async(req, tcp.connect(addr).await?).await?;
    forged.send(Message::text(hello(1, porta_shared::version::PROTOCOL_VERSION))).await?;
    Ok((forged, backend, api, server))
}

/// A bridge that stops reading (a frozen process whose TCP still answers) fills what the
/// backend may send it: the backend's end of the link waited in that send for ever (no
/// heartbeat fires mid-send), and the server looked online while nothing reached it. The
/// link is let go within three heartbeats (1 s here), and the server shows offline.
#[tokio::test]
async fn a_bridge_that_stops_reading_is_let_go() -> anyhow::Result<()> {
    use porta_shared::bridge::FsWrite;
    use porta_shared::types::Base64;

    // A receive buffer of 4 KiB: once it stops reading, it holds almost nothing. It never
    // reads, and keeps talking (pings), so only the send that cannot finish can end it.
    let (frozen, _backend, api, server) = forged_bridge(Some(4096)).await?;
    let (pinger, _not_read) = porta_e2e::client::ping_without_reading(frozen);
    api.wait_server_online(true, Duration::from_secs(20)).await?;

    // Saves of 700 KiB each (a request is at most 1 MiB of text), more than the sockets'
    // buffers hold, which the bridge never reads.
    let mut tab = api.ws().await?;
    for i in 0..16 {
        let save = porta_shared::client::OnServer {
            server: server.clone(),
            req: FsWrite {
                path: format!("big-{i}.bin"),
                data: Base64(vec![b'x'; 700 << 10]),
                expected_sha256: None,
                create_new: false,
                mode: None,
            },
        };
        let id = format!("save-{i}");
        tab.send_text(porta_shared::Envelope::<porta_shared::client::ClientRequest>::request(id, save).encode())
            .await?;
    }
    api.wait_server_online(false, Duration::from_secs(20)).await.context("the server still looks online")?;
    pinger.abort();
    Ok(())
}

/// A compromised server's bridge that ignores the windows: it floods a terminal's stream
/// before answering the request that opened it. The backend holds at most a queue's worth for
/// the tab (64 MiB) and then lets the tab go (a page reconnects and resumes) instead of
/// buffering whatever the bridge sends until the request times out.
#[tokio::test]
async fn a_bridge_that_floods_a_stream_before_answering_has_the_tab_let_go() -> anyhow::Result<()> {
    use futures_util::{SinkExt as _, StreamExt as _};
    use porta_shared::frame::{Frame, FrameKind};
    use tokio_tungstenite::tungstenite::Message;

    let (mut forged, _backend, api, server) = forged_bridge(None).await?;
    api.wait_server_online(true, Duration::from_secs(20)).await?;

    // The tab asks for a terminal; the forged bridge never answers, and floods its stream.
    let mut tab = api.ws().await?;
    let open = porta_e2e::client::term_open(&server);
    tab.send_text(porta_shared::Envelope::<porta_shared::client::ClientRequest>::request("t", open).encode()).await?;
    let stream = loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), forged.next()).await?.context("closed")??;
        let Message::Text(text) = msg else { continue };
        let v: serde_json::Value = serde_json::from_str(&text)?;
        if v["type"] == "term.open" {
            break u32::try_from(v["body"]["stream"].as_u64().context("no stream")?)?;
        }
    };
    let chunk = vec![b'x'; 64 * 1024];
    let flood = async {
        for i in 0..1100u64 {
            let frame = Frame::new(FrameKind::TermOutput, stream, i * chunk.len() as u64, &chunk).encode();
            if forged.send(Message::binary(frame)).await.is_err() {
                break;
            }
        }
        forged
    };
    let (forged, closed) = tokio::join!(flood, tokio::time::timeout(Duration::from_secs(30), tab.wait_closed()));
    assert!(closed.is_ok(), "the tab was still held 30 s after the bridge sent 68 MiB it was not asked for");
    drop(forged);
    Ok(())
}
