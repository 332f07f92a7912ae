//! `/bridge/ws`: where bridge daemons dial in. Handshake, enrolment, and one task per
//! connected bridge that relays requests, replies, events and stream frames.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, ORIGIN};
use axum::response::Response;
use porta_shared::bridge::{
    self, BridgeEvent, BridgeHandshake, BridgeRequest, Enroll, Enrolled, Hello, HubHandshake, SysInfo, SysInfoRequest,
    Welcome,
};
use porta_shared::frame::Frame;
use porta_shared::types::StreamId;
use porta_shared::{DecodeError, Envelope, ErrorBody, ErrorCode, Incoming, ProtocolRange, Reply};
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{broadcast, oneshot};

use super::{MAX_WS_MESSAGE, READ_BUFFER};
use crate::auth::tokens::{hash_secret, random_secret};
use crate::bus::{ClientId, Departure, ReplyResult, Route, ToBridge, ToClient};
use crate::db::{AuditEvent, Server, ServerFacts};
use crate::error::{Error, Result};
use crate::state::AppState;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

pub async fn bridge_ws(State(state): State<AppState>, headers: HeaderMap, ws: WebSocketUpgrade) -> Result<Response> {
    // Bridges are not browsers: a request carrying an Origin is a cross-site attempt.
    if headers.contains_key(ORIGIN) {
        return Err(Error::Forbidden("bridges do not send an Origin header".into()));
    }
    let server = credential_holder(&state, &headers).await?;
    Ok(ws
        .max_message_size(MAX_WS_MESSAGE)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| run(socket, state, server)))
}

/// The server whose bridge credential the request carries (`None`: it carries none).
async fn credential_holder(state: &AppState, headers: &HeaderMap) -> Result<Option<Server>> {
    let Some(v) = headers.get(AUTHORIZATION) else { return Ok(None) };
    let credential = v
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| Error::Unauthorized("the Authorization header must be `Bearer <credential>`".into()))?;
    let server = state.store.server_by_credential(&hash_secret(credential.trim())).await?;
    Ok(Some(server.ok_or_else(|| Error::Unauthorized("unknown or revoked bridge credential".into()))?))
}

#[derive(serde::Deserialize)]
pub struct DownloadQuery {
    arch: String,
}

/// `/bridge/download?arch=…`: the bridge this backend carries for `arch`, as binary messages
/// of 64 KiB, for a bridge updating itself (`bridge.update`) with its own credential. A
/// WebSocket, so it takes the link's way (proxies, TLS) with the client the bridge has.
pub async fn bridge_download(
    State(state): State<AppState>,
    headers: HeaderMap,
    crate::http::AppQuery(q): crate::http::AppQuery<DownloadQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response> {
    if headers.contains_key(ORIGIN) {
        return Err(Error::Forbidden("bridges do not send an Origin header".into()));
    }
    credential_holder(&state, &headers)
        .await?
        .ok_or_else(|| Error::Unauthorized("a bridge credential is needed (Authorization: Bearer …)".into()))?;
    let carried = state
        .downloads
        .bridge(&q.arch)
        .await?
        .ok_or_else(|| Error::NotFound(format!("this Porta carries no bridge for {}", q.arch)))?;
    Ok(ws.on_upgrade(move |socket| send_file(socket, carried.path)))
}

async fn send_file(mut socket: WebSocket, path: std::path::PathBuf) {
    use tokio::io::AsyncReadExt as _;
    let Ok(mut file) = tokio::fs::File::open(&path).await else {
        tracing::warn!(path = %path.display(), "a carried bridge could not be opened");
        return;
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                if socket.send(Message::Binary(buf[..n].to_vec().into())).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading a carried bridge failed");
                return;
            }
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

async fn recv_text(socket: &mut WebSocket, within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, socket.recv()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(t.to_string()),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Binary(_)))) => continue,
            _ => return None,
        }
    }
}

async fn refuse(socket: &mut WebSocket, id: Option<&str>, err: ErrorBody) {
    let _ = socket.send(Message::text(Reply::error(id, &err))).await;
    let _ = socket.send(Message::Close(None)).await;
}

