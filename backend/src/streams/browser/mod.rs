//! `/api/ws`: one browser tab's stream socket.
//!
//! The session owns the tab's streams. A stream's id comes from the bus, so it is unique
//! among everything the bus routes: the browser and the bridge use the same id, and frames
//! pass through untouched (no copy, no rewrite). Requests are authorised against the user
//! before they are relayed; replies come back asynchronously and are matched to the tab's
//! own request ids.
//!
//! When a server's bridge drops, its terminal streams are *interrupted*, not closed: if the
//! same bridge process comes back, the session re-attaches each one after the last offset it
//! forwarded, so the tab sees the output continue with nothing lost or repeated.

mod requests;
mod streams;
mod table;
mod watches;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use porta_shared::bridge::{self, BridgeEvent, BridgeRequest, ExecStarted, TermAttached};
use porta_shared::client::{
    self, ClientEvent, ClientRequest, ExecOpened, StreamClosed, StreamInterrupted, StreamOpened, StreamResumed,
};
use porta_shared::envelope::MAX_TEXT_MESSAGE;
use porta_shared::frame::{Frame, FrameKind, HEADER_LEN, MAX_PAYLOAD};
use porta_shared::types::{ServerId, StreamId};
use porta_shared::{DecodeError, Envelope, ErrorBody, ErrorCode, Reply};
use serde::Deserialize;
use tokio::sync::broadcast;

use super::{MAX_WS_MESSAGE, READ_BUFFER};
use crate::auth::scopes::Access;
use crate::bus::{BoxFuture, ClientId, ConnId, Presence, ReplyResult, Route, ToClient};
use crate::db::User;
use crate::error::{Error, Result};
use crate::http::AppQuery;
use crate::state::AppState;
use crate::teams::Role;
use requests::{Caller, PendingAudit};
use streams::{Change, Kind, Phase, StreamState, Streams};

#[derive(Deserialize)]
pub struct TicketQuery {
    ticket: Option<String>,
}

pub async fn client_ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppQuery(q): AppQuery<TicketQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response> {
    crate::http::origin::check(&state.origins, &headers)?;
    let ticket =
        q.ticket.ok_or_else(|| Error::Unauthorized("open /api/ws with a ticket from /api/ws/ticket".into()))?;
    let crate::auth::AuthUser(user, access) = crate::auth::tickets::caller(&state.store, &ticket).await?;
    Ok(ws
        .max_message_size(MAX_WS_MESSAGE)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| Session::run(socket, state, user, access)))
}

/// What to do with a bridge's reply.
enum After {
    /// Relay it to the tab as-is.
    Forward,
    /// A process list: for a viewer, without command lines (they hold secrets: passwords and
    /// tokens passed as arguments).
    Processes { redact: bool },
    /// A container's settings: for a viewer, without its command line, label values and
    /// environment values (secrets live there as in a process's command line).
    Container { redact: bool },
    /// A `term.open`/`term.attach` reply: the stream is live.
    Opened(StreamId),
    /// The reply to an automatic re-attach after the bridge came back.
    Resumed(StreamId),
    /// An `exec.start` reply.
    ExecOpened(StreamId),
    /// An `fs.watch` reply.
    WatchOpened(StreamId),
}

struct Done {
    id: Option<String>,
    after: After,
    result: ReplyResult,
}

struct Session {
    state: AppState,
    caller: Caller,
    client: ClientId,

    streams: Streams,
    pending: FuturesUnordered<BoxFuture<Done>>,
    out: Vec<Message>,
    /// Conversations watched, each by a task relaying its events into `relayed`.
    chats: HashMap<String, tokio::task::JoinHandle<()>>,
    /// Servers whose telemetry is watched, each by a task relaying samples into `relayed`.
    metrics: HashMap<ServerId, tokio::task::JoinHandle<()>>,
    /// Servers whose role the tab follows (`access.watch`), with the role it was last told.
    followed: HashMap<ServerId, Role>,
    relayed: tokio::sync::mpsc::UnboundedSender<ClientEvent>,
    /// A stream's bridge sent more than a queue's worth before its reply: the tab is let go.
    overfull: bool,
}

fn err(code: ErrorCode, msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(code, msg)
}

