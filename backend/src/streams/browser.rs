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

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
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
use porta_shared::types::{ServerId, StreamId, TermId};
use porta_shared::{DecodeError, Envelope, ErrorBody, ErrorCode, Reply};
use serde::Deserialize;
use tokio::sync::broadcast;

use super::{MAX_WS_MESSAGE, READ_BUFFER};
use crate::auth::scopes::{Access, Scope};
use crate::bus::{BoxFuture, ClientId, ConnId, Presence, ReplyResult, Route, ToClient};
use crate::db::{AuditEvent, User};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::teams::{Role, authorize_server};

/// Most streams one tab may hold.
const MAX_STREAMS: usize = 256;

#[derive(Deserialize)]
pub struct TicketQuery {
    ticket: Option<String>,
}

pub async fn client_ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TicketQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response> {
    crate::http::origin::check(&state.origins, &headers)?;
    let ticket =
        q.ticket.ok_or_else(|| Error::Unauthorized("open /api/ws with a ticket from /api/ws/ticket".into()))?;
    let crate::auth::AuthUser(user, access) = state.tickets.caller(&state.store, &ticket).await?;
    Ok(ws
        .max_message_size(MAX_WS_MESSAGE)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| Session::run(socket, state, user, access)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Term(TermId),
    Exec,
    /// A folder watch (`fs.watch`): events only, no frames.
    Watch,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for the bridge's reply; what arrives meanwhile is held, then sent after it.
    Opening {
        held: Vec<Message>,
        ended: bool,
    },
    Live,
    /// The bridge went away; waiting for it to return.
    Interrupted,
}

#[derive(Debug)]
struct StreamState {
    server: ServerId,
    conn: ConnId,
    instance: String,
    kind: Kind,
    /// Offset just past the last output byte forwarded: where a resume continues.
    next: u64,
    phase: Phase,
    /// Whether input frames may go to it (a viewer watches a terminal without typing).
    may_type: bool,
    /// A new terminal in a workspace that records: its recording starts once it is open.
    record: Option<String>,
    /// The terminal is being recorded: the tab says so.
    recorded: bool,
}

/// What to do with a bridge's reply.
enum After {
    /// Relay it to the tab as-is.
    Forward,
    /// A process list: for a viewer, without command lines (they hold secrets: passwords and
    /// tokens passed as arguments).
    Processes { redact: bool },
    /// A `term.open`/`term.attach` reply: the stream is live.
    Opened(StreamId),
    /// The reply to an automatic re-attach after the bridge came back.
    Resumed(StreamId),
    /// An `exec.start` reply.
    ExecOpened(StreamId),
    /// An `fs.watch` reply.
    WatchOpened(StreamId),
}

/// An audit event waiting for the bridge's answer.
struct PendingAudit {
    actor: String,
    action: &'static str,
    server: ServerId,
    workspace: Option<String>,
    detail: String,
}

impl PendingAudit {
    /// Writes the event with `result`, adding `why` to the detail.
    async fn write(self, state: &AppState, result: &str, why: Option<&str>) {
        let detail = match why {
            Some(w) => format!("{} — {w}", self.detail),
            None => self.detail,
        };
        let target = format!("server:{}", self.server);
        let event = AuditEvent {
            actor: &self.actor,
            action: self.action,
            target: Some(&target),
            ok: result == "ok",
            detail: Some(detail),
            server: Some(&self.server),
            workspace: self.workspace.as_deref(),
            source: None,
            result: Some(result),
        };
        state.store.audit(event).await;
    }
}

struct Done {
    id: Option<String>,
    after: After,
    result: ReplyResult,
}

/// Who the socket belongs to, and what they may reach.
struct Caller {
    state: AppState,
    user: User,
    /// A signed-in session, or an API token and its scopes.
    access: Access,
}

impl Caller {
    /// The server, if the caller reaches it with the role `need` (for doing `what`).
    async fn grant(&self, server: &str, (need, what): (Role, &str)) -> std::result::Result<ServerGrant, ErrorBody> {
        match authorize_server(&self.state.store, &self.user, &self.access, server, need, what).await {
            Ok(a) => Ok(ServerGrant {
                id: a.server.id,
                role: a.role,
                workspace: a.server.workspace_id,
                record: a.record_terminals,
                max_terminals: a.max_terminals,
            }),
            Err(e) => Err(e.to_body()),
        }
    }

    async fn audit(&self, action: &str, on: &ServerGrant, detail: Option<String>) {
        let target = format!("server:{}", on.id);
        let event = AuditEvent {
            actor: &self.access.actor(&self.user.id),
            action,
            target: Some(&target),
            ok: true,
            detail,
            server: Some(&on.id),
            workspace: on.workspace.as_deref(),
            source: None,
            result: None,
        };
        self.state.store.audit(event).await;
    }
}

struct Session {
    state: AppState,
    caller: Caller,
    client: ClientId,

    streams: HashMap<StreamId, StreamState>,
    pending: FuturesUnordered<BoxFuture<Done>>,
    out: Vec<Message>,
    /// Conversations watched, each by a task relaying its events into `relayed`.
    chats: HashMap<String, tokio::task::JoinHandle<()>>,
    /// Servers whose telemetry is watched, each by a task relaying samples into `relayed`.
    metrics: HashMap<ServerId, tokio::task::JoinHandle<()>>,
    /// Servers whose role the tab follows (`access.watch`), with the role it was last told.
    followed: HashMap<ServerId, Role>,
    relayed: tokio::sync::mpsc::UnboundedSender<ClientEvent>,
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
            streams: HashMap::new(),
            pending: FuturesUnordered::new(),
            out: Vec::new(),
            chats: HashMap::new(),
            metrics: HashMap::new(),
            followed: HashMap::new(),
            relayed,
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
                Some(delivery) = inbox.recv() => s.on_delivery(delivery),
                Some(done) = s.pending.next(), if !s.pending.is_empty() => s.on_done(done),
                Some(ev) = relayed_rx.recv() => s.event(ev),
                Ok(()) = access_changed.changed() => {
                    if !s.recheck_access().await {
                        // 1008: policy violation, with the reason for whoever reads it.
                        let reason = "the API token was revoked or has expired";
                        let frame = axum::extract::ws::CloseFrame { code: 1008, reason: reason.into() };
                        let _ = socket.send(Message::Close(Some(frame))).await;
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
            let mut failed = false;
            for m in s.out.drain(..) {
                if socket.send(m).await.is_err() {
                    failed = true;
                    break;
                }
            }
            if failed {
                break;
            }
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

    /// Registers a new stream in the opening phase and returns its id.
    fn open_stream(&mut self, server: &ServerGrant, kind: Kind, next: u64) -> std::result::Result<StreamId, ErrorBody> {
        let ServerGrant { id: server, role, .. } = server;
        if self.streams.len() >= MAX_STREAMS {
            return Err(err(ErrorCode::Unavailable, format!("a tab may hold at most {MAX_STREAMS} streams")));
        }
        let connected = self
            .state
            .bus
            .connected(server)
            .ok_or_else(|| err(ErrorCode::ServerOffline, format!("server {server} is offline")))?;
        let stream = self.state.bus.new_stream_id();
        self.streams.insert(
            stream,
            StreamState {
                server: server.to_owned(),
                conn: connected.conn,
                instance: connected.instance,
                kind,
                next,
                phase: Phase::Opening { held: Vec::new(), ended: false },
                may_type: *role >= Role::Developer,
                record: None,
                recorded: false,
            },
        );
        Ok(stream)
    }

    fn drop_stream(&mut self, stream: StreamId) -> Option<StreamState> {
        self.streams.remove(&stream)
    }

    fn stream(&self, stream: StreamId) -> std::result::Result<&StreamState, ErrorBody> {
        self.streams
            .get(&stream)
            .ok_or_else(|| err(ErrorCode::UnknownStream, format!("no stream {stream} on this connection")))
    }

    fn term_stream(&self, stream: StreamId) -> std::result::Result<(ServerId, TermId), ErrorBody> {
        let s = self.stream(stream)?;
        match (s.kind, &s.phase) {
            (Kind::Term(term), Phase::Live) => Ok((s.server.clone(), term)),
            (Kind::Term(_), Phase::Interrupted) => Err(err(
                ErrorCode::ServerOffline,
                "the terminal's server is offline; it resumes when the server returns",
            )),
            (Kind::Term(_), Phase::Opening { .. }) => Err(err(ErrorCode::BadRequest, "the stream is still opening")),
            (Kind::Exec | Kind::Watch, _) => {
                Err(err(ErrorCode::BadRequest, format!("stream {stream} is not a terminal")))
            }
        }
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

    async fn on_request(&mut self, id: String, msg: ClientRequest) -> std::result::Result<(), ErrorBody> {
        use ClientRequest as C;
        let (scope, need) = needs(&msg);
        if !self.caller.access.allows(scope) {
            let msg = format!("this API token lacks the {} scope", scope.as_str());
            return Err(err(ErrorCode::Forbidden, msg));
        }
        let id = Some(id);
        match msg {
            C::TermOpen(r) => {
                let grant = self.caller.grant(&r.server, need).await?;
                if let (Some(max), Some(ws)) = (grant.max_terminals, &grant.workspace) {
                    if running_terminals(&self.state, ws).await? >= max {
                        let msg = format!("this workspace runs its quota of {max} terminals; close one first");
                        return Err(err(ErrorCode::Conflict, msg));
                    }
                }
                let stream = self.open_stream(&grant, Kind::Term(TermId(0)), 0)?;
                if grant.record {
                    if let Some(s) = self.streams.get_mut(&stream) {
                        s.record = grant.workspace.clone();
                        s.recorded = s.record.is_some();
                    }
                }
                self.caller.audit("terminal.open", &grant, r.shell.clone()).await;
                let req = bridge::TermOpen {
                    shell: r.shell,
                    args: r.args,
                    cwd: r.cwd,
                    size: r.size,
                    env: r.env,
                    stream: Some(stream),
                    // The bridge closes a terminal that opens after we stopped waiting.
                    deadline_ms: Some(self.state.config.request_timeout_ms.saturating_sub(2000).max(1000)),
                };
                self.relay(id, &r.server, req.into(), Route::Open(stream, self.client), After::Opened(stream));
            }
            C::TermAttach(r) => {
                let grant = self.caller.grant(&r.server, need).await?;
                // When the store cannot tell, say recorded if the workspace records: never
                // tell someone they are unrecorded by mistake.
                let recorded = self.state.store.recording_active(&grant.id, r.term.0).await.unwrap_or(grant.record);
                let stream = self.open_stream(&grant, Kind::Term(r.term), r.after)?;
                if let Some(s) = self.streams.get_mut(&stream) {
                    s.recorded = recorded;
                }
                let req = bridge::TermAttach { term: r.term, stream, after: r.after };
                self.relay(id, &r.server, req.into(), Route::Open(stream, self.client), After::Opened(stream));
            }
            C::TermDetach(r) => {
                self.stream(r.stream)?;
                let s = self.drop_stream(r.stream).ok_or_else(|| err(ErrorCode::UnknownStream, "no such stream"))?;
                if matches!(s.phase, Phase::Interrupted) {
                    self.reply(id.as_deref(), Ok(bridge::Done {}));
                } else {
                    let req = bridge::TermDetach { stream: r.stream };
                    self.relay(id, &s.server, req.into(), Route::Close(r.stream), After::Forward);
                }
            }
            C::TermResize(r) => {
                let (server, term) = self.term_stream(r.stream)?;
                self.caller.grant(&server, need).await?;
                self.relay(id, &server, bridge::TermResize { term, size: r.size }.into(), Route::None, After::Forward);
            }
            C::TermSignal(r) => {
                let (server, term) = self.term_stream(r.stream)?;
                self.caller.grant(&server, need).await?;
                self.relay(
                    id,
                    &server,
                    bridge::TermSignal { term, signal: r.signal }.into(),
                    Route::None,
                    After::Forward,
                );
            }
            C::TermClose(r) => {
                let (server, term) = match r {
                    client::TermClose::Stream { stream } => self.term_stream(stream)?,
                    client::TermClose::Term { server, term } => (server, term),
                };
                let grant = self.caller.grant(&server, need).await?;
                self.caller.audit("terminal.close", &grant, Some(format!("terminal {term}"))).await;
                self.relay(id, &server, bridge::TermClose { term }.into(), Route::None, After::Forward);
            }
            C::ExecStart(r) => {
                let grant = self.caller.grant(&r.server, need).await?;
                let stream = self.open_stream(&grant, Kind::Exec, 0)?;
                self.caller.audit("exec.start", &grant, serde_json::to_string(&r.argv).ok()).await;
                let req = bridge::ExecStart {
                    argv: r.argv,
                    shell: r.shell,
                    cwd: r.cwd,
                    env: r.env,
                    timeout_ms: r.timeout_ms,
                    stream,
                };
                self.relay(id, &r.server, req.into(), Route::Open(stream, self.client), After::ExecOpened(stream));
            }
            C::ExecCancel(r) => {
                let s = self.stream(r.stream)?;
                if s.kind != Kind::Exec {
                    return Err(err(ErrorCode::BadRequest, format!("stream {} is not a command", r.stream)));
                }
                let server = s.server.clone();
                self.caller.grant(&server, need).await?;
                self.relay(id, &server, bridge::ExecCancel { stream: r.stream }.into(), Route::None, After::Forward);
            }
            C::FsWatch(r) => {
                let grant = self.caller.grant(&r.server, need).await?;
                let stream = self.open_stream(&grant, Kind::Watch, 0)?;
                let req = bridge::FsWatch { path: r.path, stream };
                self.relay(id, &r.server, req.into(), Route::Open(stream, self.client), After::WatchOpened(stream));
            }
            C::FsUnwatch(r) => {
                if self.stream(r.stream)?.kind != Kind::Watch {
                    return Err(err(ErrorCode::BadRequest, format!("stream {} is not a folder watch", r.stream)));
                }
                let s = self.drop_stream(r.stream).ok_or_else(|| err(ErrorCode::UnknownStream, "no such stream"))?;
                let req = bridge::FsUnwatch { stream: r.stream };
                self.relay(id, &s.server, req.into(), Route::Close(r.stream), After::Forward);
            }
            C::TermList(r) => self.forward(id, need, r.server, r.req.into(), None).await?,
            C::TermRename(r) => self.forward(id, need, r.server, r.req.into(), None).await?,
            C::FsList(r) => self.forward(id, need, r.server, r.req.into(), None).await?,
            C::FsStat(r) => self.forward(id, need, r.server, r.req.into(), None).await?,
            C::FsRead(r) => self.forward(id, need, r.server, r.req.into(), None).await?,
            C::SysInfo(r) => self.forward(id, need, r.server, r.req.into(), None).await?,
            C::SysProcesses(r) => {
                let grant = self.caller.grant(&r.server, need).await?;
                let redact = grant.role < Role::Developer;
                self.relay(id, &r.server, r.req.into(), Route::None, After::Processes { redact });
            }
            C::SysKill(r) => {
                let detail = format!("pid {} {:?}", r.req.pid, r.req.signal).to_lowercase();
                self.forward(id, need, r.server, r.req.into(), Some(("process.kill", detail))).await?;
            }
            C::FsWrite(r) => {
                let detail = format!("{} ({} bytes)", r.req.path, r.req.data.0.len());
                self.forward(id, need, r.server, r.req.into(), Some(("file.write", detail))).await?;
            }
            C::FsUploadBegin(r) => {
                // The content arrives in pieces; the write is recorded when it starts.
                let detail = format!("{} ({} bytes, in pieces)", r.req.path, r.req.size);
                self.forward(id, need, r.server, r.req.into(), Some(("file.write", detail))).await?;
            }
            C::FsFind(r) => self.forward(id, need, r.server, r.req.into(), None).await?,
            C::FsSearch(r) => self.forward(id, need, r.server, r.req.into(), None).await?,
            C::GitStatus(r) => self.forward(id, need, r.server, r.req.into(), None).await?,
            C::GitHead(r) => self.forward(id, need, r.server, r.req.into(), None).await?,
            C::FsArchive(r) => {
                // A whole folder leaving the server is worth a line in the audit log.
                let detail = r.req.path.clone();
                self.forward(id, need, r.server, r.req.into(), Some(("file.archive", detail))).await?;
            }
            C::FsArchiveRead(r) => self.forward(id, need, r.server, r.req.into(), None).await?,
            C::FsArchiveClose(r) => self.forward(id, need, r.server, r.req.into(), None).await?,
            C::FsUploadChunk(r) => self.forward(id, need, r.server, r.req.into(), None).await?,
            C::FsUploadCommit(r) => self.forward(id, need, r.server, r.req.into(), None).await?,
            C::FsUploadAbort(r) => self.forward(id, need, r.server, r.req.into(), None).await?,
            C::FsMkdir(r) => {
                let detail = r.req.path.clone();
                self.forward(id, need, r.server, r.req.into(), Some(("file.mkdir", detail))).await?;
            }
            C::FsRename(r) => {
                let detail = format!("{} -> {}", r.req.from, r.req.to);
                self.forward(id, need, r.server, r.req.into(), Some(("file.rename", detail))).await?;
            }
            C::FsDelete(r) => {
                let detail = format!("{}{}", r.req.path, if r.req.recursive { " (recursive)" } else { "" });
                self.forward(id, need, r.server, r.req.into(), Some(("file.delete", detail))).await?;
            }
            C::ChatWatch(r) => {
                let watching = self.watch_chat(r.conversation).await;
                self.reply(id.as_deref(), watching);
            }
            C::ChatUnwatch(r) => {
                let result = match self.chats.remove(&r.conversation) {
                    Some(relay) => {
                        relay.abort();
                        Ok(bridge::Done {})
                    }
                    None => {
                        Err(err(ErrorCode::NotFound, format!("conversation {} is not watched here", r.conversation)))
                    }
                };
                self.reply(id.as_deref(), result);
            }
            C::MetricsWatch(r) => {
                self.caller.grant(&r.server, need).await?;
                let watching = self.watch_metrics(r.server);
                self.reply(id.as_deref(), Ok::<_, ErrorBody>(watching));
            }
            C::AccessWatch(r) => {
                let grant = self.caller.grant(&r.server, need).await?;
                self.followed.insert(grant.id, grant.role);
                self.reply(id.as_deref(), Ok::<_, ErrorBody>(client::AccessWatching { role: grant.role.to_string() }));
            }
            C::MetricsUnwatch(r) => {
                let result = match self.metrics.remove(&r.server) {
                    Some(relay) => {
                        relay.abort();
                        Ok(bridge::Done {})
                    }
                    None => Err(err(ErrorCode::NotFound, format!("server {} is not watched here", r.server))),
                };
                self.reply(id.as_deref(), result);
            }
        }
        Ok(())
    }

    /// Authorises and relays a request whose reply goes back as-is. An audited one is written
    /// to the audit log with its outcome: `denied` when refused here, else what the bridge
    /// answered (`ok`, or `failed: <code>`).
    async fn forward(
        &mut self,
        id: Option<String>,
        need: (Role, &str),
        server: ServerId,
        req: BridgeRequest,
        audited: Option<(&'static str, String)>,
    ) -> std::result::Result<(), ErrorBody> {
        let granted = self.caller.grant(&server, need).await;
        let audit = audited.map(|(action, detail)| PendingAudit {
            actor: self.caller.access.actor(&self.caller.user.id),
            action,
            server: server.clone(),
            workspace: granted.as_ref().ok().and_then(|g| g.workspace.clone()),
            detail,
        });
        match (granted, audit) {
            // A server the caller cannot see at all is not theirs to leave a trace on.
            (Err(e), Some(audit)) if e.code != ErrorCode::NotFound => {
                audit.write(&self.state, "denied", Some(&e.message)).await;
                Err(e)
            }
            (Err(e), _) => Err(e),
            (Ok(_), audit) => {
                self.relay_audited(id, &server, req, Route::None, After::Forward, audit);
                Ok(())
            }
        }
    }

    /// Someone's role or a workspace changed: every open stream is checked again. A stream
    /// whose server the user no longer reaches is closed; one they may no longer type into
    /// stays open for watching. False when the socket's own API token was revoked or expired:
    /// the socket closes.
    async fn recheck_access(&mut self) -> bool {
        if !crate::auth::api_tokens::still_valid(&self.state.store, &self.caller.user.id, &self.caller.access).await {
            return false;
        }
        let servers: std::collections::HashSet<ServerId> =
            self.streams.values().map(|s| s.server.clone()).chain(self.metrics.keys().cloned()).collect();
        for server in servers {
            let role = match authorize_server(
                &self.state.store,
                &self.caller.user,
                &self.caller.access,
                &server,
                Role::Viewer,
                "",
            )
            .await
            {
                Ok(a) => Some(a.role),
                Err(Error::NotFound(_)) => None,
                // A database hiccup: keep things as they are until the next change.
                Err(_) => continue,
            };
            if role.is_none() {
                if let Some(relay) = self.metrics.remove(&server) {
                    relay.abort();
                }
            }
            let ids: Vec<StreamId> =
                self.streams.iter().filter(|(_, s)| s.server == server).map(|(id, _)| *id).collect();
            for stream in ids {
                match role {
                    Some(role) => {
                        if let Some(s) = self.streams.get_mut(&stream) {
                            s.may_type = role >= Role::Developer;
                        }
                    }
                    None => {
                        if let Some(s) = self.drop_stream(stream) {
                            self.close_on_bridge(stream, &s);
                        }
                        let reason = err(ErrorCode::NotFound, format!("you no longer have access to server {server}"));
                        self.event(StreamClosed { stream, reason });
                    }
                }
            }
        }
        self.tell_access_changes().await;
        true
    }

    /// Tells the tab of every change to its role on the servers it follows, so the page shows
    /// what the person may do now (and leaves a server they lost).
    async fn tell_access_changes(&mut self) {
        let followed: Vec<(ServerId, Role)> = self.followed.iter().map(|(s, r)| (s.clone(), *r)).collect();
        for (server, was) in followed {
            let store = &self.state.store;
            let now = match authorize_server(store, &self.caller.user, &self.caller.access, &server, Role::Viewer, "")
                .await
            {
                Ok(a) => Some(a.role),
                Err(Error::NotFound(_) | Error::Forbidden(_)) => None,
                // A database hiccup: tell nothing until the next change.
                Err(_) => continue,
            };
            if now == Some(was) {
                continue;
            }
            match now {
                Some(role) => self.followed.insert(server.clone(), role),
                None => self.followed.remove(&server),
            };
            self.event(client::AccessChanged { server, role: now.map(|r| r.to_string()) });
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
        let Some(s) = self.streams.get(&frame.stream) else {
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
        self.state.bus.send_frame(&server, bytes);
    }

    fn on_delivery(&mut self, delivery: ToClient) {
        match delivery {
            ToClient::Frame(bytes) => {
                let Ok(frame) = Frame::decode(&bytes) else { return };
                let Some(s) = self.streams.get_mut(&frame.stream) else { return };
                match frame.kind {
                    k if k.is_output() => s.next = frame.seq + frame.payload.len() as u64,
                    FrameKind::Gap => s.next = frame.seq,
                    _ => {}
                }
                match &mut s.phase {
                    Phase::Opening { held, .. } => held.push(Message::Binary(bytes)),
                    Phase::Live => self.out.push(Message::Binary(bytes)),
                    Phase::Interrupted => {}
                }
            }
            ToClient::Event(BridgeEvent::FsChanged(e)) => {
                // A watch's events keep the stream open.
                if self.streams.get(&e.stream).is_some_and(|s| s.kind == Kind::Watch) {
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
                };
                let text = Message::text(Envelope::<ClientEvent>::event(event).encode());
                match self.streams.get_mut(&stream).map(|s| &mut s.phase) {
                    Some(Phase::Opening { held, ended }) => {
                        held.push(text);
                        *ended = true;
                    }
                    Some(_) => {
                        self.out.push(text);
                        self.drop_stream(stream);
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
            After::Forward | After::Processes { redact: false } => {
                self.reply(id, result);
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
                    Err(e) => {
                        if self.drop_stream(stream).is_some() && resumed {
                            self.event(StreamClosed { stream, reason: e });
                        } else if !resumed {
                            self.reply(id, Err::<(), _>(e));
                        }
                    }
                    Ok(reply) => {
                        let record =
                            self.streams.get_mut(&stream).and_then(|s| Some((s.server.clone(), s.record.take()?)));
                        if let (Opened::Term(info, _), Some((server, workspace))) = (&reply, record) {
                            self.record(&server, &workspace, info);
                        }
                        match reply {
                            Opened::Term(_, from) if resumed => self.event(StreamResumed { stream, from }),
                            Opened::Term(info, from) => {
                                let recorded = self.streams.get(&stream).is_some_and(|s| s.recorded);
                                self.reply(id, Ok(StreamOpened { stream, info, from, recorded }))
                            }
                            Opened::Exec(pid) => self.reply(id, Ok(ExecOpened { stream, pid })),
                            Opened::Watch(path) => self.reply(id, Ok(client::WatchOpened { stream, path })),
                        }
                        if let Some(s) = self.streams.get_mut(&stream) {
                            if let Phase::Opening { held, ended } = std::mem::replace(&mut s.phase, Phase::Live) {
                                self.out.extend(held);
                                if ended {
                                    self.drop_stream(stream);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Starts recording a terminal this socket just opened.
    fn record(&self, server: &str, workspace: &str, info: &bridge::TermInfo) {
        let state = self.state.clone();
        let started_by = self.caller.access.actor(&self.caller.user.id);
        let (server, workspace) = (server.to_owned(), workspace.to_owned());
        let info = info.clone();
        tokio::spawn(async move {
            let id = uuid::Uuid::new_v4().to_string();
            let row = crate::db::NewRecording {
                id: &id,
                workspace_id: &workspace,
                server_id: &server,
                term_id: info.term.0,
                shell: &info.shell,
                started_by: &started_by,
                cols: info.size.cols,
                rows: info.size.rows,
            };
            if let Err(e) = state.store.insert_recording(&row).await {
                tracing::error!(error = %e, "cannot record a terminal session");
                return;
            }
            let target = format!("recording:{id}");
            let event = AuditEvent {
                actor: &started_by,
                action: "recording.start",
                target: Some(&target),
                ok: true,
                detail: Some(format!("terminal {}", info.term)),
                server: Some(&server),
                workspace: Some(&workspace),
                ..Default::default()
            };
            state.store.audit(event).await;
            let (per_recording_mb, total_mb) = match state.store.workspace(&workspace).await {
                Ok(Some(w)) => (w.max_recording_mb, w.max_recordings_mb),
                _ => (0, 0),
            };
            let mb = |n: i64| u64::try_from(n).unwrap_or(0) << 20;
            let limits = crate::relay::recorder::Limits {
                recording_bytes: mb(per_recording_mb),
                workspace: workspace.clone(),
                workspace_bytes: mb(total_mb),
                min_free_bytes: state.config.recording_min_free_mb << 20,
            };
            let spec = crate::relay::recorder::Spec {
                id,
                server,
                term: info.term,
                cols: info.size.cols,
                rows: info.size.rows,
                title: crate::audit::cut(&format!("terminal {} ({})", info.term, info.shell), 200),
                limits,
            };
            crate::relay::recorder::start(&state.recorder, spec);
        });
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
        let Some(s) = self.streams.get_mut(&stream) else {
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
        s.next = attached.from;
        Ok(Opened::Term(attached.info, attached.from))
    }

    fn on_presence(&mut self, p: Presence) {
        match p {
            Presence::Offline { server, conn } => {
                let hit: Vec<StreamId> = self
                    .streams
                    .iter()
                    .filter(|(_, s)| s.server == server && s.conn == conn)
                    .map(|(l, _)| *l)
                    .collect();
                for stream in hit {
                    self.interrupt(stream);
                }
            }
            Presence::Online { server, conn, instance } => {
                let hit: Vec<StreamId> = self
                    .streams
                    .iter()
                    .filter(|(_, s)| s.server == server && s.conn != conn && !matches!(s.phase, Phase::Opening { .. }))
                    .map(|(l, _)| *l)
                    .collect();
                for stream in hit {
                    self.resume(stream, conn, &instance);
                }
            }
        }
    }

    /// After missing presence events, compares every stream with where its server is now.
    fn resync_presence(&mut self) {
        let servers: Vec<(ServerId, ConnId)> = self.streams.values().map(|s| (s.server.clone(), s.conn)).collect();
        for (server, conn) in servers {
            match self.state.bus.connected(&server) {
                Some(c) if c.conn == conn => {}
                Some(c) => self.on_presence(Presence::Online { server, conn: c.conn, instance: c.instance }),
                None => self.on_presence(Presence::Offline { server, conn }),
            }
        }
    }

    fn interrupt(&mut self, stream: StreamId) {
        let Some(s) = self.streams.get_mut(&stream) else { return };
        let reason = err(ErrorCode::ServerOffline, "the server went offline");
        match s.kind {
            Kind::Term(_) if matches!(s.phase, Phase::Live) => {
                s.phase = Phase::Interrupted;
                self.event(StreamInterrupted { stream, reason });
            }
            Kind::Term(_) => {}
            Kind::Exec | Kind::Watch => {
                self.drop_stream(stream);
                self.event(StreamClosed { stream, reason });
            }
        }
    }

    fn resume(&mut self, stream: StreamId, conn: ConnId, instance: &str) {
        let Some(s) = self.streams.get(&stream) else { return };
        let Kind::Term(term) = s.kind else {
            self.drop_stream(stream);
            let reason = err(ErrorCode::ServerOffline, "the server reconnected without this command or watch");
            return self.event(StreamClosed { stream, reason });
        };
        if s.instance != instance {
            self.drop_stream(stream);
            let reason = err(ErrorCode::UnknownTerminal, "the server's bridge restarted; this terminal has ended");
            return self.event(StreamClosed { stream, reason });
        }
        let server = s.server.clone();
        let after = s.next;
        if let Some(s) = self.streams.get_mut(&stream) {
            s.conn = conn;
            s.phase = Phase::Opening { held: Vec::new(), ended: false };
        }
        // The same stream id serves on the new connection: it is unique on the bus.
        let req = bridge::TermAttach { term, stream, after };
        self.relay(None, &server, req.into(), Route::Open(stream, self.client), After::Resumed(stream));
    }

    /// Follows a conversation of the caller's: its events are relayed until unwatched.
    async fn watch_chat(&mut self, conversation: String) -> std::result::Result<client::ChatWatching, ErrorBody> {
        let user = crate::auth::AuthUser(self.caller.user.clone(), self.caller.access.clone());
        crate::assistant::chat::conversation(&self.state.assistant, &user, &conversation)
            .await
            .map_err(|e| e.to_body())?;
        let (message, text, mut rx) = self.state.assistant.chats.watch(&conversation);
        let tx = self.relayed.clone();
        let id = conversation.clone();
        let relay = tokio::spawn(async move {
            use crate::assistant::chat::ChatEvent;
            loop {
                let ev = match rx.recv().await {
                    Ok(ChatEvent::Delta { message, offset, text }) => {
                        ClientEvent::ChatDelta(client::ChatDelta { conversation: id.clone(), message, offset, text })
                    }
                    Ok(ChatEvent::Changed { finished }) => {
                        ClientEvent::ChatChanged(client::ChatChanged { conversation: id.clone(), finished })
                    }
                    // Fell behind: the tab reads the conversation again and watches on.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        ClientEvent::ChatChanged(client::ChatChanged { conversation: id.clone(), finished: false })
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                if tx.send(ev).is_err() {
                    break;
                }
            }
        });
        if let Some(old) = self.chats.insert(conversation, relay) {
            old.abort();
        }
        Ok(client::ChatWatching { message, text })
    }

    /// Relays `server`'s samples to this tab (the caller was authorised) until unwatched.
    fn watch_metrics(&mut self, server: ServerId) -> client::MetricsWatching {
        let mut rx = self.state.telemetry.subscribe();
        let latest = self.state.telemetry.latest(&server).map(|s| (*s).clone());
        let tx = self.relayed.clone();
        let id = server.clone();
        let relay = tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(live) if live.server == id => {
                        let ev = client::MetricsSample { server: id.clone(), sample: (*live.sample).clone() };
                        if tx.send(ev.into()).is_err() {
                            break;
                        }
                    }
                    // Another server's, or fell behind: the next sample is seconds away.
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        if let Some(old) = self.metrics.insert(server, relay) {
            old.abort();
        }
        client::MetricsWatching { latest }
    }

    /// The tab is gone: detach its terminals (they keep running) and cancel its commands.
    fn close_all(&mut self) {
        for (_, relay) in self.chats.drain().chain(self.metrics.drain()) {
            relay.abort();
        }
        let streams: Vec<(StreamId, StreamState)> = self.streams.drain().collect();
        for (stream, s) in streams {
            self.close_on_bridge(stream, &s);
        }
    }

    /// Tells the bridge a stream this tab held is gone: a terminal is detached (it keeps
    /// running), a command cancelled, a watch ended.
    fn close_on_bridge(&self, stream: StreamId, s: &StreamState) {
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

/// A server the caller reaches, their role there, and its workspace.
struct ServerGrant {
    id: ServerId,
    role: Role,
    workspace: Option<String>,
    /// Whether its workspace records terminal sessions.
    record: bool,
    /// Its workspace's quota of terminals running at once.
    max_terminals: Option<i64>,
}

/// Terminals running (not exited) on the workspace's online servers, asked of their bridges.
async fn running_terminals(state: &AppState, workspace: &str) -> std::result::Result<i64, ErrorBody> {
    let servers = state.store.server_ids_in(workspace).await.map_err(|e| Error::from(e).to_body())?;
    let timeout = Duration::from_millis(state.config.request_timeout_ms);
    let mut running = 0;
    for server in servers.iter().filter(|s| state.bus.connected(s).is_some()) {
        let reply = tokio::time::timeout(timeout, state.bus.request(server, bridge::TermList {}.into(), Route::None))
            .await
            .map_err(|_| {
                err(ErrorCode::Timeout, "a server of the workspace did not say how many terminals it runs")
            })??;
        let listed: bridge::TermListed = serde_json::from_str(reply.get())
            .map_err(|e| err(ErrorCode::Internal, format!("malformed reply from the bridge: {e}")))?;
        running += listed.terminals.iter().filter(|t| t.exit.is_none()).count() as i64;
    }
    Ok(running)
}

/// What a request needs: the API token scope, the role on its server's team, and what to call
/// the action when it is refused. Every request is named: a new one does not compile until it
/// is given both.
fn needs(msg: &ClientRequest) -> (Scope, (Role, &'static str)) {
    use ClientRequest as C;
    match msg {
        C::TermAttach(_) | C::TermDetach(_) => (Scope::Terminal, (Role::Viewer, "watching a terminal")),
        C::TermOpen(_) => (Scope::Terminal, (Role::Developer, "opening a terminal")),
        C::TermResize(_) | C::TermSignal(_) | C::TermClose(_) | C::TermRename(_) => {
            (Scope::Terminal, (Role::Developer, "controlling a terminal"))
        }
        C::ExecStart(_) | C::ExecCancel(_) => (Scope::Terminal, (Role::Developer, "running a command")),
        C::FsWrite(_)
        | C::FsUploadBegin(_)
        | C::FsUploadChunk(_)
        | C::FsUploadCommit(_)
        | C::FsUploadAbort(_)
        | C::FsMkdir(_)
        | C::FsRename(_)
        | C::FsDelete(_) => (Scope::Write, (Role::Developer, "changing files")),
        C::TermList(_)
        | C::FsList(_)
        | C::FsStat(_)
        | C::FsRead(_)
        | C::FsArchive(_)
        | C::FsArchiveRead(_)
        | C::FsArchiveClose(_)
        | C::FsWatch(_)
        | C::FsUnwatch(_)
        | C::FsFind(_)
        | C::FsSearch(_)
        | C::GitStatus(_)
        | C::GitHead(_)
        | C::SysInfo(_)
        | C::SysProcesses(_) => (Scope::Read, (Role::Viewer, "reading")),
        C::SysKill(_) => (Scope::Terminal, (Role::Developer, "signalling a process")),
        C::ChatWatch(_) | C::ChatUnwatch(_) => (Scope::Read, (Role::Viewer, "following a conversation")),
        C::MetricsWatch(_) | C::MetricsUnwatch(_) => (Scope::Read, (Role::Viewer, "watching telemetry")),
        C::AccessWatch(_) => (Scope::Read, (Role::Viewer, "following your access")),
    }
}

enum Opened {
    Term(bridge::TermInfo, u64),
    Exec(u32),
    Watch(String),
}