async fn run(mut socket: WebSocket, state: AppState, server: Option<Server>) {
    let Some(text) = recv_text(&mut socket, HANDSHAKE_TIMEOUT).await else {
        return;
    };
    let hello = match Envelope::<BridgeHandshake>::decode(&text) {
        Ok(Envelope { msg: BridgeHandshake::Hello(h), .. }) => h,
        Ok(env) => {
            let err = ErrorBody::new(ErrorCode::BadRequest, "the first message must be hello");
            return refuse(&mut socket, env.id.as_deref(), err).await;
        }
        Err(e) => return refuse(&mut socket, e.request_id(), e.to_error_body()).await,
    };
    let Some(protocol) = ProtocolRange::ours().negotiate(hello.protocol) else {
        let ours = ProtocolRange::ours();
        let err = ErrorBody::new(
            ErrorCode::UnsupportedVersion,
            format!(
                "this backend speaks protocol {}..={}, the bridge {}..={}; upgrade the older side",
                ours.min, ours.max, hello.protocol.min, hello.protocol.max
            ),
        );
        // An enrolled bridge's people learn it from the dashboard, not from its log.
        if let Some(server) = &server {
            let why = if hello.protocol.max < ours.min {
                "its bridge is older than this Porta speaks: run the line from \"Add server\" on it again"
            } else {
                "its bridge is newer than this Porta: update Porta"
            };
            let _ = state.store.server_refused(&server.id, &hello.agent, why).await;
        }
        return refuse(&mut socket, None, err).await;
    };
    let welcome = Welcome {
        protocol,
        agent: format!("porta/{}", env!("CARGO_PKG_VERSION")),
        server_id: server.as_ref().map(|s| s.id.clone()),
        heartbeat_ms: state.config.heartbeat_ms,
    };
    if socket.send(Message::text(Envelope::<HubHandshake>::event(welcome).encode())).await.is_err() {
        return;
    }
    match server {
        None => enrol(socket, state).await,
        Some(server) => serve(socket, state, server, hello).await,
    }
}

/// A connection without a credential may do one thing: exchange an enrolment token.
async fn enrol(mut socket: WebSocket, state: AppState) {
    let Some(text) = recv_text(&mut socket, HANDSHAKE_TIMEOUT).await else {
        return;
    };
    let not_enrolled = || ErrorBody::new(ErrorCode::Unauthorized, "present a credential, or enrol with a token first");
    let (id, req) = match Envelope::<BridgeHandshake>::decode(&text) {
        Ok(Envelope { id: Some(id), msg: BridgeHandshake::Enroll(req) }) => (id, req),
        Ok(env) => return refuse(&mut socket, env.id.as_deref(), not_enrolled()).await,
        // Any other request (a serving bridge's, say) needs a credential first.
        Err(DecodeError::UnknownType { id, .. }) => return refuse(&mut socket, id.as_deref(), not_enrolled()).await,
        Err(e) => return refuse(&mut socket, e.request_id(), e.to_error_body()).await,
    };
    let Enroll { token, hostname } = req;
    let hostname: String = hostname.chars().filter(|c| !c.is_control()).take(128).collect();
    let credential = random_secret("pbc");
    let enrolled = state.store.enroll_server(&hash_secret(&token), &hostname, &hash_secret(&credential)).await;
    match enrolled {
        Ok(Some(server)) => {
            tracing::info!(server_id = %server.id, name = %server.name, "bridge enrolled");
            state
                .store
                .audit(
                    AuditEvent::new(&format!("server:{}", server.id), "server.enroll")
                        .target(&server.id)
                        .detail(format!("hostname {hostname}"))
                        .server(&server.id),
                )
                .await;
            let body = Enrolled { server_id: server.id, name: server.name, credential };
            let _ = socket.send(Message::text(Reply::ok(&id, &body))).await;
            let _ = socket.send(Message::Close(None)).await;
        }
        Ok(None) => {
            state
                .store
                .audit(AuditEvent::new("anonymous", "server.enroll").ok(false).detail(format!("hostname {hostname}")))
                .await;
            let err =
                ErrorBody::new(ErrorCode::Unauthorized, "the enrolment token is unknown, already used or expired");
            refuse(&mut socket, Some(&id), err).await;
        }
        Err(e) => {
            tracing::error!(error = %e, "enrolment failed");
            refuse(&mut socket, Some(&id), ErrorBody::new(ErrorCode::Internal, "internal error")).await;
        }
    }
}