impl Session {
    async fn run(mut socket: WebSocket, state: AppState, user: User, access: Access) {
        let (client, mut inbox) = state.bus.register_client();
        let mut presence = state.bus.presence();
        let mut access_changed = state.store.access_changes();
        state.metrics.client_sockets.inc();
        let (relayed, mut relayed_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut s = Session {
            state: state.clone(),
            caller: Caller { state: state.clone(), user, access },
            client,
            streams: Streams::default(),
            pending: FuturesUnordered::new(),
            out: Vec::new(),
            chats: HashMap::new(),
            metrics: HashMap::new(),
            followed: HashMap::new(),
            relayed,
            overfull: false,
        };
        let heartbeat = Duration::from_millis(state.config.heartbeat_ms);
        let mut ping = tokio::time::interval(heartbeat);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                msg = socket.recv() => {
                    last_heard = Instant::now();
                    match msg {
                        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                        Some(Ok(Message::Text(t))) => s.on_text(&t).await,
                        Some(Ok(Message::Binary(b))) => s.on_frame(b),
                        Some(Ok(_)) => {}
                    }
                }
                delivery = inbox.recv() => match delivery {
                    Some(delivery) => s.on_delivery(delivery),
                    // Off the bus (it let too much queue up): the tab reconnects and resumes.
                    None => break,
                },
                Some(done) = s.pending.next(), if !s.pending.is_empty() => s.on_done(done),
                Some(ev) = relayed_rx.recv() => s.event(ev),
                Ok(()) = access_changed.changed() => {
                    if !s.recheck_access().await {
                        // 1008: policy violation, with the reason for whoever reads it.
                        let reason = "the API token was revoked or has expired";
                        let frame = axum::extract::ws::CloseFrame { code: 1008, reason: reason.into() };
                        let _ = tokio::time::timeout(heartbeat, socket.send(Message::Close(Some(frame)))).await;
                        break;
                    }
                }
                p = presence.recv() => match p {
                    Ok(p) => s.on_presence(p),
                    Err(broadcast::error::RecvError::Lagged(_)) => s.resync_presence(),
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = ping.tick() => {
                    if last_heard.elapsed() > heartbeat * 3 {
                        break;
                    }
                    s.out.push(Message::Ping(Bytes::new()));
                }
            }
            if s.overfull {
                break;
            }
            // A tab that stopped reading (a frozen phone whose TCP still answers) fills what
            // may be sent to it: a send that waits as long as a silent tab may be heard from
            // ends the session, which no heartbeat could do mid-send.
            let (mut failed, started) = (false, Instant::now());
            for m in s.out.drain(..) {
                if !matches!(tokio::time::timeout(heartbeat * 3, socket.send(m)).await, Ok(Ok(()))) {
                    failed = true;
                    break;
                }
            }
            if failed {
                break;
            }
            // Nothing was read while this wrote: that time is not the tab's silence.
            last_heard += started.elapsed();
        }
        s.close_all();
        state.bus.unregister_client(client);
        state.metrics.client_sockets.dec();
    }

    fn reply(&mut self, id: Option<&str>, result: std::result::Result<impl serde::Serialize, ErrorBody>) {
        let text = match result {
            Ok(body) => match id {
                Some(id) => Reply::ok(id, &body),
                None => return,
            },
            Err(e) => Reply::error(id, &e),
        };
        self.out.push(Message::text(text));
    }

    fn event(&mut self, ev: impl Into<ClientEvent>) {
        self.out.push(Message::text(Envelope::<ClientEvent>::event(ev).encode()));
    }

    /// Sends `req` to `server`'s bridge; its reply is handled by `after`.
    fn relay(&mut self, id: Option<String>, server: &str, req: BridgeRequest, route: Route, after: After) {
        self.relay_audited(id, server, req, route, after, None);
    }

    /// Like [`Session::relay`]; with `audit`, the event is written with the bridge's outcome
    /// before the reply goes to the tab (whoever sees the reply finds the event).
    fn relay_audited(
        &mut self,
        id: Option<String>,
        server: &str,
        req: BridgeRequest,
        route: Route,
        after: After,
        audit: Option<PendingAudit>,
    ) {
        let reply = self.state.bus.request(server, req, route);
        let timeout = Duration::from_millis(self.state.config.request_timeout_ms);
        let state = self.state.clone();
        self.pending.push(Box::pin(async move {
            let result = tokio::time::timeout(timeout, reply).await.unwrap_or_else(|_| {
                Err(err(ErrorCode::Timeout, format!("the server did not answer within {timeout:?}")))
            });
            if let Some(audit) = audit {
                match &result {
                    Ok(_) => audit.write(&state, "ok", None).await,
                    Err(e) => audit.write(&state, &format!("failed: {}", e.code.as_str()), Some(&e.message)).await,
                }
            }
            Done { id, after, result }
        }));
    }

