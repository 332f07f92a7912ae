//! Many bridges at once: lightweight simulated ones that enrol, connect and stay, to measure
//! what each costs the backend.

use std::time::Duration;

use anyhow::{Context as _, bail};
use futures_util::{SinkExt, StreamExt};
use porta_e2e::{ADMIN_PASSWORD, Api, Stack};
use porta_shared::bridge::{BridgeHandshake, Enroll, Enrolled, Hello};
use porta_shared::{Envelope, ErrorBody, ErrorCode, Incoming, ProtocolRange, Reply};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::{Row, SIM_BRIDGES, row, rss_kib};

/// A lightweight bridge: enrols, connects, says hello, then only answers pings and refuses
/// requests. Returns the task keeping it connected.
pub(crate) async fn sim_bridge(base: &str, token: String) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let (ws, _) = sim_connect(base, token).await?;
    Ok(tokio::spawn(sim_serve(ws, None)))
}

pub(crate) type SimWs = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Enrols a simulated bridge and connects it with its credential; its server id.
pub(crate) async fn sim_connect(base: &str, token: String) -> anyhow::Result<(SimWs, String)> {
    let url = format!("{}/bridge/ws", base.replacen("http://", "ws://", 1));
    let hello = Envelope::<BridgeHandshake>::event(Hello {
        protocol: ProtocolRange::ours(),
        agent: "sim-bridge/0".into(),
        instance: uuid::Uuid::new_v4().to_string(),
        capabilities: vec![],
    })
    .encode();
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    ws.send(Message::text(hello.clone())).await?;
    ws.next().await.context("no welcome")??;
    ws.send(Message::text(
        Envelope::<BridgeHandshake>::request("e", Enroll { token, hostname: "sim".into() }).encode(),
    ))
    .await?;
    let Some(Ok(Message::Text(t))) = ws.next().await else { bail!("no enrolment reply") };
    let Ok(Incoming::<BridgeHandshake>::Reply(reply)) = Incoming::decode(&t) else { bail!("bad enrolment reply") };
    let enrolled: Enrolled = reply.into_response::<Enroll>().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut req = url.into_client_request()?;
    req.headers_mut().insert("authorization", format!("Bearer {}", enrolled.credential).parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    ws.send(Message::text(hello)).await?;
    Ok((ws, enrolled.server_id))
}

/// Answers every request with an error, and sends `sample` every `.1` when given (first
/// after `.0`, to spread many bridges over the interval).
pub(crate) async fn sim_serve(mut ws: SimWs, report: Option<(Duration, Duration, String)>) {
    let (first, every, sample) = match report {
        Some((first, every, sample)) => (first, every, Some(sample)),
        None => (Duration::from_secs(3600), Duration::from_secs(3600), None),
    };
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + first, every);
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if let Some(answer) = refusal(&t) {
                        let _ = ws.send(Message::text(answer)).await;
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
            _ = tick.tick(), if sample.is_some() => {
                if let Some(s) = &sample {
                    if ws.send(Message::text(s.clone())).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// What a simulated bridge answers a request (`text`): that it is one; `None` for anything
/// that is not a request.
pub(crate) fn refusal(text: &str) -> Option<String> {
    let id = Envelope::<porta_shared::bridge::BridgeRequest>::decode(text).ok()?.id?;
    Some(Reply::error(Some(&id), &ErrorBody::new(ErrorCode::Unavailable, "simulated bridge")))
}

pub(crate) async fn enrollment_token(api: &Api) -> anyhow::Result<String> {
    let v = api.graphql("mutation { createEnrollmentToken { token } }", serde_json::json!({})).await?;
    v["data"]["createEnrollmentToken"]["token"].as_str().map(str::to_owned).with_context(|| format!("{v}"))
}

/// Backend memory per idle bridge, with 1000 simulated bridges connected.
pub(crate) async fn idle_bridges(stack: &Stack, bpid: u32, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let api = Api::login(&stack.backend.url, "admin", ADMIN_PASSWORD).await?;
    let mut tokens = Vec::with_capacity(SIM_BRIDGES);
    for _ in 0..SIM_BRIDGES {
        tokens.push(enrollment_token(&api).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(bpid);
    let mut sims = Vec::with_capacity(SIM_BRIDGES);
    for token in tokens {
        sims.push(sim_bridge(&stack.backend.url, token).await?);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let online = api.servers().await?.iter().filter(|s| s["online"].as_bool() == Some(true)).count();
    let per_bridge = rss_kib(bpid).saturating_sub(before) as f64 / SIM_BRIDGES as f64;
    rows.push(row(
        "backend memory per idle bridge (1000)",
        format!("{per_bridge:.1} KiB ({online} online)"),
        "-",
        "<= 64 KiB",
    ));
    for s in sims {
        s.abort();
    }
    Ok(())
}