/// Relays for one connected bridge until it leaves, goes silent, or is replaced.
async fn serve(mut socket: WebSocket, state: AppState, server: Server, hello: Hello) {
    let bus = state.bus.clone();
    let (conn, mut inbox) = bus.register_bridge(&server.id, &hello.instance, &hello.agent);
    tracing::info!(server_id = %server.id, conn, agent = %hello.agent, "bridge connected");
    state.metrics.bridges_connected.inc();
    let facts = ServerFacts { agent: hello.agent.clone(), ..ServerFacts::default() };
    if let Err(e) = state.store.server_seen(&server.id, Some(&facts)).await {
        tracing::warn!(error = %e, "cannot record the bridge's visit");
    }
    tokio::spawn(learn_facts(state.clone(), server.id.clone(), hello.agent.clone()));

    let heartbeat = Duration::from_millis(state.config.heartbeat_ms);
    let mut ping = tokio::time::interval(heartbeat);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let mut next_id = 1u64;
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    let mut routes = Routes { map: HashMap::new(), gauge: state.metrics.streams_open.clone() };
    // Replicas that went away: their clients' streams are closed on the bridge.
    let mut departures = bus.departures();

    let reason = 'link: loop {
        tokio::select! {
            msg = socket.recv() => {
                last_heard = Instant::now();
                match msg {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break "the bridge disconnected".to_owned(),
                    Some(Ok(Message::Binary(bytes))) => relay_frame(&state, &routes, bytes),
                    Some(Ok(Message::Text(text))) => {
                        on_text(&state, &server.id, &mut pending, &mut routes, &text);
                    }
                    Some(Ok(_)) => {}
                }
            }
            cmd = inbox.recv() => {
                // What else is queued goes out in the same write (up to a bound): a busy link
                // (previews' requests, many terminals' keys) pays one system call for many.
                // A bridge that stopped reading (a frozen process whose TCP still answers)
                // fills what may be sent to it, and no heartbeat fires while this waits: each
                // message (at most 1 MiB) and the flush must be written within `stuck`, not the
                // whole batch (a link slower than about 300 kbit/s is cut off by a 1 MiB save).
                let (stuck, started) = (heartbeat * 3, Instant::now());
                let too_long = || format!("the bridge took nothing sent to it for {stuck:?}");
                let (mut cmd, mut ended) = (cmd, None);
                for _ in 0..BATCH {
                    let Some(c) = cmd.take() else {
                        ended = Some("the bus closed".to_owned());
                        break;
                    };
                    let sent = to_bridge(&state, &mut socket, &mut pending, &mut routes, &mut next_id, c);
                    match tokio::time::timeout(stuck, sent).await {
                        Ok(Ok(())) => {}
                        Ok(Err(why)) => {
                            ended = Some(why);
                            break;
                        }
                        Err(_) => break 'link too_long(),
                    }
                    match inbox.try_recv() {
                        Ok(c) => cmd = Some(c),
                        Err(_) => break,
                    }
                }
                // (Also when ending: a replaced or revoked bridge gets its error and close.)
                let flushed = tokio::time::timeout(stuck, futures_util::SinkExt::flush(&mut socket)).await;
                match (ended, flushed) {
                    (Some(why), _) => break why,
                    (None, Err(_)) => break too_long(),
                    (None, Ok(Err(_))) => break "send to the bridge failed".to_owned(),
                    // Nothing was read while this wrote: that time is not the bridge's silence.
                    (None, Ok(Ok(()))) => last_heard += started.elapsed(),
                }
            }
            gone = departures.recv() => match gone {
                Ok(gone) => {
                    let mut sent = true;
                    for (stream, kind) in routes.close_departed(gone) {
                        let (reply, _) = oneshot::channel();
                        pending.insert(next_id, Pending { reply, opens: None });
                        let text = Envelope::<BridgeRequest>::request(next_id.to_string(), kind.close(stream)).encode();
                        next_id += 1;
                        let send = tokio::time::timeout(heartbeat * 3, socket.send(Message::text(text)));
                        sent = sent && matches!(send.await, Ok(Ok(())));
                    }
                    if !sent {
                        break "send to the bridge failed".to_owned();
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => departures = broadcast::channel(1).1,
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > heartbeat * 3 {
                    break format!("the bridge was silent for {:?}", last_heard.elapsed());
                }
                let ping = socket.send(Message::Ping(Default::default()));
                if !matches!(tokio::time::timeout(heartbeat * 3, ping).await, Ok(Ok(()))) {
                    break "ping failed".to_owned();
                }
                state.seen.mark(&server.id);
            }
        }
    };
    // Closed at once (the close it owes a bridge that closed was queued on receipt): a
    // bridge closing for an upgrade reads until this end is gone.
    drop(socket);
    // A tunnel's connection ends with the link that carried it: its user hears so now.
    for (stream, client) in routes.take_tunnels() {
        let error = Some(ErrorBody::new(ErrorCode::ServerOffline, "the server's bridge disconnected"));
        let closed = porta_shared::ports::TunnelClosed { stream, error };
        bus.to_client(client, ToClient::Event(BridgeEvent::TunnelClosed(closed)));
    }
    bus.unregister_bridge(&server.id, conn);
    state.metrics.bridges_connected.dec();
    // Pending requests resolve as `server_offline` when their senders drop here.
    drop(pending);
    let _ = state.store.server_seen(&server.id, None).await;
    tracing::info!(server_id = %server.id, conn, %reason, "bridge disconnected");
}

/// The most of a bridge's queue written at once.
const BATCH: usize = 64;

/// Writes one of the bus's commands for the bridge (unflushed: the caller flushes); the reason
/// the link must end, if it must.
async fn to_bridge(
    state: &AppState,
    socket: &mut WebSocket,
    pending: &mut HashMap<u64, Pending>,
    routes: &mut Routes,
    next_id: &mut u64,
    cmd: ToBridge,
) -> std::result::Result<(), String> {
    use futures_util::SinkExt as _;
    let failed = |_| "send to the bridge failed".to_owned();
    match cmd {
        ToBridge::Close(why) => {
            let _ = socket.feed(Message::text(Reply::error(None, &why))).await;
            let _ = socket.feed(Message::Close(None)).await;
            Err(why.message)
        }
        ToBridge::Frame(bytes) => {
            state.metrics.frames_to_bridges.inc();
            state.metrics.bytes_to_bridges.inc_by(bytes.len().saturating_sub(porta_shared::frame::HEADER_LEN) as u64);
            socket.feed(Message::Binary(bytes)).await.map_err(failed)
        }
        ToBridge::Request { req, route, reply } => {
            let id = *next_id;
            *next_id += 1;
            let opens = match route {
                Route::Open(stream, client) => {
                    if routes.get(stream).is_some_and(|c| c != client) {
                        // Another client's stream (an id met again): its output must not
                        // reach this one, nor its route be lost to this refusal.
                        let why = format!("stream {stream} is already in use");
                        let _ = reply.send(Err(ErrorBody::new(ErrorCode::BadRequest, why)));
                        return Ok(());
                    }
                    routes.open(stream, client, RouteKind::of(&req));
                    Some(stream)
                }
                Route::Close(stream) => {
                    routes.close(stream);
                    None
                }
                Route::None => None,
            };
            pending.insert(id, Pending { reply, opens });
            let text = Envelope::<BridgeRequest>::request(id.to_string(), req).encode();
            socket.feed(Message::text(text)).await.map_err(failed)
        }
    }
}

/// A request relayed to the bridge, waiting for its reply.
struct Pending {
    reply: oneshot::Sender<ReplyResult>,
    /// The stream the request opens, routed before the reply so no early output is lost.
    opens: Option<StreamId>,
}

/// What a routed stream is, to close it on the bridge when its client's replica is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteKind {
    Term,
    Exec,
    Watch,
    Tunnel,
}