    async fn on_text(&mut self, text: &str) {
        if text.len() > MAX_TEXT_MESSAGE {
            let e = DecodeError::TooLarge { len: text.len() };
            return self.out.push(Message::text(e.to_reply()));
        }
        let env = match Envelope::<ClientRequest>::decode(text) {
            Ok(env) => env,
            Err(e) => return self.out.push(Message::text(e.to_reply())),
        };
        let Some(id) = env.id else {
            let e = DecodeError::Malformed("a request needs an id".into());
            return self.out.push(Message::text(e.to_reply()));
        };
        if let Err(e) = self.on_request(id.clone(), env.msg).await {
            self.reply(Some(&id), Err::<(), _>(e));
        }
    }

    fn on_frame(&mut self, bytes: Bytes) {
        if bytes.len() > HEADER_LEN + MAX_PAYLOAD {
            let e = err(ErrorCode::TooLarge, format!("a frame carries at most {MAX_PAYLOAD} bytes"));
            return self.reply(None, Err::<(), _>(e));
        }
        let frame = match Frame::decode(&bytes) {
            Ok(f) => f,
            Err(e) => {
                return self.reply(None, Err::<(), _>(err(ErrorCode::BadRequest, format!("malformed frame: {e}"))));
            }
        };
        if !matches!(frame.kind, FrameKind::TermInput | FrameKind::Ack | FrameKind::ExecStdin) {
            let e = err(ErrorCode::BadRequest, format!("a browser may not send {:?} frames", frame.kind));
            return self.reply(None, Err::<(), _>(e));
        }
        let Some(s) = self.streams.map.get(&frame.stream) else {
            let e = err(ErrorCode::UnknownStream, format!("no stream {} on this connection", frame.stream));
            return self.reply(None, Err::<(), _>(e));
        };
        if !s.may_type && matches!(frame.kind, FrameKind::TermInput | FrameKind::ExecStdin) {
            let e = err(ErrorCode::Forbidden, "viewers see terminals but cannot type into them");
            return self.reply(None, Err::<(), _>(e));
        }
        if !matches!(s.phase, Phase::Live) {
            return;
        }
        let server = s.server.clone();
        if !self.state.bus.send_frame(&server, bytes) && self.state.bus.connected(&server).is_some() {
            // (Offline: the stream's own event says so.) Online, the bridge is that far behind
            // reading what it is sent: this frame is dropped, and the page is told.
            self.reply(None, Err::<(), _>(crate::bus::behind(&server)));
        }
    }

    fn on_delivery(&mut self, delivery: ToClient) {
        match delivery {
            ToClient::Frame(bytes) => {
                let Ok(frame) = Frame::decode(&bytes) else { return };
                let Some(s) = self.streams.map.get_mut(&frame.stream) else { return };
                if !s.takes(&frame) {
                    return;
                }
                match &mut s.phase {
                    Phase::Opening { held, .. } => {
                        // A bridge sends at most a window before its reply; one that sends a
                        // whole queue's worth ignores it, and the tab is let go as the bus lets
                        // go of a client that lets too much queue up.
                        let holding = held.iter().map(|m| if let Message::Binary(b) = m { b.len() } else { 0 });
                        if holding.sum::<usize>() + bytes.len() > crate::bus::inbox::MAX_QUEUED {
                            self.overfull = true;
                        } else {
                            held.push(Message::Binary(bytes));
                        }
                    }
                    Phase::Live => self.out.push(Message::Binary(bytes)),
                    Phase::Interrupted => {}
                }
            }
            ToClient::Event(BridgeEvent::FsChanged(e)) => {
                // A watch's events keep the stream open.
                if self.streams.map.get(&e.stream).is_some_and(|s| s.kind == Kind::Watch) {
                    self.out.push(Message::text(Envelope::<ClientEvent>::event(ClientEvent::FsChanged(e)).encode()));
                }
            }
            ToClient::Event(ev) => {
                let (stream, event): (StreamId, ClientEvent) = match ev {
                    BridgeEvent::TermExited(e) => {
                        (e.stream, client::TermExited { stream: e.stream, term: e.term, exit: e.exit }.into())
                    }
                    BridgeEvent::ExecExited(e) => (
                        e.stream,
                        client::ExecExited {
                            stream: e.stream,
                            exit: e.exit,
                            timed_out: e.timed_out,
                            cancelled: e.cancelled,
                        }
                        .into(),
                    ),
                    // Handled above; a watch's events never end its stream.
                    BridgeEvent::FsChanged(_) => return,
                    // Samples reach tabs through the telemetry store, never on a stream.
                    BridgeEvent::SysSample(_) => return,
                    // Tunnels are the backend's own (previews), never a browser socket's.
                    BridgeEvent::TunnelClosed(_) => return,
                };
                let text = Message::text(Envelope::<ClientEvent>::event(event).encode());
                match self.streams.map.get_mut(&stream).map(|s| &mut s.phase) {
                    Some(Phase::Opening { held, ended }) => {
                        held.push(text);
                        *ended = true;
                    }
                    Some(_) => {
                        self.out.push(text);
                        self.streams.remove(stream);
                    }
                    None => {}
                }
            }
        }
    }

    fn on_done(&mut self, done: Done) {
        let Done { id, after, result } = done;
        let id = id.as_deref();
        match after {
            After::Forward | After::Processes { redact: false } | After::Container { redact: false } => {
                self.reply(id, result);
            }
            After::Container { redact: true } => {
                let details = result.and_then(|raw| {
                    serde_json::from_str::<porta_shared::docker::ContainerDetails>(raw.get())
                        .map_err(|e| ErrorBody::new(ErrorCode::Internal, format!("malformed container settings: {e}")))
                });
                self.reply(id, details.map(porta_shared::docker::ContainerDetails::redacted));
            }
            After::Processes { redact: true } => {
                let list = result.and_then(|raw| {
                    serde_json::from_str::<bridge::ProcessList>(raw.get())
                        .map_err(|e| ErrorBody::new(ErrorCode::Internal, format!("a malformed process list: {e}")))
                });
                self.reply(
                    id,
                    list.map(|mut l| {
                        for p in &mut l.processes {
                            p.command.clear();
                        }
                        l
                    }),
                );
            }

            After::Opened(stream) | After::Resumed(stream) | After::ExecOpened(stream) | After::WatchOpened(stream) => {
                let resumed = matches!(after, After::Resumed(_));
                let opened = result.and_then(|raw| self.opened(stream, &raw, &after));
                match opened {
                    Err(e) if resumed && matches!(e.code, ErrorCode::ServerOffline | ErrorCode::Timeout) => {
                        // The bridge went away again before the terminal re-attached: it stays
                        // interrupted, and re-attaches when the bridge is next online.
                        if let Some(s) = self.streams.map.get_mut(&stream) {
                            s.phase = Phase::Interrupted;
                        }
                    }
                    Err(e) => {
                        if self.streams.remove(stream).is_some() && resumed {
                            self.event(StreamClosed { stream, reason: e });
                        } else if !resumed {
                            self.reply(id, Err::<(), _>(e));
                        }
                    }
                    Ok(reply) => {
                        let record =
                            self.streams.map.get_mut(&stream).and_then(|s| Some((s.server.clone(), s.record.take()?)));
                        if let (Opened::Term(info, _), Some((server, workspace))) = (&reply, record) {
                            self.state.recorder.begin(
                                self.caller.access.actor(&self.caller.user.id),
                                &server,
                                &workspace,
                                info.term,
                                &info.shell,
                                info.size,
                            );
                        }
                        match reply {
                            Opened::Term(_, from) if resumed => self.event(StreamResumed { stream, from }),
                            Opened::Term(info, from) => {
                                let recorded = self.streams.map.get(&stream).is_some_and(|s| s.recorded);
                                self.reply(id, Ok(StreamOpened { stream, info, from, recorded }))
                            }
                            Opened::Exec(pid) => self.reply(id, Ok(ExecOpened { stream, pid })),
                            Opened::Watch(path) => self.reply(id, Ok(client::WatchOpened { stream, path })),
                        }
                        if let Some(s) = self.streams.map.get_mut(&stream) {
                            if let Phase::Opening { held, ended } = std::mem::replace(&mut s.phase, Phase::Live) {
                                self.out.extend(held);
                                if ended {
                                    self.streams.remove(stream);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Reads an opening reply and records what it says about the stream.
    fn opened(
        &mut self,
        stream: StreamId,
        raw: &serde_json::value::RawValue,
        after: &After,
    ) -> std::result::Result<Opened, ErrorBody> {
        let malformed =
            |e: serde_json::Error| err(ErrorCode::Internal, format!("malformed reply from the bridge: {e}"));
        let Some(s) = self.streams.map.get_mut(&stream) else {
            return Err(err(ErrorCode::UnknownStream, "the stream was closed while opening"));
        };
        match after {
            After::ExecOpened(_) => {
                let started: ExecStarted = serde_json::from_str(raw.get()).map_err(malformed)?;
                return Ok(Opened::Exec(started.pid));
            }
            After::WatchOpened(_) => {
                let watching: bridge::FsWatching = serde_json::from_str(raw.get()).map_err(malformed)?;
                return Ok(Opened::Watch(watching.path));
            }
            _ => {}
        }
        let attached: TermAttached = serde_json::from_str(raw.get()).map_err(malformed)?;
        s.kind = Kind::Term(attached.info.term);
        // Output may have come ahead of this reply (it is held until now, and already moved
        // `next` past it): a later re-attach must resume after that, not from here again.
        s.next = s.next.max(attached.from);
        Ok(Opened::Term(attached.info, attached.from))
    }

    fn on_presence(&mut self, p: Presence) {
        let changes = match p {
            Presence::Offline { server, conn } => self.streams.went_offline(&server, conn),
            Presence::Online { server, conn, instance } => self.streams.came_online(&server, conn, &instance),
        };
        for change in changes {
            match change {
                Change::Interrupted(stream) => {
                    let reason = err(ErrorCode::ServerOffline, "the server went offline");
                    self.event(StreamInterrupted { stream, reason });
                }
                Change::Closed(stream, reason) => self.event(StreamClosed { stream, reason }),
                Change::Reattach { stream, server, term, after, detach_first } => {
                    if detach_first {
                        // Sent before the attach, on the same way to the bridge: it arrives first.
                        let detach = bridge::TermDetach { stream }.into();
                        tokio::spawn(self.state.bus.request(&server, detach, Route::Close(stream)));
                    }
                    // The same stream id serves on the new connection: it is unique on the bus.
                    let req = bridge::TermAttach { term, stream, after };
                    self.relay(None, &server, req.into(), Route::Open(stream, self.client), After::Resumed(stream));
                }
            }
        }
    }

    /// After missing presence events, compares every stream with where its server is now.
    fn resync_presence(&mut self) {
        let servers: Vec<(ServerId, ConnId)> = self.streams.map.values().map(|s| (s.server.clone(), s.conn)).collect();
        for (server, conn) in servers {
            match self.state.bus.connected(&server) {
                Some(c) if c.conn == conn => {}
                Some(c) => self.on_presence(Presence::Online { server, conn: c.conn, instance: c.instance }),
                None => self.on_presence(Presence::Offline { server, conn }),
            }
        }
    }

    /// The tab is gone: detach its terminals (they keep running) and cancel its commands.
    fn close_all(&mut self) {
        for (_, relay) in self.chats.drain().chain(self.metrics.drain()) {
            relay.abort();
        }
        let streams: Vec<(StreamId, StreamState)> = self.streams.map.drain().collect();
        for (stream, s) in streams {
            self.close_on_bridge(stream, &s);
        }
    }

    /// Tells the bridge a stream this tab held is gone: a terminal is detached (it keeps
    /// running), a command cancelled, a watch ended.
    pub(super) fn close_on_bridge(&self, stream: StreamId, s: &StreamState) {
        if matches!(s.phase, Phase::Interrupted) {
            return;
        }
        let req: BridgeRequest = match s.kind {
            Kind::Term(_) => bridge::TermDetach { stream }.into(),
            Kind::Exec => bridge::ExecCancel { stream }.into(),
            Kind::Watch => bridge::FsUnwatch { stream }.into(),
        };
        let route = match s.kind {
            Kind::Term(_) | Kind::Watch => Route::Close(stream),
            Kind::Exec => Route::None,
        };
        tokio::spawn(self.state.bus.request(&s.server, req, route));
    }
}

enum Opened {
    Term(bridge::TermInfo, u64),
    Exec(u32),
    Watch(String),
}