impl RouteKind {
    fn of(req: &BridgeRequest) -> Self {
        match req {
            BridgeRequest::ExecStart(_) => Self::Exec,
            BridgeRequest::FsWatch(_) => Self::Watch,
            BridgeRequest::TunnelOpen(_) => Self::Tunnel,
            _ => Self::Term,
        }
    }

    /// The request that ends `stream` on the bridge: a terminal is detached (it keeps
    /// running), a command cancelled, a watch ended.
    fn close(self, stream: StreamId) -> BridgeRequest {
        match self {
            Self::Term => bridge::TermDetach { stream }.into(),
            Self::Exec => bridge::ExecCancel { stream }.into(),
            Self::Watch => bridge::FsUnwatch { stream }.into(),
            Self::Tunnel => porta_shared::ports::TunnelClose { stream }.into(),
        }
    }
}

/// Which browser socket each bridge stream's output goes to; keeps the streams gauge in step.
struct Routes {
    map: HashMap<StreamId, (ClientId, RouteKind)>,
    gauge: Gauge,
}

impl Routes {
    fn open(&mut self, stream: StreamId, client: ClientId, kind: RouteKind) {
        if self.map.insert(stream, (client, kind)).is_none() {
            self.gauge.inc();
        }
    }

    fn close(&mut self, stream: StreamId) -> Option<ClientId> {
        let client = self.map.remove(&stream).map(|(c, _)| c);
        if client.is_some() {
            self.gauge.dec();
        }
        client
    }

    fn get(&self, stream: StreamId) -> Option<ClientId> {
        self.map.get(&stream).map(|(c, _)| *c)
    }

    /// Forgets the tunnels (they end with the link); their streams and clients.
    fn take_tunnels(&mut self) -> Vec<(StreamId, ClientId)> {
        let tunnels: Vec<(StreamId, ClientId)> =
            self.map.iter().filter(|(_, (_, k))| *k == RouteKind::Tunnel).map(|(s, (c, _))| (*s, *c)).collect();
        for (stream, _) in &tunnels {
            self.close(*stream);
        }
        tunnels
    }

    /// Forgets the streams of the clients of a replica's run that went; what they were.
    fn close_departed(&mut self, departure: Departure) -> Vec<(StreamId, RouteKind)> {
        let gone: Vec<(StreamId, RouteKind)> =
            self.map.iter().filter(|(_, (c, _))| departure.handed_out(*c)).map(|(s, (_, k))| (*s, *k)).collect();
        for (stream, _) in &gone {
            self.close(*stream);
        }
        gone
    }
}

impl Drop for Routes {
    fn drop(&mut self) {
        self.gauge.dec_by(self.map.len() as i64);
    }
}

fn relay_frame(state: &AppState, routes: &Routes, bytes: bytes::Bytes) {
    let Ok(frame) = Frame::decode(&bytes) else {
        return tracing::debug!("dropped a malformed frame from a bridge");
    };
    let Some(client) = routes.get(frame.stream) else {
        return;
    };
    state.metrics.frames_to_clients.inc();
    state.metrics.bytes_to_clients.inc_by(frame.payload.len() as u64);
    state.bus.to_client(client, ToClient::Frame(bytes));
}

fn on_text(state: &AppState, server: &str, pending: &mut HashMap<u64, Pending>, routes: &mut Routes, text: &str) {
    match Incoming::<BridgeEvent>::decode(text) {
        Ok(Incoming::Reply(reply)) => {
            let waiter = reply.id.as_deref().and_then(|id| id.parse::<u64>().ok()).and_then(|id| pending.remove(&id));
            match waiter {
                Some(p) => {
                    // A stream that failed to open will carry nothing.
                    if let (Some(stream), Err(_)) = (p.opens, &reply.result) {
                        routes.close(stream);
                    }
                    let _ = p.reply.send(reply.result);
                }
                None => tracing::debug!(id = ?reply.id, "a reply nobody waits for"),
            }
        }
        Ok(Incoming::Message(Envelope { msg: BridgeEvent::SysSample(sample), .. })) => {
            state.telemetry.ingest(server, sample);
        }
        Ok(Incoming::Message(env)) => {
            let client = match &env.msg {
                // The stream is over after these events.
                BridgeEvent::TermExited(e) => routes.close(e.stream),
                BridgeEvent::ExecExited(e) => routes.close(e.stream),
                BridgeEvent::TunnelClosed(e) => routes.close(e.stream),
                // A watch goes on until it is unwatched.
                BridgeEvent::FsChanged(e) => routes.get(e.stream),
                BridgeEvent::SysSample(_) => None,
            };
            if let Some(client) = client {
                state.bus.to_client(client, ToClient::Event(env.msg));
            }
        }
        Err(e) => tracing::debug!(error = %e, "dropped a malformed message from a bridge"),
    }
}

/// Asks a newly connected bridge about its machine, for the dashboard.
async fn learn_facts(state: AppState, server: String, agent: String) {
    let reply = state.bus.request(&server, SysInfoRequest {}.into(), Route::None);
    let Ok(Ok(raw)) = tokio::time::timeout(Duration::from_secs(30), reply).await else {
        return;
    };
    let Ok(info) = serde_json::from_str::<SysInfo>(raw.get()) else {
        return;
    };
    let facts = ServerFacts {
        agent,
        os: Some(format!("{} {}", info.os, info.os_version).trim().to_owned()),
        kernel: Some(info.kernel),
        arch: Some(info.arch),
        hostname: Some(info.hostname),
    };
    if let Err(e) = state.store.server_seen(&server, Some(&facts)).await {
        tracing::warn!(error = %e, "cannot record the server's facts");
    }
}
